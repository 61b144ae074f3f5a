"""A small convolutional network on log-mel frames: torch for training, numpy for inference.

Input: the 40-band log-mel spectrum (dB) that :func:`~emonb.models.voice.features.frame_features`
computes on the 10 ms grid anyway (so the network adds no front end). Each frame is referenced to
the level of the surrounding speech (mean log-mel energy over the voice frames within
``REF_RADIUS_S``; gain-invariant), floored at -60 dB, and standardised per band.

Network (:data:`DEFAULT_ARCH`): four 3x3 convolution blocks (batch norm, ReLU; 2x2 max-pooling
after the first three, so the last block runs every 80 ms on 5 bands), a mean over bands, then
masked mean and standard-deviation pooling over the speech frames of a window, and a linear layer
to the classes. Everything before the pooling is a convolution, so a long recording is run once
(in overlapping blocks) and every sliding window pools from the same 80 ms embeddings.

Weights travel as arrays (batch norm folded into the convolutions), run in numpy here; no torch at
inference time, no pickle.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DEFAULT_ARCH", "STRIDE", "reference_level", "normalise_logmel", "MelCNNNumpy",
           "build_torch_net", "export_torch_net"]

#: channel widths of the four convolution blocks
DEFAULT_ARCH = (8, 16, 32, 32)
STRIDE = 8  # frames per embedding step (three 2x poolings)
REF_RADIUS_S = 1.5
FLOOR_DB = -60.0
_CONTEXT = 64  # frames of context on each side of a block (receptive field is about +-22)


def reference_level(logmel: np.ndarray, voice: np.ndarray, *, radius_frames: int | None = None) -> np.ndarray:
    """Mean log-mel energy (dB) over the voice frames near each frame (n_frames,), NaN without any.

    ``radius_frames=None`` uses every voice frame of the input (one value for a clip).
    """
    e = np.asarray(logmel, np.float64).mean(axis=1)
    v = np.asarray(voice, bool)
    if radius_frames is None:
        ref = e[v].mean() if v.any() else np.nan
        return np.full(len(e), ref)
    c_e = np.concatenate([[0.0], np.cumsum(np.where(v, e, 0.0))])
    c_n = np.concatenate([[0], np.cumsum(v)])
    i = np.arange(len(e))
    a = np.clip(i - radius_frames, 0, len(e))
    b = np.clip(i + radius_frames + 1, 0, len(e))
    n = c_n[b] - c_n[a]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (c_e[b] - c_e[a]) / np.maximum(n, 1), np.nan)


def normalise_logmel(logmel, ref, band_mean, band_scale) -> np.ndarray:
    """(n_frames, n_mels) network input: level-referenced, floored, standardised per band."""
    x = np.asarray(logmel, np.float32) - np.nan_to_num(np.asarray(ref, np.float32), nan=0.0)[:, None]
    x = np.maximum(x, FLOOR_DB)
    return ((x - band_mean) / band_scale).astype(np.float32)


def _conv3x3(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """'Same' 3x3 convolution + bias + ReLU. x (C, T, F), w (O, C, 3, 3) -> (O, T, F)."""
    C, T, F = x.shape
    xp = np.zeros((C, T + 2, F + 2), np.float32)
    xp[:, 1:-1, 1:-1] = x
    patches = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(1, 2))  # (C, T, F, 3, 3)
    cols = np.ascontiguousarray(patches.transpose(1, 2, 0, 3, 4)).reshape(T * F, C * 9)
    out = cols @ w.reshape(w.shape[0], -1).T + b
    np.maximum(out, 0.0, out=out)
    return out.reshape(T, F, -1).transpose(2, 0, 1)


def _pool2(x: np.ndarray) -> np.ndarray:
    C, T, F = x.shape
    T2, F2 = T // 2, F // 2
    return x[:, :T2 * 2, :F2 * 2].reshape(C, T2, 2, F2, 2).max(axis=(2, 4))


class MelCNNNumpy:
    """Inference of the exported network (arrays from :func:`export_torch_net`)."""

    def __init__(self, arrays: dict):
        self.band_mean = np.asarray(arrays["cnn_band_mean"], np.float32)
        self.band_scale = np.asarray(arrays["cnn_band_scale"], np.float32)
        n = int(arrays["cnn_n_conv"])
        self.convs = [(np.asarray(arrays[f"cnn_conv{i}_w"], np.float32), np.asarray(arrays[f"cnn_conv{i}_b"], np.float32))
                      for i in range(n)]
        self.fc_w = np.asarray(arrays["cnn_fc_w"], np.float32)  # (n_classes, 2 * width)
        self.fc_b = np.asarray(arrays["cnn_fc_b"], np.float32)

    def _embed_block(self, x: np.ndarray) -> np.ndarray:
        h = x[None]
        for i, (w, b) in enumerate(self.convs):
            h = _conv3x3(h, w, b)
            if i < len(self.convs) - 1:
                h = _pool2(h)
        return h.mean(axis=2).T  # (T / 8, width)

    def embed(self, logmel: np.ndarray, voice: np.ndarray, *, ref=None, block: int = 4096) -> np.ndarray:
        """80 ms embeddings of a whole input, (ceil(n_frames / 8), width) float32.

        ``ref`` is the per-frame reference level (default: :func:`reference_level` with a
        ``REF_RADIUS_S`` radius). Long inputs run in overlapping blocks of ``block`` frames.
        """
        n = len(logmel)
        if ref is None:
            ref = reference_level(logmel, voice, radius_frames=int(REF_RADIUS_S * 100))
        x = normalise_logmel(logmel, ref, self.band_mean, self.band_scale)
        n_out = -(-n // STRIDE)
        pad = n_out * STRIDE - n
        if pad:
            x = np.concatenate([x, np.zeros((pad, x.shape[1]), np.float32)])
        out = np.empty((n_out, self.convs[-1][0].shape[0]), np.float32)
        step = block // STRIDE * STRIDE
        for a in range(0, n_out * STRIDE, step):
            lo = max(0, a - _CONTEXT)
            hi = min(len(x), a + step + _CONTEXT)
            e = self._embed_block(x[lo:hi])
            k0 = (a - lo) // STRIDE
            k1 = min(n_out, (a + step) // STRIDE)
            out[a // STRIDE:k1] = e[k0:k0 + k1 - a // STRIDE]
        return out

    @staticmethod
    def step_mask(voice: np.ndarray) -> np.ndarray:
        """Voice mask on the 80 ms embedding grid (a step counts when any of its frames is voice)."""
        v = np.asarray(voice, bool)
        n_out = -(-len(v) // STRIDE)
        vp = np.zeros(n_out * STRIDE, bool)
        vp[:len(v)] = v
        return vp.reshape(n_out, STRIDE).any(axis=1)

    def logits_from_embeddings(self, emb: np.ndarray, mask: np.ndarray, bounds) -> np.ndarray:
        """Logits per frame range ``[a, b)`` (10 ms frames), pooling the masked 80 ms steps.

        Rows with no voice step are NaN.
        """
        m = mask.astype(np.float64)
        c1 = np.concatenate([np.zeros((1, emb.shape[1])), np.cumsum(emb * m[:, None], axis=0)])
        c2 = np.concatenate([np.zeros((1, emb.shape[1])), np.cumsum((emb.astype(np.float64) ** 2) * m[:, None], axis=0)])
        cn = np.concatenate([[0.0], np.cumsum(m)])
        bounds = np.asarray(bounds, np.int64).reshape(-1, 2)
        a = np.clip(bounds[:, 0] // STRIDE, 0, len(emb))
        b = np.clip(-(-bounds[:, 1] // STRIDE), 0, len(emb))
        n = (cn[b] - cn[a])[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = (c1[b] - c1[a]) / n
            var = np.maximum((c2[b] - c2[a]) / n - mean ** 2, 0.0)
        pooled = np.concatenate([mean, np.sqrt(var + 1e-5)], axis=1)
        out = pooled @ self.fc_w.T + self.fc_b
        out[n[:, 0] <= 0] = np.nan
        return out.astype(np.float32)


# --- torch side (training only) ------------------------------------------------------------------

def build_torch_net(n_classes: int, *, arch=DEFAULT_ARCH, n_mels: int = 40, dropout: float = 0.3):
    """The training network (a ``torch.nn.Module``); torch is imported here, not at emonb import."""
    import torch
    from torch import nn

    class MelCNN(nn.Module):
        def __init__(self):
            super().__init__()
            layers, c = [], 1
            for i, w in enumerate(arch):
                layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
                if i < len(arch) - 1:
                    layers.append(nn.MaxPool2d(2))
                c = w
            self.features = nn.Sequential(*layers)
            self.drop = nn.Dropout(dropout)
            self.fc = nn.Linear(2 * c, n_classes)

        def embed(self, x):  # x (B, T, F) -> (B, T/8, C)
            return self.features(x[:, None]).mean(dim=3).transpose(1, 2)

        def forward(self, x, mask):  # mask (B, T/8) float
            e = self.embed(x)
            m = mask[:, : e.shape[1], None]
            n = m.sum(dim=1).clamp_min(1.0)
            mean = (e * m).sum(dim=1) / n
            var = ((e ** 2) * m).sum(dim=1) / n - mean ** 2
            pooled = torch.cat([mean, torch.sqrt(var.clamp_min(0.0) + 1e-5)], dim=1)
            return self.fc(self.drop(pooled))

    return MelCNN()


def export_torch_net(net, band_mean, band_scale) -> dict:
    """Arrays for :class:`MelCNNNumpy` (batch norm folded into the convolution weights)."""
    import torch
    from torch import nn

    out = {"cnn_band_mean": np.asarray(band_mean, np.float32), "cnn_band_scale": np.asarray(band_scale, np.float32)}
    mods = list(net.features)
    k = 0
    with torch.no_grad():
        for i, m in enumerate(mods):
            if isinstance(m, nn.Conv2d):
                bn = mods[i + 1]
                s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                out[f"cnn_conv{k}_w"] = (m.weight * s[:, None, None, None]).numpy().astype(np.float32)
                out[f"cnn_conv{k}_b"] = (bn.bias - bn.running_mean * s).numpy().astype(np.float32)
                k += 1
        out["cnn_n_conv"] = np.asarray(k)
        out["cnn_fc_w"] = net.fc.weight.numpy().astype(np.float32)
        out["cnn_fc_b"] = net.fc.bias.numpy().astype(np.float32)
    return out
