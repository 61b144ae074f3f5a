"""JavaScript unit tests of the scrubber's front-end logic, in Debian's chromium through Playwright.

``widgets/scrubber.js`` is imported as an ES module into a page served (by Playwright, no network)
from http://localhost, a secure context like JupyterLab's, so WebCodecs' ImageDecoder is there. Tested:
the frame position rule (against the Python one), the LRU frame cache, which frames to ask for ahead
(batches, a steady drag's prediction), raw RGB frames and JPEG decoding.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import lab_browser
import numpy as np
import pytest

pytestmark = [pytest.mark.browser]

SCRUBBER_JS = Path(__file__).resolve().parents[1] / "widgets" / "scrubber.js"


@pytest.fixture(scope="module")
def page():
    reason = lab_browser.skip_reason()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = lab_browser.launch(p)
        pg = browser.new_page()
        pg.route("http://localhost/**", lambda route: route.fulfill(
            status=200, content_type="text/html", body="<!doctype html><title>emonb</title>"))
        pg.goto("http://localhost/test.html")
        pg.evaluate("""async (src) => {
            const url = URL.createObjectURL(new Blob([src], { type: "text/javascript" }));
            window.S = await import(url);
        }""", SCRUBBER_JS.read_text())
        yield pg
        browser.close()


def test_frame_position_matches_python(page):
    from emonb.widgets.scrubber import Scrubber

    times = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4])  # variable frame rate
    probe = np.concatenate([times, times - 1e-12, times + 1e-12, np.random.default_rng(0).uniform(-1, 2, 300)])
    js = page.evaluate("([times, ts]) => ts.map((t) => S.framePosition(Float64Array.from(times), t))",
                       [times.tolist(), probe.tolist()])
    ref = Scrubber.__new__(Scrubber)
    ref._times = times
    assert js == [ref.frame_position(t) for t in probe]
    assert page.evaluate("() => S.framePosition(new Float64Array(0), 1)") == -1


def test_frame_cache_is_lru_and_frees_what_it_drops(page):
    out = page.evaluate("""() => {
        const freed = [];
        const c = new S.FrameCache(3, (e) => freed.push(e.id));
        for (const i of [1, 2, 3]) c.set(i, { id: i });
        c.get(1);                      // 1 is now the most recent
        c.set(4, { id: 4 });           // drops 2, the least recently used
        const after4 = [...c.map.keys()];
        c.set(4, { id: 40 });          // replacing an entry frees the old one
        const has = [c.has(1), c.has(2), c.get(9) === undefined, c.size];
        c.clear();
        const none = new S.FrameCache(0, (e) => freed.push(e.id));
        none.set(7, { id: 7 });        // capacity 0 keeps nothing
        return { freed, after4, has, size: c.size, noneSize: none.size };
    }""")
    assert out["after4"] == [3, 1, 4]
    assert out["has"] == [True, False, True, 3]
    assert out["freed"][:2] == [2, 4] and sorted(out["freed"][2:5]) == [1, 3, 40] and out["freed"][5] == 7
    assert out["size"] == 0 and out["noneSize"] == 0


def test_ahead_wanted_batches_and_predicts_a_drag(page):
    out = page.evaluate("""() => {
        const A = (pos, n, count, cached, inflight, d = 0, pd = 0) =>
            S.aheadWanted(pos, n, count, (p) => cached.includes(p), new Set(inflight), d, pd);
        const range = (a, b) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
        return {
            empty: A(10, 100, 12, [], []),
            quarter: A(10, 100, 12, range(11, 19), []),          // 3 missing of 12: a batch
            few: A(10, 100, 12, range(11, 20), []),              // 2 missing, next one cached: wait
            nextMissing: A(10, 100, 12, range(12, 22), []),      // the next frame is always urgent
            inflight: A(10, 100, 12, [], range(11, 22)),         // all on their way
            end: A(95, 100, 12, [], []),
            drag: A(40, 100, 12, [], [], 17, 17),                // steady drag: where it lands, first
            dragBack: A(40, 100, 12, [], [], -17, -16),
            slowDrag: A(40, 100, 12, [], [], 3, 3),              // small moves keep the window too
            unsteady: A(40, 100, 12, [], [], 17, -5),
        };
    }""")
    assert out["empty"] == list(range(11, 23))
    assert out["quarter"] == [20, 21, 22] and out["few"] == [] and out["nextMissing"] == [11]
    assert out["inflight"] == [] and out["end"] == [96, 97, 98, 99]
    assert out["drag"] == [57, 58, 56, 59, 55]
    assert out["dragBack"] == [23, 24, 22, 25, 21]
    assert out["slowDrag"][:5] == [43, 44, 42, 45, 41] and out["slowDrag"][5:] == [46, 47, 48, 49, 50, 51, 52]
    assert out["unsteady"] == list(range(41, 53))


def test_rgb_frames_and_jpeg_decoding(page):
    from PIL import Image

    out = page.evaluate("""() => {
        const img = S.rgbImage(new DataView(new Uint8Array([10, 20, 30, 200, 100, 0]).buffer), 2, 1);
        let error = null;
        try { S.rgbImage(new Uint8Array(5).buffer, 2, 1); } catch (e) { error = e.message; }
        return { data: Array.from(img.data), w: img.width, h: img.height, error };
    }""")
    assert out["data"] == [10, 20, 30, 255, 200, 100, 0, 255] and (out["w"], out["h"]) == (2, 1)
    assert "expected 6" in out["error"]
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 90)).save(buf, format="JPEG", quality=90)
    px = page.evaluate("""async (b64) => {
        const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const frame = await S.decodeJpeg(new DataView(bytes.buffer));
        const c = document.createElement("canvas"); c.width = 64; c.height = 48;
        const ctx = c.getContext("2d");
        ctx.drawImage(frame, 0, 0);
        frame.close();
        return [typeof ImageDecoder, Array.from(ctx.getImageData(32, 24, 1, 1).data)];
    }""", base64.b64encode(buf.getvalue()).decode())
    kind, rgba = px
    assert kind == "function"  # the WebCodecs path, as in JupyterLab (localhost is a secure context)
    assert np.allclose(rgba[:3], [200, 40, 90], atol=6) and rgba[3] == 255
