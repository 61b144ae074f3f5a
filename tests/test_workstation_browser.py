"""Browser test of the reviewer's workstation (``tree.emonb.explore()``) in a real JupyterLab in Chromium.

Two people in turn on the sample video (a stand-in face result: face 0 until 8 s, nobody until 10 s,
face 1 after), with the sample's sound (audio node, t0 = 3 s). Checked: the layout at 1,400 x 900
(video and AU panel side by side, timelines full width below, the annotation form on screen; a
screenshot in ``tests/artifacts/workstation.png``), the face selector, the lit AU diagram (computed
style), no line drawn across the gap, sound in sync with the picture during play, keyboard shortcuts
from anywhere in the explorer (mark in/out and a one-key label), the new annotation on its tier at
once, undo, zoom and pan of the timelines, the model strings in the row titles' tooltips, the
shortcut sheet and the AU panel's time tab (screenshots ``workstation_keys.png``,
``workstation_au_time.png``).
"""

from __future__ import annotations

from pathlib import Path

import lab_browser
import pytest

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SLIDE = """(t) => { const s = document.querySelector('.emonb-slider');
    s.value = String(t); s.dispatchEvent(new Event('input', {bubbles: true})); }"""


def _source(store: Path, cache: Path) -> str:
    return (f"import os; os.environ['EMONB_CACHE_DIR'] = {str(cache)!r}\n"
            "import emonb as eb, numpy as np, xarray as xr\n"
            "tree = eb.sample_session()\n"
            "t = tree['video'].time.values\n"
            "E, A = list(eb.schema.EMOTIONS), list(eb.schema.AUS)\n"
            "a, b = t < 8, t >= 10\n"
            "box = np.full((t.size, 2, 4), np.nan); box[a, 0] = [220, 60, 420, 300]; box[b, 1] = [240, 70, 430, 310]\n"
            "emo = np.full((t.size, 2, 7), np.nan); emo[a, 0] = 0.05; emo[a, 0, 4] = 0.7\n"
            "emo[b, 1] = 0.02; emo[b, 1, 2] = 0.88\n"
            "au = np.full((t.size, 2, len(A)), np.nan); au[a, 0] = 0.1; au[a, 0, A.index('AU04')] = 0.8\n"
            "au[b, 1] = 0.15; au[b, 1, A.index('AU12')] = 0.9; au[b, 1, A.index('AU06')] = 0.7\n"
            "score = np.where(np.isfinite(box[..., 0]), 0.95, np.nan)\n"
            "tree['face'] = xr.Dataset({'face_box': (('time', 'face', 'box_coord'), box),"
            " 'face_emotion': (('time', 'face', 'emotion'), emo, {'model': 'stand-in expression model'}),"
            " 'face_emotion_facs': (('time', 'face', 'emotion'), emo),"
            " 'face_score': (('time', 'face'), score),"
            " 'face_au': (('time', 'face', 'au'), au)},"
            " coords={'time': t, 'face': [0, 1], 'emotion': E, 'au': A, 'box_coord': ['x0', 'y0', 'x1', 'y1']})\n"
            f"ex = tree.emonb.explore(store={str(store)!r}, reviewer='dr_lee')\n"
            "ex")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    reason = lab_browser.skip_reason()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("lab")
    store = root / "reviews.sqlite"
    lab_browser.write_notebook(root, "workstation.ipynb", _source(store, root / "cache"))
    with lab_browser.jupyterlab(root, "workstation.ipynb") as server:
        yield {**server, "store": store, "root": root}


def _wait(page, js, arg=None, timeout=20_000):
    page.wait_for_function(js, arg=arg, timeout=timeout)


