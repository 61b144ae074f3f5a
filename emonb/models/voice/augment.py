"""Audio perturbations for training and stress-testing the speech-emotion models.

Every function takes a 16 kHz mono float32 signal and returns a new array (the input is never
written). Randomness comes only from the ``rng`` passed in (``numpy.random.Generator``), so a
seeded chain gives the same audio every time.

- :func:`speed_perturb`: resampling by a factor (tempo and pitch change together, as in Kaldi's
  speed perturbation).
- :func:`pitch_shift`: pitch by semitones at constant tempo (librosa's phase vocoder + resampling).
- :func:`add_noise`: white, pink or brown noise at a given SNR (dB, relative to the active speech).
- :func:`reverberate`: convolution with a synthetic room impulse response (exponentially decaying
  noise with a direct path; RT60 in seconds).
- :func:`telephone`: 300-3400 Hz band, 8 kHz sampling and G.711 mu-law 8-bit coding; returns the
  8 kHz signal (feed it to the models with ``sampling_rate=8000``, the path real calls take).
- :func:`random_chain`: a random combination of the above for training.
"""

from __future__ import annotations

import numpy as np

__all__ = ["speed_perturb", "pitch_shift", "add_noise", "reverberate", "telephone", "random_chain",
           "active_rms", "CONDITIONS", "apply_condition"]

SR = 16000


