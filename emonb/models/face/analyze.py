"""Face analysis of videos and image stacks over time (:func:`analyze_face`).

The stages live in their own modules: :mod:`.source` (inputs as chunks of frames),
:mod:`.sequence` (the mesh over a video, in parallel parts), :mod:`.pipeline` (the models: crops,
expression, AUs), :mod:`.store` (per-frame accumulation), :mod:`.dataset` (the result Dataset) and
:mod:`.stills` (:func:`predict_face_images`). This module drives them.

:func:`analyze_face` runs, per analysed frame: MediaPipe FaceLandmarker (478-point mesh, 52
blendshapes, head pose; VIDEO mode, tracking across frames), a face tracker (stable ``face``
ids), action units derived from blendshapes and mesh geometry (:data:`AU_MAPPING`), the
mini-Xception expression classifier on an eye-aligned 64x64 gray crop, an EMFACS-style expression
estimate from the AUs, valence/arousal and quality flags.

A video file is cut into ``parallel`` contiguous parts (default: one per CPU, at most 4), each
analysed in its own thread with its own decoder and MediaPipe landmarker: the landmarker keeps one
core busy per sequence and is three quarters of the work, so this is what lets a second core help.
Faces are stored per frame and given their tracked ids over the whole video afterwards. With one
sequence (``parallel=1``, arrays), three threads share the work: one decodes chunks of frames, the
calling thread runs the mesh, and one worker turns the previous chunk's meshes into crops,
expression probabilities and AUs. At most a few chunks per part are in memory at once, so memory is flat in the video's length apart from the result arrays, which grow by about
6 kB per face and analysed frame (5.7 kB of it the 478x3 float32 landmarks; ``landmarks=False``
leaves them out). Speed figures: ``benchmarks/face_speed.py``; the mesh is about three quarters of
the CPU time, the expression model about a tenth, decoding a sixth.

:func:`predict_face_images` does the same for a list or stack of still images, with tiled
detection for small faces, or with ``faces="full"`` for images that already are face crops
(FER2013/CK+ style, as small as 48x48 gray).
"""

from __future__ import annotations

import os
import time as _time
import warnings

import numpy as np
import xarray as xr

from ..._checks import check_option, check_positive
from ...errors import EmonbError, EmonbFileError, EmonbValueError, EmonbWarning
from .aus import AU_MAPPING  # noqa: F401 - re-exported for old imports
from .dataset import _build_dataset
from .pipeline import BLUR_THRESHOLD, DEFAULT_MODELS, FacePipeline, _Faces, _pipeline  # noqa: F401
from .sequence import _frame_scale, _MeshStep, _run_segments
from .source import _array_chunks, _ChunkSource, _is_image_path, _read_image, _to_rgb
from .stills import _full_frame_faces, predict_face_images
from .store import _Store  # noqa: F401

__all__ = ["DEFAULT_MODELS", "FacePipeline", "analyze_face", "predict_face_images"]

#: Wall seconds of the last :func:`analyze_face` call of this process, for benchmarks: waiting for
#: the decoder, running the mesh, in the worker (crops, expression, AUs), waiting for the worker.
_LAST_TIMING: dict = {}


