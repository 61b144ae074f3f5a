"""Micro- and macro-expression spotting from the tracked face mesh.

The method belongs to the family of the MEGC spotting baselines (Moilanen et al. 2014; He et al.
2020; Yap et al. 2022), with landmark motion in place of texture features:

1. **Head motion removed.** Every frame's mesh is fitted onto a per-video reference shape by a
   robust 3D similarity transform (Umeyama, reweighted) of points that expressions barely move
   (nose bridge, eye corners, temples, upper forehead; :data:`~emonb.spotting.regions.ANCHORS`).
   Coordinates are then in inter-ocular distances (IOD), so faces of any size compare.
2. **Motion per region.** For each region (brows, eyes, nose, mouth, cheeks) and each frame, the
   root-mean-square displacement of its aligned points, after light temporal smoothing.
3. **Contrast against a window.** The feature difference of the MEGC baselines: the region's
   shape at frame *t* against the mean of its shapes at *t - k* and *t + k*, with *k* about
   0.2 s for micro- and 0.65 s for macro-expressions (set in seconds, so any frame rate works).
4. **Threshold relative to the video.** Each region's contrast is turned into a robust z-score
   (median and MAD over the whole video); a candidate is a run where some region exceeds
   ``threshold`` and also moves more than ``min_motion`` IOD. A video with no expression so yields
   no (or very few) spots, unlike the ``mean + p (max - mean)`` rule that always fires.
5. **Intervals.** Around each candidate the apex is the frame of largest displacement from a
   slow running-median baseline; onset and offset are where that displacement falls back to the
   noise floor, extrapolated from its 20 % and 50 % crossings. Overlapping intervals are merged
   (the strongest kept); an interval lasting at most ``max_micro`` seconds is a micro-expression,
   a longer one a macro-expression.

Blinks (a fast, deep fall of the eye aspect ratio) are masked out of the eye region, as in the
MEGC ground truth, where blinks are not expressions.
"""

from __future__ import annotations

import itertools
import json
import os
import time as _time
import warnings

import numpy as np
import xarray as xr

from .._checks import check_option, check_positive
from ..errors import EmonbValueError, EmonbWarning
from .regions import ANCHORS, BLINK_PAIRS, EYE_CORNERS, REGION_NAMES, REGIONS

__all__ = [
    "DEFAULTS",
    "SPOT_VARIABLES",
    "align_landmarks",
    "empty_spots",
    "remove_pose_effect",
    "spot_expressions",
    "spot_landmarks",
]

METHOD = "emonb-landmark-spotting"
METHOD_VERSION = "2"  # 2: head rotation as the largest turn in the window (yaw, pitch, roll)

#: Default parameters of :func:`spot_expressions` (seconds, IOD units or robust z-scores).
DEFAULTS = {
    "micro_window": 0.2,
    "macro_window": 0.65,
    "max_micro": 0.5,
    "min_duration": 0.1,
    "max_duration": 4.0,
    "threshold": 6.0,
    "min_motion": 0.012,
    "baseline": 8.0,
    "extent": 0.2,
    "smooth": 0.03,
    "blink_ratio": 0.6,
    "au_delta": 0.1,
    "head_tolerance": 3.0,
}

#: Variables of a spots Dataset, all on the ``spot`` dimension.
SPOT_VARIABLES = ("onset", "apex", "offset", "onset_frame", "apex_frame", "offset_frame", "duration",
                  "kind", "regions", "aus", "strength", "score", "face")


# -- alignment ------------------------------------------------------------------------------------
def _weighted_similarity(X: np.ndarray, Y: np.ndarray, w: np.ndarray):
    """Batched weighted Umeyama fit of X (T, A, C) onto Y (A, C): returns s (T,), R (T, C, C), mx, my."""
    w = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
    mx = np.einsum("ta,tac->tc", w, X)
    my = np.einsum("ta,ac->tc", w, Y)
    Xc = X - mx[:, None]
    Yc = Y[None] - my[:, None]
    H = np.einsum("ta,tai,taj->tij", w, Xc, Yc)
    U, S, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(np.einsum("tij,tjk->tik", U, Vt)))
    d[d == 0] = 1.0
    D = np.broadcast_to(np.eye(X.shape[2]), H.shape).copy()
    D[:, -1, -1] = d
    R = np.einsum("tji,tjk,tlk->til", Vt, D, U)  # V D U^T
    var_x = np.einsum("ta,tac,tac->t", w, Xc, Xc)
    s = np.einsum("ti,tii->t", S, D) / np.maximum(var_x, 1e-12)
    return s, R, mx, my


