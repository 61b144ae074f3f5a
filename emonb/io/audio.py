"""Audio reading with PyAV: wav, flac, mp3, m4a/aac, ogg/opus, and the audio track of a video file."""

from __future__ import annotations

import os

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
        ``codec``, ``channels``, ``original_sampling_rate``, ``truncated`` (the file holds less
        audio than its header announces, or decoding stopped at damaged data), ``clipped`` (flat
        tops at full scale in the decoded samples, judged before resampling),
        ``nonfinite_samples`` (NaN/inf samples decoded), ``decoded_duration``,
        ``declared_duration`` (seconds, None when the format does not state it).
    """
    import av

    p = check_file(path, what="audio file")
    try:
        c = av.open(str(p), mode="r")
    except av.error.InvalidDataError:
        raise EmonbFormatError(p, "cannot be opened as audio: invalid data (corrupt, truncated (an MP4/M4A "
                                  "cut before its index) or not an audio file)") from None
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
        # channels are kept through the resampler and averaged below: FFmpeg's own mono downmix
        # adds channels at -3 dB each, so a stereo recording peaking at 0.9 came out clipped
        resampler = av.AudioResampler(format="fltp", layout=None, rate=out_sr)
        chunks = []
        first_pts_time = None
        truncated = False
        scan = _SampleScan()
        try:
            for frame in c.decode(s):
                if first_pts_time is None and frame.pts is not None and frame.time_base is not None:
                    first_pts_time = float(frame.pts * frame.time_base)
                scan.add(frame)  # clipping and NaN are judged on the decoded samples, before resampling
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
        except av.error.FFmpegError:
            truncated = True
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray())
        start_us = c.start_time
        container_start = start_us / 1e6 if start_us is not None else 0.0
        declared = _declared_duration(c, s)
    finally:
        c.close()
    if not chunks:
        raise EmonbFileError(p, "contains no audio samples (empty or truncated file)")
    decoded_s = scan.n / in_sr if in_sr else float("nan")
    if declared is not None and decoded_s < declared - max(0.1, 0.01 * declared):
        truncated = True  # the header announces more audio than the file holds
    if _riff_data_missing(p):
        truncated = True  # FFmpeg shortens a WAV's data chunk to the file silently
    data = np.concatenate(chunks, axis=1).astype(np.float32, copy=False)
    if mono:
        data = data[0] if data.shape[0] == 1 else data.mean(axis=0)
    # the resampler's band-limited interpolation can overshoot full scale near steep edges
    np.clip(data, -1.0, 1.0, out=data)
    start = (first_pts_time or 0.0) - container_start
    info = {"codec": s.codec_context.name, "channels": channels, "original_sampling_rate": in_sr,
            "truncated": truncated, "clipped": scan.clipped, "nonfinite_samples": scan.nonfinite,
            "decoded_duration": decoded_s, "declared_duration": declared}
    return data, out_sr, max(start, 0.0) if abs(start) < 1e-6 else start, info


#: Formats whose header states the length of the audio exactly (so a shorter file is truncated);
#: elsewhere (ADTS AAC, MPEG-TS, ...) FFmpeg estimates the duration from the bit rate.
_EXACT_DURATION_FORMATS = ("wav", "w64", "aiff", "flac", "mp3", "mov", "matroska", "ogg", "caf")


def _declared_duration(c, s) -> float | None:
    """Seconds of audio the file's header announces for stream ``s`` (None when unknown)."""
    fmt = c.format.name if c.format is not None else ""
    if not any(f in fmt.split(",") or fmt.startswith(f) for f in _EXACT_DURATION_FORMATS):
        return None
    if s.duration and s.time_base:
        return float(s.duration * s.time_base)
    if c.duration and len(c.streams) == 1:
        return c.duration / 1e6
    return None


