"""Browser test: a real JupyterLab, driven by Debian's chromium through Playwright.

Opens a notebook, runs it, checks that a frame is drawn, moves the slider (and measures the time from
the slider move to the new frame drawn), checks the Altair timelines (rendered by the vendored Vega,
cursor following ``current_time``, a click seeks, shift-drag selects a range), marks a range and adds
an annotation with mouse and keyboard, and checks that it landed in the SQLite file. Every request
the page makes must stay on localhost (no CDN). A screenshot is saved under ``tests/artifacts/``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = os.environ.get("EMONB_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _skip_reason():
    if not Path(CHROMIUM).exists():
        return f"chromium not found at {CHROMIUM} (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright python package is not installed"
    if shutil.which("jupyter") is None:
        return "jupyter is not installed"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _notebook(store: Path) -> dict:
    src = ("import emonb as eb, numpy as np, xarray as xr\n"
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
    return {"cells": [{"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {}, "outputs": [],
                       "source": src}],
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("lab")
    store = root / "reviews.sqlite"
    (root / "review.ipynb").write_text(json.dumps(_notebook(store)))
    port, token = _free_port(), "emonbtest"
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(root / ".jupyter"), "JUPYTER_RUNTIME_DIR": str(root / ".rt")}
    if sys.prefix != sys.base_prefix:  # a venv over system packages: the lab extensions live in the base prefix
        env["JUPYTER_PATH"] = os.pathsep.join(p for p in (os.environ.get("JUPYTER_PATH"),
                                                          str(Path(sys.base_prefix) / "share" / "jupyter")) if p)
    log = open(root / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        + (["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.terminate()
        pytest.fail("JupyterLab did not start: " + (root / "lab.log").read_text()[-2000:])
    yield {"url": f"{base}/lab/tree/review.ipynb?token={token}", "store": store, "root": root, "base": base}
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


def _run_first_cell(page, tries: int = 4):
    """Run the first cell with Shift+Enter once the kernel is idle; retry when the run was dropped
    (a kernel still connecting on a busy machine ignores the request)."""
    prompt = ".jp-Notebook .jp-Cell:first-child .jp-InputPrompt"
    for _ in range(tries):
        page.wait_for_function(
            "() => /Idle/.test(document.querySelector('.jp-StatusBar-Widget, #jp-main-statusbar')?.textContent"
            " || document.body.textContent)", timeout=90_000)
        page.click(".jp-Notebook .jp-Cell:first-child .jp-InputArea-editor")
        page.keyboard.press("Shift+Enter")
        try:
            page.wait_for_function(f"() => !/\\[ \\]/.test(document.querySelector('{prompt}').textContent)",
                                   timeout=20_000)
            return
        except Exception:
            continue
    raise AssertionError("the notebook cell never ran (kernel did not accept the execution)")


def test_notebook_scrub_and_annotate(lab):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        # nothing may leave localhost: every request and websocket is recorded
        local = (lab["base"], lab["base"].replace("http://", "ws://"), "data:", "blob:")
        remote = []
        page.on("request", lambda r: None if r.url.startswith(local) else remote.append(r.url))
        page.on("websocket", lambda w: None if w.url.startswith(local) else remote.append(w.url))
        try:
            page.goto(lab["url"])
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
            _run_first_cell(page)
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
            # move the slider several times and time slider-move -> frame drawn
            page.evaluate("() => { window.__emonbLatencies = []; }")
            targets = np.linspace(1.0, 18.0, 25)
            for i, t in enumerate(targets):
                before = int(scrub.get_attribute("data-frames-drawn"))
                page.evaluate("""(t) => { const s = document.querySelector('.emonb-slider');
                    s.value = String(t); s.dispatchEvent(new Event('input', {bubbles: true})); }""", float(t))
                page.wait_for_function(
                    "(n) => +document.querySelector('.emonb-scrubber').dataset.framesDrawn > n", arg=before,
                    timeout=20_000)
            frame_time = float(scrub.get_attribute("data-frame-time"))
            assert abs(frame_time - targets[-1]) < 0.1
            lat = np.array(page.evaluate("() => window.__emonbLatencies"))
            assert lat.size >= 20
            print(f"\nslider -> frame drawn: median {np.median(lat):.1f} ms, "
                  f"p95 {np.percentile(lat, 95):.1f} ms over {lat.size} moves (640x360 sample clip)")
            parts = page.evaluate("() => window.__emonbTimings || []")
            for key in ("queued", "roundtrip", "server", "draw"):
                print(f"  {key}: median {np.median([d[key] for d in parts]):.1f} ms")
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
                page.evaluate("""(t) => { const s = document.querySelector('.emonb-slider');
                    s.value = String(t); s.dispatchEvent(new Event('input', {bubbles: true})); }""", t)
            seek(2.0)
            page.wait_for_function("() => document.querySelector('.emonb-ann-now').textContent.includes('2.00')")
            page.click(".emonb-mark-in")
            seek(3.5)
            page.wait_for_function("() => document.querySelector('.emonb-ann-now').textContent.includes('3.50')")
            page.focus(".emonb-annotator")
            page.keyboard.press("o")
            page.wait_for_function("() => document.querySelector('.emonb-ann-range').textContent.includes('3.50')")
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
                "() => { const m = document.querySelector('.emonb-ann-range').textContent.match(/([\\d.]+) s → ([\\d.]+) s/);"
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
    con = sqlite3.connect(lab["store"])
    rows = con.execute("SELECT reviewer, label, onset, duration, note, session FROM annotations").fetchall()
    assert len(rows) == 1
    reviewer, label, onset, duration, note, session = rows[0]
    assert (reviewer, label, note, session) == ("browser_test", "surprise", "raised brows, from the browser", "sample")
    assert onset == pytest.approx(2.0, abs=0.05) and onset + duration == pytest.approx(3.5, abs=0.05)
    assert con.execute("SELECT action FROM history").fetchall() == [("insert",)]
