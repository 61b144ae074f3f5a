"""Reproduce, compare and ship the speech-emotion models (emonb/models/weights/voice_emotion_ravdess.*).

Usage::

    python scripts/train_voice_model.py features   # analyse RAVDESS once per condition -> cache
    python scripts/train_voice_model.py evaluate   # every variant in the same leave-actors-out folds
    python scripts/train_voice_model.py ship       # train the chosen variant on all 16 actors, write
                                                   # the weights, the card (JSON) and print the SHA-256
    python scripts/train_voice_model.py all        # the three in order
    python scripts/train_voice_model.py --fetch-vad

Data: RAVDESS speech, actors 1-16 (16 kHz mono FLAC plus labels.csv) in
``../shared/data/speech/ravdess``; the SHA-256 of labels.csv and of the sorted list of (file,
SHA-256) pairs go into the card. Folds: four, split by actor (never by clip), the same folds as the
first model (held-out actors {1,7,8,11}, {2,5,6,13}, {10,12,15,16}, {3,4,9,14}).

Conditions (fixed, seeded per clip; emonb.models.voice.augment): ``clean``, ``tel`` (300-3400 Hz,
8 kHz, G.711 mu-law, read back through the 8 kHz path), ``noise10`` (white/pink/brown noise at
10 dB SNR). Training copies ``aug0``/``aug1``: one random chain each of speed or pitch
perturbation, synthetic-room reverberation, noise at 0-30 dB SNR and telephone band-limiting.

Calibration: temperature scaling, cross-fitted: the temperature applied to fold f's test actors is
fitted on the out-of-fold logits of the other twelve actors (never on the test actors); the shipped
temperature is fitted on all out-of-fold logits. ECE over 15 bins.

Every hyper-parameter lives in ``HPARAMS`` (and ``emonb.models.voice.train_cnn.CNN_PARAMS``).
Deterministic for a given seed (one torch thread). Wall times are printed and stored in the card.

    python scripts/train_voice_model.py --fetch-vad

re-extracts ``silero_vad.onnx`` and its MIT notice from the ``silero-vad`` 6.2.3 wheel (pip
download, no install; emonb never imports the silero-vad package) and checks its SHA-256.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data" / "speech" / "ravdess"
WEIGHTS = ROOT / "emonb" / "models" / "weights"
CACHE = Path(os.environ.get("EMONB_VOICE_CACHE", ROOT.parent / "voice-cache"))

from emonb.models.voice.train_cnn import CNN_PARAMS  # noqa: E402

#: every hyper-parameter of the comparison and of the shipped model, in one place
HPARAMS = {
    "seed": 0,
    "n_folds": 4,
    "lr_C": 0.01,               # functionals logistic regression (the first model)
    "sn_C": 0.1,                # logistic regression on speaker-normalised functionals
    "sn_prior": 2.0,            # shrinkage of speaker statistics towards the population (utterances)
    "sn_train_subsets": [1, 2, 4, 8, 16, 0],   # subset sizes drawn when normalising training rows (0 = all)
    "sn_eval_subsets": [1, 4, 8, 16],
    "sn_draws": 3,
    "aug_copies": ["aug0", "aug1"],
    "conditions": ["clean", "tel", "noise10"],
    "ensemble_cnn_weight": 0.5,
    "ece_bins": 15,
    "cnn": CNN_PARAMS,
}
ORDER = ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"]


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- data -----------------------------------------------------------------------------------------

def data_hashes(root: Path = DATA) -> dict:
    import pandas as pd

    lab = pd.read_csv(root / "labels.csv")
    h = hashlib.sha256()
    for f in sorted(lab.file):
        h.update(f.encode() + b"\0" + hashlib.sha256((root / f).read_bytes()).hexdigest().encode() + b"\n")
    return {"labels_csv_sha256": hashlib.sha256((root / "labels.csv").read_bytes()).hexdigest(),
            "clips_sha256": h.hexdigest(), "n_clips": int(len(lab)),
            "note": "clips_sha256 = SHA-256 over sorted lines 'file\\0sha256(file)\\n'"}


def labels_table(root: Path = DATA):
    import pandas as pd

    from emonb.schema import EMOTION_ALIASES

    lab = pd.read_csv(root / "labels.csv")
    lab["label"] = [EMOTION_ALIASES[e.lower()] for e in lab.emotion]
    return lab


def build_features(conditions, *, root: Path = DATA, cache: Path = CACHE):
    import soundfile as sf

    from emonb.models.voice import augment as A
    from emonb.models.voice.corpus import clip_inputs, save_inputs

    cache.mkdir(parents=True, exist_ok=True)
    lab = labels_table(root)
    for cond in conditions:
        out = cache / f"{cond}.npz"
        if out.exists():
            log(f"{out} exists, kept")
            continue
        t = time.time()
        items, descr = [], []
        for i, f in enumerate(lab.file):
            y, sr = sf.read(str(root / f), dtype="float32")
            if cond.startswith("aug"):
                rng = np.random.default_rng([int(cond[3:]), i, 104729])
                y2, rate, d = A.random_chain(y, rng)
                descr.append(d)
            else:
                y2, rate = A.apply_condition(y, cond, i)
            items.append(clip_inputs(y2, sampling_rate=rate))
        save_inputs(out, items, meta={"condition": cond, "files": list(lab.file), "augment": descr})
        log(f"{cond}: {len(items)} clips in {time.time() - t:.0f} s")


def load_cache(names, cache: Path = CACHE):
    from emonb.models.voice.corpus import load_inputs

    return {n: load_inputs(cache / f"{n}.npz")[0] for n in names}


def folds_of(actors, *, n_folds, seed):
    """The speaker folds of emonb.voice.evaluate_emotion_model (same seeded assignment)."""
    groups = np.asarray([str(a) for a in actors], dtype=object)
    ug = np.unique(groups)
    order = np.random.default_rng(seed).permutation(ug)
    fold_of = {g: i % n_folds for i, g in enumerate(order)}
    return np.array([fold_of[g] for g in groups])


# --- model pieces ---------------------------------------------------------------------------------

def fit_lr(X, y, *, C, seed):
    from emonb.models.voice.train import _fit

    mean, scale, clf = _fit(X, y, C=C, seed=seed)
    idx = [list(clf.classes_).index(c) for c in ORDER]
    return {"mean": mean, "scale": scale, "W": clf.coef_[idx].T, "b": clf.intercept_[idx]}


def lr_logits(m, X):
    from emonb.models.voice.train import _standardize

    return _standardize(X, m["mean"], m["scale"]) @ m["W"] + m["b"]


def sn_rows(X, actors, rng, *, subsets, prior, pop_mean, pop_var):
    """Normalise each row by a random subset (size from ``subsets``; 0 = all) of its speaker's rows."""
    from emonb.models.voice.calibration import speaker_stats

    out = np.full_like(X, np.nan, dtype=np.float64)
    for a in np.unique(actors):
        idx = np.flatnonzero(actors == a)
        for i in idx:
            k = int(rng.choice(subsets))
            others = idx[idx != i]
            pick = others if k == 0 or k - 1 >= len(others) else rng.choice(others, k - 1, replace=False)
            rows = np.concatenate([[i], pick]).astype(int)
            m, sd = speaker_stats(X[rows], pop_mean, pop_var, prior=prior)
            out[i] = (X[i] - m) / sd
    return out


