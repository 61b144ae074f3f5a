"""Real-time factor and peak memory of ``eb.analyze_voice`` on one CPU core, per speech-emotion model.

Builds a recording of ``--minutes`` minutes by concatenating real RAVDESS clips from
``../shared/data/speech/ravdess`` (synthetic harmonic "speech" when that folder is absent), pins
the process to one CPU core (``os.sched_setaffinity``; BLAS and onnxruntime get one thread), runs
``analyze_voice`` once to warm up on a short piece, then times it on the whole recording for each
model and prints: duration, wall time, CPU time, the real-time factor (audio seconds per second of
CPU time on the one core: robust to other processes sharing the machine; the wall-clock figure is
printed too), peak traced memory (tracemalloc: numpy buffers included) and the process's peak RSS.
Also times the emotion step alone (functionals + CNN on precomputed frame features).

    python benchmarks/voice_speed.py [--minutes 10] [--clips 8] [--models voice-emotion-ravdess voice-emotion-ravdess-v1]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RAVDESS = ROOT.parent / "shared" / "data" / "speech" / "ravdess"
SR = 16000


def build_recording(minutes: float) -> tuple[np.ndarray, str]:
    n = int(minutes * 60 * SR)
    if RAVDESS.is_dir():
        import soundfile as sf

        files = sorted(RAVDESS.glob("*.flac"))
        parts, total, i = [], 0, 0
        while total < n:
            y, sr = sf.read(str(files[(i * 37) % len(files)]), dtype="float32")
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


def pin_one_core() -> str:
    try:
        cpu = sorted(os.sched_getaffinity(0))[0]
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return "not pinned (no sched_setaffinity); BLAS/onnxruntime limited to one thread"


def time_analyze(y, *, model, vad) -> dict:
    import emonb as eb

    eb.analyze_voice(y[: 5 * SR], sampling_rate=SR, model=model, vad=vad)  # warm up: load the models
    tracemalloc.start()
    t, c = time.perf_counter(), time.process_time()
    ds = eb.analyze_voice(y, sampling_rate=SR, model=model, vad=vad)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    dur = len(y) / SR
    return {"model": model, "duration_s": dur, "wall_s": wall, "cpu_s": cpu, "rtf_cpu": dur / cpu,
            "rtf_wall": dur / wall, "peak_traced_mib": peak / 2 ** 20,
            "emotion_frames": float(np.isfinite(ds.voice_emotion.values).all(axis=1).mean()),
            "segments": int(ds.sizes["segment"])}


def time_emotion_step(y, *, model) -> dict:
    """CPU time of the emotion model alone (window functionals + CNN) on precomputed frame features."""
    import emonb as eb
    from emonb.models.voice import _core
    from emonb.models.voice import features as F
    from emonb.models.voice.analyze import _emotion_probs

    feats = _core.analyze_signal(y)
    rt = _core.get_runtime(eb.models.get_model(model))
    n = len(feats["time"])
    starts = np.arange(0, max(n - 200, 0) + 1, 50)
    c = time.process_time()
    X = F.window_functionals(feats, feats["voice"], starts, 200)
    _emotion_probs(rt, X, feats, np.stack([starts, starts + 200], axis=1))
    cpu = time.process_time() - c
    return {"model": model, "emotion_cpu_s": cpu, "emotion_rtf_cpu": len(y) / SR / cpu}


def write_card(rows, *, what, pinned, rss):
    """Put the default model's speed into its card (the JSON beside the weights)."""
    import json
    import platform

    import emonb as eb
    from emonb.models.spec import WEIGHTS_DIR

    spec = eb.models.get_model("voice-emotion-ravdess")
    card_path = WEIGHTS_DIR / (Path(spec.weights).stem + ".json")
    card = json.loads(card_path.read_text())
    r = next(x for x in rows if x["model"] == spec.name)
    card["speed"] = {
        "rtf_cpu_one_core": round(r["rtf_cpu"], 1), "rtf_wall": round(r["rtf_wall"], 1),
        "emotion_step_rtf_cpu": round(r["emotion_rtf_cpu"], 1),
        "others": {x["model"]: round(x["rtf_cpu"], 1) for x in rows if x["model"] != spec.name},
        "recording_min": round(r["duration_s"] / 60, 2), "recording": what, "cpu": platform.processor() or platform.machine(),
        "setup": f"eb.analyze_voice (VAD + features + emotion), {pinned}, one BLAS/onnxruntime thread; "
                 "real-time factor = audio seconds per CPU second",
        "peak_traced_mib": round(r["peak_traced_mib"], 1), "peak_rss_mib": round(rss, 1),
        "measured_by": "python benchmarks/voice_speed.py --write-card",
    }
    card_path.write_text(json.dumps(card, indent=1, default=float) + "\n")
    print(f"speed written to {card_path}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--clips", type=int, default=8, help="also time predict_voice_clips on this many clips")
    ap.add_argument("--models", nargs="*", default=["voice-emotion-ravdess", "voice-emotion-ravdess-v1"])
    ap.add_argument("--write-card", action="store_true",
                    help="store the default model's figures in its card (emonb/models/weights/*.json)")
    args = ap.parse_args(argv)

    import emonb as eb

    pinned = pin_one_core()
    vad = eb.models.get_model("silero-vad")
    vad = vad.replace(params={**vad.params, "num_threads": 1})
    y, what = build_recording(args.minutes)
    dur = len(y) / SR
    print(f"recording: {dur / 60:.1f} min ({what}); {pinned}; load average {os.getloadavg()[0]:.1f}")
    rows = []
    for m in args.models:
        r = time_analyze(y, model=m, vad=vad)
        r.update(time_emotion_step(y[: min(len(y), 120 * SR)], model=m))
        rows.append(r)
        print(f"{m}: analyze_voice {r['cpu_s']:.2f} s CPU ({r['wall_s']:.2f} s wall) -> real-time factor "
              f"{r['rtf_cpu']:.0f}x on one core ({r['rtf_wall']:.0f}x wall); emotion step alone "
              f"{r['emotion_rtf_cpu']:.0f}x; peak traced memory {r['peak_traced_mib']:.0f} MiB; "
              f"{r['emotion_frames']:.0%} of frames with an emotion estimate, {r['segments']} segments")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process peak RSS: {rss:.0f} MiB")
    if args.write_card:
        write_card(rows, what=what, pinned=pinned, rss=rss)
    if args.clips and RAVDESS.is_dir():
        files = sorted(RAVDESS.glob("*.flac"))[: args.clips]
        for m in args.models:
            t = time.process_time()
            eb.predict_voice_clips([str(f) for f in files], model=m, vad=vad, progress=False)
            w = time.process_time() - t
            print(f"predict_voice_clips ({m}): {len(files)} clips in {w:.2f} s CPU ({len(files) / w:.1f} clips/s)")
    return rows


if __name__ == "__main__":
    main()
