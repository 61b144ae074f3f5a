"""MediaPipe FaceLandmarker runtime: detector, 478-point mesh, 52 blendshapes, head pose matrix.

The runtime follows the estimator style of :class:`emonb.models.runtimes.ModelRuntime`: the
constructor stores parameters, :meth:`FaceMeshModel.load` builds the MediaPipe tasks on first use.
Results are plain NumPy arrays (:class:`MeshResult`), with landmark ``x, y`` in pixels of the
image that was passed in and ``z`` in the same pixel scale (MediaPipe's normalised depth times the
image width).
"""

from __future__ import annotations

import atexit
import ctypes
import os
import threading
import weakref
import zipfile
from dataclasses import dataclass

import numpy as np

from ..._checks import require
from ...errors import EmonbModelError
from ..runtimes import ModelRuntime

__all__ = ["BLENDSHAPES", "N_LANDMARKS", "FaceMeshModel", "MeshResult", "build_face_mesh"]

N_LANDMARKS = 478

#: The 52 blendshape names in MediaPipe's output order.
BLENDSHAPES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft",
    "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight",
    "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft",
    "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen",
    "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower",
    "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight",
    "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight",
)
_BS_INDEX = {n: i for i, n in enumerate(BLENDSHAPES)}


@dataclass
class MeshResult:
    """Faces found in one image.

    Attributes
    ----------
    landmarks : ndarray, shape (F, 478, 3), float32
        x, y in pixels of the input image; z in the same pixel scale (smaller = nearer the camera).
    blendshapes : ndarray, shape (F, 52), float32
        Blendshape weights in [0, 1], in :data:`BLENDSHAPES` order.
    matrices : ndarray, shape (F, 4, 4), float32
        Face-to-camera transformation matrices (OpenGL camera: y up, looking down -z).
    """

    landmarks: np.ndarray
    blendshapes: np.ndarray
    matrices: np.ndarray

    @property
    def n_faces(self) -> int:
        return int(self.landmarks.shape[0])

    @classmethod
    def empty(cls) -> MeshResult:
        return cls(np.zeros((0, N_LANDMARKS, 3), np.float32), np.zeros((0, 52), np.float32),
                   np.zeros((0, 4, 4), np.float32))

    def take(self, idx) -> MeshResult:
        idx = np.asarray(idx, dtype=int)
        return MeshResult(self.landmarks[idx], self.blendshapes[idx], self.matrices[idx])

    @staticmethod
    def concat(results) -> MeshResult:
        results = [r for r in results if r.n_faces]
        if not results:
            return MeshResult.empty()
        return MeshResult(np.concatenate([r.landmarks for r in results]),
                          np.concatenate([r.blendshapes for r in results]),
                          np.concatenate([r.matrices for r in results]))


