"""Fit emonb's AU mapping to OpenFace 2's AU intensities on the shared media, with a held-out person.

Reproduces ``emonb/models/weights/emonb_au_openface.json``:

1. runs emonb's face mesh on the shared videos and stills (cached in ``runs/face_aus/``);
2. reads OpenFace 2.0.6's outputs in ``../shared/data/video/openface/`` (a reference model, not
   human FACS coding; academic non-commercial terms: only the fitted numbers ship, not the files);
3. per AU, picks the ridge strength and "learned or hand rule" by blocked cross-validation inside
   the training clip, then fits the static and dynamic parameters (``emonb.models.face.au_fit``);
4. measures agreement (Pearson r per AU) on the held-out person, who is in none of the fits:
   ``single_face.mp4`` and ``face_noface.mov`` show the same woman, so both are held out (and so is
   ``single_face.jpg``).

Training: ``WolfgangLanger_Pexels.mp4`` (dynamic and static targets), the four posed stills and
the five faces of ``multi_face.jpg`` (static targets). Usage::

    python scripts/fit_face_aus.py [--data ../shared/data/video] [--no-write]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "emonb" / "models" / "weights" / "emonb_au_openface.json"
CACHE = ROOT / "runs" / "face_aus"
TRAIN_VIDEO = "WolfgangLanger_Pexels.mp4"
HELD_OUT_VIDEOS = ("single_face.mp4", "face_noface.mov")
TRAIN_STILLS = ("0-f1-su-ph.jpg", "0-f15-hao-ph.jpg", "15-f13-anc-ph.jpg", "45-m7-di-ph.jpg", "multi_face.jpg")
#: emonb's AU scale: OpenFace intensity (0-5) / INTENSITY_FULL, clipped to [0, 1].
INTENSITY_FULL = 3.0
#: The learned function replaces the hand rule only when its cross-validated r beats the rule's by this.
MIN_GAIN = 0.02
#: The baseline every fit is compared with: the hand rules alone.
RULES = {"au": "emonb-au-blendshape-rules"}
#: Version of the fitted parameters: 2 since frames are converted to RGB by ``emonb.io._yuv``.
VERSION = "2"


def _rounded(x: float):
    return None if not np.isfinite(x) else round(float(x), 3)


def sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def video_features(path: Path):
    """(frame numbers 1-based, features) of face 0 where emonb finds a mesh."""
    import emonb as eb
    from emonb.models.face.au_features import au_features

    ds = eb.analyze_face(path, progress=False, max_faces=1, min_track=1, model=RULES)
    X = au_features(ds.face_blendshape.isel(face=0).values, ds.face_landmarks.isel(face=0).values)
    rules = ds.face_au.isel(face=0)
    return ds.frame_index.values + 1, X, rules


def still_features(paths):
    """Per still: (features (F, K), boxes (F, 4), rule AUs) of every face found."""
    import emonb as eb
    from emonb.models.face.au_features import au_features

    ds = eb.predict_face_images(list(paths), progress=False, model=RULES)
    out = []
    for i in range(ds.sizes["image"]):
        n = int(ds.face_count.values[i])
        bs, lm = ds.face_blendshape.values[i, :n], ds.face_landmarks.values[i, :n]
        out.append((au_features(bs, lm), ds.face_box.values[i, :n], ds.face_au.isel(image=i).values[:n]))
    return out, list(ds.au.values)


def openface_rows(df: pd.DataFrame, aus) -> np.ndarray:
    return np.clip(df[[f"{a}_r" for a in aus]].to_numpy(float) / INTENSITY_FULL, 0.0, 1.0)


def match_still(of: pd.DataFrame, boxes: np.ndarray):
    """Pairs (our face index, OpenFace row) by the nearest face centre (within half a face width)."""
    pairs = []
    cx = of[[f"x_{i}" for i in range(68)]].mean(axis=1).to_numpy()
    cy = of[[f"y_{i}" for i in range(68)]].mean(axis=1).to_numpy()
    for j, b in enumerate(boxes):
        bx, by, w = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0]
        d = np.hypot(cx - bx, cy - by)
        k = int(np.argmin(d))
        if d[k] < 0.5 * w and float(of.get("success", pd.Series([1] * len(of))).iloc[k]) == 1:
            pairs.append((j, k))
    return pairs


def video_table(data: Path, name: str, aus, kind: str):
    of = pd.read_csv(data / "openface" / f"{Path(name).stem}.{kind}.csv").set_index("frame")
    frames, X, rules = video_features(data / name)
    ok = np.isfinite(X).all(axis=1) & np.isin(frames, of.index[of["success"] == 1])
    return X[ok], openface_rows(of.loc[frames[ok]], aus), rules.values[ok]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "video")
    ap.add_argument("--no-write", action="store_true", help="print the tables, do not write the JSON")
    ap.add_argument("--out", type=Path, default=OUT, help="where to write the fitted parameters")
    args = ap.parse_args(argv)
    data = args.data
    if not (data / "openface").is_dir():
        print(f"no OpenFace references at {data / 'openface'}", file=sys.stderr)
        return 1
    from emonb.models.face.au_fit import ALPHAS, AU_INPUTS, apply_fit, blocked_cv_r, fit_au, pearson
    from emonb.models.face.aus import FACE_AUS

    t_start = time.perf_counter()
    aus = list(AU_INPUTS)
    rule_col = {a: FACE_AUS.index(a) for a in aus}
    Xd, yd, rules_d = video_table(data, TRAIN_VIDEO, aus, "dynamic")
    Xs_v, ys_v, _ = video_table(data, TRAIN_VIDEO, aus, "static")
    stills, _ = still_features([data / s for s in TRAIN_STILLS])
    Xs, ys = [Xs_v], [ys_v]
    for s, (X, boxes, _) in zip(TRAIN_STILLS, stills):
        of = pd.read_csv(data / "openface" / f"{Path(s).stem}.csv")
        for j, k in match_still(of, boxes):
            Xs.append(X[j:j + 1])
            ys.append(openface_rows(of.iloc[[k]], aus))
    Xs, ys = np.concatenate(Xs), np.concatenate(ys)
    Xd_c = Xd - np.median(Xd, axis=0)
    model, choice = {}, []
    for j, au in enumerate(aus):
        rule_r = pearson(rules_d[:, rule_col[au]], yd[:, j])
        cv = {a: blocked_cv_r(au, Xd_c, yd[:, j], alpha=a) for a in ALPHAS}
        best = max(cv, key=lambda a: -np.inf if not np.isfinite(cv[a]) else cv[a])
        dyn = fit_au(au, Xd_c, yd[:, j], alpha=best) if np.std(yd[:, j]) > 1e-6 else None
        use = (dyn is not None and np.isfinite(cv[best]) and any(w > 0 for w in dyn["weights"])
               and (not np.isfinite(rule_r) or cv[best] > rule_r + MIN_GAIN))
        sta = fit_au(au, Xs, ys[:, j], alpha=best) if use else None
        if use:
            model[au] = {"dynamic": dyn, "static": sta, "cv_r": round(cv[best], 3), "rule_r": round(rule_r, 3)}
        choice.append({"au": au, "rule r (train clip)": rule_r, **{f"cv r a={a}": cv[a] for a in ALPHAS},
                       "uses": "learned" if use else "rule"})
    print(f"training: {TRAIN_VIDEO} ({len(Xd)} frames) + {len(Xs) - len(Xs_v)} faces in stills")
    print(pd.DataFrame(choice).set_index("au").round(3).to_string())

    rows = []
    for name in HELD_OUT_VIDEOS:
        for kind in ("dynamic", "static"):
            X, y, rules = video_table(data, name, aus, kind)
            Xc = X - np.median(X, axis=0)
            for j, au in enumerate(aus):
                learned = apply_fit(model[au][kind], Xc if kind == "dynamic" else X) if au in model else rules[:, rule_col[au]]
                rows.append({"clip": name, "target": kind, "au": au, "n": len(y),
                             "rule r": pearson(rules[:, rule_col[au]], y[:, j]),
                             "emonb r": pearson(learned, y[:, j]),
                             "openface sd": float(np.std(y[:, j]) * INTENSITY_FULL)})
    held = pd.DataFrame(rows)
    pd.set_option("display.width", 200)
    print("\nheld-out person (Pearson r per AU; NaN where OpenFace's AU is constant on the clip):")
    print(held.pivot_table(index="au", columns=["clip", "target"], values=["rule r", "emonb r"]).round(2).to_string())
    main_clip = held[(held["clip"] == HELD_OUT_VIDEOS[0]) & (held["target"] == "dynamic")].set_index("au")
    brows = main_clip.reindex(["AU01", "AU02", "AU04"])
    both = main_clip.dropna(subset=["emonb r"])
    print(f"\nover the {len(both)} AUs where OpenFace moves on {HELD_OUT_VIDEOS[0]}: mean r emonb "
          f"{both['emonb r'].mean():.3f}, rules {both['rule r'].fillna(0).mean():.3f} (a constant rule output counts as r = 0)")
    print(f"\nmean r on {HELD_OUT_VIDEOS[0]} (dynamic): rules {np.nanmean(main_clip['rule r'].to_numpy(float)):.3f}, "
          f"emonb {np.nanmean(main_clip['emonb r'].to_numpy(float)):.3f}; brows AU01/02/04: rules "
          f"{np.nanmean(brows['rule r'].to_numpy(float)):.3f}, emonb {np.nanmean(brows['emonb r'].to_numpy(float)):.3f} (means over the AUs where r is defined)")
    elapsed = time.perf_counter() - t_start
    if args.no_write:
        return 0
    files = [data / TRAIN_VIDEO, *(data / s for s in TRAIN_STILLS)]
    files += [data / "openface" / f"{Path(TRAIN_VIDEO).stem}.{k}.csv" for k in ("dynamic", "static")]
    files += [data / "openface" / f"{Path(s).stem}.csv" for s in TRAIN_STILLS]
    card = {
        "name": "emonb-au-openface-fit", "version": VERSION,
        "scale": f"OpenFace 2 intensity (0-5) / {INTENSITY_FULL:g}, clipped to [0, 1]",
        "reference": "OpenFace 2.0.6 (Baltrusaitis et al. 2018) AU intensities, static and dynamic models",
        "training": {"video": TRAIN_VIDEO, "stills": list(TRAIN_STILLS), "frames": int(len(Xd)),
                     "still_faces": int(len(Xs) - len(Xs_v)),
                     "sha256": {f.name: sha256(f) for f in files}},
        "held_out": list(HELD_OUT_VIDEOS) + ["single_face.jpg"],
        "selection": f"blocked 4-fold CV inside {TRAIN_VIDEO}; learned replaces the rule when CV r > rule r + {MIN_GAIN}",
        "alphas": list(ALPHAS), "fit_seconds_2_cpu": round(elapsed, 1),
        "aus": model,
        "held_out_r": {f"{r['clip']}:{r['target']}:{r['au']}": {"rule": _rounded(r["rule r"]),
                                                                "emonb": _rounded(r["emonb r"])}
                       for _, r in held.iterrows()},
    }
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(card, indent=1) + "\n")
    tmp.replace(args.out)
    print(f"\nwrote {args.out} ({elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
