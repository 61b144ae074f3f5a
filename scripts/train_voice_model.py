"""Reproduce the shipped speech-emotion weights (emonb/models/weights/voice_emotion_ravdess.npz).

Usage::

    python scripts/train_voice_model.py [--data ../shared/data/speech/ravdess] [--output PATH]

Trains on RAVDESS speech, actors 1-16 (16 kHz mono FLAC plus labels.csv), validates with four
folds split by actor (never by clip), prints the speaker-independent accuracy, per-class recall and
confusion matrix, writes the weights and prints their SHA-256 for the model spec and PROVENANCE.md.
Deterministic for a given seed. About 4 minutes on two CPU cores.

    python scripts/train_voice_model.py --fetch-vad

re-extracts ``silero_vad.onnx`` and its MIT notice from the ``silero-vad`` 6.2.3 wheel (pip
download, no install; emonb never imports the silero-vad package) and checks its SHA-256.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def fetch_vad(weights_dir: Path = ROOT / "emonb" / "models" / "weights", version: str = "6.2.3") -> Path:
    """Copy ``silero_vad/data/silero_vad.onnx`` and the wheel's LICENSE into ``weights_dir``."""
    import subprocess
    import sys
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
    from emonb.models.spec import sha256_file
    from emonb.models.voice.specs import VOICE_EMOTION
    from emonb.models.voice.train import train_emotion_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "speech" / "ravdess"))
    ap.add_argument("--output", default=str(ROOT / "emonb" / "models" / "weights" / "voice_emotion_ravdess.npz"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--C", type=float, default=0.01)
    ap.add_argument("--fetch-vad", action="store_true", help="only re-extract silero_vad.onnx from its wheel")
    args = ap.parse_args(argv)
    if args.fetch_vad:
        fetch_vad()
        return

    t = time.time()
    model = train_emotion_model(
        args.data, labels="emotion", groups="actor", output=args.output, name=VOICE_EMOTION.name,
        C=args.C, n_splits=4, seed=args.seed, license=VOICE_EMOTION.license,
        citation=VOICE_EMOTION.citation, training_data=VOICE_EMOTION.training_data,
    )
    print(f"trained in {time.time() - t:.0f} s")
    print(model.summary())
    print("folds (held-out actors):", json.dumps(model.meta["folds"]))
    print(model.confusion.to_string())
    print("sha256:", sha256_file(model.path))


if __name__ == "__main__":
    main()
