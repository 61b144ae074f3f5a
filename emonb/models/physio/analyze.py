"""Physiological features on the session clock, with NeuroKit2 doing the signal processing.

>>> import emonb as eb
>>> phys = eb.analyze_physio("recording.csv", sampling_rate=100)     # doctest: +SKIP
>>> phys.ecg_rate.plot(); phys.physio_arousal.plot()                 # doctest: +SKIP
"""

from __future__ import annotations

import json
from typing import Mapping

import numpy as np

from ..._checks import check_option, check_positive, require
from ...errors import EmonbValueError
from . import quality as Q
from ._common import (SIGNAL_TYPES, fill_nan, interp_events, pick_channels, quiet, resolve_physio,
                      sampling_rate_of, time_of, to_attr, warn)

__all__ = ["analyze_physio", "MIN_SAMPLING_RATE", "MIN_DURATION", "AROUSAL_WEIGHTS"]

#: Lowest sampling rate (Hz) at which each signal is processed; below it the channel is skipped.
MIN_SAMPLING_RATE = {"ecg": 50.0, "ppg": 20.0, "eda": 8.0, "rsp": 8.0, "emg": 250.0}
#: Shortest recording (s) each signal needs; shorter ones are flagged ``too_short`` (all NaN).
MIN_DURATION = {"ecg": 4.0, "ppg": 4.0, "eda": 10.0, "rsp": 15.0, "emg": 1.0}
#: Weights of the components of ``physio_arousal`` (see :func:`analyze_physio`).
AROUSAL_WEIGHTS = {"eda": 0.5, "heart": 0.3, "rsp": 0.2}

_MICROSIEMENS = {"us", "µs", "μs", "microsiemens", "micros"}


class _Out:
    """Collects variables of one signal: per-sample arrays and event tables."""

    def __init__(self):
        self.vars: dict[str, tuple[tuple[str, ...], np.ndarray, dict]] = {}
        self.notes: list[str] = []

    def add(self, name, values, units, long_name, source, *, dims=("time",), dtype=np.float32, **extra):
        attrs = {"units": units, "long_name": long_name, "source": source}
        attrs.update({k: to_attr(v) for k, v in extra.items()})
        self.vars[name] = (dims, np.asarray(values, dtype=dtype), attrs)


def _spans(usable_win: np.ndarray, w: int, n: int):
    """Sample ranges [a, b) of consecutive usable windows."""
    out = []
    k = 0
    nwin = len(usable_win)
    while k < nwin:
        if usable_win[k]:
            j = k
            while j + 1 < nwin and usable_win[j + 1]:
                j += 1
            out.append((k * w, min((j + 1) * w, n)))
            k = j + 1
        else:
            k += 1
    return out


def _quality_vars(out: _Out, sig: str, q_win, f_win, widx, qwin, threshold, meaning):
    out.add(f"{sig}_quality", q_win[widx], "1", f"{sig.upper()} signal quality (0 unusable .. 1 clean)",
            "emonb.models.physio.quality", window_s=qwin, threshold=threshold, meaning=meaning)
    fl = dict(Q.FLAG_ATTRS)
    out.add(f"{sig}_flag", f_win[widx], "1", f"{sig.upper()} quality flag", "emonb.models.physio.quality",
            dtype=np.int8, window_s=qwin, **{k: v for k, v in fl.items() if k != "units"})
    out.vars[f"{sig}_flag"][2]["flag_values"] = np.arange(len(Q.FLAG_NAMES), dtype=np.int8)


