"""Learning the AU mapping against reference AU intensities (OpenFace 2), per AU.

Each AU is a linear function of a few inputs that move its muscle: the blendshapes its rule uses
and mesh geometry (:mod:`.au_features`), each with a sign fixed in advance from anatomy
(:data:`AU_INPUTS`: a brow that rises cannot lower AU01). The weights are non-negative least
squares on the sign-flipped, standardised inputs with a ridge penalty, so a weight can only switch
an input off, never turn it around; with so few faces to learn from this is what keeps the mapping
from memorising one face. Two sets of parameters are fitted per AU:

- ``static``: raw inputs -> OpenFace's static model (each frame alone; used for stills and short
  tracks);
- ``dynamic``: inputs minus the track's own median -> OpenFace's dynamic model (calibrated to the
  person's neutral, as OpenFace does for video).

The ridge strength and the choice between the learned function and the hand-set rule are made by
blocked cross-validation inside the training clip (contiguous quarters), never on the held-out clip.
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np

from .au_features import FEATURE_NAMES

__all__ = ["AU_INPUTS", "ALPHAS", "fit_au", "blocked_cv_r", "pearson"]

#: AU -> {input: sign}: which inputs may drive each AU, and in which direction.
AU_INPUTS = MappingProxyType({
    "AU01": {"browInnerUp": 1, "brow_inner_height": 1},
    "AU02": {"browOuterUpLeft": 1, "browOuterUpRight": 1, "brow_outer_height": 1},
    "AU04": {"browDownLeft": 1, "browDownRight": 1, "brow_inner_height": -1, "brow_distance": -1,
             "brow_mid_height": -1},
    "AU05": {"eyeWideLeft": 1, "eyeWideRight": 1, "eye_open": 1},
    "AU06": {"cheekSquintLeft": 1, "cheekSquintRight": 1, "eyeSquintLeft": 1, "eyeSquintRight": 1,
             "mouthSmileLeft": 1, "mouthSmileRight": 1},
    "AU07": {"eyeSquintLeft": 1, "eyeSquintRight": 1, "eye_open": -1},
    "AU09": {"noseSneerLeft": 1, "noseSneerRight": 1, "ala_height": 1, "upper_lip_gap": -1},
    "AU10": {"mouthUpperUpLeft": 1, "mouthUpperUpRight": 1, "upper_lip_gap": -1},
    "AU12": {"mouthSmileLeft": 1, "mouthSmileRight": 1, "corner_height": 1, "corner_vs_nose": 1},
    "AU14": {"mouthDimpleLeft": 1, "mouthDimpleRight": 1},
    "AU15": {"mouthFrownLeft": 1, "mouthFrownRight": 1, "corner_height": -1, "corner_vs_nose": -1},
    "AU17": {"mouthShrugLower": 1, "chin_height": -1},
    "AU20": {"mouthStretchLeft": 1, "mouthStretchRight": 1, "mouth_width": 1},
    "AU23": {"mouthPressLeft": 1, "mouthPressRight": 1, "mouthRollUpper": 1, "mouthRollLower": 1,
             "lip_thickness": -1},
    "AU25": {"lip_gap": 1, "jawOpen": 1},
    "AU26": {"jawOpen": 1, "jaw_drop": 1},
    "AU45": {"eyeBlinkLeft": 1, "eyeBlinkRight": 1, "eye_open": -1},
})

#: Ridge strengths tried (per sample, on standardised inputs).
ALPHAS = (0.01, 0.1, 1.0)
_FI = {n: i for i, n in enumerate(FEATURE_NAMES)}


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r, NaN when either side is constant (r is undefined there)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 3 or np.std(a) < 1e-6 or np.std(b) < 1e-6:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _columns(au: str) -> tuple[list[int], np.ndarray]:
    names = list(AU_INPUTS[au])
    return [_FI[n] for n in names], np.array([AU_INPUTS[au][n] for n in names], np.float64)


def fit_au(au: str, X: np.ndarray, y: np.ndarray, *, alpha: float) -> dict:
    """Fit one AU: ``X`` (N, len(FEATURE_NAMES)) features, ``y`` (N,) targets in [0, 1].

    Returns ``{"inputs", "signs", "mean", "scale", "weights", "intercept", "alpha"}`` (lists, JSON-ready).
    """
    from scipy.optimize import nnls

    cols, signs = _columns(au)
    Z = np.asarray(X, np.float64)[:, cols] * signs
    mu, sd = Z.mean(0), Z.std(0) + 1e-6
    Z = (Z - mu) / sd
    n, k = Z.shape
    A = np.vstack([Z, np.sqrt(alpha * n) * np.eye(k)])
    b = np.concatenate([y - y.mean(), np.zeros(k)])
    w, _ = nnls(A, b)
    return {"inputs": list(AU_INPUTS[au]), "signs": signs.tolist(), "mean": mu.tolist(), "scale": sd.tolist(),
            "weights": w.tolist(), "intercept": float(y.mean()), "alpha": float(alpha)}


def apply_fit(params: dict, X: np.ndarray) -> np.ndarray:
    """The fitted function on features (N, len(FEATURE_NAMES)), unclipped."""
    cols = [_FI[n] for n in params["inputs"]]
    Z = (np.asarray(X, np.float64)[:, cols] * np.asarray(params["signs"]) - params["mean"]) / params["scale"]
    return Z @ np.asarray(params["weights"]) + params["intercept"]


def blocked_cv_r(au: str, X: np.ndarray, y: np.ndarray, *, alpha: float, folds: int = 4) -> float:
    """Mean Pearson r over ``folds`` contiguous blocks, each predicted by a fit on the others."""
    n = len(y)
    edges = np.linspace(0, n, folds + 1).astype(int)
    rs = []
    for a, b in zip(edges[:-1], edges[1:]):
        test = np.zeros(n, bool)
        test[a:b] = True
        if np.std(y[~test]) < 1e-6:
            continue
        p = apply_fit(fit_au(au, X[~test], y[~test], alpha=alpha), X[test])
        rs.append(pearson(p, y[test]))
    rs = [r for r in rs if np.isfinite(r)]
    return float(np.mean(rs)) if rs else float("nan")
