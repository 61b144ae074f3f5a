"""Train and evaluate the speech-emotion model on labelled clips (speaker-independent).

>>> import emonb as eb
>>> model = eb.voice.train_emotion_model("ravdess/", labels="emotion", groups="actor")  # doctest: +SKIP
>>> model.accuracy, model.recall          # speaker-independent (grouped cross-validation)  # doctest: +SKIP
>>> eb.analyze_voice("talk.wav", model=model.spec)                                       # doctest: +SKIP

The recipe (:mod:`emonb.models.voice.recipe`) is the shipped model's: a class-balanced,
L2-regularised multinomial logistic regression on standardised utterance functionals
(:data:`~emonb.models.voice.features.FUNCTIONAL_NAMES`), a speaker-normalised head for per-session
calibration, optionally a small log-mel CNN (torch, one thread) averaged with it, perturbed copies
of the clips, and temperature scaling on out-of-fold logits. Validation folds split by speaker
(``groups``), never by clip. Training is deterministic for a given ``seed``.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..._checks import check_positive
from ...errors import EmonbValueError

__all__ = ["train_emotion_model", "evaluate_emotion_model", "TrainedVoiceModel", "extract_functionals",
           "extract_inputs", "ARCHITECTURES"]

_AUDIO_EXT = {".wav", ".flac", ".mp3", ".ogg", ".m4a", ".aac", ".opus", ".mp4", ".mov", ".mkv", ".webm"}


@dataclass
class TrainedVoiceModel:
    """Result of :func:`train_emotion_model`.

    Attributes
    ----------
    spec : ModelSpec
        Spec of the trained model (weights in ``path``); pass it as ``model=`` to
        :func:`~emonb.analyze_voice` or :func:`~emonb.predict_voice_clips`.
    path : Path
        The ``.npz`` weights file.
    labels : list of str
        Output labels (canonical emotion names where the input labels map onto them).
    accuracy, balanced_accuracy : float
        Speaker-independent cross-validated accuracy (NaN when fewer than two speakers).
    recall : dict
        Per-class recall from the same folds.
    confusion : pandas.DataFrame
        Confusion matrix (rows true, columns predicted), pooled over the folds.
    n_clips, n_groups : int
    """

    spec: Any
    path: Path
    labels: list
    accuracy: float
    balanced_accuracy: float
    recall: dict
    confusion: Any
    n_clips: int
    n_groups: int
    meta: dict = field(default_factory=dict)

    def summary(self) -> str:
        rec = ", ".join(f"{k} {v:.2f}" for k, v in self.recall.items())
        return (f"{self.spec.name}: {self.n_clips} clips, {self.n_groups} speakers; speaker-independent "
                f"accuracy {self.accuracy:.3f} (balanced {self.balanced_accuracy:.3f}); recall: {rec}")

    def __repr__(self) -> str:
        return f"<TrainedVoiceModel {self.summary()}>"


def _canonical_labels(labels: Sequence) -> list[str]:
    from ...schema import EMOTION_ALIASES

    raw = [str(x).strip() for x in labels]
    if all(x.lower() in EMOTION_ALIASES for x in raw):
        return [EMOTION_ALIASES[x.lower()] for x in raw]
    return raw


def _resolve_table(data, labels, groups, root):
    """Return (clips, labels, groups) lists from the accepted input forms."""
    import pandas as pd

    table = None
    if isinstance(data, pd.DataFrame):
        table = data.copy()
    elif isinstance(data, (str, os.PathLike)):
        p = Path(data)
        if p.is_dir():
            root = root or p
            lab_file = None
            if isinstance(labels, pd.DataFrame):
                table, labels = labels.copy(), "emotion"
            elif isinstance(labels, (str, os.PathLike)) and Path(labels).suffix.lower() in (".csv", ".tsv"):
                lab_file = Path(labels) if Path(labels).exists() else p / labels
                labels = "emotion"
            elif (p / "labels.csv").exists():
                lab_file = p / "labels.csv"
            else:
                raise EmonbValueError(
                    f"{p}: a training folder needs a labels.csv (columns file, <label>, <speaker>) "
                    "or labels= pointing to such a table"
                )
            if lab_file is not None:
                table = pd.read_csv(lab_file, sep="\t" if lab_file.suffix.lower() == ".tsv" else ",")
        elif p.suffix.lower() in (".csv", ".tsv"):
            table = pd.read_csv(p, sep="\t" if p.suffix.lower() == ".tsv" else ",")
            root = root or p.parent
        else:
            raise EmonbValueError(f"{p}: expected a folder with labels.csv, a CSV/TSV table or a DataFrame")
    if table is not None:
        fcol = next((c for c in ("file", "path", "filename", "clip") if c in table.columns), None)
        if fcol is None:
            raise EmonbValueError(f"the training table needs a 'file' column; it has {list(table.columns)}")
        lcol = labels if isinstance(labels, str) else ("emotion" if labels is None else None)
        if lcol is None or lcol not in table.columns:
            raise EmonbValueError(f"labels={labels!r} is not a column of the training table {list(table.columns)}")
        gvals = None
        if isinstance(groups, str):
            gcol = groups
            if gcol not in table.columns:
                alias = next((c for c in ("speaker", "actor", "subject", "speaker_id") if c in table.columns), None)
                if alias is None:
                    raise EmonbValueError(f"groups={groups!r} is not a column of the training table {list(table.columns)}")
                gcol = alias
            gvals = table[gcol].astype(str).tolist()
        elif groups is not None:
            gvals = [str(g) for g in groups]
        base = Path(root) if root else Path(".")
        clips = [str(f) if Path(str(f)).is_absolute() else str(base / str(f)) for f in table[fcol]]
        return clips, table[lcol].tolist(), gvals
    # a list of clips
    clips = list(data)
    if labels is None or isinstance(labels, str) or len(labels) != len(clips):
        raise EmonbValueError("with a list of clips, labels= must be a sequence of the same length")
    gvals = None if groups is None or isinstance(groups, str) else [str(g) for g in groups]
    if gvals is not None and len(gvals) != len(clips):
        raise EmonbValueError("groups= must have one entry per clip")
    return clips, list(labels), gvals


def extract_functionals(clips, *, sampling_rate: float | None = None, progress: bool = True):
    """Utterance functionals of each clip (over its speech and voiced frames).

    Returns
    -------
    X : ndarray (n_clips, n_functionals) float32
        NaN rows for clips without usable speech.
    speech_s : ndarray (n_clips,)
    """
    from tqdm.auto import tqdm

    from . import _core
    from ._audio import read_voice_input
    from .features import FUNCTIONAL_NAMES

    X = np.full((len(clips), len(FUNCTIONAL_NAMES)), np.nan, np.float32)
    S = np.zeros(len(clips))
    for i, c in enumerate(tqdm(clips, desc="voice features", disable=not progress)):
        audio = read_voice_input(c, sampling_rate=sampling_rate)
        if len(audio.y) < 160:
            continue
        feats = _core.analyze_signal(audio.y)
        X[i], S[i] = _core.clip_functionals(feats)
    return X, S


def _standardize_fit(X):
    with np.errstate(invalid="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(X, axis=0)
            scale = np.nanstd(X, axis=0)
    mean = np.nan_to_num(mean, nan=0.0)
    scale = np.where(np.isfinite(scale) & (scale > 1e-8), scale, 1.0)
    return mean.astype(np.float32), scale.astype(np.float32)


def _standardize(X, mean, scale):
    Z = (np.asarray(X, np.float64) - mean) / scale
    return np.clip(np.nan_to_num(Z, nan=0.0, posinf=0.0, neginf=0.0), -8.0, 8.0)


def _fit(X, y, *, C, seed):
    from sklearn.linear_model import LogisticRegression

    mean, scale = _standardize_fit(X)
    clf = LogisticRegression(C=C, max_iter=5000, class_weight="balanced", random_state=seed)
    clf.fit(_standardize(X, mean, scale), y)
    return mean, scale, clf


def evaluate_emotion_model(X, y, groups, *, C: float = 0.01, n_splits: int = 4, seed: int = 0):
    """Speaker-independent cross-validation (folds split by ``groups``).

    Returns
    -------
    dict
        ``accuracy``, ``balanced_accuracy``, ``recall`` (per class), ``confusion`` (DataFrame),
        ``predicted`` (array of labels per clip), ``folds`` (list of held-out group lists).
    """
    import pandas as pd

    y = np.asarray(y, dtype=object)
    groups = np.asarray(groups, dtype=object)
    classes = sorted(set(y), key=lambda c: (c not in _ORDER, _ORDER.index(c) if c in _ORDER else 0, c))
    ug = np.unique(groups)
    if len(ug) < 2:
        nan = float("nan")
        return {"accuracy": nan, "balanced_accuracy": nan, "recall": {c: nan for c in classes},
                "confusion": pd.DataFrame(0, index=classes, columns=classes), "predicted": None, "folds": []}
    k = int(min(n_splits, len(ug)))
    # fixed, seeded assignment of speakers to folds
    rng = np.random.default_rng(seed)
    order = rng.permutation(ug)
    fold_of = {g: i % k for i, g in enumerate(order)}
    fold = np.array([fold_of[g] for g in groups])
    pred = np.empty(len(y), dtype=object)
    folds = []
    for f in range(k):
        te = fold == f
        tr = ~te
        mean, scale, clf = _fit(X[tr], y[tr], C=C, seed=seed)
        pred[te] = clf.predict(_standardize(X[te], mean, scale))
        folds.append(sorted(str(g) for g in np.unique(groups[te])))
    conf = pd.DataFrame(0, index=pd.Index(classes, name="true"), columns=pd.Index(classes, name="predicted"))
    for t, p in zip(y, pred):
        conf.loc[t, p] += 1
    recall = {c: float(conf.loc[c, c] / conf.loc[c].sum()) if conf.loc[c].sum() else float("nan") for c in classes}
    return {"accuracy": float(np.mean(pred == y)), "balanced_accuracy": float(np.nanmean(list(recall.values()))),
            "recall": recall, "confusion": conf, "predicted": pred, "folds": folds}


_ORDER = ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral", "contempt"]


def extract_inputs(clips, *, sampling_rate: float | None = None, augment: int = 0, seed: int = 0,
                   progress: bool = True):
    """Model inputs of each clip, plus ``augment`` perturbed copies (:func:`augment.random_chain`).

    Returns
    -------
    list of list of ClipInputs
        ``versions[0]`` the clips as recorded, ``versions[k]`` the k-th perturbed copy.
    """
    from tqdm.auto import tqdm

    from ._audio import read_voice_input
    from .augment import random_chain
    from .corpus import clip_inputs

    versions = [[] for _ in range(1 + augment)]
    for i, c in enumerate(tqdm(clips, desc="voice features", disable=not progress)):
        audio = read_voice_input(c, sampling_rate=sampling_rate)
        versions[0].append(clip_inputs(audio.y, sampling_rate=16000))
        for k in range(augment):
            y2, rate, _ = random_chain(audio.y, np.random.default_rng([seed, k, i, 104729]))
            versions[k + 1].append(clip_inputs(y2, sampling_rate=rate))
    return versions


def _versions_from_functionals(X):
    """Versions without frames (training from precomputed functionals: no log-mel network)."""
    from .corpus import ClipInputs
    from .features import N_MELS

    return [[ClipInputs(np.asarray(x, np.float32), np.zeros((0, N_MELS), np.float16), np.zeros(0, bool), 0.0)
             for x in X]]


ARCHITECTURES = ("functionals", "functionals+cnn")


def train_emotion_model(data, *, labels="emotion", groups="speaker", root=None, output=None,
                        name: str = "voice-emotion-custom", architecture: str = "functionals+cnn",
                        augment: int = 2, C: float = 0.01, cnn_params: dict | None = None,
                        n_splits: int = 4, seed: int = 0, sampling_rate: float | None = None,
                        register: bool = False, license: str = "user-supplied", citation: str = "",
                        training_data: str = "", progress: bool = True, _features=None) -> TrainedVoiceModel:
    """Train a speech-emotion model on labelled clips and validate it across speakers.

    The recipe of the shipped model (:mod:`emonb.models.voice.recipe`): a logistic regression on
    utterance functionals, a speaker-normalised head for per-session calibration, and (with
    ``architecture="functionals+cnn"``) a small log-mel CNN whose log-probabilities are averaged
    with the functionals head; the probabilities are calibrated by a temperature fitted on the
    speaker-grouped out-of-fold logits.

    Parameters
    ----------
    data : str, Path, DataFrame or sequence
        A folder holding the clips and a ``labels.csv``; a CSV/TSV table or DataFrame with a
        ``file`` column (paths relative to ``root`` or to the table's folder); or a list of clips
        (paths, or arrays with ``sampling_rate=``).
    labels : str or sequence
        Label column of the table (default ``"emotion"``), a table path for a folder, or one label
        per clip. Labels that name emotions (``"happy"``, ``"calm"``...) are mapped onto
        :data:`emonb.schema.EMOTIONS` (``calm`` -> ``neutral``); others are kept as given.
    groups : str or sequence, optional
        Speaker column (``"speaker"`` also finds ``actor``/``subject``) or one id per clip.
        Validation folds never split a speaker. ``None`` skips validation (and calibration).
    output : str or Path, optional
        Where to write the ``.npz`` weights (default: a new temporary folder).
    architecture : {"functionals+cnn", "functionals"}
        With or without the log-mel network (``"functionals"`` trains in seconds).
    augment : int
        Perturbed copies of each training clip (speed/pitch, noise, reverberation, telephone band).
    C : float
        Inverse L2 regularisation strength of the functionals logistic regression.
    cnn_params : dict, optional
        Overrides of :data:`~emonb.models.voice.train_cnn.CNN_PARAMS` (``epochs``...).
    n_splits : int
        Number of speaker-grouped folds.
    seed : int
        Fixes the folds, the perturbations and the network's initialisation and batches.
    register : bool
        Also register the spec under ``name`` (then ``model=name`` works everywhere).

    Returns
    -------
    TrainedVoiceModel
        With ``spec``, ``accuracy`` (speaker-independent), ``recall``, ``confusion`` and, in
        ``meta``, the ECE before and after calibration and the temperatures.
    """
    import time

    import pandas as pd

    from ..._checks import check_option
    from ..spec import ModelSpec, sha256_file
    from . import recipe as R
    from .calibration import ece, log_softmax
    t0 = time.time()
    check_positive("C", C)
    check_option("architecture", architecture, ARCHITECTURES)
    clips, raw_labels, gvals = _resolve_table(data, labels, groups, root)
    if len(clips) < 2:
        raise EmonbValueError("training needs at least two labelled clips")
    y = np.asarray(_canonical_labels(raw_labels), dtype=object)
    if len(set(y)) < 2:
        raise EmonbValueError(f"training needs at least two classes; got only {sorted(set(y))}")
    use_cnn = architecture == "functionals+cnn"
    if _features is not None:  # precomputed functionals (no frames): functionals heads only
        versions = _versions_from_functionals(_features[0])
        use_cnn = False
    else:
        versions = extract_inputs(clips, sampling_rate=sampling_rate, augment=int(augment), seed=seed,
                                  progress=progress)
    X = np.stack([it.functionals for it in versions[0]])
    ok = ~np.all(np.isnan(X), axis=1)
    if ok.sum() < 2:
        raise EmonbValueError("no clip had usable speech; nothing to train on")
    idx = np.flatnonzero(ok)
    vo = [[ver[i] for i in idx] for ver in versions]
    yo = y[ok]
    go = np.asarray(gvals, dtype=object)[ok] if gvals is not None else np.zeros(len(idx), dtype=object)
    classes = sorted(set(yo), key=lambda c: (c not in _ORDER, _ORDER.index(c) if c in _ORDER else 0, c))
    if len(set(yo)) < 2:
        raise EmonbValueError(f"training needs at least two classes with speech; got only {classes}")
    yi = np.array([classes.index(c) for c in yo])
    params = {"lr_C": C}
    n_groups = int(len(np.unique(go)))
    key = "ensemble" if use_cnn else "functionals_mix"
    temps, folds = {}, []
    nan = float("nan")
    acc = bal = ece_raw = ece_cal = nan
    recall = {c: nan for c in classes}
    conf = pd.DataFrame(0, index=pd.Index(classes, name="true"), columns=pd.Index(classes, name="predicted"))
    if gvals is not None and n_groups >= 2:
        oof, fold = R.cross_validate(vo, yo, go, classes=classes, n_splits=n_splits, seed=seed, params=params,
                                     cnn=use_cnn, cnn_params=cnn_params, progress=False)
        folds = [sorted(str(g) for g in np.unique(go[fold == f])) for f in np.unique(fold)]
        temps = R.fit_temperatures(oof, yi)
        L = np.nan_to_num(oof[key], nan=0.0)
        pred = L.argmax(axis=1)
        for t, p in zip(yi, pred):
            conf.iloc[t, p] += 1
        recall = {c: float(conf.iloc[k, k] / conf.iloc[k].sum()) if conf.iloc[k].sum() else nan
                  for k, c in enumerate(classes)}
        acc = float(np.mean(pred == yi))
        bal = float(np.nanmean(list(recall.values())))
        # calibration judged on each fold with a temperature fitted on the other folds
        from .calibration import fit_temperature

        Tf = np.ones(len(yi))
        for f in np.unique(fold):
            Tf[fold == f] = fit_temperature(L[fold != f], yi[fold != f])
        ece_raw = ece(np.exp(log_softmax(L)), yi)
        ece_cal = ece(np.exp(log_softmax(L / Tf[:, None])), yi)
    heads = R.fit_heads(vo, yo, go, classes=classes, params=params, cnn=use_cnn, cnn_params=cnn_params,
                        seed=seed, progress=progress)
    meta = {
        "architecture": architecture if use_cnn else "functionals",
        "classifier": "multinomial logistic regression (L2, class-balanced, lbfgs) on functionals"
                      + (" + log-mel CNN (log-probabilities averaged)" if use_cnn else ""),
        "C": C, "seed": seed, "augment": int(augment) if _features is None else 0,
        "recipe": heads["params"], "cnn_params": heads.get("cnn_info", {}).get("params"),
        "n_clips": int(ok.sum()), "n_skipped": int((~ok).sum()), "n_groups": n_groups,
        "n_splits": n_splits, "folds": folds,
        "cv_accuracy": acc, "cv_balanced_accuracy": bal, "cv_recall": recall,
        "cv_ece": ece_raw, "cv_ece_calibrated": ece_cal, "temperatures": temps,
        "confusion": conf.values.tolist(), "confusion_labels": list(conf.index),
    }
    if output is None:
        output = Path(tempfile.mkdtemp(prefix="emonb-voice-")) / f"{name}.npz"
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    R.save_heads(output, heads, temps, classes=classes, meta=meta)
    meta["train_seconds"] = time.time() - t0  # not in the weights file, which stays byte-identical per seed
    spec = ModelSpec(
        name=name, modality="voice", task="speech_emotion", runtime="python",
        factory="emonb.models.voice.emotion:build_emotion_model", outputs=tuple(classes),
        weights=str(output.resolve()), sha256=sha256_file(output), license=license, citation=citation,
        training_data=training_data or f"{int(ok.sum())} clips, {n_groups} speakers",
        description=("utterance functionals + logistic regression" + (" + log-mel CNN" if use_cnn else "")
                     + ", temperature-calibrated (emonb.voice.train_emotion_model)"),
        input_rate=16000.0,
    )
    if register:
        from .. import register_model

        register_model(spec, overwrite=True)
    return TrainedVoiceModel(spec=spec, path=output, labels=classes, accuracy=acc, balanced_accuracy=bal,
                             recall=recall, confusion=conf, n_clips=int(ok.sum()), n_groups=n_groups, meta=meta)
