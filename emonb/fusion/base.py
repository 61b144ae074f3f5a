"""The fusion-method contract and the conversion of a prediction into the ``fused`` Dataset."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..errors import EmonbValueError
from ..schema import EMOTIONS, EMOTION_VALENCE_AROUSAL
from ._grid import MODALITIES, FusionGrid

#: Default per-modality weights of late fusion (and of the availability weights reported by early
#: fusion). Face and voice carry categorical evidence; physiology measures arousal only and text
#: valence only, so they get less say. Multiplied by each step's confidence.
DEFAULT_WEIGHTS: dict[str, float] = {"face": 1.0, "voice": 0.8, "physio": 0.5, "text": 0.5}


@dataclass
class Prediction:
    """What a fusion method returns for one grid; NaN where no modality had evidence."""

    emotion: np.ndarray  # (T, len(EMOTIONS))
    valence: np.ndarray  # (T,)
    arousal: np.ndarray  # (T,)
    modality_weight: np.ndarray  # (T, len(MODALITIES)), rows sum to 1 where anything is present
    confidence: np.ndarray  # (T,) in [0, 1]


class FusionMethod:
    """Base class of fusion methods (built-in and plugins).

    A method has a ``name``, says whether it must be ``trainable``-fitted before use, and
    implements :meth:`predict` on a :class:`~emonb.fusion._grid.FusionGrid`. Trainable methods
    implement :meth:`fit` on a list of grids and per-step targets. Learned state ends in ``_``
    (scikit-learn convention); the constructor only stores parameters.
    """

    name: str = ""
    trainable: bool = False
    needs_features: bool = False

    def fit(self, grids: list[FusionGrid], targets: list[tuple[np.ndarray, np.ndarray, np.ndarray]]):
        """Learn from grids with targets ``(emotion_index, valence, arousal)`` per step (-1/NaN = none)."""
        return self

    def predict(self, grid: FusionGrid) -> Prediction:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def is_fitted(self) -> bool:
        return any(k.endswith("_") and not k.startswith("_") for k in vars(self))

    def params(self) -> dict:
        """Constructor parameters, for provenance attrs."""
        return {k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_")}

    # persistence ---------------------------------------------------------------------------
    def save(self, path, *, overwrite: bool = False):
        """Save the (fitted) method to one ``.npz`` file that :func:`emonb.fusion.load` reads back.

        The file holds the configuration as JSON and the learned arrays (weights, scikit-learn
        coefficients and scaler statistics, torch parameters) as plain arrays: opening it cannot
        run code, unlike a pickle. See :mod:`emonb.fusion._persist` for the layout.

        Parameters
        ----------
        path : str or path
            File to write (``model.npz`` by convention; any name works). Written to a temporary
            sibling first and renamed into place.
        overwrite : bool
            Replace an existing file (refused by default).

        Returns
        -------
        pathlib.Path
            The file written.

        Raises
        ------
        EmonbValueError
            When the method holds something the safe format cannot store (for example a
            scikit-learn estimator outside :data:`emonb.fusion._persist.SKLEARN_CLASSES`).
        """
        from ._persist import write

        return write(self, path, overwrite=overwrite)

    def _to_saved(self) -> tuple[dict, dict]:
        """``(constructor parameters, learned state)`` for :meth:`save`.

        The defaults are :meth:`params` and every public attribute ending in ``_``. Override
        (with :meth:`_from_saved`) when the state holds objects other than numbers, text, arrays,
        lists, dicts or supported scikit-learn estimators.
        """
        state = {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}
        return self.params(), state

    @classmethod
    def _from_saved(cls, params: dict, state: dict) -> "FusionMethod":
        """Rebuild a method from what :meth:`_to_saved` returned (after a round trip through a file)."""
        try:
            obj = cls(**params)
        except TypeError as exc:
            raise EmonbValueError(f"the saved parameters do not fit {cls.__name__}: {exc}") from None
        for k, v in state.items():
            setattr(obj, k, v)
        return obj

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


class single_thread:
    """Context manager: BLAS/OpenMP and torch limited to one thread.

    The fusion models are tiny; on a shared laptop CPU, multi-threaded BLAS on such small matrices
    is many times slower than one thread (measured: 90 s vs 0.8 s for an early-fusion fit while
    other processes kept the cores busy).
    """

    def __enter__(self):
        self._limits = None
        self._torch = None
        try:
            from threadpoolctl import threadpool_limits

            self._limits = threadpool_limits(1)
        except ImportError:  # pragma: no cover - comes with scikit-learn
            pass
        import sys

        if "torch" in sys.modules:
            import torch

            self._torch = torch.get_num_threads()
            torch.set_num_threads(1)
        return self

    def __exit__(self, *exc):
        if self._limits is not None:
            self._limits.restore_original_limits()
        if self._torch is not None:
            import torch

            torch.set_num_threads(self._torch)
        return False


def check_training_classes(y: np.ndarray, needs: str) -> None:
    """Refuse training data with no labelled step, or with one class only (``needs`` says who)."""
    if y.size == 0:
        raise EmonbValueError("no annotated grid steps with any modality present to train on")
    classes = np.unique(y)
    if classes.size < 2:
        raise EmonbValueError(
            f"the training annotations hold one class only ({EMOTIONS[classes[0]]!r}); "
            f"{needs} needs at least two")


def load(path, *, trusted: bool = False) -> FusionMethod:
    """Load a fusion method saved with :meth:`FusionMethod.save`.

    Parameters
    ----------
    path : str or path
        The ``.npz`` file written by :meth:`FusionMethod.save`.
    trusted : bool
        Also read a pickle (joblib) file, the format earlier emonb versions saved. A pickle can
        run any code while it loads, so this is refused unless you pass ``trusted=True`` for a file
        you made or otherwise trust (a warning says so); re-save it with ``.save("model.npz")``.

    Raises
    ------
    EmonbFileError
        Naming the file: not found, a pickle (without ``trusted=True``), or not a fusion model.
    """
    from .._checks import check_file
    from ._persist import read

    p = check_file(path, what="fusion model file")
    return read(p, trusted=bool(trusted))


def availability_weights(grid: FusionGrid, weights: dict[str, float] | None = None) -> np.ndarray:
    """(T, M) share of each modality: weight x confidence, normalised per step (NaN where none)."""
    w = dict(DEFAULT_WEIGHTS, **(weights or {}))
    c = grid.confidence_matrix() * np.array([w.get(m, 0.0) for m in MODALITIES])
    s = c.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = c / s
    out[s[:, 0] <= 0] = np.nan
    return out


def va_from_emotion(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Valence and arousal implied by emotion probabilities (expected circumplex position)."""
    va = np.array([EMOTION_VALENCE_AROUSAL[e] for e in EMOTIONS])
    out = p @ va
    return out[:, 0], out[:, 1]


