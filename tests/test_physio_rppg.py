"""Remote PPG on generated videos whose skin colour pulses at a known rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

pytest.importorskip("cv2")
pytest.importorskip("av")

import emonb as eb  # noqa: E402
from emonb.models.physio.remote_ppg import chrom_pulse, pos_pulse, pulse_rate_windows  # noqa: E402

DATA = Path(__file__).parents[1].parent / "shared" / "data"
#: relative pulsatile strength of R, G, B in skin (blood-volume pulse signature, green strongest)
PBV = np.array([0.33, 0.77, 0.53])


def write_video(path, frames, fps):
    import av

    with av.open(str(path), "w") as out:
        st = out.add_stream("libx264", rate=fps)
        st.width, st.height = frames.shape[2], frames.shape[1]
        st.pix_fmt = "yuv420p"
        st.options = {"crf": "12"}
        for f in frames:
            for p in st.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(p)
        for p in st.encode():
            out.mux(p)


def modulate(base, mask, *, bpm, seconds, fps, amp=0.012, noise=2.0, seed=0):
    """Frames of ``base`` whose ``mask`` pixels pulse at ``bpm`` (with drift and pixel noise)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fps)
    t = np.arange(n) / fps
    pulse = np.sin(2 * np.pi * bpm / 60 * t) + 0.3 * np.sin(4 * np.pi * bpm / 60 * t + 0.5)
    drift = 1 + 0.02 * np.sin(2 * np.pi * 0.05 * t)          # slow illumination change
    out = np.empty((n,) + base.shape, np.uint8)
    b = base.astype(np.float32)
    for i in range(n):
        f = b * drift[i]
        f[mask] *= 1 + amp * PBV * pulse[i]
        f += rng.normal(0, noise, f.shape)
        out[i] = np.clip(np.round(f), 0, 255)
    return out


def test_pos_and_chrom_recover_rate_from_colour_traces():
    fs, bpm = 30.0, 72
    t = np.arange(int(20 * fs)) / fs
    rng = np.random.default_rng(1)
    base = np.array([180.0, 130.0, 110.0])
    rgb = base * (1 + 0.01 * PBV * np.sin(2 * np.pi * bpm / 60 * t)[:, None])
    rgb *= (1 + 0.05 * np.sin(2 * np.pi * 0.1 * t))[:, None]      # illumination: same on all channels
    rgb += rng.normal(0, 0.3, rgb.shape)
    for fn in (pos_pulse, chrom_pulse):
        c, rate, q = pulse_rate_windows(fn(rgb, fs), fs, window=10, step=1)
        assert np.all(np.abs(rate - bpm) < 3), fn.__name__
        assert q.min() > 0.5
    # pure noise: low quality
    c, rate, q = pulse_rate_windows(pos_pulse(base + rng.normal(0, 0.5, rgb.shape), fs), fs, window=10, step=1)
    assert np.median(q) < 0.3


def test_rppg_on_generated_video_with_face_box(tmp_path):
    fps, bpm, seconds = 30, 72, 15
    h, w = 180, 160
    yy, xx = np.mgrid[:h, :w]
    face = ((xx - 80) / 50) ** 2 + ((yy - 90) / 70) ** 2 <= 1
    base = np.full((h, w, 3), (40, 60, 90), np.uint8)
    base[face] = (200, 150, 125)
    frames = modulate(base, face, bpm=bpm, seconds=seconds, fps=fps)
    p = tmp_path / "pulse.mp4"
    write_video(p, frames, fps)
    n = len(frames)
    box = np.tile(np.array([30.0, 20.0, 130.0, 160.0]), (n, 1, 1))
    face_ds = xr.Dataset({"face_box": (("time", "face", "box_coord"), box)},
                         coords={"time": np.arange(n) / fps, "box_coord": ["x0", "y0", "x1", "y1"]})
    for method in ("pos", "chrom"):
        res = eb.physio.rppg(p, face=face_ds, method=method, progress=False)
        assert res.rppg_rate.attrs["units"] == "bpm" and res.attrs["roi"] == "face box"
        rate = res.rppg_rate.values
        assert np.isfinite(rate).mean() > 0.5, method
        assert abs(np.nanmedian(rate) - bpm) < 3, method
        assert float(np.nanmedian(res.rppg_quality.where(np.isfinite(res.rppg_rate)))) > 0.4
        assert res.rppg_rgb.dims == ("time", "region", "channel")
        assert res.attrs["model"] == f"rppg-{method}"
    # the face disappears after 11 s: no invented heart rate there
    box2 = box.copy()
    box2[11 * fps:] = np.nan
    res = eb.physio.rppg(p, face=face_ds.assign(face_box=(("time", "face", "box_coord"), box2)),
                         progress=False)
    assert np.isnan(res.rppg_rate.values[11 * fps + 1:]).all()
    assert np.isnan(res.rppg_rgb.values[11 * fps + 1:]).all()
    assert abs(np.nanmedian(res.rppg_rate.values[: 11 * fps]) - bpm) < 3
    # too little face for one window: a warning and no heart rate, not a crash
    box3 = box.copy()
    box3[5 * fps:] = np.nan
    with pytest.warns(eb.EmonbWarning, match="visible face"):
        res = eb.physio.rppg(p, face=face_ds.assign(face_box=(("time", "face", "box_coord"), box3)),
                             progress=False)
    assert np.isnan(res.rppg_rate).all()


def test_rppg_bad_options(tmp_path):
    with pytest.raises(eb.EmonbValueError):
        eb.physio.rppg(tmp_path / "x.mp4", method="green")
    with pytest.raises(eb.EmonbValueError):
        eb.physio.rppg(tmp_path / "x.mp4", regions=("chin",))


def test_rppg_on_real_face_modulated(tmp_path):
    """A real face photo whose skin pulses at 72 bpm; face mesh from eb.analyze_face."""
    img_path = DATA / "video" / "single_face.jpg"
    if not img_path.exists():
        pytest.skip(f"shared data not found: {img_path}")
    pytest.importorskip("mediapipe")
    img = eb.io.video.read_image(img_path)
    s = 320 / img.shape[1]
    import cv2

    img = cv2.resize(img, (320, int(round(img.shape[0] * s / 2)) * 2), interpolation=cv2.INTER_AREA)
    still = eb.analyze_face(img, progress=False)
    lm = still["face_landmarks"].isel(time=0, face=0).sel(coord=["x", "y"]).values
    assert np.isfinite(lm).all()
    from emonb.models.physio.remote_ppg import _region_masks

    skin = np.zeros(img.shape[:2], bool)
    for m in _region_masks(img.shape, lm, None, ("forehead", "left_cheek", "right_cheek")):
        skin |= m
    fps, bpm, seconds = 30, 72, 12
    frames = modulate(img, skin, bpm=bpm, seconds=seconds, fps=fps, amp=0.01, noise=1.5)
    p = tmp_path / "face_pulse.mp4"
    write_video(p, frames, fps)
    n = len(frames)
    face_ds = xr.Dataset(
        {"face_landmarks": (("time", "face", "landmark", "coord"),
                            np.broadcast_to(still["face_landmarks"].isel(time=0).values,
                                            (n,) + still["face_landmarks"].isel(time=0).shape).copy())},
        coords={"time": np.arange(n) / fps, "coord": list(still["coord"].values)})
    res = eb.physio.rppg(p, face=face_ds, progress=False)
    assert res.attrs["roi"] == "face mesh"
    assert abs(np.nanmedian(res.rppg_rate) - bpm) < 3
