"""Turn any voice input (path, array, audio node, session tree) into 16 kHz mono float32.

Channels are mixed down over the *live* channels only, so a stereo file with one dead channel
keeps its level. Quality flags describe what was found (``no_audio``, ``silent``, ``too_short``,
``clipping``, ``band_limited``, ``dead_channel``, ``nan_samples``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..._checks import check_file, check_positive
from ...errors import EmonbFileError, EmonbValueError

SR = 16000


@dataclass
class AudioInput:
    y: np.ndarray                 # 16 kHz mono float32
    t0: float = 0.0               # session-clock time of the first sample
    source_rate: float = SR       # original sampling rate
    path: str | None = None
    flags: list[str] = field(default_factory=list)
    #: True where a sample was NaN/inf in the input (such samples are set to 0), on the 16 kHz grid
    bad: np.ndarray | None = None

    @property
    def duration(self) -> float:
        return len(self.y) / SR


def _resample(y: np.ndarray, sr: float) -> np.ndarray:
    if int(round(sr)) == SR or len(y) == 0:
        return y.astype(np.float32, copy=False)
    from scipy.signal import resample_poly
    from math import gcd

    a, b = int(round(sr)), SR
    g = gcd(a, b)
    return resample_poly(y.astype(np.float64), b // g, a // g).astype(np.float32)


def _mixdown(x: np.ndarray, flags: list[str]) -> np.ndarray:
    """(n,) or (channels, n) -> (n,), averaging live channels only."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        return x
    if x.shape[0] > x.shape[-1]:  # (n, channels)
        x = x.T
    if x.shape[0] == 1:
        return x[0]
    rms = np.sqrt(np.mean(x.astype(np.float64) ** 2, axis=1))
    live = rms > max(rms.max() * 0.01, 1e-7)
    if live.any() and not live.all():
        flags.append("dead_channel")
        return x[live].mean(axis=0)
    return x.mean(axis=0)


def _decode_file(p: Path) -> tuple[np.ndarray, float]:
    """Decode an audio file or the audio track of a video to float32 (channels, n)."""
    try:
        import soundfile as sf

        data, sr = sf.read(str(p), dtype="float32", always_2d=True)
        return data.T, float(sr)
    except Exception:
        pass
    try:
        import av
    except ImportError:  # pragma: no cover - av is a core dependency
        raise EmonbFileError(p, "cannot decode: neither soundfile nor PyAV could read it") from None
    try:
        container = av.open(str(p))
    except Exception as exc:
        raise EmonbFileError(p, f"cannot open as audio or video ({exc})") from None
    with container:
        streams = container.streams.audio
        if not streams:
            raise EmonbFileError(p, "has no audio track", hint="pass a file with sound, or skip the voice step")
        stream = streams[0]
        parts = []
        sr = float(stream.rate or stream.codec_context.sample_rate or SR)
        try:
            for frame in container.decode(stream):
                arr = frame.to_ndarray()
                if arr.dtype.kind in "iu":
                    arr = arr.astype(np.float32) / float(np.iinfo(arr.dtype).max)
                fmt = frame.format
                nch = len(frame.layout.channels)
                if fmt.is_planar:
                    arr = arr.reshape(nch, -1)
                else:
                    arr = arr.reshape(-1, nch).T
                parts.append(arr.astype(np.float32))
        except Exception as exc:
            if not parts:
                raise EmonbFileError(p, f"audio track does not decode ({exc})") from None
    if not parts:
        return np.zeros((1, 0), np.float32), sr
    return np.concatenate(parts, axis=1), sr


def _flags_for(y: np.ndarray, source_rate: float, flags: list[str], *, clipped: bool = False) -> list[str]:
    if len(y) == 0:
        flags.append("no_audio")
        return flags
    if len(y) < 0.5 * SR:
        flags.append("too_short")
    peak = float(np.max(np.abs(y)))
    if peak < 1e-4:
        flags.append("silent")
    if clipped:
        flags.append("clipping")
    if source_rate < 16000:
        flags.append("band_limited")
    return flags


def _bad_on_output(bad_in: np.ndarray, sr: float, n_out: int) -> np.ndarray | None:
    """Map non-finite input samples to the 16 kHz grid, widened by the resampling filter's reach."""
    idx = np.flatnonzero(bad_in)
    if idx.size == 0:
        return None
    ratio = SR / float(sr)
    pad = 0 if int(round(sr)) == SR else int(np.ceil(10 * max(1.0, 1.0 / ratio))) + 1
    lo = np.clip(np.floor(idx * ratio).astype(np.int64) - pad, 0, n_out)
    hi = np.clip(np.ceil((idx + 1) * ratio).astype(np.int64) + pad, 0, n_out)
    d = np.zeros(n_out + 1, np.int64)
    np.add.at(d, lo, 1)
    np.add.at(d, hi, -1)
    return np.cumsum(d)[:n_out] > 0


