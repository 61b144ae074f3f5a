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
PARAMS = ("current_time", "range_start", "range_end")

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
        models = {str(ds.attrs["model"])} if ds.attrs.get("model") else set()
        for name in names:
            if name not in ds or "time" not in ds[name].dims:
                continue
            da = ds[name]
            if da.attrs.get("model"):
                models.add(str(da.attrs["model"]))
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
                    "model": ", ".join(sorted(models))})
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


def _bridge(values: list) -> list:
    """Series values for drawing: nulls between two valid bins closer than about three sampling
    steps are filled linearly (a series sampled more sparsely than the bins stays a line); longer
    gaps stay null, so the line breaks where data are missing."""
    v = np.array([np.nan if x is None else x for x in values], float)
    ok = np.flatnonzero(np.isfinite(v))
    if ok.size < 2:
        return values
    gaps = np.diff(ok)
    limit = max(2, 3 * int(np.median(gaps)))
    for a, b in zip(ok[:-1][(gaps > 1) & (gaps <= limit)], ok[1:][(gaps > 1) & (gaps <= limit)]):
        v[a + 1:b] = np.interp(np.arange(a + 1, b), [a, b], [v[a], v[b]])
    return _clean(v)


def _title(tr: dict) -> str:
    return tr["name"] + (f" ({tr['units']})" if tr.get("units") else "") + \
        (f" · {tr['model']}" if tr.get("model") else "")


