"""Shared steps: VAD on the 10 ms grid, frame features, speech masks, functionals."""

from __future__ import annotations

import threading

import numpy as np

from . import features as F

_CACHE: dict = {}
_LOCK = threading.Lock()

#: Minimum speech (s) for an emotion estimate on a window, a segment or a clip.
MIN_SPEECH_S = 0.5


def get_runtime(name_or_spec, *, device="auto"):
    """A cached runtime for a registered voice model (weights load once per process)."""
    from .. import get_model

    spec = get_model(name_or_spec)
    key = (spec.name, spec.weights, spec.sha256, device)
    with _LOCK:
        rt = _CACHE.get(key)
        if rt is None:
            rt = spec.create(device=device)
            _CACHE[key] = rt
    return rt


def vad_on_frames(y: np.ndarray, n_frames: int, *, vad="silero-vad") -> np.ndarray:
    """Silero speech probability interpolated onto the 10 ms frame grid (float32, n_frames)."""
    rt = get_runtime(vad)
    t, p = rt.predict(y)
    if len(t) == 0:
        return np.full(n_frames, np.nan, np.float32)
    ft = np.arange(n_frames) / F.FRAME_RATE
    return np.interp(ft, t, p).astype(np.float32)


def analyze_signal(y: np.ndarray, *, vad="silero-vad", threshold: float = 0.5) -> dict:
    """Frame features plus ``vad`` (probability) and ``speech`` (bool) on the 10 ms grid."""
    feats = F.frame_features(y)
    n = len(feats["time"])
    prob = vad_on_frames(y, n, vad=vad)
    feats["vad"] = prob
    feats["speech"] = np.nan_to_num(prob, nan=0.0) >= threshold
    # frames the emotion model reads: detected speech, plus voiced frames (strongly emotional
    # acted speech can get low VAD probabilities while it is clearly periodic and loud)
    feats["voice"] = feats["speech"] | feats["voiced"]
    return feats


def has_speech(speech_s, voiced_s, max_vad, *, min_speech_s: float = MIN_SPEECH_S):
    """Whether a stretch holds enough speech for an emotion estimate (vectorised)."""
    speech_s, voiced_s, max_vad = (np.asarray(a, float) for a in (speech_s, voiced_s, max_vad))
    return (speech_s >= min_speech_s / 2) | ((np.nan_to_num(max_vad) >= 0.2) & (voiced_s >= min_speech_s))


def clip_functionals(feats: dict, *, min_speech_s: float = MIN_SPEECH_S) -> tuple[np.ndarray, float]:
    """Functionals over the speech frames of a clip; NaN when it has too little speech.

    Returns
    -------
    functionals : ndarray (n_functionals,)
    speech_s : float
        Seconds of detected speech.
    """
    speech_s = float(feats["speech"].sum()) / F.FRAME_RATE
    voiced_s = float(feats["voiced"].sum()) / F.FRAME_RATE
    max_vad = float(np.nanmax(feats["vad"])) if np.isfinite(feats["vad"]).any() else 0.0
    if not has_speech(speech_s, voiced_s, max_vad, min_speech_s=min_speech_s):
        return np.full(len(F.FUNCTIONAL_NAMES), np.nan, np.float32), speech_s
    return F.functionals(feats, feats["voice"]), speech_s
