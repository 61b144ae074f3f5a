import numpy as np
import pandas as pd
import pytest

import emonb as eb
from emonb.io.physio import guess_channel_type


@pytest.mark.parametrize("name,kind", [("ECG", "ecg"), ("ekg_lead2", "ecg"), ("GSR", "eda"),
                                       ("Skin Conductance", "eda"), ("EDA_raw", "eda"), ("RSP", "rsp"),
                                       ("Resp belt", "rsp"), ("BVP", "ppg"), ("PPG", "ppg"),
                                       ("EMG zygomaticus", "emg"), ("Photosensor", "event"),
                                       ("Trigger", "event"), ("foo", "other"), ("Oscillation", "other")])
def test_channel_type_guess(name, kind):
    assert guess_channel_type(name) == kind


def test_csv_with_time_column(tmp_path):
    t = np.arange(0, 10, 1 / 250)
    df = pd.DataFrame({"Time": t, "ECG": np.sin(t), "GSR": 5 + 0 * t, "marker": (t > 5).astype(float)})
    df.to_csv(tmp_path / "r.csv", index=False)
    d = eb.load_physio(tmp_path / "r.csv")
    assert d.attrs["sampling_rate"] == pytest.approx(250)
    assert set(d.data_vars) == {"ecg", "eda", "marker"}
    assert d["marker"].attrs["channel_type"] == "event" and d["ecg"].attrs["units"] == "mV"
    assert d["eda"].attrs.get("flat") == 1  # constant channel flagged
    np.testing.assert_allclose(d["time"].values, t)


def test_tsv_with_rate_and_overrides(tmp_path):
    x = np.random.default_rng(0).normal(size=(500, 2))
    pd.DataFrame(x, columns=["chanA", "chanB"]).to_csv(tmp_path / "r.tsv", sep="\t", index=False)
    d = eb.load_physio(tmp_path / "r.tsv", sampling_rate=50, channels={"chanA": "ecg", "chanB": "rsp"},
                       units={"chanA": "uV"})
    assert set(d.data_vars) == {"ecg", "rsp"} and d["ecg"].attrs["units"] == "uV"
    assert d.attrs["duration"] == pytest.approx(10)


def test_csv_errors(tmp_path):
    pd.DataFrame({"ECG": [1.0, 2.0, 3.0]}).to_csv(tmp_path / "norate.csv", index=False)
    with pytest.raises(eb.EmonbValueError, match="norate.csv.*sampling_rate"):
        eb.load_physio(tmp_path / "norate.csv")
    with pytest.raises(eb.EmonbValueError, match=r"\['ECGX'\] not found.*ECG"):
        eb.load_physio(tmp_path / "norate.csv", sampling_rate=10, channels={"ECGX": "ecg"})
    (tmp_path / "header.csv").write_text("ECG,EDA\n")
    with pytest.raises(eb.EmonbFileError, match="header.csv.*no samples"):
        eb.load_physio(tmp_path / "header.csv", sampling_rate=10)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(eb.EmonbFileError, match="empty"):
        eb.load_physio(tmp_path / "empty.csv", sampling_rate=10)
    pd.DataFrame({"time": [0, 1, 1, 2], "ECG": [1, 2, 3, 4]}).to_csv(tmp_path / "back.csv", index=False)
    with pytest.raises(eb.EmonbFileError, match="not strictly increasing"):
        eb.load_physio(tmp_path / "back.csv")
    (tmp_path / "x.xyz").write_text("1,2")
    with pytest.raises(eb.EmonbFormatError, match="no physio reader"):
        eb.load_physio(tmp_path / "x.xyz")


def test_nans_are_kept_and_flagged(tmp_path):
    x = np.sin(np.arange(300) / 10.0)
    x[100:120] = np.nan
    pd.DataFrame({"ECG": x}).to_csv(tmp_path / "n.csv", index=False)
    d = eb.load_physio(tmp_path / "n.csv", sampling_rate=100)
    assert np.isnan(d["ecg"].values[100:120]).all()
    assert d["ecg"].attrs["nan_fraction"] == pytest.approx(20 / 300)
    assert "ecg:nan" in d.attrs["flags"]


def test_irregular_time_is_resampled_with_gaps(tmp_path):
    rng = np.random.default_rng(1)
    t = np.cumsum(rng.uniform(0.008, 0.012, 1000))
    t = np.concatenate([t[:500], t[500:] + 1.0])  # a 1 s dropout
    pd.DataFrame({"t": t, "EDA": np.linspace(1, 2, t.size)}).to_csv(tmp_path / "irr.csv", index=False)
    d = eb.load_physio(tmp_path / "irr.csv")
    assert d.attrs["resampled_from_irregular_time"] == 1
    assert d.attrs["sampling_rate"] == pytest.approx(100, rel=0.05)
    gap = (d["time"] > t[499] + 0.1) & (d["time"] < t[500] - 0.1)
    assert np.isnan(d["eda"].where(gap, drop=True)).all()


