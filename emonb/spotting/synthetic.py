"""Test videos with known expression intervals, made by warping a real face.

No labeled micro-expression dataset is freely available (CASME II, SAMM and CAS(ME)^2 are
released only under signed agreements), so the spotter is checked on videos made here: one real
face photo (by default frame 0 of the embedded sample video) is warped, frame by frame, by a
piecewise-affine map on the Delaunay triangulation of its 478-point MediaPipe mesh. Moving
groups of mesh points produces expressions (brow raise, brow lowering, smile, lip-corner
depression, nose wrinkle, lip stretch, eye widening, jaw drop) with onset, apex and offset at
known frames; a 3D rotation of the mesh produces head motion; lid points closing produce blinks;
pixel noise and H.264 compression finish each frame.

>>> from emonb.spotting.synthetic import make_spotting_video
>>> truth = make_spotting_video("synthetic.mp4", fps=30, duration=8, seed=1)   # doctest: +SKIP
>>> truth[["onset_frame", "apex_frame", "offset_frame", "kind", "action"]]     # doctest: +SKIP

Limits: the warp moves texture but does not create wrinkles, teeth or shading changes; a head
turn rotates a single view, so the far side of the face is stretched rather than hidden.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from .._checks import check_option, check_positive
from ..errors import EmonbFileError, EmonbValueError
from .regions import REGIONS

__all__ = ["ACTIONS", "base_face", "make_spotting_landmarks", "make_spotting_video", "random_events",
           "render_frame"]

_UPPER_LIDS = (157, 158, 159, 160, 161, 384, 385, 386, 387, 388)
_LOWER_LIDS = (144, 145, 153, 154, 163, 373, 374, 380, 381, 390)
_INNER_BROWS = (55, 65, 66, 107, 285, 295, 296, 336)
_CORNERS = (61, 291)
_NOSE_WINGS = (48, 64, 97, 98, 115, 220, 278, 294, 326, 327, 344, 440)
_UPPER_LIP = (0, 37, 39, 40, 185, 267, 269, 270, 409, 13, 82, 81, 80, 312, 311, 310)
_LOWER_JAW = (17, 84, 181, 91, 146, 314, 405, 321, 375, 14, 87, 178, 88, 317, 402, 318,
              152, 148, 176, 149, 377, 400, 378, 199, 175, 200)
#: (upper lid, lower lid) pairs that close in a blink.
_BLINK = ((246, 7), (161, 163), (160, 144), (159, 145), (158, 153), (157, 154), (173, 155),
          (466, 249), (388, 390), (387, 373), (386, 374), (385, 380), (384, 381), (398, 382))

#: Expression name -> (regions, AUs, [(landmarks, (outward, up) per unit amplitude, radius in IOD)]).
#: Displacements are in inter-ocular distances per unit amplitude; "outward" points away from the
#: face's midline and "up" toward the forehead.
ACTIONS = {
    "brow_raise": ("brows", "AU01,AU02", [(REGIONS["brows"], (0.0, 1.0), 0.10), (_UPPER_LIDS, (0.0, 0.3), 0.06)]),
    "brow_lower": ("brows", "AU04", [(REGIONS["brows"], (-0.3, -0.8), 0.10), (_INNER_BROWS, (-0.3, -0.3), 0.06)]),
    "smile": ("mouth,cheeks", "AU06,AU12", [(_CORNERS, (0.55, 0.75), 0.16), (REGIONS["cheeks"], (0.1, 0.4), 0.08),
                                           (_LOWER_LIDS, (0.0, 0.15), 0.05)]),
    "frown": ("mouth", "AU15", [(_CORNERS, (0.1, -0.8), 0.16)]),
    "sneer": ("nose,mouth", "AU09,AU10", [(_NOSE_WINGS, (0.0, 0.6), 0.07), (_UPPER_LIP, (0.0, 0.4), 0.06)]),
    "lip_stretch": ("mouth", "AU20", [(_CORNERS, (0.8, -0.15), 0.16)]),
    "eye_widen": ("eyes", "AU05", [(_UPPER_LIDS, (0.0, 0.55), 0.05)]),
    "jaw_drop": ("mouth", "AU25,AU26", [(_LOWER_JAW, (0.0, -0.6), 0.10)]),
}
#: Amplitude ranges (IOD per unit action) drawn for random events.
AMPLITUDES = {"micro": (0.05, 0.09), "macro": (0.09, 0.16)}


# -- the base face --------------------------------------------------------------------------------
def _sample_frame() -> np.ndarray:
    from ..io.video import video_reader
    from ..session import SAMPLE_DIR

    return video_reader(SAMPLE_DIR / "video.mp4").frame(0)


_BASE_CACHE: dict = {}


def base_face(image=None, *, size: int = 384) -> tuple[np.ndarray, np.ndarray]:
    """A face image cropped square around the face, and its 478-point mesh.

    Parameters
    ----------
    image : str, Path or ndarray, optional
        An image file, a video file (its first frame) or an RGB array; default: frame 0 of the
        embedded sample video.
    size : int
        Side of the square output image, pixels.

    Returns
    -------
    rgb : ndarray, shape (size, size, 3), uint8
    landmarks : ndarray, shape (478, 3), float64
        Mesh of ``rgb``: x, y in pixels, z in the same scale (smaller = nearer the camera).
    """
    import cv2

    size = int(check_positive("size", size))
    size += size % 2
    key = (str(image) if isinstance(image, (str, os.PathLike)) else
           ("sample" if image is None else ("array", id(image))), size)
    if key in _BASE_CACHE and key[0] != "array":
        rgb, lm = _BASE_CACHE[key]
        return rgb.copy(), lm.copy()
    if image is None:
        rgb = _sample_frame()
    elif isinstance(image, (str, os.PathLike)):
        from ..io.video import IMAGE_EXTENSIONS, read_image, video_reader

        p = Path(image)
        if not p.exists():
            raise EmonbFileError(p, "face image not found")
        rgb = read_image(p) if p.suffix.lower() in IMAGE_EXTENSIONS else video_reader(p).frame(0)
    else:
        rgb = np.asarray(image)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise EmonbValueError(f"image must be an RGB uint8 array (H, W, 3), got {rgb.dtype} {rgb.shape}")
    lm = _mesh(rgb)
    if lm is None:
        raise EmonbValueError(f"no face found in the base image {image if image is not None else '(sample frame)'}")
    # square crop around the face, 1.8 x its larger side, edges replicated where it leaves the image
    x0, y0 = lm[:, :2].min(axis=0)
    x1, y1 = lm[:, :2].max(axis=0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side = 1.8 * max(x1 - x0, y1 - y0)
    M = np.array([[size / side, 0, size / 2 - cx * size / side], [0, size / side, size / 2 - cy * size / side]])
    out = cv2.warpAffine(rgb, M, (size, size), flags=cv2.INTER_AREA if side > size else cv2.INTER_CUBIC,
                         borderMode=cv2.BORDER_REPLICATE)
    lm2 = _mesh(out)
    if lm2 is None:  # fall back to the transformed mesh of the full image
        lm2 = lm.copy()
        lm2[:, :2] = lm[:, :2] @ M[:, :2].T + M[:, 2]
        lm2[:, 2] *= size / side
    if key[0] != "array":
        _BASE_CACHE[key] = (out, lm2)
    return out.copy(), lm2.copy()


def _mesh(rgb: np.ndarray):
    from ..models import get_model

    spec = get_model("mediapipe-face-landmarker")
    model = spec.create(device="cpu", max_faces=1)
    try:
        res = model.detect(np.ascontiguousarray(rgb))
    finally:
        model.close()
    return res.landmarks[0].astype(np.float64) if res.n_faces else None


# -- geometry of the face -------------------------------------------------------------------------
@dataclass
class _Face:
    lm: np.ndarray          # (478, 3) base mesh, pixels
    iod: float              # pixels
    ex: np.ndarray          # unit vector image-right along the eye line
    ey: np.ndarray          # unit vector toward the forehead
    side: np.ndarray        # (478,) +1 right of the midline (image), -1 left
    centre: np.ndarray      # (3,) rotation centre

    @classmethod
    def from_mesh(cls, lm):
        r = lm[[33, 133], :2].mean(axis=0)
        le = lm[[263, 362], :2].mean(axis=0)
        ex = (le - r) / np.linalg.norm(le - r)
        ey = np.array([ex[1], -ex[0]])  # rotate -90 degrees: image y grows downward
        mid = lm[[1, 168, 6, 0, 17], :2].mean(axis=0)
        side = np.sign((lm[:, :2] - mid) @ ex)
        side[side == 0] = 1
        centre = lm.mean(axis=0)
        centre[2] = np.median(lm[:, 2]) + 0.3 * float(np.linalg.norm(le - r))  # behind the surface
        return cls(lm=lm, iod=float(np.linalg.norm(le - r)), ex=ex, ey=ey, side=side, centre=centre)

    def field(self, action: str) -> np.ndarray:
        """Displacement (478, 2) in pixels for amplitude 1 of ``action``."""
        _, _, controls = ACTIONS[action]
        num = np.zeros((self.lm.shape[0], 2))
        wsum = np.zeros(self.lm.shape[0])
        for idx, (out, up), radius in controls:
            idx = np.asarray(idx)
            # vectors of the controls, in pixels
            v = (out * self.side[idx, None] * self.ex[None] + up * self.ey[None]) * self.iod
            d2 = ((self.lm[:, None, :2] - self.lm[None, idx, :2]) ** 2).sum(axis=2)
            w = np.exp(-d2 / (2 * (radius * self.iod) ** 2))  # (478, C)
            num += w @ v
            wsum += w.sum(axis=1)
        return num / np.maximum(wsum, 1.0)[:, None]

    def blink_field(self) -> np.ndarray:
        d = np.zeros((self.lm.shape[0], 2))
        for up, lo in _BLINK:
            d[up] = self.lm[lo, :2] - self.lm[up, :2]
        return d


def _rotation(pitch, yaw, roll) -> np.ndarray:
    p, y, r = np.radians([pitch, yaw, roll])
    Rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    Ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    Rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return Rz @ Ry @ Rx


# -- schedules ------------------------------------------------------------------------------------
def _profile(t, on, apex, plateau_end, off) -> np.ndarray:
    """Intensity 0..1: raised-cosine rise on..apex, plateau, raised-cosine fall to off (seconds)."""
    t = np.asarray(t, float)
    out = np.zeros_like(t)
    rise = (t > on) & (t < apex)
    out[rise] = 0.5 - 0.5 * np.cos(np.pi * (t[rise] - on) / max(apex - on, 1e-9))
    out[(t >= apex) & (t <= plateau_end)] = 1.0
    fall = (t > plateau_end) & (t < off)
    out[fall] = 0.5 + 0.5 * np.cos(np.pi * (t[fall] - plateau_end) / max(off - plateau_end, 1e-9))
    return out


def random_events(duration: float, *, seed=0, micro_fraction: float = 0.5, gap=(1.0, 2.0),
                  actions=None, lead: float = 1.0) -> list[dict]:
    """A random, non-overlapping schedule of micro- (0.2-0.45 s) and macro- (1-3 s) expressions.

    Parameters
    ----------
    duration : float
        Video length, seconds.
    seed : int or numpy Generator
    micro_fraction : float
        Probability that an event is a micro-expression.
    gap : (float, float)
        Range of the neutral time between events, seconds.
    actions : sequence of str, optional
        Expressions to draw from (default all of :data:`ACTIONS`).
    lead : float
        Neutral seconds at the start and the end.

    Returns
    -------
    list of dict
        ``kind``, ``action``, ``amplitude`` (IOD), ``onset``, ``apex``, ``plateau_end``, ``offset`` (s).
    """
    rng = np.random.default_rng(seed)
    actions = list(actions or ACTIONS)
    t = lead + rng.uniform(0, 0.5)
    events = []
    while True:
        kind = "micro" if rng.random() < micro_fraction else "macro"
        if kind == "micro":
            d = rng.uniform(0.2, 0.45)
            apex = t + d * rng.uniform(0.4, 0.55)
            pe = apex
        else:
            d = rng.uniform(1.0, 3.0)
            rise, fall = rng.uniform(0.3, 0.55), rng.uniform(0.35, 0.7)
            apex, pe = t + rise, t + d - fall
        if t + d > duration - lead:
            break
        events.append({"kind": kind, "action": str(rng.choice(actions)),
                       "amplitude": float(rng.uniform(*AMPLITUDES[kind])),
                       "onset": float(t), "apex": float(apex), "plateau_end": float(pe), "offset": float(t + d)})
        t = t + d + rng.uniform(*gap)
    return events


def _normalise_events(events, duration, rng) -> list[dict]:
    if events is None or (isinstance(events, str) and events == "random"):
        return random_events(duration, seed=rng)
    if isinstance(events, (int, np.integer)):
        ev = random_events(duration, seed=rng)
        return ev[: int(events)]
    out = []
    for e in events:
        e = dict(e)
        if "action" not in e or e["action"] not in ACTIONS:
            raise EmonbValueError(f"event {e}: 'action' must be one of {sorted(ACTIONS)}")
        if "onset" not in e or ("offset" not in e and "duration" not in e):
            raise EmonbValueError(f"event {e}: give 'onset' and 'duration' (or 'offset'), seconds")
        on = float(e["onset"])
        off = float(e.get("offset", on + float(e.get("duration", 0))))
        if off <= on:
            raise EmonbValueError(f"event {e}: offset must come after onset")
        kind = e.get("kind") or ("micro" if off - on <= 0.5 else "macro")
        check_option("kind", kind, ("micro", "macro"))
        apex = float(e.get("apex", on + (0.45 * (off - on) if kind == "micro" else min(0.4, 0.3 * (off - on)))))
        pe = float(e.get("plateau_end", apex if kind == "micro" else max(apex, off - min(0.5, 0.3 * (off - on)))))
        amp = float(e.get("amplitude", np.mean(AMPLITUDES[kind])))
        out.append({"kind": kind, "action": e["action"], "amplitude": amp, "onset": on, "apex": apex,
                    "plateau_end": pe, "offset": off})
    return out


def _keyframes(times, keys, values) -> np.ndarray:
    """Cosine-eased interpolation of keyframe values (K, D) at times (T,)."""
    keys = np.asarray(keys, float)
    values = np.asarray(values, float)
    i = np.clip(np.searchsorted(keys, times, side="right") - 1, 0, len(keys) - 2)
    u = np.clip((times - keys[i]) / np.maximum(keys[i + 1] - keys[i], 1e-9), 0, 1)
    u = 0.5 - 0.5 * np.cos(np.pi * u)
    return values[i] + (values[i + 1] - values[i]) * u[:, None]


def _head_motion(times, kind, rng, duration) -> np.ndarray:
    """(T, 6): pitch, yaw, roll (degrees), tx, ty (IOD), scale change (fraction)."""
    T = len(times)
    if kind == "none":
        return np.zeros((T, 6))
    if kind == "small":
        amp = np.array([2.0, 3.0, 1.5, 0.03, 0.03, 0.01])
        out = np.zeros((T, 6))
        for j in range(6):
            for _ in range(3):
                f = rng.uniform(0.05, 0.4)
                out[:, j] += amp[j] / 3 * np.sin(2 * np.pi * f * times + rng.uniform(0, 2 * np.pi))
        return out
    # "turn": the head turns away and back, nods and tilts, one movement after the other
    keys, vals = [0.0], [np.zeros(6)]
    t = 0.6
    while t < duration - 0.8:
        move = rng.uniform(0.5, 1.0)
        target = np.array([rng.uniform(-10, 10), rng.choice([-1, 1]) * rng.uniform(12, 25), rng.uniform(-6, 6),
                           rng.uniform(-0.12, 0.12), rng.uniform(-0.08, 0.08), rng.uniform(-0.04, 0.04)])
        keys += [t, t + move]
        vals += [vals[-1], target]
        t += move + rng.uniform(0.3, 1.2)
    keys.append(max(duration, keys[-1] + 0.1))
    vals.append(np.zeros(6))
    return _keyframes(times, keys, vals)


# -- landmarks per frame --------------------------------------------------------------------------
class _Scene:
    def __init__(self, lm, *, fps, duration, events, head_motion, blinks, seed):
        check_option("head_motion", head_motion, ("none", "small", "turn"))
        self.fps = check_positive("fps", fps)
        self.duration = check_positive("duration", duration)
        rng = np.random.default_rng(seed)
        self.events = _normalise_events(events, self.duration, rng)
        self.face = _Face.from_mesh(np.asarray(lm, float))
        n = round(self.duration * self.fps)
        self.times = np.arange(n) / self.fps
        self.fields = {a: self.face.field(a) for a in {e["action"] for e in self.events}}
        self.head = _head_motion(self.times, head_motion, rng, self.duration)
        # blinks, in the gaps between expressions (not part of the truth)
        self.blinks = []
        rate = float(blinks or 0) / 60.0
        if rate > 0:
            t = rng.exponential(1 / rate)
            while t < self.duration - 0.4:
                d = rng.uniform(0.12, 0.25)
                if all(t + d + 0.25 < e["onset"] or t - 0.25 > e["offset"] for e in self.events):
                    self.blinks.append((t, d))
                t += d + rng.exponential(1 / rate)
        self.blink_field = self.face.blink_field()
        self.rng = rng

    def expression(self, i: int) -> np.ndarray:
        """2D displacement (478, 2), pixels, at frame i (no head motion)."""
        t = self.times[i]
        d = np.zeros((self.face.lm.shape[0], 2))
        for e in self.events:
            if e["onset"] <= t <= e["offset"]:
                d += e["amplitude"] * _profile(t, e["onset"], e["apex"], e["plateau_end"], e["offset"]) * \
                    self.fields[e["action"]]
        for tb, db in self.blinks:
            if tb <= t <= tb + db:
                d += 0.9 * _profile(t, tb, tb + 0.4 * db, tb + 0.5 * db, tb + db) * self.blink_field
        return d

    def points(self, i: int, extra: np.ndarray | None = None) -> np.ndarray:
        """Mesh (478, 3) at frame i, plus optional extra points (E, 3) moved rigidly with the head."""
        P = self.face.lm.copy()
        P[:, :2] += self.expression(i)
        if extra is not None:
            P = np.concatenate([P, extra])
        pitch, yaw, roll, tx, ty, ds = self.head[i]
        R = _rotation(pitch, yaw, roll) * (1 + ds)
        c = self.face.centre
        P = (P - c) @ R.T + c
        P[:, 0] += tx * self.face.iod
        P[:, 1] += ty * self.face.iod
        return P

    def truth(self):
        import pandas as pd

        rows = []
        for e in self.events:
            on, ap, off = (round(e[k] * self.fps) for k in ("onset", "apex", "offset"))
            regions, aus, _ = ACTIONS[e["action"]]
            rows.append({"onset_frame": on, "apex_frame": ap, "offset_frame": off, "kind": e["kind"],
                         "onset": on / self.fps, "apex": ap / self.fps, "offset": off / self.fps,
                         "duration": (off - on + 1) / self.fps, "action": e["action"], "regions": regions,
                         "aus": aus, "amplitude": e["amplitude"]})
        cols = ["onset_frame", "apex_frame", "offset_frame", "kind", "onset", "apex", "offset", "duration",
                "action", "regions", "aus", "amplitude"]
        df = pd.DataFrame(rows, columns=cols)
        df.attrs.update({"fps": self.fps, "n_frames": len(self.times), "iod_px": self.face.iod,
                         "blinks": len(self.blinks)})
        return df


# -- rendering ------------------------------------------------------------------------------------
class _Warper:
    """Piecewise-affine warp of one image over a fixed triangulation (mesh + halo + frame border)."""

    def __init__(self, rgb, lm):
        from scipy.spatial import Delaunay

        self.rgb = rgb
        h, w = rgb.shape[:2]
        self.h, self.w = h, w
        xy = lm[:, :2]
        c = xy.mean(axis=0)
        # halo: a ring around the face that moves with the head (hair, neck, ears)
        ang = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        r = (xy.max(axis=0) - xy.min(axis=0)) * 0.72
        halo = np.stack([c[0] + r[0] * np.cos(ang), c[1] + r[1] * np.sin(ang)], axis=1)
        halo = halo[(halo[:, 0] > 8) & (halo[:, 0] < w - 9) & (halo[:, 1] > 8) & (halo[:, 1] < h - 9)]
        self.halo = np.concatenate([halo, np.full((len(halo), 1), np.median(lm[:, 2]))], axis=1)
        e = np.linspace(0, 1, 5)
        border = np.concatenate([np.stack([e * (w - 1), np.zeros_like(e)], 1), np.stack([e * (w - 1), np.full_like(e, h - 1)], 1),
                                 np.stack([np.zeros(3), e[1:-1] * (h - 1)], 1), np.stack([np.full(3, w - 1), e[1:-1] * (h - 1)], 1)])
        self.border = border
        src = np.concatenate([xy, halo, border])
        self.src = src
        self.tri = Delaunay(src).simplices
        self.gx, self.gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))

    def warp(self, dst: np.ndarray) -> np.ndarray:
        """Image whose mesh points lie at ``dst`` (N, 2), N = len(self.src)."""
        import cv2

        D = dst[self.tri]            # (K, 3, 2)
        S = self.src[self.tri]
        A = np.concatenate([D, np.ones(D.shape[:2] + (1,))], axis=2)  # (K, 3, 3)
        ok = np.abs(np.linalg.det(A)) > 1e-6
        M = np.zeros((len(A), 3, 2))
        M[ok] = np.linalg.solve(A[ok], S[ok])
        label = np.full((self.h, self.w), -1, np.int32)
        pts = np.round(D * 16).astype(np.int32)
        order = np.argsort(np.abs(np.linalg.det(A)))[::-1]  # small triangles last: drawn on top
        for k in order:
            if ok[k]:
                cv2.fillConvexPoly(label, pts[k], int(k), lineType=cv2.LINE_8, shift=4)
        miss = label < 0
        label[miss] = 0
        M = M.astype(np.float32)
        mx = M[:, 0, 0][label] * self.gx + M[:, 1, 0][label] * self.gy + M[:, 2, 0][label]
        my = M[:, 0, 1][label] * self.gx + M[:, 1, 1][label] * self.gy + M[:, 2, 1][label]
        mx[miss] = self.gx[miss]
        my[miss] = self.gy[miss]
        return cv2.remap(self.rgb, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def render_frame(warper: _Warper, scene: _Scene, i: int, *, noise: float, rng) -> np.ndarray:
    """Frame i of a scene as RGB uint8 (H, W, 3)."""
    P = scene.points(i, extra=warper.halo)
    dst = np.concatenate([P[:, :2], warper.border])
    img = warper.warp(dst)
    if noise > 0:
        import cv2

        n = np.empty(img.shape, np.int16)
        cv2.randn(n, 0, float(noise))
        img = np.clip(img.astype(np.int16) + n, 0, 255).astype(np.uint8)
    return img


def make_spotting_video(path, *, fps: float = 30.0, duration: float = 10.0, events="random",
                        head_motion: str = "small", blinks: float = 12.0, noise: float = 2.0, image=None,
                        size: int = 384, seed: int = 0, crf: int = 18, progress: bool = False):
    """Write a test video of a real face making expressions at known frames; return the truth.

    Parameters
    ----------
    path : str or Path
        Output ``.mp4`` (H.264, yuv420p, written with PyAV).
    fps : float
        Frame rate (constant), frames per second.
    duration : float
        Length, seconds.
    events : "random", int or list of dict
        ``"random"``: a schedule from :func:`random_events`; an int: at most that many of them;
        or dicts with ``action`` (one of :data:`ACTIONS`), ``onset`` and ``duration`` (or
        ``offset``) in seconds and optionally ``kind``, ``apex``, ``plateau_end``, ``amplitude``
        (IOD). ``[]`` makes a video without expressions.
    head_motion : {"small", "turn", "none"}
        ``"small"``: slow sway (about 3 degrees, 3 % of the IOD); ``"turn"``: head turns of 12-25
        degrees of yaw with nods and tilts (no expressions unless asked for).
    blinks : float
        Blinks per minute, placed between expressions (they are not expressions).
    noise : float
        Standard deviation of the Gaussian pixel noise (0-255 scale).
    image : str, Path or ndarray, optional
        The face (see :func:`base_face`); default: the sample video's first frame.
    size : int
        Frame side, pixels (square).
    seed : int
        Random seed: the same seed gives the same video.
    crf : int
        x264 quality (lower is better).
    progress : bool
        Show a progress bar.

    Returns
    -------
    pandas.DataFrame
        One row per expression: ``onset_frame``, ``apex_frame``, ``offset_frame`` (int, inclusive),
        ``kind``, ``onset``, ``apex``, ``offset`` (s), ``duration`` (s), ``action``, ``regions``,
        ``aus``, ``amplitude`` (IOD); ``attrs`` hold ``fps``, ``n_frames``, ``iod_px``, ``blinks``,
        ``path``.
    """
    import av
    from tqdm.auto import tqdm

    p = Path(path)
    if p.suffix.lower() not in (".mp4", ".mkv", ".mov"):
        raise EmonbValueError(f"{p}: the test video must be .mp4, .mkv or .mov")
    if not p.parent.exists():
        raise EmonbFileError(p.parent, "output folder does not exist")
    rgb, lm = base_face(image, size=size)
    scene = _Scene(lm, fps=fps, duration=duration, events=events, head_motion=head_motion, blinks=blinks, seed=seed)
    warper = _Warper(rgb, lm)
    import cv2

    cv2.setRNGSeed(int(seed))
    rate = Fraction(fps).limit_denominator(1001)
    h, w = rgb.shape[:2]
    with av.open(str(p), "w") as out:
        st = out.add_stream("libx264", rate=rate)
        st.width, st.height, st.pix_fmt = w, h, "yuv420p"
        st.options = {"crf": str(int(crf)), "preset": "veryfast"}
        for i in tqdm(range(len(scene.times)), desc="synthetic video", disable=not progress, leave=False):
            img = render_frame(warper, scene, i, noise=float(noise), rng=scene.rng)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for pkt in st.encode(frame):
                out.mux(pkt)
        for pkt in st.encode():
            out.mux(pkt)
    truth = scene.truth()
    truth.attrs.update({"path": str(p), "head_motion": head_motion, "seed": seed})
    return truth


def make_spotting_landmarks(*, fps: float = 30.0, duration: float = 10.0, events="random",
                            head_motion: str = "small", blinks: float = 12.0, jitter: float = 0.004,
                            image=None, seed: int = 0, landmarks=None):
    """Mesh sequences with known expression intervals, without rendering a video.

    The same scene as :func:`make_spotting_video`, with the mesh taken directly from the
    displaced points plus Gaussian jitter (as a tracker would add).

    Parameters
    ----------
    jitter : float
        Standard deviation of the per-frame landmark noise, inter-ocular distances.
    landmarks : ndarray, shape (478, 3), optional
        Base mesh (pixels); default: the mesh of :func:`base_face` of ``image``.

    Other parameters are as in :func:`make_spotting_video`.

    Returns
    -------
    landmarks : ndarray, shape (time, 478, 3), float64, pixels
    truth : pandas.DataFrame
        As returned by :func:`make_spotting_video`.
    """
    lm = np.asarray(landmarks, float) if landmarks is not None else base_face(image)[1]
    scene = _Scene(lm, fps=fps, duration=duration, events=events, head_motion=head_motion, blinks=blinks, seed=seed)
    out = np.stack([scene.points(i) for i in range(len(scene.times))])
    out += scene.rng.normal(0, jitter * scene.face.iod, out.shape)
    return out, scene.truth()
