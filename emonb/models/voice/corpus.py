"""Per-clip model inputs (functionals, log-mel frames, speech mask) for training and evaluation.

:func:`clip_inputs` runs the same steps as :func:`~emonb.predict_voice_clips` (16 kHz mono, Silero
VAD, frame features) on one signal and keeps what the emotion models read. :func:`save_inputs` /
:func:`load_inputs` store a list of them as one pickle-free ``.npz`` (frames concatenated, with
offsets), so a corpus is analysed once and every variant trains from the same numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

__all__ = ["ClipInputs", "clip_inputs", "save_inputs", "load_inputs"]


@dataclass
class ClipInputs:
    """What the speech-emotion models read from one clip.

    Attributes
    ----------
    functionals : ndarray (n_functionals,) float32
        NaN when the clip has too little speech.
    logmel : ndarray (n_frames, 40) float16
        Log-mel power (dB) on the 10 ms grid.
    voice : ndarray (n_frames,) bool
        Frames the models read (detected speech or voiced).
    speech_s : float
    """

    functionals: np.ndarray
    logmel: np.ndarray
    voice: np.ndarray
    speech_s: float


def clip_inputs(y: np.ndarray, *, sampling_rate: float = 16000, vad="silero-vad") -> ClipInputs:
    """Model inputs of one signal (any rate: resampled to 16 kHz as ``predict_voice_clips`` does)."""
    from . import _core
    from . import features as F
    from ._audio import read_voice_input

    audio = read_voice_input(np.asarray(y, np.float32), sampling_rate=sampling_rate)
    if len(audio.y) < F.HOP:
        return ClipInputs(np.full(len(F.FUNCTIONAL_NAMES), np.nan, np.float32),
                          np.zeros((0, F.N_MELS), np.float16), np.zeros(0, bool), 0.0)
    feats = _core.analyze_signal(audio.y, vad=vad)
    X, s = _core.clip_functionals(feats)
    return ClipInputs(X, feats["logmel"].astype(np.float16), np.asarray(feats["voice"], bool), float(s))


def save_inputs(path, items, *, meta: dict | None = None) -> None:
    """Write a list of :class:`ClipInputs` to ``path`` (``.npz``, no pickle)."""
    lens = np.array([len(it.voice) for it in items], np.int64)
    off = np.concatenate([[0], np.cumsum(lens)])
    with open(path, "wb") as fh:
        np.savez(fh, functionals=np.stack([it.functionals for it in items]).astype(np.float32),
                 logmel=np.concatenate([it.logmel for it in items]).astype(np.float16),
                 voice=np.concatenate([it.voice for it in items]).astype(bool), offsets=off,
                 speech_s=np.array([it.speech_s for it in items], np.float32),
                 meta=np.asarray(json.dumps(meta or {}, sort_keys=True)))


def load_inputs(path) -> tuple[list[ClipInputs], dict]:
    """Read what :func:`save_inputs` wrote."""
    with np.load(path, allow_pickle=False) as z:
        off = z["offsets"]
        lm, vo, X, S = z["logmel"], z["voice"], z["functionals"], z["speech_s"]
        items = [ClipInputs(X[i], lm[off[i]:off[i + 1]], vo[off[i]:off[i + 1]], float(S[i]))
                 for i in range(len(X))]
        return items, json.loads(str(z["meta"]))
