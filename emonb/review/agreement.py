"""Inter-rater agreement: Cohen's kappa, Krippendorff's alpha (nominal), on a time grid.

Interval labels become one value per reviewer and grid point (default 10 Hz). Per label the value is
binary (the label covers that instant or not); the ``"overall"`` row uses one category per instant
(the label, or ``"none"`` where the reviewer labelled nothing; an instant where a reviewer gave two
different labels is missing for that reviewer).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from .._checks import check_positive
from ..errors import EmonbValueError

NONE = "none"


def cohen_kappa(a: Sequence, b: Sequence) -> float:
    """Cohen's kappa of two raters' nominal codes; pairs where either is missing (None/NaN) are dropped.

    ``kappa = (p_o - p_e) / (1 - p_e)``; NaN when ``p_e == 1`` (no variation) or no pair is left.
    """
    a, b = _as_codes(a), _as_codes(b)
    if len(a) != len(b):
        raise EmonbValueError(f"the two raters coded different numbers of units ({len(a)} and {len(b)})")
    ok = np.array([x is not None and y is not None for x, y in zip(a, b)], bool)
    a = [x for x, k in zip(a, ok) if k]
    b = [x for x, k in zip(b, ok) if k]
    n = len(a)
    if n == 0:
        return float("nan")
    cats = sorted(set(a) | set(b), key=str)
    idx = {c: i for i, c in enumerate(cats)}
    ia = np.array([idx[x] for x in a])
    ib = np.array([idx[x] for x in b])
    p_o = float(np.mean(ia == ib))
    pa = np.bincount(ia, minlength=len(cats)) / n
    pb = np.bincount(ib, minlength=len(cats)) / n
    p_e = float(np.sum(pa * pb))
    if np.isclose(p_e, 1.0):
        return float("nan")
    return (p_o - p_e) / (1.0 - p_e)


def krippendorff_alpha(data) -> float:
    """Krippendorff's alpha for nominal data.

    Parameters
    ----------
    data : array-like (raters, units)
        Codes; None or NaN = missing. Units with fewer than two codes are not pairable and ignored.

    Returns
    -------
    float
        ``1 - D_o / D_e`` from the coincidence matrix; NaN when there is no variation at all.
    """
    rows = [_as_codes(r) for r in data]
    if not rows:
        return float("nan")
    n_units = len(rows[0])
    if any(len(r) != n_units for r in rows):
        raise EmonbValueError("every rater must have one code per unit (use None for missing)")
    cats = sorted({x for r in rows for x in r if x is not None}, key=str)
    if not cats:
        return float("nan")
    idx = {c: i for i, c in enumerate(cats)}
    counts = np.zeros((n_units, len(cats)))
    for r in rows:
        for u, x in enumerate(r):
            if x is not None:
                counts[u, idx[x]] += 1
    return _alpha_from_counts(counts)


def _alpha_from_counts(counts: np.ndarray) -> float:
    """Nominal alpha from a (units, categories) matrix of how many raters chose each category."""
    m = counts.sum(axis=1)
    keep = m >= 2
    counts, m = counts[keep], m[keep]
    if counts.shape[0] == 0:
        return float("nan")
    w = 1.0 / (m - 1.0)
    # coincidence matrix: o_ck = sum_u n_uc (n_uk - [c == k]) / (m_u - 1)
    o = counts.T @ (counts * w[:, None]) - np.diag((counts * w[:, None]).sum(axis=0))
    n_c = o.sum(axis=1)
    n = n_c.sum()
    if n <= 1:
        return float("nan")
    d_o = o.sum() - np.trace(o)
    d_e = (n_c.sum() ** 2 - np.sum(n_c ** 2)) / (n - 1.0)
    if d_e <= 0:
        return float("nan")
    return float(1.0 - d_o / d_e)


def _as_codes(seq) -> list:
    out = []
    for x in seq:
        if x is None or (isinstance(x, (float, np.floating)) and np.isnan(x)):
            out.append(None)
        else:
            out.append(x.item() if isinstance(x, np.generic) else x)
    return out


def time_grid(start: float, end: float, rate: float) -> np.ndarray:
    """Bin centres ``start + (k + 0.5) / rate`` covering ``[start, end)`` (s)."""
    n = int(round((end - start) * rate))
    return start + (np.arange(max(n, 0)) + 0.5) / rate


def label_matrix(df: pd.DataFrame, times: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """(len(times), len(labels)) bool: whether an interval of ``df`` with that label covers each time."""
    out = np.zeros((times.size, len(labels)), bool)
    pos = {lab: i for i, lab in enumerate(labels)}
    for on, dur, lab in zip(df["onset"].to_numpy(float), df["duration"].to_numpy(float), df["label"]):
        if lab not in pos:
            continue
        hit = (times >= on) & (times < on + dur)
        out[hit, pos[lab]] = True
    return out


def _categorical(mat: np.ndarray, labels: Sequence[str]) -> list:
    n = mat.sum(axis=1)
    first = mat.argmax(axis=1)
    return [NONE if k == 0 else (labels[j] if k == 1 else None) for k, j in zip(n, first)]


def agreement(store, *, session: str | None = None, reviewers: Sequence[str] | None = None,
              rate: float = 10.0, start: float | None = None, end: float | None = None,
              labels: Sequence[str] | None = None, model=None, variable: str = "face_emotion",
              dim: str = "emotion", model_name: str | None = None) -> pd.DataFrame:
    """Agreement between reviewers, and between a model and each reviewer, per label.

    Parameters
    ----------
    store : AnnotationStore or pandas.DataFrame
        The annotations (a DataFrame needs ``reviewer, onset, duration, label`` columns).
    session : str, optional
        Which session (default: the store's, or the only one).
    reviewers : list of str, optional
        Default: every reviewer of the session.
    rate : float
        Grid rate in Hz (default 10).
    start, end : float, optional
        Span of the grid in session seconds (default 0 to the last offset).
    labels : list of str, optional
        Labels to report (default: every label used).
    model : xarray.Dataset or DataTree, optional
        A result with ``variable`` (e.g. ``face_emotion(time, [face,] emotion)``): its argmax over
        ``dim`` at each grid point (nearest sample; first face) is compared with each reviewer, at the
        instants that reviewer labelled.

    Returns
    -------
    pandas.DataFrame
        One row per (comparison, label): ``comparison`` ("reviewers" or "<model> vs <reviewer>"),
        ``label`` (or "overall"), ``n_raters``, ``n_units`` (grid points), ``observed`` (proportion of
        agreeing pairs), ``kappa`` (Cohen's, when exactly two raters), ``alpha`` (Krippendorff's, nominal),
        ``prevalence`` (share of rater-instants with the label).
    """
    rate = check_positive("rate", rate)
    if isinstance(store, pd.DataFrame):
        df = store
        if session is not None and "session" in df:
            df = df[df["session"] == session]
    else:
        session = session or store.session
        if session is None:
            ss = store.sessions()
            if len(ss) > 1:
                raise EmonbValueError(f"the store has several sessions {ss}; pass session=...")
            session = ss[0] if ss else None
        df = store.to_dataframe(session=session)
    if reviewers is not None:
        df = df[df["reviewer"].isin(list(reviewers))]
    revs = list(reviewers) if reviewers is not None else sorted(df["reviewer"].unique())
    if labels is None:
        labels = sorted(df["label"].unique())
    labels = list(labels)
    start = 0.0 if start is None else float(start)
    if end is None:
        end = float((df["onset"] + df["duration"]).max()) if len(df) else start
    times = time_grid(start, float(end), rate)
    mats = {r: label_matrix(df[df["reviewer"] == r], times, labels) for r in revs}
    rows = []
    if len(revs) >= 2 and times.size:
        rows += _compare("reviewers", [mats[r] for r in revs], labels, [None] * len(revs))
    if model is not None and times.size:
        name = model_name or _model_name(model, variable)
        pred = _model_labels(model, times, variable=variable, dim=dim)
        for r in revs:
            covered = mats[r].any(axis=1)
            mm = np.zeros_like(mats[r])
            for j, lab in enumerate(labels):
                mm[:, j] = np.array([p == lab for p in pred])
            valid = covered & np.array([p is not None for p in pred])
            rows += _compare(f"{name} vs {r}", [mm, mats[r]], labels, [valid, valid], model_cats=pred)
    return pd.DataFrame(rows, columns=["comparison", "label", "n_raters", "n_units", "observed", "kappa",
                                       "alpha", "prevalence"])


def _compare(name, mats, labels, valid, model_cats=None):
    n_r = len(mats)
    rows = []
    # overall: one category per instant
    cats = []
    for i, m in enumerate(mats):
        if i == 0 and model_cats is not None:
            c = list(model_cats)
        else:
            c = _categorical(m, labels)
        if valid[i] is not None:
            c = [x if v else None for x, v in zip(c, valid[i])]
        cats.append(c)
    rows.append(_row(name, "overall", cats, n_r, None))
    for j, lab in enumerate(labels):
        codes = []
        for i, m in enumerate(mats):
            c = m[:, j].astype(object)
            if valid[i] is not None:
                c = np.where(valid[i], c, None)
            codes.append([None if x is None else bool(x) for x in c])
        rows.append(_row(name, lab, codes, n_r, True))
    return rows


def _row(name, label, codes, n_r, positive):
    units = [u for u in zip(*codes) if sum(x is not None for x in u) >= 2]
    n_units = len(units)
    agree = pairs = 0
    for u in units:
        vals = [x for x in u if x is not None]
        for a in range(len(vals)):
            for b in range(a + 1, len(vals)):
                pairs += 1
                agree += vals[a] == vals[b]
    observed = agree / pairs if pairs else float("nan")
    kappa = cohen_kappa(codes[0], codes[1]) if n_r == 2 else float("nan")
    alpha = krippendorff_alpha(codes)
    if positive is not None:
        flat = [x for c in codes for x in c if x is not None]
        prevalence = float(np.mean(flat)) if flat else float("nan")
    else:
        prevalence = float("nan")
    return {"comparison": name, "label": label, "n_raters": n_r, "n_units": n_units, "observed": observed,
            "kappa": kappa, "alpha": alpha, "prevalence": prevalence}


def _model_name(model, variable):
    ds = model
    if isinstance(model, xr.DataTree) and variable not in model.data_vars:
        ds = _find_var(model, variable)
    var = ds[variable] if variable in ds else None
    return (var.attrs.get("model") if var is not None else None) or ds.attrs.get("model") or variable


def _find_var(tree, variable):
    for node in tree.subtree:
        if variable in node.data_vars:
            return node.to_dataset()
    raise EmonbValueError(f"the session has no {variable!r} result; run the analysis first")


def _model_labels(model, times, *, variable, dim):
    ds = model
    if isinstance(model, xr.DataTree) and variable not in model.data_vars:
        ds = _find_var(model, variable)
    if variable not in ds:
        raise EmonbValueError(f"the model result has no {variable!r}; it has {list(ds.data_vars)}")
    da = ds[variable]
    if dim not in da.dims or "time" not in da.dims:
        raise EmonbValueError(f"{variable} needs dims time and {dim}; it has {da.dims}")
    for extra in [d for d in da.dims if d not in ("time", dim)]:
        da = da.isel({extra: 0})
    da = da.transpose("time", dim)
    t = da["time"].to_numpy().astype(float)
    vals = da.to_numpy().astype(float)
    cats = [str(c) for c in da[dim].to_numpy()]
    if t.size == 0:
        return [None] * times.size
    order = np.argsort(t)
    t, vals = t[order], vals[order]
    pos = np.searchsorted(t, times)
    left = np.clip(pos - 1, 0, t.size - 1)
    right = np.clip(pos, 0, t.size - 1)
    k = np.where(np.abs(times - t[left]) <= np.abs(times - t[right]), left, right)
    dt = np.median(np.diff(t)) if t.size > 1 else np.inf
    out = []
    for i, kk in zip(range(times.size), k):
        row = vals[kk]
        if not np.isfinite(row).any() or abs(t[kk] - times[i]) > max(2 * dt, 0.5):
            out.append(None)
        else:
            out.append(cats[int(np.nanargmax(row))])
    return out


def segment_agreement(store, *, session: str | None = None, reviewers: Sequence[str] | None = None,
                      min_overlap: float = 0.5) -> pd.DataFrame:
    """Agreement by segment overlap: per pair of reviewers and label, how many segments match.

    Two segments with the same label match when their intersection over union is at least
    ``min_overlap``; each segment matches at most once (greedy, best overlap first).

    Returns
    -------
    pandas.DataFrame
        ``reviewer_a, reviewer_b, label, n_a, n_b, matched, agreement`` with
        ``agreement = 2 * matched / (n_a + n_b)`` (the F1 / Dice score of the two segmentations),
        ``mean_iou`` of the matched pairs.
    """
    if isinstance(store, pd.DataFrame):
        df = store if session is None or "session" not in store else store[store["session"] == session]
    else:
        df = store.to_dataframe(session=session or store.session)
    revs = list(reviewers) if reviewers is not None else sorted(df["reviewer"].unique())
    rows = []
    for i in range(len(revs)):
        for j in range(i + 1, len(revs)):
            a_df, b_df = df[df["reviewer"] == revs[i]], df[df["reviewer"] == revs[j]]
            for lab in sorted(set(a_df["label"]) | set(b_df["label"])):
                a = a_df[a_df["label"] == lab][["onset", "duration"]].to_numpy(float)
                b = b_df[b_df["label"] == lab][["onset", "duration"]].to_numpy(float)
                pairs = []
                for ia, (oa, da) in enumerate(a):
                    for ib, (ob, db) in enumerate(b):
                        inter = max(0.0, min(oa + da, ob + db) - max(oa, ob))
                        union = max(oa + da, ob + db) - min(oa, ob)
                        iou = inter / union if union > 0 else float(oa == ob)
                        if iou >= min_overlap:
                            pairs.append((iou, ia, ib))
                used_a, used_b, ious = set(), set(), []
                for iou, ia, ib in sorted(pairs, reverse=True):
                    if ia not in used_a and ib not in used_b:
                        used_a.add(ia)
                        used_b.add(ib)
                        ious.append(iou)
                n = len(a) + len(b)
                rows.append({"reviewer_a": revs[i], "reviewer_b": revs[j], "label": lab, "n_a": len(a),
                             "n_b": len(b), "matched": len(ious),
                             "agreement": 2 * len(ious) / n if n else float("nan"),
                             "mean_iou": float(np.mean(ious)) if ious else float("nan")})
    return pd.DataFrame(rows, columns=["reviewer_a", "reviewer_b", "label", "n_a", "n_b", "matched", "agreement",
                                       "mean_iou"])
