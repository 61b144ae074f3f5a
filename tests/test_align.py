import json

import numpy as np
import pytest
import xarray as xr

import emonb as eb
from emonb.session import make_tree


def _node(t, **vars_):
    return xr.Dataset({k: ("time", v) for k, v in vars_.items()}, coords={"time": t})


def test_injected_offsets_and_rates_recovered_within_one_sample():
    # the same 0.5 Hz ramp-like signal recorded by two devices at 250 Hz and 64 Hz, with offsets
    f = lambda t: np.sin(2 * np.pi * 0.5 * t) + 0.3 * t  # noqa: E731
    ta = np.arange(0, 20, 1 / 250)
    tb = np.arange(0, 20, 1 / 64)
    off_a, off_b = 1.3, -0.7
    tree = make_tree({"physio": _node(ta + off_a, eda=f(ta)), "voice": _node(tb + off_b, pitch=f(tb))})
    g = eb.align(tree, rate=30, span="intersection")
    assert g.attrs["rate"] == 30 and np.allclose(np.diff(g.time), 1 / 30)
    # with offsets applied, each aligned value equals the signal at (grid time - offset)
    np.testing.assert_allclose(g["eda"].values, f(g.time.values - off_a), atol=2e-3)
    np.testing.assert_allclose(g["pitch"].values, f(g.time.values - off_b), atol=2e-3)
    # a mis-set offset of one grid step would be visible
    assert np.abs(g["eda"].values - f(g.time.values - off_a - 1 / 30)).max() > 5e-3


def test_antialias_on_downsampling():
    t = np.arange(0, 10, 1 / 1000)
    slow, fast = np.sin(2 * np.pi * 1 * t), np.sin(2 * np.pi * 29 * t)  # 29 Hz aliases to 1 Hz at 30 Hz
    g = eb.align(make_tree({"physio": _node(t, ecg=slow + fast)}), rate=30)
    inner = slice(30, -30)
    np.testing.assert_allclose(g["ecg"].values[inner], np.sin(2 * np.pi * g.time.values[inner]), atol=0.05)
    assert "low-pass 15 Hz" in g["ecg"].attrs["aligned"]
    raw = eb.align(make_tree({"physio": _node(t, ecg=slow + fast)}), rate=30, antialias=False)
    assert np.abs(raw["ecg"].values[inner] - np.sin(2 * np.pi * raw.time.values[inner])).max() > 0.5


def test_gaps_and_edges_stay_nan_and_categorical_hold():
    t = np.concatenate([np.arange(0, 5, 0.1), np.arange(8, 10, 0.1)])
    x = np.ones(t.size)
    lab = np.where(t < 3, "calm", "tense").astype(object)
    n = xr.Dataset({"x": ("time", x), "state": ("time", lab), "count": ("time", np.arange(t.size))},
                   coords={"time": t})
    other = _node(np.arange(-2, 12, 0.5), y=np.zeros(28))
    g = eb.align(make_tree({"a": n, "b": other}), rate=10)
    tt = g.time.values
    assert np.isnan(g["x"].values[(tt > 5.3) & (tt < 7.7)]).all()
    assert np.isnan(g["x"].values[tt < -0.1]).all() and np.isnan(g["x"].values[tt > 10.1]).all()
    assert (g["x"].values[(tt >= 0) & (tt < 4.9)] == 1).all()
    assert set(g["state"].values[(tt > 0.5) & (tt < 2.5)]) == {"calm"}
    assert set(g["state"].values[(tt > 3.5) & (tt < 4.5)]) == {"tense"}
    assert g["count"].attrs["aligned"] == "nearest sample"
    assert json.loads(g.attrs["alignment"])["state"]["how"].startswith("previous")


def test_multidimensional_results_and_name_collisions():
    t = np.arange(0, 3, 1 / 30)
    face = xr.Dataset({"face_au": (("time", "face", "au"), np.random.default_rng(0).random((t.size, 2, 3))),
                       "score": ("time", np.ones(t.size))},
                      coords={"time": t, "au": ["AU01", "AU02", "AU04"]})
    voice = xr.Dataset({"score": ("time", np.zeros(300))}, coords={"time": np.arange(300) / 100})
    g = eb.align(make_tree({"face": face, "voice": voice}), rate=10)
    assert g["face_au"].dims == ("time", "face", "au") and list(g.au.values) == ["AU01", "AU02", "AU04"]
    assert {"face_score", "voice_score"} <= set(g.data_vars)


def test_sample_session_aligns_with_video_frames_and_transcript():
    tree = eb.sample_session()
    g = eb.align(tree, rate=10)
    assert {"video_frame_index", "audio_rms", "ecg", "eda", "rsp", "photosensor", "transcript_text"} <= set(g.data_vars)
    i = int(np.argmin(np.abs(g.time.values - 5.0)))
    assert "superlative" in g["transcript_text"].values[i] or "always" in g["transcript_text"].values[i]
    assert np.isnan(g["audio_rms"].values[g.time.values < 2.9]).all()
    assert np.isfinite(g["audio_rms"].values[(g.time.values > 3.1) & (g.time.values < 6.9)]).all()
    fi = g["video_frame_index"].values
    assert fi[0] == 0 and fi[50] == np.floor(5.0 * tree["video"].attrs["fps"] + 1e-6)


def test_align_errors():
    with pytest.raises(eb.EmonbValueError, match="rate"):
        eb.align(eb.sample_session(), rate=0)
    with pytest.raises(eb.EmonbValueError, match="method"):
        eb.align(eb.sample_session(), rate=10, method="cubic")
    with pytest.raises(eb.EmonbValueError, match="no node"):
        eb.align(eb.sample_session(), rate=10, nodes=["face"])
