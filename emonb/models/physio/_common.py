"""Shared helpers of the physiology package: input resolution, channel typing, small numerics.

Nothing here imports NeuroKit2; the heavy imports happen inside the analysis functions.
"""

from __future__ import annotations

import json
import os
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ...errors import EmonbFileError, EmonbValueError, EmonbWarning
from ...schema import CHANNEL_TYPES

#: Signal types that :func:`analyze_physio` processes.
SIGNAL_TYPES = ("ecg", "ppg", "eda", "rsp", "emg")


# --------------------------------------------------------------------------------------------
# input resolution
# --------------------------------------------------------------------------------------------
def _read_fallback(path: Path):
    """Minimal reader used only while :mod:`emonb.io.physio` is not installed.

    Handles CSV/TSV with a header (optional ``time`` column, otherwise ``sampling_rate`` is
    needed) and OpenSignals "Simple Text Format" with a ``# Sampling Rate (Hz):=`` header.
    """
    import pandas as pd
    import xarray as xr

    head = path.read_text(errors="replace")[:4096]
    fs = None
    if head.startswith("#"):
        names = ["signal"]
        for line in head.splitlines():
            if not line.startswith("#"):
                break
            if "Sampling Rate" in line:
                fs = float(line.split("=")[-1])
            if "Labels" in line:
                names = [s.strip() for s in line.split("=")[-1].split(",")]
        data = np.loadtxt(path, comments="#", ndmin=2)
        df = pd.DataFrame(data[:, : len(names)], columns=names[: data.shape[1]])
    else:
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
        df = pd.read_csv(path, sep=sep)
    time = None
    for c in df.columns:
        if str(c).strip().lower() in ("time", "t", "seconds", "time_s"):
            time = df.pop(c).to_numpy(float)
            break
    if time is None:
        if fs is None:
            raise EmonbValueError(f"{path}: no time column; pass sampling_rate=")
        time = np.arange(len(df)) / fs
    elif fs is None:
        fs = 1.0 / float(np.median(np.diff(time)))
    ds = xr.Dataset(coords={"time": ("time", time)})
    for c in df.columns:
        ctype = channel_type(str(c))
        ds[str(c).strip().lower().replace(" ", "_")] = ("time", df[c].to_numpy(float),
                                                        {"channel_type": ctype, "original_name": str(c)})
    ds.attrs.update(sampling_rate=fs, t0=0.0, path=str(path))
    return ds


def resolve_physio(src, *, sampling_rate=None):
    """Return the physio node (``xr.Dataset``) of ``src``.

    ``src`` may be a session ``DataTree`` (its ``physio`` child), a physio ``Dataset``, or a path.
    """
    import xarray as xr

    if isinstance(src, xr.DataTree):
        if "physio" not in src.children:
            raise EmonbValueError("the session has no 'physio' node; load one with eb.load_session(physio=...)")
        ds = src["physio"].to_dataset()
    elif isinstance(src, xr.Dataset):
        ds = src
    elif isinstance(src, (str, os.PathLike)):
        from ..._checks import check_file

        p = check_file(src, what="physio file")
        try:
            from ...io.physio import load_physio
        except ImportError:
            load_physio = None
        if load_physio is not None:
            ds = load_physio(p, sampling_rate=sampling_rate)
        else:
            try:
                ds = _read_fallback(p)
            except EmonbValueError:
                raise
            except Exception as exc:  # pragma: no cover - depends on the file
                raise EmonbFileError(p, f"could not read physio data ({exc})") from None
            if sampling_rate is not None:
                ds = ds.assign_coords(time=np.arange(ds.sizes["time"]) / float(sampling_rate))
                ds.attrs["sampling_rate"] = float(sampling_rate)
    else:
        raise EmonbValueError(
            f"physio input must be a path, an xarray Dataset or a session DataTree, got {type(src).__name__}")
    if "time" not in ds.dims:
        raise EmonbValueError("the physio data has no 'time' dimension")
    return ds


def sampling_rate_of(ds) -> float:
    """The node's sampling rate (attrs, else the median step of ``time``)."""
    fs = ds.attrs.get("sampling_rate")
    if fs is None and "time" in ds.coords and ds.sizes["time"] > 1:
        fs = 1.0 / float(np.median(np.diff(ds["time"].values)))
    if fs is None or not np.isfinite(float(fs)) or float(fs) <= 0:
        raise EmonbValueError("cannot tell the sampling rate of the physio data; set attrs['sampling_rate']")
    return float(fs)


