"""Timelines for the scrubber: small, downsampled tracks, drawn as one Altair (Vega-Lite) chart.

:func:`timeline_tracks` bins every series of a session to at most ``points`` samples;
:func:`timeline_chart` makes them an Altair chart (one row per track, with a ``current_time`` cursor
and a ``range_start``/``range_end`` band driven from the widget); :func:`vega_sources` gives the
vendored Vega and Vega-Lite builds the front-end renders it with, offline.
"""

from __future__ import annotations

import gzip
import re
from functools import cache

import numpy as np
import xarray as xr

#: versions of the vendored front-end libraries (``widgets/vendor``)
VEGA_VERSIONS = {"vega": "6.4.0", "vega-lite": "6.4.1"}
#: colours of the series of one track, in order
COLORS = ("#dc2626", "#65a30d", "#7c3aed", "#f59e0b", "#2563eb", "#0891b2", "#64748b", "#db2777")
#: names of the Vega-Lite parameters the front-end sets
PARAMS = ("current_time", "range_start", "range_end", "view_start", "view_end")

#: (node, short title, variables, confidence variable) tried in order; the first variables found in a
#: node make its track; the model strings go into the track's tooltip, not its title
TRACKS = (
    ("face", "face · emotion", ("face_emotion",), "face_score"),
    ("face", "face · valence, arousal", ("face_valence", "face_arousal"), "face_score"),
    ("voice", "voice · emotion", ("voice_emotion",), "voice_activity"),
    ("voice", "voice · arousal, valence", ("voice_arousal", "voice_valence"), "voice_activity"),
    ("fused", "fused · emotion", ("fused_emotion", "emotion"), None),
)
#: physiology: one row per variable, in its own units (node, variable, short title)
PHYSIO = (
    ("physio_features", "ecg_rate", "heart rate"), ("physio_features", "eda_tonic", "EDA, tonic"),
    ("physio_features", "rsp_rate", "breathing rate"), ("physio_features", "physio_arousal", "physio arousal"),
    ("physio", "eda", "EDA"), ("physio", "rsp", "respiration"), ("physio", "ppg", "PPG"),
)


def _pick(da: xr.DataArray, faces=None, face: str = "auto") -> xr.DataArray:
    """``da`` without its face dim: the selected face or subject (:class:`FaceView`), else face 0."""
    if "face" in da.dims:
        da = faces.pick(da, face) if faces is not None else da.isel(face=0)
    return da


