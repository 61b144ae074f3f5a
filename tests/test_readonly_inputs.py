"""Public steps on sessions whose arrays are all read-only.

pandas >= 3 (copy-on-write) hands out read-only arrays from ``Series.to_numpy()``, xarray indexes
are read-only, zarr-backed or user-frozen data may be too. Every step must work on such input by
copying where it writes, and must leave the caller's arrays exactly as they were.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import xarray as xr

import emonb as eb
from emonb.session import make_tree

FS = 500          # Hz; EMG needs >= 250 Hz
DURATION = 40     # s; respiration needs >= 15 s, EDA >= 10 s
SR = 16000


# -- helpers ----------------------------------------------------------------------------------------
def _arrays(tree) -> dict:
    """(node path, variable) -> the numpy array behind it, for every variable and coordinate."""
    out = {}
    for node in tree.subtree:
        for name, var in node.to_dataset(inherit=False).variables.items():
            if isinstance(var.data, np.ndarray):
                out[(node.path, str(name))] = var.data
    return out


def freeze(tree) -> dict:
    """Make every array of every node read-only; return copies to compare with afterwards."""
    arrays = _arrays(tree)
    for a in arrays.values():
        a.flags.writeable = False
    return {k: a.copy() for k, a in arrays.items()}


def assert_unchanged(tree, before: dict) -> None:
    after = _arrays(tree)
    assert after.keys() == before.keys()
    for key, a in after.items():
        assert not a.flags.writeable, f"{key} was made writeable again"
        if a.dtype == object:
            assert a.tolist() == before[key].tolist(), key
        else:
            np.testing.assert_array_equal(a, before[key], err_msg=f"{key} was modified")


def analyze(tree, modalities, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = eb.analyze(tree, modalities, progress=False, **kw)
    rec = json.loads(out.attrs["analysis"])
    for m in modalities:
        assert rec[m]["status"] == "ok", (m, rec[m])
    return out


# -- generated inputs -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def signals():
    nk = pytest.importorskip("neurokit2")
    kw = dict(duration=DURATION, sampling_rate=FS, random_state=3)
    return {
        "ecg": nk.ecg_simulate(heart_rate=70, **kw),
        "ppg": nk.ppg_simulate(heart_rate=70, **kw),
        "eda": nk.eda_simulate(scr_number=3, drift=0.0, **kw),
        "rsp": nk.rsp_simulate(respiratory_rate=15, **kw),
        "emg": nk.emg_simulate(burst_number=3, **kw),
    }


def physio_node(signals) -> xr.Dataset:
    n = len(signals["ecg"])
    units = {"ecg": "mV", "ppg": "a.u.", "eda": "uS", "rsp": "a.u.", "emg": "mV"}
    ds = xr.Dataset({k: ("time", np.asarray(v, float), {"units": units[k]}) for k, v in signals.items()},
                    coords={"time": 2.0 + np.arange(n) / FS})
    ds.attrs.update(modality="physio", sampling_rate=float(FS), t0=2.0)
    return ds


def audio_node(duration: float = 3.0) -> xr.Dataset:
    """A voiced harmonic tone with syllable-like bursts, then noise, at 16 kHz."""
    t = np.arange(int(duration * SR)) / SR
    phase = 2 * np.pi * np.cumsum(np.interp(t, [0, duration], [120.0, 190.0])) / SR
    y = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.55 + 0.45 * np.sin(2 * np.pi * 4 * t))
    y = 0.3 * y / np.max(np.abs(y))
    y[-SR // 2:] = 0.05 * np.random.default_rng(0).standard_normal(SR // 2)
    return xr.Dataset({"audio": ("time", y.astype(np.float32), {"units": "full scale"})},
                      coords={"time": 1.0 + t}, attrs={"modality": "audio", "sampling_rate": float(SR), "t0": 1.0})


def transcript_node() -> xr.Dataset:
    rows = [(1.0, 2.5, "What a wonderful surprise, I love it!", "A"),
            (2.6, 3.8, "This is awful.", "B"),
            (5.0, 6.0, "", "A")]
    return xr.Dataset(
        {"text": ("segment", np.array([r[2] for r in rows], dtype=object)),
         "start": ("segment", np.array([r[0] for r in rows])),
         "end": ("segment", np.array([r[1] for r in rows])),
         "speaker": ("segment", np.array([r[3] for r in rows], dtype=object))},
        coords={"segment": np.arange(len(rows))}, attrs={"modality": "transcript"})


@pytest.fixture(scope="module")
def session(signals):
    """A frozen raw session (physio, audio, transcript) and the copies taken before freezing."""
    tree = eb.load_session(physio=physio_node(signals), audio=audio_node(), transcript=transcript_node(),
                           session_id="ro")
    return tree, freeze(tree)


@pytest.fixture(scope="module")
def analysed(session):
    tree, before = session
    out = analyze(tree, ["physio", "voice", "text"])
    assert_unchanged(tree, before)
    return out


# -- tests --------------------------------------------------------------------------------------------
def test_freeze_really_makes_arrays_read_only(signals):
    tree = make_tree({"physio": physio_node(signals)})
    freeze(tree)
    with pytest.raises(ValueError, match="read-only"):
        tree["physio"].to_dataset()["eda"].values[0] = 0.0


def test_physio_on_read_only_channels(analysed):
    ph = analysed["physio_features"].to_dataset()
    assert json.loads(ph.attrs["signals"]) == ["ecg", "ppg", "eda", "rsp", "emg"]
    for name in ("ecg_rate", "ppg_rate", "eda_phasic", "eda_tonic", "rsp_rate", "emg_amplitude",
                 "physio_arousal"):
        assert np.isfinite(ph[name].values).mean() > 0.5, name
    assert abs(np.nanmedian(ph["ecg_rate"].values) - 70) < 3
    assert ph.sizes["scr"] >= 1


def test_physio_from_a_csv_read_by_pandas(tmp_path, signals):
    """The real-world path: columns come out of pandas as read-only arrays."""
    import pandas as pd

    n = len(signals["eda"])
    path = tmp_path / "rec.csv"
    pd.DataFrame({"time": np.arange(n) / FS, "EDA": signals["eda"], "RSP": signals["rsp"]}).to_csv(path, index=False)
    tree = eb.load_session(physio=path)
    before = freeze(tree)
    out = analyze(tree, ["physio"])
    assert np.isfinite(out["physio_features"]["eda_phasic"].values).any()
    assert_unchanged(tree, before)


def test_voice_on_a_read_only_audio_node(analysed):
    v = analysed["voice"].to_dataset()
    assert float(v["time"][0]) == pytest.approx(1.0)
    assert np.isfinite(v["voice_pitch"].values).mean() > 0.3
    assert np.nanmedian(v["voice_pitch"].values) == pytest.approx(150, rel=0.3)


def test_text_on_a_read_only_transcript(analysed):
    tx = analysed["text"].to_dataset()
    s = tx["text_sentiment"].values
    assert s[0] > 0.3 and s[1] < -0.3 and np.isnan(s[2])


def test_align_read_only_raw_and_result_nodes(session, analysed):
    tree, before = session
    g = eb.align(tree, rate=20)
    assert {"ecg", "eda", "audio_rms", "transcript_text"} <= set(g.data_vars)
    assert np.isfinite(g["eda"].values).mean() > 0.8
    assert_unchanged(tree, before)
    res = make_tree({k: analysed[k].to_dataset() for k in ("physio_features", "voice", "text")})
    before = freeze(res)
    g = eb.align(res, rate=10)
    assert "physio_arousal" in g and "voice_pitch" in g
    assert_unchanged(res, before)


@pytest.mark.parametrize("ensemble", ["mean", "product", "max"])
def test_late_fusion_on_read_only_results(analysed, ensemble):
    tree = make_tree({k: analysed[k].to_dataset() for k in ("physio_features", "voice", "text")},
                     dict(analysed.attrs))
    before = freeze(tree)
    fused = eb.fuse(tree, method="late", ensemble=ensemble)
    assert set(fused.attrs["modalities_present"].split(",")) >= {"physio", "text"}
    assert np.isfinite(fused["fused_arousal"].values).any()
    assert_unchanged(tree, before)


def test_late_fusion_on_read_only_simulated_session():
    from emonb.fusion.simulate import simulate_session

    tree = simulate_session(20, seed=1)
    before = freeze(tree)
    fused = eb.fuse(tree, method="late", rate=10)
    assert fused.attrs["modalities_present"] == "face,voice,physio,text"
    p = fused["fused_emotion"].values
    ok = np.isfinite(p).all(axis=1)
    assert ok.mean() > 0.9
    np.testing.assert_allclose(p[ok].sum(axis=1), 1, atol=1e-5)
    assert_unchanged(tree, before)


def test_spotting_on_a_read_only_face_node():
    from emonb.spotting.synthetic import make_spotting_landmarks

    # a face-like point cloud stands in for a MediaPipe mesh (no model needed)
    rng = np.random.default_rng(0)
    ang = rng.uniform(0, 2 * np.pi, 478)
    rad = np.sqrt(rng.uniform(0, 1, 478))
    mesh = np.stack([320 + 80 * rad * np.cos(ang), 240 + 100 * rad * np.sin(ang), 10 * rng.standard_normal(478)],
                    axis=1)
    fps = 30.0
    lm, _truth = make_spotting_landmarks(fps=fps, duration=8.0, seed=2, landmarks=mesh)
    n = lm.shape[0]
    face = xr.Dataset(
        {"face_landmarks": (("time", "face", "landmark", "coord"), lm[:, None].astype(np.float32)),
         "face_score": (("time", "face"), np.ones((n, 1), np.float32))},
        coords={"time": np.arange(n) / fps, "frame_index": ("time", np.arange(n)),
                "coord": ["x", "y", "z"]},
        attrs={"modality": "face", "fps": fps})
    tree = make_tree({"face": face})
    before = freeze(tree)
    out = analyze(tree, ["spot"])
    assert out["spots"].attrs["modality"] == "spots"
    assert_unchanged(tree, before)
