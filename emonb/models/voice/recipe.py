"""The speech-emotion recipe: heads, their combination, speaker-grouped validation, calibration.

One recipe serves the shipped model (``scripts/train_voice_model.py``) and a lab's own model
(:func:`emonb.voice.train_emotion_model`):

- ``functionals_clean``: class-balanced L2 multinomial logistic regression on standardised
  utterance functionals of the clips as recorded (the first model's recipe);
- ``functionals``: the same on the clips plus their perturbed copies (holds up on telephone-band and
  noisy audio, a little weaker on clean studio speech);
- ``session``: the same on speaker-normalised functionals (each training row standardised over a
  random subset of its speaker's rows, 1 to all, shrunk towards the population), the head that
  per-session calibration uses;
- ``cnn``: the log-mel network (:mod:`~emonb.models.voice.melcnn`), optional;
- the ensemble averages the log-probabilities of the two functionals heads and the CNN (equal
  weights; the session ensemble: session head and CNN), then divides by a temperature fitted on
  out-of-fold logits.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RECIPE_PARAMS", "fit_heads", "heads_logits", "combine", "speaker_folds", "cross_validate",
           "fit_temperatures", "heads_arrays", "save_heads"]

#: Hyper-parameters of the heads (the CNN's are in train_cnn.CNN_PARAMS).
RECIPE_PARAMS = {
    "lr_C": 0.01, "sn_C": 0.1, "sn_prior": 2.0, "sn_train_subsets": [1, 2, 4, 8, 16, 0],
    "cnn_weight": 0.5,  # share of the CNN in the session ensemble (session head + CNN)
    "mix": [1 / 3, 1 / 3, 1 / 3],  # functionals_clean, functionals (augmented), CNN
}


def _lr(X, y, classes, *, C, seed, standardise=True):
    from sklearn.linear_model import LogisticRegression

    from .train import _standardize, _standardize_fit

    if standardise:
        mean, scale = _standardize_fit(X)
    else:
        mean, scale = np.zeros(X.shape[1], np.float32), np.ones(X.shape[1], np.float32)
    clf = LogisticRegression(C=C, max_iter=5000, class_weight="balanced", random_state=seed)
    clf.fit(_standardize(X, mean, scale), y)
    cl = [str(c) for c in clf.classes_]
    if len(cl) == 2:  # binary: sklearn keeps one row; make it a symmetric softmax
        coef = np.vstack([-clf.coef_[0] / 2, clf.coef_[0] / 2])
        inter = np.array([-clf.intercept_[0] / 2, clf.intercept_[0] / 2])
    else:
        coef, inter = clf.coef_, clf.intercept_
    idx = [cl.index(c) for c in classes]
    return {"mean": mean, "scale": scale, "W": coef[idx].T.astype(np.float64), "b": inter[idx].astype(np.float64)}


def _lr_logits(m, X):
    from .train import _standardize

    return _standardize(X, m["mean"], m["scale"]) @ m["W"] + m["b"]


def _pop_stats(X):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, var = np.nanmean(X, axis=0), np.nanvar(X, axis=0)
    return np.nan_to_num(mean), np.where(np.isfinite(var) & (var > 1e-12), var, 1.0)


def _sn_rows(X, groups, rng, *, subsets, prior, pop_mean, pop_var):
    """Each row standardised over a random subset (size drawn from ``subsets``, 0 = all) of its group's rows."""
    from .calibration import speaker_stats

    out = np.full(X.shape, np.nan)
    for g in dict.fromkeys(groups.tolist()):
        idx = np.flatnonzero(groups == g)
        for i in idx:
            k = int(rng.choice(subsets))
            others = idx[idx != i]
            pick = others if k == 0 or k - 1 >= len(others) else rng.choice(others, k - 1, replace=False)
            rows = np.concatenate([[i], pick]).astype(int)
            m, sd = speaker_stats(X[rows], pop_mean, pop_var, prior=prior)
            out[i] = (X[i] - m) / sd
    return out