def align_landmarks(landmarks, *, anchors=ANCHORS, iterations: int = 3, return_pose: bool = False):
    """Remove head motion: fit every frame's mesh onto a per-video reference shape.

    Parameters
    ----------
    landmarks : array_like, shape (time, landmark, coord)
        Face mesh per frame, ``coord`` = (x, y) or (x, y, z), in pixels; NaN where no face.
    anchors : sequence of int
        Landmarks that expressions barely move; the similarity transform is fitted on these,
        reweighted (Cauchy weights) so that an anchor that does move loses its influence.
    iterations : int
        Rounds of reference update (generalised Procrustes).

    Returns
    -------
    aligned : ndarray, shape (time, landmark, coord), float64
        The meshes in the reference frame, in inter-ocular distances (eye-centre to eye-centre
        distance of the reference = 1), origin at the anchors' centroid; NaN where no face.
    valid : ndarray of bool, shape (time,)
        Frames with a complete mesh.
    iod : float
        The reference inter-ocular distance in the input's units (pixels).
    pose : ndarray, shape (time, 4), only with ``return_pose``
        Head pose relative to the reference, from the fitted rotation and scale: the rotation's
        (0, 2), (1, 2) and (0, 1) entries (about sin yaw, sin pitch, sin roll) and log scale; NaN
        where no face.
    """
    L = np.asarray(landmarks, dtype=np.float64)
    if L.ndim != 3 or L.shape[2] not in (2, 3):
        raise EmonbValueError(f"landmarks must have shape (time, landmark, 2 or 3), got {L.shape}")
    if L.shape[1] <= max(max(anchors), max(max(p) for p in EYE_CORNERS)):
        raise EmonbValueError(f"landmarks need the 478-point MediaPipe mesh, got {L.shape[1]} points")
    anchors = np.asarray(anchors, int)
    valid = np.isfinite(L[:, anchors]).all(axis=(1, 2)) & np.isfinite(L).all(axis=2).mean(axis=1).__ge__(0.99)
    out = np.full(L.shape, np.nan)
    pose = np.full((L.shape[0], 4), np.nan)
    if not valid.any():
        return (out, valid, float("nan"), pose) if return_pose else (out, valid, float("nan"))
    V = L[valid]
    X = V[:, anchors]
    # initial reference: the median of the frames centred and scaled on their anchors
    c = X.mean(axis=1, keepdims=True)
    sc = np.sqrt(((X - c) ** 2).sum(axis=2).mean(axis=1))[:, None, None]
    ref = np.median((X - c) / sc, axis=0)
    w = np.ones(X.shape[:2])
    for _ in range(max(int(iterations), 1)):
        for _rw in range(2):
            s, R, mx, my = _weighted_similarity(X, ref, w)
            fit = s[:, None, None] * np.einsum("tij,taj->tai", R, X - mx[:, None]) + my[:, None]
            res = np.sqrt(((fit - ref[None]) ** 2).sum(axis=2))
            scale = np.maximum(np.median(res, axis=1, keepdims=True), 1e-9) * 2.0
            w = 1.0 / (1.0 + (res / scale) ** 2)
        ref = np.median(fit, axis=0)
    aligned = s[:, None, None] * np.einsum("tij,taj->tai", R, V - mx[:, None]) + my[:, None]
    # units: inter-ocular distance of the reference, origin at the anchor centroid
    centres = [aligned[:, list(pair)].mean(axis=1) for pair in EYE_CORNERS]
    iod_ref = float(np.median(np.linalg.norm((centres[0] - centres[1])[:, :2], axis=1)))
    origin = np.median(aligned[:, anchors].mean(axis=1), axis=0)
    out[valid] = (aligned - origin) / max(iod_ref, 1e-9)
    raw_centres = [V[:, list(pair)].mean(axis=1) for pair in EYE_CORNERS]
    iod_px = float(np.median(np.linalg.norm((raw_centres[0] - raw_centres[1])[:, :2], axis=1)))
    if not return_pose:
        return out, valid, iod_px
    if R.shape[1] == 3:
        pose[valid] = np.stack([R[:, 0, 2], R[:, 1, 2], R[:, 0, 1], np.log(s)], axis=1)
    else:
        pose[valid] = np.stack([np.zeros_like(s), np.zeros_like(s), R[:, 0, 1], np.log(s)], axis=1)
    return out, valid, iod_px, pose


def remove_pose_effect(f: np.ndarray, pose: np.ndarray, valid: np.ndarray, *, keep: float = 0.8) -> np.ndarray:
    """Subtract the part of the aligned shape that follows head pose (a second-order regression).

    A 2D mesh fitted to a turned head keeps small non-rigid residuals after the similarity
    alignment (perspective, self-occlusion, the tracker's shape prior). They are regressed on the
    pose (yaw, pitch, roll, scale, and the squares and product of yaw and pitch) over the whole
    video, refitted on the ``keep`` fraction of frames that fit best (expressions are sparse and
    unrelated to pose), and removed.

    Parameters
    ----------
    f : ndarray, shape (time, point, coord)
        Aligned coordinates (IOD).
    pose : ndarray, shape (time, 4)
        From :func:`align_landmarks` with ``return_pose=True``.
    valid : ndarray of bool, shape (time,)

    Returns
    -------
    ndarray, same shape as ``f``
    """
    ok = valid & np.isfinite(pose).all(axis=1)
    if ok.sum() < 30:
        return f
    P = pose[ok] - np.median(pose[ok], axis=0)
    X = np.column_stack([P, P[:, 0] ** 2, P[:, 1] ** 2, P[:, 0] * P[:, 1]])
    sd = X.std(axis=0)
    use = sd > 1e-6
    if not use.any():
        return f
    X = X[:, use] / sd[use]
    X1 = np.column_stack([np.ones(len(X)), X])
    Y = f[ok].reshape(ok.sum(), -1)
    rows = np.ones(len(X1), bool)
    for _ in range(2):
        B, *_ = np.linalg.lstsq(X1[rows], Y[rows], rcond=None)
        res = np.sqrt(((Y - X1 @ B) ** 2).sum(axis=1))
        rows = res <= np.quantile(res, keep)
    out = f.copy()
    out[ok] = (Y - X @ B[1:]).reshape((-1,) + f.shape[1:])
    return out


# -- signal helpers ---------------------------------------------------------------------------------
def _fill_nan_time(a: np.ndarray) -> np.ndarray:
    """Fill NaN frames (axis 0) with the nearest valid frame, for filtering."""
    ok = np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1)
    if ok.all() or not ok.any():
        return a
    idx = np.arange(a.shape[0])
    pos = np.searchsorted(idx[ok], idx)
    lo = idx[ok][np.clip(pos - 1, 0, ok.sum() - 1)]
    hi = idx[ok][np.clip(pos, 0, ok.sum() - 1)]
    near = np.where(np.abs(idx - lo) <= np.abs(hi - idx), lo, hi)
    return a[near]


