"""Train emonb's expression network on FER2013 + FER+ votes and (optionally) install its weights.

    python scripts/train_face_expression.py --recipe ferplus            # train (resumes if stopped)
    python scripts/train_face_expression.py --recipe ferplus --install  # copy weights + card into emonb
    python scripts/train_face_expression.py --table                     # every recipe tried, side by side

Recipes (every hyper-parameter) live in emonb.models.face.train_expression.RECIPES. Runs go to
runs/face_expression/<recipe>/ (git-ignored): checkpoint.pt after every epoch, then weights.pt and
record.json (PublicTest figures, ECE before/after temperature scaling, data SHA-256, wall time).
Long runs belong in the background with a log: nohup python scripts/train_face_expression.py
--recipe ferplus > runs/ferplus.log 2>&1 &
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "face" / "fer2013" / "fer2013_trainval.npz"
RUNS = ROOT / "runs" / "face_expression"
WEIGHTS = ROOT / "emonb" / "models" / "weights"


def _table() -> int:
    rows = []
    for rec_path in sorted(RUNS.glob("*/record.json")):
        r = json.loads(rec_path.read_text())
        v, u = r["validation"], r["validation_uncalibrated"]
        rows.append(f"| {r['recipe']['name']} | {r['recipe']['epochs']} | {v['accuracy']:.4f} | "
                    f"{r['validation_flip']['accuracy']:.4f} | {v['balanced_accuracy']:.4f} | "
                    f"{u['ece']:.4f} | {v['ece']:.4f} | {r['temperature']:.3f} | "
                    f"{r['validation_equalized']['accuracy']:.4f} | {r['train_seconds'] / 60:.0f} |")
    print("| recipe | epochs | PublicTest acc | with flip | balanced acc | ECE before | ECE after | T | "
          "acc, equalized | minutes |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


def _install(run: Path) -> int:
    rec = json.loads((run / "record.json").read_text())
    dst = WEIGHTS / "emonb_fernet_fer.pt"
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.copyfile(run / "weights.pt", tmp)
    tmp.replace(dst)
    card = WEIGHTS / "emonb_fernet_fer.json"
    card.write_text(json.dumps(rec, indent=1) + "\n")
    print(f"installed {dst} (SHA-256 {rec['weights_sha256']}) and {card}; update FER_NET's sha256 in "
          "emonb/models/face/specs.py if it changed")
    return 0


def main(argv=None) -> int:
    from emonb.models.face import train_expression as T

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="ferplus", help=f"one of {sorted(T.RECIPES)}")
    ap.add_argument("--data", default=str(DATA), help="fer2013_trainval.npz")
    ap.add_argument("--out", help="run folder (default runs/face_expression/<recipe>)")
    ap.add_argument("--epochs", type=int, help="override the recipe's epochs")
    ap.add_argument("--limit", type=int, help="train on the first N shuffled images (a quick trial)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--no-resume", action="store_true", help="start over even if a checkpoint exists")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    ap.add_argument("--install", action="store_true", help="copy the finished run's weights into emonb")
    ap.add_argument("--table", action="store_true", help="print the table of finished runs")
    args = ap.parse_args(argv)
    if args.table:
        return _table()
    overrides = {k: v for k, v in (("epochs", args.epochs), ("limit", args.limit)) if v is not None}
    recipe = T.recipe(args.recipe, **overrides)
    run = Path(args.out) if args.out else RUNS / recipe.name
    if args.install:
        return _install(run)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    T.train(recipe, args.data, run, device=args.device, resume=not args.no_resume, progress=not args.quiet,
            log=lambda m: print(m, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
