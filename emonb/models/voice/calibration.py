"""Temperature scaling, expected calibration error, and per-speaker (per-session) normalisation.

Temperature scaling divides the logits by one scalar ``T`` fitted by minimising the negative log
likelihood on validation clips (never on the clips it is judged on); it changes the confidence,
never the ranking of the classes. ECE uses 15 equal-width confidence bins.

Speaker normalisation is a per-session calibration: a session is one speaker, so the functionals
are standardised over that speaker's own speech. With few utterances the speaker statistics shrink
towards the training population's (a lone utterance is mostly judged against the population):

    mean_s = (k * mean_k + n0 * mean_pop) / (k + n0)
    var_s  = (k * var_k  + n0 * var_pop)  / (k + n0)

with ``k`` the number of the speaker's utterances (or windows) and ``n0`` the prior weight.
"""

from __future__ import annotations

import numpy as np

__all__ = ["log_softmax", "fit_temperature", "ece", "nll", "speaker_stats", "speaker_normalise"]


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def nll(logits: np.ndarray, y: np.ndarray, T: float = 1.0) -> float:
    """Mean negative log likelihood of integer labels ``y`` under ``softmax(logits / T)``."""
    lp = log_softmax(np.asarray(logits, np.float64) / T)
    return float(-lp[np.arange(len(y)), np.asarray(y, int)].mean())


def fit_temperature(logits: np.ndarray, y: np.ndarray, *, bounds=(0.05, 20.0)) -> float:
    """Temperature minimising the NLL of ``y`` (integer class indices) on validation logits."""
    from scipy.optimize import minimize_scalar

    logits = np.asarray(logits, np.float64)
    ok = np.isfinite(logits).all(axis=1)
    if ok.sum() < 2:
        return 1.0
    lo, hi = np.log(bounds[0]), np.log(bounds[1])
    res = minimize_scalar(lambda lt: nll(logits[ok], np.asarray(y)[ok], np.exp(lt)), bounds=(lo, hi),
                          method="bounded", options={"xatol": 1e-4})
    return float(np.exp(res.x))


def ece(probs: np.ndarray, y: np.ndarray, *, n_bins: int = 15) -> float:
    """Expected calibration error (top-label, ``n_bins`` equal-width bins), in [0, 1]."""
    probs = np.asarray(probs, np.float64)
    y = np.asarray(y, int)
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    b = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    total = 0.0
    for k in range(n_bins):
        m = b == k
        if m.any():
            total += m.sum() * abs(correct[m].mean() - conf[m].mean())
    return float(total / max(len(y), 1))


def speaker_stats(X: np.ndarray, pop_mean, pop_var, *, prior: float) -> tuple[np.ndarray, np.ndarray]:
    """Shrunk mean and standard deviation of one speaker's rows ``X`` (k, n_features).

    NaN entries are ignored per feature; with no finite value the population statistics are used.
    """
    import warnings

    X = np.atleast_2d(np.asarray(X, np.float64))
    k = np.sum(np.isfinite(X), axis=0).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        m = np.where(k > 0, np.nanmean(X, axis=0), 0.0)
        v = np.where(k > 1, np.nanvar(X, axis=0), 0.0)
    m = np.nan_to_num(m)
    v = np.nan_to_num(v)
    mean = (k * m + prior * pop_mean) / (k + prior)
    var = (k * v + prior * pop_var) / (k + prior)
    return mean, np.sqrt(np.maximum(var, 1e-12))


def speaker_normalise(X: np.ndarray, groups, pop_mean, pop_var, *, prior: float) -> np.ndarray:
    """Standardise each row over the rows of its own group (speaker or session), shrunk to the population."""
    X = np.asarray(X, np.float64)
    groups = np.asarray(groups, dtype=object)
    out = np.full_like(X, np.nan)
    for g in dict.fromkeys(groups.tolist()):
        m = groups == g
        mean, sd = speaker_stats(X[m], pop_mean, pop_var, prior=prior)
        out[m] = (X[m] - mean) / sd
    return out
