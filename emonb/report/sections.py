"""The parts of a report, one function each: tables, Altair charts and key frames from a session tree.

The report notebook (``notebooks/report.ipynb``) calls these; they are also handy on their own in
a notebook. Every chart function returns ``None`` when the session has nothing to show, so the
notebook can say so instead of drawing an empty chart. Face charts are per subject (the main one by
default), every chart uses the session's extent as its time axis, and lines are drawn one unbroken
segment at a time (:func:`segments`), so that no line crosses missing data.
"""

from __future__ import annotations

import html
import json
import platform
import re
from typing import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import EmonbValueError
from ..schema import AU_NAMES, EMOTIONS

__all__ = ["prepare_session", "crop", "escape_markdown", "title_html", "report_heading", "segments", "chart_lines", "model_note", "valence_arousal_frame", "au_frame", "EMOTION_COLORS", "STATUS_MIME", "analysis_status", "status_banner", "show_section", "session_table", "provenance_table", "emotion_frame",
           "emotion_chart", "valence_arousal_chart", "au_heatmap", "key_frames", "voice_chart",
           "physio_chart", "modality_weights_markdown", "spots_table", "annotation_tables", "limitations_markdown", "environment"]

#: result node -> (modality label, emotion variable, valence variable, arousal variable)
EMOTION_SOURCES = {
    "face": ("face", "face_emotion", "face_valence", "face_arousal"),
    "voice": ("voice", "voice_emotion", "voice_valence", "voice_arousal"),
    "physio_features": ("physio", None, None, "physio_arousal"),
    "text": ("text", None, "text_valence", None),
    "fused": ("fused", "fused_emotion", "fused_valence", "fused_arousal"),
}
MAX_POINTS = 1500  # per series in a chart: enough for a readable line, small enough to embed


# -- preparing the session --------------------------------------------------------------------------
def prepare_session(session, *, modalities: Sequence[str] = ("face", "voice", "physio", "text", "spot"),
                    models: dict | None = None, fusion: str | None = "late", ensemble: str = "mean",
                    rate: float = 10.0, start: float | None = None, end: float | None = None,
                    stride: int = 1, device: str = "auto", save_to: str | None = None,
                    progress: bool = False) -> xr.DataTree:
    """Open a session source, run the analysis steps whose results it lacks, fuse, and crop.

    Parameters
    ----------
    session : str, path or DataTree
        ``"sample"``, a manifest (``.yaml``), a session store (``.zarr``) or a video file.
    modalities : list of str
        Analysis steps the report covers; steps whose result node is already there are not rerun.
    models : dict, optional
        Per-step model choice, passed as the step's ``model`` option
        (``{"face": {"expression": "my-onnx"}, "voice": "voice-emotion-ravdess"}``).
    fusion : str or None
        ``"late"`` (confidence-weighted, no training), a path to a fitted fusion model saved with
        ``model.save(path)`` (the safe ``.npz`` format; a pickle is refused with an
        :class:`~emonb.errors.EmonbFileError`), or ``None``/``"none"`` for no fusion.
    ensemble : {"mean", "product", "max"}
        Late-fusion ensemble rule.
    rate : float
        Fusion grid rate in Hz.
    start, end : float, optional
        Time range in session seconds; the face step analyses only this range.
    stride : int
        Analyse every ``stride``-th video frame.
    save_to : str, optional
        Write the analysed session to this store (``.zarr``).
    """
    from ..analysis import STEPS, add_fusion, analyze
    from ..session import open_source, save_session

    fusion_model = None
    if fusion not in (None, "none", "", "late"):
        # a saved model is read first (before any analysis), and only in emonb's safe format: a
        # pickle or anything else is refused here, with the file's name, and the report fails
        from ..fusion import load as load_fusion

        fusion_model = load_fusion(fusion)
    tree = open_source(session)
    models = dict(models or {})
    options: dict = {}
    todo = []
    for m in modalities:
        if m not in STEPS:
            raise EmonbValueError(f"unknown modality {m!r} in the report parameters; expected some of {list(STEPS)}")
        if STEPS[m][1] in tree.children:
            continue
        todo.append(m)
        opts = {}
        if m in models:
            opts["model"] = models[m]
        if m == "face":
            opts.update(stride=int(stride), start=start, end=end)
        if opts:
            options[m] = opts
    if todo:
        tree = analyze(tree, todo, device=device, options=options, progress=progress)
    if fusion not in (None, "none", "") and "fused" not in tree.children:
        if fusion == "late":
            tree = add_fusion(tree, method="late", rate=rate, ensemble=ensemble)
        else:
            tree = add_fusion(tree, method="late", model=fusion_model, rate=rate)
    if save_to:
        save_session(tree, save_to)
    return crop(tree, start, end)


def crop(tree: xr.DataTree, start: float | None = None, end: float | None = None) -> xr.DataTree:
    """The session restricted to ``start <= time <= end`` (seconds); nodes without time stay whole."""
    from ..session import make_tree

    if start is None and end is None:
        return tree
    nodes = {}
    for name in tree.children:
        ds = tree[name].to_dataset(inherit=False)
        if "time" in ds.dims and "time" in ds.coords:
            ds = ds.sel(time=slice(start, end))
        nodes[name] = ds
    return make_tree(nodes, tree.attrs)


# -- escaping: every string that came from a user or a file reaches HTML as text --------------------------
#: ASCII punctuation that means something in Markdown (``<``, ``>``, ``&`` and quotes become entities)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~:])")


def escape_markdown(value) -> str:
    """``value`` as literal text inside Markdown: no HTML, no formatting, no link, one line.

    nbconvert passes raw HTML in Markdown through to the report, so a session id, a subject, a
    file name or a flag must never be interpolated into Markdown as it is: ``<img src=x
    onerror=...>`` would run in the reader's browser, and a backtick would end a code span. Markdown
    punctuation is backslash-escaped and ``& < > " '`` become HTML entities.

    >>> escape_markdown("<b>bold</b>")
    '&lt;b&gt;bold&lt;/b&gt;'
    """
    text = " ".join(str(value).splitlines())
    return html.escape(_MARKDOWN_SPECIAL.sub(r"\\\1", text), quote=True)