def test_workstation(lab):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=lab_browser.CHROMIUM, headless=True,
                                    args=lab_browser.CHROMIUM_ARGS + ["--autoplay-policy=no-user-gesture-required"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        try:
            page.goto(lab["url"])
            lab_browser.run_first_cell(page)
            page.wait_for_selector(".emonb-scrubber[data-frames-drawn]", timeout=90_000)
            page.wait_for_selector(".emonb-timelines[data-rendered^='vega 6'] svg", timeout=60_000)
            # the left sidebar closed, the cell's code collapsed: the explorer as a reviewer sees it
            page.keyboard.press("Control+b")
            page.add_style_tag(content=".Toastify { display: none !important; }")  # the "news?" toast
            page.click(".jp-Cell-inputCollapser") if page.locator(".jp-Cell-inputCollapser").count() else None
            page.wait_for_timeout(500)
            page.evaluate("() => document.querySelector('.emonb-explorer').scrollIntoView()")
            page.wait_for_timeout(300)
            page.screenshot(path=str(ARTIFACTS / "workstation.png"))
            # layout: video and AU panel side by side, the timelines below both, the form on screen
            r = page.evaluate("""() => { const b = (s) => document.querySelector(s).getBoundingClientRect();
                return {video: b('.emonb-video'), au: b('.emonb-au'), tl: b('.emonb-timelines'),
                        form: b('.emonb-ann-form'), grid: b('.emonb-explorer')}; }""")
            assert r["au"]["left"] >= r["video"]["right"] - 1 and abs(r["au"]["top"] - r["video"]["top"]) < 40
            assert r["tl"]["top"] >= max(r["video"]["bottom"], r["au"]["bottom"]) - 1
            assert r["tl"]["width"] > 0.9 * r["grid"]["width"]
            assert r["form"]["bottom"] <= 900, f"the annotation form is below the screen: {r['form']}"

            # the lit AU diagram: at 2 s face 0 frowns (AU04 lights the inner brows)
            page.evaluate(SLIDE, 2.0)
            page.wait_for_selector(".emonb-au[data-active='AU04']", timeout=20_000)
            fill = page.evaluate("() => getComputedStyle(document.querySelector("
                                 "\".emonb-au-face .region[data-region='brow_inner']\")).fill")
            off = page.evaluate("() => getComputedStyle(document.querySelector("
                                "\".emonb-au-face .region[data-region='chin']\")).fill")
            assert fill == "rgb(14, 165, 233)" and off != fill, (fill, off)

            # the same analysed frame for overlay and inspector; at 12 s face 1 is shown (auto), not "no face"
            page.evaluate(SLIDE, 12.0)
            _wait(page, "() => document.querySelector('.emonb-au').dataset.shown === 'face 1'")
            assert "fear" in page.inner_text(".emonb-au-reading")
            # the face selector: face 0 chosen, the panel says it is not in view and who is
            page.select_option(".emonb-face", "0")
            _wait(page, "() => /not in view/.test(document.querySelector('.emonb-au-reading').textContent)")
            assert "face 1" in page.inner_text(".emonb-au-reading")
            page.select_option(".emonb-face", "auto")
            _wait(page, "() => document.querySelector('.emonb-au').dataset.shown === 'face 1'")

            # no line across the gap (8-10 s): the face-emotion lines are broken paths (two "M" moves)
            page.wait_for_selector(".emonb-timelines[data-rendered^='vega 6'] svg", timeout=60_000)
            moves = page.evaluate("""() => Array.from(document.querySelectorAll(
                '.emonb-timelines g.concat_0_group g.mark-line path')).map((p) => (p.getAttribute('d').match(/M/g) || []).length)""")
            assert moves and min(moves) >= 2, moves

            # sound in sync during play: the audio element's time within 0.1 s of the frame's
            page.evaluate(SLIDE, 3.5)
            _wait(page, "() => Math.abs(+document.querySelector('.emonb-scrubber').dataset.frameTime - 3.5) < 0.1")
            page.click(".emonb-play")
            _wait(page, "() => document.querySelector('.emonb-scrubber').dataset.audioTime !== undefined", timeout=10_000)
            # at every new frame drawn while the sound plays: where the sound is, and the frame's time
            gaps = page.evaluate("""() => new Promise((resolve) => {
                const root = document.querySelector('.emonb-scrubber');
                const a = document.querySelector('.emonb-audio');
                const out = [];
                let last = null;  // each new frame (a sharper copy of the frame on screen is not a new one)
                const on = (e) => { if (!a.paused && e.detail.time !== last) out.push([+a.dataset.t0 + a.currentTime, e.detail.time]);
                                    last = e.detail.time; };
                root.addEventListener('emonb-frame', on);
                setTimeout(() => { root.removeEventListener('emonb-frame', on); resolve(out); }, 1500);
            })""")
            page.click(".emonb-play")
            during = [(a, f) for a, f in gaps if f < 6.8][2:]  # (the first two: the sound starting)
            assert len(during) >= 10, gaps  # it played, with the sound, frame after frame
            off = sorted(abs(a - f) for a, f in during)
            print(f"\nsound vs picture at each frame drawn: median {off[len(off) // 2]:.3f} s, max {off[-1]:.3f} s"
                  f" over {len(off)} frames; in time order: {[round(a - f, 3) for a, f in during]}")
            # in sync: 95% of the frames within 0.1 s of the sound; on a loaded CI machine a single frame
            # can arrive a little late (0.13 s seen once), so the worst case is bounded at 0.25 s
            assert off[int(0.95 * (len(off) - 1))] < 0.1 and off[-1] < 0.25, during
            assert during[-1][0] > during[0][0] + 0.5

            # shortcuts from anywhere inside the explorer: focus an AU bar, mark in and out with the
            # keys, press 3 (fear): the annotation is added and appears on the reviewer's tier at once
            page.evaluate(SLIDE, 11.0)
            _wait(page, "() => Math.abs(+document.querySelector('.emonb-scrubber').dataset.currentTime - 11) < 0.05")
            page.focus(".emonb-au-bar[data-au='AU12']")
            page.keyboard.press("i")
            page.evaluate(SLIDE, 12.5)
            _wait(page, "() => Math.abs(+document.querySelector('.emonb-scrubber').dataset.currentTime - 12.5) < 0.05")
            page.focus(".emonb-scrubber-canvas") if page.locator(".emonb-scrubber-canvas").get_attribute("tabindex") else \
                page.focus(".emonb-ann-table")
            page.keyboard.press("o")
            _wait(page, "() => document.querySelector('.emonb-annotator').dataset.range !== ''")
            page.keyboard.press("3")
            page.wait_for_selector(".emonb-annotator[data-count='1']", timeout=20_000)
            _wait(page, "() => JSON.parse(document.querySelector('.emonb-timelines').dataset.tiers || '{}').dr_lee === 1")
            # the tier's row draws the new interval (a rect mark in the last row)
            n_rows = page.evaluate("() => document.querySelectorAll('.emonb-timelines g[class*=concat_][class$=_group]').length")
            _wait(page, f"() => document.querySelectorAll('.emonb-timelines g.concat_{n_rows - 1}_group g.mark-rect path').length >= 1")
            # undo (ctrl+z, focus on the timelines): the annotation goes, from the table and the tier
            page.mouse.move(10, 10)
            page.focus(".emonb-scrubber")
            page.keyboard.press("Control+z")
            page.wait_for_selector(".emonb-annotator[data-count='0']", timeout=20_000)
            _wait(page, "() => JSON.parse(document.querySelector('.emonb-timelines').dataset.tiers).dr_lee === 0")
            # zoom with the key, pan by dragging the plot, back to the whole session with 0
            page.keyboard.press("+")
            _wait(page, "() => { const v = (document.querySelector('.emonb-timelines').dataset.view || '').split(',');"
                        " return v.length === 2 && +v[1] - +v[0] < 10.5; }")
            v0 = [float(x) for x in page.get_attribute(".emonb-timelines", "data-view").split(",")]
            plot = page.locator(".emonb-timelines g.concat_0_group > g > path.background").first
            box = plot.bounding_box()
            y = box["y"] + box["height"] / 2
            page.mouse.move(box["x"] + box["width"] * 0.6, y)
            page.mouse.down()
            page.mouse.move(box["x"] + box["width"] * 0.4, y, steps=4)
            page.mouse.up()
            _wait(page, "(a) => +document.querySelector('.emonb-timelines').dataset.view.split(',')[0] > a + 1",
                  arg=v0[0])
            page.focus(".emonb-scrubber")
            page.keyboard.press("0")
            _wait(page, "() => { const v = document.querySelector('.emonb-timelines').dataset.view.split(',');"
                        " return Math.abs(+v[0]) < 1e-6 && +v[1] > 19; }")
            # short row titles, the model strings in their tooltips
            tips = page.evaluate("() => Array.from(document.querySelectorAll('.emonb-timelines g.role-title text title'))"
                                 ".map((t) => t.textContent)")
            assert "face · emotion: stand-in expression model" in tips, tips
            # the shortcut sheet
            page.keyboard.press("?")
            assert page.is_visible(".emonb-keys")
            page.screenshot(path=str(ARTIFACTS / "workstation_keys.png"))
            page.keyboard.press("?")
            # the AU panel's second tab: the selected AU over time and the AU x time heatmap, with AU
            # names and a time axis drawn on the canvases
            page.click(".emonb-au-tab:nth-child(2)")
            page.wait_for_timeout(300)
            assert page.is_visible(".emonb-au-heatmap") and "AU12" in page.inner_text(".emonb-au-ptitle")
            page.screenshot(path=str(ARTIFACTS / "workstation_au_time.png"))
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "workstation_failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    import sqlite3

    con = sqlite3.connect(lab["store"])
    rows = con.execute("SELECT label, onset, duration, deleted, intensity FROM annotations").fetchall()
    assert len(rows) == 1 and rows[0][0] == "fear" and rows[0][3] == 1 and rows[0][4] is None
    assert abs(rows[0][1] - 11.0) < 0.05 and abs(rows[0][1] + rows[0][2] - 12.5) < 0.1
    assert [a for (a,) in con.execute("SELECT action FROM history")] == ["insert", "delete"]
