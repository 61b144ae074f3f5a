"""The parts of a report, one function each: tables, Altair charts and key frames from a session tree.

The report notebook (``notebooks/report.ipynb``) calls these; they are also handy on their own in
a notebook. Every chart function returns ``None`` when the session has nothing to show, so the
notebook can say so instead of drawing an empty chart.
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

__all__ = ["prepare_session", "crop", "escape_markdown", "title_html", "STATUS_MIME", "analysis_status", "status_banner", "show_section", "session_table", "provenance_table", "emotion_frame",
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


def title_html(tree: xr.DataTree, *, title: str | None = None, start: float | None = None,
               end: float | None = None) -> str:
    """The report's title block (HTML): title, session id, subject, emonb version, reported range.

    Every value is HTML-escaped: the session id, the subject and the title are user input.
    """
    from .._version import __version__

    sid = str(tree.attrs.get("session_id", "session"))
    subject = str(tree.attrs.get("subject", "") or "-")
    head = title or f"Session {sid}"
    rng = ""
    if start is not None or end is not None:
        rng = (f" Reported range: {html.escape(str(start if start is not None else 'start'))} to "
               f"{html.escape(str(end if end is not None else 'end'))} s.")
    return (f'<h1 class="emonb-title">{html.escape(str(head))}</h1>\n'
            f'<p class="emonb-subtitle">Session <code>{html.escape(sid)}</code>, subject '
            f'<code>{html.escape(subject)}</code>, analysed with emonb {html.escape(__version__)}.{rng}</p>')


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
def _thin(ds: xr.Dataset, dim: str = "time") -> xr.Dataset:
    n = ds.sizes.get(dim, 0)
    return ds.isel({dim: slice(None, None, int(np.ceil(n / MAX_POINTS)))}) if n > MAX_POINTS else ds


def _first_face(da: xr.DataArray) -> xr.DataArray:
    return da.isel(face=0) if "face" in da.dims else da


def _confident(ds: xr.Dataset, da: xr.DataArray) -> xr.DataArray:
    """``da`` where its modality had any evidence: voice estimates need detected speech (confidence > 0)."""
    if "voice_confidence" in ds and "time" in da.dims:
        return da.where(ds["voice_confidence"].fillna(0) > 0)
    return da


def emotion_frame(tree: xr.DataTree) -> pd.DataFrame:
    """Long table ``time, source, emotion, probability`` of every result with emotion probabilities."""
    parts = []
    for node, (label, var, _, _) in EMOTION_SOURCES.items():
        if var is None or node not in tree.children or var not in tree[node].to_dataset():
            continue
        ds = _thin(tree[node].to_dataset())
        da = _confident(ds, _first_face(ds[var]))
        df = da.to_dataframe(name="probability").reset_index()[["time", "emotion", "probability"]]
        df["source"] = label
        parts.append(df)
    if not parts:
        return pd.DataFrame(columns=["time", "source", "emotion", "probability"])
    return pd.concat(parts, ignore_index=True)


def _alt():
    import altair as alt

    return alt


def emotion_chart(tree: xr.DataTree, *, width: int = 720):
    """Emotion probabilities over time, one row per source (face, voice, fused)."""
    df = emotion_frame(tree)
    if df.empty:
        return None
    alt = _alt()
    df = df.dropna(subset=["probability"])
    if df.empty:
        return None
    return alt.Chart(df).mark_line(strokeWidth=1.2).encode(
        x=alt.X("time:Q", title="session time (s)"),
        y=alt.Y("probability:Q", scale=alt.Scale(domain=[0, 1]), title="probability"),
        color=alt.Color("emotion:N", sort=list(EMOTIONS)),
    ).properties(width=width, height=110).facet(row=alt.Row("source:N", title=None))


def valence_arousal_chart(tree: xr.DataTree, *, width: int = 720):
    """Valence and arousal in [-1, 1] per modality and fused."""
    parts = []
    for node, (label, _, val, aro) in EMOTION_SOURCES.items():
        if node not in tree.children:
            continue
        ds = _thin(tree[node].to_dataset())
        for dim_name, var in (("valence", val), ("arousal", aro)):
            if var and var in ds:
                s = _confident(ds, _first_face(ds[var])).to_series()
                parts.append(pd.DataFrame({"time": s.index.values, "value": s.values, "measure": dim_name,
                                           "source": label}))
    if not parts:
        return None
    alt = _alt()
    df = pd.concat(parts, ignore_index=True).dropna(subset=["value"])
    if df.empty:
        return None
    return alt.Chart(df).mark_line(strokeWidth=1.2).encode(
        x=alt.X("time:Q", title="session time (s)"),
        y=alt.Y("value:Q", scale=alt.Scale(domain=[-1, 1]), title=None),
        color=alt.Color("source:N"),
    ).properties(width=width, height=120).facet(row=alt.Row("measure:N", title=None))


def au_heatmap(tree: xr.DataTree, *, bin_seconds: float = 0.5, width: int = 720):
    """Action-unit intensity (0-1) per time bin: AUs as rows, time as columns (first face)."""
    if "face" not in tree.children or "face_au" not in tree["face"].to_dataset():
        return None
    da = _first_face(tree["face"].to_dataset()["face_au"])
    if not np.isfinite(da.values).any():
        return None
    t = da["time"].values
    bins = np.floor((t - t[0]) / bin_seconds).astype(int)
    binned = da.groupby(xr.DataArray(bins, dims="time", name="bin")).mean(skipna=True)
    df = binned.to_dataframe(name="intensity").reset_index()
    df["start"] = t[0] + df["bin"] * bin_seconds
    df["stop"] = df["start"] + bin_seconds
    df["name"] = df["au"].map(lambda a: f"{a} {AU_NAMES.get(str(a), '')}".strip())
    alt = _alt()
    return alt.Chart(df).mark_rect().encode(
        x=alt.X("start:Q", title="session time (s)", scale=alt.Scale(nice=False)), x2="stop:Q",
        y=alt.Y("name:N", title=None, sort=None),
        color=alt.Color("intensity:Q", scale=alt.Scale(domain=[0, 1], scheme="viridis")),
        tooltip=["name", "start", "intensity"],
    ).properties(width=width, height=14 * df["au"].nunique())


def _panels(ds: xr.Dataset, panels, *, width: int, height: int):
    """Line charts of ``(variable, label)`` pairs present in ``ds``, one row each, own y scales."""
    parts = []
    for var, label in panels:
        if var in ds and np.isfinite(ds[var].values).any():
            s = ds[var].to_series()
            parts.append(pd.DataFrame({"time": s.index.values, "value": s.values, "measure": label}))
    if not parts:
        return None
    alt = _alt()
    df = pd.concat(parts, ignore_index=True).dropna(subset=["value"])
    return alt.Chart(df).mark_line(strokeWidth=1).encode(
        x=alt.X("time:Q", title="session time (s)"), y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
    ).properties(width=width, height=height).facet(
        row=alt.Row("measure:N", title=None, sort=[label for _, label in panels])).resolve_scale(y="independent")


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


def voice_chart(tree: xr.DataTree, *, width: int = 720):
    """Voice activity, pitch (Hz) and loudness over time."""
    if "voice" not in tree.children:
        return None
    ds = _thin(tree["voice"].to_dataset())
    loud_units = ds["voice_loudness"].attrs.get("units", "") if "voice_loudness" in ds else ""
    panels = (("voice_activity", "voice activity (0-1)"), ("voice_pitch", "pitch (Hz)"),
              ("voice_loudness", f"loudness ({loud_units})"))
    return _panels(ds, panels, width=width, height=90)


PHYSIO_PANELS = (("ecg_rate", "heart rate (bpm)"), ("ppg_rate", "pulse rate (bpm)"),
                 ("eda_tonic", "EDA tonic (uS)"), ("eda_phasic", "EDA phasic (uS)"),
                 ("rsp_rate", "breathing rate (/min)"), ("physio_arousal", "physiological arousal"))


def physio_chart(tree: xr.DataTree, *, width: int = 720):
    """Heart/pulse rate, EDA tonic and phasic, breathing rate and physiological arousal over time."""
    if "physio_features" not in tree.children:
        return None
    return _panels(_thin(tree["physio_features"].to_dataset()), PHYSIO_PANELS, width=width, height=80)


# -- key frames -------------------------------------------------------------------------------------
def _peak_times(tree: xr.DataTree, n: int, min_gap: float) -> list[tuple[float, str, float, str]]:
    """(time, emotion, probability, source) of the strongest non-neutral peaks, at least min_gap apart."""
    src = "face" if "face" in tree.children and "face_emotion" in tree["face"].to_dataset() else None
    if src is None:
        return []
    da = _first_face(tree["face"].to_dataset()["face_emotion"]).drop_sel(emotion="neutral", errors="ignore")
    vals = da.values
    if not np.isfinite(vals).any():
        return []
    best = np.nanmax(np.where(np.isfinite(vals), vals, -1), axis=1)
    which = np.nanargmax(np.where(np.isfinite(vals), vals, -1), axis=1)
    times = da["time"].values
    chosen: list[tuple[float, str, float, str]] = []
    for i in np.argsort(-best):
        if best[i] <= 0 or len(chosen) >= n:
            break
        if all(abs(times[i] - c[0]) >= min_gap for c in chosen):
            chosen.append((float(times[i]), str(da.emotion.values[which[i]]), float(best[i]), src))
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


def key_frames(tree: xr.DataTree, *, n: int = 4, blur: bool = False, min_gap: float = 1.0,
               height: int = 200) -> tuple[bytes | None, pd.DataFrame]:
    """Frames at the strongest expression peaks of the first face, side by side as one JPEG.

    Each frame is labelled with its time, the model's top emotion and probability; with
    ``blur=True`` every detected face in the frame is blurred (the label stays).

    Returns
    -------
    (bytes or None, pandas.DataFrame)
        The JPEG (``None`` when there is no video or no face) and a table of the peaks.
    """
    import cv2

    peaks = _peak_times(tree, n, min_gap)
    table = pd.DataFrame(peaks, columns=["time_s", "emotion", "probability", "source"])
    if not peaks or "video" not in tree.children:
        return None, table
    video = tree["video"].to_dataset(inherit=False)
    face = tree["face"].to_dataset()
    tiles = []
    for t, emo, p, _ in peaks:
        img = np.ascontiguousarray(video.emonb.frame_at(t)).copy()
        boxes = face["face_box"].sel(time=t, method="nearest").values.reshape(-1, 4)
        for b_i, box in enumerate(boxes):
            if not np.isfinite(box).all():
                continue
            if blur:
                img = _blur_box(img, box)
            x0, y0, x1, y1 = (int(v) for v in box)
            cv2.rectangle(img, (x0, y0), (x1, y1), (255, 200, 0), 2)
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
def spots_table(tree: xr.DataTree) -> pd.DataFrame | None:
    """Spotted micro/macro expressions (the ``spots`` node) as a table, or None."""
    if "spots" not in tree.children:
        return None
    ds = tree["spots"].to_dataset()
    if not ds.sizes.get("spot", 0):
        return pd.DataFrame()
    return ds.to_dataframe().reset_index(drop=True)


def annotation_tables(store, tree: xr.DataTree | None = None, *, session: str | None = None
                      ) -> dict[str, pd.DataFrame]:
    """Reviewer annotations of a session and, with two or more reviewers or a model, agreement.

    Returns a dict with ``annotations`` (always), ``agreement`` (per-label kappa/alpha between
    reviewers and model vs reviewer, when computable) and ``segments`` (segment-overlap agreement).
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
    model = tree["face"].to_dataset() if tree is not None and "face" in tree.children else None
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
        if "face_score" in f and f.sizes.get("time", 0):
            seen = np.isfinite(_first_face(f["face_score"]).values)
            quality.append(f"- Face: no face in {100 * (1 - seen.mean()):.0f}% of analysed frames (NaN there, not zero).")
        if "face_occluded" in f:
            occ = _first_face(f["face_occluded"]).values
            if np.isfinite(occ).any():
                quality.append(f"- Face: occluded or turned away in {100 * np.nanmean(occ):.0f}% of frames with a face.")
    if "voice" in tree.children:
        v = tree["voice"].to_dataset()
        flags = str(v.attrs.get("quality_flags", ""))
        snr = v.attrs.get("snr_db")
        flags = escape_markdown(flags)
        snr_text = _number_text(snr)
        quality.append(f"- Voice: SNR {snr_text} dB" + (f"; flags: {flags}" if flags else "") if snr is not None
                       else f"- Voice: flags: {flags or 'none'}")
        if "emotion_note" in v.attrs:
            quality.append(f"- Voice model: {escape_markdown(v.attrs['emotion_note'])}")
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
                 "of low quality contributes little, and the `modality_weight` panel shows how much each one counted.")
    return "\n".join(lines)
