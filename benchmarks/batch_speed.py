"""Wall time and peak memory of ``emonb.batch.run_batch`` on copies of the sample session.

Usage::

    python benchmarks/batch_speed.py                          # 8 copies, 1 and 2 workers, face stride 5
    python benchmarks/batch_speed.py --copies 16 --workers 1 2 4 --stride 1
    python benchmarks/batch_speed.py --modalities physio,text  # the cheap steps only

Each copy is a manifest pointing at the embedded sample files (``emonb/data/sample``) under its
own ``session_id``, so every run does the full work: load, analyse, late fusion, write a zarr
store. Every configuration starts a fresh local cluster (its start-up and the workers' model loading
are part of the wall time) and writes into a fresh folder (nothing is skipped).

Memory: ``peak tree`` is the peak resident memory of this process plus all its children (nanny
and worker processes), sampled every 50 ms; ``peak worker`` is the largest per-session figure the
workers reported (the worker process's resident memory while it ran a session).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path


class TreeMemory:
    """Peak summed RSS of this process and its descendants, sampled in a thread."""

    def __init__(self, interval: float = 0.05):
        import psutil

        self.proc = psutil.Process()
        self.psutil = psutil
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()

    def _sample(self):
        total = 0
        for p in [self.proc, *self.proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except (self.psutil.Error, OSError):
                continue
        self.peak = max(self.peak, total)

    def _run(self):
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self):
        self._sample()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def make_copies(folder: Path, n: int) -> list[Path]:
    """``n`` manifests naming the sample files by absolute path, session ids copy-01 ... copy-nn."""
    import yaml

    from emonb.session import SAMPLE_DIR

    m = yaml.safe_load((SAMPLE_DIR / "session.yaml").read_text())
    for key in ("video", "audio", "transcript"):
        if isinstance(m.get(key), str) and m[key] != "video":
            m[key] = str(SAMPLE_DIR / m[key])
    if isinstance(m.get("physio"), dict):
        m["physio"]["path"] = str(SAMPLE_DIR / m["physio"]["path"])
    elif isinstance(m.get("physio"), str):
        m["physio"] = str(SAMPLE_DIR / m["physio"])
    paths = []
    for i in range(1, n + 1):
        d = folder / f"copy-{i:02d}"
        d.mkdir(parents=True, exist_ok=True)
        p = d / "session.yaml"
        p.write_text(yaml.safe_dump({**m, "session_id": f"copy-{i:02d}"}, sort_keys=False))
        paths.append(p)
    return paths


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=8)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--stride", type=int, default=5, help="face: analyse every n-th frame")
    ap.add_argument("--modalities", default="face,voice,physio,text")
    ap.add_argument("--keep", action="store_true", help="keep the output folders")
    args = ap.parse_args(argv)

    from emonb.batch import run_batch

    mods = [m for m in args.modalities.split(",") if m]
    tmp = Path(tempfile.mkdtemp(prefix="emonb-batch-bench-"))
    sources = make_copies(tmp / "data", args.copies)
    print(f"emonb batch benchmark: {args.copies} copies of the sample session (about 20 s each), "
          f"modalities {','.join(mods)}, face stride {args.stride} "
          f"({-(-472 // args.stride)} of 472 frames), late fusion at 10 Hz, zarr store per session")
    print(f"machine: {os.cpu_count()} CPU core(s) visible")
    rows = []
    for n in args.workers:
        out = tmp / f"out-{n}"
        with TreeMemory() as mem:
            t0 = time.perf_counter()
            res = run_batch(sources, out, workers=n, modalities=mods,
                            options={"face": {"stride": args.stride}} if "face" in mods else None,
                            progress=False, resume=False)
            wall = time.perf_counter() - t0
        if res.failed:
            print(res)
        per = [s.seconds for s in res.ok]
        rows.append({"workers": n, "wall": wall, "ok": len(res.ok), "task_sum": sum(per),
                     "task_mean": sum(per) / max(len(per), 1),
                     "peak_worker": max((s.peak_memory_mb for s in res.ok), default=float("nan")),
                     "peak_tree": mem.peak / 2**20})
    base = rows[0]["wall"]
    print(f"\n{'workers':>7} {'ok':>4} {'wall s':>8} {'speed-up':>8} {'sessions/min':>12} "
          f"{'mean task s':>11} {'peak worker MiB':>15} {'peak tree MiB':>13}")
    for r in rows:
        print(f"{r['workers']:>7} {r['ok']:>4} {r['wall']:>8.1f} {base / r['wall']:>8.2f} "
              f"{60 * r['ok'] / r['wall']:>12.1f} {r['task_mean']:>11.1f} {r['peak_worker']:>15.0f} "
              f"{r['peak_tree']:>13.0f}")
    if args.keep:
        print(f"outputs kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
