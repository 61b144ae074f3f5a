"""Action-unit input features: MediaPipe blendshapes plus mesh geometry in the face's own frame.

Geometry is measured on the 478-point mesh (x, y in pixels, z in the same scale) in a frame fixed
to the face: ``x`` from the subject's right eye corner (point 33) to the left one (263), ``up``
from the chin (152) to the midpoint of the eyes, orthogonalised against ``x``. Every distance is
divided by the inter-ocular distance (33-263), so the features depend neither on image size nor
on camera distance, and heights measured along ``up`` do not change with head roll. Left and
right are averaged.

Point numbers are MediaPipe's canonical mesh: brows inner 107/336, middle 105/334, outer 70/300;
eye corners 33/133 (subject's right eye: outer, inner) and 362/263 (left eye: inner, outer);
lids 159/145 and 386/374; nose tip 1, subnasale 2, alae 129/358; lips: corners 61/291, top of
the upper lip 0, inner upper 13, inner lower 14, bottom of the lower lip 17; chin 152.
"""

from __future__ import annotations

import numpy as np

from .mesh import BLENDSHAPES

__all__ = ["FEATURE_NAMES", "GEOMETRY_FEATURES", "GEOMETRY_NOTES", "au_features", "geometry_matrix"]

#: Geometry feature -> what it measures (all divided by the inter-ocular distance).
GEOMETRY_NOTES = {
    "brow_inner_height": "inner brow (107/336) above the inner eye corner (133/362), along the face's up axis",
    "brow_mid_height": "middle of the brow (105/334) above the upper lid (159/386)",
    "brow_outer_height": "outer brow (70/300) above the outer eye corner (33/263)",
    "brow_distance": "distance between the inner brows (107-336)",
    "eye_open": "lid opening (159-145, 386-374)",
    "ala_height": "alae (129/358) above the nose tip (1): the nose wrinkler lifts them",
    "upper_lip_gap": "subnasale (2) to the top of the upper lip (0)",
    "corner_height": "lip corners (61/291) above the centre of the lips (13/14)",
    "corner_vs_nose": "lip corners (61/291) below the nose tip (1), along up (negative = lower)",
    "mouth_width": "lip corner to lip corner (61-291)",
    "lip_gap": "inner lips apart (13-14)",
    "jaw_drop": "subnasale (2) to chin (152)",
    "chin_height": "bottom of the lower lip (17) to the chin (152)",
    "lip_thickness": "upper (0-13) plus lower (14-17) lip height",
}
GEOMETRY_FEATURES: tuple[str, ...] = tuple(GEOMETRY_NOTES)
#: Column names of :func:`au_features`: the 52 blendshapes, then the geometry features.
FEATURE_NAMES: tuple[str, ...] = tuple(BLENDSHAPES) + GEOMETRY_FEATURES


def _face_frame(p: np.ndarray):
    """Unit ``x`` and ``up`` axes (F, 3) and the inter-ocular distance (F,)."""
    x = p[:, 263] - p[:, 33]
    iod = np.linalg.norm(x, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        x = x / iod[:, None]
        up = (p[:, 33] + p[:, 263]) / 2 - p[:, 152]
        up = up - (up * x).sum(-1, keepdims=True) * x
        up = up / np.linalg.norm(up, axis=-1, keepdims=True)
    return x, up, iod


def geometry_matrix(landmarks: np.ndarray) -> np.ndarray:
    """Geometry features (F, len(GEOMETRY_FEATURES)) from meshes (F, 478, 3); NaN rows without a mesh."""
    p = np.asarray(landmarks, np.float64)
    if p.ndim != 3 or p.shape[1:] != (478, 3):
        raise ValueError(f"expected landmarks (F, 478, 3), got {p.shape}")
    _, up, iod = _face_frame(p)

    def dist(a, b):
        return np.linalg.norm(p[:, a] - p[:, b], axis=-1)

    def height(a, b):  # how far a lies above b along the face's up axis
        return ((p[:, a] - p[:, b]) * up).sum(-1)

    lip_centre = (p[:, 13] + p[:, 14]) / 2
    corner_h = (((p[:, 61] - lip_centre) * up).sum(-1) + ((p[:, 291] - lip_centre) * up).sum(-1)) / 2
    cols = {
        "brow_inner_height": (height(107, 133) + height(336, 362)) / 2,
        "brow_mid_height": (height(105, 159) + height(334, 386)) / 2,
        "brow_outer_height": (height(70, 33) + height(300, 263)) / 2,
        "brow_distance": dist(107, 336),
        "eye_open": (dist(159, 145) + dist(386, 374)) / 2,
        "ala_height": (height(129, 1) + height(358, 1)) / 2,
        "upper_lip_gap": dist(2, 0),
        "corner_height": corner_h,
        "corner_vs_nose": (height(61, 1) + height(291, 1)) / 2,
        "mouth_width": dist(61, 291),
        "lip_gap": dist(13, 14),
        "jaw_drop": dist(2, 152),
        "chin_height": dist(17, 152),
        "lip_thickness": dist(0, 13) + dist(14, 17),
    }
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.stack([cols[k] / iod for k in GEOMETRY_FEATURES], axis=1)
    return out.astype(np.float32)


def au_features(blendshapes: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """Blendshapes (F, 52) and geometry from meshes (F, 478, 3) side by side: (F, len(FEATURE_NAMES))."""
    bs = np.asarray(blendshapes, np.float32)
    if bs.ndim != 2 or bs.shape[1] != len(BLENDSHAPES):
        raise ValueError(f"expected blendshapes (F, {len(BLENDSHAPES)}), got {bs.shape}")
    return np.concatenate([bs, geometry_matrix(landmarks)], axis=1)
