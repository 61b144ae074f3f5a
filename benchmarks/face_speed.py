"""Face analysis speed and memory: end-to-end frames per second next to decode-only.

Loops a real clip (default: the Pexels interview in ../shared/data/video, 640x360) to a few
minutes by remuxing its packets (no re-encoding), then runs, each in a fresh process so peak
memory is per configuration:

- decode only: every frame decoded to RGB (what any analysis must at least pay),
- ``eb.analyze_face`` end to end with several ``stride`` / ``scale`` settings.

"fps" is source-video frames covered per second of wall time (with ``stride=2`` half of them
are analysed). Peak memory is the process's maximum resident set size; the 1-hour figure is
extrapolated from the measured baseline plus the result's bytes per analysed frame.

Usage::

    python benchmarks/face_speed.py                  # 5-minute loop, default configurations
    python benchmarks/face_speed.py --minutes 1 --configs "1,1.0;2,0.5"
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_VIDEO = ROOT.parent / "shared" / "data" / "video" / "WolfgangLanger_Pexels.mp4"


def loop_video(src: Path, dst: Path, minutes: float) -> Path:
    """Concatenate ``src`` with itself (packet copy) until it lasts ``minutes``."""
    import av

    with av.open(str(src)) as c:
        s = c.streams.video[0]
        dur = float(c.duration / 1e6) if c.duration else float(s.duration * s.time_base)
    loops = max(1, int(round(minutes * 60 / dur)))
    out = av.open(str(dst), "w")
    with av.open(str(src)) as c:
        s_in = c.streams.video[0]
        s_out = out.add_stream_from_template(s_in)
    offset = 0
    for _ in range(loops):
        with av.open(str(src)) as c:
            s_in = c.streams.video[0]
            last = 0
            for pkt in c.demux(s_in):
                if pkt.dts is None:
                    continue
                step = pkt.duration or 1
                pkt.pts = (pkt.pts or 0) + offset
                pkt.dts = pkt.dts + offset
                last = max(last, pkt.pts + step - offset)
                pkt.stream = s_out
                out.mux(pkt)
            offset += last
    out.close()
    return dst


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_one(cfg: dict) -> dict:
    """Runs inside a fresh process; prints one JSON line."""
    import numpy as np

    import emonb as eb
    from emonb.io.video import VideoReader

    path = cfg["video"]
    reader = VideoReader(path)
    out = {"frames": reader.n_frames, "duration_s": reader.duration, "size": f"{reader.width}x{reader.height}"}
    if cfg["kind"] == "decode":
        t = time.perf_counter()
        n = 0
        size = None
        if cfg.get("scale", 1.0) != 1.0:
            size = (int(reader.width * cfg["scale"]) // 2 * 2, int(reader.height * cfg["scale"]) // 2 * 2)
        for times, idx, frames in reader.iter_chunks(64, stride=cfg.get("stride", 1), size=size):
            n += len(idx)
        wall = time.perf_counter() - t
        out.update(wall_s=wall, fps=reader.n_frames / wall, decoded=n, peak_rss_mb=_rss_mb())
        return out
    # warm the models on one still frame so the timing is the steady state plus decode
    eb.analyze_face(np.zeros((64, 64, 3), np.uint8), progress=False)
    base = _rss_mb()
    t = time.perf_counter()
    ds = eb.analyze_face(path, stride=cfg["stride"], scale=cfg["scale"], progress=False,
                         detector_score=cfg.get("detector_score", True), landmarks=cfg.get("landmarks", True))
    wall = time.perf_counter() - t
    n_an = int(ds.sizes["time"])
    result_mb = ds.nbytes / 2**20
    out.update(wall_s=wall, fps=reader.n_frames / wall, analysed=n_an, analysed_fps=n_an / wall,
               baseline_rss_mb=base, peak_rss_mb=_rss_mb(), result_mb=result_mb,
               faces_found=float(np.mean(ds.face_count.values > 0)))
    per_frame = result_mb / max(n_an, 1)
    frames_1h = 3600 * reader.n_frames / reader.duration / cfg["stride"]
    out["rss_1h_estimate_mb"] = base + per_frame * frames_1h + (out["peak_rss_mb"] - base - result_mb)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--configs", default="1,1.0;1,0.5;2,0.5;3,0.5",
                    help="';'-separated 'stride,scale' pairs")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(json.loads(args.one))))
        return 0
    if not args.video.exists():
        print(f"video not found: {args.video}")
        return 1
    print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}, python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        looped = loop_video(args.video, Path(tmp) / "looped.mp4", args.minutes)
        cfgs = [{"kind": "decode", "stride": 1, "scale": 1.0}]
        for pair in args.configs.split(";"):
            stride, scale = pair.split(",")
            cfgs.append({"kind": "analyze", "stride": int(stride), "scale": float(scale)})
        print(f"{'run':<34}{'fps':>8}{'analysed/s':>12}{'wall s':>9}{'peak MB':>9}{'1 h MB (est.)':>15}")
        for cfg in cfgs:
            cfg["video"] = str(looped)
            proc = subprocess.run([sys.executable, __file__, "--one", json.dumps(cfg)], capture_output=True,
                                  text=True)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            if proc.returncode or not lines:
                print(f"{cfg['kind']} failed:\n{proc.stderr[-2000:]}")
                continue
            r = json.loads(lines[-1])
            if cfg["kind"] == "decode":
                label = f"decode only (RGB, {r['size']}, {r['frames']} fr)"
                print(f"{label:<34}{r['fps']:>8.1f}{'':>12}{r['wall_s']:>9.1f}{r['peak_rss_mb']:>9.0f}")
            else:
                label = f"analyze_face stride={cfg['stride']} scale={cfg['scale']}"
                print(f"{label:<34}{r['fps']:>8.1f}{r['analysed_fps']:>12.1f}{r['wall_s']:>9.1f}"
                      f"{r['peak_rss_mb']:>9.0f}{r['rss_1h_estimate_mb']:>15.0f}"
                      f"   (faces in {r['faces_found']:.0%} of frames, result {r['result_mb']:.0f} MB)")
            sys.stdout.flush()
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
