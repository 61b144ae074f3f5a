"""Frame-level prosodic and spectral descriptors on a 10 ms grid, and their functionals.

Every descriptor is computed on the same frame grid: frame ``i`` is centred at
``i * hop / sr`` seconds (``hop = 160`` samples at 16 kHz, i.e. 10 ms). Functionals (means,
spreads, percentiles, ranges) summarise a set of frames (an utterance, a sliding window, a clip)
in the spirit of eGeMAPS; they are what the default speech-emotion model reads.

The jitter and shimmer here are frame-level *proxies* (relative change of the YIN period and of
the frame level between consecutive voiced 10 ms frames), not Praat's cycle-to-cycle measures.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "SR", "HOP", "FRAME_RATE", "N_MFCC", "N_MELS", "LLD_NAMES", "LLD_UNITS", "frame_features", "yin_pitch",
    "functionals", "window_functionals", "FUNCTIONAL_NAMES", "syllable_nuclei",
]

SR = 16000
HOP = 160
FRAME_RATE = SR / HOP  # 100 frames per second
N_MFCC = 13
N_MELS = 40  # log-mel bands (20 Hz - 8 kHz) behind the MFCCs; the spectrogram network reads them
WIN = 400  # 25 ms analysis window for level and spectrum
N_FFT = 512
PITCH_FMIN = 65.0
PITCH_FMAX = 600.0
VOICING_THRESHOLD = 0.35  # YIN aperiodicity above which a frame counts as unvoiced
SILENCE_DB = -120.0

#: Low-level descriptors fed to the functionals (mfcc_1 .. mfcc_12; c0 duplicates loudness).
LLD_NAMES: tuple[str, ...] = (
    "pitch_semitones", "loudness", "hnr", "jitter", "shimmer", "spectral_slope", "alpha_ratio",
    "spectral_centroid", "spectral_flux",
) + tuple(f"mfcc_{k}" for k in range(1, N_MFCC))
LLD_UNITS: dict[str, str] = {
    "pitch_semitones": "semitones re 27.5 Hz", "loudness": "dBFS", "hnr": "dB", "jitter": "1",
    "shimmer": "dB", "spectral_slope": "dB/kHz", "alpha_ratio": "dB", "spectral_centroid": "Hz",
    "spectral_flux": "1",
}
_VOICED_ONLY = {"pitch_semitones", "hnr", "jitter", "shimmer"}
_STATS = ("mean", "std", "p10", "p50", "p90")
#: Names of the functionals returned by :func:`functionals`, in order.
FUNCTIONAL_NAMES: tuple[str, ...] = tuple(f"{lld}_{s}" for lld in LLD_NAMES for s in _STATS) + (
    "pitch_range", "loudness_range", "voiced_fraction", "speaking_rate", "loudness_peak_rate",
)


def _frames(y: np.ndarray, length: int, hop: int, n_frames: int) -> np.ndarray:
    """Centred frames (n_frames, length) as a strided view of a zero-padded copy."""
    pad = length // 2
    need = (n_frames - 1) * hop + length
    yp = np.zeros(max(need, len(y) + 2 * pad), dtype=np.float32)
    yp[pad:pad + len(y)] = y
    return np.lib.stride_tricks.sliding_window_view(yp, length)[::hop][:n_frames]


def yin_pitch(y: np.ndarray, *, sr: int = SR, hop: int = HOP, fmin: float = PITCH_FMIN,
              fmax: float = PITCH_FMAX, n_frames: int | None = None, block: int = 2048):
    """YIN fundamental frequency and aperiodicity on centred frames.

    Parameters
    ----------
    y : ndarray, shape (n_samples,)
        Mono signal.
    sr, hop : int
        Sampling rate (Hz) and hop (samples).
    fmin, fmax : float
        Search range in Hz.

    Returns
    -------
    f0 : ndarray (n_frames,)
        Best period candidate as frequency in Hz (for every frame, voiced or not).
    aperiodicity : ndarray (n_frames,)
        Cumulative-mean-normalised difference at the chosen lag, in [0, ~1]; low = periodic.
    """
    from scipy import fft

    tau_min = max(2, int(np.floor(sr / fmax)))
    tau_max = int(np.ceil(sr / fmin))
    w = 2 * tau_max  # integration window
    length = w + tau_max
    n_fft = int(2 ** np.ceil(np.log2(length)))
    if n_frames is None:
        n_frames = 1 + len(y) // hop
    yf = np.asarray(y, np.float32)
    frames = _frames(yf, length, hop, n_frames)
    # energy of every w-sample stretch of the (zero-padded) signal from one running sum, so each
    # frame reads its lag energies as a strided view instead of summing its own squares
    pad = length // 2
    n_pad = max((n_frames - 1) * hop + length, len(yf) + 2 * pad)
    sq1 = np.zeros(n_pad + 1)
    sq1[1 + pad:1 + pad + len(yf)] = yf.astype(np.float64) ** 2
    run = np.cumsum(sq1)
    energy = np.lib.stride_tricks.sliding_window_view(run[w:] - run[:-w], tau_max + 1)[::hop][:n_frames]
    f0 = np.full(n_frames, np.nan)
    ap = np.full(n_frames, np.nan)
    taus = np.arange(tau_max + 1)
    for s in range(0, n_frames, block):
        fr = frames[s:s + block].astype(np.float32)
        a = fft.rfft(fr[:, :w], n=n_fft, axis=1)
        b = fft.rfft(fr, n=n_fft, axis=1)
        r = fft.irfft(np.conj(a) * b, n=n_fft, axis=1)[:, :tau_max + 1]
        e_tau = np.maximum(energy[s:s + block], 0.0)  # energy of x[tau : tau + w]
        d = e_tau[:, :1] + e_tau - 2.0 * r
        d[:, 0] = 0.0
        d = np.maximum(d, 0.0)
        cums = np.cumsum(d[:, 1:], axis=1)
        cmn = np.ones_like(d)
        with np.errstate(divide="ignore", invalid="ignore"):
            cmn[:, 1:] = d[:, 1:] * taus[1:] / np.where(cums > 0, cums, np.inf)
        cmn[:, 1:][cums <= 0] = 1.0
        seg = cmn[:, tau_min:tau_max]
        # first trough below the absolute threshold, else the global minimum
        trough = np.zeros_like(seg, dtype=bool)
        trough[:, 1:-1] = (seg[:, 1:-1] <= seg[:, :-2]) & (seg[:, 1:-1] <= seg[:, 2:])
        good = trough & (seg < 0.1)
        has = good.any(axis=1)
        idx = np.where(has, good.argmax(axis=1), seg.argmin(axis=1))
        rows = np.arange(len(seg))
        # parabolic interpolation around the chosen lag
        i0 = np.clip(idx, 1, seg.shape[1] - 2)
        ym, y0, yp_ = seg[rows, i0 - 1], seg[rows, i0], seg[rows, i0 + 1]
        den = ym - 2 * y0 + yp_
        with np.errstate(divide="ignore", invalid="ignore"):
            shift = np.where(np.abs(den) > 1e-12, 0.5 * (ym - yp_) / den, 0.0)
        shift = np.where(idx == i0, np.clip(shift, -1, 1), 0.0)
        tau = tau_min + idx + shift
        f0[s:s + len(fr)] = sr / tau
        ap[s:s + len(fr)] = np.clip(seg[rows, idx], 0.0, 1.0)
    return f0, ap


def _runs_median(x: np.ndarray, size: int = 5) -> np.ndarray:
    """Median filter that ignores NaN (keeps NaN where the input is NaN)."""
    from scipy.ndimage import median_filter

    if np.all(np.isnan(x)):
        return x
    filled = np.where(np.isnan(x), np.nanmedian(x), x)
    out = median_filter(filled, size=size, mode="nearest")
    out[np.isnan(x)] = np.nan
    return out


def syllable_nuclei(loudness: np.ndarray, voiced: np.ndarray, *, min_prominence: float = 3.0,
                    min_distance_s: float = 0.1) -> np.ndarray:
    """Frame indices of loudness peaks inside voiced stretches (a speaking-rate proxy)."""
    from scipy.ndimage import uniform_filter1d
    from scipy.signal import find_peaks

    lo = uniform_filter1d(np.where(np.isfinite(loudness), loudness, SILENCE_DB), 5)
    lo = np.where(voiced, lo, SILENCE_DB)
    peaks, _ = find_peaks(lo, prominence=min_prominence, distance=max(1, int(min_distance_s * FRAME_RATE)))
    return peaks


def frame_features(y: np.ndarray, *, sr: int = SR) -> dict[str, np.ndarray]:
    """All frame-level descriptors of a 16 kHz mono signal on the 10 ms grid.

    Parameters
    ----------
    y : ndarray, shape (n_samples,)
        Mono float signal at ``sr`` (must be 16000; resample first).

    Returns
    -------
    dict of str -> ndarray
        ``time`` (n_frames,) s; ``pitch`` Hz (NaN unvoiced); ``aperiodicity``; ``voiced`` bool;
        ``loudness`` dBFS; ``hnr`` dB (NaN unvoiced); ``jitter`` (relative, NaN unvoiced);
        ``shimmer`` dB (NaN unvoiced); ``spectral_slope`` dB/kHz; ``alpha_ratio`` dB;
        ``spectral_centroid`` Hz; ``spectral_flux``; ``mfcc`` (n_frames, 13); ``logmel``
        (n_frames, 40) dB, the 40-band mel power spectrum the MFCCs come from;
        ``pitch_semitones``; ``mfcc_1`` ... ``mfcc_12``.
    """
    if sr != SR:
        raise ValueError(f"frame_features expects {SR} Hz audio, got {sr}")
    y = np.ascontiguousarray(y, dtype=np.float32)
    n = 1 + len(y) // HOP
    time = np.arange(n) * (HOP / SR)

    # level: RMS over a 25 ms window, in dB re full scale
    fr = _frames(y, WIN, HOP, n)
    rms = np.sqrt(np.mean(fr.astype(np.float64) ** 2, axis=1))
    loud = np.maximum(20 * np.log10(np.maximum(rms, 1e-12)), SILENCE_DB)

    # pitch (YIN), voicing and HNR
    f0, ap = yin_pitch(y, sr=sr, n_frames=n)
    voiced = (ap < VOICING_THRESHOLD) & (loud > -60.0) & (loud > np.percentile(loud, 95) - 45.0)
    pitch = np.where(voiced, f0, np.nan)
    pitch = _runs_median(pitch, 5)
    with np.errstate(divide="ignore", invalid="ignore"):
        apc = np.clip(ap, 1e-4, 1 - 1e-4)
        hnr = np.where(voiced, 10 * np.log10((1 - apc) / apc), np.nan)
        period = 1.0 / pitch
        jit = np.abs(np.diff(period, prepend=np.nan)) / (0.5 * (period + np.roll(period, 1)))
        shim = np.abs(np.diff(loud, prepend=np.nan))
    both = voiced & np.roll(voiced, 1)
    both[0] = False
    jit = np.where(both, jit, np.nan)
    shim = np.where(both, shim, np.nan)

    # spectrum, in blocks so that long recordings never hold a full spectrogram
    spec = _spectral_features(y, n, sr=sr)
    mfcc, slope, alpha, centroid, flux = (spec[k] for k in ("mfcc", "slope", "alpha", "centroid", "flux"))
    logmel = spec["logmel"]
    silent = loud <= -90.0
    for arr in (slope, alpha, centroid, flux):
        arr[silent] = np.nan

    with np.errstate(divide="ignore", invalid="ignore"):
        semis = 12 * np.log2(pitch / 27.5)
    out = {
        "time": time, "pitch": pitch.astype(np.float32), "aperiodicity": ap.astype(np.float32),
        "voiced": voiced, "loudness": loud.astype(np.float32), "hnr": hnr.astype(np.float32),
        "jitter": jit.astype(np.float32), "shimmer": shim.astype(np.float32),
        "spectral_slope": slope.astype(np.float32), "alpha_ratio": alpha.astype(np.float32),
        "spectral_centroid": centroid.astype(np.float32), "spectral_flux": flux.astype(np.float32),
        "mfcc": mfcc, "logmel": logmel, "pitch_semitones": semis.astype(np.float32),
    }
    for k in range(1, N_MFCC):
        out[f"mfcc_{k}"] = mfcc[:, k]
    return out


def _spectral_features(y: np.ndarray, n: int, *, sr: int = SR, block: int = 3000) -> dict:
    """MFCCs, spectral slope, alpha ratio, centroid and flux on centred frames, block by block."""
    import librosa
    from scipy.fft import dct

    half = N_FFT // 2
    yp = np.zeros(max(len(y) + 2 * half, (n - 1) * HOP + N_FFT), np.float32)
    yp[half:half + len(y)] = y
    window = np.zeros(N_FFT, np.float32)
    off = (N_FFT - WIN) // 2
    window[off:off + WIN] = np.hanning(WIN + 1)[:-1].astype(np.float32)  # periodic Hann, centred
    freqs = np.fft.rfftfreq(N_FFT, 1.0 / sr)
    melfb = librosa.filters.mel(sr=sr, n_fft=N_FFT, n_mels=N_MELS, fmin=20, fmax=sr / 2).astype(np.float32)
    band = (freqs >= 50) & (freqs <= 4000)
    fk = freqs[band] / 1000.0
    fk = fk - fk.mean()
    lo_band = (freqs >= 50) & (freqs < 1000)
    hi_band = (freqs >= 1000) & (freqs <= 5000)
    out = {"mfcc": np.empty((n, N_MFCC), np.float32), "logmel": np.empty((n, N_MELS), np.float32),
           "slope": np.empty(n, np.float32),
           "alpha": np.empty(n, np.float32), "centroid": np.empty(n, np.float32),
           "flux": np.empty(n, np.float32)}
    prev = None
    frames_all = np.lib.stride_tricks.sliding_window_view(yp, N_FFT)[::HOP]
    for a in range(0, n, block):
        b = min(n, a + block)
        fr = frames_all[a:b] * window
        S = (np.abs(np.fft.rfft(fr, axis=1)) ** 2).astype(np.float32)  # (m, n_bins)
        mel = S @ melfb.T
        logmel = 10.0 * np.log10(np.maximum(mel, 1e-10))
        out["logmel"][a:b] = logmel
        out["mfcc"][a:b] = dct(logmel, type=2, norm="ortho", axis=1)[:, :N_MFCC]
        pdb = 10.0 * np.log10(S[:, band] + 1e-10)
        out["slope"][a:b] = ((pdb - pdb.mean(axis=1, keepdims=True)) @ fk) / (fk @ fk)
        out["alpha"][a:b] = 10.0 * np.log10((S[:, hi_band].sum(axis=1) + 1e-10) / (S[:, lo_band].sum(axis=1) + 1e-10))
        tot = S.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out["centroid"][a:b] = np.where(tot > 1e-10, (S @ freqs) / tot, np.nan)
        mag = np.sqrt(S)
        norm = mag / (mag.sum(axis=1, keepdims=True) + 1e-10)
        both = norm if prev is None else np.concatenate([prev, norm])
        fl = np.sum(np.diff(both, axis=0) ** 2, axis=1)
        out["flux"][a:b] = np.concatenate([[0.0], fl]) if prev is None else fl
        prev = norm[-1:]
    return out


def lld_matrix(feats: dict[str, np.ndarray]) -> np.ndarray:
    """Stack the descriptors of :data:`LLD_NAMES` into (n_frames, n_lld) float32."""
    return np.stack([np.asarray(feats[k], np.float32) for k in LLD_NAMES], axis=1)


def _sorted_quantiles(x: np.ndarray, qs) -> np.ndarray:
    """NaN-aware quantiles along axis -2 of (..., n, k): fast (sort once, NaN sorts last)."""
    xs = np.sort(x, axis=-2)
    cnt = np.sum(~np.isnan(x), axis=-2)  # (..., k)
    out = []
    for q in qs:
        pos = q * np.maximum(cnt - 1, 0)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, np.maximum(cnt - 1, 0))
        frac = pos - lo
        vlo = np.take_along_axis(xs, lo[..., None, :], axis=-2)[..., 0, :]
        vhi = np.take_along_axis(xs, hi[..., None, :], axis=-2)[..., 0, :]
        v = vlo + (vhi - vlo) * frac
        out.append(np.where(cnt > 0, v, np.nan))
    return np.stack(out, axis=0)


def _functionals_batch(L: np.ndarray, voiced: np.ndarray, nuclei: np.ndarray) -> np.ndarray:
    """Functionals for a batch of frame sets.

    L : (B, n, k) descriptor matrix with NaN for frames outside the set (and unvoiced frames for
    voiced-only descriptors); voiced : (B, n) bool (inside the set); nuclei : (B, n) bool.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(L, axis=1)
            std = np.nanstd(L, axis=1)
        q = _sorted_quantiles(L, (0.1, 0.5, 0.9))  # (3, B, k)
    stats = np.stack([mean, std, q[0], q[1], q[2]], axis=2)  # (B, k, 5)
    B = L.shape[0]
    flat = stats.reshape(B, -1)
    ip = LLD_NAMES.index("pitch_semitones")
    il = LLD_NAMES.index("loudness")
    n_in = np.sum(~np.isnan(L[:, :, il]), axis=1)
    dur = n_in / FRAME_RATE
    with np.errstate(invalid="ignore", divide="ignore"):
        vfrac = np.where(n_in > 0, voiced.sum(axis=1) / np.maximum(n_in, 1), np.nan)
        rate = np.where(dur > 0, nuclei.sum(axis=1) / np.maximum(dur, 1e-9), np.nan)
        vdur = voiced.sum(axis=1) / FRAME_RATE
        prate = np.where(vdur > 0, nuclei.sum(axis=1) / np.maximum(vdur, 1e-9), np.nan)
    extra = np.stack([q[2][:, ip] - q[0][:, ip], q[2][:, il] - q[0][:, il], vfrac, rate, prate], axis=1)
    return np.concatenate([flat, extra], axis=1).astype(np.float32)


