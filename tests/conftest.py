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


def harmonic(f0, dur, sr=16000, amp=0.3, n_harm=8, syll_rate=0.0, seed=0):
    """A voiced, speech-like harmonic complex (1/k spectrum) with optional syllable-rate AM; float32."""
    t = np.arange(int(dur * sr)) / sr
    f = np.full_like(t, f0) if np.isscalar(f0) else np.interp(t, np.linspace(0, dur, len(f0)), f0)
    phase = 2 * np.pi * np.cumsum(f) / sr
    y = sum(np.sin(k * phase) / k for k in range(1, n_harm + 1))
    if syll_rate:
        y *= 0.55 + 0.45 * np.sin(2 * np.pi * syll_rate * t)
    y += 0.002 * np.random.default_rng(seed).standard_normal(len(t))
    return (amp * y / np.max(np.abs(y))).astype(np.float32)


def write_two_people_video(video_dir, path):
    """One person 0-3 s (WolfgangLanger_Pexels.mp4 0-3 s), another 3-5.4 s (single_face.mp4), the first
    again (her 10-12 s): real clips re-encoded at 24 fps, 640x360. Returns ``path``."""
    from emonb.io.video import video_reader

    a, b = video_reader(video_dir / "WolfgangLanger_Pexels.mp4"), video_reader(video_dir / "single_face.mp4")

    def frames(r, s, e):
        return [fr for _, _, chunk in r.iter_chunks(16, start=s, end=e) for fr in chunk]

    allf = frames(a, 0, 3.0) + frames(b, 0, 2.4) + frames(a, 10, 12.0)
    return write_video(path, n=len(allf), fps=24, size=(640, 360), frame_fn=lambda i, t: allf[i])
