"""Speech-emotion classifier runtime: standardised functionals into a small MLP, in numpy.

The weights file is a plain ``.npz`` (no pickle): ``feature_names``, ``labels``, ``mean``,
``scale``, ``n_layers``, ``W0``, ``b0``, ... and ``meta`` (a JSON string with the training
summary). Hidden layers use ReLU; the output layer is a softmax.
"""

from __future__ import annotations

import json

import numpy as np

from ..runtimes import ModelRuntime, softmax
from ...errors import EmonbModelError
from .features import FUNCTIONAL_NAMES

__all__ = ["VoiceEmotionModel", "build_emotion_model", "save_emotion_weights", "load_emotion_weights"]


def save_emotion_weights(path, *, labels, feature_names, mean, scale, weights, biases, meta=None):
    """Write a classifier to ``path`` as a pickle-free ``.npz``."""
    arrays = {
        "labels": np.asarray(list(labels), dtype=str),
        "feature_names": np.asarray(list(feature_names), dtype=str),
        "mean": np.asarray(mean, np.float32), "scale": np.asarray(scale, np.float32),
        "n_layers": np.asarray(len(weights)),
        "meta": np.asarray(json.dumps(meta or {}, sort_keys=True)),
    }
    for i, (w, b) in enumerate(zip(weights, biases)):
        arrays[f"W{i}"] = np.asarray(w, np.float32)
        arrays[f"b{i}"] = np.asarray(b, np.float32)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def load_emotion_weights(path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as z:
            n = int(z["n_layers"])
            return {
                "labels": [str(s) for s in z["labels"]],
                "feature_names": [str(s) for s in z["feature_names"]],
                "mean": z["mean"].astype(np.float32), "scale": z["scale"].astype(np.float32),
                "weights": [z[f"W{i}"] for i in range(n)], "biases": [z[f"b{i}"] for i in range(n)],
                "meta": json.loads(str(z["meta"])),
            }
    except Exception as exc:
        raise EmonbModelError(f"speech-emotion weights {path} do not load: {exc}") from None


class VoiceEmotionModel(ModelRuntime):
    """Functionals -> emotion probabilities.

    Parameters
    ----------
    spec : ModelSpec
        Spec whose ``weights`` is an ``.npz`` written by :func:`save_emotion_weights`.
    """

    cpu_only = True  # numpy / onnxruntime on the CPU: no device probing, no torch import

    def _load(self):
        path = self.spec.check_weights()
        state = load_emotion_weights(path)
        if tuple(state["feature_names"]) != FUNCTIONAL_NAMES:
            raise EmonbModelError(
                f"model {self.spec.name!r} ({path}) was trained on other features than this emonb "
                "version computes; retrain it with emonb.voice.train_emotion_model"
            )
        if self.spec.outputs and tuple(state["labels"]) != tuple(self.spec.outputs):
            raise EmonbModelError(
                f"model {self.spec.name!r}: weights have labels {state['labels']}, spec lists {list(self.spec.outputs)}"
            )
        self.labels_ = state["labels"]
        self.mean_, self.scale_ = state["mean"], state["scale"]
        self.weights_, self.biases_ = state["weights"], state["biases"]
        self.meta_ = state["meta"]
        self.model_ = True

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Emotion probabilities.

        Parameters
        ----------
        X : ndarray (n, n_functionals)
            Functionals in :data:`~emonb.models.voice.features.FUNCTIONAL_NAMES` order; NaN
            entries are imputed with the training mean. Rows that are all NaN give NaN.

        Returns
        -------
        ndarray (n, n_labels) float32
        """
        self.load()
        X = np.atleast_2d(np.asarray(X, np.float64))
        empty = np.all(np.isnan(X), axis=1)
        Z = (X - self.mean_) / self.scale_
        Z = np.nan_to_num(Z, nan=0.0, posinf=0.0, neginf=0.0)
        Z = np.clip(Z, -8.0, 8.0)
        h = Z
        for i, (w, b) in enumerate(zip(self.weights_, self.biases_)):
            h = h @ w + b
            if i < len(self.weights_) - 1:
                h = np.maximum(h, 0.0)
        p = softmax(h, axis=1)
        p[empty] = np.nan
        return p


def build_emotion_model(spec, *, device="auto", **_):
    return VoiceEmotionModel(spec, device=device)
