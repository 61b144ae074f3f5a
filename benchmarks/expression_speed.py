"""Milliseconds per face crop of every registered expression model, on one CPU thread.

Crops are random gray images at each model's input size, run through
``emonb.models.face.expression.predict_expression`` (the path ``analyze_face`` takes) in batches
of 1, 16 and 64, with torch held to one thread. The median of ``--repeats`` timed runs after a
warm-up is printed.

Usage::

    python benchmarks/expression_speed.py
    python benchmarks/expression_speed.py --crops 512 --repeats 7
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> int:
    import torch

    from emonb.models import list_models
    from emonb.models.face.expression import predict_expression
    from emonb.models import get_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crops", type=int, default=256, help="crops per timed run")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per setting")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    print(f"torch {torch.__version__}, 1 thread; ms per crop (median of {args.repeats} runs of {args.crops} crops)")
    for name in list_models(modality="face", task="expression").index:
        spec = get_model(name)
        rt = spec.create(device="cpu")
        h, w = spec.input_size or (64, 64)
        crops = rng.integers(0, 256, (args.crops, h, w)).astype(np.uint8)
        row = []
        for batch in (1, 16, 64):
            predict_expression(rt, crops[:batch], batch_size=batch)  # warm-up (and weights load)
            times = []
            for _ in range(args.repeats):
                t = time.perf_counter()
                predict_expression(rt, crops, batch_size=batch)
                times.append((time.perf_counter() - t) / len(crops) * 1000)
            row.append(f"batch {batch}: {np.median(times):.2f}")
        print(f"{name:<20} {w}x{h}  " + ", ".join(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
