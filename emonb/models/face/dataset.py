"""The analysis result as an ``xr.Dataset``: variables, quality flags, units and coordinates."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ...schema import AU_NAMES, EMOTIONS
from .aus import EMFACS_PROTOTYPES, valence_arousal
from .mesh import BLENDSHAPES, N_LANDMARKS
from .pipeline import BOX_COORDS, COORDS, OUTSIDE_THRESHOLD, POSE_ANGLES, YAW_OCCLUSION, FacePipeline
from .store import _Store

__all__ = ["_build_dataset"]


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
