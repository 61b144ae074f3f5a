"""Face occlusion: which parts of a face (eyes, nose, mouth) a hand or an object covers.

A tiny CNN (:func:`OcclusionNet`) reads the 64x64 eye-aligned gray crop that
:func:`emonb.models.face.expression.align_crops` makes and returns, per region of
:data:`REGIONS`, the probability that the region is covered (independent sigmoids: a hand can
cover the mouth and the nose at once). It is trained in the project on FER2013 faces with
synthetic occluders pasted on them (``scripts/train_face_occlusion.py``; hands built from a palm,
fingers and skin cut from other faces, plus phones, cups, masks and blobs). The region boxes
(:data:`REGION_BOXES`) are in pixels of the 64x64 aligned crop, measured from the mean MediaPipe
mesh positions after alignment.

>>> from emonb.models.face.occlusion import predict_occlusion    # doctest: +SKIP
>>> p = predict_occlusion(crops)          # (N, 3): P(eyes covered), P(nose), P(mouth)
"""

from __future__ import annotations

import numpy as np

from ..._checks import require
from ...errors import EmonbModelError, EmonbValueError
from ..runtimes import ModelRuntime

__all__ = ["REGIONS", "REGION_BOXES", "CROP_SIZE", "OcclusionNet", "OcclusionModel", "build_occlusion",
           "predict_occlusion", "to_input"]

#: regions in the model's output order
REGIONS = ("eyes", "nose", "mouth")
#: side of the aligned crop (pixels)
CROP_SIZE = 64
#: region boxes (x0, y0, x1, y1), pixels of the 64x64 aligned crop, end exclusive: both eyes with the
#: lower brows; the lower nose (tip and nostrils); the lips with a small border
REGION_BOXES = {"eyes": (12, 14, 51, 26), "nose": (24, 24, 38, 38), "mouth": (21, 38, 42, 50)}
#: channels of the five strided/plain convolutions (64 -> 32 -> 16 -> 8 -> 8 -> 4 pixels)
DEFAULT_WIDTHS = (16, 32, 48, 64, 64)


def _torch():
    return require("torch", extra="face", purpose="the face occlusion model")


def _net_class():
    torch = _torch()
    nn = torch.nn

    def conv_bn(cin, cout, stride):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                             nn.ReLU(inplace=True))

    class Net(nn.Module):
        """Five 3x3 conv + BN + ReLU layers, then a linear read-out of the 4x4 map (keeps where)."""

        def __init__(self, widths=DEFAULT_WIDTHS, n_regions: int = len(REGIONS), dropout: float = 0.2):
            super().__init__()
            w = tuple(int(v) for v in widths)
            strides = (2, 2, 2, 1, 2)
            layers, cin = [], 1
            for cout, s in zip(w, strides):
                layers.append(conv_bn(cin, cout, s))
                cin = cout
            self.features = nn.Sequential(*layers)
            self.drop = nn.Dropout(dropout)
            self.fc = nn.Linear(cin * 4 * 4, n_regions)

        def forward(self, x):
            """Logits (N, n_regions) for crops (N, 1, 64, 64) float32 in [-1, 1]."""
            return self.fc(self.drop(self.features(x).flatten(1)))

    return Net


def OcclusionNet(**config):
    """A new occlusion network (``widths``, ``n_regions``, ``dropout``)."""
    return _net_class()(**config)


def to_input(crops: np.ndarray) -> np.ndarray:
    """uint8 crops (N, 64, 64) -> float32 (N, 1, 64, 64) in [-1, 1]."""
    return (np.asarray(crops, np.float32) * (2.0 / 255.0) - 1.0)[:, None]


class OcclusionModel(ModelRuntime):
    """Runtime of the occlusion network; :meth:`predict` returns (N, 3) probabilities.

    ``spec.params["widths"]`` holds the architecture. ``cpu_threads``: torch intra-op threads while
    predicting on the CPU (restored afterwards).
    """

    def __init__(self, spec, *, device: str = "auto", cpu_threads: int = 1):
        super().__init__(spec, device=device)
        self.cpu_threads = int(cpu_threads)

    def _load(self):
        torch = _torch()
        from .fernet import fuse_for_inference

        path = self.spec.check_weights()
        params = dict(self.spec.params or {})
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
            model = OcclusionNet(widths=params.get("widths", DEFAULT_WIDTHS), n_regions=len(self.spec.outputs))
            model.load_state_dict(state, strict=True)
        except Exception as exc:
            raise EmonbModelError(f"model {self.spec.name!r}: weights {path} do not load: {exc}") from None
        self.model_ = fuse_for_inference(model).to(self.device_).to(memory_format=torch.channels_last)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Probabilities (N, 3) for crops (N, 1, 64, 64) float32 in [-1, 1]."""
        import torch

        from .expression import torch_predict

        return torch.sigmoid(torch.from_numpy(torch_predict(self, x, softmax=False))).numpy()


def build_occlusion(spec, *, device: str = "auto", cpu_threads: int = 1, **_) -> OcclusionModel:
    return OcclusionModel(spec, device=device, cpu_threads=cpu_threads)


_RUNTIMES: dict[str, OcclusionModel] = {}


def predict_occlusion(crops: np.ndarray, *, device: str = "cpu", batch_size: int = 256) -> np.ndarray:
    """Probability that each face region is covered (by a hand, an object, ...).

    Parameters
    ----------
    crops : ndarray, shape (N, 64, 64), uint8
        Eye-aligned gray face crops, as :func:`emonb.models.face.expression.align_crops` makes them
        with ``size=64``.
    device : str
        Torch device (``"cpu"``, ``"cuda"``, ``"auto"``). The network is tiny; the CPU is fine.
    batch_size : int
        Crops per forward pass.

    Returns
    -------
    ndarray, shape (N, 3), float32
        Columns in :data:`REGIONS` order (eyes, nose, mouth), each in [0, 1]. The weights
        (``emonb_face_occlusion.pt``) load and are SHA-256 checked on the first call.
    """
    crops = np.asarray(crops)
    if crops.ndim != 3 or crops.shape[1:] != (CROP_SIZE, CROP_SIZE):
        raise EmonbValueError(f"predict_occlusion: crops must be (N, {CROP_SIZE}, {CROP_SIZE}) uint8 aligned "
                              f"face crops, got shape {crops.shape}")
    if crops.dtype != np.uint8:
        raise EmonbValueError(f"predict_occlusion: crops must be uint8 (0-255), got {crops.dtype}")
    if crops.shape[0] == 0:
        return np.zeros((0, len(REGIONS)), np.float32)
    runtime = _RUNTIMES.get(device)
    if runtime is None:
        from .. import get_model

        runtime = _RUNTIMES[device] = get_model("emonb-face-occlusion").create(device=device)
    x = to_input(crops)
    out = [runtime.predict(x[s:s + batch_size]) for s in range(0, len(x), max(int(batch_size), 1))]
    return np.concatenate(out).astype(np.float32)
