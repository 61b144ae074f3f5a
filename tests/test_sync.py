import numpy as np
import pytest
import xarray as xr

import emonb as eb
from conftest import write_video


def test_audio_cross_correlation_recovers_offset_to_one_sample():
    sr = 8000
    rng = np.random.default_rng(3)
    speech = rng.normal(size=sr * 6) * np.repeat(rng.random(60) > 0.4, sr // 10)  # bursty noise
    lag = 12345  # samples: the second recorder started 1.543 s later
    ref = speech
    tgt = speech[lag:] * 0.6 + 0.05 * rng.normal(size=speech.size - lag)
    a = xr.Dataset({"audio": ("time", ref)}, coords={"time": np.arange(ref.size) / sr}, attrs={"sampling_rate": sr})
    b = xr.Dataset({"audio": ("time", tgt)}, coords={"time": np.arange(tgt.size) / sr}, attrs={"sampling_rate": sr})
    est = eb.estimate_offset(a, b, method="audio")
    assert abs(est.offset - lag / sr) <= 1 / sr
    assert est.confidence > 0.5
    silent = b.copy(data={"audio": np.zeros(tgt.size)})
    assert np.isnan(eb.sync.estimate_audio_offset(a, silent).offset)


def test_flash_against_photosensor_recovers_offset_within_one_frame(tmp_path):
    fps = 25
    n = 250  # 10 s
    flashes = [(40, 60), (120, 135), (200, 230)]  # frame ranges where the screen is bright
    vals = np.full(n, 40.0)
    for a, b in flashes:
        vals[a:b] = 220.0
    p = write_video(tmp_path / "flash.mp4", n=n, fps=fps, values=vals)
    video = eb.load_video(p)
    true_offset = -2.37  # physio clock runs 2.37 s ahead: add -2.37 s to put it on the video clock
    sr = 100
    tp = np.arange(0, 14, 1 / sr)
    marker = np.full(tp.size, 5.0)
    for a, b in flashes:
        on, off = a / fps - true_offset, b / fps - true_offset
        marker[(tp >= on) & (tp < off)] = 0.2
    physio = xr.Dataset({"photosensor": ("time", marker, {"channel_type": "event"})}, coords={"time": tp},
                        attrs={"sampling_rate": sr})
    est = eb.sync.estimate_flash_offset(video, physio)
    assert abs(est.offset - true_offset) <= 1 / fps
    assert est.details["matched"] == 6 and est.confidence > 0.5
    assert abs(est.drift_ppm) < 2000
    # the estimate puts the physio events on the video events once applied
    tree = eb.load_session(video=p, physio=physio, offsets={"physio": est.offset})
    on = eb.sync.marker_onsets(tree["physio"].to_dataset()["photosensor"])
    np.testing.assert_allclose(on[0], flashes[0][0] / fps, atol=1 / fps)


def test_flash_without_marker_channel_is_a_clear_error(tmp_path):
    p = write_video(tmp_path / "v.mp4", n=10)
    physio = xr.Dataset({"ecg": ("time", np.zeros(100), {"channel_type": "ecg"})}, coords={"time": np.arange(100) / 10})
    with pytest.raises(eb.EmonbValueError, match="no marker channel"):
        eb.sync.estimate_flash_offset(eb.load_video(p), physio)