def fit_heads(versions, y, groups, *, classes, params=None, cnn=True, cnn_params=None, seed=0,
              progress=False, log=None):
    """Fit the heads on clips given as versions (``versions[0]`` the clean clips).

    Parameters
    ----------
    versions : list of list of ClipInputs
        ``versions[k][i]``: version ``k`` of clip ``i``.
    y, groups : sequence
        Label and speaker of each clip.

    Returns
    -------
    dict
        ``functionals``, ``session`` (logistic-regression heads with the population statistics)
        and ``cnn`` (exported arrays, or None).
    """
    p = dict(RECIPE_PARAMS, **(params or {}))
    y = np.asarray(y, dtype=object)
    groups = np.asarray(groups, dtype=object)
    Xs = [np.stack([it.functionals for it in ver]).astype(np.float64) for ver in versions]
    ok = ~np.all(np.isnan(Xs[0]), axis=1)
    Xa = np.concatenate([X[ok] for X in Xs])
    ya = np.concatenate([y[ok]] * len(Xs))
    heads = {"functionals": _lr(Xa, ya, classes, C=p["lr_C"], seed=seed),
             "functionals_clean": _lr(Xs[0][ok], y[ok], classes, C=p["lr_C"], seed=seed)}
    pm, pv = _pop_stats(Xa)
    rng = np.random.default_rng([seed, 17])
    Z = np.concatenate([_sn_rows(X[ok], groups[ok], rng, subsets=p["sn_train_subsets"], prior=p["sn_prior"],
                                 pop_mean=pm, pop_var=pv) for X in Xs])
    sess = _lr(Z, ya, classes, C=p["sn_C"], seed=seed, standardise=False)
    heads["session"] = {"W": sess["W"], "b": sess["b"], "pop_mean": pm, "pop_var": pv, "prior": p["sn_prior"]}
    heads["cnn"] = None
    if cnn:
        from .train_cnn import train_melcnn

        idx = np.flatnonzero(ok)
        arrays, info = train_melcnn([[ver[i] for i in idx] for ver in versions], y[idx], classes=classes,
                                    params=cnn_params, seed=seed, progress=progress, log=log)
        heads["cnn"] = arrays
        heads["cnn_info"] = info
    heads["params"] = p
    return heads


def heads_logits(heads, items, groups=None):
    """Logits of each head on clips (``session`` standardised over each group's clips)."""
    from .calibration import speaker_stats
    from .train_cnn import cnn_logits

    X = np.stack([it.functionals for it in items]).astype(np.float64)
    out = {"functionals": _lr_logits(heads["functionals"], X),
           "functionals_clean": _lr_logits(heads["functionals_clean"], X)}
    if groups is not None:
        s = heads["session"]
        groups = np.asarray(groups, dtype=object)
        Z = np.full(X.shape, np.nan)
        for g in dict.fromkeys(groups.tolist()):
            m = groups == g
            mean, sd = speaker_stats(X[m], s["pop_mean"], s["pop_var"], prior=s["prior"])
            Z[m] = (X[m] - mean) / sd
        Z = np.clip(np.nan_to_num(Z, nan=0.0, posinf=0.0, neginf=0.0), -8.0, 8.0)
        out["session"] = Z @ s["W"] + s["b"]
    if heads.get("cnn") is not None:
        out["cnn"] = cnn_logits(heads["cnn"], items).astype(np.float64)
    empty = np.all(np.isnan(X), axis=1)
    for v in out.values():
        v[empty] = np.nan
    return out


def combine(logits: dict, *, cnn_weight: float, mix=RECIPE_PARAMS["mix"]) -> dict:
    """Log-probability ensembles, as the runtime forms them.

    ``functionals_mix`` (the two functionals heads), ``ensemble`` (those and the CNN, weights
    ``mix``), ``ensemble_aug`` (augmented functionals head and CNN, ``cnn_weight``),
    ``ensemble_session`` (session head and CNN, ``cnn_weight``).
    """
    from .calibration import log_softmax

    ls = {k: log_softmax(np.nan_to_num(v, nan=0.0)) for k, v in logits.items()}
    wc, wa, wn = mix
    out = {"functionals_mix": (wc * ls["functionals_clean"] + wa * ls["functionals"]) / (wc + wa)}
    if "cnn" in ls:
        out["ensemble"] = (wc * ls["functionals_clean"] + wa * ls["functionals"] + wn * ls["cnn"]) / (wc + wa + wn)
        out["ensemble_aug"] = (1 - cnn_weight) * ls["functionals"] + cnn_weight * ls["cnn"]
        if "session" in ls:
            out["ensemble_session"] = (1 - cnn_weight) * ls["session"] + cnn_weight * ls["cnn"]
    return out