def test_opensignals_simple_text(tmp_path):
    raw = (2048 + 400 * np.sin(np.arange(2000) / 20)).round()
    head = "# Simple Text Format\n# Sampling Rate (Hz):= 500.00\n# Resolution:= 12\n# Labels:= ECG\n"
    (tmp_path / "ecg.txt").write_text(head + "\n".join(f"{v:.1f}" for v in raw) + "\n")
    d = eb.load_physio(tmp_path / "ecg.txt")
    assert d.attrs["format"] == "opensignals" and d.attrs["sampling_rate"] == 500
    # BITalino ECG transfer function: (ADC/2^n - 0.5) * 3.3 / 1100 * 1000 mV
    expect = (raw / 4096 - 0.5) * 3.3 / 1100 * 1000
    np.testing.assert_allclose(d["ecg"].values, expect)
    assert d["ecg"].attrs["units"] == "mV"


def test_edf_roundtrip(tmp_path):
    pyedflib = pytest.importorskip("pyedflib")
    p = str(tmp_path / "rec.edf")
    fs = [256, 128]
    sigs = [np.sin(np.arange(256 * 10) / 30.0), np.linspace(2, 4, 128 * 10)]
    hdrs = [
        {"label": "ECG", "dimension": "mV", "sample_frequency": 256, "physical_min": -2, "physical_max": 2,
         "digital_min": -32768, "digital_max": 32767, "transducer": "", "prefilter": ""},
        {"label": "GSR", "dimension": "uS", "sample_frequency": 128, "physical_min": 0, "physical_max": 10,
         "digital_min": -32768, "digital_max": 32767, "transducer": "", "prefilter": ""},
    ]
    w = pyedflib.EdfWriter(p, 2, file_type=pyedflib.FILETYPE_EDFPLUS)
    w.setSignalHeaders(hdrs)
    w.writeSamples(sigs)
    w.close()
    d = eb.load_physio(p)
    assert d.attrs["sampling_rate"] == 256 and set(d.data_vars) == {"ecg", "eda"}
    assert d["eda"].attrs["units"] == "uS"
    np.testing.assert_allclose(d["ecg"].values, sigs[0], atol=1e-3)
    np.testing.assert_allclose(d["eda"].values[:2000:2], sigs[1][:1000], atol=2e-3)
    assert fs


def test_wfdb_roundtrip(tmp_path):
    wfdb = pytest.importorskip("wfdb")
    sig = np.column_stack([np.sin(np.arange(1000) / 10.0), np.cos(np.arange(1000) / 50.0)])
    wfdb.wrsamp("rec", fs=200, units=["mV", "a.u."], sig_name=["ECG", "RESP"], p_signal=sig,
                fmt=["16", "16"], write_dir=str(tmp_path))
    d = eb.load_physio(tmp_path / "rec.hea")
    assert d.attrs["sampling_rate"] == 200 and set(d.data_vars) == {"ecg", "rsp"}
    np.testing.assert_allclose(d["ecg"].values, sig[:, 0], atol=1e-3)


@pytest.mark.realdata
def test_real_neurokit_and_biosppy(shared_data):
    with pytest.warns(eb.EmonbWarning, match="file name"):
        d = eb.load_physio(shared_data / "physio" / "neurokit" / "bio_eventrelated_100hz.csv")
    assert d.attrs["sampling_rate"] == 100 and d.attrs["duration"] == 150
    assert d["photosensor"].attrs["channel_type"] == "event"
    r = eb.load_physio(shared_data / "physio" / "neurokit" / "bio_resting_5min_100hz.csv", sampling_rate=100)
    assert set(r.data_vars) == {"ecg", "ppg", "rsp"}
    for name, var, unit in [("ecg", "ecg", "mV"), ("eda", "eda", "uS"), ("resp", "rsp", "%"),
                            ("emg", "emg", "mV"), ("ppg", "ppg", "ADC")]:
        b = eb.load_physio(shared_data / "physio" / "biosppy" / f"{name}.txt")
        assert b.attrs["sampling_rate"] == 1000 and var in b and b[var].attrs["units"] == unit
    ecg = eb.load_physio(shared_data / "physio" / "biosppy" / "ecg.txt")["ecg"].values
    assert 0.1 < np.ptp(ecg) < 5  # a plausible ECG amplitude in mV after conversion