#: session ids too generic to title a report (taken from a file called session.mp4, video.mp4, ...)
GENERIC_IDS = {"session", "manifest", "index", "config", "video", "recording", "face", "camera", "audio",
               "sample", "s", "out", "input"}


def _source_name(tree: xr.DataTree) -> str:
    """``folder/file`` of the session's video (or audio) file, or ``""``."""
    from pathlib import PurePath

    for node in ("video", "audio", "physio"):
        if node in tree.children:
            path = str(tree[node].attrs.get("path", "") or "").replace("\\", "/")
            if path:
                p = PurePath(path)
                return f"{p.parent.name}/{p.name}" if p.parent.name else p.name
    return ""


def report_heading(tree: xr.DataTree) -> str:
    """A title from the session: its id, or (for an id like ``session`` taken from ``session.mp4``)
    the folder and name of its recording."""
    sid = str(tree.attrs.get("session_id", "") or "")
    if sid and sid.lower() not in GENERIC_IDS:
        return f"Emotion analysis report: session {sid}"
    if sid == "sample" and "composite" in str(tree.attrs.get("subject", "")):
        return "Emotion analysis report: the emonb sample session"
    src = _source_name(tree)
    return f"Emotion analysis report: {src}" if src else f"Emotion analysis report: session {sid or '(unnamed)'}"


def title_html(tree: xr.DataTree, *, title: str | None = None, start: float | None = None,
               end: float | None = None) -> str:
    """The report's title block (HTML): title, session id, subject, emonb version, dates, reported range.

    Every value is HTML-escaped: the session id, the subject and the title are user input.
    """
    import datetime as _dt

    from .._version import __version__

    sid = str(tree.attrs.get("session_id", "session"))
    subject = str(tree.attrs.get("subject", "") or "-")
    head = title or report_heading(tree)
    rng = ""
    if start is not None or end is not None:
        rng = (f" Reported range: {html.escape(str(start if start is not None else 'start'))} to "
               f"{html.escape(str(end if end is not None else 'end'))} s.")
    made = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    created = str(tree.attrs.get("created", "") or "")
    created = f" Session created {html.escape(created[:16].replace('T', ' '))}." if created else ""
    return (f'<h1 class="emonb-title">{html.escape(str(head))}</h1>\n'
            f'<p class="emonb-subtitle">Session <code>{html.escape(sid)}</code>, participant '
            f'<code>{html.escape(subject)}</code>. Analysed and reported on {made} with emonb '
            f'{html.escape(__version__)}.{created}{rng}</p>')


# -- what ran, what failed ----------------------------------------------------------------------------
#: mimetype of the output through which the report notebook tells run_report what failed
STATUS_MIME = "application/vnd.emonb.analysis-status+json"


def analysis_status(tree: xr.DataTree) -> dict[str, dict[str, str]]:
    """``{"failed": {step: error}, "skipped": {step: reason}}`` from the session's analysis record."""
    from ..analysis import analysis_record

    out: dict[str, dict[str, str]] = {"failed": {}, "skipped": {}}
    for step, r in analysis_record(tree).items():
        if isinstance(r, dict) and r.get("status") == "failed":
            out["failed"][step] = str(r.get("error", ""))
        elif isinstance(r, dict) and r.get("status") == "skipped":
            out["skipped"][step] = str(r.get("reason", ""))
    return out


def status_banner(tree: xr.DataTree) -> str | None:
    """HTML for the top of the report: the failed and the skipped steps with their reasons.

    ``None`` when every step ran. Reasons are escaped (an error message may quote a file name).
    """
    import html

    st = analysis_status(tree)
    if not st["failed"] and not st["skipped"]:
        return None
    items = [f"<li><b>{html.escape(k)}</b>: analysis failed: {html.escape(v)}</li>" for k, v in st["failed"].items()]
    items += [f"<li><b>{html.escape(k)}</b>: skipped: {html.escape(v)}</li>" for k, v in st["skipped"].items()]
    if st["failed"]:
        head = (f"<b>Analysis incomplete: {len(st['failed'])} step(s) failed.</b> The sections of the failed "
                "steps show no result; everything else in this report is what the steps that ran found.")
        cls = "emonb-banner emonb-banner-failed"
    else:
        head = "<b>Some steps were skipped</b> (their input is not in this session)."
        cls = "emonb-banner emonb-banner-skipped"
    return f'<div class="{cls}" role="alert">{head}<ul>{"".join(items)}</ul></div>'


def failure_note(tree: xr.DataTree, steps: Sequence[str]) -> str | None:
    """HTML saying which of ``steps`` failed and why, or ``None`` when none did."""
    import html

    failed = analysis_status(tree)["failed"]
    parts = [f"{html.escape(s)} analysis failed: {html.escape(failed[s])}" for s in steps if s in failed]
    return f'<p class="emonb-failed-note"><b>{"<br>".join(parts)}</b></p>' if parts else None


def show_section(content, tree: xr.DataTree, steps: Sequence[str], empty: str) -> None:
    """Display a section's chart or table; say so when its step failed, else ``empty`` when it is None."""
    from IPython.display import HTML, Markdown, display

    note = failure_note(tree, steps)
    if note is not None:
        display(HTML(note))
    if content is not None:
        display(content)
    elif note is None:
        display(Markdown(f"_{escape_markdown(empty)}_"))


# -- tables -----------------------------------------------------------------------------------------
def _attr(ds, key, default=""):
    v = ds.attrs.get(key, default)
    return v.item() if isinstance(v, np.generic) else v


def session_table(tree: xr.DataTree) -> pd.DataFrame:
    """One row per node: what it holds, its time span and rate, and its source file."""
    rows = []
    for name in tree.children:
        ds = tree[name].to_dataset(inherit=False)
        t = ds["time"].values if "time" in ds.coords and ds.sizes.get("time", 0) else None
        rows.append({
            "node": name,
            "kind": _attr(ds, "modality", "result") or "result",
            "start_s": round(float(t[0]), 3) if t is not None else np.nan,
            "end_s": round(float(t[-1]), 3) if t is not None else np.nan,
            "rate_hz": round(float(_attr(ds, "sampling_rate", np.nan) or np.nan), 3),
            "variables": len(ds.data_vars),
            "source": str(_attr(ds, "path", "") or _attr(ds, "source", "")).rsplit("/", 1)[-1],
            "flags": str(_attr(ds, "flags", "") or _attr(ds, "quality_flags", "")),
        })
    return pd.DataFrame(rows).set_index("node")


