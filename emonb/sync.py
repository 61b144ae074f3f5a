"""Estimate the offset between two recordings of one session from something both captured.

- :func:`estimate_audio_offset`: cross-correlation of two audio tracks (a camera's microphone and a
  separate recorder), to within one sample.
- :func:`estimate_flash_offset`: a marker channel of the physio recording (photosensor, trigger)
  against flashes or brightness changes in the video, to within one video frame; with three or more
  events the clock drift between the devices is estimated too.

Both return an :class:`OffsetEstimate`; its ``offset`` is what to pass in
``load_session(..., offsets={node: offset})``: seconds to add to the second recording's time.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from ._checks import check_option, check_positive
from .errors import EmonbValueError, EmonbWarning

__all__ = ["OffsetEstimate", "estimate_offset", "estimate_audio_offset", "estimate_flash_offset",
           "video_brightness", "marker_onsets", "brightness_onsets"]


@dataclass
class OffsetEstimate:
    """Result of an offset estimation.

    Attributes
    ----------
    offset : float
        Seconds to add to the target recording's time to put it on the reference clock.
    confidence : float
        0-1; for cross-correlation the peak's normalized correlation scaled by its prominence over
        the next-best peak, for flashes the fraction of events that matched.
    method : str
    drift_ppm : float
        Clock drift of the target against the reference (parts per million), NaN when unknown.
    details : dict
    """

    offset: float
    confidence: float
    method: str
    drift_ppm: float = float("nan")
    details: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        drift = f", drift {self.drift_ppm:+.1f} ppm" if np.isfinite(self.drift_ppm) else ""
        why = f", {self.details['reason']}" if not np.isfinite(self.offset) and self.details.get("reason") else ""
        return (f"OffsetEstimate(offset={self.offset:+.4f} s, confidence={self.confidence:.2f}, "
                f"method={self.method!r}{drift}{why})")

    @property
    def found(self) -> bool:
        """Whether a shared event was found (``offset`` is a number)."""
        return bool(np.isfinite(self.offset))


def _signal(x, sr=None):
    if isinstance(x, xr.Dataset):
        if "audio" not in x:
            raise EmonbValueError("expected an audio node with an 'audio' variable")
        sr = x.attrs.get("sampling_rate") or sr
        t0 = float(x["time"].values[0])
        return np.asarray(x["audio"].values, np.float64), float(sr), t0
    if isinstance(x, xr.DataArray):
        t = x["time"].values
        return np.asarray(x.values, np.float64), float(1.0 / np.median(np.diff(t))), float(t[0])
    if sr is None:
        raise EmonbValueError("pass sr=... with plain arrays")
    return np.asarray(x, np.float64), float(sr), 0.0


def estimate_audio_offset(reference, target, *, sr: float | None = None,
                          max_lag: float | None = None) -> OffsetEstimate:
    """Offset of ``target`` against ``reference`` by cross-correlating two audio tracks.

    Parameters
    ----------
    reference, target : audio node Dataset, DataArray on ``time``, or ndarray (with ``sr``)
        Both at the same sampling rate (load both with the same ``sr``).
    max_lag : float, optional
        Largest offset to consider, in seconds.
    """
    from scipy.signal import correlate

    a, sra, ta = _signal(reference, sr)
    b, srb, tb = _signal(target, sr)
    if abs(sra - srb) > 1e-6 * sra:
        raise EmonbValueError(f"both tracks need the same sampling rate ({sra:g} vs {srb:g} Hz)")
    a = np.nan_to_num(a - np.nanmean(a))
    b = np.nan_to_num(b - np.nanmean(b))
    if not a.any() or not b.any():
        return OffsetEstimate(float("nan"), 0.0, "audio-xcorr", details={"reason": "silent track"})
    c = correlate(a, b, mode="full", method="fft")
    lags = np.arange(-(b.size - 1), a.size)
    if max_lag is not None:
        keep = np.abs(lags) <= check_positive("max_lag", max_lag) * sra
        c, lags = c[keep], lags[keep]
    k = int(np.argmax(np.abs(c)))
    lag = int(lags[k])
    # normalized correlation over the overlap at this lag
    i0, i1 = max(0, lag), min(a.size, b.size + lag)
    seg_a, seg_b = a[i0:i1], b[i0 - lag:i1 - lag]
    denom = np.sqrt((seg_a ** 2).sum() * (seg_b ** 2).sum())
    r = float(abs((seg_a * seg_b).sum()) / denom) if denom > 0 else 0.0
    excl = np.abs(lags - lag) > int(0.05 * sra)
    second = float(np.max(np.abs(c[excl]))) if excl.any() else 0.0
    prominence = 1.0 - second / float(abs(c[k])) if c[k] != 0 else 0.0
    offset = (ta - tb) + lag / sra
    return OffsetEstimate(float(offset), float(np.clip(r * (0.5 + 0.5 * prominence), 0, 1)), "audio-xcorr",
                          details={"lag_samples": lag, "correlation": r, "prominence": prominence,
                                   "sampling_rate": sra})


def video_brightness(video, *, size=(64, 36), progress: bool = False) -> xr.DataArray:
    """Mean luma (0-255) of every frame, decoded at a small size: ``brightness(time)``."""
    from tqdm.auto import tqdm

    from .io.video import video_reader

    reader = video_reader(video)
    t0 = float(video.attrs.get("t0", 0.0)) if isinstance(video, xr.Dataset) else 0.0
    ts, vals = [], []
    chunks = reader.iter_chunks(256, size=size)
    for t, _, frames in tqdm(chunks, disable=not progress, desc="brightness"):
        f = frames.astype(np.float32)
        vals.append(0.299 * f[..., 0].mean(axis=(1, 2)) + 0.587 * f[..., 1].mean(axis=(1, 2))
                    + 0.114 * f[..., 2].mean(axis=(1, 2)))
        ts.append(t)
    t = np.concatenate(ts) + t0 if ts else np.zeros(0)
    v = np.concatenate(vals) if vals else np.zeros(0)
    return xr.DataArray(v, dims="time", coords={"time": t}, name="brightness", attrs={"units": "luma 0-255"})


def brightness_onsets(brightness: xr.DataArray, *, min_step: float = 10.0) -> np.ndarray:
    """Times of abrupt brightness changes (flashes on or off), in seconds.

    A change counts when the frame-to-frame step exceeds both ``min_step`` luma levels and eight
    times the median absolute step; each onset is the first frame after the step.
    """
    v = np.asarray(brightness.values, float)
    t = np.asarray(brightness["time"].values, float)
    if v.size < 3:
        return np.zeros(0)
    d = np.diff(v)
    thr = max(min_step, 8.0 * float(np.median(np.abs(d))))
    idx = np.flatnonzero(np.abs(d) > thr) + 1
    keep = []
    for i in idx:  # one onset per change even if it spans two frames
        if not keep or i - keep[-1] > 2:
            keep.append(i)
    return t[keep] if keep else np.zeros(0)


def _marker_levels(x: np.ndarray):
    """(low, high) of a two-level marker signal, or None when ``x`` does not switch between two levels.

    A marker (photosensor on a screen patch, TTL trigger) sits at one of two levels and passes the
    middle only while it switches; noise, drift or an analog signal spend much of their time there.
    """
    fin = np.isfinite(x)
    if fin.sum() < 3:
        return None
    lo, hi = np.percentile(x[fin], [1, 99])
    if hi - lo <= 0:
        return None
    band = (x[fin] > lo + 0.25 * (hi - lo)) & (x[fin] < hi - 0.25 * (hi - lo))
    if band.mean() > 0.05:
        return None
    return float(lo), float(hi)


def marker_onsets(signal: xr.DataArray) -> np.ndarray:
    """Times where a marker channel switches state (crosses midway between its low and high levels).

    The exact crossing time is interpolated between the two samples around it. A channel that does
    not switch between two levels (noise, drift, an analog signal) has no onsets.
    """
    x = np.asarray(signal.values, float)
    t = np.asarray(signal["time"].values, float)
    levels = _marker_levels(x)
    if levels is None:
        return np.zeros(0)
    lo, hi = levels
    mid = 0.5 * (lo + hi)
    above = x > mid
    idx = np.flatnonzero(above[1:] != above[:-1])
    out = []
    for i in idx:
        x0, x1 = x[i], x[i + 1]
        frac = (mid - x0) / (x1 - x0) if x1 != x0 else 0.0
        out.append(t[i] + frac * (t[i + 1] - t[i]))
    return np.asarray(out)


def _match_events(ref: np.ndarray, tgt: np.ndarray, tol: float):
    """Best offset so that ``tgt + offset`` hits ``ref``; returns offset, matched pairs."""
    best = (np.nan, [])
    for r in ref:
        for s in tgt:
            off = r - s
            pairs, used = [], set()
            for j, s2 in enumerate(tgt):
                k = int(np.argmin(np.abs(ref - (s2 + off))))
                if k not in used and abs(ref[k] - (s2 + off)) <= tol:  # each event pairs once
                    used.add(k)
                    pairs.append((ref[k], s2))
            if len(pairs) > len(best[1]) or (len(pairs) == len(best[1]) and pairs and
                                              np.std([a - b for a, b in pairs]) <
                                              np.std([a - b for a, b in best[1]] or [np.inf])):
                best = (off, pairs)
    return best


def _no_shared_event(reason: str, details: dict) -> OffsetEstimate:
    warnings.warn(reason + "; the offset is NaN", EmonbWarning, stacklevel=3)
    return OffsetEstimate(float("nan"), 0.0, "flash", details={**details, "reason": reason})


def estimate_flash_offset(video, physio, *, channel: str | None = None,
                          brightness: xr.DataArray | None = None,
                          tolerance: float = 0.25) -> OffsetEstimate:
    """Offset of a physio recording against the video from a shared flash/marker event.

    Parameters
    ----------
    video : video node or path
        Reference clock.
    physio : physio node
        Must hold a marker channel (``channel_type == "event"``, e.g. a photosensor on the screen).
    channel : str, optional
        Marker variable name; default: the first event channel.
    brightness : DataArray, optional
        Precomputed :func:`video_brightness`.
    tolerance : float
        Largest mismatch, in seconds, for two events to count as the same.

    Returns
    -------
    OffsetEstimate
        With ``offset`` NaN, ``confidence`` 0, ``details["reason"]`` and an
        :class:`~emonb.errors.EmonbWarning` when no shared event is found: no flash in the video, a
        marker channel that does not switch between two levels, or events of which no more than one
        pair lines up (``est.found`` is False).
    """
    if channel is None:
        ev = [v for v in physio.data_vars if physio[v].attrs.get("channel_type") == "event"]
        if not ev:
            raise EmonbValueError(
                f"the physio node has no marker channel (channels: {list(physio.data_vars)}); "
                "pass channel=... or load it with channels={'name': 'event'}"
            )
        channel = ev[0]
    if channel not in physio:
        raise EmonbValueError(f"no channel {channel!r} in the physio node ({list(physio.data_vars)})")
    b = brightness if brightness is not None else video_brightness(video)
    vt = brightness_onsets(b)
    pt = marker_onsets(physio[channel])
    events = {"video_events": vt.tolist(), "marker_events": pt.tolist(), "channel": channel}
    if vt.size == 0 or pt.size == 0:
        if vt.size == 0:
            where = "the video (no flash or abrupt brightness change)"
        elif _marker_levels(np.asarray(physio[channel].values, float)) is None:
            where = f"the marker channel {channel!r} (it does not switch between two levels)"
        else:
            where = f"the marker channel {channel!r}"
        return _no_shared_event(f"no shared event found: no events in {where}", events)
    off, pairs = _match_events(vt, pt, tolerance)
    if not pairs:
        return _no_shared_event("no shared event found: the events do not line up", events)
    if len(pairs) < 2 and (vt.size > 1 or pt.size > 1):
        # any one video event can be put on any one marker event: a single pair proves nothing
        return _no_shared_event(
            f"no shared event found: {vt.size} video event(s) and {pt.size} marker event(s), and no offset "
            f"lines up more than one pair (within {tolerance:g} s)", events)
    if len(pairs) == 1:
        warnings.warn(f"one event on each side (video {vt[0]:.3f} s, marker {pt[0]:.3f} s): the offset "
                      "cannot be checked against a second event", EmonbWarning, stacklevel=2)
    r = np.array([p[0] for p in pairs])
    s = np.array([p[1] for p in pairs])
    drift = float("nan")
    if len(pairs) >= 3 and np.ptp(s) > 0:
        slope, icpt = np.polyfit(s, r, 1)
        drift = (slope - 1.0) * 1e6
        # offset at the first matched event, so it stays meaningful with drift
        offset = float(np.median(r - s))
    else:
        offset = float(np.median(r - s))
    frame = float(np.median(np.diff(b["time"].values))) if b.size > 1 else 0.0
    # the video sees an event in the first frame after it happened: on average half a frame late
    offset -= 0.5 * frame
    conf = len(pairs) / max(len(vt), len(pt))
    spread = float(np.std(r - s)) if len(pairs) > 1 else 0.0
    conf *= float(np.exp(-spread / max(frame, 1e-3)))
    return OffsetEstimate(offset, float(np.clip(conf, 0, 1)), "flash", drift_ppm=drift,
                          details={"video_events": vt.tolist(), "marker_events": pt.tolist(),
                                   "matched": len(pairs), "spread_s": spread, "frame_s": frame,
                                   "channel": channel})


def estimate_offset(reference, target=None, *, method: str = "auto", **options) -> OffsetEstimate:
    """Estimate an offset between two recordings; see the module docstring.

    Parameters
    ----------
    reference : session DataTree, video node or audio node
        With a session and ``method="flash"``: its video against its physio marker channel.
    target : node, optional
    method : {"auto", "flash", "audio"}

    Returns
    -------
    OffsetEstimate
        ``offset`` is NaN (``found`` False, ``details["reason"]`` says why) when the recordings
        share no event to align on; never a guess.
    """
    check_option("method", method, ("auto", "flash", "audio"))
    if isinstance(reference, xr.DataTree):
        if method in ("auto", "flash") and {"video", "physio"} <= set(reference.children):
            from .session import resolve_node

            return estimate_flash_offset(resolve_node(reference, "video"),
                                         reference["physio"].to_dataset(), **options)
        raise EmonbValueError("with a session, method='flash' needs video and physio nodes; "
                              "for audio pass the two audio nodes")
    if target is None:
        raise EmonbValueError("pass a target recording")
    if method == "audio" or (method == "auto" and "audio" in getattr(reference, "data_vars", {})):
        return estimate_audio_offset(reference, target, **options)
    return estimate_flash_offset(reference, target, **options)
