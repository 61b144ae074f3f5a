"""Real-time factor and peak memory of ``eb.analyze_voice`` on a long recording.

Builds a recording of ``--minutes`` minutes by concatenating real RAVDESS clips from
``../shared/data/speech/ravdess`` (synthetic harmonic "speech" when that folder is absent), runs
``analyze_voice`` once to warm up on a short piece, then times it on the whole recording and prints:
duration, wall time, real-time factor (audio seconds per second of compute), CPU threads, peak
CPU time (robust to other processes sharing the machine), peak traced memory (tracemalloc: numpy
buffers included) and the process's peak RSS.

    python benchmarks/voice_speed.py [--minutes 10] [--clips 8]
"""

from __future__ import annotations

import argparse
import os
import resource
import time
import tracemalloc
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RAVDESS = ROOT.parent / "shared" / "data" / "speech" / "ravdess"
SR = 16000


def build_recording(minutes: float) -> tuple[np.ndarray, str]:
    n = int(minutes * 60 * SR)
    if RAVDESS.is_dir():
        import soundfile as sf

        files = sorted(RAVDESS.glob("*.flac"))
        parts, total, i = [], 0, 0
        while total < n:
            y, sr = sf.read(str(files[i % len(files)]), dtype="float32")
            assert sr == SR
            parts.append(y)
            total += len(y)
            i += 1
        return np.concatenate(parts)[:n], f"{i} RAVDESS clips concatenated"
    rng = np.random.default_rng(0)
    t = np.arange(n) / SR
    f0 = 140 + 40 * np.sin(2 * np.pi * 0.3 * t)
    ph = 2 * np.pi * np.cumsum(f0) / SR
    y = sum(np.sin(k * ph) / k for k in range(1, 8)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))
    y = 0.2 * y / np.abs(y).max() + 0.003 * rng.standard_normal(n)
    return y.astype(np.float32), "synthetic harmonic signal (RAVDESS folder absent)"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--clips", type=int, default=8, help="also time predict_voice_clips on this many clips")
    args = ap.parse_args(argv)

    import emonb as eb

    y, what = build_recording(args.minutes)
    dur = len(y) / SR
    eb.analyze_voice(y[: 5 * SR], sampling_rate=SR)  # warm up: load both models
    tracemalloc.start()
    t = time.perf_counter()
    c = time.process_time()
    ds = eb.analyze_voice(y, sampling_rate=SR)
    wall = time.perf_counter() - t
    cpu = time.process_time() - c
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"recording: {dur / 60:.1f} min ({what})")
    print(f"analyze_voice: {wall:.2f} s wall -> real-time factor {dur / wall:.0f}x "
          f"({os.cpu_count()} CPU cores visible, load average {os.getloadavg()[0]:.1f})")
    print(f"CPU time {cpu:.2f} s (all threads) -> {dur / cpu:.0f}x real time per CPU-second; on an idle "
          f"2-core machine wall time is at most the CPU time")
    print(f"peak traced memory during the call: {peak / 2**20:.0f} MiB; process peak RSS: {rss:.0f} MiB")
    print(f"output: {ds.sizes['time']} frames, {ds.sizes['segment']} speech segments, "
          f"{np.isfinite(ds.voice_emotion.values).all(axis=1).mean():.0%} of frames with an emotion estimate")
    if args.clips and RAVDESS.is_dir():
        files = sorted(RAVDESS.glob("*.flac"))[: args.clips]
        t = time.perf_counter()
        eb.predict_voice_clips([str(f) for f in files], progress=False)
        w = time.perf_counter() - t
        print(f"predict_voice_clips: {len(files)} clips in {w:.2f} s ({len(files) / w:.1f} clips/s)")


if __name__ == "__main__":
    main()
