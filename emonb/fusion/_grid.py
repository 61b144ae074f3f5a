"""The common grid: every modality's result resampled onto one time axis with its confidence.

:func:`build_grid` reads the result nodes of a session (``face``, ``voice``, ``physio_features``,
``text``) and returns a :class:`FusionGrid`: per modality, the emotion probabilities (face and voice
only), valence and arousal where the modality measures them, a confidence in [0, 1] and a block of
numeric features for the learned fusions. Missing data are NaN; a step where a modality has nothing
to say has confidence 0.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from .._checks import check_positive
from ..alignment import resample_variable
from ..errors import EmonbValueError, EmonbWarning
from ..schema import EMOTIONS, EMOTION_VALENCE_AROUSAL, canonical_emotion

#: Modalities fusion knows, with the session node each one is read from.
MODALITY_NODES: dict[str, tuple[str, ...]] = {
    "face": ("face",),
    "voice": ("voice",),
    "physio": ("physio_features",),
    "text": ("text", "text_features"),
}
MODALITIES: tuple[str, ...] = tuple(MODALITY_NODES)

#: Variables that are never used as features (geometry, raw signals, bookkeeping).
_EXCLUDE = {"face_box", "face_landmarks", "face_count", "frame_index"}
_EXCLUDE_SUFFIX = ("_clean", "_raw", "_peaks", "_onsets", "_flag", "_flags")
_MAX_COLUMNS = 64  # per variable; wider blocks (meshes, spectrograms) are left out


@dataclass
class ModalityData:
    """One modality on the grid. Arrays are (time,) or (time, emotion); NaN where missing."""

    emotion: np.ndarray | None = None  # (T, len(EMOTIONS)) probabilities, rows sum to 1
    valence: np.ndarray | None = None
    arousal: np.ndarray | None = None
    confidence: np.ndarray | None = None  # (T,) in [0, 1], 0 where the modality is absent
    features: np.ndarray | None = None  # (T, F)
    feature_names: list[str] = field(default_factory=list)


@dataclass
class FusionGrid:
    """All modalities of one session on one regular grid (``time`` in session seconds)."""

    time: np.ndarray
    rate: float
    modalities: dict[str, ModalityData]
    session_id: str = ""
    subject: str = ""

    @property
    def present(self) -> list[str]:
        """Modalities with at least one step of non-zero confidence."""
        return [m for m, d in self.modalities.items()
                if d.confidence is not None and np.nanmax(d.confidence, initial=0) > 0]

    def confidence_matrix(self, modalities=MODALITIES) -> np.ndarray:
        """(T, M) confidences, 0 where a modality is absent."""
        out = np.zeros((self.time.size, len(modalities)))
        for j, m in enumerate(modalities):
            d = self.modalities.get(m)
            if d is not None and d.confidence is not None:
                out[:, j] = d.confidence
        return out

    def feature_table(self, modalities=MODALITIES) -> tuple[np.ndarray, list[str]]:
        """Concatenated features (T, F) with names ``<modality>:<variable>[<label>]``."""
        blocks, names = [], []
        for m in modalities:
            d = self.modalities.get(m)
            if d is None or d.features is None:
                continue
            blocks.append(d.features)
            names += [f"{m}:{n}" for n in d.feature_names]
        if not blocks:
            return np.zeros((self.time.size, 0)), []
        return np.concatenate(blocks, axis=1), names


# -- reading nodes -----------------------------------------------------------------------------
def _nodes(tree) -> dict[str, xr.Dataset]:
    if isinstance(tree, xr.DataTree):
        return {k: tree[k].to_dataset() for k in tree.children}
    if isinstance(tree, dict):
        return {k: (v.to_dataset() if isinstance(v, xr.DataTree) else v) for k, v in tree.items()}
    raise EmonbValueError(
        f"fusion needs a session DataTree (or a dict of node name -> Dataset), got {type(tree).__name__}"
    )


def _find_node(nodes: dict[str, xr.Dataset], modality: str) -> xr.Dataset | None:
    for name in MODALITY_NODES[modality]:
        ds = nodes.get(name)
        if ds is not None and (ds.data_vars or ds.coords):
            return ds
    return None


def _best_face(ds: xr.Dataset) -> np.ndarray | None:
    """Index of the most confident face at each time step (face 0 where no score)."""
    if "face" not in ds.dims:
        return None
    nt = ds.sizes["time"]
    if "face_score" in ds and ds["face_score"].dims == ("time", "face"):
        s = np.asarray(ds["face_score"].values, float)
        s = np.where(np.isfinite(s), s, -np.inf)
        return np.argmax(s, axis=1)
    return np.zeros(nt, int)


def _select_face(var: xr.DataArray, best: np.ndarray | None) -> xr.DataArray:
    if "face" not in var.dims:
        return var
    if best is None:
        return var.isel(face=0, drop=True)
    var = var.transpose("time", "face", ...)
    vals = np.asarray(var.values)
    picked = vals[np.arange(vals.shape[0]), best]
    dims = ("time",) + tuple(d for d in var.dims if d not in ("time", "face"))
    coords = {d: var[d].values for d in dims if d in var.coords}
    return xr.DataArray(picked, dims=dims, coords=coords, attrs=var.attrs)


def _text_on_time(ds: xr.Dataset, grid: np.ndarray | None = None) -> xr.Dataset:
    """A segment-indexed text result (start/end per segment) as a step function on ``grid``.

    Each grid point takes the values of the segment covering it (the latest-starting one where
    segments overlap) and NaN between segments. Without ``grid``, the segment bounds are used as
    time points (enough to know the span).
    """
    if "time" in ds.dims:
        return ds
    if not {"start", "end"} <= set(ds.variables) or "segment" not in ds.dims:
        return ds
    start = np.asarray(ds["start"].values, float)
    end = np.asarray(ds["end"].values, float)
    if grid is None:
        grid = np.unique(np.concatenate([start, end]))
    row = np.full(grid.size, -1)
    for i in np.argsort(start, kind="stable"):
        row[(grid >= start[i]) & (grid < end[i])] = i
    out = {}
    for v, var in ds.data_vars.items():
        if var.dims != ("segment",) or var.dtype.kind not in "fiu" or v in ("start", "end"):
            continue
        vals = np.asarray(var.values, float)
        col = np.where(row >= 0, vals[np.clip(row, 0, None)], np.nan)
        out[v] = xr.DataArray(col, dims="time", coords={"time": grid}, attrs=var.attrs)
    return xr.Dataset(out, coords={"time": grid})


def _resample(var: xr.DataArray, grid: np.ndarray, method: str = "linear") -> np.ndarray:
    var = var.astype(np.float64) if var.dtype.kind in "biu" else var
    da, _ = resample_variable(var, grid, method=method)
    return np.asarray(da.values, dtype=np.float64)


def _emotion_block(var: xr.DataArray) -> xr.DataArray:
    """Reorder an (time, emotion) array onto :data:`EMOTIONS`, mapping label aliases; missing = 0."""
    var = var.transpose("time", "emotion")
    labels = [canonical_emotion(str(e)) if str(e).lower() != "contempt" else "contempt"
              for e in var["emotion"].values]
    vals = np.asarray(var.values, dtype=np.float64)
    out = np.zeros((vals.shape[0], len(EMOTIONS)))
    for j, lab in enumerate(labels):
        if lab in EMOTIONS:
            out[:, EMOTIONS.index(lab)] += vals[:, j]
    out[~np.isfinite(vals).any(axis=1)] = np.nan
    return xr.DataArray(out, dims=("time", "emotion"),
                        coords={"time": var["time"].values, "emotion": list(EMOTIONS)})


def _normalise_probs(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 0, None)
    s = p.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = p / s
    p[~(s[:, 0] > 0)] = np.nan
    return p


def _first(ds: xr.Dataset, names) -> xr.DataArray | None:
    for n in names:
        if n in ds.data_vars and "time" in ds[n].dims:
            return ds[n]
    return None


def _modality(ds: xr.Dataset, modality: str, grid: np.ndarray, *, with_features: bool) -> ModalityData:
    if modality == "text":
        ds = _text_on_time(ds, grid)
    if "time" not in ds.dims or ds.sizes["time"] == 0:
        return ModalityData(confidence=np.zeros(grid.size))
    ds = ds.sortby("time")
    best = _best_face(ds) if modality == "face" else None
    pre = {"face": "face", "voice": "voice", "physio": "physio", "text": "text"}[modality]
    d = ModalityData()

    emo = _first(ds, [f"{pre}_emotion"]) if modality in ("face", "voice") else None
    if emo is not None and "emotion" in emo.dims:
        emo = _emotion_block(_select_face(emo, best))
        d.emotion = _normalise_probs(_resample(emo, grid))
    val = _first(ds, [f"{pre}_valence", "text_sentiment", "text_compound", "sentiment", "compound",
                      "valence"]) if modality != "physio" else None
    if val is not None:
        d.valence = np.clip(_resample(_select_face(val, best), grid), -1, 1)
    aro = _first(ds, [f"{pre}_arousal", "arousal"]) if modality != "text" else None
    if aro is not None:
        d.arousal = np.clip(_resample(_select_face(aro, best), grid), -1, 1)

    conf_names = {"face": ["face_confidence", "face_score"],
                  "voice": ["voice_confidence", "voice_activity"],
                  "physio": ["physio_arousal_confidence", "physio_confidence"],
                  "text": ["text_confidence"]}[modality]
    cvar = _first(ds, conf_names)
    have = np.zeros(grid.size, bool)
    for a in (d.emotion, d.valence, d.arousal):
        if a is not None:
            have |= np.isfinite(a) if a.ndim == 1 else np.isfinite(a).all(axis=1)
    if cvar is not None:
        conf = _resample(_select_face(cvar, best), grid)
        conf = np.clip(np.nan_to_num(conf, nan=0.0), 0, 1)
    else:
        conf = np.ones(grid.size)
    d.confidence = np.where(have, conf, 0.0)

    if with_features:
        cols, names = [], []
        for v, var in ds.data_vars.items():
            v = str(v)
            if ("time" not in var.dims or var.dtype.kind not in "fiub" or v in _EXCLUDE
                    or v.endswith(_EXCLUDE_SUFFIX)):
                continue
            var = _select_face(var, best)
            if var.ndim > 2:
                continue
            if var.ndim == 2:
                other = [x for x in var.dims if x != "time"][0]
                if var.sizes[other] > _MAX_COLUMNS:
                    continue
                if other == "emotion":
                    var = _emotion_block(var)
                labels = [str(x) for x in (var[other].values if other in var.coords
                                           else range(var.sizes[other]))]
            else:
                labels = [None]
            arr = _resample(var, grid)
            arr = arr.reshape(grid.size, -1)
            cols.append(arr)
            names += [v if lab is None else f"{v}[{lab}]" for lab in labels]
        d.features = np.concatenate(cols, axis=1) if cols else np.zeros((grid.size, 0))
        d.feature_names = names
    return d


def _span(ds: xr.Dataset, modality: str):
    if modality == "text":
        ds = _text_on_time(ds)
    if "time" in ds.dims and ds.sizes["time"]:
        t = np.asarray(ds["time"].values, float)
        return float(np.nanmin(t)), float(np.nanmax(t))
    return None


def build_grid(tree, *, rate: float = 10.0, modalities=None, start: float | None = None,
               end: float | None = None, with_features: bool = True) -> FusionGrid:
    """Resample every modality result of a session onto one regular grid.

    Parameters
    ----------
    tree : xarray.DataTree or dict
        A session with result nodes ``face``, ``voice``, ``physio_features`` and/or ``text``.
    rate : float
        Grid rate in Hz.
    modalities : sequence of str, optional
        Subset of ``("face", "voice", "physio", "text")`` to use (default: all present).
    start, end : float, optional
        Grid span in session seconds (default: the union of the spans of all modality results in
        the session, also when ``modalities`` selects fewer, so grids of subsets line up).
    with_features : bool
        Also collect the numeric feature blocks used by early and attention fusion.

    Returns
    -------
    FusionGrid
    """
    rate = check_positive("rate", rate)
    nodes = _nodes(tree)
    wanted = MODALITIES if modalities is None else tuple(modalities)
    bad = [m for m in wanted if m not in MODALITIES]
    if bad:
        raise EmonbValueError(f"unknown modality {bad}; fusion knows {MODALITIES}")
    found = {m: _find_node(nodes, m) for m in MODALITIES}
    found = {m: ds for m, ds in found.items() if ds is not None}
    # the grid spans every modality of the session, whichever subset is fused, so that results of
    # different subsets line up step by step
    all_spans = {m: _span(ds, m) for m, ds in found.items()}
    all_spans = {m: s for m, s in all_spans.items() if s is not None}
    spans = {m: s for m, s in all_spans.items() if m in wanted}
    if not spans:
        raise EmonbValueError(
            "no modality results to fuse: the session has none of the nodes "
            f"{[n for m in wanted for n in MODALITY_NODES[m]]} with a time axis "
            f"(it has {sorted(nodes)}); run eb.analyze(session) first"
        )
    if len(spans) > 1:
        s0 = max(s[0] for s in spans.values())
        s1 = min(s[1] for s in spans.values())
        if s1 < s0:
            warnings.warn("the modality results do not overlap in time; each grid step is fused "
                          "from whichever modality covers it", EmonbWarning, stacklevel=3)
    t0 = min(s[0] for s in all_spans.values()) if start is None else float(start)
    t1 = max(s[1] for s in all_spans.values()) if end is None else float(end)
    n = int(np.floor((t1 - t0) * rate + 1e-9)) + 1
    if n < 1:
        raise EmonbValueError(f"the grid from {t0:g} s to {t1:g} s at {rate:g} Hz has no points")
    grid = t0 + np.arange(n) / rate
    mods = {m: _modality(found[m], m, grid, with_features=with_features) for m in spans}
    attrs = tree.attrs if hasattr(tree, "attrs") else {}
    return FusionGrid(time=grid, rate=rate, modalities=mods,
                      session_id=str(attrs.get("session_id", "")), subject=str(attrs.get("subject", "")))


# -- labels --------------------------------------------------------------------------------------
def _annotation_table(tree, labels):
    import pandas as pd

    if labels is None or (isinstance(labels, str) and labels == "annotations"):
        nodes = _nodes(tree)
        if "annotations" not in nodes:
            raise EmonbValueError("this session has no 'annotations' node; pass labels= (a DataFrame "
                                  "with onset, duration, label, or an AnnotationStore)")
        ds = nodes["annotations"]
        df = pd.DataFrame({k: np.asarray(ds[k].values) for k in ds.variables
                           if ds[k].ndim == 1 and k in ds.data_vars or k in ds.coords and ds[k].ndim == 1})
    elif isinstance(labels, pd.DataFrame):
        df = labels
    elif isinstance(labels, xr.Dataset):
        df = labels.to_dataframe().reset_index()
    elif hasattr(labels, "to_dataframe"):  # eb.review.AnnotationStore
        df = labels.to_dataframe()
        sid = getattr(tree, "attrs", {}).get("session_id")
        if sid and "session_id" in df.columns:
            df = df[df["session_id"] == sid]
    else:
        raise EmonbValueError(
            f"labels must be 'annotations', a DataFrame with onset/duration/label, or an "
            f"AnnotationStore; got {type(labels).__name__}")
    if "onset" not in df.columns and "start" in df.columns:
        df = df.assign(onset=df["start"])
    if "duration" not in df.columns and {"onset", "end"} <= set(df.columns):
        df = df.assign(duration=df["end"] - df["onset"])
    missing = {"onset", "duration", "label"} - set(df.columns)
    if missing:
        raise EmonbValueError(f"annotations need columns onset, duration and label; missing {sorted(missing)}")
    return df


def labels_on_grid(tree, grid: FusionGrid, labels=None, *, label_map=None):
    """Per-step targets from annotations: emotion index (-1 = unlabelled), valence, arousal.

    Annotation labels are mapped onto :data:`~emonb.schema.EMOTIONS` (aliases such as ``"happy"``
    accepted, plus ``label_map``); any other label raises :class:`~emonb.errors.EmonbValueError`.
    Valence/arousal targets come from ``valence``/``arousal`` columns when the annotations have them,
    else from each label's position on the circumplex (:data:`~emonb.schema.EMOTION_VALENCE_AROUSAL`).
    """
    df = _annotation_table(tree, labels)
    label_map = dict(label_map or {})
    y = np.full(grid.time.size, -1, int)
    val = np.full(grid.time.size, np.nan)
    aro = np.full(grid.time.size, np.nan)
    unknown = set()
    for row in df.itertuples(index=False):
        lab = str(row.label)
        lab = label_map.get(lab, lab)
        try:
            emo = canonical_emotion(lab)
        except EmonbValueError:
            unknown.add(lab)
            continue
        if emo not in EMOTIONS:
            unknown.add(lab)
            continue
        t0 = float(row.onset)
        inside = (grid.time >= t0) & (grid.time < t0 + float(row.duration))
        y[inside] = EMOTIONS.index(emo)
        v, a = EMOTION_VALENCE_AROUSAL[emo]
        rv = getattr(row, "valence", np.nan)
        ra = getattr(row, "arousal", np.nan)
        val[inside] = float(rv) if rv is not None and np.isfinite(float(rv)) else v
        aro[inside] = float(ra) if ra is not None and np.isfinite(float(ra)) else a
    if unknown:
        raise EmonbValueError(
            f"annotation label(s) {sorted(unknown)} are not in the emotion vocabulary {EMOTIONS}; "
            "pass label_map={'your label': 'emotion', ...} to map them")
    return y, val, aro
