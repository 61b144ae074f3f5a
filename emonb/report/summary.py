"""The figures at the top of a report: what was recorded, and the headline findings per subject.

Every function returns plain numbers (DataFrames) that tests check against the data, and
:func:`summary_html` typesets them. Intervals are 95% block-bootstrap intervals: the samples of a
time series are not independent, so whole blocks of ``block_s`` seconds are resampled.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import xarray as xr

from ..schema import EMOTIONS

__all__ = ["session_extent", "recording_table", "subject_list", "expression_shares", "affect_means",
           "reviewer_moments", "agreement_summary", "summary_html", "table_html", "bootstrap_ci"]

INPUT_NODES = ("video", "audio", "physio", "transcript")
N_BOOT = 400
BLOCK_S = 1.0


def _ds(tree: xr.DataTree, name: str) -> xr.Dataset | None:
    return tree[name].to_dataset(inherit=False) if name in tree.children else None


def _span(ds: xr.Dataset) -> tuple[float, float] | None:
    if "time" in ds.coords and ds.sizes.get("time", 0):
        t = ds["time"].values.astype(float)
        return float(np.nanmin(t)), float(np.nanmax(t))
    if "start" in ds and "end" in ds and ds["start"].size:  # a transcript
        return float(np.nanmin(ds["start"].values)), float(np.nanmax(ds["end"].values))
    return None


def session_extent(tree: xr.DataTree, start: float | None = None, end: float | None = None) -> tuple[float, float]:
    """``(first, last)`` second of anything recorded in the session (its input nodes, else any node),
    clipped to the reported range. Every chart of a report uses it as its time axis."""
    spans = [s for n in INPUT_NODES if (d := _ds(tree, n)) is not None and (s := _span(d))]
    if not spans:
        spans = [s for n in tree.children if (s := _span(tree[n].to_dataset(inherit=False)))]
    lo = min((s[0] for s in spans), default=0.0)
    hi = max((s[1] for s in spans), default=1.0)
    v = _ds(tree, "video")
    if v is not None and float(v.attrs.get("fps", 0) or 0) > 0 and (sp := _span(v)):
        hi = max(hi, sp[1] + 1.0 / float(v.attrs["fps"]))  # the last frame lasts one frame period
    lo = lo if start is None else max(lo, float(start))
    hi = hi if end is None else min(hi, float(end))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


# -- what was recorded ----------------------------------------------------------------------------
def recording_table(tree: xr.DataTree, *, start: float | None = None, end: float | None = None) -> pd.DataFrame:
    """One row per recorded modality: source file, first and last second, duration, coverage.

    ``coverage`` is the share (0-1) of the session's extent (:func:`session_extent`) that the
    modality covers on the session clock; ``found`` says what the analysis found in it (a subject
    in view, speech, signal quality).
    """
    lo, hi = session_extent(tree, start, end)
    rows = []
    for name in INPUT_NODES:
        ds = _ds(tree, name)
        if ds is None:
            continue
        sp = _span(ds)
        if sp is None:
            continue
        a, b = sp
        if name == "video" and "fps" in ds.attrs:
            b += 1.0 / float(ds.attrs["fps"])
        elif name in ("audio", "physio") and float(ds.attrs.get("sampling_rate", 0) or 0) > 0:
            b += 1.0 / float(ds.attrs["sampling_rate"])
        cov = max(0.0, min(b, hi) - max(a, lo)) / (hi - lo)
        src = str(ds.attrs.get("path", "") or ds.attrs.get("source", "")).replace("\\", "/").rsplit("/", 1)[-1]
        rows.append({"modality": name, "source": src, "start_s": a, "end_s": b, "duration_s": b - a,
                     "coverage": min(1.0, cov), "found": _found(tree, name)})
    return pd.DataFrame(rows, columns=["modality", "source", "start_s", "end_s", "duration_s", "coverage", "found"])


def _found(tree: xr.DataTree, name: str) -> str:
    if name == "video" and (f := _ds(tree, "face")) is not None and "face_box" in f and "time" in f.dims:
        from ..subjects import subject_shares

        shares = subject_shares(f)
        n = f.sizes["time"]
        return (f"subjects in view: {shares} of {n} analysed frames" if shares
                else f"no face in {n} analysed frames")
    if name == "audio" and (v := _ds(tree, "voice")) is not None and "voice_activity" in v:
        act = v["voice_activity"].values
        return f"speech in {100 * float(np.mean(act > 0.5)):.0f}% of the audio"
    if name == "physio" and (p := _ds(tree, "physio_features")) is not None:
        return "features: " + ", ".join(v for v in ("ecg_rate", "ppg_rate", "eda_tonic", "rsp_rate") if v in p)
    if name == "transcript" and (t := _ds(tree, "transcript")) is not None:
        return f"{t.sizes.get('segment', 0)} segments"
    from ..analysis import failed_steps

    step = {"video": "face", "audio": "voice", "physio": "physio"}.get(name)
    if step and step in failed_steps(tree):
        return f"{step} analysis failed (see above)"
    return "not analysed"


# -- subjects --------------------------------------------------------------------------------------
def subject_list(tree: xr.DataTree, which="main") -> list[str]:
    """Subjects to report: ``"main"`` (the one with most screen time), ``"all"``, or a list of names."""
    from ..errors import EmonbValueError
    from ..subjects import subject_table

    f = _ds(tree, "face")
    if f is None or "face_box" not in f or "time" not in f.dims:
        return []
    table = subject_table(f)
    names = table["subject"].tolist()
    if not names:
        return []
    if which in (None, "main"):
        main = table.loc[table["main"], "subject"].tolist()
        return main[:1] or names[:1]
    if which == "all":
        return names
    if isinstance(which, str):
        which = [which]
    missing = [w for w in which if w not in names]
    if missing:
        raise EmonbValueError(f"report parameter 'subjects': no subject {missing} in this session; it has {names}")
    return list(which)


def _track(tree: xr.DataTree, subject: str) -> xr.Dataset:
    from ..subjects import subject_track
    from .sections import REPORT_FACE_VARS

    face = _ds(tree, "face")
    return subject_track(face[[v for v in REPORT_FACE_VARS if v in face.data_vars]], subject)


def _blocks(t: np.ndarray, block_s: float) -> np.ndarray:
    return np.floor((t - t[0]) / block_s).astype(int) if t.size else np.zeros(0, int)


def bootstrap_ci(values: np.ndarray, t: np.ndarray, *, stat=np.mean, block_s: float = BLOCK_S,
                 n_boot: int = N_BOOT, seed: int = 0) -> tuple[float, float, float]:
    """``(estimate, low, high)``: ``stat`` of the finite ``values`` and its 95% block-bootstrap interval.

    ``values`` may be (n,) or (n, k) (then ``stat`` reduces axis 0 and every output is (k,)).
    Blocks are ``block_s`` seconds of ``t``; NaN rows are left out first. With fewer than two
    blocks the interval is NaN (one stretch of data says nothing about its own spread).
    """
    v = np.asarray(values, float)
    ok = np.isfinite(v) if v.ndim == 1 else np.isfinite(v).all(axis=1)
    v, t = v[ok], np.asarray(t, float)[ok]
    shape = () if v.ndim == 1 else (v.shape[1],)
    if v.shape[0] == 0:
        nan = np.full(shape, np.nan)
        return nan, nan, nan
    est = stat(v, axis=0)
    b = _blocks(t, block_s)
    ids = np.unique(b)
    if ids.size < 2:
        nan = np.full(shape, np.nan)
        return est, nan, nan
    groups = [np.flatnonzero(b == i) for i in ids]
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(groups), len(groups))
        boots.append(stat(v[np.concatenate([groups[i] for i in pick])], axis=0))
    lo, hi = np.percentile(np.asarray(boots), [2.5, 97.5], axis=0)
    return est, lo, hi


def expression_shares(tree: xr.DataTree, subject: str) -> pd.DataFrame:
    """Per emotion: share of the subject's analysed frames in view where it was the top label.

    Columns ``emotion, share, low, high`` (0-1; 95% block bootstrap) and ``mean_probability``
    (the model's mean probability over the same frames), plus ``frames`` (how many).
    """
    tr = _track(tree, subject)
    if "face_emotion" not in tr:
        return pd.DataFrame(columns=["emotion", "share", "low", "high", "mean_probability", "frames"])
    p = tr["face_emotion"].transpose("time", "emotion").values.astype(float)
    t = tr["time"].values.astype(float)
    ok = np.isfinite(p).all(axis=1)
    emo = [str(e) for e in tr["emotion"].values]
    onehot = np.full(p.shape, np.nan)
    onehot[ok] = np.eye(len(emo))[np.argmax(p[ok], axis=1)]
    share, lo, hi = bootstrap_ci(onehot, t)
    mean_p = np.nanmean(p[ok], axis=0) if ok.any() else np.full(len(emo), np.nan)
    df = pd.DataFrame({"emotion": emo, "share": share, "low": lo, "high": hi, "mean_probability": mean_p,
                       "frames": int(ok.sum())})
    order = [e for e in EMOTIONS if e in emo] + [e for e in emo if e not in EMOTIONS]
    return df.set_index("emotion").loc[order].reset_index()


#: (node, label, valence variable, arousal variable, needs speech)
AFFECT_SOURCES = (
    ("voice", "voice (where speech was detected)", "voice_valence", "voice_arousal", True),
    ("physio_features", "physiology", None, "physio_arousal", False),
    ("text", "text (transcript)", "text_valence", None, False),
    ("fused", "fused", "fused_valence", "fused_arousal", False),
)


def affect_means(tree: xr.DataTree, subjects: list[str] | None = None) -> pd.DataFrame:
    """Mean valence and arousal per modality with 95% intervals.

    Face rows are per subject (their frames in view); voice, physiology, text and fusion are not
    attributed to a person and are reported for the session. Voice counts only samples with
    detected speech (``voice_confidence > 0``). Columns ``source, scope, measure, mean, low, high,
    seconds`` (seconds of data behind the mean).
    """
    rows = []

    def add(source, scope, measure, da, t):
        v = np.asarray(da, float)
        est, lo, hi = bootstrap_ci(v, t)
        ok = np.isfinite(v)
        dt = np.median(np.diff(t)) if t.size > 1 else 0.0
        rows.append({"source": source, "scope": scope, "measure": measure, "mean": float(est), "low": float(lo),
                     "high": float(hi), "seconds": float(ok.sum() * dt)})

    for s in subjects or []:
        tr = _track(tree, s)
        t = tr["time"].values.astype(float)
        for m in ("valence", "arousal"):
            if f"face_{m}" in tr:
                add("face", f"subject {s}", m, tr[f"face_{m}"].values, t)
    for node, label, val, aro, speech in AFFECT_SOURCES:
        ds = _ds(tree, node)
        if ds is None or "time" not in ds.dims:
            continue
        t = ds["time"].values.astype(float)
        for m, var in (("valence", val), ("arousal", aro)):
            if var and var in ds:
                v = ds[var].values.astype(float)
                if speech and "voice_confidence" in ds:
                    v = np.where(np.nan_to_num(ds["voice_confidence"].values.astype(float)) > 0, v, np.nan)
                add(label, "session", m, v, t)
    return pd.DataFrame(rows, columns=["source", "scope", "measure", "mean", "low", "high", "seconds"])


# -- reviewers -------------------------------------------------------------------------------------
def reviewer_moments(parts: dict | None, *, limit: int = 12) -> pd.DataFrame:
    """The annotated moments, in time order: ``onset, end, label, reviewers`` (same label and
    overlapping segments of different reviewers are one moment)."""
    cols = ["onset", "end", "label", "reviewers"]
    if not parts or "annotations" not in parts or parts["annotations"].empty:
        return pd.DataFrame(columns=cols)
    a = parts["annotations"].sort_values("onset")
    moments: list[dict] = []
    for r in a.itertuples():
        for m in moments:
            if m["label"] == r.label and r.onset < m["end"] and r.offset > m["onset"]:
                m["onset"], m["end"] = min(m["onset"], r.onset), max(m["end"], r.offset)
                m["reviewers"].add(str(r.reviewer))
                break
        else:
            moments.append({"onset": float(r.onset), "end": float(r.offset), "label": str(r.label),
                            "reviewers": {str(r.reviewer)}})
    df = pd.DataFrame(moments[:limit], columns=cols)
    df["reviewers"] = [", ".join(sorted(x)) for x in df["reviewers"]]
    return df


def agreement_summary(parts: dict | None) -> pd.DataFrame:
    """Overall agreement rows: between reviewers and model vs each reviewer (kappa, alpha, observed)."""
    cols = ["comparison", "n_raters", "observed", "kappa", "alpha"]
    if not parts or "agreement" not in parts:
        return pd.DataFrame(columns=cols)
    ag = parts["agreement"]
    ag = ag[ag["label"] == "overall"] if "label" in ag else ag
    return ag[[c for c in cols if c in ag.columns]].reset_index(drop=True)


# -- typesetting -----------------------------------------------------------------------------------
def _fmt(v, digits: int) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else ""
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return "–" if not np.isfinite(v) else f"{float(v):.{digits}f}"
    return html.escape(str(v))


def table_html(df: pd.DataFrame, *, digits: dict | int = 2, caption: str | None = None,
               index: bool = False) -> str:
    """``df`` as a styled HTML table (class ``emonb-table``): every cell escaped, numbers rounded
    (``digits`` per column or for all), numeric columns right-aligned."""
    if index:
        df = df.reset_index()
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = []
    for row in df.itertuples(index=False):
        cells = []
        for c, v in zip(df.columns, row):
            d = digits.get(c, 2) if isinstance(digits, dict) else digits
            num = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
            cells.append(f'<td class="num">{_fmt(v, d)}</td>' if num else f"<td>{_fmt(v, d)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (f'<table class="emonb-table">{cap}<thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def _pct(x) -> str:
    return "–" if not np.isfinite(x) else f"{round(100 * float(x)) + 0:.0f}%"


def _ci(est, lo, hi, *, pct: bool = False, digits: int = 2) -> str:
    f = _pct if pct else (lambda v: "–" if not np.isfinite(v) else f"{round(float(v), digits) + 0.0:+.{digits}f}")
    if not np.isfinite(lo):
        return f"{f(est)} (no interval: under two 1-s blocks)" if np.isfinite(est) else "–"
    return f"{f(est)} [{f(lo)}, {f(hi)}]"


def summary_html(tree: xr.DataTree, *, subjects: list[str], parts: dict | None = None,
                 start: float | None = None, end: float | None = None) -> str:
    """The report's opening summary (HTML): recording, coverage, and per-subject findings."""
    from ..subjects import subject_table

    out = ['<section class="emonb-summary">', "<h2 id=\"Summary\">Summary</h2>"]
    lo, hi = session_extent(tree, start, end)
    rec = recording_table(tree, start=start, end=end)
    out.append(f"<p>Session clock {lo:.2f}–{hi:.2f} s ({hi - lo:.1f} s). Recorded:</p>")
    if rec.empty:
        out.append("<p><em>Nothing with a time axis was recorded in this session.</em></p>")
    else:
        show = rec.assign(coverage=[_pct(c) for c in rec["coverage"]])
        out.append(table_html(show.rename(columns={"start_s": "start (s)", "end_s": "end (s)",
                                                   "duration_s": "duration (s)"}), digits=2))
    f = _ds(tree, "face")
    if f is not None and "face_box" in f and "time" in f.dims:
        tab = subject_table(f)
        if tab.empty:
            out.append(f"<p>No face was found in any of the {f.sizes['time']} analysed frames.</p>")
        else:
            out.append("<h3>Subjects</h3>")
            out.append(table_html(tab.assign(share=[_pct(s) for s in tab["share"]]).rename(columns={
                "screen_time_s": "in view (s)", "share": "share of analysed frames", "first_seen_s": "first seen (s)",
                "last_seen_s": "last seen (s)"}), digits=2))
            out.append(f'<p class="emonb-note">{html.escape(str(f.attrs.get("subject_method", "")))}</p>')
    for s in subjects:
        sh = expression_shares(tree, s)
        if sh.empty or not sh["frames"].iloc[0]:
            continue
        out.append(f"<h3>Subject {html.escape(s)}: expressions</h3>")
        cells = pd.DataFrame({"expression": sh["emotion"],
                              "time share [95% CI]": [_ci(a, b, c, pct=True) for a, b, c in
                                                      zip(sh["share"], sh["low"], sh["high"])],
                              "mean probability": sh["mean_probability"]})
        out.append(table_html(cells, digits=2, caption=(
            f"Share of the {int(sh['frames'].iloc[0])} analysed frames with subject {s} in view in which each "
            "expression had the highest probability; 95% block-bootstrap interval over 1-s blocks.")))
    aff = affect_means(tree, subjects)
    if not aff.empty:
        out.append("<h3>Valence and arousal</h3>")
        wide = []
        for (src, scope), g in aff.groupby(["source", "scope"], sort=False):
            row = {"source": src, "scope": scope}
            for m in ("valence", "arousal"):
                r = g[g["measure"] == m]
                row[f"{m} [95% CI]"] = _ci(*r[["mean", "low", "high"]].iloc[0]) if len(r) else "not measured"
            row["seconds of data"] = float(g["seconds"].max())
            wide.append(row)
        out.append(table_html(pd.DataFrame(wide), digits=1, caption=(
            "Means in [-1, 1] over the samples with data (voice: only where speech was detected); "
            "95% block-bootstrap intervals over 1-s blocks. Voice, physiology and text are not attributed to a "
            "subject; the fusion takes the most confident face at each time step.")))
    moments, agree = reviewer_moments(parts), agreement_summary(parts)
    if parts is not None:
        out.append("<h3>Reviewers</h3>")
        if moments.empty:
            out.append("<p>No reviewer annotations for this session.</p>")
        else:
            out.append(table_html(moments, digits=2, caption="Moments reviewers marked (overlapping segments "
                                                              "with the same label merged)."))
        if not agree.empty:
            out.append(table_html(agree, digits=2, caption=(
                "Agreement over all labels: between reviewers, and the face model (main subject's track) against "
                "each reviewer, at the instants that reviewer labelled.")))
    out.append("</section>")
    return "\n".join(out)
