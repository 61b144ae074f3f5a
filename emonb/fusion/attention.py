"""Attention fusion: per-modality encoders and masked attention over modalities (torch)."""

from __future__ import annotations

import numpy as np

from .._checks import require
from ..errors import EmonbValueError
from ..schema import EMOTIONS
from ._grid import MODALITIES, FusionGrid
from .base import FusionMethod, Prediction, check_training_classes, single_thread


from contextlib import nullcontext as _nullcontext


def _build_net(dims: list[int], hidden: int, n_classes: int):
    import torch
    from torch import nn

    class AttentionNet(nn.Module):
        """Encoders per modality -> masked softmax attention over modalities -> heads."""

        def __init__(self):
            super().__init__()
            self.encoders = nn.ModuleList(
                [nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
                 for d in dims])
            self.score = nn.Linear(hidden, 1)
            self.modality_bias = nn.Parameter(torch.zeros(len(dims)))
            self.emotion = nn.Linear(hidden, n_classes)
            self.va = nn.Linear(hidden, 2)

        def forward(self, xs, mask):
            h = torch.stack([enc(x) for enc, x in zip(self.encoders, xs)], dim=1)  # B, M, H
            s = self.score(h).squeeze(-1) + self.modality_bias  # B, M
            s = s.masked_fill(~mask, float("-inf"))
            none = ~mask.any(dim=1, keepdim=True)
            s = torch.where(none, torch.zeros_like(s), s)
            a = torch.softmax(s, dim=1)
            z = (a.unsqueeze(-1) * h).sum(dim=1)
            return self.emotion(z), torch.tanh(self.va(z)), a

    return AttentionNet()


