"""Browser test: a real JupyterLab, driven by Debian's chromium through Playwright.

Opens a notebook, runs it, checks that a frame is drawn, moves the slider (and measures the time from
the slider move to the new frame drawn), checks the Altair timelines (rendered by the vendored Vega,
cursor following ``current_time``, a click seeks, shift-drag selects a range), marks a range and adds
an annotation with mouse and keyboard, and checks that it landed in the SQLite file. Every request
the page makes must stay on localhost (no CDN). A screenshot is saved under ``tests/artifacts/``.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import lab_browser
import numpy as np
import pytest

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SLIDE = """(t) => { const s = document.querySelector('.emonb-slider');
    s.value = String(t); s.dispatchEvent(new Event('input', {bubbles: true})); }"""


def _source(store: Path) -> str:
    return ("import emonb as eb, numpy as np, xarray as xr\n"
            "tree = eb.sample_session()\n"
            # a small stand-in face result on the video's clock, so the overlay and the AU inspector render
            "t = tree['video'].time.values\n"
            "E, A = list(eb.schema.EMOTIONS), list(eb.schema.AUS)\n"
            "emo = np.full((t.size, 1, 7), 0.05); emo[:, 0, 4] = 0.7\n"
            "au = np.full((t.size, 1, len(A)), 0.1); au[:, 0, A.index('AU04')] = 0.8\n"
            "tree['face'] = xr.Dataset({'face_box': (('time', 'face', 'box_coord'), np.tile([[[220., 60., 420., 300.]]], (t.size, 1, 1))),"
            " 'face_emotion': (('time', 'face', 'emotion'), emo, {'model': 'stand-in'}),"
            " 'face_emotion_facs': (('time', 'face', 'emotion'), emo),"
            " 'face_au': (('time', 'face', 'au'), au)},"
            " coords={'time': t, 'face': [0], 'emotion': E, 'au': A, 'box_coord': ['x0', 'y0', 'x1', 'y1']})\n"
            f"ex = eb.widgets.explore(tree, store={str(store)!r}, reviewer='browser_test')\n"
            "ex")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    reason = lab_browser.skip_reason()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("lab")
    store = root / "reviews.sqlite"
    lab_browser.write_notebook(root, "review.ipynb", _source(store))
    with lab_browser.jupyterlab(root, "review.ipynb") as server:
        yield {**server, "store": store, "root": root}


def test_notebook_scrub_and_annotate(lab):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = lab_browser.launch(p)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        # nothing may leave localhost: every request and websocket is recorded
        local = (lab["base"], lab["base"].replace("http://", "ws://"), "data:", "blob:")
        remote = []
        page.on("request", lambda r: None if r.url.startswith(local) else remote.append(r.url))
        page.on("websocket", lambda w: None if w.url.startswith(local) else remote.append(w.url))
        try:
            page.goto(lab["url"])
            lab_browser.run_first_cell(page)
            scrub = page.wait_for_selector(".emonb-scrubber[data-frames-drawn]", timeout=90_000)
            # a frame is drawn: the canvas is not blank
            lit = page.evaluate("""() => { const c = document.querySelector('.emonb-scrubber-canvas');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let s = 0; for (let i = 0; i < d.length; i += 4) s += d[i] + d[i + 1] + d[i + 2];
                return s / (d.length / 4) / 3; }""")
            assert lit > 10, "the canvas stayed black"
            # the AU inspector: 26 named bars, AU04 active; clicking a bar selects it
            page.wait_for_selector(".emonb-au[data-active='AU04']", timeout=20_000)
            assert page.locator(".emonb-au-bar").count() == 26
            page.click(".emonb-au-bar[data-au='AU12']")
            page.wait_for_selector(".emonb-au-bar.selected[data-au='AU12']", timeout=20_000)
            assert "sadness" in page.inner_text(".emonb-au-reading")
            # move the slider several times and time slider-move -> frame drawn; every frame drawn
            # must be the one at the slider's time, whether it came from the kernel or the browser's cache
            page.evaluate("() => { window.__emonbLatencies = []; window.__emonbTimings = []; }")
            fps = 1 / float(page.get_attribute(".emonb-slider", "step"))
            targets = np.linspace(1.0, 18.0, 25)
            for i, t in enumerate(targets):
                before = int(scrub.get_attribute("data-frames-drawn"))
                page.evaluate(SLIDE, float(t))
                page.wait_for_function(
                    "(n) => +document.querySelector('.emonb-scrubber').dataset.framesDrawn > n", arg=before,
                    timeout=20_000)
                now = float(scrub.get_attribute("data-current-time"))  # t snapped to the slider's step
                shown = float(scrub.get_attribute("data-frame-time"))
                assert abs(now - t) < 1 / fps and now - 1 / fps - 1e-6 <= shown <= now + 1e-6, (t, now, shown)
            frame_time = float(scrub.get_attribute("data-frame-time"))
            lat = np.array(page.evaluate("() => window.__emonbLatencies"))
            parts = page.evaluate("() => window.__emonbTimings")
            assert lat.size >= 20
            hits = sum(1 for d in parts if d.get("cached"))
            print(f"\nslider -> frame drawn: median {np.median(lat):.1f} ms, "
                  f"p95 {np.percentile(lat, 95):.1f} ms over {lat.size} moves (640x360 sample clip); "
                  f"next paint median {np.median([d['painted'] for d in parts if 'painted' in d]):.1f} ms; "
                  f"{hits} frames from the browser's cache")
            misses = [d for d in parts if not d.get("cached")]
            for key in ("roundtrip", "server", "decode"):
                if misses:
                    print(f"  misses, {key}: median {np.median([d[key] for d in misses]):.1f} ms")
            assert hits >= 1  # frames sent ahead reached the browser's cache and were drawn from it
            # a jump back to a frame not in the browser's cache comes from the kernel (raw RGB on localhost)
            before = int(scrub.get_attribute("data-frames-drawn"))
            page.evaluate(SLIDE, 0.5)
            page.wait_for_function("(n) => +document.querySelector('.emonb-scrubber').dataset.framesDrawn > n",
                                   arg=before, timeout=20_000)
            now = float(scrub.get_attribute("data-current-time"))
            assert now - 1 / fps - 1e-6 <= float(scrub.get_attribute("data-frame-time")) <= now + 1e-6
            page.evaluate(SLIDE, float(targets[-1]))  # back to where the rest of the test expects to be
            page.wait_for_function("(t) => +document.querySelector('.emonb-scrubber').dataset.frameTime === t",
                                   arg=frame_time, timeout=20_000)
            # keyboard: step forward one frame with the arrow key
            page.focus(".emonb-scrubber")
            page.keyboard.press("ArrowRight")
            page.wait_for_function(
                "(t) => +document.querySelector('.emonb-scrubber').dataset.frameTime > t", arg=frame_time,
                timeout=20_000)
            # play at real speed for about a second, then pause
            t_before = float(scrub.get_attribute("data-current-time"))
            drawn_before = int(scrub.get_attribute("data-frames-drawn"))
            page.click(".emonb-play")
            page.wait_for_timeout(1000)
            page.click(".emonb-play")
            advanced = float(scrub.get_attribute("data-current-time")) - t_before
            assert 0.6 < advanced < 2.0, advanced
            assert int(scrub.get_attribute("data-frames-drawn")) > drawn_before + 3
            # the timelines: an Altair chart drawn by the vendored Vega (svg), the cursor on current_time
            page.wait_for_selector(".emonb-timelines[data-rendered^='vega 6'] svg", timeout=60_000)
            rendered = page.get_attribute(".emonb-timelines", "data-rendered")
            assert "vega-lite 6" in rendered, rendered
            page.wait_for_function(
                "() => { const d = document.querySelector('.emonb-scrubber').dataset;"
                " return Math.abs(+document.querySelector('.emonb-timelines').dataset.cursor - +d.currentTime) < 1e-6; }",
                timeout=20_000)
            # the plot area of the first row (vega draws each row's background as path.background)
            plot = page.locator(".emonb-timelines g.concat_0_group > g > path.background").first
            # clicking a timeline seeks: the middle of the first track is the middle of the session
            plot.scroll_into_view_if_needed()
            box = plot.bounding_box()
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.wait_for_function(
                "() => Math.abs(+document.querySelector('.emonb-scrubber').dataset.currentTime - 9.84) < 0.3",
                timeout=20_000)
            page.wait_for_function(  # and the cursor follows
                "() => Math.abs(+document.querySelector('.emonb-timelines').dataset.cursor - 9.84) < 0.3",
                timeout=20_000)
            # annotate: set time with the slider, mark in (mouse), move, mark out (key), choose a label, add
            def seek(t):
                page.evaluate(SLIDE, t)
            seek(2.0)
            page.wait_for_function("() => Math.abs(+document.querySelector('.emonb-scrubber').dataset.currentTime - 2) < 0.05")
            page.click(".emonb-mark-in")
            seek(3.5)
            page.wait_for_function("() => Math.abs(+document.querySelector('.emonb-scrubber').dataset.currentTime - 3.5) < 0.05")
            page.focus(".emonb-annotator")
            page.keyboard.press("o")
            # the out mark is the end of the frame on screen at 3.5 s (snapped to the video's frames)
            page.wait_for_function("() => /out 3\\.5\\d s/.test(document.querySelector('.emonb-ann-range').textContent)")
            page.select_option(".emonb-ann-label", "surprise")
            page.fill(".emonb-ann-note", "raised brows, from the browser")
            page.keyboard.press("Enter")
            page.wait_for_selector(".emonb-annotator[data-count='1']", timeout=20_000)
            # shift-drag on a timeline selects the annotator's range (25% -> 50% of the session)
            plot.scroll_into_view_if_needed()
            box = plot.bounding_box()
            y = box["y"] + box["height"] / 2
            page.keyboard.down("Shift")
            page.mouse.move(box["x"] + box["width"] * 0.25, y)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] * 0.5, y, steps=5)
            page.mouse.up()
            page.keyboard.up("Shift")
            # (mouse events land on whole pixels: about 0.03 s at this width)
            page.wait_for_function(
                "() => { const m = document.querySelector('.emonb-ann-range').textContent.match(/in ([\\d.]+) s → out ([\\d.]+) s/);"
                " return m && Math.abs(+m[1] - 4.92) < 0.1 && Math.abs(+m[2] - 9.84) < 0.1; }", timeout=20_000)
            # the range band is drawn on the timelines (the rect of each row's band layer)
            page.wait_for_selector(".emonb-timelines g.concat_0_group path[fill='#3b82f6']", timeout=20_000)
            page.locator(".emonb-timelines").scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "review_notebook.png"), full_page=True)
            assert not remote, f"requests left localhost: {remote[:5]}"
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "review_notebook_failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    # emonb's Jupyter server extension is on (installed with the package): no Nagle delay on the websocket
    assert "kernel websockets send without Nagle" in (lab["root"] / "lab.log").read_text()
    con = sqlite3.connect(lab["store"])
    rows = con.execute("SELECT reviewer, label, onset, duration, note, session FROM annotations").fetchall()
    assert len(rows) == 1
    reviewer, label, onset, duration, note, session = rows[0]
    assert (reviewer, label, note, session) == ("browser_test", "surprise", "raised brows, from the browser", "sample")
    assert onset == pytest.approx(2.0, abs=0.05) and onset + duration == pytest.approx(3.5, abs=0.05)
    assert con.execute("SELECT action FROM history").fetchall() == [("insert",)]