# -- public API ---------------------------------------------------------------------------------
def analyze_face(src, *, faces: str = "detect", model=None, device: str = "auto", stride: int = 1,
                 scale: float = 1.0, max_faces: int = 4, batch_size: int = 64, chunk_size: int = 32,
                 flip: bool = False, au_threshold: float = 0.5, blur_threshold: float = BLUR_THRESHOLD,
                 detector_score: bool = True, score_interval: float = 0.5, landmarks: bool = True,
                 redetect: float | None = None, parallel: int | None = None, start: float | None = None,
                 end: float | None = None, fps: float | None = None, threads: bool = True,
                 track_timeout: float = 1.0, min_track: int = 2, au_mapping=None, au_baseline: bool = True,
                 progress: bool = True) -> xr.Dataset:
    """Face mesh, head pose, action units, expressions, valence/arousal and quality over time.

    Parameters
    ----------
    src : str, Path, ndarray, xarray.Dataset or xarray.DataTree
        A video file, a still image, an array (H, W[, 3]) or a stack (N, H, W[, 3]) of RGB/gray
        frames, a video node (``eb.load_video``) or a session tree with a ``video`` node.
    faces : {"detect", "full"}
        ``"full"``: every frame already is a face crop (skip detection).
    model : str, ModelSpec or dict, optional
        Expression model name/spec, or ``{"expression": ..., "mesh": ...}``; see
        ``eb.models.list_models("face")``. Any registered ONNX/TorchScript expression model works.
    device : {"auto", "cpu", "cuda", ...}
        Device for the expression model (MediaPipe runs on the CPU).
    stride : int
        Analyse every ``stride``-th frame (by frame index).
    scale : float
        Run the models on frames scaled by this factor (decoded at that size by FFmpeg).
        Coordinates are always reported in pixels of the original frame. This saves little time:
        MediaPipe crops the face to its own model input whatever the frame size (the mesh cost the
        same at 640x360 and 320x180 here), and scaling while decoding costs about what it saves;
        the mesh of a small face loses precision. Use ``stride`` to go faster.
    max_faces : int
        Most faces per frame (the size of the ``face`` dimension at most).
    batch_size, chunk_size : int
        Expression-model batch size and frames decoded per chunk.
    flip : bool
        Average expression probabilities over the crop and its mirror image.
    au_threshold : float
        ``face_au_presence`` is 1 where ``face_au >= au_threshold``.
    blur_threshold : float
        ``face_blur`` is 1 where the crop's Laplacian variance is below this.
    detector_score : bool
        Run the BlazeFace detector to fill ``face_score``; without it ``face_score`` is NaN.
    score_interval : float
        Seconds between detector runs (the detector costs about a third of the mesh's time).
        Frames in between carry the last score of the same tracked face; the detector also runs
        whenever the number of faces changes. ``0`` scores every analysed frame.
    landmarks : bool
        Keep the 478-point mesh in the result (``face_landmarks``, float32: 5.7 kB per face and
        analysed frame, about 490 MB per face-hour at 24 fps and stride 1; everything else is
        0.4 kB). ``False`` leaves it out for long videos.
    redetect : float, optional
        ``None`` (default): MediaPipe looks for new faces on every frame (its face detector runs
        on every frame while fewer than ``max_faces`` faces are in view; about 15% of the mesh's
        time). A number of seconds: the landmarker tracks only the faces it already has, and the
        BlazeFace detector looks for faces entering the view at most that often (sharing the
        ``face_score`` runs). Faster on videos with fewer faces than ``max_faces``, but a face
        that enters is picked up up to ``redetect`` seconds late (``0`` searches every frame).
    parallel : int, optional
        Video files: analyse this many contiguous parts of the video at once, each with its own
        decoder and landmarker thread (MediaPipe's landmarker keeps one core busy per sequence,
        so a second part is what lets a second core help; default: the number of CPUs, at most
        4). Each part starts tracking afresh, as at the start of a video; face ids are then
        assigned over the whole video in frame order, as with one part. ``1``: one sequence.
        Parts get at least 64 analysed frames (shorter ranges use fewer parts).
    start, end : float, optional
        Time range to analyse, seconds on the video's own clock.
    fps : float, optional
        Frame rate for an array stack (time = index / fps); ignored for files.
    threads : bool
        Decode in a background thread, and run crops, expression model and AUs of one chunk in
        another thread while the mesh runs on the next chunk. ``False``: everything in the calling
        thread, one sequence (``parallel`` is ignored; same results, slower).
    track_timeout : float
        Seconds a lost face keeps its ``face`` id.
    min_track : int
        Faces seen in fewer consecutive analysed frames are dropped as spurious detections
        (1 keeps everything; a single frame of skin-coloured text was found as a face in
        ``face_noface.mov``).
    au_mapping : mapping, optional
        Your own AU definitions in the format of :data:`emonb.models.face.AU_MAPPING` (hand rules
        for every AU; the fitted mapping is then not used).
    au_baseline : bool
        Fitted AUs relative to each track's own median over the analysed range (the person's
        neutral, as OpenFace's dynamic models), for tracks of at least 24 analysed frames;
        ``face_au_baseline`` says where. ``False``: every frame judged alone, as for a still.
    progress : bool
        Show a progress bar.

    Returns
    -------
    xarray.Dataset
        Dims ``time``, ``face``, ``landmark`` (478), ``coord`` (x, y, z), ``blendshape`` (52),
        ``au``, ``emotion``, ``pose_angle`` (pitch, yaw, roll), ``box_coord`` (x0, y0, x1, y1).
        Variables ``face_box``, ``face_score``, ``face_landmarks``, ``face_blendshape``,
        ``face_pose`` (degrees), ``face_au`` (0-1), ``face_au_presence``, ``face_emotion`` (sums
        to 1), ``face_emotion_facs``, ``face_valence``, ``face_arousal`` ([-1, 1]),
        ``face_sharpness``, ``face_blur``, ``face_occluded``, ``face_count(time)``; coordinate
        ``frame_index(time)``. ``time`` is session-clock seconds from frame PTS (plus the node's
        ``t0``). Frames without a face are NaN. Attributes record the models, licenses, device
        and parameters.

    Examples
    --------
    >>> face = eb.analyze_face("interview.mp4", stride=2)            # doctest: +SKIP
    >>> face.face_emotion.sel(face=0).plot.line(x="time")            # doctest: +SKIP
    """
    check_option("faces", faces, ("detect", "full"))
    stride = int(check_positive("stride", stride))
    if redetect is not None and not (np.isfinite(redetect) and redetect >= 0):
        raise EmonbValueError(f"redetect must be None or a number of seconds >= 0, got {redetect!r}")
    scale = check_positive("scale", scale)
    if scale > 1:
        raise EmonbValueError(f"scale must be in (0, 1], got {scale}")
    max_faces = int(check_positive("max_faces", max_faces))
    if parallel is None:
        parallel = min(os.cpu_count() or 1, 4)
    parallel = int(check_positive("parallel", parallel))
    t_start = _time.perf_counter()

    # -- resolve the source into chunks ------------------------------------------------------
    t0 = 0.0
    path = None
    meta: dict = {}
    if isinstance(src, xr.DataTree):
        from ...session import resolve_node

        src = resolve_node(src, "video")
    if isinstance(src, (str, os.PathLike)) and _is_image_path(src):
        src = _read_image(src)[None]
        fps = fps or 1.0
    if isinstance(src, xr.Dataset):
        t0 = float(src.attrs.get("t0", 0.0))
        if src.attrs.get("path") and not src.attrs.get("still_image"):
            path = src.attrs["path"]
            if "time" in src.coords and src.sizes.get("time", 0) and start is None and end is None:
                # a node sliced in time: analyse only its range (on the video's own clock)
                tt = np.asarray(src["time"].values, float) - t0
                start, end = float(tt.min()), float(tt.max())
        elif "frames" in src:
            times = np.asarray(src["time"].values, float) - t0
            frames = np.asarray(src["frames"].values)
            meta = {"width": frames.shape[2], "height": frames.shape[1]}
            src = None
            chunks = _ChunkSource(lambda: _array_chunks(frames, times, stride, chunk_size, scale), threaded=False)
            n_expected = len(range(0, frames.shape[0], stride))
        else:
            raise EmonbValueError("this video node has neither a 'path' attribute nor 'frames' to analyse")
    elif isinstance(src, (str, os.PathLike)):
        path = src
    elif isinstance(src, np.ndarray) or (hasattr(src, "__array__") and not isinstance(src, xr.Dataset)):
        arr = np.asarray(src)
        if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] in (3, 4)):  # one gray or colour image
            arr = arr[None]
        if arr.ndim == 3:  # stack of gray frames
            arr = arr[..., None]
        if arr.ndim != 4:
            raise EmonbValueError(f"expected an image or a stack of frames, got an array of shape {arr.shape}")
        frames = np.stack([_to_rgb(f) for f in arr]) if (arr.dtype != np.uint8 or arr.shape[-1] != 3) else arr
        if fps is None:
            if frames.shape[0] > 1:
                warnings.warn("analyze_face: no fps given for an array of frames; using 30 fps "
                              "(time = index / 30)", EmonbWarning, stacklevel=2)
            fps = 30.0
        times = np.arange(frames.shape[0]) / float(fps)
        meta = {"width": frames.shape[2], "height": frames.shape[1]}
        chunks = _ChunkSource(lambda: _array_chunks(frames, times, stride, chunk_size, scale), threaded=False)
        n_expected = len(range(0, frames.shape[0], stride))
    elif src is not None:
        raise EmonbValueError(f"analyze_face cannot read a {type(src).__name__}")

    if path is not None:
        from ...io.video import video_reader

        reader = video_reader(path)
        meta = {"width": reader.width, "height": reader.height, "fps": float(reader.fps), "path": str(reader.path)}
        size = None
        if scale != 1.0:
            size = (max(int(round(reader.width * scale / 2)) * 2, 16), max(int(round(reader.height * scale / 2)) * 2, 16))
        i0 = 0 if start is None else int(np.searchsorted(reader.times, float(start) - 1e-9))
        i1 = reader.n_frames if end is None else int(np.searchsorted(reader.times, float(end) + 1e-9, side="right"))
        n_expected = len(range(i0, max(i1, i0), stride))
        chunks = _ChunkSource(lambda: reader.iter_chunks(chunk_size, stride=stride, start=start, end=end, size=size),
                              threaded=threads)

    pipe = _pipeline(model, device, max_faces=max_faces, flip=flip, detector_score=detector_score,
                     batch_size=batch_size, au_mapping=au_mapping)
    store = _Store(len(pipe.aus), max_faces, landmarks=landmarks, capacity=max(n_expected, 1))
    from .geometry import FaceTracker

    tracker = FaceTracker(max_faces, timeout=track_timeout)
    from tqdm.auto import tqdm

    bar = tqdm(total=n_expected, desc="face", unit="frame", disable=not progress, leave=False)
    step = None
    n_frames = 0
    slot_score = np.full(max_faces, np.nan, np.float32)

    def post(times, frames, meshes):
        """Crops, expression model, AUs and pose of one chunk (in the worker thread)."""
        tp = _time.perf_counter()
        faces_list, crops_list = [], []
        for fr, m in zip(frames, meshes):
            if faces == "full":
                f, c = m
            else:
                res, fr_scale, score = m
                f, c = pipe.frame_faces(fr, res, scale=fr_scale, score=score)
            faces_list.append(f)
            crops_list.append(c)
        pipe.finish_chunk(faces_list, crops_list)
        timing["worker_s"] += _time.perf_counter() - tp
        return faces_list

    def store_chunk(times, indices, faces_list):
        """Tracking and storage, in frame order (in the calling thread)."""
        nonlocal n_frames
        for t, i, f in zip(times, indices, faces_list):
            slots = tracker.update(f.box, float(t)) if faces == "detect" else np.arange(f.n)
            if faces == "detect" and f.n:
                scored = np.isfinite(f.score)
                for j, sl in enumerate(slots):
                    if sl < 0:
                        continue
                    if scored[j]:
                        slot_score[sl] = f.score[j]
                    elif detector_score:
                        f.score[j] = slot_score[sl]
            store.add(float(t) + t0, int(i), f, slots)
        n_frames += len(times)
        bar.update(len(times))

    # The mesh (MediaPipe, its own C++ threads) runs here chunk by chunk; the rest of a chunk's
    # work (crops, expression model, AUs) runs in one worker thread while the mesh goes on with the
    # next chunk, and the decoder fills the chunk after that in a third thread. At most two chunks
    # are in flight, so memory does not grow with the video.
    timing = _LAST_TIMING
    timing.clear()
    timing.update(wait_decode_s=0.0, mesh_s=0.0, worker_s=0.0, wait_worker_s=0.0)

    def timed(src):
        it = iter(src)
        try:
            while True:
                tw = _time.perf_counter()
                try:
                    item = next(it)
                except StopIteration:
                    return
                timing["wait_decode_s"] += _time.perf_counter() - tw
                yield item
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    worker = None
    if threads:
        from concurrent.futures import ThreadPoolExecutor

        worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="emonb-face-post")
    pending = None
    segments = int(parallel) if (path is not None and faces == "detect" and threads) else 1
    segments = min(segments, max(n_expected // 64, 1))  # short ranges: one sequence
    source = timed(chunks if segments == 1 else ())
    try:
        if segments > 1:
            n_frames = _run_segments(reader, pipe, store, segments=segments, i0=i0, i1=i1, stride=stride,
                                     chunk_size=chunk_size, size=size, meta=meta, threads=threads,
                                     step_args=(max_faces, score_interval, redetect), post=post, t0=t0,
                                     bar=bar)
            store.retrack(tracker, carry_scores=detector_score)
        elif faces == "detect":
            step = _MeshStep(pipe, max_faces, score_interval, redetect)
        for times, indices, frames in source:
            tm = _time.perf_counter()
            meshes = []
            for t, fr in zip(times, frames):
                if faces == "full":
                    meshes.append(_full_frame_faces(pipe, fr))
                    continue
                meshes.append(step(fr, float(t), _frame_scale(fr, meta)))
            timing["mesh_s"] += _time.perf_counter() - tm
            if worker is None:
                store_chunk(times, indices, post(times, frames, meshes))
                continue
            if pending is not None:
                tw = _time.perf_counter()
                done = pending[2].result()
                timing["wait_worker_s"] += _time.perf_counter() - tw
                store_chunk(*pending[:2], done)
            pending = (times, indices, worker.submit(post, times, frames, meshes))
        if pending is not None:
            p, pending = pending, None
            tw = _time.perf_counter()
            done = p[2].result()
            timing["wait_worker_s"] += _time.perf_counter() - tw
            store_chunk(*p[:2], done)
    except EmonbError:
        raise
    except (OSError, RuntimeError, ValueError) as exc:
        raise EmonbFileError(path or "frames", f"face analysis failed: {exc}") from exc
    finally:
        source.close()  # stops the decoder thread now, not when the traceback is collected
        if worker is not None:
            if pending is not None:
                pending[2].cancel()
            worker.shutdown(wait=True)
        bar.close()
        if step is not None:
            step.close()

    dropped = store.drop_short_tracks(int(min_track)) if (faces == "detect" and store.n > 1) else 0
    elapsed = _time.perf_counter() - t_start
    attrs = {
        **pipe.provenance(), "modality": "face", "t0": t0,
        "faces": faces, "stride": stride, "scale": float(scale), "max_faces": max_faces,
        "flip": int(flip), "au_threshold": float(au_threshold), "au_baseline": int(bool(au_baseline)), "blur_threshold": float(blur_threshold),
        "detector_score": int(detector_score), "score_interval": float(score_interval),
        "redetect": "every frame (MediaPipe)" if redetect is None else float(redetect),
        "parallel": int(segments),
        "batch_size": int(batch_size),
        "track_timeout": float(track_timeout), "min_track": int(min_track),
        "short_tracks_dropped": int(dropped),
        "valence_arousal_method": ("probability-weighted Russell circumplex positions "
                                   "(emonb.schema.EMOTION_VALENCE_AROUSAL), mean of CNN and EMFACS estimates"),
        "frames_analysed": int(n_frames), "processing_seconds": round(elapsed, 3),
    }
    for k in ("path", "width", "height", "fps"):
        if k in meta:
            attrs[k] = meta[k]
    if start is not None:
        attrs["start"] = float(start)
    if end is not None:
        attrs["end"] = float(end)
    if store.n and store.n > 1 and np.nanmedian(np.diff(store.time[: store.n])) > 0:
        attrs["sampling_rate"] = float(1.0 / np.nanmedian(np.diff(store.time[: store.n])))
    ds = _build_dataset(store, pipe, dim="time", coord_values=store.time[: store.n].copy(),
                        au_threshold=au_threshold, blur_threshold=blur_threshold,
                        extra_coords={"frame_index": ("time", store.frame_index[: store.n].copy())},
                        attrs=attrs, dynamic_aus=bool(au_baseline) and faces == "detect",
                        track_gap=float(track_timeout))
    ds["time"].attrs.update({"units": "s", "long_name": "session time (frame PTS + t0)"})
    if store.n and np.nansum(store.count[: store.n]) == 0:
        ds.attrs["warning"] = "no face found in any analysed frame"
    return ds
