"""Expression-spotting F1 (MEGC protocol) and speed on generated videos with known truth.

Generates, per frame rate, a set of videos of a real face (frame 0 of the embedded sample video,
and ``../shared/data/video/single_face.jpg`` when that file exists) making micro- (0.2-0.45 s) and
macro- (1-3 s) expressions with small head sway, blinks and noise
(:func:`emonb.spotting.synthetic.make_spotting_video`), plus head-turn-only videos; runs the face
analysis and :func:`emonb.spot_expressions`; prints F1 for micro, macro and overall (IoU >= 0.5,
pooled over videos) and the speed of each stage.

    python benchmarks/spotting_f1.py                      # 4 videos of 20 s at 30 and at 60 fps
    python benchmarks/spotting_f1.py --videos 2 --duration 12 --fps 30
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import emonb as eb
from emonb.spotting import evaluate
from emonb.spotting.synthetic import make_spotting_video

SHARED_FACE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "video" / "single_face.jpg"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fps", type=float, nargs="+", default=[30.0, 60.0])
    ap.add_argument("--videos", type=int, default=4, help="videos with expressions per frame rate")
    ap.add_argument("--turns", type=int, default=1, help="head-turn-only videos per frame rate")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds per video")
    ap.add_argument("--seed", type=int, default=100)
    ap.add_argument("--out", default=None, help="folder for the videos (default: a temporary one)")
    args = ap.parse_args(argv)

    faces = [None] + ([str(SHARED_FACE)] if SHARED_FACE.exists() else [])
    folder = Path(args.out or tempfile.mkdtemp(prefix="emonb-spotting-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"faces: {['sample video frame 0' if f is None else Path(f).name for f in faces]}; videos in {folder}")
    rows, speed = [], []
    for fps in args.fps:
        spots_all, truth_all, turn_fp = [], [], 0
        for i in range(args.videos + args.turns):
            turn = i >= args.videos
            seed = args.seed + i + int(fps) * 1000
            image = faces[i % len(faces)]
            path = folder / f"{'turn' if turn else 'expr'}_{fps:g}fps_{i}.mp4"
            t0 = time.perf_counter()
            truth = make_spotting_video(path, fps=fps, duration=args.duration, seed=seed, image=image,
                                        head_motion="turn" if turn else "small", events=[] if turn else "random")
            t1 = time.perf_counter()
            face = eb.analyze_face(path, progress=False, detector_score=False)
            t2 = time.perf_counter()
            spots = eb.spot_expressions(face, progress=False)
            t3 = time.perf_counter()
            n = int(truth.attrs["n_frames"])
            speed.append({"fps": fps, "frames": n, "generate_s": t1 - t0, "face_s": t2 - t1, "spot_s": t3 - t2})
            if turn:
                turn_fp += spots.sizes["spot"]
            else:
                spots_all.append(spots)
                truth_all.append(truth)
            r1 = evaluate(spots, truth)
            print(f"  {path.name}: {len(truth)} true, {spots.sizes['spot']} spotted, "
                  f"F1 {r1.loc['overall', 'f1']:.2f}  (generate {t1 - t0:.1f} s, face {t2 - t1:.1f} s, "
                  f"spot {t3 - t2:.2f} s)", flush=True)
        r = evaluate(spots_all, truth_all)
        ious = [m[3] for m in r.attrs["matches"]]
        for kind in ("micro", "macro", "overall"):
            row = r.loc[kind]
            rows.append({"fps": fps, "kind": kind, "n_true": int(row.n_true), "n_spotted": int(row.n_spotted),
                         "tp": int(row.tp), "fp": int(row.fp), "fn": int(row.fn), "precision": row.precision,
                         "recall": row.recall, "f1": row.f1})
        print(f"fps {fps:g}: head-turn-only videos: {turn_fp} false spots in {args.turns} x {args.duration:g} s; "
              f"mean IoU of matches {np.mean(ious) if ious else float('nan'):.2f}")
    res = pd.DataFrame(rows).set_index(["fps", "kind"])
    sp = pd.DataFrame(speed).groupby("fps").sum()
    sp["face_frames_per_s"] = sp["frames"] / sp["face_s"]
    sp["spot_frames_per_s"] = sp["frames"] / sp["spot_s"]
    sp["generate_ms_per_frame"] = 1000 * sp["generate_s"] / sp["frames"]
    with pd.option_context("display.width", 160, "display.precision", 3):
        print("\nSpotting F1 (MEGC: IoU >= 0.5, pooled over videos)")
        print(res)
        print("\nSpeed (this machine)")
        print(sp[["frames", "generate_ms_per_frame", "face_frames_per_s", "spot_frames_per_s"]])
    return res, sp


if __name__ == "__main__":
    main()
