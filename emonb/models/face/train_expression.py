"""Training the expression network (:mod:`emonb.models.face.fernet`) on FER2013 with FER+ votes.

``scripts/train_face_expression.py`` is the command line; :data:`RECIPES` holds every
hyper-parameter in one place. A run is reproducible (fixed seeds, the data file's SHA-256 recorded),
checkpoints after every epoch and resumes from its last checkpoint. Validation is FER2013
PublicTest, deduplicated: rows that repeat a training image (same ``dup_group``) are dropped, and
one row is kept per group inside the split. PrivateTest is not in the pack and is never used.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ...errors import EmonbFileError, EmonbValueError
from ...schema import EMOTIONS

__all__ = ["Recipe", "RECIPES", "load_pack", "split_indices", "targets", "augment", "train",
           "fit_temperature", "expected_calibration_error", "evaluate"]

#: FER+ vote columns (the pack's order) -> emonb emotion; contempt, unknown and not-a-face are dropped
FERPLUS_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                   "contempt", "unknown", "NF")


@dataclass(frozen=True)
class Recipe:
    """Every hyper-parameter of one training run."""

    name: str
    epochs: int = 16
    batch_size: int = 128
    lr: float = 0.05                 # peak of the one-cycle schedule (SGD, Nesterov momentum 0.9)
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1     # on the hard FER2013 label
    ferplus_weight: float = 0.0      # target = (1 - w) * FER2013 label + w * FER+ vote distribution
    widths: tuple = (32, 48, 96, 192)
    blocks: tuple = (1, 1, 1)
    head: int = 256
    dropout: float = 0.3
    # augmentation: how the video pipeline's crops differ from FER's, and what faces go through
    scale: tuple = (0.85, 1.15)
    rotate_deg: float = 15.0
    shift: float = 0.08
    flip: float = 0.5
    photometric: float = 0.8         # brightness / contrast / gamma jitter probability
    equalize: float = 0.2
    blur: float = 0.2
    occlude: float = 0.3             # a gray or noise patch over part of the face
    seed: int = 0
    limit: int | None = None         # train on the first N shuffled images (tests, quick trials)
    init: str = ""                   # fine-tune: start from this recipe's final weights (runs/<init>/weights.pt)
    notes: str = ""
    extra: dict = field(default_factory=dict)


RECIPES: dict[str, Recipe] = {
    "ls": Recipe("ls", notes="hard FER2013 labels with label smoothing 0.1"),
    "ferplus": Recipe("ferplus", label_smoothing=0.0, ferplus_weight=0.5,
                      notes="half FER2013 label, half FER+ crowd-vote distribution"),
    "ls-light": Recipe("ls-light", dropout=0.2, scale=(0.9, 1.1), rotate_deg=10.0, shift=0.06, photometric=0.5,
                       equalize=0.15, blur=0.1, occlude=0.15,
                       notes="hard FER2013 labels, label smoothing 0.1, lighter augmentation and dropout"),
    "ls-light-eq": Recipe("ls-light-eq", init="ls-light", epochs=4, lr=0.01, dropout=0.2, scale=(0.9, 1.1),
                          rotate_deg=10.0, shift=0.06, photometric=0.5, equalize=0.5, blur=0.1, occlude=0.15,
                          notes="ls-light fine-tuned 4 epochs at a low rate with histogram equalisation on half "
                                "the crops, for the equalisation check"),
    "ls-light-eq2": Recipe("ls-light-eq2", init="ls-light-eq", epochs=3, lr=0.005, dropout=0.2, scale=(0.9, 1.1),
                           rotate_deg=10.0, shift=0.06, photometric=0.5, equalize=0.8, blur=0.1, occlude=0.15,
                           notes="ls-light-eq fine-tuned 3 more epochs at half its rate, equalisation on 80% of the crops"),
    "ls-light-eq3": Recipe("ls-light-eq3", init="ls-light-eq", epochs=3, lr=0.004, dropout=0.2, scale=(0.9, 1.1),
                           rotate_deg=10.0, shift=0.06, photometric=0.5, equalize=0.65, blur=0.1, occlude=0.15,
                           notes="as ls-light-eq2 with a lower rate (0.004) and equalisation on 65% of the crops"),
    "ferplus-wide": Recipe("ferplus-wide", label_smoothing=0.0, ferplus_weight=0.5, widths=(32, 64, 128, 256),
                           notes="as ferplus, wider stages"),
}


# -- data ---------------------------------------------------------------------------------------------
def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_pack(path) -> dict:
    """The FER2013 pack (``fer2013_trainval.npz``) as plain arrays, with ``y`` (EMOTIONS index)."""
    path = Path(path)
    if not path.is_file():
        raise EmonbFileError(path, "the FER2013 pack is missing (see ../shared/data/face/fer2013/README.md)")
    with np.load(path, allow_pickle=False) as d:
        pack = {k: np.array(d[k]) for k in ("images", "label", "split", "dup_group", "ferplus_votes")}
    unknown = sorted(set(pack["label"]) - set(EMOTIONS))
    if unknown:
        raise EmonbValueError(f"{path}: labels {unknown} are not emonb emotions {EMOTIONS}")
    pack["y"] = np.array([EMOTIONS.index(v) for v in pack["label"]], np.int64)
    return pack


def split_indices(pack: dict) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) row indices; validation without images that also occur in training."""
    split, group = pack["split"], pack["dup_group"]
    train = np.flatnonzero(split == "train")
    val = np.flatnonzero(split == "val")
    in_train = set(group[train][group[train] >= 0].tolist())
    keep, seen = [], set()
    for i in val:
        g = int(group[i])
        if g >= 0 and (g in in_train or g in seen):
            continue
        seen.add(g)
        keep.append(i)
    return train, np.asarray(keep, np.int64)


