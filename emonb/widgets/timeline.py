"""Timeline tracks for the scrubber: small, downsampled series the front-end draws under the frame."""

from __future__ import annotations

import numpy as np
import xarray as xr

#: (node, variables) tried in order; the first variables found in a node make its track
TRACKS = (
    ("face", "emotions (face)", ("face_emotion",)),
    ("face", "valence / arousal (face)", ("face_valence", "face_arousal")),
    ("voice", "voice", ("voice_emotion",)),
    ("voice", "voice arousal / valence", ("voice_arousal", "voice_valence", "voice_activity")),
    ("physio_features", "physiology", ("ecg_rate", "eda_tonic", "rsp_rate", "physio_arousal")),
    ("physio", "physio (raw)", ("eda", "rsp", "ppg")),
    ("fused", "fused emotions", ("fused_emotion", "emotion")),
)


def _series(da: xr.DataArray, grid: np.ndarray, width: float) -> np.ndarray:
    """Mean of ``da`` (dims time[, face]) in bins of ``width`` centred on ``grid``; NaN where empty."""
    for d in [d for d in da.dims if d != "time"]:
        da = da.isel({d: 0})
    t = da["time"].to_numpy().astype(float)
    v = da.to_numpy().astype(float)
    idx = np.floor((t - (grid[0] - width / 2)) / width).astype(int)
    ok = (idx >= 0) & (idx < grid.size) & np.isfinite(v)
    s = np.bincount(idx[ok], weights=v[ok], minlength=grid.size)
    n = np.bincount(idx[ok], minlength=grid.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, s / np.maximum(n, 1), np.nan)


def _clean(a: np.ndarray) -> list:
    return [None if not np.isfinite(x) else round(float(x), 4) for x in a]


def interval_tracks(tree, *, start: float, end: float, limit: int = 2000) -> list[dict]:
    """Interval tracks: spotted expressions (``spots`` node) and reviewer annotations (``annotations``).

    Each is ``{"name", "kind": "intervals", "start", "end", "series": [], "intervals": [{"onset",
    "offset", "label"}]}``; at most ``limit`` intervals inside ``start``..``end`` are sent.
    """
    out = []
    sources = (("spots", "spotted expressions", "spot", "onset", "offset", "kind"),
               ("annotations", "reviewer annotations", "annotation", "onset", "offset", "label"))
    for node, title, dim, on, off, lab in sources:
        if node not in tree.children:
            continue
        ds = tree[node].to_dataset()
        if not ds.sizes.get(dim, 0) or on not in ds:
            continue
        onset = ds[on].to_numpy().astype(float)
        offset = ds[off].to_numpy().astype(float) if off in ds else \
            onset + ds["duration"].to_numpy().astype(float)
        labels = ds[lab].to_numpy().astype(str) if lab in ds else np.full(onset.size, node)
        if "reviewer" in ds:
            labels = np.char.add(np.char.add(labels, " · "), ds["reviewer"].to_numpy().astype(str))
        keep = (offset >= start) & (onset <= end) & np.isfinite(onset) & np.isfinite(offset)
        items = [{"onset": round(float(a), 4), "offset": round(float(b), 4), "label": str(c)}
                 for a, b, c in zip(onset[keep], offset[keep], labels[keep])][:limit]
        out.append({"name": title, "kind": "intervals", "units": "", "start": start, "end": end,
                    "series": [], "range": None, "intervals": items,
                    "model": str(ds.attrs.get("method", ds.attrs.get("model", "")))})
    return out


def timeline_tracks(tree, *, start: float, end: float, points: int = 600) -> list[dict]:
    """Tracks for the scrubber: ``{"name", "units", "times", "series": [{"label", "values"}], "range"}``.

    Each series is binned to at most ``points`` samples between ``start`` and ``end`` (s), so a
    one-hour session sends the same few kilobytes as a one-minute one. Missing = null. Spotted
    expressions and reviewer annotations follow as interval tracks (:func:`interval_tracks`).
    """
    if not isinstance(tree, xr.DataTree) or not end > start:
        return []
    width = (end - start) / points
    grid = start + (np.arange(points) + 0.5) * width
    out = []
    used = set()
    for node, title, names in TRACKS:
        if node not in tree.children or (node == "physio" and "physio_features" in used):
            continue
        ds = tree[node].to_dataset()
        if "time" not in ds.coords or ds.sizes.get("time", 0) == 0:
            continue
        series = []
        units = set()
        for name in names:
            if name not in ds or "time" not in ds[name].dims:
                continue
            da = ds[name]
            cat = [d for d in ("emotion",) if d in da.dims]
            if cat:
                for c in da[cat[0]].to_numpy():
                    series.append({"label": str(c), "values": _clean(_series(da.sel({cat[0]: c}), grid, width))})
                units.add(da.attrs.get("units", ""))
                break  # one categorical variable per track
            if set(da.dims) - {"time", "face"}:
                continue
            series.append({"label": name, "values": _clean(_series(da, grid, width))})
            units.add(da.attrs.get("units", ""))
        if not series:
            continue
        vals = np.array([v for s in series for v in s["values"] if v is not None], float)
        if vals.size == 0:
            continue
        lo, hi = float(np.min(vals)), float(np.max(vals))
        if node == "physio" or len(units) > 1 or any(u not in ("1", "") for u in units):
            # different units on one track: each series scaled to its own range by the front-end
            rng = None
        else:
            rng = [min(lo, 0.0), max(hi, 1.0)]
        used.add(node)
        out.append({"name": title, "units": ", ".join(sorted(u for u in units if u)), "start": start,
                    "end": end, "series": series, "range": rng,
                    "model": str(ds.attrs.get("model", ""))})
    return out + interval_tracks(tree, start=start, end=end)