def boxes_from_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """Tight boxes (F, 4) ``x0, y0, x1, y1`` around each face's mesh points."""
    if landmarks.shape[0] == 0:
        return np.zeros((0, 4), np.float32)
    xy = landmarks[..., :2]
    return np.concatenate([xy.min(axis=1), xy.max(axis=1)], axis=1).astype(np.float32)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise intersection over union of boxes (A, 4) and (B, 4); returns (A, B)."""
    a = np.asarray(a, np.float64)[:, None]
    b = np.asarray(b, np.float64)[None]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    with np.errstate(invalid="ignore", divide="ignore"):
        out = inter / (area_a + area_b - inter)
    return np.nan_to_num(out)


_OPEN_TASKS: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _close_open_tasks() -> None:
    # MediaPipe's __del__ fails noisily when it runs during interpreter shutdown; close first.
    for task in list(_OPEN_TASKS):
        try:
            task.close()
        except Exception:
            pass


def _quiet_mediapipe() -> None:
    # MediaPipe/absl log a few lines to stderr on first use; keep notebooks clean.
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class _DirectReader:
    """Runs a FaceLandmarker through its C entry points and reads the result struct with NumPy.

    MediaPipe's Python wrapper turns every landmark into a Python object (478 per face, about
    1 ms a frame with the GIL held, on the thread that also waits for the mesh). This reads the
    same C structs directly: the x, y, z floats of each landmark, the blendshape scores by class
    index and the column-major 4x4 matrices. It depends on the layout of the tasks' ctypes
    structs (mediapipe 1.x), so the first result with a face is read both ways and compared; where
    they differ (or the structs have another layout) the wrapper is used from then on.
    """

    def __init__(self):
        from mediapipe.tasks.python.components.containers import category_c, landmark_c
        from mediapipe.tasks.python.vision import face_landmarker as fl

        self.result_type = fl.MpFaceLandmarkerResultC
        self.wrapper_type = fl.FaceLandmarkerResult
        lm = landmark_c.MpNormalizedLandmarkC
        cat = category_c.MpCategoryC
        if not (lm.x.offset == 0 and lm.y.offset == 4 and lm.z.offset == 8):
            raise TypeError("unexpected MpNormalizedLandmarkC layout")
        self.lm_size = ctypes.sizeof(lm)
        self.cat_size = ctypes.sizeof(cat)
        self.cat_index = cat.index.offset
        self.cat_score = cat.score.offset

    def run(self, task, image, ms: int | None, width: int, height: int, state: dict):
        """Detect; returns a MeshResult in pixels of a ``width`` x ``height`` image.

        ``state["verified"]`` is set once the struct reading matched the wrapper's conversion of
        the same result (on the first frame with a face); ``state["direct"] = None`` where it
        did not, and the wrapper's result is returned from then on.
        """
        res = self.result_type()
        lib = task._lib
        if ms is None:
            lib.MpFaceLandmarkerDetectImage(task._handle, image._image_ptr, None, ctypes.byref(res))
        else:
            lib.MpFaceLandmarkerDetectForVideo(task._handle, image._image_ptr, None, int(ms), ctypes.byref(res))
        try:
            try:
                fast = FaceMeshModel._scaled(*self.read(res), width, height)
            except Exception:
                fast = None
            if fast is not None and (state.get("verified") or fast.n_faces == 0):
                return fast
            slow = FaceMeshModel._convert(self.wrapper_type.from_ctypes(res), width, height)
            if fast is not None and _same(fast, slow):
                state["verified"] = True
            else:
                state["direct"] = None
            return slow
        finally:
            lib.MpFaceLandmarkerCloseResult(ctypes.byref(res))

    def _floats(self, ptr, count: int, itemsize: int, offset: int, width: int, dtype=np.float32) -> np.ndarray:
        addr = ctypes.cast(ptr, ctypes.c_void_p).value
        buf = (ctypes.c_char * (count * itemsize)).from_address(addr)
        return np.ndarray((count, width), dtype=dtype, buffer=buf, offset=offset,
                          strides=(itemsize, np.dtype(dtype).itemsize)).copy()

    def read(self, res) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(landmarks (F, 478, 3) normalised, blendshapes (F, 52), matrices (F, 4, 4))."""
        n = int(res.face_landmarks_count)
        lm = np.full((n, N_LANDMARKS, 3), np.nan, np.float32)
        bs = np.full((n, 52), np.nan, np.float32)
        mats = np.full((n, 4, 4), np.nan, np.float32)
        for f in range(n):
            pts = res.face_landmarks[f]
            k = min(int(pts.landmarks_count), N_LANDMARKS)
            if k:
                lm[f, :k] = self._floats(pts.landmarks, k, self.lm_size, 0, 3)
        for f in range(min(int(res.face_blendshapes_count), n)):
            cats = res.face_blendshapes[f]
            k = int(cats.categories_count)
            if k:
                idx = self._floats(cats.categories, k, self.cat_size, self.cat_index, 1, np.int32)[:, 0]
                score = self._floats(cats.categories, k, self.cat_size, self.cat_score, 1)[:, 0]
                ok = (idx >= 0) & (idx < 52)
                bs[f, idx[ok]] = score[ok]
        for f in range(min(int(res.facial_transformation_matrixes_count), n)):
            m = res.facial_transformation_matrixes[f]
            if m.data and m.rows == 4 and m.cols == 4:
                mats[f] = np.ctypeslib.as_array(m.data, shape=(4, 4)).T  # column-major
        return lm, bs, mats