def ferplus_distribution(votes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FER+ votes (N, 10) -> (distribution over EMOTIONS (N, 7), has-votes mask (N,))."""
    cols = [FERPLUS_COLUMNS.index(e) for e in EMOTIONS]
    v = votes[:, cols].astype(np.float32)
    total = v.sum(axis=1, keepdims=True)
    ok = total[:, 0] > 0
    dist = np.divide(v, total, out=np.zeros_like(v), where=total > 0)
    return dist, ok


def targets(pack: dict, idx: np.ndarray, recipe: Recipe) -> np.ndarray:
    """Soft training targets (len(idx), 7) as the recipe mixes them."""
    k = len(EMOTIONS)
    onehot = np.eye(k, dtype=np.float32)[pack["y"][idx]]
    t = onehot * (1 - recipe.label_smoothing) + recipe.label_smoothing / k
    if recipe.ferplus_weight > 0:
        dist, ok = ferplus_distribution(pack["ferplus_votes"][idx])
        w = np.where(ok, recipe.ferplus_weight, 0.0)[:, None].astype(np.float32)
        t = (1 - w) * t + w * dist
    return t


# -- augmentation -------------------------------------------------------------------------------------
def augment(images: np.ndarray, rng: np.random.Generator, recipe: Recipe) -> np.ndarray:
    """Randomly transformed copies of 48x48 uint8 crops: geometry, flips, light, blur, occlusion."""
    import cv2

    n, h, w = images.shape
    out = np.empty_like(images)
    for i in range(n):
        img = images[i]
        s = rng.uniform(*recipe.scale)
        a = rng.uniform(-recipe.rotate_deg, recipe.rotate_deg)
        m = cv2.getRotationMatrix2D((w / 2 - 0.5, h / 2 - 0.5), a, s)
        m[:, 2] += rng.uniform(-recipe.shift, recipe.shift, 2) * (w, h)
        img = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if rng.random() < recipe.flip:
            img = img[:, ::-1]
        img = np.ascontiguousarray(img)
        if rng.random() < recipe.equalize:
            img = cv2.equalizeHist(img)
        if rng.random() < recipe.photometric:
            x = img.astype(np.float32) / 255.0
            x = np.clip(x ** np.exp(rng.uniform(-0.4, 0.4)), 0, 1)
            x = (x - 0.5) * rng.uniform(0.6, 1.4) + 0.5 + rng.uniform(-0.2, 0.2)
            img = np.clip(x * 255.0 + 0.5, 0, 255).astype(np.uint8)
        if rng.random() < recipe.blur:
            img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.5))
        if rng.random() < recipe.occlude:
            ph, pw = rng.integers(h // 6, h // 2 + 1), rng.integers(w // 6, w // 2 + 1)
            y0, x0 = rng.integers(0, h - ph + 1), rng.integers(0, w - pw + 1)
            img = img.copy()
            img[y0:y0 + ph, x0:x0 + pw] = (rng.integers(0, 256) if rng.random() < 0.5
                                           else rng.integers(0, 256, (ph, pw)))
        out[i] = img
    return out


def to_input(images: np.ndarray):
    """uint8 crops (N, 48, 48) -> float32 tensor (N, 1, 48, 48) in [-1, 1]."""
    import torch

    x = images.astype(np.float32) * (2.0 / 255.0) - 1.0
    return torch.from_numpy(x[:, None])


# -- calibration and metrics ------------------------------------------------------------------------
def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T that minimises the negative log-likelihood of softmax(logits / T)."""
    logits = np.asarray(logits, np.float64)
    labels = np.asarray(labels, np.int64)

    def nll(t):
        p = _softmax(logits / t)
        return -np.mean(np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, None)))

    grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 161))
    best = grid[int(np.argmin([nll(t) for t in grid]))]
    fine = best * np.exp(np.linspace(-0.03, 0.03, 61))
    return float(fine[int(np.argmin([nll(t) for t in fine]))])


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE with ``bins`` equal-width confidence bins (top-1 confidence vs. accuracy)."""
    probs = np.asarray(probs, np.float64)
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == np.asarray(labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)


def metrics(probs: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, balanced accuracy, per-class recall, ECE (15 bins) and NLL."""
    labels = np.asarray(labels)
    pred = probs.argmax(axis=1)
    recall = {e: float((pred[labels == k] == k).mean()) if (labels == k).any() else float("nan")
              for k, e in enumerate(EMOTIONS)}
    nll = float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None))))
    return {"accuracy": float((pred == labels).mean()), "balanced_accuracy": float(np.nanmean(list(recall.values()))),
            "recall": recall, "ece": expected_calibration_error(probs, labels), "nll": nll, "n": int(len(labels))}


