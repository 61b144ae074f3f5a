"""Fusion on generated sessions with known ground truth: accuracy figures and speed.

Prints, for a complementary setting (face blind within anger/fear/sadness, voice blind within
happiness/surprise/disgust) and a pure-noise setting (voice unrelated to the labels), the accuracy
and macro-F1 of each single modality and of late/early/attention fusion (leave-one-subject-out),
compared on the steps where the best single modality has an output; then fuse() throughput.

    python benchmarks/fusion_speed.py [--subjects 4] [--duration 60]
"""

from __future__ import annotations

import argparse
import time

import emonb as eb
from emonb.fusion.simulate import simulate_session


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--subjects", type=int, default=4)
    ap.add_argument("--duration", type=float, default=60.0)
    args = ap.parse_args()
    settings = {
        "complementary": {},
        "voice pure noise": dict(face="good", voice="noise", strength=1.5, noise=1.0),
    }
    for title, kw in settings.items():
        trees = [simulate_session(args.duration, seed=100 + i, subject=f"s{i}", **kw)
                 for i in range(args.subjects)]
        singles = {m: eb.fusion.evaluate(trees, method="late", modalities=[m], cv=None)
                   for m in ("face", "voice")}
        best = max(singles, key=lambda m: singles[m].accuracy)
        mask = singles[best].covered
        print(f"\n== {title}: {args.subjects} subjects x {args.duration:g} s, 10 Hz grid ==")
        print(f"{'method':<22}{'acc':>7}{'F1':>7}{'acc*':>7}{'F1*':>7}{'CCC v':>7}{'CCC a':>7}{'s':>7}")
        for m, r in singles.items():
            s = r.subset(mask)
            print(f"{m + ' alone':<22}{r.accuracy:7.3f}{r.macro_f1:7.3f}{s.accuracy:7.3f}{s.macro_f1:7.3f}"
                  f"{r.ccc_valence:7.3f}{r.ccc_arousal:7.3f}{'':>7}")
        for m in ("late", "early", "attention"):
            t0 = time.perf_counter()
            r = eb.fusion.evaluate(trees, method=m)
            dt = time.perf_counter() - t0
            s = r.subset(mask)
            print(f"{m + ' (LOSO)':<22}{r.accuracy:7.3f}{r.macro_f1:7.3f}{s.accuracy:7.3f}{s.macro_f1:7.3f}"
                  f"{r.ccc_valence:7.3f}{r.ccc_arousal:7.3f}{dt:7.1f}")
        r = eb.fusion.evaluate(trees, method="late", cv=None)
        s = r.subset(mask)
        print(f"{'late, default weights':<22}{r.accuracy:7.3f}{r.macro_f1:7.3f}{s.accuracy:7.3f}"
              f"{s.macro_f1:7.3f}{r.ccc_valence:7.3f}{r.ccc_arousal:7.3f}")
        print("acc/F1: over all annotated steps with an output; acc*/F1*: on the steps where the best "
              f"single modality ({best}) has an output")

    tree = simulate_session(600, seed=1)
    fusers = {"late": None, "early": eb.fusion.train([tree], method="early"),
              "attention": eb.fusion.train([tree], method="attention")}
    print("\n== fuse() speed, 600 s session, 10 Hz grid ==")
    for m, f in fusers.items():
        t0 = time.perf_counter()
        eb.fuse(tree, method=m, model=f)
        dt = time.perf_counter() - t0
        print(f"{m:<10} {dt:6.2f} s  ({600 / dt:,.0f}x real time)")


if __name__ == "__main__":
    main()
