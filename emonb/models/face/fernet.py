"""emonb's own expression network: a small residual CNN on 48x48 gray face crops (FER2013 size).

The network is trained in the project (:mod:`emonb.models.face.train_expression`,
``scripts/train_face_expression.py``). Its input is a 48x48 crop scaled to [-1, 1], so a FER-style
48x48 face goes in with no resizing; its outputs are the seven :data:`emonb.schema.EMOTIONS` in
that order. The calibration temperature fitted on the validation split is stored with the weights
(buffer ``temperature``) and applied in :meth:`FerNet.forward`, so every probability emonb shows is
the calibrated one.
"""

from __future__ import annotations

import numpy as np

from ..._checks import require
from ...errors import EmonbModelError
from ..runtimes import ModelRuntime, OnnxModel

__all__ = ["FerNet", "FerNetModel", "FerNetInt8Model", "build_fernet", "build_fernet_int8", "DEFAULT_WIDTHS",
           "DEFAULT_BLOCKS"]

#: channels of the stem and of the three stages (48 -> 24 -> 12 -> 6 pixels)
DEFAULT_WIDTHS = (32, 48, 96, 192)
#: residual blocks per stage
DEFAULT_BLOCKS = (1, 1, 1)


def _torch():
    return require("torch", extra="face", purpose="the expression model")


def _net_class():
    torch = _torch()
    nn = torch.nn

    def conv_bn(cin, cout, stride=1, k=3, relu=True):
        layers = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]
        return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)

    class Residual(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.a = conv_bn(c, c)
            self.b = conv_bn(c, c, relu=False)
            self.act = nn.ReLU(inplace=True)

        def forward(self, x):
            return self.act(x + self.b(self.a(x)))

    class Net(nn.Module):
        """Stem, three strided stages of residual blocks, a 1x1 head, global pooling, linear."""

        def __init__(self, widths=DEFAULT_WIDTHS, blocks=DEFAULT_BLOCKS, head: int = 256,
                     n_classes: int = 7, dropout: float = 0.3):
            super().__init__()
            w = tuple(int(v) for v in widths)
            layers = [conv_bn(1, w[0]), conv_bn(w[0], w[1], 2)]
            for i, n in enumerate(blocks):
                if i > 0:
                    layers.append(conv_bn(w[i], w[i + 1], 2))
                layers += [Residual(w[i + 1]) for _ in range(int(n))]
            layers.append(conv_bn(w[len(blocks)], head, k=1))
            self.features = nn.Sequential(*layers)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.drop = nn.Dropout(dropout)
            self.fc = nn.Linear(head, n_classes)
            self.register_buffer("temperature", torch.ones(()))

        def logits(self, x):
            """Uncalibrated class scores (N, n_classes) for crops (N, 1, 48, 48) in [-1, 1]."""
            return self.fc(self.drop(self.pool(self.features(x)).flatten(1)))

        def forward(self, x):
            """Calibrated logits: :meth:`logits` divided by the fitted temperature."""
            return self.logits(x) / self.temperature

    return Net


def FerNet(**config):
    """A new :class:`FerNet` network (``widths``, ``blocks``, ``head``, ``n_classes``, ``dropout``)."""
    return _net_class()(**config)


def fuse_for_inference(model):
    """The model in eval mode with every conv + batch norm pair folded into one conv (same outputs)."""
    torch = _torch()
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    model.eval()
    for module in model.modules():
        if isinstance(module, torch.nn.Sequential) and len(module) >= 2 \
                and isinstance(module[0], torch.nn.Conv2d) and isinstance(module[1], torch.nn.BatchNorm2d):
            module[0] = fuse_conv_bn_eval(module[0], module[1])
            module[1] = torch.nn.Identity()
    return model


class FerNetModel(ModelRuntime):
    """Runtime of the emonb expression network; :meth:`predict` returns calibrated (N, 7) probabilities.

    ``spec.params`` holds the architecture (``widths``, ``blocks``, ``head``). ``cpu_threads``: torch
    intra-op threads while predicting on the CPU (one is fastest beside MediaPipe).
    """

    def __init__(self, spec, *, device: str = "auto", cpu_threads: int = 1):
        super().__init__(spec, device=device)
        self.cpu_threads = int(cpu_threads)

    def _load(self):
        torch = _torch()
        path = self.spec.check_weights()
        params = dict(self.spec.params or {})
        config = {k: params[k] for k in ("widths", "blocks", "head") if k in params}
        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True)
            model = FerNet(n_classes=len(self.spec.outputs) or 7, **config)
            model.load_state_dict(state, strict=True)
        except Exception as exc:
            raise EmonbModelError(f"model {self.spec.name!r}: weights {path} do not load: {exc}") from None
        model = fuse_for_inference(model)
        self.model_ = model.to(self.device_).to(memory_format=torch.channels_last)

    @property
    def temperature(self) -> float:
        self.load()
        return float(self.model_.temperature)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (N, 7) for crops (N, 1, 48, 48) float32 in [-1, 1]."""
        from .expression import torch_predict

        return torch_predict(self, x, softmax=True)


def build_fernet(spec, *, device: str = "auto", cpu_threads: int = 1, **_) -> FerNetModel:
    return FerNetModel(spec, device=device, cpu_threads=cpu_threads)


class FerNetInt8Model(OnnxModel):
    """The network quantized to 8-bit integers (:mod:`emonb.models.face.quantize_expression`), run by
    ONNX Runtime on the CPU with ``cpu_threads`` threads; :meth:`predict` returns calibrated (N, 7)
    probabilities (the temperature is the graph's last operation)."""

    cpu_only = True

    def __init__(self, spec, *, device: str = "cpu", cpu_threads: int = 1):
        super().__init__(spec, device="cpu")
        self.cpu_threads = int(cpu_threads)

    def _session_options(self, ort):
        so = ort.SessionOptions()
        so.intra_op_num_threads = so.inter_op_num_threads = max(1, self.cpu_threads)
        return so


def build_fernet_int8(spec, *, device: str = "cpu", cpu_threads: int = 1, **_) -> FerNetInt8Model:
    return FerNetInt8Model(spec, device=device, cpu_threads=cpu_threads)