def predict_logits(model, images: np.ndarray, *, flip: bool = False, batch_size: int = 256) -> np.ndarray:
    """Uncalibrated logits (N, 7) of a FerNet for uint8 crops (N, 48, 48); ``flip`` averages the mirror."""
    import torch

    dev = next(model.parameters()).device
    model.eval()
    out = []
    with torch.inference_mode():
        for s in range(0, len(images), batch_size):
            x = to_input(images[s:s + batch_size]).to(dev)
            z = model.logits(x)
            if flip:
                z = (z + model.logits(torch.flip(x, dims=[3]))) / 2
            out.append(z.float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, len(EMOTIONS)), np.float32)


def evaluate(model, images: np.ndarray, labels: np.ndarray, *, temperature: float = 1.0, flip: bool = False) -> dict:
    return metrics(_softmax(predict_logits(model, images, flip=flip) / temperature), labels)


# -- the training loop --------------------------------------------------------------------------------
def _checkpoint_path(out_dir: Path) -> Path:
    return out_dir / "checkpoint.pt"


def _save_atomic(obj, path: Path):
    import torch

    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def train(recipe: Recipe, data_path, out_dir, *, device: str = "auto", resume: bool = True,
          progress: bool = True, log=print) -> dict:
    """Train one recipe; checkpoints in ``out_dir`` after every epoch; returns the run's record.

    The record (also ``out_dir/record.json``) holds the recipe, the data's SHA-256, the per-epoch
    validation figures, the fitted temperature, ECE before and after calibration, and wall time.
    ``out_dir/weights.pt`` is the final state dict (temperature included) for :class:`FerNetModel`.
    """
    import torch
    from tqdm.auto import tqdm

    from ..device import resolve_device
    from .fernet import FerNet

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data_path = Path(data_path)
    digest = sha256_file(data_path)
    pack = load_pack(data_path)
    tr, va = split_indices(pack)
    rng = np.random.default_rng(recipe.seed)
    tr = rng.permutation(tr)
    if recipe.limit:
        tr = tr[: int(recipe.limit)]
    x_tr, t_tr = pack["images"][tr], targets(pack, tr, recipe)
    x_va, y_va = pack["images"][va], pack["y"][va]
    dev = resolve_device(device)
    torch.manual_seed(recipe.seed)
    model = FerNet(widths=recipe.widths, blocks=recipe.blocks, head=recipe.head, dropout=recipe.dropout)
    init_sha = ""
    if recipe.init:
        init_path = out_dir.parent / recipe.init / "weights.pt"
        if not init_path.is_file():
            raise EmonbValueError(f"recipe {recipe.name!r} starts from {init_path}, which does not exist: "
                                  f"train recipe {recipe.init!r} first")
        init_sha = sha256_file(init_path)
        model.load_state_dict(torch.load(init_path, map_location="cpu", weights_only=True))
        log(f"{recipe.name}: starting from {init_path} (sha256 {init_sha[:12]})")
    model = model.to(dev).to(memory_format=torch.channels_last)  # about 2x faster convolutions on a CPU
    opt = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=0.9, nesterov=True,
                          weight_decay=recipe.weight_decay)
    steps = int(np.ceil(len(tr) / recipe.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, epochs=recipe.epochs, steps_per_epoch=steps,
                                                pct_start=0.15)
    state = {"epoch": 0, "history": [], "seconds": 0.0, "best": -1.0, "init_sha256": init_sha}
    ck = _checkpoint_path(out_dir)
    if resume and ck.exists():
        saved = torch.load(ck, map_location="cpu", weights_only=True)
        if saved["recipe"] != asdict(recipe) or saved["data_sha256"] != digest:
            raise EmonbValueError(f"{ck} belongs to another recipe or data file; use another out_dir")
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        state = saved["state"]
        rng.bit_generator.state = saved["rng"]
        torch.set_rng_state(saved["torch_rng"])
        log(f"resumed {recipe.name} after epoch {state['epoch']}")
    while state["epoch"] < recipe.epochs:
        t0 = time.perf_counter()
        model.train()
        order = rng.permutation(len(tr))
        total = 0.0
        bar = tqdm(range(steps), desc=f"{recipe.name} epoch {state['epoch'] + 1}/{recipe.epochs}",
                   disable=not progress, leave=False)
        for b in bar:
            sel = order[b * recipe.batch_size:(b + 1) * recipe.batch_size]
            x = to_input(augment(x_tr[sel], rng, recipe)).to(dev).contiguous(memory_format=torch.channels_last)
            t = torch.from_numpy(t_tr[sel]).to(dev)
            loss = -(t * torch.log_softmax(model.logits(x), dim=1)).sum(dim=1).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(sel)
        val = evaluate(model, x_va, y_va)
        state["epoch"] += 1
        state["seconds"] += time.perf_counter() - t0
        state["history"].append({"epoch": state["epoch"], "train_loss": total / len(tr),
                                 "val_accuracy": val["accuracy"], "val_nll": val["nll"],
                                 "seconds": round(time.perf_counter() - t0, 1)})
        log(f"{recipe.name} epoch {state['epoch']}: train loss {total / len(tr):.4f}, "
            f"PublicTest accuracy {val['accuracy']:.4f}, {time.perf_counter() - t0:.0f} s")
        _save_atomic({"recipe": asdict(recipe), "data_sha256": digest, "model": model.state_dict(),
                      "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "state": state,
                      "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state()}, ck)
    return finish(model.to("cpu"), recipe, digest, state, x_va, y_va, out_dir, log=log)


def finish(model, recipe: Recipe, digest: str, state: dict, x_va, y_va, out_dir: Path, *, log=print) -> dict:
    """Calibrate on the validation split, measure, and write ``weights.pt`` and ``record.json``."""
    import torch

    logits = predict_logits(model, x_va)
    temp = fit_temperature(logits, y_va)
    before = metrics(_softmax(logits), y_va)
    after = metrics(_softmax(logits / temp), y_va)
    flip_logits = predict_logits(model, x_va, flip=True)
    flip = metrics(_softmax(flip_logits / fit_temperature(flip_logits, y_va)), y_va)
    import cv2

    eq = np.stack([cv2.equalizeHist(im) for im in x_va])
    equalized = metrics(_softmax(predict_logits(model, eq) / temp), y_va)
    model.temperature.fill_(temp)
    weights = out_dir / "weights.pt"
    _save_atomic({k: v.detach().clone() for k, v in model.state_dict().items()}, weights)
    record = {"recipe": asdict(recipe), "data": {"file": "fer2013_trainval.npz", "sha256": digest,
                                                 "validation": "PublicTest, deduplicated against Training",
                                                 "n_validation": int(len(y_va))},
              "history": state["history"], "train_seconds": round(state["seconds"], 1),
              "init_sha256": state.get("init_sha256", ""),
              "temperature": temp, "validation_uncalibrated": before, "validation": after,
              "validation_flip": flip, "validation_equalized": equalized,
              "weights_sha256": sha256_file(weights), "torch": torch.__version__}
    tmp = out_dir / "record.json.tmp"
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(out_dir / "record.json")
    log(f"{recipe.name}: PublicTest accuracy {after['accuracy']:.4f} (flip {flip['accuracy']:.4f}), "
        f"ECE {before['ece']:.4f} -> {after['ece']:.4f} at T={temp:.3f}; {state['seconds'] / 60:.1f} min")
    return record


def recipe(name: str, **overrides) -> Recipe:
    """A recipe from :data:`RECIPES` with some fields replaced (``epochs=1, limit=512`` for a trial)."""
    if name not in RECIPES:
        raise EmonbValueError(f"unknown recipe {name!r}; expected one of {sorted(RECIPES)}")
    return replace(RECIPES[name], **overrides)