def _riff_data_missing(path) -> bool:
    """Whether a RIFF/WAVE file's ``data`` chunk announces more bytes than the file holds."""
    import struct

    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return False
            size = os.fstat(fh.fileno()).st_size
            pos = 12
            while pos + 8 <= size:
                fh.seek(pos)
                cid, n = struct.unpack("<4sI", fh.read(8))
                if cid == b"data":
                    # 0 and 0xFFFFFFFF mean "unknown length" (a stream being written)
                    return n not in (0, 0xFFFFFFFF) and pos + 8 + n > size
                pos += 8 + n + (n & 1)
    except OSError:
        return False
    return False


def full_scale(arr: np.ndarray) -> np.ndarray:
    """Decoded samples of any sample format as float64, full scale = 1."""
    a = np.asarray(arr)
    if a.dtype.kind == "u":
        half = float(np.iinfo(a.dtype).max + 1) / 2
        return (a.astype(np.float64) - half) / half
    if a.dtype.kind == "i":
        return a.astype(np.float64) / float(-np.iinfo(a.dtype).min)
    return a.astype(np.float64, copy=False)


def clipping_of(x: np.ndarray, *, level: float = 0.999) -> tuple[float, int]:
    """(fraction of samples at or beyond ``level`` of full scale, longest run of such samples)."""
    a = np.abs(np.nan_to_num(np.asarray(x, np.float64), nan=0.0, posinf=0.0, neginf=0.0)) >= level
    if a.ndim > 1:
        runs = [clipping_of(ch, level=level)[1] for ch in a.reshape(-1, a.shape[-1]).astype(float)]
        return float(a.mean()) if a.size else 0.0, max(runs, default=0)
    if not a.any():
        return 0.0, 0
    d = np.diff(np.concatenate([[0], a.astype(np.int8), [0]]))
    return float(a.mean()), int((np.flatnonzero(d == -1) - np.flatnonzero(d == 1)).max())


def is_clipped(fraction: float, longest_run: int) -> bool:
    """Clipping shows as flat tops at full scale: a run of 3+ samples there, or 0.1% of them."""
    return longest_run >= 3 or fraction >= 1e-3


class _SampleScan:
    """Running counts over decoded frames: samples, samples at full scale, non-finite samples."""

    def __init__(self):
        self.n = 0            # samples per channel
        self.total = 0        # samples over all channels
        self.at_full = 0
        self.longest = 0
        self.nonfinite = 0

    def add(self, frame) -> None:
        a = full_scale(frame.to_ndarray())
        nch = len(frame.layout.channels) if frame.layout is not None else 1
        if not frame.format.is_planar and nch > 1:
            a = a.reshape(-1, nch).T
        a = a.reshape(-1, a.shape[-1]) if a.ndim > 1 else a[None]
        self.n += int(frame.samples)
        self.total += a.size
        fin = np.isfinite(a)
        self.nonfinite += int(a.size - fin.sum())
        frac, run = clipping_of(a)
        self.at_full += int(round(frac * a.size))
        self.longest = max(self.longest, run)

    @property
    def clipped(self) -> bool:
        return is_clipped(self.at_full / self.total if self.total else 0.0, self.longest)


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
        ``audio(time)`` float32 in [-1, 1] (resampling overshoot is clipped); attrs
        ``sampling_rate``, ``path``, ``t0``, ``codec``, ``channels``, ``original_sampling_rate``,
        ``duration``, ``flags`` (comma-separated: ``silent``, ``clipped`` (the decoded recording
        is clipped), ``nan_samples``, ``truncated``).
    """
    data, rate, start, info = read_audio(path, sr=sr, mono=mono)
    n = data.shape[-1]
    t0 = float(t0)
    time = t0 + start + np.arange(n, dtype=np.float64) / rate
    flags = []
    peak = float(np.nanmax(np.abs(data))) if n and np.isfinite(data).any() else 0.0
    if peak < 1e-4:
        flags.append("silent")
    if info["clipped"]:
        flags.append("clipped")
    if info["nonfinite_samples"] or not np.all(np.isfinite(data)):
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
