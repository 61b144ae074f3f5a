"""Reproduce, compare and ship the speech-emotion models (emonb/models/weights/voice_emotion_ravdess.*).

Usage::

    python scripts/train_voice_model.py features   # analyse RAVDESS once per condition -> cache
    python scripts/train_voice_model.py evaluate   # every variant in the same leave-actors-out folds
    python scripts/train_voice_model.py final      # (optional) the final fit alone, beside the evaluation
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

from emonb.models.voice.augment import CONDITIONS as CONDITIONS_DOC  # noqa: E402
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
    "ensemble_cnn_weight": 0.5,  # CNN share beside the session head
    "ensemble_mix": [1 / 3, 1 / 3, 1 / 3],  # lr, lr+aug, cnn
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


# --- the comparison -------------------------------------------------------------------------------

def metrics(logits, yi, *, bins):
    from emonb.models.voice.calibration import ece, log_softmax

    p = np.exp(log_softmax(np.nan_to_num(logits, nan=0.0)))
    pred = p.argmax(axis=1)
    rec = {c: float(np.mean(pred[yi == k] == k)) for k, c in enumerate(ORDER)}
    return {"accuracy": float(np.mean(pred == yi)), "balanced_accuracy": float(np.mean(list(rec.values()))),
            "recall": rec, "ece": ece(p, yi, n_bins=bins)}


def cross_fitted_temperature(oof, yi, fold):
    """Per clip, the temperature fitted on the out-of-fold logits of the other folds' actors."""
    from emonb.models.voice.calibration import fit_temperature

    oof = np.nan_to_num(oof, nan=0.0)
    Ts = {int(f): fit_temperature(oof[fold != f], yi[fold != f]) for f in np.unique(fold)}
    return np.array([Ts[int(f)] for f in fold]), Ts, fit_temperature(oof, yi)


#: variant name -> (description, key in the per-condition logits)
VARIANTS = {
    "lr": "functionals + logistic regression, clean training clips (the first model)",
    "lr+aug": "functionals + logistic regression, clean + 2 perturbed copies",
    "lr & lr+aug": "the two functionals heads, log-probabilities averaged",
    "sn-lr+aug": "speaker-normalised functionals (over all of the held-out speaker's clips) + LR, augmented",
    "cnn": "log-mel CNN (8-16-32-32, mean+std pooling), augmented",
    "lr+aug & cnn": "lr+aug and cnn, log-probabilities averaged",
    "ensemble": "lr, lr+aug and cnn, log-probabilities averaged (equal weights)",
    "ensemble-sn": "sn-lr+aug and cnn, log-probabilities averaged (per-session calibration)",
}
_KEY = {"lr": "functionals_clean", "lr+aug": "functionals", "lr & lr+aug": "functionals_mix",
        "sn-lr+aug": "session", "cnn": "cnn", "lr+aug & cnn": "ensemble_aug", "ensemble": "ensemble",
        "ensemble-sn": "ensemble_session"}


def recipe_params() -> dict:
    hp = HPARAMS
    return {k: hp[k] for k in ("lr_C", "sn_C", "sn_prior", "sn_train_subsets")} | {
        "cnn_weight": hp["ensemble_cnn_weight"], "mix": hp["ensemble_mix"]}


