"""Expression classification: aligned face crops and the mini-Xception runtime.

Any expression model works here as long as it takes gray (or RGB) crops and returns class
scores: the built-in :class:`MiniXceptionModel`, or a user ONNX/TorchScript file registered with
:func:`emonb.models.model_from_file` (input ``(N, C, H, W)`` float32; ``C`` is 1 unless the spec's
``params["channels"]`` says 3; values in [-1, 1] unless ``params["input_range"] == "0-1"``).
"""

from __future__ import annotations

import numpy as np

from ..._checks import require
from ...errors import EmonbModelError
from ...schema import EMOTION_ALIASES, EMOTIONS
from ..runtimes import ModelRuntime

__all__ = [
    "LEFT_EYE",
    "RIGHT_EYE",
    "MiniXceptionModel",
    "align_crops",
    "build_mini_xception",
    "crop_sharpness",
    "predict_expression",
]

# Mesh indices of the eye corners (subject's right eye appears on the image left).
RIGHT_EYE = (33, 133)
LEFT_EYE = (362, 263)


def _eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r = landmarks[:, list(RIGHT_EYE), :2].mean(axis=1)
    l_ = landmarks[:, list(LEFT_EYE), :2].mean(axis=1)
    return r, l_


def align_crops(gray: np.ndarray, landmarks: np.ndarray, *, size: int = 64, margin: float = 0.1,
                oversample: int = 2) -> np.ndarray:
    """Face crops rotated so the eye line is horizontal.

    Parameters
    ----------
    gray : ndarray, shape (H, W), uint8
        The frame in grayscale.
    landmarks : ndarray, shape (F, 478, 3)
        Mesh points in pixels of ``gray``.
    size : int
        Output side in pixels.
    margin : float
        Extra border around the rotated mesh's bounding square, as a fraction of its side.
    oversample : int
        Warp at ``oversample * size`` and shrink with area averaging (less aliasing).

    Returns
    -------
    ndarray, shape (F, size, size), uint8
    """
    import cv2

    n = landmarks.shape[0]
    out = np.zeros((n, size, size), np.uint8)
    if n == 0:
        return out
    r, l_ = _eye_centres(landmarks)
    d = l_ - r
    angles = np.arctan2(d[:, 1], d[:, 0])
    big = size * max(int(oversample), 1)
    for f in range(n):
        xy = landmarks[f, :, :2].astype(np.float64)
        c, s = np.cos(-angles[f]), np.sin(-angles[f])
        centre = xy.mean(axis=0)
        rot = (xy - centre) @ np.array([[c, s], [-s, c]])  # rotate by -angle about centre
        lo, hi = rot.min(axis=0), rot.max(axis=0)
        mid = (lo + hi) / 2
        side = max(hi - lo) * (1 + 2 * margin)
        if not np.isfinite(side) or side < 2:
            continue
        scale = big / side
        # source = R(angle) @ (dst/scale - big/2/scale + mid) + centre
        ca, sa = np.cos(angles[f]), np.sin(angles[f])
        R = np.array([[ca, -sa], [sa, ca]])
        A = R / scale
        b = R @ (mid - big / (2 * scale)) + centre
        M = np.hstack([A, b[:, None]])
        crop = cv2.warpAffine(gray, M, (big, big), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE)
        out[f] = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA) if big != size else crop
    return out


def crop_sharpness(crops: np.ndarray) -> np.ndarray:
    """Variance of the Laplacian of each crop (F, H, W) uint8: low = blurred. Returns (F,)."""
    import cv2

    return np.array([cv2.Laplacian(c, cv2.CV_32F).var() for c in crops], np.float32)