def to_dataset(grid: FusionGrid, pred: Prediction, method: FusionMethod, *, extra_attrs=None) -> xr.Dataset:
    """The ``fused`` node.

    Variables: ``fused_emotion(time, emotion)``, ``fused_valence(time)``, ``fused_arousal(time)``,
    ``fused_confidence(time)`` and ``modality_weight(time, modality)``. (A variable cannot be called
    ``emotion`` while ``emotion`` is its dimension, so the node's variables carry the ``fused_``
    prefix, following the ``<modality>_<quantity>`` naming.)
    """
    import json

    T = grid.time.size
    for name, arr, shape in (("emotion", pred.emotion, (T, len(EMOTIONS))), ("valence", pred.valence, (T,)),
                             ("arousal", pred.arousal, (T,)), ("confidence", pred.confidence, (T,)),
                             ("modality_weight", pred.modality_weight, (T, len(MODALITIES)))):
        if np.shape(arr) != shape:
            raise EmonbValueError(f"fusion method {method.name!r} returned {name} of shape "
                                  f"{np.shape(arr)}, expected {shape}")
    present = grid.present
    ds = xr.Dataset(
        {
            "fused_emotion": (("time", "emotion"), pred.emotion.astype(np.float32),
                        {"units": "1", "long_name": "fused emotion probability"}),
            "fused_valence": (("time",), pred.valence.astype(np.float32),
                        {"units": "1", "long_name": "fused valence (-1..1)"}),
            "fused_arousal": (("time",), pred.arousal.astype(np.float32),
                        {"units": "1", "long_name": "fused arousal (-1..1)"}),
            "modality_weight": (("time", "modality"), pred.modality_weight.astype(np.float32),
                                {"units": "1", "long_name": "share of each modality in the fused "
                                 "output (rows sum to 1; NaN where no modality had evidence)"}),
            "fused_confidence": (("time",), np.clip(pred.confidence, 0, 1).astype(np.float32),
                           {"units": "1", "long_name": "confidence of the fused output (0..1)"}),
        },
        coords={"time": ("time", grid.time, {"units": "s", "long_name": "session time"}),
                "emotion": list(EMOTIONS), "modality": list(MODALITIES)},
    )
    # the weights actually used (defaults filled in), so the result says what produced it
    weights = method._weights() if hasattr(method, "_weights") else \
        (getattr(method, "weights_", None) or getattr(method, "weights", None) or {})
    params = {k: (v if isinstance(v, (int, float, str, bool, type(None))) else repr(v))
              for k, v in method.params().items()}
    ds.attrs = {
        "model": f"emonb fusion: {method.name}", "model_version": "1", "model_license": "MIT",
        "method": method.name, "rate": grid.rate, "sampling_rate": grid.rate, "t0": float(grid.time[0]),
        "modalities_present": ",".join(present),
        "modalities_absent": ",".join(m for m in MODALITIES if m not in present),
        "weights": json.dumps(weights, default=float),
        "parameters": json.dumps(params, default=str),
        "device": getattr(method, "device_", "cpu"),
        "session_id": grid.session_id,
    }
    ds.attrs.update(extra_attrs or {})
    return ds