def evaluate(*, cache: Path = CACHE, out_json: Path | None = None, cnn: bool = True):
    """Every variant in the same leave-actors-out folds, under every test condition."""
    from emonb.models.voice import recipe as R

    hp = HPARAMS
    rp = recipe_params()
    lab = labels_table()
    yi = np.array([ORDER.index(c) for c in lab.label])
    ylab = lab.label.to_numpy(dtype=object)
    actors = lab.actor.to_numpy().astype(str).astype(object)
    fold = R.speaker_folds(actors, n_splits=hp["n_folds"], seed=hp["seed"])
    conds = hp["conditions"]
    data = load_cache(conds + hp["aug_copies"], cache)
    vers = ["clean"] + hp["aug_copies"]
    X = {c: np.stack([it.functionals for it in data[c]]).astype(np.float64) for c in data}
    K = len(ORDER)
    L = {c: {} for c in conds}  # condition -> key -> out-of-fold logits
    subsets = {k: {c: [] for c in conds} for k in hp["sn_eval_subsets"]}
    secs = {"heads": 0.0, "cnn": 0.0}

    def put(c, key, te, v):
        L[c].setdefault(key, np.full((len(yi), K), np.nan))[te] = v

    for f in range(hp["n_folds"]):
        tr, te = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        log(f"fold {f}: test actors {sorted(set(actors[te].tolist()), key=int)}")
        t = time.time()
        cnn_file = cache / f"cnn_fold{f}.npz"
        heads = R.fit_heads([[data[v][i] for i in tr] for v in vers], ylab[tr], actors[tr], classes=ORDER,
                            params=rp, cnn=False, seed=hp["seed"] + f)
        secs["heads"] += time.time() - t
        if cnn:
            t = time.time()
            if cnn_file.exists():
                with np.load(cnn_file, allow_pickle=False) as z:
                    heads["cnn"] = {k: z[k] for k in z.files if k != "seconds"}
                    secs["cnn"] += float(z["seconds"]) if "seconds" in z.files else float("nan")
                log(f"fold {f}: CNN weights from {cnn_file} (its training time is counted)")
            else:
                from emonb.models.voice.train_cnn import train_melcnn

                heads["cnn"], info = train_melcnn([[data[v][i] for i in tr] for v in vers], ylab[tr], classes=ORDER,
                                                  params=hp["cnn"], seed=hp["seed"] + f)
                np.savez(cnn_file, seconds=np.asarray(info["seconds"]), **heads["cnn"])
                log(f"fold {f}: CNN trained in {info['seconds']:.0f} s")
                secs["cnn"] += time.time() - t
        for c in conds:
            lg = R.heads_logits(heads, [data[c][i] for i in te], actors[te])
            lg.update(R.combine(lg, cnn_weight=rp["cnn_weight"], mix=rp["mix"]))
            for key, v in lg.items():
                put(c, key, te, v)
            s = heads["session"]
            rng = np.random.default_rng([hp["seed"], f, 23])
            for k in hp["sn_eval_subsets"]:
                for d in range(hp["sn_draws"]):
                    Z = R._sn_rows(X[c][te], actors[te], rng, subsets=[k], prior=s["prior"],
                                   pop_mean=s["pop_mean"], pop_var=s["pop_var"])
                    Z = np.clip(np.nan_to_num(Z, nan=0.0, posinf=0.0, neginf=0.0), -8.0, 8.0)
                    if len(subsets[k][c]) <= d:
                        subsets[k][c].append(np.full((len(yi), K), np.nan))
                    subsets[k][c][d][te] = Z @ s["W"] + s["b"]
    results = {}
    bins = hp["ece_bins"]
    for name, desc in VARIANTS.items():
        key = _KEY[name]
        if key not in L["clean"]:
            continue
        oof = L["clean"][key]
        Tf, Ts, T_all = cross_fitted_temperature(oof, yi, fold)
        r = {"description": desc, "clean": metrics(oof, yi, bins=bins)}
        r["clean"]["ece_calibrated"] = metrics(np.nan_to_num(oof) / Tf[:, None], yi, bins=bins)["ece"]
        for c in conds[1:]:
            r[c] = metrics(np.nan_to_num(L[c][key]) / Tf[:, None], yi, bins=bins)
        r["temperature_per_fold"] = Ts
        r["temperature_all"] = T_all
        results[name] = r
        log(f"{name:12s} clean {r['clean']['accuracy']:.3f} (bal {r['clean']['balanced_accuracy']:.3f}), "
            f"tel {r['tel']['accuracy']:.3f}, noise10 {r['noise10']['accuracy']:.3f}, "
            f"ECE {r['clean']['ece']:.3f} -> {r['clean']['ece_calibrated']:.3f}, T {T_all:.2f}")
    for k in hp["sn_eval_subsets"]:
        oof_all = subsets[k]["clean"]
        Tf = cross_fitted_temperature(oof_all[0], yi, fold)[0]
        r = {"description": f"sn-lr+aug with each clip normalised over a random {k} of its speaker's clips "
                            f"(itself included; {hp['sn_draws']} draws averaged)"}
        for c in conds:
            ms = [metrics(np.nan_to_num(Lk) / (Tf[:, None] if c != "clean" else 1.0), yi, bins=bins)
                  for Lk in subsets[k][c]]
            r[c] = {m: float(np.mean([x[m] for x in ms])) for m in ("accuracy", "balanced_accuracy", "ece")}
            r[c]["recall"] = {cl: float(np.mean([x["recall"][cl] for x in ms])) for cl in ORDER}
        r["clean"]["ece_calibrated"] = float(np.mean([metrics(np.nan_to_num(Lk) / Tf[:, None], yi, bins=bins)["ece"]
                                                      for Lk in subsets[k]["clean"]]))
        results[f"sn-lr+aug (k={k})"] = r
        log(f"sn-lr+aug k={k:<3d} clean {r['clean']['accuracy']:.3f}, tel {r['tel']['accuracy']:.3f}, "
            f"noise10 {r['noise10']['accuracy']:.3f}")
    out = {"hparams": hp, "data": data_hashes(), "conditions": {c: CONDITIONS_DOC[c] for c in conds},
           "folds": {int(f): sorted(set(actors[fold == f].tolist()), key=int) for f in range(hp["n_folds"])},
           "seconds": secs, "results": results}
    if out_json:
        Path(out_json).parent.mkdir(parents=True, exist_ok=True)
        Path(out_json).write_text(json.dumps(out, indent=1, default=float))
        np.savez(Path(out_json).with_suffix(".logits.npz"), fold=fold, y=yi,
                 **{f"{c}__{k}": v for c in conds for k, v in L[c].items()})
    return out