def pop_stats(X):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nan_to_num(np.nanmean(X, axis=0)), np.nan_to_num(np.nanvar(X, axis=0), nan=1.0)


def metrics(logits, yi, *, bins):
    from emonb.models.voice.calibration import ece, log_softmax

    p = np.exp(log_softmax(logits))
    pred = p.argmax(axis=1)
    rec = {c: float(np.mean(pred[yi == k] == k)) for k, c in enumerate(ORDER)}
    return {"accuracy": float(np.mean(pred == yi)), "balanced_accuracy": float(np.mean(list(rec.values()))),
            "recall": rec, "ece": ece(p, yi, n_bins=bins)}


def cross_fitted_temperature(oof, yi, fold):
    from emonb.models.voice.calibration import fit_temperature

    Ts = {int(f): fit_temperature(oof[fold != f], yi[fold != f]) for f in np.unique(fold)}
    return np.array([Ts[int(f)] for f in fold]), Ts, fit_temperature(oof, yi)


# --- the comparison -------------------------------------------------------------------------------

def evaluate(*, cache: Path = CACHE, out_json: Path | None = None, variants=None):
    from emonb.models.voice.calibration import log_softmax
    from emonb.models.voice.train_cnn import cnn_logits, train_melcnn

    hp = HPARAMS
    lab = labels_table()
    yi = np.array([ORDER.index(c) for c in lab.label])
    actors = lab.actor.to_numpy()
    fold = folds_of(actors, n_folds=hp["n_folds"], seed=hp["seed"])
    conds = hp["conditions"]
    data = load_cache(conds + hp["aug_copies"], cache)
    X = {c: np.stack([it.functionals for it in data[c]]).astype(np.float64) for c in data}
    ylab = lab.label.to_numpy(dtype=object)
    K = len(ORDER)
    logits = {}  # variant -> condition -> (960, K) out-of-fold logits
    seconds = {}

    def new(name):
        logits[name] = {c: np.full((len(yi), K), np.nan) for c in conds}
        seconds[name] = 0.0

    want = variants or ["lr", "lr+aug", "sn-lr+aug", "cnn", "ensemble", "ensemble-sn"]
    for name in want:
        new(name)
    sn_sub = {k: {c: [np.full((len(yi), K), np.nan) for _ in range(hp["sn_draws"])] for c in conds}
              for k in hp["sn_eval_subsets"]}
    for f in range(hp["n_folds"]):
        tr, te = fold != f, fold == f
        log(f"fold {f}: test actors {sorted(set(actors[te].tolist()))}")
        if "lr" in want:
            t = time.time()
            m = fit_lr(X["clean"][tr], ylab[tr], C=hp["lr_C"], seed=hp["seed"])
            for c in conds:
                logits["lr"][c][te] = lr_logits(m, X[c][te])
            seconds["lr"] += time.time() - t
        vers = ["clean"] + hp["aug_copies"]
        Xa = np.concatenate([X[v][tr] for v in vers])
        ya = np.concatenate([ylab[tr]] * len(vers))
        if {"lr+aug", "ensemble"} & set(want):
            t = time.time()
            m = fit_lr(Xa, ya, C=hp["lr_C"], seed=hp["seed"])
            for c in conds:
                logits.setdefault("lr+aug", {}).setdefault(c, np.full((len(yi), K), np.nan))[te] = lr_logits(m, X[c][te])
            seconds["lr+aug"] = seconds.get("lr+aug", 0.0) + time.time() - t
        if {"sn-lr+aug", "ensemble-sn"} & set(want):
            t = time.time()
            rng = np.random.default_rng([hp["seed"], f, 17])
            pm, pv = pop_stats(np.concatenate([X[v][tr] for v in vers]))
            Zs = [sn_rows(X[v][tr], actors[tr], rng, subsets=hp["sn_train_subsets"], prior=hp["sn_prior"],
                          pop_mean=pm, pop_var=pv) for v in vers]
            m = fit_lr(np.concatenate(Zs), ya, C=hp["sn_C"], seed=hp["seed"])
            m_id = dict(m, mean=np.zeros_like(m["mean"]), scale=np.ones_like(m["scale"]))
            for c in conds:
                Zt = sn_rows(X[c][te], actors[te], rng, subsets=[0], prior=hp["sn_prior"], pop_mean=pm, pop_var=pv)
                logits.setdefault("sn-lr+aug", {}).setdefault(c, np.full((len(yi), K), np.nan))[te] = lr_logits(m_id, Zt)
                for k in hp["sn_eval_subsets"]:
                    for d in range(hp["sn_draws"]):
                        Zk = sn_rows(X[c][te], actors[te], rng, subsets=[k], prior=hp["sn_prior"], pop_mean=pm, pop_var=pv)
                        sn_sub[k][c][d][te] = lr_logits(m_id, Zk)
            seconds["sn-lr+aug"] = seconds.get("sn-lr+aug", 0.0) + time.time() - t
        if {"cnn", "ensemble", "ensemble-sn"} & set(want):
            t = time.time()
            idx = np.flatnonzero(tr)
            versions = [[data[v][i] for i in idx] for v in vers]
            arrays, info = train_melcnn(versions, ylab[tr], classes=ORDER, seed=hp["seed"] + f, log=log)
            for c in conds:
                logits.setdefault("cnn", {}).setdefault(c, np.full((len(yi), K), np.nan))[te] = cnn_logits(
                    arrays, [data[c][i] for i in np.flatnonzero(te)])
            seconds["cnn"] = seconds.get("cnn", 0.0) + time.time() - t
            log(f"fold {f}: CNN trained in {info['seconds']:.0f} s")
    w = hp["ensemble_cnn_weight"]
    for c in conds:
        if "ensemble" in want:
            logits["ensemble"][c] = (1 - w) * log_softmax(logits["lr+aug"][c]) + w * log_softmax(logits["cnn"][c])
        if "ensemble-sn" in want:
            logits["ensemble-sn"][c] = (1 - w) * log_softmax(logits["sn-lr+aug"][c]) + w * log_softmax(logits["cnn"][c])
    results = {}
    for name in want:
        oof = np.nan_to_num(logits[name]["clean"], nan=0.0)
        Tf, Ts, T_all = cross_fitted_temperature(oof, yi, fold)
        r = {"clean": metrics(oof, yi, bins=hp["ece_bins"])}
        r["clean"]["ece_calibrated"] = metrics(oof / Tf[:, None], yi, bins=hp["ece_bins"])["ece"]
        for c in conds[1:]:
            lc = np.nan_to_num(logits[name][c], nan=0.0)
            r[c] = metrics(lc / Tf[:, None], yi, bins=hp["ece_bins"])
        r["temperature_per_fold"] = Ts
        r["temperature_all"] = T_all
        r["train_seconds_4_folds"] = seconds.get(name, 0.0)
        results[name] = r
        log(f"{name}: clean {r['clean']['accuracy']:.3f} (bal {r['clean']['balanced_accuracy']:.3f}), "
            f"tel {r['tel']['accuracy']:.3f}, noise10 {r['noise10']['accuracy']:.3f}, "
            f"ECE {r['clean']['ece']:.3f} -> {r['clean']['ece_calibrated']:.3f}")
    if "sn-lr+aug" in want:
        for k in hp["sn_eval_subsets"]:
            r = {}
            for c in conds:
                accs = [metrics(np.nan_to_num(L, nan=0.0), yi, bins=hp["ece_bins"]) for L in sn_sub[k][c]]
                r[c] = {key: float(np.mean([a[key] for a in accs])) for key in ("accuracy", "balanced_accuracy", "ece")}
                r[c]["recall"] = {cl: float(np.mean([a["recall"][cl] for a in accs])) for cl in ORDER}
            results[f"sn-lr+aug (k={k})"] = r
            log(f"sn-lr+aug k={k}: clean {r['clean']['accuracy']:.3f}, tel {r['tel']['accuracy']:.3f}, "
                f"noise10 {r['noise10']['accuracy']:.3f}")
    if out_json:
        Path(out_json).write_text(json.dumps({"hparams": hp, "folds": {int(f): sorted(set(actors[fold == f].tolist()))
                                                                      for f in range(hp["n_folds"])},
                                              "results": results}, indent=1, default=float))
    return results, logits


