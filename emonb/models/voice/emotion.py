"""Speech-emotion classifier runtime, in numpy: functionals head, optional log-mel CNN, temperature.

The weights file is a plain ``.npz`` (no pickle):

- core functionals head: ``feature_names``, ``labels``, ``mean``, ``scale``, ``n_layers``, ``W0``,
  ``b0``, ... (hidden layers ReLU);
- optional second functionals head (trained with perturbed copies): ``fa_mean``, ``fa_scale``,
  ``fa_W``, ``fa_b``, and ``mix``: the ensemble weights of (core head, second head, CNN);
- optional log-mel network: ``cnn_*`` arrays (:mod:`~emonb.models.voice.melcnn`) and
  ``cnn_weight`` (its share beside the session head; without ``mix`` also beside the core head);
- optional per-session head (speaker normalisation, see
  :mod:`~emonb.models.voice.calibration`): ``sn_W``, ``sn_b``, ``sn_pop_mean``, ``sn_pop_var``,
  ``sn_prior``;
- temperatures (scalars; 1 when absent) for each way the parts combine: ``temperature``
  (functionals + CNN, or functionals alone in a model without a CNN), ``temperature_functionals``,
  ``temperature_session`` (session head + CNN), ``temperature_session_functionals``;
- ``meta``: a JSON string with the training summary.
"""

from __future__ import annotations

import json

import numpy as np

from ..runtimes import ModelRuntime, softmax
from ...errors import EmonbModelError
from .features import FUNCTIONAL_NAMES

__all__ = ["VoiceEmotionModel", "build_emotion_model", "save_emotion_weights", "load_emotion_weights"]

_OPTIONAL_SCALARS = ("temperature", "temperature_functionals", "temperature_session",
                     "temperature_session_functionals", "cnn_weight", "sn_prior")


