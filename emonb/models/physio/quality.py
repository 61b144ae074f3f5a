"""Per-window signal quality with a documented meaning.

Every analysed signal gets two variables on the session clock:

``<signal>_quality`` (float, 0 to 1)
    Constant over consecutive windows of ``quality_window`` seconds (default 5 s; 15 s for
    respiration). What the number means depends on the signal, but 1 is always "as clean as this
    signal gets" and 0 "unusable":

    * ECG, PPG -- mean Pearson correlation of each beat with the session's median beat
      (template matching, after Orphanidou et al. 2015, IEEE JBHI 19(3); negative correlations
      count as 0). A window with fewer than two beats, or with beat intervals outside
      0.27-2.5 s (24-220 bpm), scores 0 (or proportionally less).
    * EDA -- fraction of samples that pass the rules of Kleckner et al. 2018 (IEEE TBME 65(7)):
      level within 0.05-60 uS and slope within +-10 uS/s (the level rule is applied only when the
      channel is in uS).
    * RSP -- fraction of the window's variance that lies in the breathing band (the NeuroKit2
      cleaned signal, 0.05-3 Hz) rather than in faster noise.
    * EMG -- 1 unless a hard flag applies (the envelope has no cleaner yardstick).

``<signal>_flag`` (int8, CF-style ``flag_values``/``flag_meanings`` attrs)
    0 ``ok``, 1 ``flat``, 2 ``saturated``, 3 ``disconnected``, 4 ``noisy``, 5 ``too_short``.
    Hard flags (flat, saturated, disconnected, too_short) force the quality to 0.

Threshold: windows with quality below :data:`QUALITY_THRESHOLD` (0.5) are flagged ``noisy``
and every feature of that signal is NaN there, never interpolated or invented.
"""

from __future__ import annotations

import numpy as np

#: Windows whose quality is below this are treated as unusable (features NaN, flag "noisy").
QUALITY_THRESHOLD = 0.5

FLAG_OK, FLAG_FLAT, FLAG_SATURATED, FLAG_DISCONNECTED, FLAG_NOISY, FLAG_SHORT = range(6)
FLAG_NAMES = ("ok", "flat", "saturated", "disconnected", "noisy", "too_short")
FLAG_ATTRS = {
    "flag_values": list(range(len(FLAG_NAMES))),
    "flag_meanings": " ".join(FLAG_NAMES),
    "units": "1",
}

#: Default quality window (s) per signal.
QUALITY_WINDOWS = {"ecg": 5.0, "ppg": 5.0, "eda": 5.0, "rsp": 15.0, "emg": 5.0}


def window_index(n: int, w: int) -> np.ndarray:
    """Window number of each of ``n`` samples for windows of ``w`` samples."""
    return np.arange(n) // max(int(w), 1)


def clipped_mask(x: np.ndarray, *, limits=None) -> np.ndarray:
    """Samples that sit at a clipping level.

    With ``limits=(lo, hi)`` (the ADC or amplifier range) a sample is clipped when it reaches
    either. Without limits, the session's extreme value counts as a clipping level when it holds
    at least 0.1 % of all samples and at least three times as many samples as the next level
    inward -- a natural maximum is rare, a rail is a pile-up.
    """
    x = np.asarray(x, dtype=float)
    mask = np.zeros(len(x), bool)
    fin = np.isfinite(x)
    vals = x[fin]
    if len(vals) < 10:
        return mask
    if limits is not None:
        lo, hi = limits
        return fin & ((x <= lo) | (x >= hi))
    n = len(vals)
    for ext, inner in ((vals.max(), vals[vals < vals.max()]), (vals.min(), vals[vals > vals.min()])):
        n_ext = int(np.count_nonzero(vals == ext))
        if n_ext < max(3, 0.001 * n) or len(inner) == 0:
            continue
        nb = inner.max() if ext == vals.max() else inner.min()
        n_nb = int(np.count_nonzero(vals == nb))
        if n_ext >= 3 * max(n_nb, 1):
            mask |= x == ext
    return mask


