"""Generic runtimes: estimator style (constructor stores parameters, loaded state ends in ``_``).

:class:`ModelRuntime` is the base every model runtime follows. :class:`OnnxModel` and
:class:`TorchScriptModel` turn any user ONNX or TorchScript file plus a label list into a model
that outputs class probabilities.
"""

from __future__ import annotations

import threading

import numpy as np

from .._checks import require
from ..errors import EmonbModelError
from .device import onnx_providers, resolve_device

__all__ = ["ModelRuntime", "OnnxModel", "TorchScriptModel", "softmax"]


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    x = x - np.nanmax(x, axis=axis, keepdims=True)
    e = np.exp(x)
    return (e / e.sum(axis=axis, keepdims=True)).astype(np.float32)


def _as_probabilities(out: np.ndarray) -> np.ndarray:
    """Return rows that sum to one: pass probabilities through, softmax logits."""
    out = np.asarray(out, dtype=np.float32)
    if out.ndim == 1:
        out = out[None]
    ok = np.all(out >= 0) and np.allclose(out.sum(axis=-1), 1.0, atol=1e-3)
    return out if ok else softmax(out)


class ModelRuntime:
    """Base class: stores the spec and parameters; :meth:`load` fills ``*_`` attributes once.

    Runtimes that only ever run on the CPU set ``cpu_only = True``: they skip device probing (which
    would import torch) and report ``device="cpu"``.
    """

    cpu_only = False

    def __init__(self, spec, *, device: str = "auto"):
        self.spec = spec
        self.device = device

    @property
    def loaded(self) -> bool:
        return getattr(self, "model_", None) is not None

    def load(self):
        if not self.loaded:
            with _LOAD_LOCK:
                if not self.loaded:
                    self.device_ = "cpu" if self.cpu_only else resolve_device(self.device)
                    self._load()
        return self

    def _load(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def provenance(self) -> dict:
        device = "cpu" if self.cpu_only else getattr(self, "device_", None) or resolve_device(self.device)
        return self.spec.provenance(device=device)

    def __repr__(self) -> str:
        state = "loaded" if self.loaded else "not loaded"
        return f"<{type(self).__name__} {self.spec.name!r} ({self.spec.runtime}, {state})>"


_LOAD_LOCK = threading.RLock()


def _check_labels(spec, n_out: int, path) -> None:
    if spec.outputs and n_out != len(spec.outputs):
        raise EmonbModelError(
            f"model {spec.name!r} ({path}) outputs {n_out} values but its spec lists "
            f"{len(spec.outputs)} labels {list(spec.outputs)}"
        )


class OnnxModel(ModelRuntime):
    """Any ONNX classifier: input (N, ...) float32, output (N, n_labels) logits or probabilities."""

    def _session_options(self, ort):
        """ONNX Runtime session options (``None``: its defaults); runtimes override this."""
        return None

    def _load(self):
        ort = require("onnxruntime", extra="face", purpose="ONNX models")
        path = self.spec.check_weights()
        try:
            sess = ort.InferenceSession(str(path), self._session_options(ort), providers=onnx_providers(self.device_))
        except Exception as exc:
            raise EmonbModelError(f"model {self.spec.name!r}: ONNX file {path} does not load: {exc}") from None
        self.input_name_ = sess.get_inputs()[0].name
        self.input_shape_ = sess.get_inputs()[0].shape
        shape = sess.get_outputs()[0].shape
        if shape and isinstance(shape[-1], int):
            _check_labels(self.spec, shape[-1], path)
        self.model_ = sess

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities, shape (N, n_labels)."""
        self.load()
        x = np.ascontiguousarray(x, dtype=np.float32)
        try:
            out = self.model_.run(None, {self.input_name_: x})[0]
        except Exception as exc:
            raise EmonbModelError(
                f"model {self.spec.name!r} failed on input of shape {x.shape} "
                f"(model expects {self.input_shape_}): {exc}"
            ) from None
        _check_labels(self.spec, out.shape[-1], self.spec.weights_path)
        return _as_probabilities(out)


class TorchScriptModel(ModelRuntime):
    """Any TorchScript classifier: input (N, ...) float32, output (N, n_labels)."""

    def _load(self):
        torch = require("torch", extra="face", purpose="TorchScript models")
        path = self.spec.check_weights()
        try:
            m = torch.jit.load(str(path), map_location=self.device_)
        except Exception as exc:
            raise EmonbModelError(f"model {self.spec.name!r}: TorchScript file {path} does not load: {exc}") from None
        m.eval()
        self.model_ = m

    def predict(self, x: np.ndarray) -> np.ndarray:
        import torch

        self.load()
        t = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32), device=self.device_)
        try:
            with torch.inference_mode():
                out = self.model_(t)
        except Exception as exc:
            raise EmonbModelError(f"model {self.spec.name!r} failed on input of shape {tuple(t.shape)}: {exc}") from None
        out = out.float().cpu().numpy()
        _check_labels(self.spec, out.shape[-1], self.spec.weights_path)
        return _as_probabilities(out)


def build_onnx(spec, *, device="auto", **_):
    return OnnxModel(spec, device=device)


def build_torchscript(spec, *, device="auto", **_):
    return TorchScriptModel(spec, device=device)
