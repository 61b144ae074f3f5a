"""Quantize emonb-fernet to 8-bit integers, calibrate it, measure it, and (optionally) install it.

    python scripts/quantize_face_expression.py             # build and measure in runs/face_expression/int8/
    python scripts/quantize_face_expression.py --install   # also copy the file + record into emonb

Reproduces ``emonb/models/weights/emonb_fernet_fer_int8.onnx`` from the shipped float weights
(``emonb_fernet_fer.pt``) and the FER2013 pack: settings in
:data:`emonb.models.face.quantize_expression.CALIBRATION`; the temperature is fitted on the
validation split (PublicTest, deduplicated) on the quantized network's logits. About a minute on
2 CPU cores. Needs ``onnx`` (in emonb's ``test`` extra).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "face" / "fer2013" / "fer2013_trainval.npz"
OUT = ROOT / "runs" / "face_expression" / "int8"
WEIGHTS = ROOT / "emonb" / "models" / "weights"
NAME = "emonb_fernet_fer_int8"


def float_model():
    """The shipped float FerNet (its SHA-256 checked), batch norms folded."""
    import torch

    from emonb.models import get_model
    from emonb.models.face.fernet import FerNet, fuse_for_inference

    spec = get_model("emonb-fernet")
    net = FerNet(**{k: spec.params[k] for k in ("widths", "blocks", "head")})
    net.load_state_dict(torch.load(str(spec.check_weights()), map_location="cpu", weights_only=True))
    return fuse_for_inference(net), spec


def ms_per_crop(path: Path, x: np.ndarray) -> float:
    """Milliseconds per crop, batches of 64 on one thread (the session built once, as emonb runs it)."""
    from emonb.models.face.quantize_expression import one_thread_session

    sess = one_thread_session(path)
    batch = {"x": np.ascontiguousarray(x[:64], np.float32)}
    sess.run(None, batch)
    t = time.perf_counter()
    for _ in range(20):
        sess.run(None, batch)
    return (time.perf_counter() - t) / 20 / 64 * 1000


def build(data: Path, out: Path, n_images: int, log=print) -> dict:
    """Export, quantize, calibrate and measure; writes ``out/NAME.onnx`` and ``out/record.json``."""
    import cv2
    import onnxruntime
    import torch

    from emonb.models.face import quantize_expression as Q
    from emonb.models.face import train_expression as T

    t0 = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    pack = T.load_pack(data)
    train, val = T.split_indices(pack)
    x_va, y_va = pack["images"][val], pack["y"][val]
    net, spec = float_model()
    fp32 = Q.export_onnx(net, out / "fp32.onnx")
    cal = Q.calibration_sample(train, n_images)
    int8 = Q.quantize_onnx(fp32, out / f"{NAME}.onnx", T.to_input(pack["images"][cal]).numpy())
    inputs = T.to_input(x_va).numpy()
    logits = Q.onnx_logits(int8, inputs)
    temp = T.fit_temperature(logits, y_va)
    Q.append_temperature(int8, temp)

    def probs(images):
        return T._softmax(Q.onnx_logits(int8, T.to_input(images).numpy()).astype(np.float64))

    final = probs(x_va)
    flip = (final + probs(x_va[:, :, ::-1].copy())) / 2
    eq = np.stack([cv2.equalizeHist(im) for im in x_va])
    float_pred = T.predict_logits(net, x_va).argmax(axis=1)
    record = {
        "model": "emonb-fernet-int8", "base_weights": {"file": spec.weights, "sha256": spec.sha256},
        "calibration": {**Q.CALIBRATION, "images": int(len(cal))},
        "data": {"file": data.name, "sha256": T.sha256_file(data), "validation": "PublicTest, deduplicated against Training",
                 "n_validation": int(len(y_va))},
        "temperature": temp,
        "validation_uncalibrated": T.metrics(T._softmax(logits.astype(np.float64)), y_va),
        "validation": T.metrics(final, y_va), "validation_flip": T.metrics(flip, y_va),
        "validation_equalized": T.metrics(probs(eq), y_va),
        "agreement_with_float": float((final.argmax(axis=1) == float_pred).mean()),
        "ms_per_crop_1_thread": round(ms_per_crop(int8, inputs), 3),
        "onnx_sha256": T.sha256_file(int8), "seconds": round(time.perf_counter() - t0, 1),
        "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
                     "onnx": __import__("onnx").__version__},
    }
    (out / "fp32.onnx").unlink()
    tmp = out / "record.json.tmp"
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    tmp.replace(out / "record.json")
    v, u = record["validation"], record["validation_uncalibrated"]
    log(f"int8: PublicTest accuracy {v['accuracy']:.4f} (flip {record['validation_flip']['accuracy']:.4f}, "
        f"equalised {record['validation_equalized']['accuracy']:.4f}), balanced {v['balanced_accuracy']:.4f}, "
        f"ECE {u['ece']:.4f} -> {v['ece']:.4f} at T={temp:.3f}; top-1 agreement with the float network "
        f"{record['agreement_with_float']:.4f}; {record['ms_per_crop_1_thread']:.3f} ms per crop; "
        f"{record['seconds']:.0f} s")
    return record


def install(out: Path) -> None:
    for src, dst in ((out / f"{NAME}.onnx", WEIGHTS / f"{NAME}.onnx"), (out / "record.json", WEIGHTS / f"{NAME}.json")):
        tmp = dst.with_name(dst.name + ".tmp")
        shutil.copyfile(src, tmp)
        tmp.replace(dst)
    rec = json.loads((out / "record.json").read_text())
    print(f"installed {WEIGHTS / (NAME + '.onnx')} (SHA-256 {rec['onnx_sha256']}); update FER_NET_INT8's sha256 "
          "in emonb/models/face/specs.py if it changed")


def main(argv=None) -> int:
    from emonb.models.face.quantize_expression import CALIBRATION

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=OUT, help="folder for the built file and its record")
    ap.add_argument("--images", type=int, default=CALIBRATION["images"], help="calibration crops from Training")
    ap.add_argument("--install", action="store_true", help="copy the result into emonb/models/weights")
    args = ap.parse_args(argv)
    if not args.data.is_file():
        print(f"FER2013 pack not found: {args.data}", file=sys.stderr)
        return 1
    build(args.data, args.out, args.images)
    if args.install:
        install(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
