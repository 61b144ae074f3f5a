"""Event-related analysis: events from a marker channel, epochs around them, per-epoch features.

>>> ev = eb.physio.events(tree, channel="photosensor",
...                       labels=["Negative", "Neutral", "Neutral", "Negative"])   # doctest: +SKIP
>>> ep = eb.physio.epochs(tree, ev, window=(-1, 10))                              # doctest: +SKIP
>>> ep.ecg_rate_change.to_series()                                                  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..._checks import check_option, require
from ...errors import EmonbValueError
from ._common import channel_type, quiet, resolve_physio, sampling_rate_of, time_of

__all__ = ["events", "epochs"]


def events(src, *, channel: str | None = "photosensor", threshold: float | str = "auto",
           keep: str = "auto", min_duration: float = 0.05, labels: Sequence[str] | None = None,
           sampling_rate: float | None = None):
    """Find events in a marker channel (photosensor, trigger, TTL).

    Parameters
    ----------
    src : path, xarray.Dataset or xarray.DataTree
        Physio data or a session holding it.
    channel : str, optional
        Variable name (case-insensitive). ``None`` takes the first channel of type ``event``.
    threshold : float or "auto"
        Level separating the two states; ``"auto"`` is the midpoint between the 1st and 99th
        percentiles.
    keep : {"auto", "below", "above"}
        Which side of the threshold is the event. ``"auto"`` picks the side where the signal
        spends less time (a photosensor dropping low during a stimulus is ``"below"``).
    min_duration : float
        Shorter excursions (s) are ignored as glitches.
    labels : sequence of str, optional
        One label per event found (for example the stimulus conditions), in order.

    Returns
    -------
    xarray.Dataset
        Dimension ``event``; variables ``onset`` and ``duration`` (s, session clock) and the
        coordinate ``label(event)``; attrs ``channel``, ``threshold``, ``keep``.
    """
    nk = require("neurokit2", extra="physio", purpose="event detection")
    import xarray as xr

    check_option("keep", keep, ("auto", "below", "above"))
    node = resolve_physio(src, sampling_rate=sampling_rate)
    fs = sampling_rate_of(node)
    t = time_of(node, fs)
    names = {str(k).lower(): str(k) for k in node.data_vars}
    if channel is None:
        cands = [k for k, v in node.data_vars.items() if channel_type(str(k), v.attrs) == "event"]
        if not cands:
            raise EmonbValueError("no marker channel (type 'event') in the physio data; pass channel=")
        name = str(cands[0])
    elif str(channel).lower() in names:
        name = names[str(channel).lower()]
    else:
        raise EmonbValueError(f"no channel {channel!r} in the physio data "
                              f"(channels: {', '.join(map(str, node.data_vars))})")
    x = np.asarray(node[name].values, dtype=float)
    fin = np.isfinite(x)
    if fin.sum() < 2 or np.ptp(x[fin]) == 0:
        raise EmonbValueError(f"marker channel {name!r} is constant or empty: no events to find")
    lo, hi = np.percentile(x[fin], [1, 99])
    if lo == hi:
        lo, hi = x[fin].min(), x[fin].max()
    thr = (lo + hi) / 2 if threshold == "auto" else float(threshold)
    if keep == "auto":
        keep = "below" if np.mean(x[fin] < thr) < 0.5 else "above"
    xx = np.where(fin, x, thr + (1 if keep == "below" else -1) * abs(hi - lo))  # missing = no event
    with quiet():
        found = nk.events_find(xx, threshold=thr, threshold_keep=keep,
                               duration_min=max(int(round(min_duration * fs)), 1))
    onset_i = np.asarray(found["onset"], int)
    dur_i = np.asarray(found["duration"], int)
    if labels is not None:
        labels = [str(s) for s in labels]
        if len(labels) != len(onset_i):
            raise EmonbValueError(f"{len(labels)} labels given but {len(onset_i)} events found in "
                                  f"{name!r} (onsets at {np.round(t[onset_i], 2).tolist()} s)")
    else:
        labels = [str(i + 1) for i in range(len(onset_i))]
    ds = xr.Dataset(
        {"onset": ("event", t[onset_i] if len(onset_i) else np.zeros(0), {"units": "s"}),
         "duration": ("event", dur_i / fs, {"units": "s"})},
        coords={"event": ("event", np.arange(len(onset_i))),
                "label": ("event", np.asarray(labels, dtype=object).astype(str))})
    ds.attrs.update(channel=name, threshold=float(thr), keep=keep, min_duration=float(min_duration),
                    source="neurokit2.events_find", sampling_rate=fs)
    return ds


def _as_events(ev):
    """onsets (s) and labels from an events Dataset, a DataFrame or a sequence of onsets."""
    import xarray as xr

    if isinstance(ev, xr.Dataset):
        on = np.asarray(ev["onset"].values, float)
        lab = (np.asarray(ev["label"].values).astype(str) if "label" in ev.variables
               else np.asarray([str(i + 1) for i in range(len(on))]))
        return on, lab
    try:
        import pandas as pd

        if isinstance(ev, pd.DataFrame):
            on = ev["onset"].to_numpy(float)
            lab = (ev["label"].astype(str).to_numpy() if "label" in ev
                   else np.asarray([str(i + 1) for i in range(len(on))]))
            return on, lab
    except ImportError:  # pragma: no cover
        pass
    on = np.atleast_1d(np.asarray(ev, float))
    return on, np.asarray([str(i + 1) for i in range(len(on))])


def _features_of(src, features, analyze_kw):
    import xarray as xr

    if features is not None:
        return features
    if isinstance(src, xr.DataTree) and "physio_features" in src.children:
        return src["physio_features"].to_dataset()
    if isinstance(src, xr.Dataset) and src.attrs.get("model") == "neurokit2":
        return src
    from .analyze import analyze_physio

    return analyze_physio(src, progress=False, **analyze_kw)


def epochs(src, events, *, window: tuple[float, float] = (-1.0, 10.0), baseline: tuple[float, float] = (-1.0, 0.0),
           scr_latency: tuple[float, float] = (1.0, 4.0), rate: float | None = None, features=None,
           **analyze_kw):
    """Epochs around events and per-epoch features, as a Dataset with an ``event`` dimension.

    Parameters
    ----------
    src : path, xarray.Dataset or xarray.DataTree
        Physio data, a session, or the result of :func:`analyze_physio`.
    events : xarray.Dataset, pandas.DataFrame or sequence of float
        From :func:`events`, or onsets in seconds on the session clock.
    window : (float, float)
        Epoch start and end relative to each onset, seconds.
    baseline : (float, float)
        Baseline interval relative to onset (s) for the ``*_change`` features.
    scr_latency : (float, float)
        An SCR counts as a response to the event when its onset falls in this interval after
        the event (s); 1-4 s is the conventional latency window (Dawson, Schell & Filion 2007).
    rate : float, optional
        Sampling rate of the epoch time series (default: the features' rate, at most 100 Hz).
    features : xarray.Dataset, optional
        Precomputed :func:`analyze_physio` output.
    **analyze_kw
        Passed to :func:`analyze_physio` when the features are computed here.

    Returns
    -------
    xarray.Dataset
        Dimensions ``event`` and ``epoch_time`` (s relative to onset). Coordinates ``label(event)``
        and ``onset(event)``. Epoch series (``event``, ``epoch_time``) of ``ecg_rate``,
        ``ppg_rate``, ``eda_phasic``, ``eda_tonic``, ``rsp_rate``, ``rsp_amplitude`` and
        ``physio_arousal`` where present. Per-event features: ``<rate>_baseline`` and
        ``<rate>_change`` (mean over [0, end] minus baseline mean), ``ecg_rate_min_change`` /
        ``ecg_rate_max_change`` (bpm), ``eda_scr`` (bool: an SCR starts in ``scr_latency``),
        ``eda_scr_amplitude`` (uS, NaN when no SCR), ``eda_scr_latency`` (s),
        ``eda_phasic_max`` (uS), ``physio_arousal_mean``, and ``<signal>_quality_mean``.
    """
    import xarray as xr

    w0, w1 = float(window[0]), float(window[1])
    if not w1 > w0:
        raise EmonbValueError(f"window must be (start, end) with end > start, got {window!r}")
    b0, b1 = float(baseline[0]), float(baseline[1])
    feats = _features_of(src, features, analyze_kw)
    t = feats["time"].values
    fs = float(feats.attrs.get("sampling_rate") or 1.0 / np.median(np.diff(t)))
    r = float(rate) if rate else min(fs, 100.0)
    et = np.round(np.arange(w0, w1 + 0.5 / r, 1.0 / r), 9)
    on, lab = _as_events(events)
    if len(on) == 0:
        raise EmonbValueError("no events given: nothing to epoch")
    out = {}
    series = [v for v in ("ecg_rate", "ppg_rate", "eda_phasic", "eda_tonic", "rsp_rate", "rsp_amplitude",
                          "physio_arousal") if v in feats]
    for name in series:
        vals = feats[name].values.astype(float)
        ep = np.full((len(on), len(et)), np.nan)
        for i, o in enumerate(on):
            tt = o + et
            inside = (tt >= t[0]) & (tt <= t[-1])
            idx = np.clip(np.searchsorted(t, tt[inside]), 0, len(t) - 1)
            ep[i, inside] = vals[idx]
        out[name] = (("event", "epoch_time"), ep, dict(feats[name].attrs))
    pre = (et >= b0) & (et < b1)
    post = et >= 0
    with np.errstate(all="ignore"), quiet():
        for name in ("ecg_rate", "ppg_rate", "rsp_rate", "rsp_amplitude"):
            if name not in out:
                continue
            ep = out[name][1]
            base = np.nanmean(ep[:, pre], axis=1)
            u = feats[name].attrs.get("units", "")
            out[f"{name}_baseline"] = ("event", base, {"units": u, "long_name": f"mean {name} in baseline"})
            out[f"{name}_change"] = ("event", np.nanmean(ep[:, post], axis=1) - base,
                                     {"units": u, "long_name": f"mean {name} after onset minus baseline"})
            if name in ("ecg_rate", "ppg_rate"):
                out[f"{name}_min_change"] = ("event", np.nanmin(ep[:, post], axis=1) - base,
                                             {"units": u, "long_name": "largest deceleration after onset"})
                out[f"{name}_max_change"] = ("event", np.nanmax(ep[:, post], axis=1) - base,
                                             {"units": u, "long_name": "largest acceleration after onset"})
        if "eda_phasic" in out:
            ep = out["eda_phasic"][1]
            out["eda_phasic_max"] = ("event", np.nanmax(ep[:, post], axis=1),
                                     {"units": feats["eda_phasic"].attrs.get("units", "uS"),
                                      "long_name": "maximum phasic EDA after onset"})
        if "scr_onset" in feats:
            so = feats["scr_onset"].values
            sa = feats["scr_amplitude"].values
            has = np.zeros(len(on), bool)
            amp = np.full(len(on), np.nan)
            lat = np.full(len(on), np.nan)
            for i, o in enumerate(on):
                m = (so >= o + scr_latency[0]) & (so <= o + scr_latency[1])
                if m.any():
                    j = np.flatnonzero(m)[np.argmax(sa[m])]
                    has[i], amp[i], lat[i] = True, sa[j], so[j] - o
            u = feats["scr_amplitude"].attrs.get("units", "uS")
            out["eda_scr"] = ("event", has, {"long_name": "an SCR starts within scr_latency",
                                            "scr_latency_s": list(scr_latency)})
            out["eda_scr_amplitude"] = ("event", amp, {"units": u, "long_name": "largest SCR amplitude in latency "
                                                       "window (NaN when none)"})
            out["eda_scr_latency"] = ("event", lat, {"units": "s", "long_name": "onset latency of that SCR"})
        if "physio_arousal" in out:
            out["physio_arousal_mean"] = ("event", np.nanmean(out["physio_arousal"][1][:, post], axis=1),
                                          {"units": "1", "long_name": "mean physio_arousal after onset"})
        for sig in ("ecg", "ppg", "eda", "rsp", "emg"):
            if f"{sig}_quality" in feats:
                qv = feats[f"{sig}_quality"].values.astype(float)
                qm = np.full(len(on), np.nan)
                for i, o in enumerate(on):
                    m = (t >= o + w0) & (t <= o + w1)
                    qm[i] = qv[m].mean() if m.any() else np.nan
                out[f"{sig}_quality_mean"] = ("event", qm, {"units": "1", "long_name": f"mean {sig} quality in epoch"})
    ds = xr.Dataset(out, coords={"event": ("event", np.arange(len(on))),
                                 "epoch_time": ("epoch_time", et, {"units": "s", "long_name": "time from onset"}),
                                 "label": ("event", lab), "onset": ("event", on, {"units": "s"})})
    keep = ("model", "model_version", "model_license", "device", "parameters")
    ds.attrs.update({k: feats.attrs[k] for k in keep if k in feats.attrs})
    ds.attrs.update(window=[w0, w1], baseline=[b0, b1], scr_latency=list(scr_latency), rate=r)
    return ds
