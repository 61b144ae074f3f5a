"""Audio reading with PyAV: wav, flac, mp3, m4a/aac, ogg/opus, and the audio track of a video file."""

from __future__ import annotations

import numpy as np
import xarray as xr

from .._checks import check_file, check_positive
from ..errors import EmonbFileError, EmonbFormatError
from . import Reader
from .video import VIDEO_EXTENSIONS

__all__ = ["load_audio", "read_audio", "AUDIO_EXTENSIONS"]

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".m4a", ".aac", ".ogg", ".opus", ".wma", ".aif", ".aiff")


def read_audio(path, *, sr: int | None = 16000, mono: bool = True, stream: int = 0):
    """Decode an audio file (or a video's audio track) to float32 samples.

    Parameters
    ----------
    path : str or Path
    sr : int or None
        Target sampling rate in Hz (``None`` keeps the file's rate). Resampling is done by FFmpeg's
        resampler (band-limited), so downsampling is alias-free.
    mono : bool
        Mix all channels down to one.
    stream : int
        Which audio stream of the file.

    Returns
    -------
    samples : ndarray float32, shape (n,) when mono else (channels, n), in [-1, 1]
    sr : int
        Sampling rate of ``samples``.
    start : float
        Time of the first sample in seconds on the container's clock (0 for plain audio files;
        for a video, relative to the container start, so audio and video stay in sync).
    info : dict
        ``codec``, ``channels``, ``original_sampling_rate``, ``truncated``.
    """
    import av

    p = check_file(path, what="audio file")
    try:
        c = av.open(str(p), mode="r")
    except av.error.FFmpegError as exc:
        raise EmonbFormatError(p, f"cannot be opened as audio: {exc}") from None
    try:
        if not c.streams.audio:
            kind = "video file" if c.streams.video else "file"
            raise EmonbFormatError(p, f"this {kind} has no audio track")
        if stream >= len(c.streams.audio):
            raise EmonbFormatError(p, f"has {len(c.streams.audio)} audio stream(s); stream {stream} requested")
        s = c.streams.audio[stream]
        in_sr = int(s.codec_context.sample_rate or s.rate or 0)
        channels = int(s.codec_context.channels or 1)
        out_sr = int(check_positive("sr", sr)) if sr is not None else in_sr
        layout = "mono" if mono else None
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=out_sr)
        chunks = []
        first_pts_time = None
        truncated = False
        try:
            for frame in c.decode(s):
                if first_pts_time is None and frame.pts is not None and frame.time_base is not None:
                    first_pts_time = float(frame.pts * frame.time_base)
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
        except av.error.FFmpegError:
            truncated = True
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray())
        start_us = c.start_time
        container_start = start_us / 1e6 if start_us is not None else 0.0
    finally:
        c.close()
    if not chunks:
        raise EmonbFileError(p, "contains no audio samples (empty or truncated file)")
    data = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
    if mono:
        data = data[0] if data.shape[0] == 1 else data.mean(axis=0)
    start = (first_pts_time or 0.0) - container_start
    info = {"codec": s.codec_context.name, "channels": channels, "original_sampling_rate": in_sr,
            "truncated": truncated}
    return data, out_sr, max(start, 0.0) if abs(start) < 1e-6 else start, info


def load_audio(path, sr: int | None = 16000, *, mono: bool = True, t0: float = 0.0) -> xr.Dataset:
    """Load audio as a session node.

    Parameters
    ----------
    path : str or Path
        wav/flac/mp3/m4a/ogg, or a video file (its audio track).
    sr : int or None
        Sampling rate in Hz after resampling; ``None`` keeps the file's.
    mono : bool
        Mix down to one channel (``audio(time)``); otherwise ``audio(channel, time)``.
    t0 : float
        Offset on the session clock in seconds, added to ``time``.

    Returns
    -------
    xarray.Dataset
        ``audio(time)`` float32 in [-1, 1]; attrs ``sampling_rate``, ``path``, ``t0``, ``codec``,
        ``channels``, ``original_sampling_rate``, ``duration``, ``flags``.
    """
    data, rate, start, info = read_audio(path, sr=sr, mono=mono)
    n = data.shape[-1]
    t0 = float(t0)
    time = t0 + start + np.arange(n, dtype=np.float64) / rate
    flags = []
    peak = float(np.max(np.abs(data))) if n else 0.0
    if peak < 1e-4:
        flags.append("silent")
    if peak >= 0.999:
        flags.append("clipped")
    if not np.all(np.isfinite(data)):
        flags.append("nan_samples")
    if info["truncated"]:
        flags.append("truncated")
    dims = ("time",) if mono else ("channel", "time")
    ds = xr.Dataset(
        {"audio": (dims, data, {"units": "full scale", "long_name": "audio waveform"})},
        coords={"time": ("time", time, {"units": "s"})},
        attrs={"modality": "audio", "path": "", "sampling_rate": float(rate),
               "t0": t0, "start_in_file": float(start), "duration": n / rate, "codec": info["codec"],
               "channels": info["channels"], "original_sampling_rate": info["original_sampling_rate"],
               "flags": ",".join(flags)},
    )
    ds.attrs["path"] = str(check_file(path).resolve())
    return ds


AUDIO_READER = Reader("audio", "audio", AUDIO_EXTENSIONS + VIDEO_EXTENSIONS, "emonb.io.audio:load_audio",
                      description="audio files and the audio track of videos through PyAV")
READERS = [AUDIO_READER]