def save_emotion_weights(path, *, labels, feature_names, mean, scale, weights, biases, meta=None, extra=None):
    """Write a classifier to ``path`` as a pickle-free ``.npz``.

    ``extra`` holds the optional arrays (``cnn_*``, ``sn_*``, temperatures) named in the module
    docstring.
    """
    arrays = {
        "labels": np.asarray(list(labels), dtype=str),
        "feature_names": np.asarray(list(feature_names), dtype=str),
        "mean": np.asarray(mean, np.float32), "scale": np.asarray(scale, np.float32),
        "n_layers": np.asarray(len(weights)),
        "meta": np.asarray(json.dumps(meta or {}, sort_keys=True, default=float)),
    }
    for i, (w, b) in enumerate(zip(weights, biases)):
        arrays[f"W{i}"] = np.asarray(w, np.float32)
        arrays[f"b{i}"] = np.asarray(b, np.float32)
    for k, v in (extra or {}).items():
        if k in arrays:
            raise ValueError(f"extra array {k!r} clashes with a core array")
        arrays[k] = np.asarray(v)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def load_emotion_weights(path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as z:
            n = int(z["n_layers"])
            out = {
                "labels": [str(s) for s in z["labels"]],
                "feature_names": [str(s) for s in z["feature_names"]],
                "mean": z["mean"].astype(np.float32), "scale": z["scale"].astype(np.float32),
                "weights": [z[f"W{i}"] for i in range(n)], "biases": [z[f"b{i}"] for i in range(n)],
                "meta": json.loads(str(z["meta"])),
                "extra": {k: z[k] for k in z.files
                          if k.startswith(("cnn_", "sn_", "fa_")) or k in _OPTIONAL_SCALARS or k == "mix"},
            }
            return out
    except Exception as exc:
        raise EmonbModelError(f"speech-emotion weights {path} do not load: {exc}") from None


def _log_softmax(z):
    z = np.asarray(z, np.float64)
    m = np.max(z, axis=1, keepdims=True)
    return z - m - np.log(np.sum(np.exp(z - m), axis=1, keepdims=True))


class VoiceEmotionModel(ModelRuntime):
    """Functionals (and log-mel frames) -> calibrated emotion probabilities.

    Parameters
    ----------
    spec : ModelSpec
        Spec whose ``weights`` is an ``.npz`` written by :func:`save_emotion_weights`.
    """

    cpu_only = True  # numpy only: no device probing, no torch import

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
        ex = state["extra"]
        self.temperatures_ = {k: float(ex[k]) if k in ex else 1.0 for k in _OPTIONAL_SCALARS if k.startswith("temp")}
        w = float(ex["cnn_weight"]) if "cnn_weight" in ex else 0.5
        self.cnn_weight_ = w
        self.cnn_ = None
        if "cnn_n_conv" in ex:
            from .melcnn import MelCNNNumpy

            try:
                self.cnn_ = MelCNNNumpy(ex)
            except KeyError as exc:
                raise EmonbModelError(f"model {self.spec.name!r} ({path}): CNN array {exc} missing") from None
        self.fa_ = None
        if "fa_W" in ex:
            self.fa_ = {k: ex[f"fa_{k}"].astype(np.float64) for k in ("mean", "scale", "W", "b")}
        self.mix_ = tuple(float(v) for v in ex["mix"]) if "mix" in ex else (1.0 - w, 0.0, w)
        self.session_ = None
        if "sn_W" in ex:
            self.session_ = {"W": ex["sn_W"].astype(np.float64), "b": ex["sn_b"].astype(np.float64),
                             "pop_mean": ex["sn_pop_mean"].astype(np.float64),
                             "pop_var": ex["sn_pop_var"].astype(np.float64), "prior": float(ex["sn_prior"])}
        self.model_ = True

    # --- parts ---------------------------------------------------------------------------------

    @property
    def has_cnn(self) -> bool:
        """Whether the model has a log-mel network (then pass ``cnn_logits`` to :meth:`predict`)."""
        return self.load().cnn_ is not None

    @property
    def has_session_head(self) -> bool:
        """Whether the model supports per-session speaker normalisation (``session=`` in :meth:`predict`)."""
        return self.load().session_ is not None

    def cnn_logits(self, feats: dict, bounds) -> np.ndarray | None:
        """Log-mel network logits for frame ranges ``[a, b)`` of ``feats`` (None without a CNN).

        Parameters
        ----------
        feats : dict
            Frame features with ``logmel`` (n_frames, 40) and ``voice`` (n_frames,) bool.
        bounds : array-like (n, 2)
            Frame index ranges; the network pools over their voice frames (NaN rows without any).
        """
        self.load()
        if self.cnn_ is None:
            return None
        voice = np.asarray(feats["voice"], bool)
        # one pass over the recording serves every window and segment: keep it with the features
        key = ("_cnn_embedding", id(self), id(feats["logmel"]), voice.tobytes().__hash__())
        emb = feats.get(key)
        if emb is None:
            emb = self.cnn_.embed(feats["logmel"], voice)
            feats[key] = emb
        return self.cnn_.logits_from_embeddings(emb, self.cnn_.step_mask(voice), bounds)

    def session_stats(self, X: np.ndarray):
        """Shrunk speaker statistics (mean, sd) from one speaker's utterance functionals (k, n_functionals)."""
        from .calibration import speaker_stats

        self.load()
        if self.session_ is None:
            raise EmonbModelError(f"model {self.spec.name!r} has no per-session (speaker-normalised) head")
        s = self.session_
        return speaker_stats(X, s["pop_mean"], s["pop_var"], prior=s["prior"])

    # --- prediction ----------------------------------------------------------------------------

    def _functional_logits(self, X, session):
        if session is not None:
            if self.session_ is None:
                raise EmonbModelError(f"model {self.spec.name!r} has no per-session (speaker-normalised) head")
            mean, sd = session
            Z = np.clip(np.nan_to_num((X - mean) / sd, nan=0.0, posinf=0.0, neginf=0.0), -8.0, 8.0)
            return Z @ self.session_["W"] + self.session_["b"]
        Z = (X - self.mean_) / self.scale_
        h = np.clip(np.nan_to_num(Z, nan=0.0, posinf=0.0, neginf=0.0), -8.0, 8.0)
        for i, (w, b) in enumerate(zip(self.weights_, self.biases_)):
            h = h @ w + b
            if i < len(self.weights_) - 1:
                h = np.maximum(h, 0.0)
        return h

    def predict(self, X: np.ndarray, *, cnn_logits: np.ndarray | None = None, session=None) -> np.ndarray:
        """Calibrated emotion probabilities.

        Parameters
        ----------
        X : ndarray (n, n_functionals)
            Functionals in :data:`~emonb.models.voice.features.FUNCTIONAL_NAMES` order; NaN
            entries are imputed with the training mean. Rows that are all NaN give NaN.
        cnn_logits : ndarray (n, n_labels), optional
            From :meth:`cnn_logits` for the same stretches. A model with a log-mel network
            combines them with the functionals head; without them (or on NaN rows) the
            functionals head answers alone, with its own temperature.
        session : (mean, sd), optional
            Speaker statistics from :meth:`session_stats`: use the per-session head.

        Returns
        -------
        ndarray (n, n_labels) float32
        """
        self.load()
        X = np.atleast_2d(np.asarray(X, np.float64))
        empty = np.all(np.isnan(X), axis=1)
        key = "temperature_session" if session is not None else "temperature"
        parts = [_log_softmax(self._functional_logits(X, session))]
        if session is not None:
            weights = [1.0 - self.cnn_weight_ if self.cnn_ is not None else 1.0]
            w_cnn = self.cnn_weight_
        else:
            weights = [self.mix_[0]]
            w_cnn = self.mix_[2]
            if self.fa_ is not None:
                Z = np.clip(np.nan_to_num((X - self.fa_["mean"]) / self.fa_["scale"], nan=0.0, posinf=0.0,
                                          neginf=0.0), -8.0, 8.0)
                parts.append(_log_softmax(Z @ self.fa_["W"] + self.fa_["b"]))
                weights.append(self.mix_[1])
        lf = sum(w * p for w, p in zip(weights, parts)) / sum(weights)
        if self.cnn_ is not None:
            out = lf / self.temperatures_[key + "_functionals"]
            if cnn_logits is not None:
                lc = np.asarray(cnn_logits, np.float64)
                ok = np.isfinite(lc).all(axis=1)
                mixed = (sum(weights) * lf[ok] + w_cnn * _log_softmax(lc[ok])) / (sum(weights) + w_cnn)
                out[ok] = mixed / self.temperatures_[key]
        else:
            out = lf / self.temperatures_[key]
        p = softmax(out, axis=1)
        p[empty] = np.nan
        return p


def build_emotion_model(spec, *, device="auto", **_):
    return VoiceEmotionModel(spec, device=device)
