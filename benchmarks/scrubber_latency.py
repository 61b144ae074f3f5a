"""Time from a slider move to the new frame drawn, in a real JupyterLab in headless chromium.

Starts JupyterLab on localhost, opens a notebook showing ``eb.widgets.explore`` (scrubber, AU inspector
and annotator, linked) on the embedded sample session (640x360, 23.976 fps), and moves the slider the
way a reviewer does, waiting for each frame to be drawn before the next move:

- ``frame steps``: one frame forward at a time (dragging slowly, stepping through an expression);
- ``0.7 s moves``: 25 moves of about 0.7 s forward (the browser test's pattern; dragging quickly);
- ``jumps``: random positions anywhere in the clip (clicking on the slider or a timeline): the
  first picture drawn (the all-intra proxy frame, :mod:`emonb.widgets.proxy`, when it is built)
  and, as ``jumps, full frame``, the full-resolution frame that follows it;
- ``ping``: a message to the kernel and back, without a frame (the transport alone);
- ``drag``: slider input events every 1/60 s at 1x and 4x real time, not waiting for frames (a
  mouse drag): for each input event needing a new frame, the time until the picture catches up
  with it (a frame at or past its time drawn), and the frames drawn per second.

Per pattern it prints the median and 95th percentile of slider input -> frame drawn on the canvas,
the median time to the browser's next paint after that, how many frames came from the browser's
own cache (frames the kernel sent ahead), and for the others the median of their parts:
``roundtrip`` (request sent -> reply in the browser), ``server`` (kernel time for the frame) and
``decode`` (reply -> JPEG decoded).

Usage::

    python benchmarks/scrubber_latency.py
    python benchmarks/scrubber_latency.py --alone        # the Scrubber without linked widgets
    python benchmarks/scrubber_latency.py --option prefetch=0 --option browser_cache=0
    python benchmarks/scrubber_latency.py --option proxy=False   # jumps without the video proxy
    # without emonb's Jupyter server extension (Nagle's delay back on the kernel websocket):
    EMONB_LAB_ARGS="--ServerApp.jpserver_extensions={'emonb.jupyter_server_extension':False}" \
        python benchmarks/scrubber_latency.py
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import lab_browser


def _source(alone: bool, options: dict, store: Path) -> str:
    opts = "".join(f", {k}={v!r}" for k, v in options.items())
    if alone:
        return f"import emonb as eb\ntree = eb.sample_session()\nw = eb.widgets.Scrubber(tree{opts})\nw"
    return ("import emonb as eb\ntree = eb.sample_session()\n"
            f"w = eb.widgets.explore(tree, store={str(store)!r}, reviewer='bench'{opts})\nw")


# The moves run inside the page (no driver round trip or polling while they are timed): set the
# slider, wait for the scrubber's "emonb-frame" event, pause as a reviewer would, go on.
MOVES = """async ([times, pause]) => {
    const root = document.querySelector('.emonb-scrubber');
    const slider = root.querySelector('.emonb-slider');
    window.__emonbLatencies = []; window.__emonbTimings = []; window.__emonbFullLatencies = [];
    for (const t of times) {
        const drawn = new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`no frame drawn for t=${t}`)), 20000);
            root.addEventListener('emonb-frame', () => { clearTimeout(timer); resolve(); }, { once: true });
        });
        slider.value = String(t);
        slider.dispatchEvent(new Event('input', { bubbles: true }));
        await drawn;
        await new Promise((r) => setTimeout(r, pause));
    }
    await new Promise((r) => setTimeout(r, 300));
    return [window.__emonbLatencies, window.__emonbTimings, window.__emonbFullLatencies];
}"""


def _moves(page, times, pause_ms: float = 40.0) -> tuple[np.ndarray, list[dict]]:
    lat, parts, full = page.evaluate(MOVES, [[float(t) for t in times], pause_ms])
    _moves.full = np.array(full)
    return np.array(lat), parts


# A drag: slider input events every 1/60 s moving at `speed` x real time, without waiting for frames
# (as a mouse drag does); every frame drawn is recorded with its time.
DRAG = """async ([t0, seconds, speed]) => {
    const root = document.querySelector('.emonb-scrubber');
    const slider = root.querySelector('.emonb-slider');
    const inputs = [], draws = [];
    const onFrame = (e) => draws.push([performance.now(), e.detail.time]);
    root.addEventListener('emonb-frame', onFrame);
    const start = performance.now();
    for (;;) {
        const now = performance.now();
        const elapsed = (now - start) / 1000;
        if (elapsed > seconds) break;
        const t = t0 + speed * elapsed;
        slider.value = String(t);
        const at = performance.now();  // before the event: a frame from the cache is drawn inside it
        slider.dispatchEvent(new Event('input', { bubbles: true }));
        inputs.push([at, +root.dataset.currentTime]);
        await new Promise((r) => setTimeout(r, 1000 / 60));
    }
    await new Promise((r) => setTimeout(r, 500));
    root.removeEventListener('emonb-frame', onFrame);
    return [inputs, draws];
}"""


def _drag(page, frame_times: np.ndarray, t0: float, seconds: float, speed: float) -> str:
    """For each slider input event that needs a frame other than the one on screen: the time until
    the picture catches up (a frame at or past that input's frame is drawn)."""
    inputs, draws = page.evaluate(DRAG, [t0, seconds, speed])
    draws = np.array(draws) if draws else np.zeros((0, 2))
    lat, needed = [], 0
    for wall, t in inputs:
        frame = frame_times[max(np.searchsorted(frame_times, t + 1e-9, side="right") - 1, 0)]
        before = draws[draws[:, 0] < wall]
        if before.size and abs(before[-1, 1] - frame) < 1e-6:
            continue  # that frame is already on screen
        needed += 1
        hit = np.flatnonzero((draws[:, 0] >= wall) & (draws[:, 1] >= frame - 1e-6))
        if hit.size:
            lat.append(draws[hit[0], 0] - wall)
    lat = np.array(lat) if lat else np.array([np.nan])
    fps = len(draws) / seconds
    return (f"drag {speed:g}x     median {np.median(lat):6.1f} ms   p95 {np.percentile(lat, 95):6.1f} ms   "
            f"(n={needed} input events needing a new frame of {len(inputs)}; {fps:.0f} frames drawn/s)")


def _line(name: str, lat: np.ndarray, parts: list[dict]) -> str:
    text = f"{name:<12} median {np.median(lat):6.1f} ms   p95 {np.percentile(lat, 95):6.1f} ms   (n={lat.size})"
    if not parts:
        return text
    painted = [d["painted"] for d in parts if "painted" in d]
    if painted:
        text += f"   next paint {np.median(painted):.1f}"
    hits = [d for d in parts if d.get("cached")]
    text += f"   from browser cache {len(hits)}/{len(parts)}"
    proxies = [d for d in parts if d.get("proxy")]
    if proxies:
        text += f", proxy frames {len(proxies)}"
    misses = [d for d in parts if not d.get("cached")]
    if misses:
        text += "; misses: " + ", ".join(f"{k} {np.median([d[k] for d in misses]):.1f}"
                                         for k in ("roundtrip", "server", "decode"))
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alone", action="store_true", help="the Scrubber alone instead of explore()")
    ap.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                    help="a Scrubber option, e.g. prefetch=0 (repeatable)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    reason = lab_browser.skip_reason()
    if reason:
        sys.exit(f"cannot run: {reason}")
    options = {}
    for item in args.option:
        name, _, value = item.partition("=")
        options[name] = ast.literal_eval(value)
    from playwright.sync_api import sync_playwright

    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        lab_browser.write_notebook(root, "bench.ipynb", f"import os; os.environ['EMONB_CACHE_DIR'] = {str(root / 'cache')!r}\n"
                                   + _source(args.alone, options, root / "reviews.sqlite"))
        with lab_browser.jupyterlab(root, "bench.ipynb") as lab, sync_playwright() as p:
            browser = lab_browser.launch(p)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(lab["url"])
            lab_browser.run_first_cell(page)
            page.wait_for_selector(".emonb-scrubber[data-frames-drawn]", timeout=90_000)
            page.wait_for_timeout(1500)  # let the page settle (timelines drawn)
            if options.get("proxy", True):  # the proxy is built (--option proxy=False: jumps without it)
                page.wait_for_selector(".emonb-scrubber[data-proxy-ready='1']", timeout=120_000)
            fps = float(page.evaluate("() => 1 / +document.querySelector('.emonb-slider').step"))
            print(f"{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}; "
                  f"{'Scrubber alone' if args.alone else 'explore()'}; options {options or 'default'}")
            pings = [page.evaluate("() => document.querySelector('.emonb-scrubber').emonbPing()")
                     for _ in range(30)]
            print(_line("ping", np.array(pings), []))
            start = 0.5
            steps = start + np.arange(1, 41) / fps
            print(_line("frame steps", *_moves(page, steps)))
            print(_line("0.7 s moves", *_moves(page, np.linspace(1.0, 18.0, 25))))
            # clicks 40 ms after the last frame was drawn, then a reviewer who clicks somewhere and
            # looks before the next click (the full frame and read-ahead of the last jump are done)
            for label, pause in (("jumps", 40.0), ("jumps 0.5 s apart", 500.0)):
                print(_line(label, *_moves(page, rng.uniform(0.0, 19.0, 30), pause_ms=pause)))
                if _moves.full.size:
                    print(_line(f"{label}, full frame", _moves.full, []))
            import emonb as eb

            frame_times = eb.sample_session()["video"]["time"].to_numpy().astype(float)
            print(_drag(page, frame_times, 1.0, 3.0, 1.0))
            print(_drag(page, frame_times, 5.0, 3.0, 4.0))
            browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