SHIP_NAME = "voice_emotion_ravdess_v2"
LIMITS = ("Acted, read speech: 16 professional North-American English actors (8 female, 8 male) reading two "
          "sentences in a quiet studio; RAVDESS 'calm' is folded into 'neutral'. Not validated on spontaneous "
          "speech, other languages or accents, children or older speakers, overlapping talkers, or music. "
          "Outputs are probabilities of an expressed (acted) category, not of a felt emotion. The 8 kHz and "
          "noisy figures are for synthetic perturbations (G.711 telephone channel, stationary noise), not "
          "recorded calls or real rooms. Per-session calibration assumes one speaker per session.")


def fit_final(*, cache: Path = CACHE, cnn: bool = True) -> dict:
    """The heads on all 16 actors; the CNN's weights are kept in the cache (cnn_final.npz) and reused."""
    from emonb.models.voice import recipe as R
    from emonb.models.voice.train_cnn import train_melcnn

    hp = HPARAMS
    rp = recipe_params()
    lab = labels_table()
    ylab = lab.label.to_numpy(dtype=object)
    actors = lab.actor.to_numpy().astype(str).astype(object)
    vers = ["clean"] + hp["aug_copies"]
    data = load_cache(vers, cache)
    t = time.time()
    heads = R.fit_heads([data[v] for v in vers], ylab, actors, classes=ORDER, params=rp, cnn=False, seed=hp["seed"])
    heads["fit_seconds"] = time.time() - t
    if cnn:
        f = cache / "cnn_final.npz"
        if f.exists():
            with np.load(f, allow_pickle=False) as z:
                heads["cnn"] = {k: z[k] for k in z.files if k != "seconds"}
                heads["cnn_seconds"] = float(z["seconds"])
            log(f"final CNN weights from {f} (trained in {heads['cnn_seconds']:.0f} s)")
        else:
            heads["cnn"], info = train_melcnn([data[v] for v in vers], ylab, classes=ORDER, params=hp["cnn"],
                                              seed=hp["seed"], log=log)
            np.savez(f, seconds=np.asarray(info["seconds"]), **heads["cnn"])
            heads["cnn_seconds"] = info["seconds"]
            log(f"final CNN trained in {info['seconds']:.0f} s")
        heads["fit_seconds"] += heads["cnn_seconds"]
    return heads


