"""The MEGC spotting evaluation: IoU matching of intervals, TP/FP/FN, precision, recall, F1.

A spotted interval matches a true one when their intersection over union, counted in frames
(both ends inclusive), is at least 0.5. Each true interval counts once: pairs are matched one to
one, best IoU first; a spotted interval left unmatched is a false positive, a true interval left
unmatched a false negative. Counts are pooled over videos before precision, recall and F1 are
computed, per kind (micro, macro) and overall (the sums of the two), as in MEGC 2020-2023.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..errors import EmonbValueError

__all__ = ["KINDS", "evaluate", "interval_iou", "match_intervals"]

KINDS = ("micro", "macro")


def interval_iou(a: tuple[int, int], b: tuple[int, int]) -> float:
    """IoU of two inclusive frame intervals ``(onset_frame, offset_frame)``.

    >>> interval_iou((0, 9), (5, 14))   # 5 shared frames of 15
    0.3333333333333333
    """
    inter = min(a[1], b[1]) - max(a[0], b[0]) + 1
    if inter <= 0:
        return 0.0
    union = (a[1] - a[0] + 1) + (b[1] - b[0] + 1) - inter
    return inter / union


def match_intervals(spotted, truth, *, iou: float = 0.5) -> list[tuple[int, int, float]]:
    """One-to-one matches ``(spotted index, true index, IoU)`` with IoU >= ``iou``, best first."""
    pairs = []
    for i, s in enumerate(spotted):
        for j, t in enumerate(truth):
            v = interval_iou(s, t)
            if v >= iou - 1e-12:
                pairs.append((v, i, j))
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    used_s, used_t, out = set(), set(), []
    for v, i, j in pairs:
        if i in used_s or j in used_t:
            continue
        used_s.add(i)
        used_t.add(j)
        out.append((i, j, v))
    return out


def _table(x, *, what: str, fps=None, max_micro: float = 0.5) -> list[tuple[int, int, str]]:
    """Intervals (onset_frame, offset_frame, kind) from a Dataset, DataFrame or list."""
    import pandas as pd
    import xarray as xr

    if x is None:
        return []
    if isinstance(x, xr.Dataset):
        if x.sizes.get("spot", 0) == 0 and "onset_frame" not in x:
            return []
        x = pd.DataFrame({k: np.asarray(x[k].values) for k in x.data_vars if x[k].dims == ("spot",)})
    if isinstance(x, pd.DataFrame):
        if len(x) == 0:
            return []
        for col in ("onset_frame", "offset_frame"):
            if col not in x.columns:
                raise EmonbValueError(f"{what}: needs columns 'onset_frame' and 'offset_frame' (frame numbers); "
                                      f"it has {list(x.columns)}")
        kinds = list(x["kind"]) if "kind" in x.columns else [None] * len(x)
        rows = list(zip(x["onset_frame"], x["offset_frame"], kinds))
    else:
        rows = []
        for r in x:
            r = tuple(r)
            if len(r) == 2:
                r = (r[0], r[1], None)
            if len(r) != 3:
                raise EmonbValueError(f"{what}: each interval must be (onset_frame, offset_frame[, kind]), got {r!r}")
            rows.append(r)
    out = []
    for on, off, kind in rows:
        try:
            on_i, off_i = int(on), int(off)
        except (TypeError, ValueError):
            raise EmonbValueError(f"{what}: onset/offset frames must be integers, got {on!r}, {off!r}") from None
        if off_i < on_i:
            raise EmonbValueError(f"{what}: interval ({on_i}, {off_i}) ends before it starts")
        if kind is None or (isinstance(kind, float) and np.isnan(kind)):
            if fps is None:
                raise EmonbValueError(f"{what}: interval ({on_i}, {off_i}) has no kind; give kinds or fps= "
                                      "to classify by duration")
            kind = "micro" if (off_i - on_i + 1) / float(fps) <= max_micro + 1e-9 else "macro"
        kind = str(kind).strip().lower()
        kind = {"me": "micro", "mae": "macro", "micro-expression": "micro", "macro-expression": "macro"}.get(kind, kind)
        if kind not in KINDS:
            raise EmonbValueError(f"{what}: kind must be 'micro' or 'macro', got {kind!r}")
        out.append((on_i, off_i, kind))
    return out


def _pairs(spots, truth):
    """Normalise (spots, truth) into a list of per-video pairs."""
    import pandas as pd
    import xarray as xr

    single = (xr.Dataset, pd.DataFrame)
    if isinstance(spots, single):
        return [(0, spots, truth)]
    if isinstance(spots, Mapping):
        if not isinstance(truth, Mapping):
            raise EmonbValueError("evaluate: spots is a dict of videos, so truth must be a dict with the same keys")
        missing = set(spots) ^ set(truth)
        if missing:
            raise EmonbValueError(f"evaluate: videos {sorted(map(str, missing))} are in only one of spots and truth")
        return [(k, spots[k], truth[k]) for k in spots]
    if isinstance(spots, (list, tuple)) and spots and isinstance(spots[0], single):
        if not isinstance(truth, (list, tuple)) or len(truth) != len(spots):
            raise EmonbValueError(f"evaluate: {len(spots)} spot tables need a list of {len(spots)} truth tables")
        return [(i, s, t) for i, (s, t) in enumerate(zip(spots, truth))]
    return [(0, spots, truth)]


def evaluate(spots, truth, *, iou: float = 0.5, fps: float | None = None, max_micro: float = 0.5,
             match_kind: bool = True):
    """Score spotted intervals against the truth with the MEGC protocol.

    Parameters
    ----------
    spots : xarray.Dataset, pandas.DataFrame, list of tuples, or a list/dict of these per video
        Spotted intervals (:func:`emonb.spot_expressions` output, its ``to_dataframe()``, or
        ``(onset_frame, offset_frame, kind)`` tuples).
    truth : same forms as ``spots``
        True intervals; a list or dict of videos must line up with ``spots``.
    iou : float
        Smallest IoU (frames inclusive) of a match (0.5 in MEGC).
    fps : float, optional
        Frame rate, used only to classify intervals given without a kind (by duration).
    max_micro : float
        Longest micro-expression, seconds (with ``fps``).
    match_kind : bool
        Match micro with micro and macro with macro only (MEGC). With ``False`` any spotted
        interval may match any true one; then a true positive counts for the true interval's kind.

    Returns
    -------
    pandas.DataFrame
        Index ``kind`` = micro, macro, overall; columns ``n_true``, ``n_spotted``, ``tp``, ``fp``,
        ``fn``, ``precision``, ``recall``, ``f1`` (NaN where undefined: no spotted or no true
        interval; F1 is 0 when there were some of both and no match). ``attrs["matches"]`` lists
        ``(video, spotted (on, off, kind), true (on, off, kind), iou)``; ``attrs["videos"]`` the count.

    Examples
    --------
    >>> evaluate([(10, 20, "micro")], [(11, 21, "micro")]).loc["micro", "f1"]
    1.0
    """
    import pandas as pd

    if not 0.0 < float(iou) <= 1.0:
        raise EmonbValueError(f"iou must be in (0, 1], got {iou!r}")
    counts = {k: {"n_true": 0, "n_spotted": 0, "tp": 0} for k in KINDS}
    matches = []
    videos = _pairs(spots, truth)
    for key, s, t in videos:
        S = _table(s, what=f"spots (video {key})", fps=fps, max_micro=max_micro)
        G = _table(t, what=f"truth (video {key})", fps=fps, max_micro=max_micro)
        for k in KINDS:
            counts[k]["n_true"] += sum(g[2] == k for g in G)
            counts[k]["n_spotted"] += sum(x[2] == k for x in S)
        if match_kind:
            for k in KINDS:
                Sk = [x for x in S if x[2] == k]
                Gk = [g for g in G if g[2] == k]
                for i, j, v in match_intervals([x[:2] for x in Sk], [g[:2] for g in Gk], iou=iou):
                    counts[k]["tp"] += 1
                    matches.append((key, Sk[i], Gk[j], v))
        else:
            for i, j, v in match_intervals([x[:2] for x in S], [g[:2] for g in G], iou=iou):
                counts[G[j][2]]["tp"] += 1
                matches.append((key, S[i], G[j], v))
    rows = {}
    for k in KINDS + ("overall",):
        if k == "overall":
            c = {f: sum(counts[q][f] for q in KINDS) for f in ("n_true", "n_spotted", "tp")}
        else:
            c = counts[k]
        tp = c["tp"]
        fp = c["n_spotted"] - tp if match_kind or k == "overall" else max(c["n_spotted"] - tp, 0)
        fn = c["n_true"] - tp
        prec = tp / c["n_spotted"] if c["n_spotted"] else np.nan
        rec = tp / c["n_true"] if c["n_true"] else np.nan
        if c["n_spotted"] == 0 and c["n_true"] == 0:
            f1 = np.nan
        elif tp == 0:
            f1 = 0.0
        else:
            f1 = 2 * tp / (2 * tp + fp + fn)
        rows[k] = {"n_true": c["n_true"], "n_spotted": c["n_spotted"], "tp": tp, "fp": fp, "fn": fn,
                   "precision": prec, "recall": rec, "f1": f1}
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "kind"
    df.attrs["matches"] = matches
    df.attrs["videos"] = len(videos)
    df.attrs["iou"] = float(iou)
    return df