class MiniXceptionModel(ModelRuntime):
    """mini-Xception expression classifier; :meth:`predict` returns (N, 7) probabilities.

    Parameters
    ----------
    spec : ModelSpec
    device : str
    cpu_threads : int
        torch intra-op threads used on the CPU while predicting (restored afterwards). One thread
        is fastest here because MediaPipe runs beside it; more threads oversubscribe small CPUs.
    """

    def __init__(self, spec, *, device: str = "auto", cpu_threads: int = 1):
        super().__init__(spec, device=device)
        self.cpu_threads = int(cpu_threads)

    def _load(self):
        torch = require("torch", extra="face", purpose="the expression model")
        from .xception import MiniXception

        path = self.spec.check_weights()
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
            model = MiniXception(n_classes=len(self.spec.outputs) or 7)
            model.load_state_dict(state, strict=True)
        except Exception as exc:
            raise EmonbModelError(f"model {self.spec.name!r}: weights {path} do not load: {exc}") from None
        from .xception import fuse_batchnorm

        model = fuse_batchnorm(model)
        self.model_ = model.to(self.device_).to(memory_format=torch.channels_last)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Probabilities (N, 7) for crops (N, 1, 64, 64) float32 in [-1, 1]."""
        return torch_predict(self, x, softmax=False)


def torch_predict(runtime, x: np.ndarray, *, softmax: bool) -> np.ndarray:
    """Run a loaded torch crop classifier (``runtime.model_``) on crops (N, 1, H, W) float32.

    On the CPU it runs with ``runtime.cpu_threads`` torch threads (restored afterwards);
    ``softmax`` turns the network's logits into probabilities.
    """
    import torch

    runtime.load()
    x = np.asarray(x, np.float32)
    if x.ndim == 3:
        x = x[:, None]
    if x.shape[0] == 0:
        return np.zeros((0, len(runtime.spec.outputs)), np.float32)
    t = torch.from_numpy(np.ascontiguousarray(x)).to(runtime.device_)
    t = t.contiguous(memory_format=torch.channels_last)
    on_cpu = str(runtime.device_).startswith("cpu") and runtime.cpu_threads > 0
    before = torch.get_num_threads()
    if on_cpu and before != runtime.cpu_threads:
        torch.set_num_threads(runtime.cpu_threads)
    try:
        with torch.inference_mode():
            out = runtime.model_(t).float()
            if softmax:
                out = torch.softmax(out, dim=1)
    finally:
        if on_cpu and before != runtime.cpu_threads:
            torch.set_num_threads(before)
    return out.cpu().numpy()


def build_mini_xception(spec, *, device: str = "auto", cpu_threads: int = 1, **_) -> MiniXceptionModel:
    return MiniXceptionModel(spec, device=device, cpu_threads=cpu_threads)


def _label_matrix(spec) -> np.ndarray:
    """(n_outputs, 7) matrix that sums model outputs into :data:`EMOTIONS`."""
    labels = spec.outputs
    if not labels:
        raise EmonbModelError(f"expression model {spec.name!r} has no output labels")
    mat = np.zeros((len(labels), len(EMOTIONS)), np.float32)
    for i, lab in enumerate(labels):
        canon = spec.label_map.get(lab) or EMOTION_ALIASES.get(str(lab).strip().lower())
        if canon in EMOTIONS:
            mat[i, EMOTIONS.index(canon)] = 1.0
    if mat.sum() == 0:
        raise EmonbModelError(
            f"expression model {spec.name!r}: none of its labels {list(labels)} maps onto {EMOTIONS}")
    return mat


def predict_expression(runtime, crops: np.ndarray, *, flip: bool = False, batch_size: int = 64) -> np.ndarray:
    """Expression probabilities over :data:`EMOTIONS` for gray crops.

    Parameters
    ----------
    runtime : model runtime with ``predict`` and ``spec``
    crops : ndarray, shape (N, H, W), uint8
        Gray face crops at the model's input size.
    flip : bool
        Average with the horizontally flipped crops (test-time augmentation).

    Returns
    -------
    ndarray, shape (N, 7), float32, rows summing to 1 (NaN rows where a crop is missing).
    """
    spec = runtime.spec
    n = crops.shape[0]
    out = np.full((n, len(EMOTIONS)), np.nan, np.float32)
    if n == 0:
        return out
    params = spec.params or {}
    x = crops.astype(np.float32) / 255.0
    if params.get("input_range", "-1-1") != "0-1":
        x = x * 2.0 - 1.0
    x = x[:, None]
    if int(params.get("channels", 1)) == 3:
        x = np.repeat(x, 3, axis=1)
    mat = _label_matrix(spec)
    probs = []
    for s in range(0, n, max(int(batch_size), 1)):
        xb = x[s:s + batch_size]
        p = runtime.predict(xb)
        if flip:
            p = (p + runtime.predict(xb[..., ::-1].copy())) / 2
        probs.append(np.asarray(p, np.float32))
    p = np.concatenate(probs)
    if p.shape[1] != mat.shape[0]:
        raise EmonbModelError(f"expression model {spec.name!r} returned {p.shape[1]} scores for "
                              f"{mat.shape[0]} labels {list(spec.outputs)}")
    p = p @ mat
    s = p.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[:] = p / s
    return out