class AttentionFusion(FusionMethod):
    """Intermediate fusion with learned, per-step attention weights over modalities.

    Each modality's features (see :class:`~emonb.fusion.early.EarlyFusion`) plus its confidence go
    through a small encoder (two 32-unit layers); a shared scorer plus a per-modality bias gives
    attention logits, masked to ``-inf`` for modalities absent at that step (confidence 0), so a
    missing modality never contributes. The attention weights are reported as ``modality_weight``:
    they show which modality drove each decision. Heads: emotion logits (cross-entropy, class
    balanced) and valence/arousal (tanh, squared error). During training, present modalities are
    dropped at random (``modality_dropout``) so the model learns to cope with any subset.

    Parameters
    ----------
    hidden : int
        Encoder width.
    epochs : int
        Full passes over the training steps (mini-batches of ``batch_size``).
    lr : float
        Adam learning rate.
    modality_dropout : float
        Probability of masking each present modality of a training step (one always stays).
    device : str
        ``"auto"`` (GPU when torch sees one), ``"cpu"``, ``"cuda"``.
    seed : int
        Seed of the weight initialisation and the batches.
    """

    name = "attention"
    trainable = True
    needs_features = True

    def __init__(self, *, hidden: int = 32, epochs: int = 60, lr: float = 3e-3, batch_size: int = 256,
                 modality_dropout: float = 0.2, weight_decay: float = 1e-4, device: str = "auto",
                 seed: int = 0):
        self.hidden = int(hidden)
        self.epochs = int(epochs)
        self.lr = float(lr)
        self.batch_size = int(batch_size)
        self.modality_dropout = float(modality_dropout)
        self.weight_decay = float(weight_decay)
        self.device = device
        self.seed = int(seed)

    # -- features ---------------------------------------------------------------------------
    def _blocks(self, grid: FusionGrid):
        """Per modality: (T, F_m) standardised features with NaN -> 0, and the (T, M) mask."""
        T = grid.time.size
        xs = []
        conf = grid.confidence_matrix(self.modalities_)
        for j, m in enumerate(self.modalities_):
            names = self.feature_names_[m]
            d = grid.modalities.get(m)
            X = np.full((T, len(names)), np.nan)
            if d is not None and d.features is not None:
                idx = {c: i for i, c in enumerate(d.feature_names)}
                for k, c in enumerate(names):
                    if c in idx:
                        X[:, k] = d.features[:, idx[c]]
            if hasattr(self, "mean_"):
                X = (X - self.mean_[m]) / self.std_[m]
            X = np.concatenate([np.nan_to_num(X, nan=0.0), conf[:, j:j + 1]], axis=1)
            xs.append(X.astype(np.float32))
        return xs, conf > 0

    def fit(self, grids, targets):
        require("torch", extra="fusion", purpose="attention fusion")
        import torch

        from ..models.device import resolve_device

        mods = [m for m in MODALITIES if any(m in g.modalities and g.modalities[m].features is not None
                                             and g.modalities[m].features.shape[1] for g in grids)]
        if not mods:
            raise EmonbValueError("no modality features to train attention fusion on")
        self.modalities_ = mods
        self.feature_names_ = {}
        for m in mods:
            names: list[str] = []
            for g in grids:
                d = g.modalities.get(m)
                if d is not None:
                    names += [c for c in d.feature_names if c not in names]
            self.feature_names_[m] = names
        # standardisation statistics from the training steps
        raw = [self._blocks(g) for g in grids]
        keep = [(t[0] >= 0) & b[1].any(axis=1) for t, b in zip(targets, raw)]
        self.mean_, self.std_ = {}, {}
        for j, m in enumerate(mods):
            d_all = []
            for g, k in zip(grids, keep):
                d = g.modalities.get(m)
                n = len(self.feature_names_[m])
                X = np.full((g.time.size, n), np.nan)
                if d is not None and d.features is not None:
                    idx = {c: i for i, c in enumerate(d.feature_names)}
                    for q, c in enumerate(self.feature_names_[m]):
                        if c in idx:
                            X[:, q] = d.features[:, idx[c]]
                d_all.append(X[k])
            A = np.concatenate(d_all)
            with np.errstate(all="ignore"):
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    mu = np.nanmean(A, axis=0)
                    sd = np.nanstd(A, axis=0)
            self.mean_[m] = np.nan_to_num(mu)
            self.std_[m] = np.where(np.isfinite(sd) & (sd > 1e-8), sd, 1.0)
        blocks = [self._blocks(g) for g in grids]
        xs = [np.concatenate([b[0][j][k] for b, k in zip(blocks, keep)]) for j in range(len(mods))]
        mask = np.concatenate([b[1][k] for b, k in zip(blocks, keep)])
        y = np.concatenate([t[0][k] for t, k in zip(targets, keep)])
        va = np.stack([np.concatenate([t[1][k] for t, k in zip(targets, keep)]),
                       np.concatenate([t[2][k] for t, k in zip(targets, keep)])], axis=1)
        check_training_classes(y, "attention fusion")
        classes = np.unique(y)

        device = resolve_device(self.device)
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        self.net_dims_ = [x.shape[1] for x in xs]
        net = _build_net(self.net_dims_, self.hidden, len(EMOTIONS)).to(device)
        counts = np.bincount(y, minlength=len(EMOTIONS)).astype(np.float32)
        cw = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / classes.size, 0.0)
        cw_t = torch.tensor(cw, dtype=torch.float32, device=device)
        Xt = [torch.tensor(x, device=device) for x in xs]
        Mt = torch.tensor(mask, device=device)
        Yt = torch.tensor(y, dtype=torch.long, device=device)
        VAt = torch.tensor(np.nan_to_num(va), dtype=torch.float32, device=device)
        VAok = torch.tensor(np.isfinite(va), device=device)
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        n = y.size
        net.train()
        with single_thread() if device == "cpu" else _nullcontext():
            self._train_loop(net, opt, Xt, Mt, Yt, VAt, VAok, cw_t, rng, device, n)
        net.eval()
        self.net_ = net.to("cpu")
        self.device_ = device
        self.classes_ = classes
        return self

    def _train_loop(self, net, opt, Xt, Mt, Yt, VAt, VAok, cw_t, rng, device, n):
        import torch
        import torch.nn.functional as F

        for _ in range(self.epochs):
            order = torch.tensor(rng.permutation(n), device=device)
            for s in range(0, n, self.batch_size):
                b = order[s:s + self.batch_size]
                mb = Mt[b]
                if self.modality_dropout > 0:
                    drop = torch.rand(mb.shape, device=device) < self.modality_dropout
                    kept = mb & ~drop
                    mb = torch.where(kept.any(dim=1, keepdim=True), kept, mb)
                logits, vap, _ = net([x[b] for x in Xt], mb)
                loss = F.cross_entropy(logits, Yt[b], weight=cw_t)
                ok = VAok[b]
                if ok.any():
                    loss = loss + ((vap - VAt[b]) ** 2)[ok].mean()
                opt.zero_grad()
                loss.backward()
                opt.step()

    # saving (FusionMethod.save): the network is stored as its state dict of float arrays and
    # rebuilt from its configuration (net_dims_, hidden) on load, with strict=True
    def _to_saved(self):
        params, state = super()._to_saved()
        if "net_" in state:
            state["net_"] = {k: v.detach().cpu().numpy() for k, v in state["net_"].state_dict().items()}
        return params, state

    @classmethod
    def _from_saved(cls, params, state):
        net = state.get("net_")
        if net is not None:
            if not isinstance(net, dict) or not all(isinstance(v, np.ndarray) and v.dtype.kind == "f"
                                                    for v in net.values()):
                raise EmonbValueError("the saved attention network is not a dict of float arrays")
            dims = state.get("net_dims_")
            if not (isinstance(dims, list) and dims and all(isinstance(d, int) and 0 < d < 1_000_000
                                                            for d in dims)):
                raise EmonbValueError("the saved attention fusion has no valid net_dims_")
            hidden, k = params.get("hidden", 32), len(EMOTIONS)
            if not isinstance(hidden, int) or hidden < 1:
                raise EmonbValueError(f"the saved attention fusion has an invalid hidden size {hidden!r}")
            # the network the configuration describes must have as many weights as the file holds
            # (checked before building it, so a forged configuration cannot allocate a huge network)
            expected = sum(d * hidden + hidden + hidden * hidden + hidden for d in dims) \
                + hidden + 1 + len(dims) + hidden * k + k + hidden * 2 + 2
            if expected != sum(int(v.size) for v in net.values()):
                raise EmonbValueError("the saved attention network does not match its configuration "
                                      f"(net_dims_={dims}, hidden={hidden})")
            require("torch", extra="fusion", purpose="loading an attention-fusion model")
            import torch

            module = _build_net(dims, hidden, k)
            try:
                module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in net.items()}, strict=True)
            except RuntimeError as exc:
                raise EmonbValueError(f"the saved attention network does not match its configuration: "
                                      f"{str(exc).splitlines()[0]}") from None
            module.eval()
            state = dict(state, net_=module)
        return super()._from_saved(params, state)

    # pickling: the network travels as its configuration and a state dict of numpy arrays
    def __getstate__(self):
        state = dict(vars(self))
        if "net_" in state:
            state["net_"] = {k: v.detach().cpu().numpy() for k, v in state["net_"].state_dict().items()}
        return state

    def __setstate__(self, state):
        net = state.get("net_")
        if isinstance(net, dict):
            import torch

            module = _build_net(state["net_dims_"], state["hidden"], len(EMOTIONS))
            module.load_state_dict({k: torch.as_tensor(v) for k, v in net.items()})
            module.eval()
            state["net_"] = module
        vars(self).update(state)

    def predict(self, grid: FusionGrid) -> Prediction:
        if not hasattr(self, "net_"):
            raise EmonbValueError("attention fusion needs a fitted model: "
                                  "eb.fusion.train(trees, method='attention')")
        import torch

        from ..models.device import resolve_device

        device = resolve_device(self.device)
        net = self.net_.to(device)
        xs, mask = self._blocks(grid)
        T = grid.time.size
        with torch.no_grad(), (single_thread() if device == "cpu" else _nullcontext()):
            logits, vap, a = net([torch.tensor(x, device=device) for x in xs],
                                 torch.tensor(mask, device=device))
            p = torch.softmax(logits, dim=1).cpu().numpy().astype(np.float64)
            vap = vap.cpu().numpy().astype(np.float64)
            a = a.cpu().numpy().astype(np.float64)
        self.net_ = net.to("cpu")
        none = ~mask.any(axis=1)
        p[none] = np.nan
        vap[none] = np.nan
        mw = np.zeros((T, len(MODALITIES)))
        for j, m in enumerate(self.modalities_):
            mw[:, MODALITIES.index(m)] = np.where(mask[:, j], a[:, j], 0.0)
        mw[none] = np.nan
        conf = np.where(none, 0.0, np.nanmax(np.nan_to_num(p, nan=0), axis=1))
        return Prediction(emotion=p, valence=vap[:, 0], arousal=vap[:, 1], modality_weight=mw,
                          confidence=conf)