def _smooth(a: np.ndarray, sigma_frames: float) -> np.ndarray:
    if sigma_frames < 0.3:
        return a
    from scipy.ndimage import gaussian_filter1d

    nan = ~np.isfinite(a)
    out = gaussian_filter1d(_fill_nan_time(a), sigma_frames, axis=0, mode="nearest")
    out[nan] = np.nan
    return out


def _shift(a: np.ndarray, k: int) -> np.ndarray:
    """a[t + k] with the index clamped to the valid range (axis 0)."""
    idx = np.clip(np.arange(a.shape[0]) + k, 0, a.shape[0] - 1)
    return a[idx]


def _contrast(f: np.ndarray, k: int) -> np.ndarray:
    """RMS over points of f(t) - (f(t-k) + f(t+k)) / 2; f (T, P, 2) -> (T,)."""
    d = f - 0.5 * (_shift(f, -k) + _shift(f, k))
    return np.sqrt((d ** 2).sum(axis=2).mean(axis=1))


def _head_rotation(angles: np.ndarray, k: int) -> np.ndarray:
    """Largest head rotation between frame t and any frame within t +/- k; angles (T, A) -> (T,).

    Not a window contrast of the angles: during a steady turn the angles change linearly, so their
    contrast is about zero, while the tracked mesh (whose distortion is not linear in the angle)
    still changes shape by as much as the head turns.
    """
    a = np.nan_to_num(_fill_nan_time(angles))
    return np.max([np.linalg.norm(_shift(a, s) - a, axis=1) for s in range(-k, k + 1)], axis=0)


