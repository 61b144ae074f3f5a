"""Put every modality of a session onto one regular time grid.

Continuous signals are interpolated linearly, after a zero-phase low-pass filter at the new Nyquist
frequency when they are downsampled (so a 1000 Hz ECG does not alias onto a 30 Hz grid). Categorical,
integer and marker data are held (previous value) or taken from the nearest sample. The raw audio
waveform becomes its RMS envelope (``audio_rms``) over the grid step. Grid points outside a node's time
span, or inside a gap of its samples, stay NaN. Every variable records how it was aligned in its attrs.
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from ._checks import check_option, check_positive
from .errors import EmonbValueError

__all__ = ["align", "resample_variable"]

METHODS = ("auto", "linear", "nearest", "previous")
_SKIP_NODES = ("annotations",)
_GAP_FACTOR = 2.5


def _median_dt(t: np.ndarray) -> float:
    d = np.diff(t)
    d = d[d > 0]
    return float(np.median(d)) if d.size else float("nan")


def _valid_mask(t: np.ndarray, grid: np.ndarray, dt_src: float, dt_grid: float) -> np.ndarray:
    """Grid points covered by the source: inside its span and not inside a gap."""
    if t.size == 0:
        return np.zeros(grid.size, bool)
    half = 0.5 * (dt_src if np.isfinite(dt_src) else dt_grid)
    ok = (grid >= t[0] - half - 1e-9) & (grid <= t[-1] + half + 1e-9)
    if t.size > 1 and np.isfinite(dt_src):
        idx = np.clip(np.searchsorted(t, grid), 1, t.size - 1)
        gap = (t[idx] - t[idx - 1]) > _GAP_FACTOR * dt_src
        inside = (grid > t[0]) & (grid < t[-1])
        ok &= ~(gap & inside)
    return ok


def _lowpass(y: np.ndarray, fs: float, cutoff: float) -> np.ndarray:
    from scipy.signal import butter, sosfiltfilt

    if cutoff >= 0.5 * fs * 0.98:
        return y
    finite = np.isfinite(y)
    if finite.sum() < 16:
        return y
    x = np.arange(y.size)
    filled = np.interp(x, x[finite], y[finite])
    sos = butter(4, cutoff / (0.5 * fs), btype="low", output="sos")
    padlen = min(3 * (2 * sos.shape[0] + 1), y.size - 1)
    out = sosfiltfilt(sos, filled, padlen=max(padlen, 0))
    out[~finite] = np.nan
    return out


def _hold_index(t: np.ndarray, grid: np.ndarray, method: str) -> np.ndarray:
    if method == "previous":
        return np.clip(np.searchsorted(t, grid + 1e-9, side="right") - 1, 0, t.size - 1)
    idx = np.clip(np.searchsorted(t, grid), 1, max(t.size - 1, 1))
    if t.size == 1:
        return np.zeros(grid.size, int)
    left = t[idx - 1]
    right = t[idx]
    return np.where(np.abs(grid - left) <= np.abs(right - grid), idx - 1, idx)


def _is_discrete(var: xr.DataArray) -> bool:
    return (var.dtype.kind in "biuOUSM" or var.attrs.get("channel_type") == "event"
            or var.attrs.get("kind") in ("categorical", "event", "label"))


def resample_variable(var: xr.DataArray, grid: np.ndarray, *, method: str = "auto",
                      antialias: bool = True) -> tuple[xr.DataArray, str]:
    """Resample one time-indexed variable onto ``grid`` (seconds).

    Returns the new DataArray (``time`` first) and a description of what was done.
    """
    t = np.asarray(var["time"].values, dtype=np.float64)
    order = np.argsort(t, kind="stable")
    if not np.all(order == np.arange(t.size)):
        var = var.isel(time=order)
        t = t[order]
    dims = ("time",) + tuple(d for d in var.dims if d != "time")
    var = var.transpose(*dims)
    dt_src = _median_dt(t)
    dt_grid = _median_dt(grid) if grid.size > 1 else dt_src
    valid = _valid_mask(t, grid, dt_src, dt_grid)
    discrete = _is_discrete(var)
    m = method
    if m == "auto":
        m = "previous" if discrete and var.dtype.kind in "OUS" else ("nearest" if discrete else "linear")
    if discrete and m == "linear":
        m = "nearest"
    data = np.asarray(var.values)
    flat = data.reshape(t.size, -1)
    if m == "linear":
        flat = flat.astype(np.float64)
        out = np.full((grid.size, flat.shape[1]), np.nan)
        fs = 1.0 / dt_src if np.isfinite(dt_src) and dt_src > 0 else None
        target_fs = 1.0 / dt_grid if np.isfinite(dt_grid) and dt_grid > 0 else None
        did_filter = antialias and fs and target_fs and fs > 1.05 * target_fs
        desc = "linear"
        for j in range(flat.shape[1]):
            y = flat[:, j]
            if did_filter:
                y = _lowpass(y, fs, 0.5 * target_fs)
            fin = np.isfinite(y)
            if fin.sum() >= 2:
                out[:, j] = np.interp(grid, t[fin], y[fin])
                # NaN runs in the source stay NaN on the grid
                src_nan = ~fin
                if src_nan.any():
                    near = _hold_index(t, grid, "nearest")
                    out[src_nan[near], j] = np.nan
            elif fin.sum() == 1:
                out[np.abs(grid - t[fin][0]) <= 0.5 * dt_grid, j] = y[fin][0]
        if did_filter:
            desc = f"low-pass {0.5 * target_fs:g} Hz (4th-order Butterworth, zero phase) then linear"
        out[~valid] = np.nan
    else:
        idx = _hold_index(t, grid, m)
        out = flat[idx]
        if out.dtype.kind in "fc":
            out = out.copy()
            out[~valid] = np.nan
        elif out.dtype.kind in "biu":
            out = out.astype(np.float64)
            out[~valid] = np.nan
        else:
            out = out.astype(object)
            out[~valid] = ""
        desc = "previous value (hold)" if m == "previous" else "nearest sample"
    shape = (grid.size,) + data.shape[1:]
    coords = {d: var[d].values for d in dims[1:] if d in var.coords}
    res = xr.DataArray(out.reshape(shape), dims=dims, coords={"time": grid, **coords},
                       attrs=dict(var.attrs))
    res.attrs["aligned"] = desc
    return res, desc


def _audio_rms(var: xr.DataArray, grid: np.ndarray, rate: float) -> xr.DataArray:
    t = var["time"].values
    x = np.asarray(var.values, dtype=np.float64)
    if x.ndim > 1:
        x = x.mean(axis=0) if var.dims[-1] == "time" else x.mean(axis=1)
    csum = np.concatenate([[0.0], np.cumsum(np.nan_to_num(x) ** 2)])
    half = 0.5 / rate
    i0 = np.searchsorted(t, grid - half)
    i1 = np.searchsorted(t, grid + half)
    n = i1 - i0
    with np.errstate(invalid="ignore", divide="ignore"):
        rms = np.sqrt((csum[i1] - csum[i0]) / n)
    rms[n == 0] = np.nan
    return xr.DataArray(rms, dims=("time",), coords={"time": grid},
                        attrs={"units": "full scale", "long_name": "audio RMS envelope",
                               "aligned": f"RMS over {1 / rate:g} s windows centred on the grid"})


def _transcript(ds: xr.Dataset, grid: np.ndarray) -> dict[str, xr.DataArray]:
    seg = np.full(grid.size, np.nan)
    text = np.full(grid.size, "", dtype=object)
    speaker = np.full(grid.size, "", dtype=object)
    for i in range(ds.sizes.get("segment", 0)):
        inside = (grid >= float(ds["start"][i])) & (grid < float(ds["end"][i]))
        seg[inside] = i
        text[inside] = str(ds["text"].values[i])
        speaker[inside] = str(ds["speaker"].values[i]) if "speaker" in ds else ""
    how = {"aligned": "segment covering each grid point"}
    return {"transcript_segment": xr.DataArray(seg, dims="time", coords={"time": grid}, attrs=how),
            "transcript_text": xr.DataArray(text, dims="time", coords={"time": grid}, attrs=how),
            "transcript_speaker": xr.DataArray(speaker, dims="time", coords={"time": grid}, attrs=how)}


def _span(ds: xr.Dataset):
    if "time" in ds.coords and ds.sizes.get("time", 0):
        t = ds["time"].values
        dt = _median_dt(t)
        return float(t[0]), float(t[-1]) + (dt if np.isfinite(dt) else 0.0)
    if "start" in ds and "end" in ds and ds.sizes.get("segment", 0):
        return float(ds["start"].min()), float(ds["end"].max())
    return None


def align(tree, rate: float, *, method: str = "auto", nodes=None, start: float | None = None,
          end: float | None = None, span: str = "union", antialias: bool = True) -> xr.Dataset:
    """Resample every modality of a session onto one regular time grid.

    Parameters
    ----------
    tree : xarray.DataTree or mapping of name -> Dataset
        A session (:func:`emonb.load_session`).
    rate : float
        Grid rate in Hz.
    method : {"auto", "linear", "nearest", "previous"}
        For continuous variables; ``"auto"`` is linear (with anti-aliasing when downsampling).
        Categorical, integer, text and marker variables always use nearest or previous.
    nodes : list of str, optional
        Which nodes to include (default: all that have a time axis).
    start, end : float, optional
        Grid span in session seconds (default: from the nodes, see ``span``).
    span : {"union", "intersection"}
        Cover all nodes, or only the time all of them share.
    antialias : bool
        Low-pass before downsampling continuous signals.

    Returns
    -------
    xarray.Dataset
        Variables from every node on ``time`` (seconds, ``start + k / rate``); a variable keeps its
        name unless two nodes share it, then it gets the node name as a prefix. ``video_frame_index``
        is the frame on screen, ``audio_rms`` the audio envelope. attrs ``rate``, ``method`` and
        ``alignment`` (JSON: per variable, source node and what was done).
    """
    rate = check_positive("rate", rate)
    check_option("method", method, METHODS)
    check_option("span", span, ("union", "intersection"))
    if isinstance(tree, xr.DataTree):
        all_nodes = {k: tree[k].to_dataset() for k in tree.children}
        root_attrs = dict(tree.attrs)
    elif isinstance(tree, dict):
        all_nodes, root_attrs = dict(tree), {}
    else:
        raise EmonbValueError(f"align needs a session DataTree, got {type(tree).__name__}")
    names = list(nodes) if nodes is not None else [k for k in all_nodes if k not in _SKIP_NODES]
    missing = [n for n in names if n not in all_nodes]
    if missing:
        raise EmonbValueError(f"no node(s) {missing} in this session; it has {list(all_nodes)}")
    spans = {n: _span(all_nodes[n]) for n in names}
    spans = {n: s for n, s in spans.items() if s is not None}
    if not spans:
        raise EmonbValueError("none of the selected nodes has a time axis to align")
    if span == "union":
        s0, s1 = min(s[0] for s in spans.values()), max(s[1] for s in spans.values())
    else:
        s0, s1 = max(s[0] for s in spans.values()), min(s[1] for s in spans.values())
        if s1 <= s0:
            raise EmonbValueError("the nodes do not overlap in time (span='intersection' is empty)")
    s0 = float(start) if start is not None else s0
    s1 = float(end) if end is not None else s1
    n = int(np.floor((s1 - s0) * rate + 1e-9))
    if n < 1:
        raise EmonbValueError(f"the grid from {s0:g} s to {s1:g} s at {rate:g} Hz has no points")
    grid = s0 + np.arange(n) / rate

    out: dict[str, xr.DataArray] = {}
    record: dict[str, dict] = {}
    skipped: list[str] = []
    seen: dict[str, list[str]] = {}
    for node in spans:
        ds = all_nodes[node]
        for v in ds.data_vars:
            seen.setdefault(str(v), []).append(node)
    for node in spans:
        ds = all_nodes[node]
        if node == "transcript" or ("segment" in ds.dims and "time" not in ds.dims):
            if {"start", "end", "text"} <= set(ds.data_vars):
                for k, da in _transcript(ds, grid).items():
                    out[k] = da
                    record[k] = {"node": node, "how": da.attrs["aligned"]}
            continue
        if node == "video" or ds.attrs.get("modality") == "video":
            if "frame_index" in ds.coords or "frame_index" in ds:
                fi = ds["frame_index"].reset_coords(drop=True) if "frame_index" in ds.coords else ds["frame_index"]
                da, how = resample_variable(fi.assign_coords(time=ds["time"]), grid, method="previous")
                out["video_frame_index"] = da
                record["video_frame_index"] = {"node": node, "how": how}
        for v, var in ds.data_vars.items():
            v = str(v)
            if v == "frames" or "time" not in var.dims:
                if v != "frames":
                    skipped.append(f"{node}/{v}")
                continue
            if (node == "audio" or ds.attrs.get("modality") == "audio") and v == "audio":
                da = _audio_rms(var, grid, rate)
                out["audio_rms"] = da
                record["audio_rms"] = {"node": node, "how": da.attrs["aligned"]}
                continue
            key = v if len(seen.get(v, [])) <= 1 and v not in out else f"{node}_{v}"
            da, how = resample_variable(var, grid, method=method, antialias=antialias)
            da = da.reset_coords(drop=True) if da.coords else da
            out[key] = da
            record[key] = {"node": node, "how": how}
    if not out:
        raise EmonbValueError("nothing to align: the selected nodes have no time-indexed variables")
    res = xr.Dataset(out)
    res = res.assign_coords(time=("time", grid, {"units": "s", "long_name": "session time"}))
    res.attrs = {
        "session_id": root_attrs.get("session_id", ""), "rate": rate, "sampling_rate": rate,
        "method": method, "t0": float(s0), "nodes": ",".join(spans),
        "alignment": json.dumps(record), "skipped": ",".join(skipped),
    }
    return res