def fetch_vad(weights_dir: Path = WEIGHTS, version: str = "6.2.3") -> Path:
    """Copy ``silero_vad/data/silero_vad.onnx`` and the wheel's LICENSE into ``weights_dir``."""
    import subprocess
    import tempfile
    import zipfile

    from emonb.models.spec import sha256_file
    from emonb.models.voice.specs import SILERO_VAD

    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", f"silero-vad=={version}", "--no-deps",
                        "--only-binary=:all:", "-d", tmp], check=True)
        wheel = next(Path(tmp).glob("silero_vad-*.whl"))
        with zipfile.ZipFile(wheel) as z:
            (weights_dir / "silero_vad.onnx").write_bytes(z.read("silero_vad/data/silero_vad.onnx"))
            lic = next(n for n in z.namelist() if n.endswith("licenses/LICENSE"))
            (weights_dir / "LICENSE-silero-vad").write_bytes(z.read(lic))
    out = weights_dir / "silero_vad.onnx"
    digest = sha256_file(out)
    print(f"{out}: sha256 {digest} ({'matches' if digest == SILERO_VAD.sha256 else 'DIFFERS FROM'} the spec)")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stage", nargs="?", default="all", choices=["features", "evaluate", "ship", "all"])
    ap.add_argument("--cache", default=str(CACHE))
    ap.add_argument("--variants", nargs="*", default=None)
    ap.add_argument("--results", default=str(ROOT.parent / "voice-cache" / "variants.json"))
    ap.add_argument("--fetch-vad", action="store_true", help="only re-extract silero_vad.onnx from its wheel")
    args = ap.parse_args(argv)
    if args.fetch_vad:
        fetch_vad()
        return
    cache = Path(args.cache)
    if args.stage in ("features", "all"):
        build_features(HPARAMS["conditions"] + HPARAMS["aug_copies"], cache=cache)
    if args.stage in ("evaluate", "all"):
        t = time.time()
        evaluate(cache=cache, out_json=Path(args.results), variants=args.variants)
        log(f"evaluation: {time.time() - t:.0f} s")


if __name__ == "__main__":
    main()