def _prepare(feats: dict[str, np.ndarray], mask: np.ndarray):
    L = lld_matrix(feats).copy()
    voiced = np.asarray(feats["voiced"], bool)
    for j, name in enumerate(LLD_NAMES):
        if name in _VOICED_ONLY:
            L[~voiced, j] = np.nan
    L[~mask] = np.nan
    nuc = np.zeros(len(voiced), bool)
    nuc[syllable_nuclei(feats["loudness"], voiced)] = True
    return L, voiced & mask, nuc & mask


def functionals(feats: dict[str, np.ndarray], mask: np.ndarray | None = None) -> np.ndarray:
    """Utterance functionals over the frames in ``mask`` (default: all frames).

    Returns
    -------
    ndarray, shape (len(FUNCTIONAL_NAMES),)
        NaN where a descriptor has no frame (for example pitch statistics of unvoiced audio).
    """
    n = len(feats["loudness"])
    mask = np.ones(n, bool) if mask is None else np.asarray(mask, bool)
    L, v, nuc = _prepare(feats, mask)
    return _functionals_batch(L[None], v[None], nuc[None])[0]


def window_functionals(feats: dict[str, np.ndarray], mask: np.ndarray, starts: np.ndarray,
                       length: int, *, batch: int = 256) -> np.ndarray:
    """Functionals over windows ``[s, s + length)`` (frame indices) of the masked frames.

    Returns
    -------
    ndarray, shape (len(starts), len(FUNCTIONAL_NAMES))
    """
    L, v, nuc = _prepare(feats, np.asarray(mask, bool))
    n, k = L.shape
    pad = max(0, int(np.max(starts, initial=0)) + length - n)
    if pad:
        L = np.concatenate([L, np.full((pad, k), np.nan, np.float32)])
        v = np.concatenate([v, np.zeros(pad, bool)])
        nuc = np.concatenate([nuc, np.zeros(pad, bool)])
    Lw = np.lib.stride_tricks.sliding_window_view(L, length, axis=0)  # (n', k, length)
    vw = np.lib.stride_tricks.sliding_window_view(v, length)
    nw = np.lib.stride_tricks.sliding_window_view(nuc, length)
    out = np.empty((len(starts), len(FUNCTIONAL_NAMES)), np.float32)
    starts = np.asarray(starts, int)
    for b in range(0, len(starts), batch):
        s = starts[b:b + batch]
        out[b:b + batch] = _functionals_batch(np.swapaxes(Lw[s], 1, 2), vw[s], nw[s])
    return out


def segment_functionals(feats: dict[str, np.ndarray], mask: np.ndarray, bounds) -> np.ndarray:
    """Functionals over frame ranges ``[a, b)`` of the masked frames (one row per range)."""
    L, v, nuc = _prepare(feats, np.asarray(mask, bool))
    out = np.full((len(bounds), len(FUNCTIONAL_NAMES)), np.nan, np.float32)
    for i, (a, b) in enumerate(bounds):
        a, b = max(0, int(a)), min(len(v), int(b))
        if b > a:
            out[i] = _functionals_batch(L[None, a:b], v[None, a:b], nuc[None, a:b])[0]
    return out