def ship(*, cache: Path = CACHE, results: Path, weights_dir: Path = WEIGHTS, variant: str = "ensemble"):
    """Train the shipped model on all 16 actors, write weights + card, print the SHA-256."""
    import torch

    from emonb.models.spec import sha256_file
    from emonb.models.voice import recipe as R
    from emonb.models.voice.specs import VOICE_EMOTION

    hp = HPARAMS
    heads = fit_final(cache=cache, cnn=variant.startswith("ensemble"))
    fit_s = heads["fit_seconds"]
    ev = json.loads(Path(results).read_text())
    with np.load(Path(results).with_suffix(".logits.npz"), allow_pickle=False) as z:
        yi = z["y"]
        oof = {k.split("__", 1)[1]: z[k] for k in z.files if k.startswith("clean__")}
    temps = R.fit_temperatures(oof, yi)
    log(f"fitted on all 16 actors in {fit_s:.0f} s; temperatures {temps}")
    out = weights_dir / f"{SHIP_NAME}.npz"
    meta = {"name": VOICE_EMOTION.name, "variant": variant, "recipe": heads["params"], "cnn_params": hp["cnn"],
            "temperatures": temps, "seed": hp["seed"], "data": ev["data"]}
    R.save_heads(out, heads, temps, classes=ORDER, meta=meta)
    digest = sha256_file(out)
    shipped = ev["results"][variant]
    card = {
        "name": VOICE_EMOTION.name, "version": "2", "weights": out.name, "sha256": digest,
        "architecture": ("eGeMAPS-like utterance functionals (110) -> two class-balanced L2 logistic regressions "
                         "(one on the clean clips, one on the clean clips and their perturbed copies), and the "
                         "40-band log-mel spectrum -> CNN (3x3 conv blocks 8-16-32-32 with batch norm folded, "
                         "2x2 max-pooling x3, band mean, masked mean+std pooling over speech frames, linear); "
                         "the three log-probabilities averaged with equal weights, divided by a temperature. Optional "
                         "per-session head: logistic regression on speaker-normalised functionals "
                         "(session_calibration=True / speakers=). Runs in numpy; weights are a pickle-free .npz."),
        "training_data": ("RAVDESS speech, actors 1-16 (960 clips, 16 kHz mono FLAC; 8 acted emotions, 2 sentences, "
                          "normal and strong intensity; calm folded into neutral), each clip plus 2 perturbed copies "
                          "(speed 0.9-1.1 or pitch +-2 st, synthetic-room reverb RT60 0.2-0.9 s, white/pink/brown "
                          "noise 0-30 dB SNR, 300-3400 Hz 8 kHz mu-law telephone channel)."),
        "data_hashes": ev["data"],
        "license": VOICE_EMOTION.license, "citation": VOICE_EMOTION.citation,
        "limitations": LIMITS,
        "validation": {"protocol": "4 folds split by actor (never by clip), the first model's folds",
                       "folds": ev["folds"], "conditions": ev["conditions"],
                       "calibration": "temperature scaling, cross-fitted: fold f's temperature is fitted on the "
                                      "out-of-fold logits of the other 12 actors; shipped temperatures on all "
                                      "out-of-fold logits; ECE with 15 bins",
                       "shipped_variant": variant, "shipped": shipped, "variants": ev["results"]},
        "temperatures": temps,
        "hparams": hp,
        "train_seconds": {"final_fit": fit_s, "evaluation": ev.get("seconds")},
        "speed": None,
        "torch": torch.__version__, "numpy": np.__version__,
        "reproduce": "python scripts/train_voice_model.py all",
    }
    (weights_dir / f"{SHIP_NAME}.json").write_text(json.dumps(card, indent=1, default=float) + "\n")
    log(f"{out}: sha256 {digest}")
    return out, digest


def markdown_table(results: dict, *, rtf: dict | None = None) -> str:
    """The variant table (markdown) from the evaluation's results."""
    rtf = rtf or {}
    head = ("| variant | accuracy | balanced | recall ang/dis/fea/hap/sad/sur/neu | ECE before -> after | "
            "8 kHz | noise 10 dB | real-time (1 core) |\n|---|---|---|---|---|---|---|---|")
    rows = [head]
    for name, r in results.items():
        c = r["clean"]
        rec = "/".join(f"{c['recall'][k]:.2f}" for k in ORDER)
        ece = f"{c['ece']:.3f} -> {c['ece_calibrated']:.3f}" if "ece_calibrated" in c else f"{c['ece']:.3f}"
        rows.append(f"| {name} | {c['accuracy']:.3f} | {c['balanced_accuracy']:.3f} | {rec} | {ece} | "
                    f"{r['tel']['accuracy']:.3f} | {r['noise10']['accuracy']:.3f} | {rtf.get(name, '')} |")
    return "\n".join(rows)


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
    ap.add_argument("stage", nargs="?", default="all", choices=["features", "evaluate", "final", "ship", "all"])
    ap.add_argument("--cache", default=str(CACHE))
    ap.add_argument("--no-cnn", action="store_true", help="evaluate without the CNN variants (fast)")
    ap.add_argument("--results", default=str(ROOT.parent / "voice-cache" / "variants.json"))
    ap.add_argument("--variant", default="ensemble", help="variant to ship")
    ap.add_argument("--table", action="store_true", help="only print the variant table of --results")
    ap.add_argument("--fetch-vad", action="store_true", help="only re-extract silero_vad.onnx from its wheel")
    args = ap.parse_args(argv)
    if args.fetch_vad:
        fetch_vad()
        return
    cache = Path(args.cache)
    if args.table:
        print(markdown_table(json.loads(Path(args.results).read_text())["results"]))
        return
    if args.stage in ("features", "all"):
        build_features(HPARAMS["conditions"] + HPARAMS["aug_copies"], cache=cache)
    if args.stage in ("evaluate", "all"):
        t = time.time()
        evaluate(cache=cache, out_json=Path(args.results), cnn=not args.no_cnn)
        log(f"evaluation: {time.time() - t:.0f} s")
    if args.stage == "final":  # the final fit alone (it can run beside the evaluation)
        fit_final(cache=cache)
    if args.stage in ("ship", "all"):
        ship(cache=cache, results=Path(args.results), variant=args.variant)


if __name__ == "__main__":
    main()