def _running_median(f: np.ndarray, window: int, step: int) -> np.ndarray:
    """Running median along time of f (T, ...) over ``window`` frames, on a grid of ``step`` frames."""
    T = f.shape[0]
    flat = f.reshape(T, -1)
    grid = np.arange(0, T, max(step, 1))
    half = max(window // 2, 1)
    sub = flat[grid]
    hw = max(half // max(step, 1), 1)
    ok = np.isfinite(sub).all(axis=1)
    med = np.full_like(sub, np.nan)
    for i in range(len(grid)):
        lo, hi = max(i - hw, 0), i + hw + 1
        rows = sub[lo:hi][ok[lo:hi]]
        if len(rows):
            med[i] = np.median(rows, axis=0)
    out = np.empty_like(flat)
    t = np.arange(T)
    for j in range(flat.shape[1]):
        m = med[:, j]
        ok = np.isfinite(m)
        out[:, j] = np.interp(t, grid[ok], m[ok]) if ok.any() else np.nan
    return out.reshape(f.shape)


def _robust_z(c: np.ndarray) -> tuple[np.ndarray, float, float]:
    ok = np.isfinite(c)
    if ok.sum() < 3:
        return np.zeros_like(c), 0.0, 1.0
    med = float(np.median(c[ok]))
    # spread from the lower half only: expressions sit in the upper tail, and in a busy video
    # they would inflate an ordinary MAD
    low = c[ok][c[ok] <= med]
    mad = 1.4826 * float(np.median(med - low))
    sd = max(mad, 1e-4)  # 1e-4 IOD: below MediaPipe's own jitter
    z = (c - med) / sd
    z[~ok] = 0.0
    return z, med, sd


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (start, end) of the True runs of a 1-D mask."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.flatnonzero(np.diff(m.astype(np.int8)))
    return [(int(a), int(b) - 1) for a, b in zip(d[::2], d[1::2])]


def _dilate(mask: np.ndarray, k: int) -> np.ndarray:
    if k <= 0 or not mask.any():
        return mask
    from scipy.ndimage import binary_dilation

    return binary_dilation(mask, structure=np.ones(2 * k + 1, bool))


def blink_mask(aligned: np.ndarray, fps: float, *, ratio: float = 0.6, max_blink: float = 0.5,
               baseline: float = 4.0) -> np.ndarray:
    """Frames inside a blink: the eye aspect ratio falls below ``ratio`` x its running median.

    Parameters
    ----------
    aligned : ndarray, shape (time, landmark, coord)
    fps : float
        Frames per second.
    ratio : float
        Fraction of the baseline aspect ratio below which the eyes count as closing.
    max_blink : float
        Longest blink, seconds; longer closures are kept (they may be an expression, AU43).

    Returns
    -------
    ndarray of bool, shape (time,)
    """
    up = [p[0] for p in BLINK_PAIRS]
    lo = [p[1] for p in BLINK_PAIRS]
    lid = np.linalg.norm(aligned[:, up, :2] - aligned[:, lo, :2], axis=2).mean(axis=1)
    width = np.mean([np.linalg.norm(aligned[:, a, :2] - aligned[:, b, :2], axis=1) for a, b in EYE_CORNERS], axis=0)
    ear = lid / np.maximum(width, 1e-9)
    base = _running_median(ear[:, None], max(int(baseline * fps), 3), max(int(fps / 10), 1))[:, 0]
    closing = np.isfinite(ear) & (ear < ratio * base)
    mask = np.zeros_like(closing)
    for a, b in _runs(closing):
        if (b - a + 1) / fps <= max_blink:
            mask[a:b + 1] = True
    # include the lid's travel on either side of the closure (about 40 ms)
    return _dilate(mask, round(0.04 * fps))


# -- interval extent ------------------------------------------------------------------------------
def _crossing(D: np.ndarray, apex: int, level: float, step: int) -> float:
    """Sub-frame position, walking from the apex by ``step`` (-1 or +1), where D falls to ``level``."""
    i = apex
    n = D.shape[0]
    while 0 <= i + step < n and np.isfinite(D[i + step]) and D[i + step] > level:
        i += step
    j = i + step
    if not (0 <= j < n) or not np.isfinite(D[j]) or D[i] == D[j]:
        return float(i)
    frac = (D[i] - level) / (D[i] - D[j])
    return float(i + step * np.clip(frac, 0.0, 1.0))


def _extent(D: np.ndarray, apex: int, floor: float, extent: float) -> tuple[int, int]:
    h = D[apex] - floor
    lo, hi = floor + extent * h, floor + 0.5 * h
    out = []
    for step in (-1, 1):
        c_lo = _crossing(D, apex, lo, step)
        c_hi = _crossing(D, apex, hi, step)
        span = abs(c_lo - c_hi)
        target = round(c_lo + step * span * extent / (0.5 - extent))
        i = apex  # walk to the extrapolated edge, never across a frame without a face
        while (i - target) * step < 0 and 0 <= i + step < D.shape[0] and np.isfinite(D[i + step]):
            i += step
        out.append(i)
    a, b = out
    return int(min(a, apex)), int(max(b, apex))


# -- the core ---------------------------------------------------------------------------------------
def spot_landmarks(landmarks, *, fps: float, micro_window: float = DEFAULTS["micro_window"],
                   macro_window: float = DEFAULTS["macro_window"], max_micro: float = DEFAULTS["max_micro"],
                   min_duration: float = DEFAULTS["min_duration"], max_duration: float = DEFAULTS["max_duration"],
                   threshold: float = DEFAULTS["threshold"], min_motion: float = DEFAULTS["min_motion"],
                   baseline: float = DEFAULTS["baseline"], extent: float = DEFAULTS["extent"],
                   smooth: float = DEFAULTS["smooth"], blinks: bool = True,
                   blink_ratio: float = DEFAULTS["blink_ratio"], regions=None, pose_correction: bool = True,
                   head_tolerance: float | None = DEFAULTS["head_tolerance"], return_signals: bool = False):
    """Spot expression intervals in a sequence of face meshes (frame units).

    Parameters
    ----------
    landmarks : array_like, shape (time, 478, coord)
        MediaPipe mesh per analysed frame, ``coord`` = (x, y, z) or (x, y), pixels; NaN rows where
        no face was found. Frames are assumed evenly spaced at ``fps``.
    fps : float
        Analysed frames per second (after any stride).
    micro_window, macro_window : float
        Half-widths of the contrast windows, seconds (about 0.2 s and 0.65 s in MEGC).
    max_micro : float
        Longest micro-expression, seconds; longer intervals are macro-expressions.
    min_duration, max_duration : float
        Shortest and longest interval kept, seconds.
    threshold : float
        Robust z-score (median, MAD over the video) a region's contrast must exceed.
    min_motion : float
        Smallest contrast that counts, in inter-ocular distances (IOD).
    baseline : float
        Length of the running-median window that estimates the neutral face, seconds; make it
        more than twice the longest expression.
    extent : float
        Fraction of the peak displacement whose crossing (with the 50 % crossing) is extrapolated
        to find onset and offset.
    smooth : float
        Standard deviation of the Gaussian smoothing of the mesh along time, seconds.
    blinks : bool
        Mask blinks out of the eye region.
    blink_ratio : float
        Eye aspect ratio, as a fraction of its running median, below which a short closure is a blink.
    regions : sequence of str, optional
        Regions to use (default all of :data:`~emonb.spotting.regions.REGION_NAMES`).
    pose_correction : bool
        Where the head turns by more than a few degrees (yaw or pitch standard deviation above
        4 degrees), regress the aligned shape on head pose and remove what follows pose
        (:func:`remove_pose_effect`): a head turn alone must not look like an expression.
    head_tolerance : float or None
        Head rotation that doubles the threshold: the threshold is
        ``threshold * (1 + (rotation / head_tolerance) ** 2)``, where ``rotation`` is the largest
        change of head yaw, pitch and roll (degrees) between the frame and any frame of its
        contrast window, so the mesh's own distortions during a head turn are not taken for
        expressions. ``None`` disables it.
    return_signals : bool
        Also return the per-frame signals (for plots and tuning).

    Returns
    -------
    spots : list of dict
        One dict per interval with frame positions (``onset``, ``apex``, ``offset``, inclusive, into
        the input's time axis), ``kind``, ``regions`` (list), ``strength`` (peak displacement above
        the noise floor, IOD) and ``score`` (peak robust z of the contrast).
    signals : dict, only with ``return_signals``
        ``contrast`` (scale, time, region) in IOD, ``z`` (scale, time, region), ``displacement``
        (time, region) in IOD, ``blink`` (time,), ``valid`` (time,), ``iod`` (pixels).
    """
    fps = check_positive("fps", fps)
    regions = list(REGION_NAMES if regions is None else regions)
    for r in regions:
        check_option("region", r, REGION_NAMES)
    aligned, valid, iod, pose = align_landmarks(landmarks, return_pose=True)
    T = aligned.shape[0]
    f = _smooth(aligned[..., :2], smooth * fps)
    f[~valid] = np.nan
    angles = np.degrees(np.arcsin(np.clip(pose[:, :2], -1, 1)))  # about yaw, pitch
    if pose_correction and valid.sum() > 30 and np.nanstd(angles[valid], axis=0).max() > 4.0:
        f = remove_pose_effect(f, pose, valid)
    k_scales = {"micro": max(round(micro_window * fps), 1), "macro": max(round(macro_window * fps), 1)}
    blink = blink_mask(aligned, fps, ratio=blink_ratio) if blinks and valid.any() else np.zeros(T, bool)

    # displacement from the neutral (running-median) face, per region
    used = sorted({i for r in regions for i in REGIONS[r]})
    base = np.full_like(f, np.nan)
    base[:, used] = _running_median(f[:, used], max(round(baseline * fps), 3), max(round(fps / 8), 1))
    disp = np.full((T, len(regions)), np.nan)
    contrast = np.zeros((2, T, len(regions)))
    zs = np.zeros((2, T, len(regions)))
    for j, r in enumerate(regions):
        idx = list(REGIONS[r])
        disp[:, j] = np.sqrt(((f[:, idx] - base[:, idx]) ** 2).sum(axis=2).mean(axis=1))
        if r == "eyes":
            disp[blink, j] = np.nanmedian(disp[~blink, j]) if (~blink & valid).any() else 0.0
    for si, (scale, k) in enumerate(k_scales.items()):
        for j, r in enumerate(regions):
            c = _contrast(f[:, list(REGIONS[r])], k)
            if r == "eyes" and blink.any():
                c[_dilate(blink, k)] = np.nan
            z, _, _ = _robust_z(c)
            z[~(c > min_motion)] = np.minimum(z[~(c > min_motion)], 0.0)
            contrast[si, :, j] = np.nan_to_num(c)
            zs[si, :, j] = z
    valid_idx = np.flatnonzero(valid)
    floors = np.array([np.nanmedian(disp[valid, j]) if valid.any() else 0.0 for j in range(len(regions))])

    candidates = []
    min_frames = min_duration * fps
    head = np.zeros((2, T))
    head_angles = np.degrees(np.arcsin(np.clip(pose[:, :3], -1, 1)))  # about yaw, pitch, roll
    for si, (scale, k) in enumerate(k_scales.items()):
        # the threshold rises with the head rotation inside the window (degrees), faster than
        # linearly: small sway is aligned away, larger turns distort the tracked mesh
        hc = _head_rotation(head_angles, k)
        head[si] = hc
        thr = threshold * (1.0 + (hc / head_tolerance) ** 2) if head_tolerance else np.full(T, threshold)
        zmax = zs[si].max(axis=1)
        for r0, r1 in _runs(zmax > thr):
            fired = np.flatnonzero((zs[si, r0:r1 + 1] > thr[r0:r1 + 1, None]).any(axis=0))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # frames without a face
                D = np.nanmean(disp[:, fired] - floors[fired], axis=1)
            a0, a1 = max(r0 - k, 0), min(r1 + k, T - 1)
            seg = D[a0:a1 + 1]
            if not np.isfinite(seg).any():
                continue
            apex = a0 + int(np.nanargmax(seg))
            if not D[apex] > 0:
                continue
            on, off = _extent(D, apex, 0.0, extent)
            n = off - on + 1
            if n < min_frames or n / fps > max_duration:
                continue
            order = fired[np.argsort(-zs[si, r0:r1 + 1][:, fired].max(axis=0))]
            candidates.append({"onset": on, "apex": apex, "offset": off, "strength": float(D[apex]),
                               "score": float(zmax[r0:r1 + 1].max()), "regions": [regions[i] for i in order],
                               "scale": scale})
    # merge: strongest first; drop any candidate that mostly overlaps a kept one
    candidates.sort(key=lambda c: -c["strength"])
    kept: list[dict] = []
    for c in candidates:
        n = c["offset"] - c["onset"] + 1
        clash = False
        for q in kept:
            inter = min(c["offset"], q["offset"]) - max(c["onset"], q["onset"]) + 1
            if inter > 0 and (inter / n >= 0.5 or inter / (q["offset"] - q["onset"] + 1) >= 0.5):
                clash = True
                q["regions"] += [r for r in c["regions"] if r not in q["regions"]]
                q["score"] = max(q["score"], c["score"])
                break
        if not clash:
            kept.append(dict(c))
    # trim residual overlaps between neighbours so that intervals never share frames
    kept.sort(key=lambda c: c["onset"])
    for a, b in itertools.pairwise(kept):
        if b["onset"] <= a["offset"]:
            cut = (a["apex"] + b["apex"]) // 2
            a["offset"], b["onset"] = min(a["offset"], cut), max(b["onset"], cut + 1)
    spots = []
    for c in kept:
        n = c["offset"] - c["onset"] + 1
        if n < min_frames:
            continue
        c["kind"] = "micro" if n / fps <= max_micro + 1e-9 else "macro"
        spots.append(c)
    if not return_signals:
        return spots
    signals = {"contrast": contrast, "z": zs, "head": head, "displacement": disp, "blink": blink, "valid": valid,
               "iod": iod, "regions": regions, "scales": list(k_scales), "valid_frames": valid_idx.size}
    return spots, signals


# -- Dataset building and the public function -------------------------------------------------------
def empty_spots(**attrs) -> xr.Dataset:
    """A spots Dataset with no intervals (same variables and attributes as a full one)."""
    return _spots_dataset([], np.zeros(0), np.zeros(0, np.int64), 1.0, attrs=attrs)


def _spots_dataset(spots, times, frame_index, fps, *, aus=None, au_names=None, au_threshold=0.5,
                   au_delta=0.1, face=0, attrs=None) -> xr.Dataset:
    n = len(spots)
    dt = 1.0 / fps
    on = np.array([s["onset"] for s in spots], int)
    ap = np.array([s["apex"] for s in spots], int)
    off = np.array([s["offset"] for s in spots], int)
    t = np.asarray(times, float)
    fi = np.asarray(frame_index, np.int64)
    active = []
    for s in spots:
        if aus is None:
            active.append("")
            continue
        a_ap, a_on = aus[s["apex"]], aus[s["onset"]]
        ok = np.isfinite(a_ap) & ((a_ap >= au_threshold) | (a_ap - np.nan_to_num(a_on, nan=0.0) >= au_delta))
        active.append(",".join(str(au_names[i]) for i in np.flatnonzero(ok)))
    data = {
        "onset": ("spot", t[on] if n else np.zeros(0), {"units": "s", "long_name": "onset (first frame of the interval)"}),
        "apex": ("spot", t[ap] if n else np.zeros(0), {"units": "s", "long_name": "apex (frame of largest displacement)"}),
        "offset": ("spot", t[off] if n else np.zeros(0), {"units": "s", "long_name": "offset (last frame of the interval)"}),
        "onset_frame": ("spot", fi[on] if n else np.zeros(0, np.int64), {"units": "frame", "long_name": "video frame index of the onset"}),
        "apex_frame": ("spot", fi[ap] if n else np.zeros(0, np.int64), {"units": "frame", "long_name": "video frame index of the apex"}),
        "offset_frame": ("spot", fi[off] if n else np.zeros(0, np.int64), {"units": "frame", "long_name": "video frame index of the offset"}),
        "duration": ("spot", (t[off] - t[on] + dt) if n else np.zeros(0),
                     {"units": "s", "long_name": "offset - onset + one frame (frames inclusive)"}),
        "kind": ("spot", np.array([s["kind"] for s in spots], dtype=object),
                 {"long_name": "micro (duration <= max_micro) or macro"}),
        "regions": ("spot", np.array([",".join(s["regions"]) for s in spots], dtype=object),
                    {"long_name": "facial regions that moved, strongest first (comma-joined)"}),
        "aus": ("spot", np.array(active, dtype=object),
                {"long_name": "action units active at the apex (comma-joined; empty without AU intensities)"}),
        "strength": ("spot", np.array([s["strength"] for s in spots], float),
                     {"units": "IOD", "long_name": "peak RMS landmark displacement of the moving regions from the "
                                                  "neutral face, above the noise floor, in inter-ocular distances"}),
        "score": ("spot", np.array([s["score"] for s in spots], float),
                  {"units": "1", "long_name": "peak robust z-score of the window contrast"}),
        "face": ("spot", np.full(n, int(face), np.int64), {"long_name": "face id in the face result"}),
    }
    ds = xr.Dataset(data, coords={"spot": np.arange(n)})
    if n:
        order = np.argsort(ds["onset"].values, kind="stable")
        ds = ds.isel(spot=order).assign_coords(spot=np.arange(n))
    ds.attrs.update({"modality": "spots", "method": METHOD, "model": METHOD, "model_version": METHOD_VERSION,
                     "model_license": "MIT", "device": "cpu", "units": "s"})
    ds.attrs.update(attrs or {})
    return ds


def _face_result(src, face_options, progress):
    """Return (face Dataset, source description) for any accepted input."""
    from ..models.face.analyze import analyze_face

    opts = dict(face_options or {})
    opts.setdefault("progress", progress)
    opts.setdefault("detector_score", False)  # spotting needs the mesh, not the detector's score
    if isinstance(src, xr.DataTree):
        if "face" in src.children:
            return src["face"].to_dataset(), "session face node"
        if "video" in src.children:
            return analyze_face(src, **opts), "session video node (face analysis run for spotting)"
        raise EmonbValueError("spot_expressions: this session has neither a 'face' nor a 'video' node "
                              f"(it has {', '.join(src.children) or 'none'})")
    if isinstance(src, xr.Dataset):
        if "face_landmarks" in src:
            return src, str(src.attrs.get("path", "face result"))
        if src.attrs.get("modality") == "video" or "frames" in src or src.attrs.get("path"):
            return analyze_face(src, **opts), str(src.attrs.get("path", "video node"))
        if src.attrs.get("modality") == "face":
            raise EmonbValueError("spot_expressions: this face result has no 'face_landmarks'; run "
                                  "eb.analyze_face(..., landmarks=True) (the default)")
        raise EmonbValueError("spot_expressions: the Dataset is neither a face result (face_landmarks) "
                              "nor a video node")
    if isinstance(src, (str, os.PathLike)):
        from .._checks import check_file

        p = check_file(src, what="video file")
        return analyze_face(p, **opts), str(p)
    raise EmonbValueError(f"spot_expressions cannot read a {type(src).__name__}; give a video path, a face "
                          "result of eb.analyze_face, a session DataTree or a landmark array with fps=")


def spot_expressions(src, *, face: int = 0, fps: float | None = None,
                     micro_window: float = DEFAULTS["micro_window"], macro_window: float = DEFAULTS["macro_window"],
                     max_micro: float = DEFAULTS["max_micro"], min_duration: float = DEFAULTS["min_duration"],
                     max_duration: float = DEFAULTS["max_duration"], threshold: float = DEFAULTS["threshold"],
                     min_motion: float = DEFAULTS["min_motion"], baseline: float = DEFAULTS["baseline"],
                     extent: float = DEFAULTS["extent"], smooth: float = DEFAULTS["smooth"], blinks: bool = True,
                     blink_ratio: float = DEFAULTS["blink_ratio"], regions=None, pose_correction: bool = True,
                     head_tolerance: float | None = DEFAULTS["head_tolerance"],
                     au_delta: float = DEFAULTS["au_delta"], face_options=None, return_signals: bool = False,
                     progress: bool = True):
    """Spot micro- and macro-expressions: onset, apex, offset, kind, regions, AUs and strength.

    Parameters
    ----------
    src : str, Path, xarray.Dataset, xarray.DataTree or ndarray
        A video file (face analysis runs first), a face result of :func:`emonb.analyze_face`
        (needs ``face_landmarks``), a video node, a session tree (its ``face`` node when present,
        else face analysis of its ``video`` node), or a landmark array (time, 478, 2|3) with ``fps``.
    face : int
        Which tracked face (``face`` coordinate of the face result) to spot on.
    fps : float, optional
        Frame rate of a landmark array; for a face result it is read from its ``time`` coordinate.
    micro_window, macro_window : float
        Half-widths of the contrast windows in seconds (MEGC: about 0.2 s and 0.65 s).
    max_micro : float
        Longest micro-expression, seconds (0.5 s by the usual definition).
    min_duration, max_duration : float
        Intervals shorter or longer than these (seconds) are dropped.
    threshold : float
        Robust z-score (median and MAD of the region's contrast over the video) to exceed.
    min_motion : float
        Smallest window contrast that counts, in inter-ocular distances (IOD).
    baseline : float
        Running-median window (seconds) estimating the neutral face.
    extent : float
        Fraction of the peak whose crossing, with the half-peak crossing, is extrapolated to the
        onset and offset.
    smooth : float
        Temporal smoothing of the mesh (Gaussian standard deviation, seconds).
    blinks : bool
        Mask blinks out of the eye region.
    blink_ratio : float
        Eye aspect ratio (fraction of its running median) below which a short closure is a blink.
    regions : sequence of str, optional
        Subset of ``("brows", "eyes", "nose", "mouth", "cheeks")``.
    pose_correction : bool
        Remove the part of the aligned shape that follows head pose when the head turns by more
        than a few degrees (see :func:`remove_pose_effect`).
    head_tolerance : float or None
        Degrees of head rotation (yaw, pitch, roll) within a contrast window that double the
        threshold (``None``: a fixed threshold).
    au_delta : float
        An AU counts as active at the apex when its intensity there reaches the face result's
        ``au_threshold`` or has risen by at least ``au_delta`` since the onset.
    face_options : dict, optional
        Keyword options for :func:`emonb.analyze_face` when face analysis has to run (by default
        ``detector_score=False``: spotting needs the mesh, not the detector's score).
    return_signals : bool
        Also return a Dataset of the per-frame signals: ``contrast(scale, time, region)`` and
        ``displacement(time, region)`` in IOD, ``z(scale, time, region)``, ``blink(time)``.
    progress : bool
        Show progress bars.

    Returns
    -------
    xarray.Dataset
        Dimension ``spot`` (one per interval, ordered by onset) with ``onset``, ``apex``,
        ``offset`` (session seconds), ``onset_frame``, ``apex_frame``, ``offset_frame`` (video
        frame index, int), ``duration`` (s, frames inclusive), ``kind`` (``"micro"`` or
        ``"macro"``), ``regions`` and ``aus`` (comma-joined str), ``strength`` (IOD), ``score``
        (robust z) and ``face``. Attributes: ``modality="spots"``, ``method``, ``parameters``
        (JSON), ``fps``, ``source``, ``t0``, ``iod_px``, ``face_coverage`` and, when no face was
        found, ``quality="no_face"`` with a ``warning``. ``spots.to_dataframe()`` gives one row per
        interval. With ``return_signals`` a tuple ``(spots, signals)``.

    Examples
    --------
    >>> spots = eb.spot_expressions("interview.mp4")            # doctest: +SKIP
    >>> spots.to_dataframe()[["onset", "offset", "kind", "regions"]]  # doctest: +SKIP
    """
    t_start = _time.perf_counter()
    params = {"micro_window": check_positive("micro_window", micro_window),
              "macro_window": check_positive("macro_window", macro_window),
              "max_micro": check_positive("max_micro", max_micro),
              "min_duration": check_positive("min_duration", min_duration),
              "max_duration": check_positive("max_duration", max_duration),
              "threshold": check_positive("threshold", threshold),
              "min_motion": float(min_motion), "baseline": check_positive("baseline", baseline),
              "extent": float(extent), "smooth": float(smooth), "blinks": bool(blinks),
              "blink_ratio": float(blink_ratio), "au_delta": float(au_delta),
              "regions": list(REGION_NAMES if regions is None else regions),
              "pose_correction": bool(pose_correction),
              "head_tolerance": None if head_tolerance is None else check_positive("head_tolerance", head_tolerance)}
    for r in params["regions"]:
        check_option("region", r, REGION_NAMES)
    if not 0.0 < params["extent"] < 0.5:
        raise EmonbValueError(f"extent must be between 0 and 0.5, got {extent!r}")
    if params["min_duration"] >= params["max_duration"]:
        raise EmonbValueError(f"min_duration ({min_duration}) must be below max_duration ({max_duration})")
    if params["min_motion"] < 0 or params["smooth"] < 0:
        raise EmonbValueError("min_motion and smooth must be >= 0")

    aus = au_names = None
    au_threshold = 0.5
    t0 = 0.0
    if isinstance(src, np.ndarray) or (isinstance(src, (list, tuple)) and len(src) and not isinstance(src[0], str)):
        L = np.asarray(src, dtype=np.float64)
        if fps is None:
            raise EmonbValueError("spot_expressions: a landmark array needs fps=")
        fps_ = check_positive("fps", fps)
        if L.ndim != 3 or L.shape[2] not in (2, 3):
            raise EmonbValueError(f"landmarks must have shape (time, 478, 2 or 3), got {L.shape}")
        if L.shape[1] != 478:
            raise EmonbValueError(f"landmarks need the 478-point MediaPipe mesh, got {L.shape[1]} points")
        times = np.arange(L.shape[0]) / fps_
        frame_index = np.arange(L.shape[0])
        source = "landmark array"
    else:
        ds, source = _face_result(src, face_options, progress)
        if "face_landmarks" not in ds:
            raise EmonbValueError(f"{source}: the face result has no 'face_landmarks' (run analyze_face with landmarks=True)")
        tdim = ds["face_landmarks"].dims[0]
        if tdim != "time":
            raise EmonbValueError(f"{source}: spotting needs a face result over time, got dimension {tdim!r} "
                                  "(predict_face_images results are stills)")
        nf = ds.sizes.get("face", 1)
        if not 0 <= int(face) < max(nf, 1):
            raise EmonbValueError(f"face={face!r}: this face result has faces 0..{nf - 1}")
        sel = ds.isel(face=int(face)) if "face" in ds.dims else ds
        L = np.asarray(sel["face_landmarks"].transpose("time", "landmark", "coord").values, np.float64)
        times = np.asarray(ds["time"].values, float)
        frame_index = (np.asarray(ds["frame_index"].values, np.int64) if "frame_index" in ds.coords
                       else np.arange(len(times)))
        t0 = float(ds.attrs.get("t0", 0.0))
        if fps is None:
            d = np.diff(times)
            d = d[np.isfinite(d) & (d > 0)]
            fps = 1.0 / float(np.median(d)) if d.size else float(ds.attrs.get("fps", 30.0))
        fps_ = check_positive("fps", fps)
        if "face_au" in sel:
            aus = np.asarray(sel["face_au"].transpose("time", "au").values, float)
            au_names = [str(a) for a in ds["au"].values]
            au_threshold = float(ds.attrs.get("au_threshold", 0.5))
    attrs = {"parameters": json.dumps(params), "fps": float(fps_), "source": str(source), "t0": t0,
             "method_description": ("MEGC-style spotting on the MediaPipe mesh: robust 3D similarity alignment "
                                    "(head motion removed), RMS landmark displacement per region, window "
                                    f"contrast at +/-{params['micro_window']:g} s and +/-{params['macro_window']:g} s, "
                                    "robust z-score threshold, intervals from the displacement to a running-median "
                                    f"neutral face; micro <= {params['max_micro']:g} s")}
    n = L.shape[0]
    valid = np.isfinite(L).all(axis=2).mean(axis=1) >= 0.99 if L.ndim == 3 and n else np.zeros(0, bool)
    attrs["face_coverage"] = float(valid.mean()) if n else 0.0
    need = 2 * max(round(params["macro_window"] * fps_), 1) + 1
    if n == 0 or not valid.any():
        attrs.update(quality="no_face", warning="no face found in any frame: nothing to spot")
        return _finish(empty_spots(**attrs), None, return_signals, t_start)
    if valid.sum() < need:
        attrs.update(quality="too_short",
                     warning=f"only {int(valid.sum())} frames with a face; spotting needs at least {need}")
        return _finish(empty_spots(**attrs), None, return_signals, t_start)
    spots, sig = spot_landmarks(L, fps=fps_, micro_window=params["micro_window"],
                                macro_window=params["macro_window"], max_micro=params["max_micro"],
                                min_duration=params["min_duration"], max_duration=params["max_duration"],
                                threshold=params["threshold"], min_motion=params["min_motion"],
                                baseline=params["baseline"], extent=params["extent"], smooth=params["smooth"],
                                blinks=params["blinks"], blink_ratio=params["blink_ratio"],
                                regions=params["regions"], pose_correction=params["pose_correction"],
                                head_tolerance=params["head_tolerance"], return_signals=True)
    attrs["iod_px"] = float(sig["iod"])
    attrs["quality"] = "ok" if attrs["face_coverage"] >= 0.5 else "low_face_coverage"
    if attrs["face_coverage"] < 0.5:
        warnings.warn(f"spot_expressions: a face was found in only {attrs['face_coverage']:.0%} of the frames "
                      f"of {source}", EmonbWarning, stacklevel=2)
    ds_out = _spots_dataset(spots, times, frame_index, fps_, aus=aus, au_names=au_names, au_threshold=au_threshold,
                            au_delta=params["au_delta"], face=int(face), attrs=attrs)
    signals = None
    if return_signals:
        signals = xr.Dataset(
            {"contrast": (("scale", "time", "region"), sig["contrast"], {"units": "IOD"}),
             "z": (("scale", "time", "region"), sig["z"], {"units": "1"}),
             "head_rotation": (("scale", "time"), sig["head"], {"units": "degree",
                               "long_name": "largest head rotation (yaw, pitch, roll) within the window"}),
             "displacement": (("time", "region"), sig["displacement"], {"units": "IOD"}),
             "blink": ("time", sig["blink"]), "valid": ("time", sig["valid"])},
            coords={"time": times, "frame_index": ("time", frame_index), "scale": sig["scales"],
                    "region": sig["regions"]}, attrs={"iod_px": float(sig["iod"]), "fps": float(fps_)})
    return _finish(ds_out, signals, return_signals, t_start)


def _finish(ds, signals, return_signals, t_start):
    ds.attrs["processing_seconds"] = round(_time.perf_counter() - t_start, 3)
    if return_signals:
        return ds, signals
    return ds
