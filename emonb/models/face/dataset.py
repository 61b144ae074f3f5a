"""The analysis result as an ``xr.Dataset``: variables, quality flags, units and coordinates."""

from __future__ import annotations

import numpy as np
import xarray as xr

from ...schema import AU_NAMES, EMOTIONS
from .au_learned import MIN_BASELINE_FRAMES, track_segments
from .aus import EMFACS_PROTOTYPES, emfacs_emotion, valence_arousal
from .mesh import BLENDSHAPES, N_LANDMARKS
from .pipeline import (BOX_COORDS, COORDS, OCCLUSION_REGIONS, OUTSIDE_THRESHOLD, POSE_ANGLES, YAW_OCCLUSION,
                       FacePipeline)
from .store import _Store

__all__ = ["AU_REGIONS", "OCCLUSION_THRESHOLD", "_build_dataset"]

#: A region counts as covered (``face_occluded``) above this occlusion probability.
OCCLUSION_THRESHOLD = 0.5
#: The face region each AU is seen in (its confidence drops when that region is covered).
AU_REGIONS = {**{a: "eyes" for a in ("AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU43", "AU45")},
              "AU09": "nose",
              **{a: "mouth" for a in ("AU10", "AU12", "AU14", "AU15", "AU16", "AU17", "AU18", "AU20", "AU22",
                                      "AU23", "AU24", "AU25", "AU26", "AU28")}}
AU_SCALE = ("fitted AUs: OpenFace 2 intensity (0-5) / 3, clipped (1 = FACS intensity C or more); "
            "rule AUs: 0 at rest to 1 at a clear posed action")


def _build_dataset(store: _Store, pipe: FacePipeline, *, dim: str, coord_values, au_threshold: float,
                   blur_threshold: float, min_faces: int = 1, extra_coords=None, attrs=None,
                   dynamic_aus: bool = False, track_gap: float = 1.0) -> xr.Dataset:
    n = store.n
    nf = max(store.used_faces, min_faces)
    a = store.finish(nf)
    has_face = np.isfinite(a["box"][..., 0])  # (T, F)
    aus = list(pipe.aus)
    baseline = np.where(has_face, 0.0, np.nan).astype(np.float32)
    if dynamic_aus and pipe.learned_aus:
        _dynamic_aus(a, pipe, has_face, np.asarray(coord_values, float), baseline, track_gap=track_gap)
    occl = a["occlusion"]
    o_any = np.nanmax(np.where(np.isfinite(occl), occl, -1.0), axis=-1)
    o_any = np.where(o_any < 0, np.nan, o_any)  # (T, F): NaN without a detector
    au_conf = _au_confidence(occl, aus)
    # EMFACS from the final AUs (after the per-track baseline), once for the whole result
    a["facs"] = np.where(has_face[..., None], emfacs_emotion(a["au"].reshape(-1, len(aus)), aus)
                         .reshape(a["au"].shape[:2] + (len(EMOTIONS),)), np.nan).astype(np.float32)
    if np.isfinite(o_any).any():
        _discount_occluded(a, o_any, keys=("emotion", "facs"))
    presence = np.where(np.isfinite(a["au"]), (a["au"] >= au_threshold).astype(np.float32), np.nan)
    presence[au_conf < 0.5] = np.nan  # a covered AU is not seen: neither present nor absent
    score = a["score"]
    confidence = np.where(has_face, np.nan_to_num(score, nan=1.0) * (1.0 - np.nan_to_num(o_any, nan=0.0)), np.nan)
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
    covered = np.nan_to_num(o_any, nan=0.0) > OCCLUSION_THRESHOLD
    occluded = np.where(has_face, ((a["outside"] > OUTSIDE_THRESHOLD) | (yaw > YAW_OCCLUSION) | covered)
                        .astype(np.float32), np.nan)
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
            "units": "1", "long_name": ("action unit intensity 0-1 from blendshapes and mesh geometry "
                                        "(eb.face.describe_mapping() says how each AU is computed)"),
            "scale": AU_SCALE}),
        "face_au_presence": (TF + ("au",), presence, {
            "units": "1", "long_name": (f"action unit present (intensity >= {au_threshold}); NaN without a face "
                                        "or where the AU's region is covered"),
            "threshold": float(au_threshold)}),
        "face_au_confidence": (TF + ("au",), au_conf, {
            "units": "1", "long_name": ("1 - probability that the AU's region (eyes, nose or mouth) is covered "
                                        "(face_occlusion); NaN without an occlusion detector")}),
        "face_au_baseline": (TF, baseline, {
            "units": "1", "long_name": ("1 where the fitted AUs are relative to this track's own median (the "
                                        "person's neutral, as OpenFace's dynamic models); 0: the face judged "
                                        "alone (stills, tracks shorter than "
                                        f"{MIN_BASELINE_FRAMES} analysed frames)")}),
        "face_occlusion": (TF + ("region",), occl, {
            "units": "1", "long_name": "probability that the region is covered (a hand, an object)",
            "model": getattr(getattr(pipe.occlusion, "spec", None), "name", "none")}),
        "face_confidence": (TF, confidence.astype(np.float32), {
            "units": "1", "long_name": ("confidence of the face estimates: face_score x (1 - the largest "
                                        "face_occlusion); fusion weighs the face by it")}),
        "face_emotion": (TF + ("emotion",), a["emotion"], {
            "units": "1", "long_name": (f"expression probabilities ({pipe.expression.spec.name}); sum to 1; "
                                        "where the face is covered, shrunk toward 1/7 by the occlusion "
                                        "probability"),
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
            "units": "1", "long_name": (f"1 where more than {OUTSIDE_THRESHOLD:.0%} of the mesh lies outside the frame, "
                                        f"|yaw| > {YAW_OCCLUSION:g} degrees (self-occlusion), or a region is covered "
                                        f"(face_occlusion > {OCCLUSION_THRESHOLD:g})")}),
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
        "region": list(OCCLUSION_REGIONS),
    }
    coords.update(extra_coords or {})
    ds = xr.Dataset(data, coords=coords, attrs=dict(attrs or {}))
    return ds


