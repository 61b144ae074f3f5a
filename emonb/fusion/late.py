"""Late fusion: confidence-weighted combination of the modalities' own outputs (no training needed)."""

from __future__ import annotations

import numpy as np

from .._checks import check_option
from ..errors import EmonbValueError
from ..schema import EMOTIONS
from ._grid import MODALITIES, FusionGrid
from .base import DEFAULT_WEIGHTS, FusionMethod, Prediction

ENSEMBLES = ("mean", "product", "max")
_TARGETS = ("emotion", "valence", "arousal")
_EPS = 1e-4


class LateFusion(FusionMethod):
    """Confidence-weighted late fusion.

    At each step, modality ``m`` gets the weight ``w[m] * confidence_m(t)``: ``w`` defaults to
    :data:`~emonb.fusion.base.DEFAULT_WEIGHTS` (face 1.0, voice 0.8, physio 0.5, text 0.5) and the
    confidence is the modality's own (face detection score, voice activity, physio signal quality,
    1 for text inside a segment, 0 where the modality has no output). Emotion probabilities come from
    face and voice, valence from face, voice and text, arousal from face, voice and physio.

    Parameters
    ----------
    weights : dict, optional
        Per-modality weights, either ``{"face": 1, ...}`` for every output or
        ``{"emotion": {...}, "valence": {...}, "arousal": {...}}``.
    ensemble : {"mean", "product", "max"}
        ``"mean"``: weighted average of the probabilities; ``"product"``: product of experts,
        ``p ∝ Π p_m ** (w_m c_m)`` (a confident modality can veto); ``"max"``: the single modality
        with the largest ``w_m c_m`` at each step.

    Notes
    -----
    :meth:`fit` (optional) replaces the default weights by each modality's measured reliability on
    annotated sessions: Cohen's-kappa-like balanced accuracy above chance for emotion, squared
    positive correlation for valence and arousal. A modality that is pure noise gets weight ~0.
    """

    name = "late"
    trainable = False

    def __init__(self, *, weights: dict | None = None, ensemble: str = "mean"):
        self.weights = weights
        self.ensemble = check_option("ensemble", ensemble, ENSEMBLES)

    # -- weights --------------------------------------------------------------------------
    def _weights(self) -> dict[str, dict[str, float]]:
        w = getattr(self, "weights_", None) or self.weights or DEFAULT_WEIGHTS
        if any(k in _TARGETS for k in w):
            out = {t: dict(DEFAULT_WEIGHTS, **w.get(t, {})) for t in _TARGETS}
        else:
            unknown = [k for k in w if k not in MODALITIES]
            if unknown:
                raise EmonbValueError(f"weights for unknown modalities {unknown}; use {MODALITIES}")
            out = {t: dict(DEFAULT_WEIGHTS, **w) for t in _TARGETS}
        return out

    def fit(self, grids, targets):
        K = None
        sums: dict[str, dict[str, list]] = {t: {} for t in _TARGETS}
        for g, (y, val, aro) in zip(grids, targets):
            for m, d in g.modalities.items():
                ok = d.confidence > 0
                if d.emotion is not None:
                    lab = ok & (y >= 0) & np.isfinite(d.emotion).all(axis=1)
                    pred = np.argmax(np.nan_to_num(d.emotion[lab], nan=-1), axis=1)
                    sums["emotion"].setdefault(m, []).append((y[lab], pred))
                for t, arr, tgt in (("valence", d.valence, val), ("arousal", d.arousal, aro)):
                    if arr is not None:
                        lab = ok & np.isfinite(arr) & np.isfinite(tgt)
                        sums[t].setdefault(m, []).append((tgt[lab], arr[lab]))
        learned: dict[str, dict[str, float]] = {t: {m: 0.0 for m in MODALITIES} for t in _TARGETS}
        for m, parts in sums["emotion"].items():
            yt = np.concatenate([p[0] for p in parts])
            yp = np.concatenate([p[1] for p in parts])
            classes = np.unique(yt)
            if yt.size == 0 or classes.size < 2:
                continue
            K = classes.size
            bal = np.mean([np.mean(yp[yt == c] == c) for c in classes])
            learned["emotion"][m] = float(max(bal - 1 / K, 0) / (1 - 1 / K))
        for t in ("valence", "arousal"):
            for m, parts in sums[t].items():
                a = np.concatenate([p[0] for p in parts])
                b = np.concatenate([p[1] for p in parts])
                if a.size > 2 and np.std(a) > 0 and np.std(b) > 0:
                    r = float(np.corrcoef(a, b)[0, 1])
                    learned[t][m] = max(r, 0.0) ** 2
        for t in _TARGETS:  # nothing measurable: keep the defaults for that output
            if not any(learned[t].values()):
                learned[t] = dict(DEFAULT_WEIGHTS)
        self.weights_ = learned
        return self

    # -- prediction -----------------------------------------------------------------------
    def _combine(self, arrays, eff, prob: bool):
        """Combine (T, ...) arrays with (T, n) effective weights according to ``ensemble``."""
        T = eff.shape[0]
        stack = np.stack(arrays, axis=1)  # T, n, [K]
        finite = np.isfinite(stack) if stack.ndim == 2 else np.isfinite(stack).all(axis=2)
        eff = np.where(finite & (eff > 0), eff, 0.0)
        tot = eff.sum(axis=1)
        share = np.zeros_like(eff)
        if self.ensemble == "max":
            best = np.argmax(eff, axis=1)
            share[np.arange(T), best] = 1.0
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                share = eff / tot[:, None]
        share[tot <= 0] = 0.0
        x = np.nan_to_num(stack, nan=0.0)
        if prob and self.ensemble == "product":
            logp = np.log(np.clip(x, _EPS, 1.0))
            z = np.einsum("tn,tnk->tk", eff, logp)
            z -= z.max(axis=1, keepdims=True)
            out = np.exp(z)
            out /= out.sum(axis=1, keepdims=True)
        elif prob:
            out = np.einsum("tn,tnk->tk", share, x)
        else:
            out = (share * x).sum(axis=1)
        out[tot <= 0] = np.nan
        return out, share, tot

    def predict(self, grid: FusionGrid) -> Prediction:
        W = self._weights()
        T = grid.time.size
        mw = np.zeros((T, len(MODALITIES)))
        counts = np.zeros(T)
        outputs = {}
        for t in _TARGETS:
            mods = [m for m, d in grid.modalities.items() if getattr(d, t) is not None]
            if not mods:
                outputs[t] = np.full((T, len(EMOTIONS)) if t == "emotion" else T, np.nan)
                continue
            eff = np.stack([W[t].get(m, 0.0) * grid.modalities[m].confidence for m in mods], axis=1)
            out, share, tot = self._combine([getattr(grid.modalities[m], t) for m in mods], eff,
                                            prob=t == "emotion")
            outputs[t] = out
            for j, m in enumerate(mods):
                mw[:, MODALITIES.index(m)] += share[:, j]
            counts += tot > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            mw = mw / counts[:, None]
        mw[counts == 0] = np.nan
        # confidence: the weighted evidence available relative to every modality at full confidence
        wsum = {m: np.mean([W[t].get(m, 0.0) for t in _TARGETS]) for m in MODALITIES}
        full = sum(wsum[m] for m in grid.modalities) or 1.0
        conf = sum(wsum[m] * grid.modalities[m].confidence for m in grid.modalities) / full
        return Prediction(emotion=outputs["emotion"], valence=outputs["valence"], arousal=outputs["arousal"],
                          modality_weight=mw, confidence=np.clip(conf, 0, 1) * (counts > 0))