def speaker_folds(groups, *, n_splits: int, seed: int) -> np.ndarray:
    """Fold index of each clip: a seeded permutation of the speakers dealt round-robin."""
    groups = np.asarray([str(g) for g in groups], dtype=object)
    ug = np.unique(groups)
    k = int(min(n_splits, len(ug)))
    order = np.random.default_rng(seed).permutation(ug)
    fold_of = {g: i % k for i, g in enumerate(order)}
    return np.array([fold_of[g] for g in groups])


def cross_validate(versions, y, groups, *, classes, n_splits=4, seed=0, params=None, cnn=True,
                   cnn_params=None, progress=False, log=None):
    """Out-of-fold logits of every head and ensemble (folds split by speaker).

    Returns
    -------
    logits : dict of str -> ndarray (n_clips, n_classes)
    fold : ndarray (n_clips,) int
    """
    p = dict(RECIPE_PARAMS, **(params or {}))
    groups = np.asarray([str(g) for g in groups], dtype=object)
    y = np.asarray(y, dtype=object)
    fold = speaker_folds(groups, n_splits=n_splits, seed=seed)
    oof: dict = {}
    for f in np.unique(fold):
        tr, te = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        heads = fit_heads([[ver[i] for i in tr] for ver in versions], y[tr], groups[tr], classes=classes,
                          params=p, cnn=cnn, cnn_params=cnn_params, seed=seed + int(f), progress=progress, log=log)
        lg = heads_logits(heads, [versions[0][i] for i in te], groups[te])
        lg.update(combine(lg, cnn_weight=p["cnn_weight"], mix=p["mix"]))
        for k, v in lg.items():
            oof.setdefault(k, np.full((len(y), len(classes)), np.nan))[te] = v
    return oof, fold


def fit_temperatures(oof: dict, yi: np.ndarray) -> dict:
    """Temperatures for the runtime's four combinations, fitted on out-of-fold logits."""
    from .calibration import fit_temperature

    pick = {"temperature": "ensemble" if "ensemble" in oof else "functionals_mix",
            "temperature_functionals": "functionals_mix",
            "temperature_session": "ensemble_session" if "ensemble_session" in oof else "session",
            "temperature_session_functionals": "session"}
    out = {}
    for key, name in pick.items():
        L = oof.get(name)
        if L is None:
            continue
        ok = np.isfinite(L).all(axis=1)
        out[key] = fit_temperature(L[ok], yi[ok]) if ok.sum() >= 2 else 1.0
    return out


def save_heads(path, heads, temperatures: dict, *, classes, meta: dict) -> None:
    """Write the heads as one pickle-free ``.npz`` for :class:`~emonb.models.voice.emotion.VoiceEmotionModel`."""
    from .emotion import save_emotion_weights
    from .features import FUNCTIONAL_NAMES

    core = heads["functionals_clean"]
    save_emotion_weights(path, labels=classes, feature_names=FUNCTIONAL_NAMES, mean=core["mean"], scale=core["scale"],
                         weights=[core["W"]], biases=[core["b"]], meta=meta, extra=heads_arrays(heads, temperatures))


def heads_arrays(heads, temperatures: dict) -> dict:
    """Arrays for :func:`~emonb.models.voice.emotion.save_emotion_weights` (``extra=``), beside the core head."""
    s = heads["session"]
    fa = heads["functionals"]
    extra = {"fa_mean": fa["mean"].astype(np.float32), "fa_scale": fa["scale"].astype(np.float32),
             "fa_W": fa["W"].astype(np.float32), "fa_b": fa["b"].astype(np.float32),
             "mix": np.asarray(heads["params"]["mix"], np.float64),
             "sn_W": s["W"].astype(np.float32), "sn_b": s["b"].astype(np.float32),
             "sn_pop_mean": s["pop_mean"].astype(np.float64), "sn_pop_var": s["pop_var"].astype(np.float64),
             "sn_prior": np.asarray(float(s["prior"]))}
    if heads.get("cnn") is not None:
        extra.update(heads["cnn"])
        extra["cnn_weight"] = np.asarray(float(heads["params"]["cnn_weight"]))
    for k, v in temperatures.items():
        extra[k] = np.asarray(float(v))
    return extra