def _beats(nk, sig, x, fs, t, *, qwin, threshold, limits, hrv_window, hrv_step):
    """ECG or PPG: clean, peaks, rate, quality (and HRV windows for ECG)."""
    out = _Out()
    n = len(x)
    w = max(int(round(qwin * fs)), 1)
    widx = Q.window_index(n, w)
    flags = Q.hard_flags(x, fs, qwin, limits=limits, min_duration=MIN_DURATION[sig])
    nwin = len(flags)
    usable = flags == Q.FLAG_OK
    clean = np.full(n, np.nan)
    peaks, span_id = [], []
    if usable.any():
        filled = fill_nan(x)
        with quiet():
            try:
                clean = np.asarray(nk.ecg_clean(filled, sampling_rate=fs) if sig == "ecg"
                                   else nk.ppg_clean(filled, sampling_rate=fs), float)
            except Exception as exc:  # NeuroKit2 gives up: NaN + flag, never a crash
                out.notes.append(f"{sig} cleaning failed: {exc}")
                usable[:] = False
                flags[flags == Q.FLAG_OK] = Q.FLAG_NOISY
        for s, (a, b) in enumerate(_spans(usable, w, n)):
            if (b - a) / fs < 3.0:
                continue
            found = None
            for fix in (True, False):
                with quiet():
                    try:
                        if sig == "ecg":
                            _, info = nk.ecg_peaks(clean[a:b], sampling_rate=fs, correct_artifacts=fix)
                            found = np.asarray(info["ECG_R_Peaks"], int)
                        else:
                            _, info = nk.ppg_peaks(clean[a:b], sampling_rate=fs, correct_artifacts=fix)
                            found = np.asarray(info["PPG_Peaks"], int)
                        break
                    except Exception as exc:  # noisy stretches crash peak detection
                        err = exc
            if found is None:
                out.notes.append(f"{sig} peak detection failed on {t[a]:.1f}-{t[b - 1]:.1f} s: {err}")
                continue
            found = np.unique(found[(found >= 0) & (found < b - a)]) + a
            peaks.append(found)
            span_id.append(np.full(len(found), s))
    peaks = np.concatenate(peaks) if peaks else np.zeros(0, int)
    span_id = np.concatenate(span_id) if span_id else np.zeros(0, int)
    before, after = (0.2, 0.4) if sig == "ecg" else (0.3, 0.4)
    score = Q.beat_template_quality(clean, peaks, fs, w, nwin, usable, before=before, after=after)
    q_win, f_win = Q.combine(flags, score, threshold)
    good_win = q_win >= threshold
    good = good_win[widx]

    keep = good_win[np.clip(peaks // w, 0, nwin - 1)] if len(peaks) else np.zeros(0, bool)
    kp, ks = peaks[keep], span_id[keep]
    # beat intervals: consecutive detected peaks of one span, both kept, physiologically plausible
    full_next = {p: q for p, q in zip(peaks[:-1], peaks[1:])}
    rr_t, rr = [], []
    for p, q_, s1, s2 in zip(kp[:-1], kp[1:], ks[:-1], ks[1:]):
        if s1 != s2 or full_next.get(p) != q_:
            continue
        d = (q_ - p) / fs
        if 0.27 <= d <= 2.5:
            rr_t.append(t[q_])
            rr.append(d)
    rr_t, rr = np.asarray(rr_t), np.asarray(rr)
    rate = interp_events(rr_t, 60.0 / rr if len(rr) else rr, t, max_gap=2.5)
    rate[~good] = np.nan
    clean_out = clean.copy()
    clean_out[~good] = np.nan

    units_in = "mV" if sig == "ecg" else "a.u."
    src = "neurokit2.ecg_clean(method='neurokit')" if sig == "ecg" else "neurokit2.ppg_clean(method='elgendi')"
    out.add(f"{sig}_clean", clean_out, units_in, f"cleaned {sig.upper()}", src)
    out.add(f"{sig}_rate", rate, "bpm", "heart rate" if sig == "ecg" else "pulse rate",
            ("neurokit2.ecg_peaks(method='neurokit')" if sig == "ecg" else "neurokit2.ppg_peaks(method='elgendi')")
            + "; 60 / beat interval, linear between beats", valid_interval_s=[0.27, 2.5])
    meaning = "mean correlation of beats with the session's median beat"
    _quality_vars(out, sig, q_win, f_win, widx, qwin, threshold, meaning)
    dim = f"{sig}_beat"
    name = "ecg_r_peak" if sig == "ecg" else "ppg_peak"
    out.add(name, t[kp] if len(kp) else np.zeros(0), "s",
            "R-peak times (session clock)" if sig == "ecg" else "systolic peak times (session clock)",
            "neurokit2." + ("ecg_peaks" if sig == "ecg" else "ppg_peaks"), dims=(dim,), dtype=np.float64)

    if sig == "ecg":
        hrv = _hrv_windows(rr_t, rr, t, window=hrv_window, step=hrv_step)
        for key, (vals, units, ln) in hrv.items():
            out.add(f"ecg_{key}", vals, units, ln, "emonb sliding-window HRV on NeuroKit2 R-peaks",
                    window_s=hrv_window, step_s=hrv_step)
    return out


def _hrv_windows(rr_t, rr, t, *, window, step):
    """RMSSD, SDNN (ms) and HF/LF power (ms^2) in sliding windows, held on the grid.

    Each grid sample takes the value of the window centred nearest to it (samples before the first
    or after the last centre take that window, which contains them). HF (0.15-0.4 Hz) is
    computed for windows of 60 s or more, LF (0.04-0.15 Hz) and LF/HF for 120 s or more
    (Task Force of the ESC and NASPE, 1996); otherwise they are NaN.
    """
    from scipy.signal import welch

    names = {"rmssd": ("ms", "RMSSD of beat intervals"), "sdnn": ("ms", "SDNN of beat intervals"),
             "hf": ("ms2", "HF power 0.15-0.4 Hz"), "lf": ("ms2", "LF power 0.04-0.15 Hz"),
             "lf_hf": ("1", "LF/HF ratio")}
    t_start, t_end = t[0], t[-1]
    centres = np.arange(t_start + window / 2, t_end - window / 2 + 1e-9, step)
    vals = {k: np.full(len(centres), np.nan) for k in names}
    for i, c in enumerate(centres):
        m = (rr_t > c - window / 2) & (rr_t <= c + window / 2)
        r = rr[m]
        if len(r) < 5 or r.sum() < 0.7 * window:
            continue
        tt = rr_t[m]
        # successive differences only between adjacent beats (no gap between them)
        adjacent = np.abs((tt[1:] - tt[:-1]) - r[1:]) < 1e-6 + 0.5 / 1000
        d = np.diff(r * 1000.0)[adjacent]
        vals["rmssd"][i] = np.sqrt(np.mean(d ** 2)) if len(d) >= 3 else np.nan
        vals["sdnn"][i] = np.std(r * 1000.0, ddof=1)
        if window >= 60:
            fs_i = 4.0
            grid = np.arange(tt[0], tt[-1], 1 / fs_i)
            if len(grid) >= 64:
                series = np.interp(grid, tt, r * 1000.0)
                f, p = welch(series, fs=fs_i, nperseg=min(len(series), 256), detrend="linear")
                df = f[1] - f[0]
                hf = p[(f >= 0.15) & (f < 0.4)].sum() * df
                vals["hf"][i] = hf
                if window >= 120:
                    lf = p[(f >= 0.04) & (f < 0.15)].sum() * df
                    vals["lf"][i] = lf
                    vals["lf_hf"][i] = lf / hf if hf > 0 else np.nan
    res = {}
    if len(centres):
        k = np.clip(np.round((t - centres[0]) / step).astype(int), 0, len(centres) - 1)
        # each sample: the window centred nearest to it (edge samples: the first/last window,
        # which contains them)
        near = np.ones(len(t), bool)
    for key, (units, ln) in names.items():
        v = np.full(len(t), np.nan)
        if len(centres):
            v[near] = vals[key][k[near]]
        res[key] = (v, units, ln)
    return res


def _eda(nk, x, fs, t, units, *, qwin, threshold, limits, method):
    out = _Out()
    n = len(x)
    w = max(int(round(qwin * fs)), 1)
    widx = Q.window_index(n, w)
    in_us = str(units).strip().lower() in _MICROSIEMENS
    if in_us and np.isfinite(x).any() and np.nanmedian(x) > 60:
        out.notes.append(f"EDA median {np.nanmedian(x):.4g} is above 60 uS: these look like raw counts, "
                         "not uS; the uS level/slope rules are skipped")
        in_us = False
        units = "a.u."
    flags = Q.hard_flags(x, fs, qwin, limits=limits, min_duration=MIN_DURATION["eda"],
                         disconnected_level=0.05 if in_us else None)
    nwin = len(flags)
    usable = flags == Q.FLAG_OK
    clean = tonic = phasic = np.full(n, np.nan)
    scr = {k: np.zeros(0) for k in ("onset", "peak", "amplitude", "rise_time", "recovery_time")}
    score = np.zeros(nwin)
    if usable.any():
        with quiet():
            try:
                # owned copies: NaN is written into all three below, and pandas >= 3 hands out
                # read-only views (copy-on-write)
                clean = np.array(nk.eda_clean(fill_nan(x), sampling_rate=fs), float)
                dec = nk.eda_phasic(clean, sampling_rate=fs, method=method)
                tonic = np.array(dec["EDA_Tonic"], float)
                phasic = np.array(dec["EDA_Phasic"], float)
            except Exception as exc:
                out.notes.append(f"eda processing failed: {exc}")
                usable[:] = False
        score = Q.kleckner_quality(clean, fs, w, nwin, in_microsiemens=in_us)
    q_win, f_win = Q.combine(flags, score, threshold)
    good_win = q_win >= threshold
    good = good_win[widx]
    if good.any():
        with quiet():
            try:
                _, info = nk.eda_peaks(np.where(good, phasic, 0.0), sampling_rate=fs)
                on = np.asarray(info["SCR_Onsets"], float)
                pk = np.asarray(info["SCR_Peaks"], float)
                ok = np.isfinite(on) & np.isfinite(pk)
                oi = np.where(ok, on, 0).astype(int)
                pi = np.where(ok, pk, 0).astype(int)
                ok &= good[oi] & good[pi]
                scr = {"onset": t[oi[ok]], "peak": t[pi[ok]],
                       "amplitude": np.asarray(info["SCR_Amplitude"], float)[ok],
                       "rise_time": np.asarray(info["SCR_RiseTime"], float)[ok],
                       "recovery_time": np.asarray(info["SCR_RecoveryTime"], float)[ok]}
            except Exception as exc:
                out.notes.append(f"SCR detection failed: {exc}")
    for arr in (clean, tonic, phasic):
        arr[~good] = np.nan
    u = "uS" if in_us else str(units)
    src = f"neurokit2.eda_clean(method='neurokit'); neurokit2.eda_phasic(method={method!r})"
    out.add("eda_clean", clean, u, "cleaned EDA", src)
    out.add("eda_tonic", tonic, u, "tonic EDA (skin conductance level)", src)
    out.add("eda_phasic", phasic, u, "phasic EDA (skin conductance responses)", src)
    _quality_vars(out, "eda", q_win, f_win, widx, qwin, threshold,
                  "fraction of samples passing Kleckner et al. 2018 level/slope rules")
    s = "neurokit2.eda_peaks(method='neurokit', amplitude_min=0.1)"
    out.add("scr_onset", scr["onset"], "s", "SCR onset (session clock)", s, dims=("scr",), dtype=np.float64)
    out.add("scr_peak", scr["peak"], "s", "SCR peak (session clock)", s, dims=("scr",), dtype=np.float64)
    out.add("scr_amplitude", scr["amplitude"], u, "SCR amplitude (peak minus onset)", s, dims=("scr",),
            dtype=np.float64)
    out.add("scr_rise_time", scr["rise_time"], "s", "SCR rise time", s, dims=("scr",), dtype=np.float64)
    out.add("scr_recovery_time", scr["recovery_time"], "s", "SCR half-recovery time", s, dims=("scr",),
            dtype=np.float64)
    return out


def _rsp(nk, x, fs, t, units, *, qwin, threshold, limits):
    from scipy.signal import butter, sosfiltfilt

    out = _Out()
    n = len(x)
    w = max(int(round(qwin * fs)), 1)
    widx = Q.window_index(n, w)
    flags = Q.hard_flags(x, fs, qwin, limits=limits, min_duration=MIN_DURATION["rsp"])
    nwin = len(flags)
    usable = flags == Q.FLAG_OK
    clean = np.full(n, np.nan)
    score = np.zeros(nwin)
    pk = tr = np.zeros(0, int)
    if usable.any():
        filled = fill_nan(x)
        with quiet():
            try:
                clean = np.array(nk.rsp_clean(filled, sampling_rate=fs), float)  # owned: NaN written below
                hp = sosfiltfilt(butter(2, 0.05, "highpass", fs=fs, output="sos"), filled)
                score = Q.band_fraction_quality(hp, clean, w, nwin)
                _, info = nk.rsp_peaks(clean, sampling_rate=fs)
                pk = np.asarray(info["RSP_Peaks"], int)
                tr = np.asarray(info["RSP_Troughs"], int)
            except Exception as exc:
                out.notes.append(f"rsp processing failed: {exc}")
    q_win, f_win = Q.combine(flags, score, threshold)
    good_win = q_win >= threshold
    good = good_win[widx]
    pk = pk[good[pk]] if len(pk) else pk
    tr = tr[good[tr]] if len(tr) else tr
    # breaths: trough -> next peak (inhalation); rate from consecutive troughs
    d = np.diff(tr) / fs
    okr = (d >= 1.5) & (d <= 20.0)
    rate = interp_events(t[tr[1:]][okr], 60.0 / d[okr], t, max_gap=20.0) if len(tr) > 1 else np.full(n, np.nan)
    inh, exh, amp = [], [], []
    for a in tr:
        j = np.searchsorted(pk, a, side="right")
        if j < len(pk) and (pk[j] - a) / fs <= 10.0:
            inh.append(a)
            exh.append(pk[j])
            amp.append(clean[pk[j]] - clean[a])
    inh, exh, amp = np.asarray(inh, int), np.asarray(exh, int), np.asarray(amp, float)
    amplitude = interp_events(t[exh], amp, t, max_gap=20.0) if len(exh) else np.full(n, np.nan)
    for arr in (clean, rate, amplitude):
        arr[~good] = np.nan
    src = "neurokit2.rsp_clean(method='khodadad2018'); neurokit2.rsp_peaks"
    out.add("rsp_clean", clean, str(units), "cleaned respiration", src)
    out.add("rsp_rate", rate, "breaths/min", "breathing rate (trough to trough)", src)
    out.add("rsp_amplitude", amplitude, str(units), "breath amplitude (peak minus preceding trough)", src)
    _quality_vars(out, "rsp", q_win, f_win, widx, qwin, threshold,
                  "share of variance in the 0.05-3 Hz breathing band")
    out.add("rsp_inhale_onset", t[inh] if len(inh) else np.zeros(0), "s", "inhalation onset (trough)", src,
            dims=("rsp_breath",), dtype=np.float64)
    out.add("rsp_exhale_onset", t[exh] if len(exh) else np.zeros(0), "s", "exhalation onset (peak)", src,
            dims=("rsp_breath",), dtype=np.float64)
    return out


def _emg(nk, x, fs, t, units, *, qwin, threshold, limits):
    out = _Out()
    n = len(x)
    w = max(int(round(qwin * fs)), 1)
    widx = Q.window_index(n, w)
    flags = Q.hard_flags(x, fs, qwin, limits=limits, min_duration=MIN_DURATION["emg"])
    usable = flags == Q.FLAG_OK
    amp = np.full(n, np.nan)
    on = off = np.zeros(0, int)
    if usable.any():
        with quiet():
            try:
                clean = np.asarray(nk.emg_clean(fill_nan(x), sampling_rate=fs), float)
                amp = np.array(nk.emg_amplitude(clean), float)  # owned: NaN written below
            except Exception as exc:
                out.notes.append(f"emg processing failed: {exc}")
                usable[:] = False
    q_win, f_win = Q.combine(flags, usable.astype(float), threshold)
    good = (q_win >= threshold)[widx]
    if good.any():
        on, off = _emg_bursts(amp, good, fs)
    amp[~good] = np.nan
    src = "neurokit2.emg_clean(method='biosppy'); neurokit2.emg_amplitude"
    out.add("emg_amplitude", amp, str(units), "EMG linear envelope", src)
    _quality_vars(out, "emg", q_win, f_win, widx, qwin, threshold, "1 unless flat/saturated/disconnected")
    s = "emonb: envelope above quiet-baseline mean + 3 SD for >= 100 ms (Hodges & Bui 1996)"
    out.add("emg_onset", t[on] if len(on) else np.zeros(0), "s", "EMG burst onset", s, dims=("emg_burst",),
            dtype=np.float64)
    out.add("emg_offset", t[off] if len(off) else np.zeros(0), "s", "EMG burst offset", s, dims=("emg_burst",),
            dtype=np.float64)
    return out


def _emg_bursts(amp: np.ndarray, good: np.ndarray, fs: float, *, k: float = 3.0, min_dur: float = 0.1):
    """Burst onsets/offsets (samples): the envelope above the quiet baseline's mean + k SD.

    The baseline is the quietest tenth of 0.5-s windows of the usable signal (Hodges & Bui 1996,
    Electroencephalogr. Clin. Neurophysiol. 101:511-519, threshold on baseline mean + k SD).
    The envelope is first smoothed with a 100-ms moving average. Gaps shorter than ``min_dur``
    are merged, bursts shorter than ``min_dur`` are dropped.
    """
    from scipy.ndimage import uniform_filter1d

    amp = uniform_filter1d(np.where(good, amp, 0.0), max(int(0.1 * fs), 1))
    w = max(int(0.5 * fs), 1)
    nw = len(amp) // w
    if nw < 2:
        return np.zeros(0, int), np.zeros(0, int)
    blocks = amp[: nw * w].reshape(nw, w)
    okb = good[: nw * w].reshape(nw, w).all(axis=1)
    if okb.sum() < 2:
        return np.zeros(0, int), np.zeros(0, int)
    means = blocks.mean(axis=1)
    quiet_b = blocks[okb][np.argsort(means[okb])[: max(1, okb.sum() // 10)]]
    thr = quiet_b.mean() + k * quiet_b.std()
    active = (amp > thr) & good
    d = np.diff(np.concatenate([[0], active.astype(np.int8), [0]]))
    on, off = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    gap = int(min_dur * fs)
    if len(on) > 1:  # merge short gaps
        keep = np.concatenate([[True], on[1:] - off[:-1] > gap])
        on = on[keep]
        off = np.concatenate([off[:-1][keep[1:]], off[-1:]])
    long_ = (off - on) >= gap
    return on[long_], np.clip(off[long_] - 1, 0, len(amp) - 1)


def _robust_z(v: np.ndarray) -> np.ndarray:
    fin = np.isfinite(v)
    if fin.sum() < 10:
        return np.full(len(v), np.nan)
    med = np.median(v[fin])
    mad = 1.4826 * np.median(np.abs(v[fin] - med))
    if not mad > 0:
        mad = np.std(v[fin])
    if not mad > 0:
        return np.full(len(v), np.nan)
    return (v - med) / mad


def _arousal(vars_: dict, n: int):
    """physio_arousal and its confidence from the per-sample variables already computed."""
    comps = []
    if "eda_phasic" in vars_:
        comps.append(("eda", vars_["eda_phasic"][1], vars_["eda_quality"][1]))
    if "ecg_rate" in vars_:
        comps.append(("heart", vars_["ecg_rate"][1], vars_["ecg_quality"][1]))
    elif "ppg_rate" in vars_:
        comps.append(("heart", vars_["ppg_rate"][1], vars_["ppg_quality"][1]))
    if "rsp_rate" in vars_:
        comps.append(("rsp", vars_["rsp_rate"][1], vars_["rsp_quality"][1]))
    num = np.zeros(n)
    den = np.zeros(n)
    conf = np.zeros(n)
    used = []
    for key, v, q in comps:
        z = _robust_z(np.asarray(v, float))
        ok = np.isfinite(z)
        if not ok.any():
            continue
        used.append(key)
        wgt = AROUSAL_WEIGHTS[key]
        num[ok] += wgt * z[ok]
        den[ok] += wgt
        conf[ok] += wgt * np.asarray(q, float)[ok]
    with np.errstate(all="ignore"):
        z = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
    arousal = np.tanh(z / 2.0)
    conf = conf / sum(AROUSAL_WEIGHTS.values())
    return arousal, conf, used


def analyze_physio(src, *, sampling_rate: float | None = None, channels: Mapping[str, str] | None = None,
                   quality_window: float | Mapping[str, float] | None = None,
                   quality_threshold: float = Q.QUALITY_THRESHOLD, hrv_window: float = 60.0,
                   hrv_step: float = 5.0, eda_method: str = "highpass",
                   limits: Mapping[str, tuple[float, float]] | None = None, rate: float | None = None,
                   progress: bool = True):
    """Features of ECG, PPG, EDA, respiration and EMG on the session clock.

    NeuroKit2 cleans the signals, finds R-peaks, pulse peaks, breaths, skin-conductance responses
    and EMG bursts; emonb adds per-window quality (see :mod:`emonb.models.physio.quality`), NaN
    where a stretch is flat, saturated, disconnected or too noisy, sliding-window HRV, and a
    physiological arousal index.

    Parameters
    ----------
    src : str, path, xarray.Dataset or xarray.DataTree
        A physio file, a physio node (variables named by channel type, ``attrs['sampling_rate']``)
        or a session whose ``physio`` child is used.
    sampling_rate : float, optional
        Only for files without a time column.
    channels : dict, optional
        ``{"variable": "ecg" | "ppg" | "eda" | "rsp" | "emg"}`` for names emonb does not recognise.
    quality_window : float or dict, optional
        Quality window in seconds (one value, or per signal). Default 5 s, 15 s for respiration.
    quality_threshold : float
        Windows with quality below this are NaN (default 0.5).
    hrv_window, hrv_step : float
        Sliding HRV window and step, seconds (defaults 60 and 5). HF needs >= 60 s, LF >= 120 s.
    eda_method : {"highpass", "cvxeda", "smoothmedian", "median"}
        Tonic/phasic decomposition (``neurokit2.eda_phasic``).
    limits : dict, optional
        Known recorder range per signal, ``{"eda": (0, 4095)}``, to flag clipping exactly.
    rate : float, optional
        Resample the per-sample output to this rate (Hz); default: the input rate.
    progress : bool
        Show a progress bar over signals.

    Returns
    -------
    xarray.Dataset
        On ``time`` (float64 s, session clock), for each signal present:

        - ``ecg_clean`` (mV), ``ecg_rate`` (bpm), ``ecg_quality`` (0-1), ``ecg_flag``;
          ``ecg_rmssd``, ``ecg_sdnn`` (ms), ``ecg_hf``, ``ecg_lf`` (ms2), ``ecg_lf_hf`` (1) from
          sliding windows; R-peak times ``ecg_r_peak(ecg_beat)`` (s).
        - ``ppg_clean``, ``ppg_rate`` (bpm), ``ppg_quality``, ``ppg_flag``, ``ppg_peak(ppg_beat)``.
        - ``eda_clean``, ``eda_tonic``, ``eda_phasic`` (uS), ``eda_quality``, ``eda_flag``;
          skin-conductance responses on an ``scr`` dimension: ``scr_onset``, ``scr_peak`` (s),
          ``scr_amplitude`` (uS), ``scr_rise_time``, ``scr_recovery_time`` (s).
        - ``rsp_clean``, ``rsp_rate`` (breaths/min), ``rsp_amplitude``, ``rsp_quality``,
          ``rsp_flag``; ``rsp_inhale_onset(rsp_breath)``, ``rsp_exhale_onset(rsp_breath)`` (s).
        - ``emg_amplitude`` (input units), ``emg_quality``, ``emg_flag``; bursts
          ``emg_onset(emg_burst)``, ``emg_offset(emg_burst)`` (s).
        - ``physio_arousal`` (-1..1) and ``physio_arousal_confidence`` (0..1).

    Notes
    -----
    **Arousal.** Each available component -- phasic EDA, heart rate (ECG, else PPG), breathing
    rate -- is z-scored within the session (median and 1.4826 x MAD over its valid samples), the
    z-scores are averaged with weights 0.5 (EDA), 0.3 (heart), 0.2 (respiration) over the
    components valid at each instant, and ``physio_arousal = tanh(z / 2)`` (so +-1 SD maps to
    +-0.46). EDA gets the largest weight because sympathetic skin-conductance responses are the
    most consistent autonomic marker of arousal (Boucsein 2012, *Electrodermal Activity*;
    Dawson, Schell & Filion 2007); heart and breathing rate rise with arousal in most emotion
    inductions but less uniformly (Kreibig 2010, *Biol. Psychol.* 84:394-421).
    ``physio_arousal_confidence`` is the weighted quality of the components, divided by the sum
    of *all* weights: a missing or unusable signal lowers it, a session with only ECG reaches at
    most 0.3. The index is relative to the session: it compares moments, not people.
    """
    nk = require("neurokit2", extra="physio", purpose="physiological signal processing")
    from tqdm.auto import tqdm
    import xarray as xr

    quality_threshold = float(quality_threshold)
    if not 0 <= quality_threshold <= 1:
        raise EmonbValueError(f"quality_threshold must be within 0..1, got {quality_threshold!r}")
    hrv_window = check_positive("hrv_window", hrv_window)
    hrv_step = check_positive("hrv_step", hrv_step)
    check_option("eda_method", eda_method, ("highpass", "cvxeda", "smoothmedian", "median"))
    rate = check_positive("rate", rate, allow_none=True)
    qwins = dict(Q.QUALITY_WINDOWS)
    if isinstance(quality_window, Mapping):
        qwins.update({k: check_positive(f"quality_window[{k!r}]", v) for k, v in quality_window.items()})
    elif quality_window is not None:
        qwins = {k: check_positive("quality_window", quality_window) for k in qwins}
    limits = dict(limits or {})

    node = resolve_physio(src, sampling_rate=sampling_rate)
    fs = sampling_rate_of(node)
    t = time_of(node, fs)
    n = len(t)
    chosen, unused = pick_channels(node, channels)
    if not chosen:
        raise EmonbValueError(
            "no ECG, PPG, EDA, RSP or EMG channel recognised among the physio variables "
            f"({', '.join(map(str, node.data_vars)) or 'none'}); name them by type or pass "
            "channels={'name': 'ecg', ...}")
    skipped: dict[str, str] = {}
    outs: dict[str, _Out] = {}
    for sig in tqdm([s for s in SIGNAL_TYPES if s in chosen], desc="physio", disable=not progress):
        name = chosen[sig]
        var = node[name]
        try:
            x = np.asarray(var.values, dtype=float)
        except (TypeError, ValueError):
            skipped[name] = "not numeric"
            continue
        if fs < MIN_SAMPLING_RATE[sig]:
            skipped[name] = (f"sampling rate {fs:g} Hz is too low for {sig.upper()} "
                             f"(needs >= {MIN_SAMPLING_RATE[sig]:g} Hz)")
            warn(f"{name}: {skipped[name]}; skipped")
            continue
        units = var.attrs.get("units") or {"ecg": "mV", "eda": "uS"}.get(sig, "a.u.")
        kw = dict(qwin=qwins[sig], threshold=quality_threshold, limits=limits.get(sig))
        if sig in ("ecg", "ppg"):
            outs[sig] = _beats(nk, sig, x, fs, t, hrv_window=hrv_window, hrv_step=hrv_step, **kw)
        elif sig == "eda":
            outs[sig] = _eda(nk, x, fs, t, units, method=eda_method, **kw)
        elif sig == "rsp":
            outs[sig] = _rsp(nk, x, fs, t, units, **kw)
        else:
            outs[sig] = _emg(nk, x, fs, t, units, **kw)
        if sig == "ecg" and units != "mV":
            outs[sig].vars["ecg_clean"][2]["units"] = str(units)
        for note in outs[sig].notes:
            warn(f"{name}: {note}")
    if not outs:
        raise EmonbValueError("no physio channel could be analysed: " +
                              "; ".join(f"{k}: {v}" for k, v in skipped.items()))

    allvars: dict = {}
    notes: list[str] = []
    for o in outs.values():
        allvars.update(o.vars)
        notes += o.notes
    arousal, conf, used = _arousal(allvars, n)
    allvars["physio_arousal"] = (("time",), arousal.astype(np.float32), {
        "units": "1", "long_name": "physiological arousal (-1..1, within-session)",
        "source": "emonb: tanh(weighted robust z of phasic EDA, heart rate, breathing rate / 2)",
        "components": to_attr(used), "weights": to_attr(AROUSAL_WEIGHTS)})
    allvars["physio_arousal_confidence"] = (("time",), conf.astype(np.float32), {
        "units": "1", "long_name": "confidence of physio_arousal (0..1)",
        "source": "weighted signal quality of the arousal components / sum of all weights"})

    ds = xr.Dataset({k: (d, v, a) for k, (d, v, a) in allvars.items()}, coords={"time": ("time", t)})
    ds["time"].attrs.update(units="s", long_name="session time")
    if rate is not None and abs(rate - fs) > 1e-9:
        ds = _resample(ds, rate)
    import neurokit2

    params = {"quality_window": qwins, "quality_threshold": quality_threshold, "hrv_window": hrv_window,
              "hrv_step": hrv_step, "eda_method": eda_method, "limits": limits, "rate": rate,
              "channels": chosen}
    ds.attrs.update({
        "model": "neurokit2", "model_version": neurokit2.__version__, "model_license": "MIT",
        "device": "cpu", "parameters": json.dumps(params, default=str),
        "quality_threshold": quality_threshold, "hrv_window": hrv_window, "hrv_step": hrv_step,
        "eda_method": eda_method,
        "sampling_rate": float(rate or fs), "input_sampling_rate": fs,
        "t0": float(node.attrs.get("t0", t[0] if n else 0.0) or 0.0),
        "signals": to_attr(list(outs)), "channels": to_attr(chosen),
        "ignored_channels": to_attr(unused), "skipped_channels": to_attr(skipped),
        "notes": to_attr(notes),
        "citation": "Makowski et al. (2021) NeuroKit2: A Python toolbox for neurophysiological signal "
                    "processing. Behavior Research Methods 53:1689-1696",
    })
    return ds


def _resample(ds, rate: float):
    """Per-sample variables onto a regular grid at ``rate`` (linear; flags nearest)."""
    import xarray as xr

    t = ds["time"].values
    grid = np.arange(t[0], t[-1] + 1e-12, 1.0 / rate)
    new = {}
    for k, v in ds.data_vars.items():
        if v.dims != ("time",):
            new[k] = v
            continue
        vals = v.values.astype(float)
        if k.endswith("_flag"):
            idx = np.clip(np.searchsorted(t, grid), 0, len(t) - 1)
            out = vals[idx].astype(v.dtype)
        else:
            fin = np.isfinite(vals)
            out = np.interp(grid, t, np.where(fin, vals, 0.0))
            bad = np.interp(grid, t, (~fin).astype(float)) > 0
            out[bad] = np.nan
            out = out.astype(v.dtype)
        new[k] = xr.DataArray(out, dims=("time",), attrs=v.attrs)
    res = xr.Dataset(new, coords={"time": ("time", grid, ds["time"].attrs)}, attrs=ds.attrs)
    return res
