"""Face analysis speed and memory: end-to-end frames per second next to decode-only.

Loops a real clip (default: the Pexels interview in ../shared/data/video, 640x360) to a few
minutes by remuxing its packets (no re-encoding), then runs, each in a fresh process so peak
memory is per configuration:

- decode only: every frame decoded to RGB (what any analysis must at least pay),
- a per-stage breakdown on the clip's first frames, each stage run on its own (wall and CPU
  milliseconds per frame; CPU time counts all threads, so it is the fairer figure on a busy
  machine),
- ``eb.analyze_face`` end to end with several ``stride`` / ``scale`` settings (with ``--previous``,
  each also with the previous default models: mini-Xception, AU rules, no occlusion network; with
  ``--against REV``, each also with emonb as it was at git revision ``REV``, whole: its models, its
  decoding and its pipeline, run from a ``git archive`` of that revision, interleaved).

"fps" is source-video frames covered per second of wall time (with ``stride=2`` half of them
are analysed). Peak memory is the process's maximum resident set size (``ru_maxrss``); the
"1 h est." column extrapolates it from the run's result bytes per analysed frame.

``--hour`` measures memory in length instead: the clip looped to each of ``--curve`` minutes
(default 5, 10, 20) at stride 1, then to 60 minutes at ``--hour-stride`` (default 4), each in a
fresh process, and finally the result arrays of a full hour at stride 1 on their own (a store
filled with 86,400 frames of one face and turned into the Dataset, without running the models).

Usage::

    python benchmarks/face_speed.py                  # 5-minute loop, default configurations
    python benchmarks/face_speed.py --minutes 1 --configs "1,1.0;2,0.5"
    python benchmarks/face_speed.py --minutes 1 --configs "1,1.0" --previous   # today's models vs before
    python benchmarks/face_speed.py --minutes 1 --configs "1,1.0;1,1.0;1,1.0" --against 201a1c3  # vs that code
    python benchmarks/face_speed.py --hour           # memory against video length (long)
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


#: the default models before emonb-fernet, the learned AUs and the occlusion network (``--previous``)
PREVIOUS_MODELS = {"expression": "mini-xception-fer", "au": "emonb-au-blendshape-rules", "occlusion": False}


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


def stage_breakdown(path: str, n_max: int = 480) -> dict:
    """Milliseconds per frame (wall, cpu) of each stage of the default pipeline, run one by one."""
    import av
    import cv2
    import numpy as np

    from emonb.io._yuv import frame_to_rgb
    from emonb.models.face.analyze import _pipeline
    from emonb.models.face.au_features import au_features
    from emonb.models.face.aus import emfacs_emotion
    from emonb.models.face.pipeline import _resize_crops
    from emonb.models.face.expression import align_crops, crop_sharpness, predict_expression
    from emonb.models.face.geometry import fraction_outside, pose_from_matrices

    times: dict = {}

    class stage:
        def __init__(self, name):
            self.name = name

        def __enter__(self):
            self.w, self.c = time.perf_counter(), time.process_time()

        def __exit__(self, *exc):
            w, c = times.get(self.name, (0.0, 0.0))
            times[self.name] = (w + time.perf_counter() - self.w, c + time.process_time() - self.c)

    pipe = _pipeline(None, "cpu", max_faces=4, flip=False, detector_score=True, batch_size=64)
    pipe.mesh.load()
    pipe.expression.load()
    raw = []
    with av.open(path) as c:
        st = c.streams.video[0]
        st.thread_type = "AUTO"
        with stage("decode (H.264, FFmpeg threads)"):
            for fr in c.decode(st):
                raw.append(fr)
                if len(raw) >= n_max:
                    break
    n = len(raw)
    with stage("YUV -> RGB (emonb.io._yuv)"):
        frames = [frame_to_rgb(f) for f in raw]
    del raw
    session = pipe.mesh.video_session()
    with stage("mesh: MediaPipe landmarker"):
        res = [session.detect(f, i / 24.0) for i, f in enumerate(frames)]
    session.close()
    with stage("face_score: BlazeFace every 12th"):
        for f, r in zip(frames[::12], res[::12]):
            pipe.face_scores(f, r)
    warm = [align_crops(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), r.landmarks, size=pipe.crop_size)
            for f, r in zip(frames[:8], res[:8])]
    predict_expression(pipe.expression, _resize_crops(np.concatenate(warm), pipe.expression))
    if pipe.occlusion is not None:
        pipe.occlusion_probs(np.concatenate(warm))  # first calls (torch, ONNX Runtime set-up) not timed
    with stage("gray + aligned crops + sharpness"):
        crops = [align_crops(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), r.landmarks, size=pipe.crop_size)
                 for f, r in zip(frames, res)]
        crops = np.concatenate(crops)
        crop_sharpness(crops)
    with stage(f"expression: {pipe.expression.spec.name} (1 thread)"):
        for s in range(0, len(crops), 32):
            predict_expression(pipe.expression, _resize_crops(crops[s:s + 32], pipe.expression))
    if pipe.occlusion is not None:
        with stage(f"occlusion: {pipe.occlusion.spec.name} (1 thread)"):
            for s in range(0, len(crops), 32):
                pipe.occlusion_probs(crops[s:s + 32])
    with stage("AU features, AUs, EMFACS, pose, outside"):
        for s in range(0, n, 32):
            rr = [r for r in res[s:s + 32] if r.n_faces]
            if rr:
                lm = np.concatenate([r.landmarks for r in rr])
                bs = np.concatenate([r.blendshapes for r in rr])
                aus = pipe.static_aus(bs, lm, au_features(bs, lm))
                emfacs_emotion(aus, pipe.aus)
                pose_from_matrices(np.concatenate([r.matrices for r in rr]))
                fraction_outside(lm, 640, 360)
    return {name: (w * 1000 / n, c * 1000 / n) for name, (w, c) in times.items()}


def store_only(n_frames: int) -> dict:
    """Peak memory of the result arrays alone: ``n_frames`` analysed frames of one face."""
    import numpy as np

    from emonb.models.face.analyze import _build_dataset, _Faces, _pipeline, _Store

    pipe = _pipeline(None, "cpu", max_faces=4, flip=False, detector_score=True, batch_size=64)
    base = _rss_mb()
    store = _Store(len(pipe.aus), 4, capacity=n_frames)
    rng = np.random.default_rng(0)
    z = rng.random((1, 478, 3)).astype(np.float32)
    one = _Faces(box=np.ones((1, 4), np.float32), score=np.ones(1, np.float32), landmarks=z,
                 blendshape=np.ones((1, 52), np.float32), pose=np.ones((1, 3), np.float32),
                 au=np.full((1, len(pipe.aus)), 0.5, np.float32), emotion=np.full((1, 7), 1 / 7, np.float32),
                 sharpness=np.ones(1, np.float32), outside=np.zeros(1, np.float32))
    slots = np.zeros(1, int)
    for i in range(n_frames):
        store.add(i / 24.0, i, one, slots)
    filled = _rss_mb()
    ds = _build_dataset(store, pipe, dim="time", coord_values=store.time[: store.n].copy(), au_threshold=0.5,
                        blur_threshold=100.0, attrs={})
    return {"frames": n_frames, "baseline_rss_mb": base, "filled_rss_mb": filled, "peak_rss_mb": _rss_mb(),
            "result_mb": ds.nbytes / 2**20}


def run_one(cfg: dict) -> dict:
    """Runs inside a fresh process; prints one JSON line."""
    import numpy as np

    import emonb as eb
    from emonb.io.video import VideoReader

    if cfg["kind"] == "store":
        return store_only(int(cfg["frames"]))
    path = cfg["video"]
    if cfg["kind"] == "stages":
        return {"stages": stage_breakdown(path)}
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
    # warm every model (the first frames hold a face, so expression and occlusion run too) so that
    # the timing is the steady state plus decode, not torch's or ONNX Runtime's first call
    eb.analyze_face(np.stack([reader.frame(i) for i in range(4)]), fps=24.0, progress=False,
                    model=cfg.get("model"))
    base = _rss_mb()
    t = time.perf_counter()
    cpu = time.process_time()
    ds = eb.analyze_face(path, stride=cfg["stride"], scale=cfg["scale"], progress=False,
                         detector_score=cfg.get("detector_score", True), landmarks=cfg.get("landmarks", True),
                         redetect=cfg.get("redetect"), parallel=cfg.get("parallel"), model=cfg.get("model"))
    wall = time.perf_counter() - t
    cpu = time.process_time() - cpu
    n_an = int(ds.sizes["time"])
    from emonb.models.face.analyze import _LAST_TIMING

    out["timing"] = dict(_LAST_TIMING)
    out["emonb"] = str(Path(eb.__file__).resolve().parent)
    out["parallel"] = int(ds.attrs.get("parallel", 1))
    result_mb = ds.nbytes / 2**20
    out.update(wall_s=wall, fps=reader.n_frames / wall, analysed=n_an, analysed_fps=n_an / wall,
               cpu_ms_per_analysed_frame=1000 * cpu / max(n_an, 1),
               baseline_rss_mb=base, peak_rss_mb=_rss_mb(), result_mb=result_mb,
               faces_found=float(np.mean(ds.face_count.values > 0)))
    per_frame = result_mb / max(n_an, 1)
    frames_1h = 3600 * reader.n_frames / reader.duration / cfg["stride"]
    out["rss_1h_estimate_mb"] = base + per_frame * frames_1h + (out["peak_rss_mb"] - base - result_mb)
    return out


def export_revision(rev: str, dst: Path) -> Path:
    """The ``emonb`` package as it was at git revision ``rev``, unpacked under ``dst``."""
    import tarfile

    archive = dst / "rev.tar"
    with archive.open("wb") as f:
        subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev, "emonb"], stdout=f, check=True)
    with tarfile.open(archive) as t:
        t.extractall(dst / "rev", filter="data")
    archive.unlink()
    return dst / "rev"


def _child(cfg: dict) -> dict | None:
    env = dict(os.environ)
    if cfg.get("against"):  # the old package first on the path, ahead of the installed one
        env["PYTHONPATH"] = os.pathsep.join([cfg["against"], env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    proc = subprocess.run([sys.executable, __file__, "--one", json.dumps(cfg)], capture_output=True, text=True,
                          env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        print(f"{cfg['kind']} failed:\n{proc.stderr[-2000:]}")
        return None
    out = json.loads(lines[-1])
    if cfg.get("against") and not out.get("emonb", "").startswith(cfg["against"]):
        raise SystemExit(f"--against: the child imported emonb from {out.get('emonb')}, not {cfg['against']}")
    return out


def hour_mode(args) -> int:
    """Peak memory against video length, measured (not extrapolated)."""
    runs = [(float(m), 1) for m in args.curve.split(",") if m.strip()] + [(60.0, int(args.hour_stride))]
    print(f"{'video':<10}{'stride':>7}{'analysed':>10}{'fps':>8}{'wall s':>9}{'baseline MB':>13}"
          f"{'peak MB':>9}{'result MB':>11}{'load':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for minutes, stride in runs:
            looped = loop_video(args.video, Path(tmp) / f"looped_{minutes:g}.mp4", minutes)
            r = _child({"kind": "analyze", "stride": stride, "scale": 1.0, "video": str(looped)})
            looped.unlink()
            if r is None:
                continue
            print(f"{minutes:>6.0f} min{stride:>7}{r['analysed']:>10}{r['fps']:>8.1f}{r['wall_s']:>9.0f}"
                  f"{r['baseline_rss_mb']:>13.0f}{r['peak_rss_mb']:>9.0f}{r['result_mb']:>11.0f}"
                  f"{os.getloadavg()[0]:>6.1f}")
            sys.stdout.flush()
    n = int(round(3600 * 24))
    r = _child({"kind": "store", "frames": n})
    if r:
        print(f"result arrays alone, 1 h at 24 fps, stride 1 ({n} frames, one face): "
              f"{r['result_mb']:.0f} MB in the Dataset; process {r['baseline_rss_mb']:.0f} MB before, "
              f"{r['peak_rss_mb']:.0f} MB peak (+{r['peak_rss_mb'] - r['baseline_rss_mb']:.0f} MB)")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--configs", default="1,1.0,-,1;1,1.0;1,1.0,0.5;1,0.5;2,1.0,-,1;2,1.0;2,0.5",
                    help="';'-separated 'stride,scale[,redetect[,parallel]]' settings ('-': default)")
    ap.add_argument("--no-stages", action="store_true", help="skip the per-stage breakdown")
    ap.add_argument("--previous", action="store_true",
                    help="after each setting, the same with the previous default models (today's code)")
    ap.add_argument("--against", metavar="REV",
                    help="after each setting, the same with emonb as it was at this git revision")
    ap.add_argument("--hour", action="store_true", help="memory against video length (see above)")
    ap.add_argument("--curve", default="5,10,20", help="minutes for --hour's stride-1 runs")
    ap.add_argument("--hour-stride", type=int, default=4, help="stride of --hour's 60-minute run")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(json.loads(args.one))))
        return 0
    if not args.video.exists():
        print(f"video not found: {args.video}")
        return 1
    print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}, python {sys.version.split()[0]}")
    if args.hour:
        return hour_mode(args)
    if not args.no_stages:
        r = _child({"kind": "stages", "video": str(args.video)})
        if r:
            print(f"per-stage breakdown (first {480} frames of {args.video.name}, each stage alone):")
            print(f"  {'stage':<40}{'wall ms':>9}{'cpu ms':>9}")
            for name, (w, c) in r["stages"].items():
                print(f"  {name:<40}{w:>9.2f}{c:>9.2f}")
            tot = [sum(v[i] for v in r["stages"].values()) for i in (0, 1)]
            print(f"  {'sum':<40}{tot[0]:>9.2f}{tot[1]:>9.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        looped = loop_video(args.video, Path(tmp) / "looped.mp4", args.minutes)
        old = export_revision(args.against, Path(tmp)) if args.against else None
        cfgs = [{"kind": "decode", "stride": 1, "scale": 1.0}]
        for item in args.configs.split(";"):
            parts = item.split(",")
            cfg = {"kind": "analyze", "stride": int(parts[0]), "scale": float(parts[1])}
            if len(parts) > 2 and parts[2] not in ("", "-"):
                cfg["redetect"] = float(parts[2])
            if len(parts) > 3 and parts[3] not in ("", "-"):
                cfg["parallel"] = int(parts[3])
            cfgs.append(cfg)
            if args.previous:
                cfgs.append(dict(cfg, model=PREVIOUS_MODELS))
            if args.against:
                cfgs.append(dict(cfg, against=str(old)))
        print(f"{'run (analyze_face)':<50}{'fps':>8}{'analysed/s':>12}{'cpu ms/fr':>10}{'wall s':>9}{'peak MB':>9}"
              f"{'1 h MB (est.)':>15}{'load':>6}")
        for cfg in cfgs:
            cfg["video"] = str(looped)
            r = _child(cfg)
            if r is None:
                continue
            if cfg["kind"] == "decode":
                label = f"decode only (RGB, {r['size']}, {r['frames']} fr)"
                print(f"{label:<50}{r['fps']:>8.1f}{'':>12}{'':>10}{r['wall_s']:>9.1f}{r['peak_rss_mb']:>9.0f}"
                      f"{'':>15}{os.getloadavg()[0]:>6.1f}")
            else:
                label = f"stride={cfg['stride']} scale={cfg['scale']}"
                if cfg.get("redetect") is not None:
                    label += f" redetect={cfg['redetect']:g}"
                label += f" parallel={r['parallel']}"
                if cfg.get("model"):
                    label += " (previous models)"
                if cfg.get("against"):
                    label += f" ({args.against})"
                print(f"{label:<50}{r['fps']:>8.1f}{r['analysed_fps']:>12.1f}{r['cpu_ms_per_analysed_frame']:>10.1f}"
                      f"{r['wall_s']:>9.1f}{r['peak_rss_mb']:>9.0f}{r['rss_1h_estimate_mb']:>15.0f}"
                      f"{os.getloadavg()[0]:>6.1f}"
                      f"   (faces in {r['faces_found']:.0%} of frames, result {r['result_mb']:.0f} MB)")
                tm = r.get("timing") or {}
                if tm and r["parallel"] == 1:
                    print(f"{'':<4}main thread: mesh {tm['mesh_s']:.1f} s, waiting for decoded frames "
                          f"{tm['wait_decode_s']:.1f} s, waiting for the worker {tm['wait_worker_s']:.1f} s; "
                          f"worker busy {tm['worker_s']:.1f} s")
            sys.stdout.flush()
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
