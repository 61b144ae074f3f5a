"""Voice activity detection with the Silero VAD ONNX model through onnxruntime.

The model is recurrent: it reads 512-sample chunks (32 ms at 16 kHz) with 64 samples of left
context and carries a (2, batch, 128) state. To use both CPU cores well on long recordings, the
signal is cut into blocks of ``block_s`` seconds that run as one batch; each block starts
``warmup_s`` early so that its state has settled before the samples it reports. Signals shorter
than one block run in a single pass. On real speech (RAVDESS, 72 s) blocks with 4 s of warm-up
agree with a single pass on 99.5 % of the speech/non-speech decisions (98.5 % of chunks within
0.1 probability); pass ``block_s=1e9`` to the runtime for an exact single pass.
"""

from __future__ import annotations

import numpy as np

from ..runtimes import ModelRuntime
from ..._checks import require
from ...errors import EmonbModelError

__all__ = ["SileroVAD", "build_silero_vad", "speech_segments"]

CHUNK = 512
CONTEXT = 64
SR = 16000


class SileroVAD(ModelRuntime):
    """Silero VAD runtime (constructor stores parameters; the ONNX session loads on first use).

    Parameters
    ----------
    spec : ModelSpec
    device : str
        Only the CPU provider is used (the model is tiny; a GPU gives nothing here).
    block_s, warmup_s : float
        Batch layout for long signals (seconds).
    """

    cpu_only = True  # numpy / onnxruntime on the CPU: no device probing, no torch import

    def __init__(self, spec, *, device: str = "auto", block_s: float = 30.0, warmup_s: float = 4.0,
                 num_threads: int = 0):
        super().__init__(spec, device=device)
        self.block_s = block_s
        self.warmup_s = warmup_s
        self.num_threads = num_threads

    def _load(self):
        ort = require("onnxruntime", extra="voice", purpose="voice activity detection")
        path = self.spec.check_weights()
        so = ort.SessionOptions()
        if self.num_threads:
            so.intra_op_num_threads = int(self.num_threads)
        so.log_severity_level = 3
        try:
            self.model_ = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise EmonbModelError(f"model {self.spec.name!r}: ONNX file {path} does not load: {exc}") from None

    def predict(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Speech probability per 32 ms chunk of a 16 kHz mono signal.

        Parameters
        ----------
        y : ndarray (n_samples,)
            16 kHz mono float signal in [-1, 1].

        Returns
        -------
        times : ndarray (n_chunks,)
            Centre of each chunk in seconds from the start of ``y``.
        prob : ndarray (n_chunks,) float32
            Speech probability in [0, 1].
        """
        self.load()
        y = np.asarray(y, np.float32)
        n_chunks = int(np.ceil(len(y) / CHUNK))
        if n_chunks == 0:
            return np.zeros(0), np.zeros(0, np.float32)
        padded = np.zeros(n_chunks * CHUNK, np.float32)
        padded[:len(y)] = y
        chunks = padded.reshape(n_chunks, CHUNK)
        per_block = max(1, int(round(self.block_s * SR / CHUNK)))
        warm = int(round(self.warmup_s * SR / CHUNK))
        starts = np.arange(0, n_chunks, per_block)
        B = len(starts)
        steps = per_block + warm if B > 1 else n_chunks
        # rows: block b covers chunks [start_b - warm, start_b + per_block)
        offset = np.where(starts == 0, 0, warm)  # the first block starts cold, like a single pass
        idx = (starts[:, None] - offset[:, None]) + np.arange(steps)[None, :]
        if B == 1:
            idx = np.arange(n_chunks)[None, :]
        valid = (idx >= 0) & (idx < n_chunks)
        xs = np.where(valid[..., None], chunks[np.clip(idx, 0, n_chunks - 1)], 0.0).astype(np.float32)
        state = np.zeros((2, B, 128), np.float32)
        ctx = np.zeros((B, CONTEXT), np.float32)
        sr = np.array(SR, dtype=np.int64)
        probs = np.zeros((B, steps), np.float32)
        run = self.model_.run
        for t in range(steps):
            x = np.concatenate([ctx, xs[:, t]], axis=1)
            out, state = run(None, {"input": x, "state": state, "sr": sr})
            probs[:, t] = out[:, 0]
            ctx = x[:, -CONTEXT:]
        prob = np.zeros(n_chunks, np.float32)
        if B == 1:
            prob[:] = probs[0, :n_chunks]
        else:
            for b, s in enumerate(starts):
                e = min(s + per_block, n_chunks)
                prob[s:e] = probs[b, offset[b]:offset[b] + (e - s)]
        times = (np.arange(n_chunks) + 0.5) * CHUNK / SR
        return times, prob


def build_silero_vad(spec, *, device="auto", **params):
    return SileroVAD(spec, device=device, **params)


def speech_segments(time: np.ndarray, prob: np.ndarray, *, threshold: float = 0.5,
                    neg_threshold: float | None = None, min_speech_s: float = 0.25,
                    min_silence_s: float = 0.1, pad_s: float = 0.03) -> np.ndarray:
    """Speech segments from a speech-probability track, with hysteresis.

    Parameters
    ----------
    time, prob : ndarray (n,)
        Regular time grid (s) and speech probability.
    threshold : float
        A segment starts where ``prob >= threshold``; it ends where ``prob < neg_threshold``
        (default ``threshold - 0.15``) for at least ``min_silence_s``.
    min_speech_s : float
        Shorter segments are dropped.
    pad_s : float
        Padding added on both sides (clipped to the signal).

    Returns
    -------
    ndarray (n_segments, 2)
        Start and end time in seconds.
    """
    time = np.asarray(time, float)
    prob = np.nan_to_num(np.asarray(prob, float), nan=0.0)
    if len(time) < 2:
        return np.zeros((0, 2))
    if neg_threshold is None:
        neg_threshold = max(threshold - 0.15, 0.01)
    step = float(np.median(np.diff(time)))
    segs = []
    on = False
    start = 0.0
    below = 0
    for i, p in enumerate(prob):
        if not on and p >= threshold:
            on, start, below = True, time[i] - step / 2, 0
        elif on:
            if p < neg_threshold:
                below += 1
                if below * step >= min_silence_s:
                    segs.append((start, time[i - below + 1] - step / 2))
                    on = False
            else:
                below = 0
    if on:
        end = time[len(prob) - below] - step / 2 if below else time[-1] + step / 2
        segs.append((start, end))
    out = [(max(s - pad_s, time[0] - step / 2), min(e + pad_s, time[-1] + step / 2))
           for s, e in segs if e - s >= min_speech_s]
    # merge overlaps created by padding
    merged: list[list[float]] = []
    for s, e in out:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return np.asarray(merged, float).reshape(-1, 2)