def time_of(ds, fs: float) -> np.ndarray:
    if "time" in ds.coords:
        return np.asarray(ds["time"].values, dtype=float)
    t0 = float(ds.attrs.get("t0", 0.0) or 0.0)
    return t0 + np.arange(ds.sizes["time"]) / fs


def channel_type(name: str, attrs: dict | None = None) -> str:
    """Channel type of a variable: ``attrs['channel_type']`` or a match of its name.

    Names match :data:`emonb.schema.CHANNEL_TYPES` fragments as the whole name, a prefix or a
    ``_``-separated word (``"ECG"``, ``"ecg_lead2"``, ``"GSR"``, ``"Photosensor"``).
    """
    if attrs and attrs.get("channel_type"):
        return str(attrs["channel_type"]).lower()
    key = name.strip().lower()
    words = key.replace("-", "_").replace(" ", "_").split("_")
    for ctype, frags in CHANNEL_TYPES.items():
        for frag in frags:
            if key == frag or words[0] == frag or (len(frag) > 2 and key.startswith(frag)):
                return ctype
    for ctype, frags in CHANNEL_TYPES.items():
        if any(len(f) > 2 and f in words for f in frags):
            return ctype
    return "other"


def pick_channels(ds, channels=None):
    """Map signal type -> variable name, plus the list of variables not used.

    Parameters
    ----------
    channels : dict, optional
        ``{"variable name": "ecg", ...}`` declares types for names emonb does not recognise.
    """
    chosen: dict[str, str] = {}
    unused: list[str] = []
    declared = {str(k): str(v).lower() for k, v in (channels or {}).items()}
    for k in declared:
        if k not in ds.data_vars:
            raise EmonbValueError(f"channels names {k!r}, which is not a variable of the physio data "
                                  f"(variables: {', '.join(map(str, ds.data_vars))})")
    for name, var in ds.data_vars.items():
        if "time" not in var.dims or var.ndim != 1:
            continue
        ctype = declared.get(str(name)) or channel_type(str(name), var.attrs)
        if ctype in SIGNAL_TYPES and ctype not in chosen:
            chosen[ctype] = str(name)
        else:
            unused.append(str(name))
    return chosen, unused


# --------------------------------------------------------------------------------------------
# numerics
# --------------------------------------------------------------------------------------------
def fill_nan(x: np.ndarray) -> np.ndarray:
    """Linear interpolation over non-finite samples (edges held); all-NaN stays NaN."""
    x = np.asarray(x, dtype=float)
    good = np.isfinite(x)
    if good.all() or not good.any():
        return x.copy()
    idx = np.arange(len(x))
    out = x.copy()
    out[~good] = np.interp(idx[~good], idx[good], x[good])
    return out


def interp_events(ev_t: np.ndarray, ev_v: np.ndarray, grid: np.ndarray, *, max_gap: float) -> np.ndarray:
    """Linear interpolation of an irregular event series onto ``grid``; NaN beyond the events
    and inside any gap between consecutive events longer than ``max_gap`` seconds."""
    out = np.full(len(grid), np.nan)
    ok = np.isfinite(ev_v) & np.isfinite(ev_t)
    ev_t, ev_v = ev_t[ok], ev_v[ok]
    if len(ev_t) == 0:
        return out
    if len(ev_t) == 1:
        near = np.abs(grid - ev_t[0]) <= max_gap / 2
        out[near] = ev_v[0]
        return out
    inside = (grid >= ev_t[0]) & (grid <= ev_t[-1])
    out[inside] = np.interp(grid[inside], ev_t, ev_v)
    j = np.searchsorted(ev_t, grid[inside], side="right")
    j = np.clip(j, 1, len(ev_t) - 1)
    gap = ev_t[j] - ev_t[j - 1]
    vals = out[inside]
    vals[gap > max_gap] = np.nan
    out[inside] = vals
    return out


@contextmanager
def quiet():
    """Silence NeuroKit2's and NumPy's chatter inside a processing step."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            yield


def warn(msg: str) -> None:
    warnings.warn(msg, EmonbWarning, stacklevel=3)


def to_attr(value):
    """A value as an attribute zarr can store (JSON text for containers)."""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str)
    if value is None:
        return "none"
    return value