def _series(da: xr.DataArray, grid: np.ndarray, width: float) -> np.ndarray:
    """Mean of ``da`` (dim time) in bins of ``width`` centred on ``grid``; NaN where there are no data.

    A bin with no sample between two samples that are one sampling step apart (a series sampled more
    sparsely than the bins) is interpolated, so the series stays a line; a bin inside a real gap (two
    valid samples further apart than 1.5 sampling steps: missing values, no face) stays NaN, so the
    line breaks there.
    """
    t = da["time"].to_numpy().astype(float)
    v = da.to_numpy().astype(float).reshape(t.size)
    idx = np.floor((t - (grid[0] - width / 2)) / width).astype(int)
    ok = (idx >= 0) & (idx < grid.size) & np.isfinite(v)
    s = np.bincount(idx[ok], weights=v[ok], minlength=grid.size)
    n = np.bincount(idx[ok], minlength=grid.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(n > 0, s / np.maximum(n, 1), np.nan)
    fin = np.isfinite(v)
    if fin.sum() < 2 or t.size < 2:
        return out
    step = float(np.median(np.diff(t)))
    tv, vv = t[fin], v[fin]
    empty = np.flatnonzero(~np.isfinite(out))
    if empty.size:
        g = grid[empty]
        j = np.searchsorted(tv, g)
        inside = (j > 0) & (j < tv.size)
        j = np.clip(j, 1, tv.size - 1)
        near = inside & (tv[j] - tv[j - 1] <= 1.5 * step + 1e-9)
        out[empty[near]] = np.interp(g[near], tv, vv)
    return out


def _clean(a: np.ndarray) -> list:
    return [None if not np.isfinite(x) else round(float(x), 4) for x in a]


def _intervals(onset, offset, labels, ids, start, end, limit):
    keep = (offset >= start) & (onset <= end) & np.isfinite(onset) & np.isfinite(offset)
    return [{"onset": round(float(a), 4), "offset": round(float(b), 4), "label": str(c), "id": str(i)}
            for a, b, c, i in zip(onset[keep], offset[keep], labels[keep], ids[keep])][:limit]


def annotation_tiers(rows: list[dict], *, start: float, end: float, reviewers=(), limit: int = 2000) -> list[dict]:
    """Reviewer annotations as interval tracks, one tier per reviewer (``reviewers`` first, in order,
    even when empty; then any other reviewer of ``rows``).

    Parameters
    ----------
    rows : list of dict
        Annotation rows (``onset``, ``offset`` or ``duration``, ``label``, ``reviewer``, ``id``).
    """
    names = list(dict.fromkeys([str(r) for r in reviewers] + [str(r.get("reviewer", "")) for r in rows]))
    out = []
    for who in names:
        mine = [r for r in rows if str(r.get("reviewer", "")) == who]
        onset = np.array([float(r["onset"]) for r in mine], float)
        offset = np.array([float(r["offset"]) if r.get("offset") is not None else
                           float(r["onset"]) + float(r.get("duration") or 0.0) for r in mine], float)
        labels = np.array([str(r.get("label", "")) for r in mine], dtype=object)
        ids = np.array([str(r.get("id", k)) for k, r in enumerate(mine)], dtype=object)
        out.append({"name": f"annotations · {who}", "kind": "intervals", "tier": who, "units": "",
                    "start": start, "end": end, "series": [], "range": None,
                    "intervals": _intervals(onset, offset, labels, ids, start, end, limit),
                    "model": f"reviewer {who}"})
    return out


def interval_tracks(tree, *, start: float, end: float, limit: int = 2000) -> list[dict]:
    """Interval tracks: spotted expressions (``spots`` node) and the reviewer annotations stored in the
    session (``annotations`` node), one tier per reviewer.

    Each is ``{"name", "kind": "intervals", "start", "end", "series": [], "intervals": [{"onset",
    "offset", "label", "id"}]}`` (annotation tiers also ``"tier"``: the reviewer); at most ``limit``
    intervals inside ``start``..``end`` are sent.
    """
    out = []
    if "spots" in tree.children:
        ds = tree["spots"].to_dataset()
        if ds.sizes.get("spot", 0) and "onset" in ds:
            onset = ds["onset"].to_numpy().astype(float)
            offset = ds["offset"].to_numpy().astype(float) if "offset" in ds else onset
            labels = ds["kind"].to_numpy().astype(str) if "kind" in ds else np.full(onset.size, "spot")
            out.append({"name": "spotted expressions", "kind": "intervals", "units": "", "start": start,
                        "end": end, "series": [], "range": None,
                        "intervals": _intervals(onset, offset, labels.astype(object),
                                                np.arange(onset.size).astype(str), start, end, limit),
                        "model": str(ds.attrs.get("method", ds.attrs.get("model", "")))})
    if "annotations" in tree.children:
        ds = tree["annotations"].to_dataset()
        if ds.sizes.get("annotation", 0) and "onset" in ds:
            n = ds.sizes["annotation"]
            onset = ds["onset"].to_numpy().astype(float)
            offset = ds["offset"].to_numpy().astype(float) if "offset" in ds else \
                onset + ds["duration"].to_numpy().astype(float)
            col = lambda name, default: ds[name].to_numpy().astype(str) if name in ds else np.full(n, default)  # noqa: E731
            rows = [{"onset": a, "offset": b, "label": c, "reviewer": r, "id": i}
                    for a, b, c, r, i in zip(onset, offset, col("label", "annotation"), col("reviewer", ""),
                                             col("id", ""))]
            out += annotation_tiers(rows, start=start, end=end, limit=limit)
    return out


def _waveform(tree, grid: np.ndarray, width: float) -> dict | None:
    """The sound as a peak envelope (max |sample| per bin) of the ``audio`` node."""
    if "audio" not in tree.children or "audio" not in tree["audio"].data_vars:
        return None
    da = tree["audio"]["audio"]
    if "time" not in da.dims or da.sizes["time"] == 0:
        return None
    t = da["time"].to_numpy().astype(float)
    v = np.abs(da.to_numpy().astype(np.float32).reshape(t.size))
    idx = np.floor((t - (grid[0] - width / 2)) / width).astype(int)
    ok = (idx >= 0) & (idx < grid.size) & np.isfinite(v)
    peak = np.full(grid.size, -1.0)
    np.maximum.at(peak, idx[ok], v[ok])
    peak[peak < 0] = np.nan
    return {"name": "sound", "kind": "waveform", "units": "", "start": float(grid[0] - width / 2),
            "end": float(grid[-1] + width / 2), "series": [{"label": "peak", "values": _clean(peak)}],
            "range": [-1.0, 1.0], "model": str(tree["audio"].attrs.get("path", "audio"))}


def timeline_tracks(tree, *, start: float, end: float, points: int = 600, faces=None,
                    face: str = "auto") -> list[dict]:
    """Tracks for the scrubber: ``{"name", "units", "times", "series": [{"label", "values"}], "range",
    "confidence", "model"}``.

    Each series is binned to at most ``points`` samples between ``start`` and ``end`` (s), so a
    one-hour session sends the same few kilobytes as a one-minute one. Missing = null (the line
    breaks there). Face tracks show the face or subject ``face`` of ``faces`` (a
    :class:`~emonb.widgets._faces.FaceView`; without it, face 0). ``confidence`` (0-1 per bin, or
    None) is the detection score or voice activity, shaded under the lines. The sound is a waveform
    row; the physiology one row per variable in its own units. Spotted expressions and reviewer
    annotations follow as interval tracks (:func:`interval_tracks`).
    """
    if not isinstance(tree, xr.DataTree) or not end > start:
        return []
    width = (end - start) / points
    grid = start + (np.arange(points) + 0.5) * width
    out = []
    for node, title, names, conf_name in TRACKS:
        if node not in tree.children:
            continue
        ds = tree[node].to_dataset()
        if "time" not in ds.coords or ds.sizes.get("time", 0) == 0:
            continue
        series, units = [], set()
        models = {str(ds.attrs["model"])} if ds.attrs.get("model") else set()
        for name in names:
            if name not in ds or "time" not in ds[name].dims:
                continue
            da = _pick(ds[name], faces if node == "face" else None, face)
            if da.attrs.get("model"):
                models.add(str(da.attrs["model"]))
            if "emotion" in da.dims:
                for c in da["emotion"].to_numpy():
                    series.append({"label": str(c), "values": _clean(_series(da.sel(emotion=c), grid, width))})
                units.add(da.attrs.get("units", ""))
                break  # one categorical variable per track
            if set(da.dims) - {"time"}:
                continue
            series.append({"label": name.split("_", 1)[-1], "values": _clean(_series(da, grid, width))})
            units.add(da.attrs.get("units", ""))
        vals = np.array([v for s in series for v in s["values"] if v is not None], float)
        if not series or vals.size == 0:
            continue
        conf = None
        if conf_name and conf_name in ds and set(ds[conf_name].dims) <= {"time", "face"}:
            c = _series(_pick(ds[conf_name], faces if node == "face" else None, face), grid, width)
            conf = _clean(np.clip(c, 0.0, 1.0))
        lo, hi = float(np.min(vals)), float(np.max(vals))
        rng = [min(lo, -1.0 if lo < 0 else 0.0), max(hi, 1.0)] if all(u in ("1", "") for u in units) else None
        out.append({"name": title, "units": ", ".join(sorted(u for u in units if u not in ("", "1"))),
                    "start": start, "end": end, "series": series, "range": rng, "confidence": conf,
                    "model": ", ".join(sorted(models))})
    wave = _waveform(tree, grid, width)
    if wave is not None:
        out.append({**wave, "start": start, "end": end})
    for node, name, title in PHYSIO:
        if node not in tree.children or (node == "physio" and "physio_features" in tree.children):
            continue
        ds = tree[node].to_dataset()
        if name not in ds or "time" not in ds[name].dims or set(ds[name].dims) - {"time"}:
            continue
        values = _series(ds[name], grid, width)
        if not np.isfinite(values).any():
            continue
        units = str(ds[name].attrs.get("units") or (ds.attrs.get("units") or {}).get(name, "")
                    if isinstance(ds.attrs.get("units"), dict) else ds[name].attrs.get("units", ""))
        lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
        pad = 0.05 * (hi - lo) if hi > lo else max(abs(hi) * 0.05, 1e-3)
        out.append({"name": title, "units": units, "start": start, "end": end,
                    "series": [{"label": name, "values": _clean(values)}],
                    "range": [round(lo - pad, 4), round(hi + pad, 4)], "confidence": None,
                    "model": str(ds.attrs.get("method", ds.attrs.get("model", node)))})
    return out + interval_tracks(tree, start=start, end=end)


def _field(label: str, used: set) -> str:
    """A Vega-Lite field name for a series label (no dots or brackets, unique in its track)."""
    name = re.sub(r"\W+", "_", label).strip("_") or "series"
    if name in ("i", "time", "key", "value", "lo", "hi", "y"):
        name += "_"
    base, k = name, 1
    while name in used:
        k += 1
        name = f"{base}_{k}"
    used.add(name)
    return name


def _title(tr: dict) -> str:
    """A short row title: the track's name and units (the model strings go into its tooltip)."""
    return tr["name"] + (f" ({tr['units']})" if tr.get("units") else "")


def _tooltip(tr: dict) -> str:
    return f"{_title(tr)}: {tr['model']}" if tr.get("model") else _title(tr)


def timeline_chart(tracks: list[dict], *, start: float, end: float, width: int = 560, height: int = 36):
    """The tracks of :func:`timeline_tracks` as one Altair chart: a column of rows sharing the time axis.

    Series tracks are lines (one colour per series), broken where data are missing (never drawn
    across a gap), over a grey band of their confidence (detection score, voice activity) when they
    have one; the sound is a mirrored peak envelope; interval tracks (spotted expressions, one
    tier per reviewer) are rectangles coloured by label. Every row carries a rule at the parameter
    ``current_time`` and a band from ``range_start`` to ``range_end`` (null: no band); the x axis
    shows ``view_start``..``view_end`` (zoom and pan). The front-end sets these as Vega signals. The
    data travel in the spec (top-level ``datasets``), compact: one row per track holding its series
    as arrays, expanded in the browser by ``flatten``/``window``/``fold``; an annotation tier's data
    is the named dataset ``usermeta.emonb.tiers[reviewer]``, which the front-end replaces in place.

    Parameters
    ----------
    tracks : list of dict
        From :func:`timeline_tracks` (and :func:`annotation_tiers`).
    start, end : float
        Time span (s, session clock) of the x axis.
    width, height : int
        Size of each row's plot (px).

    Returns
    -------
    altair.VConcatChart or None
        None without tracks.
    """
    chart, datasets = _build(tracks, start=start, end=end, width=width, height=height)
    if chart is not None:
        chart.datasets = datasets
    return chart


def _build(tracks, *, start, end, width, height):
    """The chart without its data, and the data: ``{name: rows}`` of its named datasets."""
    import altair as alt

    tracks = [tr for tr in tracks if tr.get("tier") is not None or
              (tr["intervals"] if tr.get("kind") == "intervals" else any(len(s["values"]) for s in tr["series"]))]
    if not tracks or not end > start:
        return None, {}
    span = float(end - start)
    x_scale = alt.Scale(domain={"expr": "[view_start, view_end]"}, nice=False, zero=False)
    one = alt.InlineData(values=[{}])
    independent = alt.Resolve(scale=alt.ScaleResolveMap(color="independent"))
    # the tracks' data are named datasets, set on the chart once at the end (Altair deep-copies
    # inline values at every method call)
    datasets: dict[str, list] = {}
    tiers: dict[str, str] = {}

    def named(values: list, name: str | None = None) -> alt.NamedData:
        name = name or f"emonb_track_{len(datasets)}"
        datasets[name] = values
        return alt.NamedData(name=name)

    rows, meta_rows = [], []
    for k, tr in enumerate(tracks):
        last = k == len(tracks) - 1
        x_axis = alt.Axis(title="time (s)", labelFontSize=10, titleFontSize=10, tickCount=10) \
            if last else alt.Axis(title=None, labels=False, ticks=False, domain=False)
        title = alt.Title(_title(tr), anchor="start", fontSize=11, fontWeight=500, color="#1e293b",
                          offset=2, limit=width)
        kind = tr.get("kind", "series")
        n_keys = len({iv["label"] for iv in tr["intervals"]}) if kind == "intervals" else len(tr["series"])
        legend = alt.Legend(title=None, orient="right", labelFontSize=10, symbolSize=60, labelLimit=110,
                            columns=1 if n_keys <= 4 else 2, symbolStrokeWidth=2)
        y_axis = dict(title=None, labelFontSize=9, minExtent=34, maxExtent=34)
        h = height
        if kind == "intervals":
            h = 20
            if tr.get("tier") is not None:
                data = named(list(tr["intervals"]), f"emonb_tier_{len(tiers)}")
                tiers[str(tr["tier"])] = data.name
            else:
                data = named(tr["intervals"])
            base = alt.Chart(data)
            color = alt.Color("label:N", scale=alt.Scale(range=list(COLORS)),
                              legend=legend if kind == "intervals" and tr.get("tier") is None else None)
            marks = base.mark_rect(opacity=0.55, clip=True, stroke="#334155", strokeWidth=0.5).encode(
                x=alt.X("onset:Q", scale=x_scale, axis=x_axis), x2="offset:Q", color=color,
                tooltip=[alt.Tooltip("label:N"), alt.Tooltip("onset:Q", format=".3f"),
                         alt.Tooltip("offset:Q", format=".3f")])
            text = (base.transform_filter(f"datum.offset - datum.onset > {0.02 * span!r}")
                    .mark_text(align="left", baseline="middle", dx=2, fontSize=10, color="#0f172a", limit=140,
                               clip=True)
                    .encode(x=alt.X("onset:Q", scale=x_scale), text="label:N"))
            layers = [marks, text]
        elif kind == "waveform":
            h = 26
            peak = tr["series"][0]["values"]
            width_s = span / max(len(peak), 1)
            base = (alt.Chart(named([{"peak": peak}]))
                    .transform_flatten(["peak"])
                    .transform_window(i="row_number()")
                    .transform_calculate(time=f"{float(start)!r} + (datum.i - 0.5) * {width_s!r}",
                                         lo="isValid(datum.peak) ? -datum.peak : null"))
            layers = [base.mark_area(color="#475569", opacity=0.8, clip=True, invalid="break-paths-show-domains",
                                     interpolate="step").encode(
                x=alt.X("time:Q", scale=x_scale, axis=x_axis),
                y=alt.Y("lo:Q", scale=alt.Scale(domain=[-1, 1], nice=False), axis=None), y2="peak:Q")]
        else:
            used: set = set()
            keys = [_field(s["label"], used) for s in tr["series"]]
            width_s = span / max(len(s["values"]) for s in tr["series"])
            row = {key: s["values"] for key, s in zip(keys, tr["series"])}
            conf = tr.get("confidence")
            if conf:
                row["confidence_"] = conf
            base0 = (alt.Chart(named([row]))
                     .transform_flatten(list(row))
                     .transform_window(i="row_number()")
                     .transform_calculate(time=f"{float(start)!r} + (datum.i - 0.5) * {width_s!r}"))
            base = base0.transform_fold(keys, as_=["key", "value"])
            if tr.get("range"):
                lo, hi = tr["range"]
                ydom = [lo, hi]
                y = alt.Y("value:Q", scale=alt.Scale(domain=ydom, nice=False),
                          axis=alt.Axis(tickCount=2, **y_axis))
            else:  # different units: each series scaled to its own range
                base = (base.transform_joinaggregate(lo="min(value)", hi="max(value)", groupby=["key"])
                        .transform_calculate(y="!isValid(datum.value) ? null : datum.hi > datum.lo ? "
                                               "(datum.value - datum.lo) / (datum.hi - datum.lo) : 0.5"))
                ydom = [0, 1]
                y = alt.Y("y:Q", scale=alt.Scale(domain=ydom, nice=False),
                          axis=alt.Axis(values=[0, 1], labelExpr="datum.value ? 'max' : 'min'", **y_axis))
            # one series: its title says what it is, no legend
            color = alt.Color("key:N", scale=alt.Scale(domain=keys, range=list(COLORS)),
                              legend=legend if len(keys) > 1 else None)
            layers = []
            if conf:
                # the confidence as a grey band from the bottom: tall where the model is sure
                layers.append(base0.transform_calculate(
                    c0=f"{ydom[0]!r}", c1=f"isValid(datum.confidence_) ? {ydom[0]!r} + datum.confidence_ * "
                                          f"{float(ydom[1] - ydom[0])!r} : null")
                    .mark_area(color="#cbd5e1", opacity=0.45, clip=True, invalid="break-paths-show-domains",
                               interpolate="step")
                    .encode(x=alt.X("time:Q", scale=x_scale), y=alt.Y("c0:Q", scale=alt.Scale(domain=ydom)),
                            y2="c1:Q"))
            # nulls break the line (never drawn across missing data)
            layers.append(base.mark_line(strokeWidth=1.4, clip=True, invalid="break-paths-show-domains").encode(
                x=alt.X("time:Q", scale=x_scale, axis=x_axis), y=y, color=color))
        band = (alt.Chart(one).transform_filter("isValid(range_start) && isValid(range_end)")
                .transform_calculate(a="min(range_start, range_end)", b="max(range_start, range_end)")
                .mark_rect(color="#3b82f6", opacity=0.2, clip=True)
                .encode(x=alt.X("a:Q", scale=x_scale), x2="b:Q"))
        rule = (alt.Chart(one).transform_calculate(t="current_time")
                .mark_rule(color="#0f172a", strokeWidth=1.5, clip=True)
                .encode(x=alt.X("t:Q", scale=x_scale)))
        # built by the constructors in one step: Altair's chained methods copy the whole chart
        rows.append(alt.LayerChart(layer=[*layers, band, rule], title=title, width=int(width),
                                   height=int(h), resolve=independent))
        meta_rows.append({"title": _title(tr), "tooltip": _tooltip(tr), "kind": kind,
                          **({"tier": str(tr["tier"])} if tr.get("tier") is not None else {})})
    # flush bounds: the rows' plots line up whatever their axes and legends, so the front-end maps
    # a pointer to a time with one offset and width
    values = (float(start), None, None, float(start), float(end))
    return alt.VConcatChart(
        vconcat=rows, spacing=18, bounds="flush", resolve=independent,
        params=[alt.VariableParameter(name=n, value=v) for n, v in zip(PARAMS, values)],
        config=alt.Config(view=alt.ViewConfig(fill="#f8fafc", stroke="#e2e8f0"),
                          axis=alt.AxisConfig(grid=False), legend=alt.LegendConfig(labelColor="#1e293b")),
        usermeta={"emonb": {"start": float(start), "end": float(end), "params": list(PARAMS), "tiers": tiers,
                            "rows": meta_rows}},
    ), datasets


def timeline_spec(tracks: list[dict], *, start: float, end: float, width: int = 560,
                  height: int = 36) -> dict:
    """The Vega-Lite spec (a JSON-able dict) of :func:`timeline_chart`; ``{}`` without tracks."""
    chart, datasets = _build(tracks, start=start, end=end, width=width, height=height)
    if chart is None:
        return {}
    # the data join the dict after to_dict (Altair would deep-copy every value); validated by the
    # tests, not here (validating against the schema costs about a second)
    spec = chart.to_dict(validate=False)
    spec.setdefault("datasets", {}).update(datasets)
    return spec


@cache
def vega_sources(*, compressed: bool = True) -> tuple[bytes, bytes]:
    """The vendored ``vega.min.js`` and ``vega-lite.min.js`` (UMD builds), gzip-compressed by default.

    The ``sourceMappingURL`` comment is dropped, so developer tools ask no server for a map.
    """
    from ._assets import asset_dir

    out = []
    for name in ("vega.min.js", "vega-lite.min.js"):
        data = (asset_dir() / "vendor" / name).read_bytes()
        data = re.sub(rb"\n?//# sourceMappingURL=\S*\s*$", b"\n", data)
        out.append(gzip.compress(data, compresslevel=9, mtime=0) if compressed else data)
    return tuple(out)
