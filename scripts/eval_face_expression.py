"""Measure registered expression models on the FER2013 validation split (PublicTest, deduplicated).

    python scripts/eval_face_expression.py                       # every face expression model
    python scripts/eval_face_expression.py mini-xception-fer     # one

Each 48x48 crop is resized to the model's input size as emonb's pipeline resizes a face crop
(cubic when enlarging, area when shrinking) and run through emonb.models.face.expression's
predict_expression, i.e. exactly the probabilities emonb shows. Prints accuracy, balanced accuracy,
per-class recall, ECE (15 bins), the same after histogram equalisation, and ms per crop.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "face" / "fer2013" / "fer2013_trainval.npz"


def crops_for(spec, images: np.ndarray) -> np.ndarray:
    import cv2

    size = tuple(spec.input_size or (64, 64))
    if images.shape[1:] == size:
        return images
    interp = cv2.INTER_AREA if images.shape[1] > size[0] else cv2.INTER_CUBIC
    return np.stack([cv2.resize(im, size[::-1], interpolation=interp) for im in images])


def measure(name: str, images: np.ndarray, labels: np.ndarray) -> dict:
    import cv2

    from emonb.models import get_model
    from emonb.models.face.expression import predict_expression
    from emonb.models.face.train_expression import metrics

    spec = get_model(name)
    rt = spec.create(device="cpu")
    x = crops_for(spec, images)
    t = time.perf_counter()
    probs = predict_expression(rt, x, batch_size=64)
    ms = (time.perf_counter() - t) / len(x) * 1000
    out = metrics(probs, labels)
    eq = crops_for(spec, np.stack([cv2.equalizeHist(im) for im in images]))
    out["accuracy_equalized"] = metrics(predict_expression(rt, eq, batch_size=64), labels)["accuracy"]
    out["ms_per_crop"] = ms
    return out


def main(argv: list[str]) -> int:
    from emonb.models import list_models
    from emonb.models.face.train_expression import load_pack, split_indices
    from emonb.schema import EMOTIONS

    pack = load_pack(DATA)
    _, va = split_indices(pack)
    images, labels = pack["images"][va], pack["y"][va]
    names = argv or [n for n in list_models(modality="face", task="expression").index]
    for name in names:
        m = measure(name, images, labels)
        rec = ", ".join(f"{e} {m['recall'][e]:.2f}" for e in EMOTIONS)
        print(f"{name}: PublicTest (dedup, n={m['n']}) accuracy {m['accuracy']:.4f}, balanced {m['balanced_accuracy']:.4f}, "
              f"ECE {m['ece']:.4f}, NLL {m['nll']:.3f}; equalized accuracy {m['accuracy_equalized']:.4f}; "
              f"{m['ms_per_crop']:.2f} ms/crop (batch 64, 1 thread)\n  recall: {rec}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