def provenance_table(tree: xr.DataTree) -> pd.DataFrame:
    """Per analysis step: status, model, version, license, device and seconds (from the node attrs)."""
    from ..analysis import STEPS

    record = json.loads(tree.attrs.get("analysis", "{}") or "{}")
    steps = dict(STEPS)
    rows = []
    for step, rec in record.items():
        node = rec.get("node") or (steps[step][1] if step in steps else step)
        ds = tree[node].to_dataset(inherit=False) if node in tree.children else xr.Dataset()
        rows.append({
            "step": step, "status": rec.get("status", "?"), "node": node,
            "model": _attr(ds, "model") or rec.get("model", ""),
            "version": _attr(ds, "model_version"), "license": _attr(ds, "model_license"),
            "device": _attr(ds, "device"), "seconds": rec.get("seconds", np.nan),
            "note": rec.get("error") or rec.get("reason", ""),
        })
    return pd.DataFrame(rows, columns=["step", "status", "node", "model", "version", "license", "device",
                                       "seconds", "note"]).set_index("step")


def environment(parameters: dict | None = None) -> pd.DataFrame:
    """Versions of emonb, Python and the main libraries, the platform, and the report parameters."""
    import importlib.metadata as md

    from .._version import __version__

    rows = {"emonb": __version__, "python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("numpy", "xarray", "torch", "mediapipe", "onnxruntime", "neurokit2", "librosa", "altair"):
        try:
            rows[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            rows[pkg] = "not installed"
    for k, v in (parameters or {}).items():
        rows[f"parameter: {k}"] = json.dumps(v, default=str)
    return pd.DataFrame({"value": rows})


# -- charts -----------------------------------------------------------------------------------------
#: the widgets' emotion colours (``emonb.widgets.timeline.COLORS`` in ``EMOTIONS`` order; a test keeps
#: them equal), so that a report and the explorer show happiness in the same amber
EMOTION_COLORS = dict(zip(list(EMOTIONS) + ["contempt"],
                          ("#dc2626", "#65a30d", "#7c3aed", "#f59e0b", "#2563eb", "#0891b2", "#64748b", "#db2777")))
#: below this top probability a face or voice estimate is shaded as unsure
UNSURE = 0.5
#: a jump in time larger than this many median steps breaks a line, as a NaN does
GAP_STEPS = 2.5


def _thin(ds: xr.Dataset, dim: str = "time") -> xr.Dataset:
    n = ds.sizes.get(dim, 0)
    return ds.isel({dim: slice(None, None, int(np.ceil(n / MAX_POINTS)))}) if n > MAX_POINTS else ds


def _confident(ds: xr.Dataset, da: xr.DataArray) -> xr.DataArray:
    """``da`` where its modality had any evidence: voice estimates need detected speech (confidence > 0)."""
    if "voice_confidence" in ds and "time" in da.dims:
        return da.where(ds["voice_confidence"].fillna(0) > 0)
    return da


def segments(df: pd.DataFrame, by: Sequence[str], *, value: str = "value", time: str = "time") -> pd.DataFrame:
    """``df`` without its NaN rows, with a ``segment`` number per unbroken run of each series.

    A series (rows with the same ``by`` values, in time order) is cut wherever ``value`` was NaN and
    wherever two consecutive samples are more than :data:`GAP_STEPS` median steps apart. Charts draw
    one line per segment (``detail``), so no line is ever drawn across missing data.
    """
    if df.empty:
        return df.assign(segment=pd.Series(dtype=int))
    out = []
    for _, g in df.groupby(list(by), sort=False) if by else [(None, df)]:
        g = g.sort_values(time)
        t = g[time].to_numpy(float)
        finite = np.isfinite(g[value].to_numpy(float))
        step = np.median(np.diff(t)) if t.size > 1 else 0.0
        brk = np.zeros(t.size, bool)
        brk[1:] = (~finite[:-1]) | ((np.diff(t) > GAP_STEPS * step) if step > 0 else False)
        seg = np.cumsum(brk)
        g = g.assign(segment=seg)[finite]
        out.append(g)
    return pd.concat(out, ignore_index=True) if out else df.iloc[:0].assign(segment=pd.Series(dtype=int))


def _runs(t: np.ndarray, flag: np.ndarray) -> list[tuple[float, float]]:
    """``(start, stop)`` of each run of ``flag`` over the samples at ``t`` (a sample covers to the next)."""
    t = np.asarray(t, float)
    if not t.size or not np.any(flag):
        return []
    step = np.median(np.diff(t)) if t.size > 1 else 0.0
    ends = np.append(t[1:], t[-1] + step)
    out, i = [], 0
    f = np.asarray(flag, bool)
    while i < t.size:
        if f[i]:
            j = i
            while j + 1 < t.size and f[j + 1]:
                j += 1
            out.append((float(t[i]), float(ends[j])))
            i = j + 1
        else:
            i += 1
    return out


def _alt():
    import altair as alt

    return alt


def _x(domain, title: str = "session time (s)"):
    alt = _alt()
    return alt.X("time:Q", title=title, scale=alt.Scale(domain=list(domain), nice=False, zero=False))


def _band_layer(bands: list[tuple[float, float]], domain, what: str = ""):
    """Grey rectangles behind a chart where the estimate is unsure or the signal poor (or None)."""
    alt = _alt()
    if not bands:
        return None
    df = pd.DataFrame(bands, columns=["start", "stop"]).clip(lower=domain[0], upper=domain[1])
    df["shading"] = what
    return alt.Chart(df).mark_rect(color="#9ca3af", opacity=0.22).encode(
        x=alt.X("start:Q", scale=alt.Scale(domain=list(domain), nice=False, zero=False), title="session time (s)"),
        x2="stop:Q", tooltip=["shading"])


#: the face variables a report reads
REPORT_FACE_VARS = ("face_box", "face_subject", "face_emotion", "face_valence", "face_arousal", "face_au",
                    "face_blur", "face_occluded", "face_confidence", "face_score", "face_count")


def _subject_face(tree: xr.DataTree, subject: str | None) -> xr.Dataset | None:
    """The face node as one subject's track (the main subject's by default), or None."""
    from ..subjects import subject_table, subject_track, subjects_of

    if "face" not in tree.children:
        return None
    face = tree["face"].to_dataset()
    if "face_box" not in face or "time" not in face.dims:
        return None
    face = subjects_of(face)
    # only what the report draws: the mesh and the blendshapes stay on disk
    face = face[[v for v in REPORT_FACE_VARS if v in face.data_vars]]
    if subject is None:
        subject = face.attrs.get("main_subject") or ""
        if not subject:
            tab = subject_table(face)
            if tab.empty:
                return None
            subject = tab["subject"].iloc[0]
    return subject_track(face, subject)


def _unsure_face(tr: xr.Dataset) -> np.ndarray:
    """Per sample: the subject is in view but the face estimate is unsure (top probability or
    ``face_confidence`` below :data:`UNSURE`) or the face is blurred or occluded."""
    n = tr.sizes["time"]
    bad = np.zeros(n, bool)
    if "face_emotion" in tr:
        p = tr["face_emotion"].transpose("time", "emotion").values
        ok = np.isfinite(p).all(axis=1)
        top = np.where(ok, np.nanmax(np.where(np.isfinite(p), p, -1), axis=1), np.nan)
        bad |= ok & (top < UNSURE)
    for v in ("face_blur", "face_occluded"):
        if v in tr:
            bad |= np.nan_to_num(tr[v].values.astype(float)) > 0.5
    if "face_confidence" in tr:  # detection score x (1 - occlusion): low where the face is covered
        c = tr["face_confidence"].values.astype(float)
        bad |= np.isfinite(c) & (c < UNSURE)
    return bad


def emotion_frame(tree: xr.DataTree, *, subject: str | None = None) -> pd.DataFrame:
    """Long table ``time, source, emotion, probability`` of every result with emotion probabilities.

    The face rows are one subject's (``subject``, default the main one): NaN while the subject is
    not in view. Voice rows are NaN where no speech was detected.
    """
    parts = []
    tr = _subject_face(tree, subject)
    if tr is not None and "face_emotion" in tr:
        parts.append(("face", _thin(tr)["face_emotion"]))
    for node, var, label in (("voice", "voice_emotion", "voice"), ("fused", "fused_emotion", "fused")):
        if node in tree.children and var in tree[node].to_dataset():
            ds = _thin(tree[node].to_dataset())
            parts.append((label, _confident(ds, ds[var])))
    frames = []
    for label, da in parts:
        df = da.to_dataframe(name="probability").reset_index()[["time", "emotion", "probability"]]
        df["source"] = label
        frames.append(df)
    if not frames:
        return pd.DataFrame(columns=["time", "source", "emotion", "probability"])
    return pd.concat(frames, ignore_index=True)


def _unsure_bands(tree: xr.DataTree, source: str, subject: str | None) -> tuple[list, str]:
    if source == "face":
        tr = _subject_face(tree, subject)
        if tr is None:
            return [], ""
        return (_runs(tr["time"].values, _unsure_face(tr)),
                f"face: top probability or confidence < {UNSURE:g}, blurred or occluded")
    if source == "voice" and "voice" in tree.children:
        v = tree["voice"].to_dataset()
        if "voice_confidence" in v:
            c = v["voice_confidence"].values.astype(float)
            return _runs(v["time"].values, (c > 0) & (c < UNSURE)), f"voice: confidence < {UNSURE:g}"
    return [], ""


def _line(df: pd.DataFrame, domain, *, y: str, color: str, color_scale=None, height: int, y_domain=None,
          y_title: str | None = None):
    alt = _alt()
    enc = dict(x=_x(domain), y=alt.Y(f"{y}:Q", title=y_title,
                                       scale=alt.Scale(domain=y_domain) if y_domain else alt.Scale(zero=False)),
               color=alt.Color(f"{color}:N", scale=color_scale, title=None) if color_scale is not None
               else alt.Color(f"{color}:N", title=None),
               detail="segment:N")
    return alt.Chart(df).mark_line(strokeWidth=1.3, interpolate="linear").encode(**enc).properties(height=height)


def _emotion_scale(names):
    alt = _alt()
    names = [n for n in list(EMOTIONS) + ["contempt"] if n in set(names)]
    return alt.Scale(domain=names, range=[EMOTION_COLORS[n] for n in names])


def emotion_chart(tree: xr.DataTree, *, subject: str | None = None, domain=None, width: int = 720):
    """Emotion probabilities over time, one row per source (face of ``subject``, voice, fused).

    Lines break where there is no estimate (subject not in view, no speech); grey shading marks
    where the estimate is unsure (top probability < :data:`UNSURE`, blurred or occluded face,
    low voice confidence). The time axis is ``domain`` (default: the session's extent).
    """
    from .summary import session_extent

    df = emotion_frame(tree, subject=subject)
    if df.empty or not np.isfinite(df["probability"].to_numpy(float)).any():
        return None
    alt = _alt()
    domain = domain or session_extent(tree)
    rows = []
    for source in ("face", "voice", "fused"):
        part = df[df["source"] == source]
        if part.empty or not np.isfinite(part["probability"].to_numpy(float)).any():
            continue
        seg = segments(part, ["emotion"], value="probability")
        line = _line(seg, domain, y="probability", color="emotion", color_scale=_emotion_scale(seg["emotion"]),
                     height=100, y_domain=[0, 1], y_title=f"{source}: probability")
        bands, what = _unsure_bands(tree, source, subject)
        band = _band_layer(bands, domain, what=what)
        rows.append((alt.layer(band, line) if band is not None else line).properties(width=width, height=100))
    return alt.vconcat(*rows).resolve_scale(color="shared") if rows else None


def valence_arousal_frame(tree: xr.DataTree, *, subject: str | None = None) -> pd.DataFrame:
    """Long table ``time, value, measure, source``: valence and arousal of the subject's face, the
    voice (speech only), physiology (arousal), text (valence) and fusion."""
    parts = []
    tr = _subject_face(tree, subject)
    if tr is not None:
        tr = _thin(tr)
        for m in ("valence", "arousal"):
            if f"face_{m}" in tr:
                s = tr[f"face_{m}"].to_series()
                parts.append(pd.DataFrame({"time": s.index.values, "value": s.values, "measure": m, "source": "face"}))
    for node, (label, _, val, aro) in EMOTION_SOURCES.items():
        if node == "face" or node not in tree.children:
            continue
        ds = _thin(tree[node].to_dataset())
        if "time" not in ds.dims:
            continue
        for m, var in (("valence", val), ("arousal", aro)):
            if var and var in ds:
                s = _confident(ds, ds[var]).to_series()
                parts.append(pd.DataFrame({"time": s.index.values, "value": s.values, "measure": m, "source": label}))
    if not parts:
        return pd.DataFrame(columns=["time", "value", "measure", "source"])
    return pd.concat(parts, ignore_index=True)


def valence_arousal_chart(tree: xr.DataTree, *, subject: str | None = None, domain=None, width: int = 720):
    """Valence and arousal in [-1, 1] per modality and fused; lines break at missing data."""
    from .summary import session_extent

    df = valence_arousal_frame(tree, subject=subject)
    if df.empty or not np.isfinite(df["value"].to_numpy(float)).any():
        return None
    alt = _alt()
    domain = domain or session_extent(tree)
    rows = []
    for m in ("valence", "arousal"):
        part = df[df["measure"] == m]
        if part.empty or not np.isfinite(part["value"].to_numpy(float)).any():
            continue
        seg = segments(part, ["source"])
        rows.append(_line(seg, domain, y="value", color="source", height=110, y_domain=[-1, 1],
                          y_title=m).properties(width=width))
    return alt.vconcat(*rows) if rows else None


def au_frame(tree: xr.DataTree, *, subject: str | None = None, bin_seconds: float = 0.5) -> pd.DataFrame:
    """Mean AU intensity of the subject per time bin: ``au, name, start, stop, intensity`` (bins
    where the subject was not in view are left out, not drawn as zero)."""
    tr = _subject_face(tree, subject)
    if tr is None or "face_au" not in tr or not np.isfinite(tr["face_au"].values).any():
        return pd.DataFrame(columns=["au", "name", "start", "stop", "intensity"])
    da = tr["face_au"]
    t = da["time"].values
    bins = np.floor((t - t[0]) / bin_seconds).astype(int)
    binned = da.groupby(xr.DataArray(bins, dims="time", name="bin")).mean(skipna=True)
    df = binned.to_dataframe(name="intensity").reset_index()
    df = df[np.isfinite(df["intensity"].to_numpy(float))]
    df["start"] = t[0] + df["bin"] * bin_seconds
    df["stop"] = df["start"] + bin_seconds
    df["name"] = df["au"].map(lambda a: f"{a} {AU_NAMES.get(str(a), '')}".strip())
    return df[["au", "name", "start", "stop", "intensity"]].reset_index(drop=True)


def au_heatmap(tree: xr.DataTree, *, subject: str | None = None, bin_seconds: float = 0.5, domain=None,
               width: int = 720):
    """Action-unit intensity (0-1) of one subject per time bin: AUs as rows, time as columns."""
    from .summary import session_extent

    df = au_frame(tree, subject=subject, bin_seconds=bin_seconds)
    if df.empty:
        return None
    alt = _alt()
    domain = domain or session_extent(tree)
    return alt.Chart(df).mark_rect().encode(
        x=alt.X("start:Q", title="session time (s)", scale=alt.Scale(domain=list(domain), nice=False, zero=False)),
        x2="stop:Q",
        y=alt.Y("name:N", title=None, sort=None),
        color=alt.Color("intensity:Q", scale=alt.Scale(domain=[0, 1], scheme="viridis")),
        tooltip=["name", "start", "intensity"],
    ).properties(width=width, height=14 * df["au"].nunique())


def _poor_quality(ds: xr.Dataset, var: str) -> tuple[list, str]:
    """Runs where the signal behind ``var`` (``ecg_rate`` -> ``ecg_flag``) was flagged, and what for."""
    flag = f"{var.split('_')[0]}_flag"
    if flag not in ds or "time" not in ds[flag].dims:
        return [], ""
    names = _flag_names(ds[flag]).to_numpy()
    bad = ~np.isin(names, ["ok", "", "nan"])
    kinds = sorted(set(names[bad].tolist()))
    return _runs(ds["time"].values, bad), f"{flag.split('_')[0].upper()} signal: {', '.join(kinds)}"


def _panels(ds: xr.Dataset, panels, *, width: int, height: int, domain):
    """Line charts of ``(variable, label)`` pairs present in ``ds``, one row each, own y scales; grey
    shading where the signal's quality flag (``<signal>_flag``) is not ok."""
    alt = _alt()
    rows = []
    for var, label in panels:
        if var in ds and "time" in ds[var].dims and np.isfinite(ds[var].values).any():
            s = ds[var].to_series()
            seg = segments(pd.DataFrame({"time": s.index.values, "value": s.values, "measure": label}), ["measure"])
            line = alt.Chart(seg).mark_line(strokeWidth=1, color="#374151").encode(
                x=_x(domain), y=alt.Y("value:Q", title=label, scale=alt.Scale(zero=False)),
                detail="segment:N")
            poor, what = _poor_quality(ds, var) if var != "physio_arousal" else ([], "")
            band = _band_layer(poor, domain, what)
            rows.append((alt.layer(band, line) if band is not None else line).properties(width=width, height=height))
    return alt.vconcat(*rows) if rows else None


def modality_weights_markdown(tree: xr.DataTree) -> str:
    """One line: the mean share of each modality in the fused output (or why there is none)."""
    if "fused" not in tree.children:
        return "_No fusion in this session._"
    w = tree["fused"].to_dataset()["modality_weight"].mean("time", skipna=True).to_series()
    w = w[np.isfinite(w.values)]
    if w.empty:
        return "_No modality had evidence at any time step, so nothing was fused._"
    return "Mean modality weights in the fusion: " + ", ".join(f"{escape_markdown(k)} {v:.2f}"
                                                              for k, v in w.items())


def voice_chart(tree: xr.DataTree, *, domain=None, width: int = 720):
    """Voice activity, pitch (Hz, voiced frames only) and loudness, on the session's time axis."""
    from .summary import session_extent

    if "voice" not in tree.children:
        return None
    ds = _thin(tree["voice"].to_dataset())
    loud_units = ds["voice_loudness"].attrs.get("units", "") if "voice_loudness" in ds else ""
    panels = (("voice_activity", "voice activity (0-1)"), ("voice_pitch", "pitch (Hz)"),
              ("voice_loudness", f"loudness ({loud_units})"))
    return _panels(ds, panels, width=width, height=80, domain=domain or session_extent(tree))


PHYSIO_PANELS = (("ecg_rate", "heart rate (bpm)"), ("ppg_rate", "pulse rate (bpm)"),
                 ("eda_tonic", "EDA tonic (uS)"), ("eda_phasic", "EDA phasic (uS)"),
                 ("rsp_rate", "breathing rate (/min)"), ("physio_arousal", "physiological arousal"))


def physio_chart(tree: xr.DataTree, *, domain=None, width: int = 720):
    """Heart/pulse rate, EDA tonic and phasic, breathing rate and physiological arousal over time."""
    from .summary import session_extent

    if "physio_features" not in tree.children:
        return None
    return _panels(_thin(tree["physio_features"].to_dataset()), PHYSIO_PANELS, width=width, height=70,
                   domain=domain or session_extent(tree))


def chart_lines(chart) -> list[pd.DataFrame]:
    """The data of every line mark in an Altair chart (for checking that no line spans a gap)."""
    spec = chart.to_dict()
    datasets = spec.get("datasets", {})
    out = []

    def walk(node, data):
        if isinstance(node, dict):
            if isinstance(node.get("data"), dict) and "name" in node["data"]:
                data = node["data"]["name"]  # a view's data, inherited by the views inside it
            mark = node.get("mark")
            mark = mark.get("type") if isinstance(mark, dict) else mark
            if mark == "line" and data is not None:
                out.append((pd.DataFrame(datasets[data]), node.get("encoding", {})))
            for k, v in node.items():
                if k != "datasets":
                    walk(v, data)
        elif isinstance(node, list):
            for v in node:
                walk(v, data)

    walk(spec, None)
    return out


# -- model cards next to the outputs ------------------------------------------------------------------
def model_note(tree: xr.DataTree, node: str) -> str | None:
    """HTML caption for a chart: which model made it, its license, its measured accuracy and whether
    its probabilities are calibrated (from its model card), or None when ``node`` is absent."""
    from ..models import get_model

    if node not in tree.children:
        return None
    ds = tree[node].to_dataset(inherit=False)
    names = [ds.attrs.get("expression_model")] if node == "face" else [ds.attrs.get("model")]
    parts = []
    for name in [n for n in names if n]:
        for one in str(name).split(" + "):
            try:
                spec = get_model(one.strip())
            except Exception:
                parts.append(f"model {html.escape(one)} (no model card registered)")
                continue
            parts.append(f"model <b>{html.escape(spec.name)}</b> ({html.escape(str(spec.license))}): "
                         f"{html.escape(measured_accuracy(spec))}; {html.escape(calibration(spec))}")
    return '<p class="emonb-caption">' + "<br>".join(parts) + "</p>" if parts else None


def _provenance_text() -> str:
    from pathlib import Path

    p = Path(__file__).resolve().parents[1] / "models" / "weights" / "PROVENANCE.md"
    try:
        return p.read_text(encoding="utf-8")
    except OSError:
        return ""


def _sentences(text: str, stops: str = ";") -> list[str]:
    """``text`` cut at sentence ends (". ", not the point in 0.636) and at ``stops``, never inside brackets."""
    out, depth, cur = [], 0, []
    for i, ch in enumerate(text):
        depth += ch in "([{"
        depth -= ch in ")]}" and depth > 0
        end = depth == 0 and (ch in stops or (ch == "." and not (i + 1 < len(text) and text[i + 1].isdigit())))
        if end:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [" ".join(x.split()) for x in out if x.strip()]


def measured_accuracy(spec) -> str:
    """The accuracy a model card states (its limitations, else the weights' provenance entry)."""
    text = " ".join(str(getattr(spec, k, "") or "") for k in ("limitations", "description"))
    # sentences end at ". " or ";" -- not at the point of 0.636
    for sentence in _sentences(text):
        if re.search(r"\baccuracy\b.*\d\.\d+", sentence):
            return sentence
    weights = str(getattr(spec, "weights", "") or "").rsplit("/", 1)[-1]
    prov = _provenance_text()
    if weights and weights in prov:
        for sentence in _sentences(prov[prov.index(weights):].replace("`", ""), stops=";|"):
            if re.search(r"\baccuracy \d\.\d+", sentence):
                return "measured (weights' provenance): " + sentence
    return "no measured accuracy on its model card"


def calibration(spec) -> str:
    """Whether the model's probabilities are calibrated, as its card says."""
    text = " ".join(str(getattr(spec, k, "") or "") for k in ("limitations", "description")).lower()
    if "uncalibrated" in text:
        return "probabilities not calibrated"
    if "calibrated" in text or "temperature" in text:
        return "probabilities calibrated by temperature scaling on a validation split"
    return "calibration not stated on its card"


# -- key frames -------------------------------------------------------------------------------------
def _peak_times(tr: xr.Dataset, n: int, min_gap: float) -> list[tuple[float, str, float]]:
    """(time, emotion, probability) of up to ``n`` peaks of one subject's track, showing as many
    different expressions as there are: the strongest moment of each top label first (non-neutral
    before neutral), then the next strongest moments, at least ``min_gap`` s apart."""
    if tr is None or "face_emotion" not in tr:
        return []
    p = tr["face_emotion"].transpose("time", "emotion").values
    ok = np.isfinite(p).all(axis=1)
    if not ok.any():
        return []
    times = tr["time"].values
    emo = [str(e) for e in tr["emotion"].values]
    top = np.where(ok, np.argmax(np.where(np.isfinite(p), p, -1), axis=1), -1)
    best = np.where(ok, np.nanmax(np.where(np.isfinite(p), p, -1), axis=1), -1)
    chosen: list[tuple[float, str, float]] = []

    def far(i):
        return all(abs(times[i] - c[0]) >= min_gap for c in chosen)

    per_label = []
    for k, name in enumerate(emo):
        idx = np.flatnonzero(top == k)
        if idx.size:
            i = idx[np.argmax(best[idx])]
            per_label.append((name == "neutral", -best[i], i))
    for _, _, i in sorted(per_label):
        if len(chosen) < n and far(i):
            chosen.append((float(times[i]), emo[top[i]], float(best[i])))
    for i in np.argsort(-best):
        if len(chosen) >= n or best[i] <= 0:
            break
        if far(i):
            chosen.append((float(times[i]), emo[top[i]], float(best[i])))
    return sorted(chosen)


def _blur_box(img: np.ndarray, box, margin: float = 0.25) -> np.ndarray:
    import cv2

    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = x1 - x0, y1 - y0
    x0, x1 = int(max(0, x0 - margin * w)), int(min(img.shape[1], x1 + margin * w))
    y0, y1 = int(max(0, y0 - margin * h)), int(min(img.shape[0], y1 + margin * h))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return img
    # pixelate to about six blocks across, then smooth: no identifiable feature survives
    roi = img[y0:y1, x0:x1]
    small = cv2.resize(roi, (6, max(1, round(6 * (y1 - y0) / (x1 - x0)))), interpolation=cv2.INTER_AREA)
    coarse = cv2.resize(small, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST)
    k = max(3, (max(x1 - x0, y1 - y0) // 4) | 1)
    img[y0:y1, x0:x1] = cv2.GaussianBlur(coarse, (k, k), 0)
    return img


def key_frames(tree: xr.DataTree, *, subject: str | None = None, n: int = 4, blur: bool = False,
               min_gap: float = 1.0, height: int = 200) -> tuple[bytes | None, pd.DataFrame]:
    """Frames at one subject's expression peaks (different expressions first), side by side as one JPEG.

    Each frame is labelled with its time, the model's top emotion and probability; the subject's
    face box is drawn in amber, other faces in grey. With ``blur=True`` every detected face in the
    frame is blurred (the label stays).

    Returns
    -------
    (bytes or None, pandas.DataFrame)
        The JPEG (``None`` when there is no video or no face) and a table of the peaks.
    """
    import cv2

    tr = _subject_face(tree, subject)
    peaks = _peak_times(tr, n, min_gap)
    table = pd.DataFrame(peaks, columns=["time_s", "emotion", "probability"])
    if not peaks or "video" not in tree.children:
        return None, table
    video = tree["video"].to_dataset(inherit=False)
    face = tree["face"].to_dataset()
    tiles = []
    for t, emo, p in peaks:
        img = np.ascontiguousarray(video.emonb.frame_at(t)).copy()
        mine = tr["face_box"].sel(time=t).values.reshape(4)
        boxes = face["face_box"].sel(time=t).values.reshape(-1, 4)
        for box in boxes:
            if not np.isfinite(box).all():
                continue
            if blur:
                img = _blur_box(img, box)
            x0, y0, x1, y1 = (int(v) for v in box)
            colour = (255, 200, 0) if np.allclose(box, mine, equal_nan=False) else (160, 160, 160)
            cv2.rectangle(img, (x0, y0), (x1, y1), colour, 2)
        scale = height / img.shape[0]
        img = cv2.resize(img, (int(img.shape[1] * scale), height), interpolation=cv2.INTER_AREA)
        label = f"{t:.2f} s  {emo} {p:.2f}"
        cv2.rectangle(img, (0, 0), (img.shape[1], 22), (0, 0, 0), -1)
        cv2.putText(img, label, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(img)
    strip = np.concatenate([np.pad(t, ((0, 0), (0, 4), (0, 0)), constant_values=255) for t in tiles], axis=1)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(strip, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return (bytes(buf) if ok else None), table


# -- spots, annotations -----------------------------------------------------------------------------
SPOT_COLUMNS = ["onset", "apex", "end", "duration", "kind", "regions", "score"]


def spots_table(tree: xr.DataTree) -> pd.DataFrame | None:
    """Spotted micro/macro expressions in time order: onset, apex, end, duration (s), kind, regions,
    score (rounded: times to 0.01 s, score to 0.01), and ``subject`` when more than one person was in
    view; None without a ``spots`` node."""
    if "spots" not in tree.children:
        return None
    ds = tree["spots"].to_dataset()
    if not ds.sizes.get("spot", 0):
        return pd.DataFrame(columns=SPOT_COLUMNS)
    df = ds.to_dataframe().reset_index(drop=True)
    out = pd.DataFrame({"onset": df["onset"].astype(float), "apex": df["apex"].astype(float),
                        "end": df["offset"].astype(float)})
    out["duration"] = out["end"] - out["onset"]
    out["kind"] = df["kind"].astype(str) if "kind" in df else ""
    out["regions"] = df["regions"].astype(str) if "regions" in df else ""
    out["score"] = df["score"].astype(float) if "score" in df else np.nan
    cols = list(SPOT_COLUMNS)
    who = _spot_subjects(tree, df)
    if who is not None:
        out["subject"] = who
        cols.append("subject")
    return out.sort_values("onset").round({"onset": 2, "apex": 2, "end": 2, "duration": 2, "score": 2}
                                         ).reset_index(drop=True)[cols]


def _spot_subjects(tree: xr.DataTree, df: pd.DataFrame):
    """The subject of each spot (its face at its apex), or None when the session has one subject or none."""
    from ..subjects import subjects_of

    if "face" not in df or "face" not in tree.children or "face_box" not in tree["face"].to_dataset():
        return None
    face = subjects_of(tree["face"].to_dataset()[["face_box"] + (["face_subject"] if "face_subject" in
                                                                  tree["face"].to_dataset() else [])])
    per = face["face_subject"].transpose("time", "face").values.astype(str)
    if len(set(per.ravel()) - {""}) < 2:
        return None
    t = face["time"].values.astype(float)
    ids = face["face"].values.tolist()
    out = []
    for apex, fid in zip(df["apex"].astype(float), df["face"]):
        i = int(np.clip(np.searchsorted(t, apex), 0, t.size - 1))
        out.append(per[i, ids.index(int(fid))] if int(fid) in ids else "")
    return out


def annotation_tables(store, tree: xr.DataTree | None = None, *, session: str | None = None,
                      subject: str | None = None) -> dict[str, pd.DataFrame]:
    """Reviewer annotations of a session and, with two or more reviewers or a model, agreement.

    Returns a dict with ``annotations`` (always), ``agreement`` (per-label kappa/alpha between
    reviewers and the face model on ``subject``'s track (default: the main subject) vs each
    reviewer, when computable) and ``segments`` (segment-overlap agreement).
    """
    from ..review import AnnotationStore, agreement, segment_agreement

    st = store if isinstance(store, AnnotationStore) else AnnotationStore(store)
    sid = session or (str(tree.attrs.get("session_id")) if tree is not None else None)
    if sid not in st.sessions():
        sid = st.sessions()[0] if len(st.sessions()) == 1 else sid
    df = st.to_dataframe(session=sid)
    df = df[~df["deleted"]] if "deleted" in df else df
    out = {"annotations": df[[c for c in ("reviewer", "onset", "offset", "label", "intensity", "confidence", "note")
                              if c in df.columns]].reset_index(drop=True)}
    if df.empty:
        return out
    model = _subject_face(tree, subject) if tree is not None else None
    try:
        out["agreement"] = agreement(st, session=sid, model=model)
    except EmonbValueError as exc:
        out["agreement_note"] = pd.DataFrame({"note": [str(exc)]})
    if df["reviewer"].nunique() >= 2:
        out["segments"] = segment_agreement(st, session=sid)
    return out


def _flag_names(da: xr.DataArray) -> pd.Series:
    """Flag codes as their names (CF ``flag_values`` / ``flag_meanings``)."""
    vals = np.asarray(da.values).ravel()
    codes, meanings = da.attrs.get("flag_values"), da.attrs.get("flag_meanings")
    if codes is not None and meanings:
        names = dict(zip(np.atleast_1d(codes).tolist(), str(meanings).split()))
        return pd.Series([names.get(int(v), str(v)) if np.isfinite(v) else "nan" for v in vals.astype(float)])
    return pd.Series(vals.astype(str))


# -- limitations ------------------------------------------------------------------------------------
def _number_text(v) -> str:
    """``v`` rounded for the report, or its escaped text when it is not a number (an attr from a file)."""
    try:
        return f"{float(v):.0f}"
    except (TypeError, ValueError):
        return escape_markdown(v)


def limitations_markdown(tree: xr.DataTree) -> str:
    """What the numbers in this report can and cannot say: honesty note, per-model limits, data quality."""
    from ..models import list_models

    lines = [
        "Emotion inferred from a face, a voice, a heartbeat or words is a **probability about an expression**, "
        "not a fact about what the person felt. Every label in this report comes with its probability and "
        "the model that produced it.",
        "",
    ]
    try:
        specs = list_models()
    except Exception:  # a broken plugin must not take the report down
        specs = pd.DataFrame()
    used = set()
    for name in tree.children:
        ds = tree[name].to_dataset(inherit=False)
        for key in ("model", "mesh_model", "expression_model", "au_model", "vad_model"):
            for part in str(ds.attrs.get(key, "")).split(" + "):
                if part:
                    used.add(part.strip())
    rows = [m for m in sorted(used) if m in getattr(specs, "index", [])]
    if rows:
        lines.append("| model | license | trained on | known limits |")
        lines.append("|---|---|---|---|")
        for m in rows:
            s = specs.loc[m]
            cell = [escape_markdown(s.get(k, "")) for k in ("license", "training_data", "limitations")]
            lines.append(f"| {escape_markdown(m)} | " + " | ".join(cell) + " |")
        lines.append("")
    quality = []
    if "face" in tree.children:
        f = tree["face"].to_dataset()
        if "face_box" in f and f.sizes.get("time", 0):
            from ..subjects import subject_summary

            quality += [f"- Face: {escape_markdown(line)}." for line in subject_summary(f, detail=False)]
            quality.append("- Face: where a subject is not in view its estimates are missing (NaN), not zero, "
                           "and the charts show a gap there.")
        if "face_occluded" in f:
            occ = f["face_occluded"].values
            if np.isfinite(occ).any():
                quality.append(f"- Face: occluded or turned away in {100 * np.nanmean(occ):.0f}% of the "
                               "analysed faces.")
    if "voice" in tree.children:
        v = tree["voice"].to_dataset()
        flags = str(v.attrs.get("quality_flags", ""))
        snr = v.attrs.get("snr_db")
        flags = escape_markdown(flags)
        snr_text = _number_text(snr)
        quality.append(f"- Voice: SNR {snr_text} dB" + (f"; flags: {flags}" if flags else "") if snr is not None
                       else f"- Voice: flags: {flags or 'none'}")
    if "physio_features" in tree.children:
        p = tree["physio_features"].to_dataset()
        for sig in ("ecg", "ppg", "eda", "rsp", "emg"):
            if f"{sig}_flag" in p:
                fl = _flag_names(p[f"{sig}_flag"]).value_counts(normalize=True)
                bad = {k: v for k, v in fl.items() if k not in ("ok", "", "nan")}
                quality.append(f"- {sig.upper()}: " + (", ".join(f"{escape_markdown(k)} {100 * v:.0f}%"
                                                                for k, v in bad.items())
                                                      if bad else "signal quality ok throughout"))
    if "text" in tree.children and "note" in tree["text"].attrs:
        quality.append(f"- Text: {escape_markdown(tree['text'].attrs['note'])}")
    if quality:
        lines.append("**Data quality in this session**")
        lines.append("")
        lines.extend(quality)
    lines.append("")
    lines.append("Fused estimates weight each modality by its confidence; a modality that is absent or "
                 "of low quality contributes little (the mean modality weights are given under "
                 "Valence and arousal).")
    return "\n".join(lines)
