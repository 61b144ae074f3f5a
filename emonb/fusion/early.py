"""Early fusion: per-window concatenated features into any scikit-learn estimator."""

from __future__ import annotations

import numpy as np

from .._checks import require
from ..errors import EmonbValueError
from ..schema import EMOTIONS
from ._grid import MODALITIES, FusionGrid
from .base import (FusionMethod, Prediction, availability_weights, check_training_classes, single_thread,
                   va_from_emotion)


def default_classifier():
    """Imputer (median, with missing-value indicators) -> scaler -> multinomial logistic regression."""
    require("sklearn", extra="fusion", purpose="early fusion")
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                         StandardScaler(), LogisticRegression(C=0.5, max_iter=500, class_weight="balanced"))


def default_regressor():
    """Imputer -> scaler -> ridge regression (for valence and arousal)."""
    require("sklearn", extra="fusion", purpose="early fusion")
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                         StandardScaler(), Ridge(alpha=1.0))


class EarlyFusion(FusionMethod):
    """Feature-level fusion with a scikit-learn estimator.

    Each grid step (a window of ``1 / rate`` seconds; every variable is low-pass filtered to the grid
    before sampling) is one row: the numeric variables of every modality result (emotion
    probabilities, valence/arousal, AUs, blendshapes, prosody, physio rates and levels) plus each
    modality's confidence, concatenated. Missing modalities are NaN, which the imputer of the
    default pipeline fills (and flags with indicator columns).

    Parameters
    ----------
    estimator : scikit-learn classifier, optional
        Any estimator with ``fit``/``predict_proba`` (default :func:`default_classifier`). Wrap it in
        a Pipeline with an imputer if it does not accept NaN.
    regressor : scikit-learn regressor or False, optional
        Cloned twice for valence and arousal (default :func:`default_regressor`); ``False`` derives
        them from the emotion probabilities (circumplex positions).
    modalities : sequence of str, optional
        Restrict the features to these modalities.

    Notes
    -----
    ``modality_weight`` of early fusion is each modality's share of the available evidence (default
    weight x confidence): a feature-level model has no per-step modality weights of its own.
    """

    name = "early"
    trainable = True
    needs_features = True

    def __init__(self, *, estimator=None, regressor=None, modalities=None):
        self.estimator = estimator
        self.regressor = regressor
        self.modalities = tuple(modalities) if modalities is not None else None

    def _X(self, grid: FusionGrid, names=None):
        mods = self.modalities or MODALITIES
        X, cols = grid.feature_table(mods)
        conf = grid.confidence_matrix(mods)
        X = np.concatenate([X, conf], axis=1)
        cols = cols + [f"{m}:confidence" for m in mods]
        if names is None:
            return X, cols
        idx = {c: i for i, c in enumerate(cols)}
        out = np.full((X.shape[0], len(names)), np.nan)
        for j, c in enumerate(names):
            if c in idx:
                out[:, j] = X[:, idx[c]]
        return out, names

    def fit(self, grids, targets):
        from sklearn.base import clone

        names: list[str] = []
        for g in grids:  # union of the feature columns, in first-seen order
            for c in self._X(g)[1]:
                if c not in names:
                    names.append(c)
        Xs, ys, vs, as_ = [], [], [], []
        for g, (y, val, aro) in zip(grids, targets):
            X, _ = self._X(g, names)
            keep = (y >= 0) & (g.confidence_matrix(self.modalities or MODALITIES).sum(axis=1) > 0)
            Xs.append(X[keep]); ys.append(y[keep]); vs.append(val[keep]); as_.append(aro[keep])
        X = np.concatenate(Xs); y = np.concatenate(ys)
        check_training_classes(y, "a classifier")
        est = clone(self.estimator) if self.estimator is not None else default_classifier()
        with single_thread():
            est.fit(X, y)
        self.estimator_ = est
        self.classes_ = np.asarray(est.classes_, int)
        self.feature_names_ = names
        self.regressors_ = None
        if self.regressor is not False:
            v = np.concatenate(vs); a = np.concatenate(as_)
            regs = []
            for tgt in (v, a):
                ok = np.isfinite(tgt)
                r = clone(self.regressor) if self.regressor is not None else default_regressor()
                with single_thread():
                    r.fit(X[ok], tgt[ok])
                regs.append(r)
            self.regressors_ = regs
        return self

    @classmethod
    def _from_saved(cls, params, state):
        """Rebuild from a saved file, checking that the estimators can do what :meth:`predict` asks."""
        est = state.get("estimator_")
        if est is not None and not hasattr(est, "predict_proba"):
            raise EmonbValueError(f"the saved classifier ({type(est).__name__}) has no predict_proba")
        regs = state.get("regressors_")
        if regs is not None and not (isinstance(regs, list) and len(regs) == 2
                                     and all(hasattr(r, "predict") for r in regs)):
            raise EmonbValueError("the saved valence/arousal regressors are not two estimators")
        names = state.get("feature_names_")
        if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise EmonbValueError("the saved feature names are not a list of text")
        classes = state.get("classes_")
        if classes is not None and not (isinstance(classes, np.ndarray) and classes.dtype.kind in "iu"
                                        and classes.ndim == 1 and np.all((classes >= 0) & (classes < len(EMOTIONS)))):
            raise EmonbValueError("the saved classes are not emotion indices")
        return super()._from_saved(params, state)

    def predict(self, grid: FusionGrid) -> Prediction:
        if not hasattr(self, "estimator_"):
            raise EmonbValueError("early fusion needs a fitted model: eb.fusion.train(trees, method='early') "
                                  "or eb.fuse(tree, method='early', model=fitted)")
        X, _ = self._X(grid, self.feature_names_)
        T = X.shape[0]
        conf = grid.confidence_matrix(self.modalities or MODALITIES)
        any_mod = conf.sum(axis=1) > 0
        p = np.full((T, len(EMOTIONS)), np.nan)
        val = np.full(T, np.nan)
        aro = np.full(T, np.nan)
        if any_mod.any():
            with single_thread():
                proba = self.estimator_.predict_proba(X[any_mod])
                va_pred = ([np.clip(r.predict(X[any_mod]), -1, 1) for r in self.regressors_]
                           if self.regressors_ else None)
            pp = np.zeros((proba.shape[0], len(EMOTIONS)))
            pp[:, self.classes_] = proba
            p[any_mod] = pp
            if va_pred is not None:
                val[any_mod], aro[any_mod] = va_pred
            else:
                val[any_mod], aro[any_mod] = va_from_emotion(pp)
        mw = availability_weights(grid)
        if self.modalities:
            for j, m in enumerate(MODALITIES):
                if m not in self.modalities:
                    mw[:, j] = 0.0
            s = np.nansum(mw, axis=1, keepdims=True)
            with np.errstate(invalid="ignore", divide="ignore"):
                mw = np.where(s > 0, mw / s, np.nan)
        confidence = np.where(any_mod, np.nanmax(p, axis=1, initial=0) if T else 0, 0.0)
        return Prediction(emotion=p, valence=val, arousal=aro, modality_weight=mw, confidence=confidence)
