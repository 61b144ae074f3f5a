"""YUV -> RGB: OpenCV's I420 conversion where it gives FFmpeg's colours, FFmpeg's scaler elsewhere."""

from __future__ import annotations

import numpy as np
import pytest

import emonb as eb
from emonb.io import _yuv
from emonb.io.video import VideoReader
from conftest import write_video

av = pytest.importorskip("av")


def _scene(h=72, w=96, seed=0):
    """Colour gradients with two flat colour patches."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) * 255 // (w + h - 2)], axis=2)
    img[h // 3: h // 2, w // 4: w // 2] = (230, 20, 40)
    img[h // 2:, w // 2:] = (20, 200, 60)
    return np.ascontiguousarray(img.astype(np.uint8))


def _frame(rgb, colorspace=6, color_range=1, fmt="yuv420p"):
    fr = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=fmt)
    fr.colorspace, fr.color_range = colorspace, color_range
    return fr


def _exact_bt601(fr) -> np.ndarray:
    """The BT.601 limited-range formula in floating point, each colour sample on its 2x2 pixels."""
    h, w = fr.height, fr.width
    planes = fr.to_ndarray(format="yuv420p").astype(float)
    y = (planes[:h] - 16) * 255 / 219
    u, v = (np.kron(p.reshape(h // 2, w // 2), np.ones((2, 2))) for p in (planes[h:h + h // 4], planes[h + h // 4:]))
    u, v = (u - 128) * 255 / 224, (v - 128) * 255 / 224
    rgb = np.stack([y + 1.402 * v, y - 0.344136 * u - 0.714136 * v, y + 1.772 * u], axis=2)
    return np.clip(rgb, 0, 255)


@pytest.mark.parametrize("colorspace", [2, 5, 6])
def test_bt601_and_untagged_frames_take_the_fast_path_and_are_exact(colorspace):
    fr = _frame(_scene(), colorspace=colorspace)
    assert _yuv.fast_path(fr)
    fast, ref = _yuv.frame_to_rgb(fr), fr.to_ndarray(format="rgb24")
    assert fast.shape == ref.shape == (72, 96, 3) and fast.dtype == np.uint8
    exact = _exact_bt601(fr)
    # OpenCV rounds the formula; FFmpeg's scaler is about a level darker on average
    assert np.abs(fast - exact).mean() < 0.5 and np.abs(fast - exact).max() < 1.5
    assert np.abs(ref - exact).mean() > np.abs(fast - exact).mean()
    assert np.abs(fast.astype(int) - ref).mean() < 2.0


@pytest.mark.parametrize("case", ["bt709", "full-range", "odd-size", "yuv444p", "switched-off"])
def test_other_frames_go_through_ffmpeg_exactly(case, monkeypatch):
    rgb = _scene(h=73, w=95) if case == "odd-size" else _scene()
    kw = {"bt709": {"colorspace": 1}, "full-range": {"color_range": 2}, "yuv444p": {"fmt": "yuv444p"}}.get(case, {})
    fr = _frame(rgb, **kw)
    if case == "switched-off":
        monkeypatch.setattr(_yuv, "FAST_I420", False)
    assert not _yuv.fast_path(fr)
    np.testing.assert_array_equal(_yuv.frame_to_rgb(fr), fr.to_ndarray(format="rgb24"))


def test_bt709_is_not_read_with_the_bt601_matrix():
    """The reason for the fallback: the same planes read as BT.601 are visibly off."""
    fr = _frame(_scene(), colorspace=1)
    as709 = fr.to_ndarray(format="rgb24").astype(int)
    fr.colorspace = 6
    as601 = fr.to_ndarray(format="rgb24").astype(int)
    assert np.abs(as709 - as601).max() >= 8


def test_video_reader_frames_are_owned_and_match_ffmpeg(tmp_path, monkeypatch):
    scene = _scene(h=48, w=64)
    path = write_video(tmp_path / "c.mp4", n=6, size=(64, 48), frame_fn=lambda i, t: scene)
    fast = [f.copy() for _, _, fr in VideoReader(path).iter_chunks(4) for f in fr]
    fast_one = VideoReader(path).frame_at(0)
    monkeypatch.setattr(_yuv, "FAST_I420", False)
    slow = [f for _, _, fr in VideoReader(path).iter_chunks(4) for f in fr]
    assert len(fast) == len(slow) == 6
    for a, b in zip(fast, slow):
        assert np.abs(a.astype(int) - b).mean() < 1.5
    np.testing.assert_array_equal(fast_one, fast[0])
    assert fast_one.flags.writeable and fast_one.flags.c_contiguous
    # the picture is the scene the file holds (H.264 at crf 10 and 4:2:0 colour)
    assert np.abs(fast[0].astype(int) - scene).mean() < 4


def test_a_real_clip_is_closer_to_the_formula_than_ffmpegs_scaler(shared_data):
    fr = next(av.open(str(shared_data / "video" / "WolfgangLanger_Pexels.mp4")).decode(video=0))
    assert _yuv.fast_path(fr)
    exact = _exact_bt601(fr)
    fast_err = np.abs(_yuv.frame_to_rgb(fr) - exact).mean()
    ffmpeg_err = np.abs(fr.to_ndarray(format="rgb24") - exact).mean()
    assert fast_err < 0.3 < 1.0 < ffmpeg_err, (fast_err, ffmpeg_err)


def test_a_single_decoder_thread_gives_the_same_frames(tmp_path):
    path = write_video(tmp_path / "d.mp4", n=20, size=(64, 48))
    reader = VideoReader(path)
    auto = [(t, i, f) for t, i, f in reader.iter_chunks(6, start=0.2)]
    one = [(t, i, f) for t, i, f in reader.iter_chunks(6, start=0.2, decoder_threads=1)]
    assert len(auto) == len(one) == 3
    for (ta, ia, fa), (tb, ib, fb) in zip(auto, one):
        np.testing.assert_array_equal(ia, ib)
        np.testing.assert_array_equal(fa, fb)