def _prepare(x, sr: float, flags: list[str]):
    """Channels x samples -> (16 kHz mono in [-1, 1], bad-sample mask, clipped).

    NaN/inf samples are flagged (``nan_samples``) and set to 0 before any filtering, so they cannot
    spread into their neighbours or read as loud sound; clipping is judged on the samples as given,
    before resampling (a resampler's overshoot is not clipping in the recording).
    """
    from ...io.audio import clipping_of, is_clipped

    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2 and x.shape[0] > x.shape[-1]:  # (n, channels)
        x = x.T
    fin = np.isfinite(x)
    bad_in = ~(fin.all(axis=0) if x.ndim == 2 else fin)
    if bad_in.any():
        flags.append("nan_samples")
        x = np.where(fin, x, np.float32(0.0))
    clipped = is_clipped(*clipping_of(x))
    y = _resample(_mixdown(x, flags), sr)
    y = np.clip(y, -1.0, 1.0).astype(np.float32, copy=False)
    return y, _bad_on_output(bad_in, sr, len(y)), clipped


def read_voice_input(src, *, sampling_rate: float | None = None) -> AudioInput:
    """Resolve ``src`` to 16 kHz mono audio on the session clock.

    Parameters
    ----------
    src : str, Path, ndarray, xr.Dataset or xr.DataTree
        An audio/video file, a signal (then ``sampling_rate`` is required), an audio node
        (``audio(time)`` with ``attrs["sampling_rate"]``) or a session tree with an ``audio`` node.
    """
    import xarray as xr

    flags: list[str] = []
    if isinstance(src, (str, os.PathLike)):
        p = check_file(src, what="audio or video file")
        x, sr = _decode_file(p)
        if x.size == 0:
            raise EmonbFileError(p, "contains no audio samples (empty or truncated file)")
        y, bad, clipped = _prepare(x, sr, flags)
        return AudioInput(y, 0.0, sr, str(p), _flags_for(y, sr, flags, clipped=clipped), bad)
    if isinstance(src, xr.DataTree):
        if "audio" not in src.children:
            if "video" in src.children:
                vpath = src["video"].attrs.get("path")
                if vpath and Path(vpath).exists():
                    out = read_voice_input(vpath)
                    out.t0 = float(src["video"].attrs.get("t0", 0.0))
                    return out
            raise EmonbValueError("the session has no 'audio' node to analyse")
        src = src["audio"].to_dataset()
    if isinstance(src, xr.Dataset):
        if "audio" not in src:
            raise EmonbValueError("an audio node needs an 'audio' variable on 'time'")
        da = src["audio"]
        sr = src.attrs.get("sampling_rate") or da.attrs.get("sampling_rate")
        if sr is None and "time" in da.coords and da.sizes.get("time", 0) > 1:
            sr = 1.0 / float(np.median(np.diff(da["time"].values)))
        if sr is None:
            raise EmonbValueError("the audio node has no sampling_rate attribute")
        t0 = float(da["time"].values[0]) if "time" in da.coords and da.sizes.get("time", 0) else float(src.attrs.get("t0", 0.0))
        vals = np.asarray(da.values, np.float32)
        if vals.ndim == 2:
            other = [d for d in da.dims if d != "time"]
            vals = np.asarray(da.transpose(*other, "time").values, np.float32)
        y, bad, clipped = _prepare(vals, float(sr), flags)
        orig = float(src.attrs.get("original_sampling_rate") or sr)
        if "flags" in src.attrs:  # made by load_audio, which judged the decoded samples before resampling
            clipped = "clipped" in str(src.attrs["flags"]).split(",")
        return AudioInput(y, t0, orig, src.attrs.get("path"), _flags_for(y, orig, flags, clipped=clipped), bad)
    if isinstance(src, np.ndarray) or isinstance(src, (list, tuple)):
        if sampling_rate is None:
            raise EmonbValueError("a raw signal needs sampling_rate= (in Hz)")
        sr = check_positive("sampling_rate", sampling_rate)
        y, bad, clipped = _prepare(np.asarray(src, np.float32), sr, flags)
        return AudioInput(y, 0.0, sr, None, _flags_for(y, sr, flags, clipped=clipped), bad)
    raise EmonbValueError(
        f"cannot read voice input of type {type(src).__name__}: pass a path, a signal with "
        "sampling_rate=, an audio node or a session tree"
    )
