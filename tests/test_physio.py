"""Physiology: analyze_physio, quality flags, events and epochs (simulated and real signals)."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

nk = pytest.importorskip("neurokit2")

import emonb as eb  # noqa: E402
from emonb.errors import EmonbValueError, EmonbWarning  # noqa: E402
from emonb.models.physio import quality as Q  # noqa: E402

DATA = Path(__file__).parents[1].parent / "shared" / "data" / "physio"


def node(fs, **channels):
    n = len(next(iter(channels.values())))
    ds = xr.Dataset({k: ("time", np.asarray(v, float)) for k, v in channels.items()},
                    coords={"time": 3.0 + np.arange(n) / fs})
    ds.attrs.update(sampling_rate=float(fs), t0=3.0)
    return ds


def run(ds, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return eb.analyze_physio(ds, progress=False, **kw)


def flag_at(out, sig, t):
    return int(out[f"{sig}_flag"].sel(time=t, method="nearest"))


@pytest.fixture(scope="module")
def sim():
    fs = 250
    ecg = nk.ecg_simulate(duration=150, sampling_rate=fs, heart_rate=70, random_state=1)
    eda = nk.eda_simulate(duration=150, sampling_rate=fs, scr_number=4, drift=0.0, random_state=1)
    rsp = nk.rsp_simulate(duration=150, sampling_rate=fs, respiratory_rate=15, random_state=1)
    ds = node(fs, ecg=ecg, eda=eda, rsp=rsp)
    return ds, run(ds)


def test_simulated_rates_units_and_provenance(sim):
    ds, out = sim
    assert out["time"].dtype == np.float64
    np.testing.assert_allclose(out["time"].values, ds["time"].values)  # session clock kept (t0 = 3 s)
    assert abs(np.nanmedian(out.ecg_rate) - 70) < 2
    assert abs(np.nanmedian(out.rsp_rate) - 15) < 1.5
    assert float(out.ecg_quality.mean()) > 0.8 and (out.ecg_flag == 0).all()
    assert out.sizes["ecg_beat"] == pytest.approx(70 * 150 / 60, rel=0.05)
    units = {"ecg_rate": "bpm", "ecg_rmssd": "ms", "ecg_sdnn": "ms", "eda_phasic": "uS", "eda_tonic": "uS",
             "rsp_rate": "breaths/min", "ecg_quality": "1", "physio_arousal": "1", "scr_onset": "s",
             "scr_amplitude": "uS", "ecg_r_peak": "s"}
    for name, u in units.items():
        assert out[name].attrs["units"] == u, name
        assert "source" in out[name].attrs
    for key in ("model", "model_version", "model_license", "device", "parameters", "quality_threshold"):
        assert key in out.attrs
    assert out.attrs["model"] == "neurokit2" and out.attrs["model_license"] == "MIT"
    # event variables, not 0/1 columns
    assert out["scr_onset"].dims == ("scr",) and out.sizes["scr"] >= 3
    assert (out.scr_peak > out.scr_onset).all() and (out.scr_amplitude > 0).all()
    assert float(out.scr_onset.min()) >= 3.0  # on the session clock
    assert out["ecg_r_peak"].dims == ("ecg_beat",)


def test_hrv_windows(sim):
    ds, out = sim
    mid = out.sel(time=slice(40, 110))
    assert np.isfinite(mid.ecg_rmssd).all() and np.isfinite(mid.ecg_sdnn).all()
    assert np.isfinite(mid.ecg_hf).all()
    assert np.isnan(out.ecg_lf).all()  # a 60-s window is too short for LF: NaN, not a guess
    assert np.isfinite(out.ecg_rmssd.sel(time=slice(3, 20))).all()  # edges: the first window
    short = run(ds[["ecg"]].isel(time=slice(0, 250 * 50)))
    assert np.isnan(short.ecg_rmssd).all()  # a 50-s recording has no full 60-s window
    out2 = run(ds[["ecg"]], hrv_window=120, hrv_step=10)
    assert np.isfinite(out2.ecg_lf.sel(time=slice(70, 85))).all()


def test_arousal_and_confidence(sim):
    ds, out = sim
    a = out.physio_arousal.values
    c = out.physio_arousal_confidence.values
    assert np.nanmin(a) >= -1 and np.nanmax(a) <= 1 and np.isfinite(a).mean() > 0.9
    assert (c >= 0).all() and (c <= 1).all()
    assert out.physio_arousal.attrs["components"]
    only_ecg = run(ds[["ecg"]])
    assert float(only_ecg.physio_arousal_confidence.max()) <= 0.3 + 1e-6
    # phasic EDA drives it: arousal is higher during SCRs than between them
    ph = out.eda_phasic.values
    assert np.nanmean(a[ph > np.nanpercentile(ph, 90)]) > np.nanmean(a[ph < np.nanpercentile(ph, 50)])


def test_bad_stretches_are_flagged_and_nan():
    fs = 250
    ecg = nk.ecg_simulate(duration=100, sampling_rate=fs, heart_rate=75, random_state=0)
    x = ecg.copy()
    x[20 * fs:30 * fs] = 0.0                      # flat
    x[40 * fs:50 * fs] = np.nan                   # disconnected
    rng = np.random.default_rng(0)
    x[60 * fs:75 * fs] += rng.normal(0, 1.5, 15 * fs)   # very noisy
    rail = 0.8 * ecg.max()
    x[85 * fs:95 * fs] += 0.6                     # baseline jump into the amplifier rail
    x = np.minimum(x, rail)
    out = run(node(fs, ecg=x))
    t0 = 3.0
    assert flag_at(out, "ecg", t0 + 25) == Q.FLAG_FLAT
    assert flag_at(out, "ecg", t0 + 45) == Q.FLAG_DISCONNECTED
    assert flag_at(out, "ecg", t0 + 67) in (Q.FLAG_NOISY, Q.FLAG_SATURATED)
    assert flag_at(out, "ecg", t0 + 90) == Q.FLAG_SATURATED
    assert flag_at(out, "ecg", t0 + 12) == Q.FLAG_OK
    for lo, hi in ((20, 30), (40, 50), (60, 75), (85, 95)):
        seg = out.sel(time=slice(t0 + lo + 0.01, t0 + hi - 0.01))
        assert np.isnan(seg.ecg_rate).all() and np.isnan(seg.ecg_clean).all()
        assert (seg.ecg_quality < Q.QUALITY_THRESHOLD).all()
    good = out.sel(time=slice(t0 + 5, t0 + 18))
    assert abs(float(good.ecg_rate.median()) - 75) < 3
    assert (out.ecg_flag.attrs["flag_meanings"].split()) == list(Q.FLAG_NAMES)


def test_pure_noise_ecg_does_not_crash():
    rng = np.random.default_rng(3)
    out = run(node(250, ecg=rng.normal(0, 1, 250 * 30)))
    assert float(out.ecg_quality.max()) < Q.QUALITY_THRESHOLD
    assert np.isnan(out.ecg_rate).all()


def test_all_nan_constant_and_clipped_channels():
    fs = 100
    n = fs * 60
    eda = nk.eda_simulate(duration=60, sampling_rate=fs, scr_number=2, random_state=2)
    out = run(node(fs, ecg=np.full(n, np.nan), eda=np.full(n, 4.0), rsp=np.clip(
        nk.rsp_simulate(duration=60, sampling_rate=fs, random_state=2), -0.2, 0.2)))
    assert (out.ecg_flag == Q.FLAG_DISCONNECTED).all() and np.isnan(out.ecg_rate).all()
    assert (out.eda_flag == Q.FLAG_FLAT).all() and np.isnan(out.eda_phasic).all()
    assert (out.rsp_flag == Q.FLAG_SATURATED).mean() > 0.5
    assert out.sizes["scr"] == 0 and out.sizes["ecg_beat"] == 0
    assert np.isnan(out.physio_arousal).all() and (out.physio_arousal_confidence == 0).all()
    out2 = run(node(fs, eda=eda))
    assert (out2.eda_flag == 0).all()


def test_eda_out_of_range_is_disconnected_in_microsiemens():
    fs = 50
    ds = node(fs, eda=np.r_[np.full(fs * 20, 0.01), 5 + 0.1 * np.sin(np.arange(fs * 20) / fs)])
    ds["eda"].attrs["units"] = "uS"
    out = run(ds)
    assert flag_at(out, "eda", 3 + 10) == Q.FLAG_DISCONNECTED
    assert flag_at(out, "eda", 3 + 30) == Q.FLAG_OK


def test_low_rate_short_and_unknown_channels():
    fs = 100
    ecg = nk.ecg_simulate(duration=30, sampling_rate=fs, heart_rate=60, random_state=0)
    emg = np.random.default_rng(0).normal(size=len(ecg))
    with pytest.warns(EmonbWarning, match="too low for EMG"):
        out = eb.analyze_physio(node(fs, ecg=ecg, emg=emg), progress=False)
    assert "emg_amplitude" not in out and "emg" in out.attrs["skipped_channels"]
    with pytest.raises(EmonbValueError, match="too low"), pytest.warns(EmonbWarning):
        eb.analyze_physio(node(20, ecg=ecg[::5]), progress=False)
    short = run(node(fs, ecg=ecg[: 2 * fs]))
    assert (short.ecg_flag == Q.FLAG_SHORT).all() and np.isnan(short.ecg_rate).all()
    with pytest.raises(EmonbValueError, match="channels="):
        eb.analyze_physio(node(fs, foo=ecg, bar=ecg), progress=False)
    out = run(node(fs, lead_ii=ecg, foo=ecg), channels={"lead_ii": "ecg"})
    assert abs(np.nanmedian(out.ecg_rate) - 60) < 2
    assert "foo" in out.attrs["ignored_channels"]
    with pytest.raises(EmonbValueError, match="not a variable"):
        eb.analyze_physio(node(fs, ecg=ecg), channels={"nope": "ecg"}, progress=False)


def test_ppg_and_emg_simulated():
    fs = 500
    ppg = nk.ppg_simulate(duration=40, sampling_rate=fs, heart_rate=80, random_state=4)
    emg = nk.emg_simulate(duration=40, sampling_rate=fs, burst_number=3, burst_duration=1.5, random_state=4)
    out = run(node(fs, ppg=ppg, emg=emg))
    assert abs(np.nanmedian(out.ppg_rate) - 80) < 3
    assert out.ppg_rate.attrs["units"] == "bpm" and float(out.ppg_quality.mean()) > 0.8
    assert out.sizes["emg_burst"] == 3
    assert (out.emg_offset > out.emg_onset).all()
    assert np.isfinite(out.emg_amplitude).all()


def test_resample_rate_and_path_input(tmp_path, sim):
    ds, _ = sim
    out = run(ds[["ecg"]].isel(time=slice(0, 250 * 40)), rate=50)
    assert out.attrs["sampling_rate"] == 50
    assert np.allclose(np.diff(out.time.values), 0.02)
    assert abs(np.nanmedian(out.ecg_rate) - 70) < 2
    assert out.ecg_flag.dtype == np.int8
    import pandas as pd

    p = tmp_path / "rec.csv"
    pd.DataFrame({"ECG": ds.ecg.values[:250 * 30], "RSP": ds.rsp.values[:250 * 30]}).to_csv(p, index=False)
    out = run(p, sampling_rate=250)
    assert abs(np.nanmedian(out.ecg_rate) - 70) < 2


def test_events_and_epochs_on_simulated_marker():
    fs = 100
    n = fs * 80
    marker = np.full(n, 5.0)
    onsets = [10.0, 30.0, 50.0]
    for o in onsets:
        marker[int(o * fs): int((o + 2) * fs)] = 0.0
    ecg = nk.ecg_simulate(duration=80, sampling_rate=fs, heart_rate=65, random_state=5)
    ds = node(fs, ecg=ecg, photosensor=marker)
    ev = eb.physio.events(ds, channel="Photosensor", labels=["a", "b", "c"])
    np.testing.assert_allclose(ev.onset.values, np.array(onsets) + 3.0)
    np.testing.assert_allclose(ev.duration.values, 2.0)
    assert list(ev.label.values) == ["a", "b", "c"] and ev.attrs["keep"] == "below"
    with pytest.raises(EmonbValueError, match="2 labels"):
        eb.physio.events(ds, channel="photosensor", labels=["a", "b"])
    with pytest.raises(EmonbValueError, match="no channel"):
        eb.physio.events(ds, channel="trigger")
    ep = eb.physio.epochs(ds, ev, window=(-1, 5))
    assert ep.sizes["event"] == 3 and ep.ecg_rate.dims == ("event", "epoch_time")
    assert ep.epoch_time.values[0] == -1 and ep.epoch_time.values[-1] == pytest.approx(5)
    assert list(ep.label.values) == ["a", "b", "c"]
    assert np.all(np.abs(ep.ecg_rate_baseline - 65) < 4)
    assert "ecg_rate_change" in ep and "model" in ep.attrs
    ep2 = eb.physio.epochs(ds, [13.0, 33.0], window=(0, 2))
    assert ep2.sizes["event"] == 2


def test_import_is_cheap():
    code = ("import sys, emonb as eb; eb.physio; import emonb.models.physio.analyze, "
            "emonb.models.physio.eventrelated; print('neurokit2' in sys.modules, 'cv2' in sys.modules)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.split() == ["False", "False"]


# --------------------------------------------------------------------------------------------
# real recordings (skipped when ../shared/data is absent)
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def neurokit_event():
    import pandas as pd

    p = DATA / "neurokit" / "bio_eventrelated_100hz.csv"
    if not p.exists():
        pytest.skip(f"shared data not found: {p}")
    df = pd.read_csv(p)
    ds = xr.Dataset({c.lower(): ("time", df[c].to_numpy(float)) for c in df.columns},
                    coords={"time": np.arange(len(df)) / 100.0})
    ds["eda"].attrs["units"] = "uS"
    ds.attrs.update(sampling_rate=100.0, t0=0.0)
    return ds


def test_real_eventrelated_epochs(neurokit_event):
    ds = neurokit_event
    out = run(ds)
    assert abs(np.nanmedian(out.ecg_rate) - 61) < 5
    assert float(out.ecg_quality.mean()) > 0.8 and float(out.eda_quality.mean()) > 0.9
    assert "photosensor" in out.attrs["ignored_channels"]
    ev = eb.physio.events(ds, channel="photosensor", labels=["Negative", "Neutral", "Neutral", "Negative"])
    assert ev.sizes["event"] == 4
    np.testing.assert_allclose(ev.onset.values, [10.24, 49.57, 92.24, 129.84], atol=0.02)
    ep = eb.physio.epochs(ds, ev, window=(-1, 10), features=out)
    neg = ep.where(ep.label == "Negative", drop=True)
    neu = ep.where(ep.label == "Neutral", drop=True)
    # both negative images evoke an SCR, neither neutral one does
    assert bool(neg.eda_scr.all()) and not bool(neu.eda_scr.astype(bool).any())
    assert float(neg.eda_scr_amplitude.min()) > 1.0
    assert float(neg.eda_phasic_max.mean()) > 3 * float(neu.eda_phasic_max.mean())


def test_real_resting_ecg_ppg_rsp():
    import pandas as pd

    p = DATA / "neurokit" / "bio_resting_5min_100hz.csv"
    if not p.exists():
        pytest.skip(f"shared data not found: {p}")
    df = pd.read_csv(p)
    ds = node(100, ecg=df.ECG, ppg=df.PPG, rsp=df.RSP)
    out = run(ds)
    hr_ecg, hr_ppg = np.nanmedian(out.ecg_rate), np.nanmedian(out.ppg_rate)
    assert 50 < hr_ecg < 100 and abs(hr_ecg - hr_ppg) < 3
    assert 5 < np.nanmedian(out.rsp_rate) < 25
    assert np.isfinite(out.ecg_rmssd).mean() > 0.5
    assert np.isfinite(out.physio_arousal).mean() > 0.9


@pytest.mark.parametrize("fname,sig", [("ecg.txt", "ecg"), ("eda.txt", "eda"), ("resp.txt", "rsp"),
                                       ("ppg.txt", "ppg"), ("emg.txt", "emg")])
def test_real_bitalino(fname, sig):
    p = DATA / "biosppy" / fname
    if not p.exists():
        pytest.skip(f"shared data not found: {p}")
    x = np.loadtxt(p, comments="#")
    out = run(node(1000, **{sig: x}), limits={sig: (0, 4095)})
    assert float(out[f"{sig}_quality"].mean()) > 0.8
    if sig in ("ecg", "ppg"):
        assert 40 < np.nanmedian(out[f"{sig}_rate"]) < 130
    if sig == "rsp":
        assert 8 < np.nanmedian(out.rsp_rate) < 30
    if sig == "eda":
        assert out.sizes["scr"] >= 1
    if sig == "emg":
        assert out.sizes["emg_burst"] >= 1


def test_sample_session_tree():
    try:
        tree = eb.sample_session()
    except (ImportError, AttributeError) as exc:  # the session module is optional for this test
        pytest.skip(f"sample session not available: {exc}")
    if "physio" not in tree.children:
        pytest.skip("the sample session has no physio node")
    out = run(tree)
    np.testing.assert_allclose(out.time.values, tree["physio"]["time"].values)
    assert "ecg_rate" in out and "physio_arousal" in out
    ev = eb.physio.events(tree, channel=None)
    assert ev.sizes["event"] >= 1
    ep = eb.physio.epochs(tree, ev, window=(-1, 3))
    assert ep.sizes["event"] == ev.sizes["event"] and "ecg_rate" in ep