def _dynamic_aus(a: dict, pipe: FacePipeline, has_face: np.ndarray, times: np.ndarray, baseline: np.ndarray,
                 *, track_gap: float) -> None:
    """Fitted AUs relative to each track's own median (in place), for tracks long enough."""
    learned = pipe.learned_aus
    cols = [pipe.aus.index(x) for x in learned]
    mcols = [pipe.au_model.aus.index(x) for x in learned]
    for f in range(has_face.shape[1]):
        for seg in track_segments(has_face[:, f], times, max_gap=track_gap):
            X = a["au_input"][seg, f]
            ok = np.isfinite(X).all(axis=1)
            if ok.sum() < MIN_BASELINE_FRAMES:
                continue
            rows = seg[ok]
            a["au"][np.ix_(rows, [f], cols)] = pipe.au_model.dynamic(X[ok])[:, mcols][:, None, :]
            baseline[rows, f] = 1.0


def _au_confidence(occl: np.ndarray, aus) -> np.ndarray:
    """(T, F, n_aus): 1 - the probability that each AU's region is covered."""
    idx = [OCCLUSION_REGIONS.index(AU_REGIONS.get(x, "mouth")) for x in aus]
    return (1.0 - occl[..., idx]).astype(np.float32)


def _discount_occluded(a: dict, o_any: np.ndarray, keys) -> None:
    """Shrink probabilities toward uniform by the occlusion probability (in place):
    ``p' = (1 - o) p + o / 7``. A covered face gives an expression estimate it cannot see."""
    o = np.nan_to_num(o_any, nan=0.0)[..., None]
    for k in keys:
        a[k][...] = (1.0 - o) * a[k] + o / len(EMOTIONS)