def timeline_chart(tracks: list[dict], *, start: float, end: float, width: int = 560, height: int = 56):
    """The tracks of :func:`timeline_tracks` as one Altair chart: a column of rows sharing the time axis.

    Series tracks are lines (one colour per series; tracks whose series have different units are
    drawn each scaled to its own range), interval tracks are rectangles coloured by label. Every row
    carries a rule at the parameter ``current_time`` and a band from ``range_start`` to
    ``range_end`` (null: no band); the front-end sets them as Vega signals. The data travel in the
    spec (top-level ``datasets``), compact: one row per track holding its series as arrays, expanded
    in the browser by ``flatten``/``window``/``fold``.

    Parameters
    ----------
    tracks : list of dict
        From :func:`timeline_tracks`.
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

    tracks = [tr for tr in tracks if (tr["intervals"] if tr.get("kind") == "intervals"
                                      else any(len(s["values"]) for s in tr["series"]))]
    if not tracks or not end > start:
        return None, {}
    span = float(end - start)
    x_scale = alt.Scale(domain=[float(start), float(end)], nice=False, zero=False)
    one = alt.InlineData(values=[{}])
    independent = alt.Resolve(scale=alt.ScaleResolveMap(color="independent"))
    # the tracks' data are named datasets, set on the chart once at the end (Altair deep-copies
    # inline values at every method call)
    datasets: dict[str, list] = {}

    def named(values: list) -> alt.NamedData:
        name = f"emonb_track_{len(datasets)}"
        datasets[name] = values
        return alt.NamedData(name=name)

    rows = []
    for k, tr in enumerate(tracks):
        last = k == len(tracks) - 1
        x_axis = alt.Axis(title="time (s)", labelFontSize=9, titleFontSize=10, tickCount=8) \
            if last else None
        title = alt.Title(_title(tr), anchor="start", fontSize=11, fontWeight="normal", color="#334155",
                          offset=2, limit=width)
        n_keys = len({iv["label"].split(" · ")[0] for iv in tr["intervals"]}) \
            if tr.get("kind") == "intervals" else len(tr["series"])
        legend = alt.Legend(title=None, orient="right", labelFontSize=9, symbolSize=40, labelLimit=90,
                            columns=1 if n_keys <= 3 else 2)
        if tr.get("kind") == "intervals":
            base = (alt.Chart(named(tr["intervals"]))
                    .transform_calculate(kind="split(datum.label, ' · ')[0]"))
            color = alt.Color("kind:N", scale=alt.Scale(range=list(COLORS)), legend=legend)
            marks = base.mark_rect(opacity=0.4).encode(
                x=alt.X("onset:Q", scale=x_scale, axis=x_axis), x2="offset:Q", color=color,
                tooltip=[alt.Tooltip("label:N"), alt.Tooltip("onset:Q", format=".2f"),
                         alt.Tooltip("offset:Q", format=".2f")])
            text = (base.transform_filter(f"datum.offset - datum.onset > {0.08 * span!r}")
                    .mark_text(align="left", dx=2, fontSize=9, color="#111827", limit=120)
                    .encode(x=alt.X("onset:Q", scale=x_scale), text="label:N"))
            layers = [marks, text]
        else:
            used: set = set()
            keys = [_field(s["label"], used) for s in tr["series"]]
            width_s = span / max(len(s["values"]) for s in tr["series"])
            row = {key: _bridge(s["values"]) for key, s in zip(keys, tr["series"])}
            base = (alt.Chart(named([row]))
                    .transform_flatten(keys)
                    .transform_window(i="row_number()")
                    .transform_calculate(time=f"{float(start)!r} + (datum.i - 0.5) * {width_s!r}")
                    .transform_fold(keys, as_=["key", "value"]))
            if tr.get("range"):
                y = alt.Y("value:Q", scale=alt.Scale(domain=list(tr["range"]), nice=False),
                          axis=alt.Axis(title=None, tickCount=2, labelFontSize=9, minExtent=30,
                                        maxExtent=30))
            else:  # different units: each series scaled to its own range
                base = (base.transform_joinaggregate(lo="min(value)", hi="max(value)", groupby=["key"])
                        .transform_calculate(y="!isValid(datum.value) ? null : datum.hi > datum.lo ? "
                                               "(datum.value - datum.lo) / (datum.hi - datum.lo) : 0.5"))
                y = alt.Y("y:Q", scale=alt.Scale(domain=[0, 1], nice=False),
                          axis=alt.Axis(title=None, values=[0, 1], labelExpr="datum.value ? 'max' : 'min'",
                                        labelFontSize=9, minExtent=30, maxExtent=30))
            color = alt.Color("key:N", scale=alt.Scale(domain=keys, range=list(COLORS)), legend=legend)
            layers = [base.mark_line(strokeWidth=1.2, clip=True).encode(
                x=alt.X("time:Q", scale=x_scale, axis=x_axis), y=y, color=color)]
        band = (alt.Chart(one).transform_filter("isValid(range_start) && isValid(range_end)")
                .transform_calculate(a="min(range_start, range_end)", b="max(range_start, range_end)")
                .mark_rect(color="#3b82f6", opacity=0.2, clip=True)
                .encode(x=alt.X("a:Q", scale=x_scale), x2="b:Q"))
        rule = (alt.Chart(one).transform_calculate(t="current_time")
                .mark_rule(color="#0f172a", strokeWidth=1.5, clip=True)
                .encode(x=alt.X("t:Q", scale=x_scale)))
        # built by the constructors in one step: Altair's chained methods copy the whole chart
        h = height if tr.get("kind") != "intervals" else max(height // 2, 24)
        rows.append(alt.LayerChart(layer=[*layers, band, rule], title=title, width=int(width),
                                   height=int(h), resolve=independent))
    # flush bounds: the rows' plots line up whatever their axes and legends, so the front-end maps
    # a pointer to a time with one offset and width
    return alt.VConcatChart(
        vconcat=rows, spacing=22, bounds="flush", resolve=independent,
        params=[alt.VariableParameter(name=n, value=v)
                for n, v in zip(PARAMS, (float(start), None, None))],
        config=alt.Config(view=alt.ViewConfig(fill="#f8fafc", stroke="#e2e8f0"),
                          axis=alt.AxisConfig(grid=False)),
        usermeta={"emonb": {"start": float(start), "end": float(end), "params": list(PARAMS)}},
    ), datasets


def timeline_spec(tracks: list[dict], *, start: float, end: float, width: int = 560,
                  height: int = 56) -> dict:
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