def active_rms(y: np.ndarray, *, sr: int = SR, floor_db: float = 35.0) -> float:
    """RMS over the 25 ms frames within ``floor_db`` of the loudest frame (the active speech)."""
    y = np.asarray(y, np.float64)
    n = int(0.025 * sr)
    if len(y) < n:
        return float(np.sqrt(np.mean(y ** 2))) if len(y) else 0.0
    fr = y[: len(y) // n * n].reshape(-1, n)
    e = np.mean(fr ** 2, axis=1)
    top = e.max()
    if top <= 0:
        return 0.0
    act = e >= top * 10 ** (-floor_db / 10)
    return float(np.sqrt(e[act].mean()))


def speed_perturb(y: np.ndarray, factor: float) -> np.ndarray:
    """Play ``factor`` times faster (``factor > 1`` shortens the clip and raises the pitch)."""
    from fractions import Fraction

    from scipy.signal import resample_poly

    fr = Fraction(float(factor)).limit_denominator(100)
    return resample_poly(np.asarray(y, np.float64), fr.denominator, fr.numerator).astype(np.float32)


def pitch_shift(y: np.ndarray, semitones: float, *, sr: int = SR) -> np.ndarray:
    """Shift the pitch by ``semitones`` keeping the duration."""
    import librosa

    return librosa.effects.pitch_shift(np.asarray(y, np.float32), sr=sr, n_steps=float(semitones)).astype(np.float32)


def _colored_noise(n: int, color: str, rng: np.random.Generator) -> np.ndarray:
    white = rng.standard_normal(n)
    if color == "white":
        return white
    spec = np.fft.rfft(white)
    f = np.fft.rfftfreq(n)
    f[0] = f[1] if n > 1 else 1.0
    power = {"pink": 1.0, "brown": 2.0}[color]
    x = np.fft.irfft(spec / f ** (power / 2), n=n)
    return x / (np.std(x) + 1e-12)


def add_noise(y: np.ndarray, snr_db: float, rng: np.random.Generator, *, color: str = "white") -> np.ndarray:
    """Add stationary ``color`` noise (white, pink, brown) at ``snr_db`` dB below the active speech."""
    y = np.asarray(y, np.float32)
    if not len(y):
        return y.copy()
    noise = _colored_noise(len(y), color, rng)
    level = active_rms(y) / (10 ** (snr_db / 20))
    out = y + (level * noise / (np.sqrt(np.mean(noise ** 2)) + 1e-12)).astype(np.float32)
    return _limit(out)


def _limit(y: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    return (y / peak * 0.99).astype(np.float32) if peak > 0.99 else y.astype(np.float32)


def reverberate(y: np.ndarray, rt60: float, rng: np.random.Generator, *, sr: int = SR,
                direct_ratio_db: float = 0.0) -> np.ndarray:
    """Convolve with a synthetic room impulse response of reverberation time ``rt60`` (s).

    The response is a unit direct path followed (after 2-8 ms) by Gaussian noise decaying by
    60 dB over ``rt60``, scaled so that the reverberant energy is ``direct_ratio_db`` below the
    direct path. The output keeps the input's active level and length.
    """
    from scipy.signal import fftconvolve

    y = np.asarray(y, np.float32)
    n = max(int(rt60 * sr), 16)
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60)
    gap = int(rng.uniform(0.002, 0.008) * sr)
    tail[:gap] = 0.0
    tail *= 10 ** (-direct_ratio_db / 20) / (np.sqrt(np.sum(tail ** 2)) + 1e-12)
    rir = tail
    rir[0] = 1.0
    out = fftconvolve(y.astype(np.float64), rir)[: len(y)]
    a, b = active_rms(y), active_rms(out)
    if b > 0:
        out *= a / b
    return _limit(out.astype(np.float32))


def telephone(y: np.ndarray, *, sr: int = SR, mu_law: bool = True) -> np.ndarray:
    """Telephone channel: 300-3400 Hz band-pass, 8 kHz sampling, G.711 mu-law (8 bit).

    Returns
    -------
    ndarray (n * 8000 / sr,) float32
        The 8 kHz signal.
    """
    from scipy.signal import butter, resample_poly, sosfilt

    sos = butter(4, [300, 3400], btype="bandpass", fs=sr, output="sos")
    x = resample_poly(sosfilt(sos, np.asarray(y, np.float64)), 1, sr // 8000)
    x = np.clip(x, -1.0, 1.0)
    if mu_law:
        mu = 255.0
        c = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
        q = np.round((c + 1) / 2 * mu) / mu * 2 - 1  # 8-bit code
        x = np.sign(q) * ((1 + mu) ** np.abs(q) - 1) / mu
    return x.astype(np.float32)


def random_chain(y: np.ndarray, rng: np.random.Generator, *, sr: int = SR) -> tuple[np.ndarray, int, str]:
    """A random training perturbation of ``y``.

    Draws: speed 0.9-1.1 (p 0.4) or pitch +-2 semitones (p 0.3); reverberation RT60 0.2-0.9 s
    (p 0.3); noise of a random colour at 0-30 dB SNR (p 0.5); telephone band (p 0.3).

    Returns
    -------
    y : ndarray
        The perturbed signal.
    sampling_rate : int
        16000, or 8000 after the telephone channel.
    description : str
        What was applied, for logs.
    """
    steps = []
    u = rng.uniform()
    if u < 0.4:
        f = float(rng.uniform(0.9, 1.1))
        y = speed_perturb(y, f)
        steps.append(f"speed {f:.2f}")
    elif u < 0.7:
        s = float(rng.uniform(-2, 2))
        y = pitch_shift(y, s, sr=sr)
        steps.append(f"pitch {s:+.1f} st")
    if rng.uniform() < 0.3:
        r = float(rng.uniform(0.2, 0.9))
        y = reverberate(y, r, rng, sr=sr, direct_ratio_db=float(rng.uniform(-3, 6)))
        steps.append(f"reverb {r:.2f} s")
    if rng.uniform() < 0.5:
        snr = float(rng.uniform(0, 30))
        color = str(rng.choice(["white", "pink", "brown"]))
        y = add_noise(y, snr, rng, color=color)
        steps.append(f"{color} noise {snr:.0f} dB")
    rate = sr
    if rng.uniform() < 0.3:
        y = telephone(y, sr=sr)
        rate = 8000
        steps.append("telephone")
    return y.astype(np.float32), rate, ", ".join(steps) or "none"


#: Named test conditions (fixed perturbations, seeded per clip).
CONDITIONS = {
    "clean": "as recorded (16 kHz studio)",
    "tel": "telephone: 300-3400 Hz, 8 kHz, G.711 mu-law",
    "noise10": "white/pink/brown noise (by clip) at 10 dB SNR",
    "noise0": "white/pink/brown noise (by clip) at 0 dB SNR",
    "reverb": "synthetic room, RT60 0.6 s",
}


def apply_condition(y: np.ndarray, condition: str, seed: int) -> tuple[np.ndarray, int]:
    """Apply a named test condition (:data:`CONDITIONS`); returns (signal, sampling rate)."""
    rng = np.random.default_rng([seed, 7919])
    color = ("white", "pink", "brown")[seed % 3]
    if condition == "clean":
        return np.asarray(y, np.float32).copy(), SR
    if condition == "tel":
        return telephone(y), 8000
    if condition == "noise10":
        return add_noise(y, 10.0, rng, color=color), SR
    if condition == "noise0":
        return add_noise(y, 0.0, rng, color=color), SR
    if condition == "reverb":
        return reverberate(y, 0.6, rng), SR
    raise ValueError(f"unknown condition {condition!r}; one of {sorted(CONDITIONS)}")
