"""Shared fixtures: the real-data folder (skips when absent) and generators of small real files."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` next to the repository; tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real recordings not available ({SHARED_DATA} is absent)")
    return SHARED_DATA


def write_video(path, *, times=None, n=30, fps=30, size=(64, 48), rotation=0, values=None,
                codec="libx264", frame_fn=None, container_options=None):
    """Write a small real video file with PyAV.

    Each frame is a flat gray level (``values[i]``, default the frame index scaled) with a white
    square in its top-left corner (to check rotation). ``times`` (seconds) gives each frame's PTS,
    so variable frame rates can be written. ``container_options`` go to the muxer (e.g.
    ``{"movflags": "faststart"}`` puts an MP4's index before its data).
    """
    import av

    w, h = size
    if times is None:
        times = np.arange(n) / fps
    times = np.asarray(times, float)
    if values is None:
        values = np.linspace(10, 240, times.size)
    out = av.open(str(path), "w", options=container_options or {})
    s = out.add_stream(codec, rate=fps)
    s.width, s.height, s.pix_fmt = w, h, "yuv420p"
    tb = Fraction(1, 1000)
    s.time_base = tb
    s.codec_context.time_base = tb
    if codec == "libx264":
        s.options = {"crf": "10", "bf": "0"}
    if rotation:
        s.set_display_rotation(rotation)
    for i, t in enumerate(times):
        if frame_fn is not None:
            img = frame_fn(i, t)
        else:
            img = np.full((h, w, 3), int(values[i]), np.uint8)
            img[: h // 4, : w // 4] = 255
        fr = av.VideoFrame.from_ndarray(img, format="rgb24")
        fr.pts = int(round(t * 1000))
        fr.time_base = tb
        for p in s.encode(fr):
            out.mux(p)
    for p in s.encode():
        out.mux(p)
    out.close()
    return Path(path)


def write_audio(path, x, sr, *, codec=None):
    """Write mono or (channels, n) float audio to any format PyAV writes."""
    import av

    x = np.atleast_2d(np.asarray(x, np.float32))
    ext = Path(path).suffix.lower()
    codec = codec or {".wav": "pcm_s16le", ".flac": "flac", ".mp3": "libmp3lame", ".m4a": "aac",
                      ".ogg": "libvorbis"}[ext]
    out = av.open(str(path), "w")
    layout = "mono" if x.shape[0] == 1 else "stereo"
    s = out.add_stream(codec, rate=sr, layout=layout)
    fmt = s.codec_context.format.name if s.codec_context.format else "fltp"
    frame_size = s.codec_context.frame_size or 1024
    pts = 0
    for i in range(0, x.shape[1], frame_size):
        chunk = x[:, i:i + frame_size]
        fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout=layout)
        fr.sample_rate = sr
        fr.pts = pts
        pts += chunk.shape[1]
        if fmt != "fltp":
            rs = av.AudioResampler(format=fmt, layout=layout, rate=sr)
            frames = rs.resample(fr)
        else:
            frames = [fr]
        for f in frames:
            for p in s.encode(f):
                out.mux(p)
    for p in s.encode():
        out.mux(p)
    out.close()
    return Path(path)