def hard_flags(x: np.ndarray, fs: float, window: float, *, limits=None, min_duration: float = 0.0,
               disconnected_level=None) -> np.ndarray:
    """Flag per window: flat, saturated, disconnected, too_short or ok.

    Parameters
    ----------
    x : ndarray
        Raw signal, NaN where missing.
    fs : float
        Sampling rate in Hz.
    window : float
        Window length in seconds.
    limits : (float, float), optional
        Known clipping range of the recorder.
    min_duration : float
        A recording shorter than this (s) is flagged ``too_short`` throughout.
    disconnected_level : float, optional
        Median level below which a window counts as disconnected (EDA in uS: 0.05).

    Returns
    -------
    ndarray of int8, one flag per window.
    """
    x = np.asarray(x, dtype=float)
    n = len(x)
    w = max(int(round(window * fs)), 1)
    nwin = max(int(np.ceil(n / w)), 1)
    flags = np.zeros(nwin, np.int8)
    if n / fs < min_duration:
        flags[:] = FLAG_SHORT
        return flags
    fin = np.isfinite(x)
    clip = clipped_mask(x, limits=limits)
    scale = np.nanpercentile(x, 99) - np.nanpercentile(x, 1) if fin.any() else 0.0
    tol = max(abs(scale) * 1e-6, 1e-12)
    for k in range(nwin):
        sl = slice(k * w, min((k + 1) * w, n))
        seg = x[sl]
        f = fin[sl]
        if f.mean() < 0.5:
            flags[k] = FLAG_DISCONNECTED
            continue
        v = seg[f]
        if disconnected_level is not None and np.median(v) < disconnected_level:
            flags[k] = FLAG_DISCONNECTED
        elif np.ptp(v) <= tol:
            flags[k] = FLAG_FLAT
        elif clip[sl].mean() > 0.02:
            flags[k] = FLAG_SATURATED
    return flags


def beat_template_quality(clean: np.ndarray, peaks: np.ndarray, fs: float, w: int, nwin: int,
                          usable: np.ndarray, *, before: float, after: float) -> np.ndarray:
    """Per-window mean correlation of beats with the session's median beat (0..1).

    ``usable`` marks the windows whose beats may build the template (no hard flag).
    """
    q = np.zeros(nwin)
    peaks = np.asarray(peaks, int)
    b, a = int(round(before * fs)), int(round(after * fs))
    peaks = peaks[(peaks - b >= 0) & (peaks + a < len(clean))]
    if len(peaks) < 3:
        return q
    seg = np.stack([clean[p - b: p + a] for p in peaks])
    seg = seg - seg.mean(axis=1, keepdims=True)
    win = peaks // w
    good = usable[np.clip(win, 0, nwin - 1)]
    if good.sum() < 3:
        return q
    tmpl = np.median(seg[good], axis=0)
    tmpl = tmpl - tmpl.mean()
    den = np.linalg.norm(seg, axis=1) * np.linalg.norm(tmpl)
    with np.errstate(all="ignore"):
        corr = np.where(den > 0, seg @ tmpl / den, 0.0)
    corr = np.clip(np.nan_to_num(corr), 0.0, 1.0)
    sums = np.bincount(win, weights=corr, minlength=nwin)[:nwin]
    counts = np.bincount(win, minlength=nwin)[:nwin]
    with np.errstate(all="ignore"):
        q = np.where(counts >= 2, sums / np.maximum(counts, 1), 0.0)
    # implausible beat intervals lower the score proportionally
    rr = np.diff(peaks) / fs
    bad = (rr < 0.27) | (rr > 2.5)
    bad_cnt = np.bincount(win[1:], weights=bad.astype(float), minlength=nwin)[:nwin]
    rr_cnt = np.bincount(win[1:], minlength=nwin)[:nwin]
    with np.errstate(all="ignore"):
        frac_ok = np.where(rr_cnt > 0, 1 - bad_cnt / np.maximum(rr_cnt, 1), 0.0)
    return q * frac_ok


def band_fraction_quality(raw_hp: np.ndarray, clean: np.ndarray, w: int, nwin: int) -> np.ndarray:
    """Per-window share of variance in the cleaned (in-band) signal: var(clean)/(var(clean)+var(noise))."""
    n = len(clean)
    q = np.zeros(nwin)
    resid = raw_hp - clean
    for k in range(nwin):
        sl = slice(k * w, min((k + 1) * w, n))
        c = clean[sl]
        r = resid[sl]
        if len(c) < 2 or not np.isfinite(c).all():
            continue
        vc, vr = np.var(c), np.var(r)
        q[k] = vc / (vc + vr) if vc + vr > 0 else 0.0
    return q


def kleckner_quality(clean: np.ndarray, fs: float, w: int, nwin: int, *, in_microsiemens: bool) -> np.ndarray:
    """Per-window fraction of EDA samples passing Kleckner et al. (2018) level and slope rules."""
    n = len(clean)
    slope = np.gradient(clean) * fs  # units per second
    ok = np.abs(slope) <= 10.0 if in_microsiemens else np.ones(n, bool)
    if in_microsiemens:
        ok &= (clean >= 0.05) & (clean <= 60.0)
    ok &= np.isfinite(clean)
    idx = window_index(n, w)
    sums = np.bincount(idx, weights=ok.astype(float), minlength=nwin)[:nwin]
    counts = np.bincount(idx, minlength=nwin)[:nwin]
    return np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)


def combine(flags: np.ndarray, score: np.ndarray, threshold: float = QUALITY_THRESHOLD):
    """Final (quality, flag) per window: hard flags force 0; low scores become ``noisy``."""
    q = np.where(flags == FLAG_OK, np.clip(score, 0.0, 1.0), 0.0)
    f = flags.copy()
    f[(f == FLAG_OK) & (q < threshold)] = FLAG_NOISY
    return q, f
