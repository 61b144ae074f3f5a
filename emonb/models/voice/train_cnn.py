"""Train the log-mel network (:mod:`emonb.models.voice.melcnn`) with torch on one CPU thread.

Random 2 s crops of each clip's speech (optionally drawn from several perturbed copies of the clip),
SpecAugment-style band and time masks, class-balanced cross-entropy with label smoothing, AdamW
with a one-cycle schedule. Deterministic for a given ``seed`` (torch and numpy generators seeded,
one thread).
"""

from __future__ import annotations

import time

import numpy as np

from .melcnn import (DEFAULT_ARCH, FLOOR_DB, REF_RADIUS_S, STRIDE, MelCNNNumpy, build_torch_net,
                     export_torch_net, reference_level)

__all__ = ["CNN_PARAMS", "train_melcnn", "cnn_logits"]

#: Hyper-parameters of the network and its training (the one place they live).
CNN_PARAMS = {
    "arch": list(DEFAULT_ARCH), "epochs": 40, "batch_size": 32, "lr": 3e-3, "weight_decay": 1e-3,
    "label_smoothing": 0.05, "dropout": 0.3, "crop_frames": 200, "band_mask": 5, "time_mask": 20,
    "mask_p": 0.5,
}


def _prepared(item):
    lm = np.asarray(item.logmel, np.float32)
    ref = reference_level(lm, item.voice, radius_frames=int(REF_RADIUS_S * 100))
    x = np.maximum(lm - np.nan_to_num(ref, nan=0.0)[:, None], FLOOR_DB)
    return x, np.asarray(item.voice, bool)


def _crop(x, v, n, rng):
    T = len(x)
    idx = np.flatnonzero(v)
    if T <= n:
        xc = np.zeros((n, x.shape[1]), np.float32)
        vc = np.zeros(n, bool)
        xc[:T], vc[:T] = x, v
        return xc, vc
    lo, hi = (idx[0], idx[-1]) if len(idx) else (0, T - 1)
    centre = int(rng.integers(lo, hi + 1))
    a = int(np.clip(centre - n // 2, 0, T - n))
    return x[a:a + n], v[a:a + n]


def _step_mask(v):
    n = len(v) // STRIDE
    return v[: n * STRIDE].reshape(n, STRIDE).any(axis=1)


def train_melcnn(versions, y, *, classes, params=None, seed: int = 0, progress: bool = False, log=None):
    """Train on clips given as several versions (e.g. clean plus perturbed copies).

    Parameters
    ----------
    versions : list of list of ClipInputs
        ``versions[k][i]`` is version ``k`` of clip ``i`` (clips without voice frames are skipped).
    y : sequence of str
        One label per clip.
    classes : sequence of str
        Output order.

    Returns
    -------
    arrays : dict
        Exported weights for :class:`~emonb.models.voice.melcnn.MelCNNNumpy`.
    info : dict
        Seconds, final training loss, steps.
    """
    import torch

    p = dict(CNN_PARAMS, **(params or {}))
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    t0 = time.time()
    try:
        cls = list(classes)
        yi = np.array([cls.index(str(c)) for c in y])
        prep = [[_prepared(it) for it in ver] for ver in versions]
        ok = np.array([any(prep[k][i][1].any() for k in range(len(prep))) for i in range(len(yi))])
        frames = np.concatenate([x[v] for ver in prep for x, v in ver if v.any()])
        band_mean = frames.mean(axis=0).astype(np.float32)
        band_scale = np.maximum(frames.std(axis=0), 1e-3).astype(np.float32)
        counts = np.bincount(yi[ok], minlength=len(cls)).astype(float)
        weight = torch.tensor(np.where(counts > 0, counts.sum() / (len(cls) * np.maximum(counts, 1)), 0.0), dtype=torch.float32)
        net = build_torch_net(len(cls), arch=tuple(p["arch"]), n_mels=frames.shape[1], dropout=p["dropout"])
        train_idx = np.flatnonzero(ok)
        bs = int(p["batch_size"])
        steps_per_epoch = max(1, int(np.ceil(len(train_idx) / bs)))
        total = steps_per_epoch * int(p["epochs"])
        opt = torch.optim.AdamW(net.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=p["lr"], total_steps=total, pct_start=0.2)
        loss_fn = torch.nn.CrossEntropyLoss(weight=weight, label_smoothing=p["label_smoothing"])
        n = int(p["crop_frames"])
        last = []
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="log-mel CNN", disable=not progress)
        for epoch in range(int(p["epochs"])):
            net.train()
            order = rng.permutation(train_idx)
            for s in range(0, len(order), bs):
                batch = order[s:s + bs]
                xs, ms = [], []
                for i in batch:
                    k = int(rng.integers(len(prep)))
                    if not prep[k][i][1].any():
                        k = 0
                    x, v = _crop(*prep[k][i], n, rng)
                    x = (x - band_mean) / band_scale
                    if rng.uniform() < p["mask_p"]:
                        w = int(rng.integers(1, p["band_mask"] + 1))
                        f0 = int(rng.integers(0, x.shape[1] - w + 1))
                        x = x.copy()
                        x[:, f0:f0 + w] = 0.0
                    if rng.uniform() < p["mask_p"]:
                        w = int(rng.integers(1, p["time_mask"] + 1))
                        a = int(rng.integers(0, n - w + 1))
                        x = x.copy()
                        x[a:a + w] = 0.0
                    xs.append(x)
                    ms.append(_step_mask(v))
                xb = torch.from_numpy(np.stack(xs).astype(np.float32))
                mb = torch.from_numpy(np.stack(ms).astype(np.float32))
                yb = torch.from_numpy(yi[batch])
                loss = loss_fn(net(xb, mb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                last.append(float(loss.detach()))
                bar.update(1)
            if log is not None:
                log(f"epoch {epoch + 1}: loss {np.mean(last[-steps_per_epoch:]):.3f} ({time.time() - t0:.0f} s)")
        bar.close()
        net.eval()
        arrays = export_torch_net(net, band_mean, band_scale)
    finally:
        torch.set_num_threads(prev_threads)
    return arrays, {"seconds": time.time() - t0, "final_loss": float(np.mean(last[-steps_per_epoch:])),
                    "steps": total, "params": p}


def cnn_logits(arrays: dict, items) -> np.ndarray:
    """Clip-level logits (n_clips, n_classes) with the numpy runtime; NaN rows without voice."""
    net = MelCNNNumpy(arrays)
    out = np.full((len(items), len(arrays["cnn_fc_b"])), np.nan, np.float32)
    for i, it in enumerate(items):
        if not np.any(it.voice):
            continue
        lm = np.asarray(it.logmel, np.float32)
        emb = net.embed(lm, it.voice)
        out[i] = net.logits_from_embeddings(emb, net.step_mask(it.voice), [(0, len(lm))])[0]
    return out