def _same(a: MeshResult, b: MeshResult) -> bool:
    return (a.n_faces == b.n_faces and np.array_equal(a.landmarks, b.landmarks, equal_nan=True)
            and np.array_equal(a.blendshapes, b.blendshapes, equal_nan=True)
            and np.allclose(a.matrices, b.matrices, rtol=0, atol=1e-6, equal_nan=True))


_DIRECT: dict = {}


def _direct_reader():
    """The shared :class:`_DirectReader`, or None where this MediaPipe's structs do not fit."""
    if "reader" not in _DIRECT:
        try:
            _DIRECT["reader"] = _DirectReader()
        except Exception:
            _DIRECT["reader"] = None
    return _DIRECT["reader"]


class FaceMeshModel(ModelRuntime):
    """MediaPipe FaceLandmarker in IMAGE or VIDEO mode, plus the BlazeFace detector for scores.

    Parameters
    ----------
    spec : ModelSpec
    device : str
        Recorded for provenance; MediaPipe's Python wheels run on the CPU (XNNPACK).
    max_faces : int
        Most faces per image.
    min_detection_confidence, min_tracking_confidence : float
        MediaPipe thresholds.
    direct_read : bool
        Read MediaPipe's result structs with NumPy instead of its Python wrapper (same numbers,
        about 1 ms a frame less; checked against the wrapper on the first face, with a fallback).
    """

    def __init__(self, spec, *, device: str = "auto", max_faces: int = 4,
                 min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5,
                 direct_read: bool = True):
        super().__init__(spec, device=device)
        self.direct_read = bool(direct_read)
        self.max_faces = int(max_faces)
        self.min_detection_confidence = float(min_detection_confidence)
        self.min_tracking_confidence = float(min_tracking_confidence)
        self._lock = threading.Lock()

    def _load(self):
        _quiet_mediapipe()
        require("mediapipe", extra="face", purpose="the face mesh")
        path = self.spec.check_weights()
        try:
            self.task_bytes_ = path.read_bytes()
            with zipfile.ZipFile(path) as zf:
                self.detector_bytes_ = zf.read("face_detector.tflite")
        except (OSError, KeyError, zipfile.BadZipFile) as exc:
            raise EmonbModelError(f"model {self.spec.name!r}: {path} is not a FaceLandmarker bundle: {exc}") from None
        self.device_ = "cpu"  # MediaPipe Python runs on the CPU here
        self.image_ = self._landmarker("IMAGE", self.max_faces)
        self.model_ = self.image_
        self.detector_ = None
        self._tile_landmarker = None
        self._direct_state = {} if self.direct_read else {"direct": None}

    def _landmarker(self, mode: str, num_faces: int):
        from mediapipe.tasks.python import BaseOptions, vision

        try:
            opts = vision.FaceLandmarkerOptions(
                base_options=BaseOptions(model_asset_buffer=self.task_bytes_),
                running_mode=getattr(vision.RunningMode, mode), num_faces=num_faces,
                min_face_detection_confidence=self.min_detection_confidence,
                min_face_presence_confidence=self.min_tracking_confidence,
                min_tracking_confidence=self.min_tracking_confidence,
                output_face_blendshapes=True, output_facial_transformation_matrixes=True)
            task = vision.FaceLandmarker.create_from_options(opts)
            _OPEN_TASKS.add(task)
            return task
        except Exception as exc:
            raise EmonbModelError(f"model {self.spec.name!r}: MediaPipe could not build the face landmarker: {exc}") from None

    def video_session(self, num_faces: int | None = None) -> _VideoSession:
        """A fresh VIDEO-mode landmarker (tracking across frames); close it when done.

        ``num_faces``: most faces it tracks (default ``max_faces``). While it tracks fewer,
        MediaPipe runs its face detector on every frame to look for more.
        """
        self.load()
        n = self.max_faces if num_faces is None else max(1, min(int(num_faces), self.max_faces))
        return _VideoSession(self._landmarker("VIDEO", n), direct=self.direct_read)

    # -- conversion ----------------------------------------------------------------------
    @staticmethod
    def _convert(res, width: int, height: int) -> MeshResult:
        n = len(res.face_landmarks)
        if n == 0:
            return MeshResult.empty()
        lm = np.empty((n, N_LANDMARKS, 3), np.float32)
        bs = np.full((n, 52), np.nan, np.float32)
        mats = np.full((n, 4, 4), np.nan, np.float32)
        for f, pts in enumerate(res.face_landmarks):
            arr = np.array([(p.x, p.y, p.z) for p in pts], np.float32)
            lm[f, : len(arr)] = arr[:N_LANDMARKS]
        lm[..., 0] *= width
        lm[..., 1] *= height
        lm[..., 2] *= width
        for f, cats in enumerate(res.face_blendshapes or []):
            for c in cats:
                i = _BS_INDEX.get(c.category_name)
                if i is not None:
                    bs[f, i] = c.score
        for f, m in enumerate(res.facial_transformation_matrixes or []):
            mats[f] = np.asarray(m, np.float32).reshape(4, 4)
        return MeshResult(lm, bs, mats)

    @staticmethod
    def _scaled(lm: np.ndarray, bs: np.ndarray, mats: np.ndarray, width: int, height: int) -> MeshResult:
        if lm.shape[0] == 0:
            return MeshResult.empty()
        lm[..., 0] *= width
        lm[..., 1] *= height
        lm[..., 2] *= width
        return MeshResult(lm, bs, mats)

    @staticmethod
    def _run(task, rgb: np.ndarray, ms: int | None, state: dict) -> MeshResult:
        """One landmarker call; the direct struct reader when it was verified for this task."""
        h, w = rgb.shape[:2]
        image = FaceMeshModel._mp_image(rgb)
        if "direct" not in state:
            state["direct"] = _direct_reader()
        direct = state["direct"]
        if direct is not None:
            return direct.run(task, image, ms, w, h, state)
        res = task.detect(image) if ms is None else task.detect_for_video(image, ms)
        return FaceMeshModel._convert(res, w, h)

    @staticmethod
    def _mp_image(rgb: np.ndarray):
        import mediapipe as mp

        return mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb, dtype=np.uint8))

    # -- public --------------------------------------------------------------------------
    def detect(self, rgb: np.ndarray) -> MeshResult:
        """Faces in one RGB uint8 image (H, W, 3), IMAGE mode (no tracking)."""
        self.load()
        with self._lock:
            return self._run(self.image_, rgb, None, self._direct_state)

    def detect_tiled(self, rgb: np.ndarray, *, tile_fraction: float = 0.5, overlap: float = 0.3,
                     iou_threshold: float = 0.3) -> MeshResult:
        """Whole image plus overlapping tiles, for small faces (group photos); duplicates merged.

        BlazeFace short range sees the image at 128x128, so faces smaller than about 1/8 of the
        image side are missed on the whole image; each tile enlarges them.
        """
        self.load()
        h, w = rgb.shape[:2]
        results = [self.detect(rgb)]
        side = int(round(min(h, w) * tile_fraction * (1.5 if max(h, w) > 1.4 * min(h, w) else 1.0)))
        side = max(side, 64)
        if side < min(h, w):
            step = max(int(side * (1 - overlap)), 1)
            ys = sorted(set(list(range(0, max(h - side, 0) + 1, step)) + [max(h - side, 0)]))
            xs = sorted(set(list(range(0, max(w - side, 0) + 1, step)) + [max(w - side, 0)]))
            for y0 in ys:
                for x0 in xs:
                    tile = rgb[y0:y0 + side, x0:x0 + side]
                    r = self.detect(tile)
                    if r.n_faces:
                        r.landmarks[..., 0] += x0
                        r.landmarks[..., 1] += y0
                        # drop faces cut by the tile border: the whole image or another tile has them
                        b = boxes_from_landmarks(r.landmarks)
                        th, tw = tile.shape[:2]
                        inside = ((b[:, 0] > x0 + 1) | (x0 == 0)) & ((b[:, 1] > y0 + 1) | (y0 == 0)) \
                            & ((b[:, 2] < x0 + tw - 1) | (x0 + tw >= w)) & ((b[:, 3] < y0 + th - 1) | (y0 + th >= h))
                        results.append(r.take(np.flatnonzero(inside)))
        merged = MeshResult.concat(results)
        if merged.n_faces <= 1:
            return merged
        # Prefer tile estimates (more pixels per face: the full-image mesh of a small face can be
        # wrong, e.g. a broad smile read as a frown), larger boxes first among equals.
        from_tile = np.concatenate([np.full(r.n_faces, k > 0) for k, r in enumerate(results) if r.n_faces])
        boxes = boxes_from_landmarks(merged.landmarks)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        order = np.lexsort((-area, ~from_tile))
        iou = box_iou(boxes, boxes)
        keep: list[int] = []
        for i in order:
            if all(iou[i, j] < iou_threshold for j in keep):
                keep.append(int(i))
        keep = keep[: self.max_faces]
        keep.sort(key=lambda i: (boxes[i, 0], boxes[i, 1]))  # left to right
        return merged.take(keep)

    def detections(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """BlazeFace (short range) detections: boxes (D, 4) ``x0, y0, x1, y1`` in pixels, scores (D,)."""
        self.load()
        if self.detector_ is None:
            from mediapipe.tasks.python import BaseOptions, vision

            opts = vision.FaceDetectorOptions(base_options=BaseOptions(model_asset_buffer=self.detector_bytes_),
                                              min_detection_confidence=0.2)
            self.detector_ = vision.FaceDetector.create_from_options(opts)
            _OPEN_TASKS.add(self.detector_)
        with self._lock:
            dets = self.detector_.detect(self._mp_image(rgb)).detections
        if not dets:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        db = np.array([(d.bounding_box.origin_x, d.bounding_box.origin_y,
                        d.bounding_box.origin_x + d.bounding_box.width,
                        d.bounding_box.origin_y + d.bounding_box.height) for d in dets], np.float32)
        ds = np.array([d.categories[0].score if d.categories else 0.0 for d in dets], np.float32)
        return db, ds

    def detector_scores(self, rgb: np.ndarray, boxes: np.ndarray, detections=None) -> np.ndarray:
        """BlazeFace detection score for each mesh box (0 where no detection overlaps it).

        ``detections``: the result of :meth:`detections` for ``rgb`` when already at hand.
        """
        if boxes.shape[0] == 0:
            return np.zeros(0, np.float32)
        db, ds = self.detections(rgb) if detections is None else detections
        if not len(db):
            return np.zeros(boxes.shape[0], np.float32)
        iou = box_iou(boxes, db)
        best = iou.argmax(axis=1)
        return np.where(iou[np.arange(len(boxes)), best] > 0.2, ds[best], 0.0).astype(np.float32)

    def close(self) -> None:
        for attr in ("image_", "detector_"):
            obj = getattr(self, attr, None)
            if obj is not None:
                try:
                    obj.close()
                except Exception:
                    pass
                setattr(self, attr, None)
        self.model_ = None


class _VideoSession:
    """VIDEO-mode landmarker: frames with strictly increasing timestamps (ms)."""

    def __init__(self, landmarker, *, direct: bool = True):
        self._lm = landmarker
        self._last_ms = -1
        self._state: dict = {} if direct else {"direct": None}

    def detect(self, rgb: np.ndarray, t_seconds: float) -> MeshResult:
        ms = max(int(round(t_seconds * 1000.0)), self._last_ms + 1)
        self._last_ms = ms
        return FaceMeshModel._run(self._lm, rgb, ms, self._state)

    def close(self) -> None:
        if self._lm is not None:
            try:
                self._lm.close()
            except Exception:
                pass
            self._lm = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def build_face_mesh(spec, *, device: str = "auto", **params) -> FaceMeshModel:
    return FaceMeshModel(spec, device=device, **params)
