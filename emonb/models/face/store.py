"""Per-frame face results accumulated into growable (time, face, ...) arrays."""

from __future__ import annotations

import numpy as np

from ...schema import EMOTIONS
from .mesh import BLENDSHAPES, N_LANDMARKS
from .au_features import FEATURE_NAMES
from .pipeline import OCCLUSION_REGIONS, _Faces

__all__ = ["_Store"]


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
            "emotion": (len(EMOTIONS),), "sharpness": (), "outside": (),
            "au_input": (len(FEATURE_NAMES),), "occlusion": (len(OCCLUSION_REGIONS),),
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
                v = getattr(faces, k)
                self.arrays[k][s, i] = np.nan if v is None else v[j]
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
                v = getattr(faces, k)
                self.arrays[k][j, row] = np.nan if v is None else v[j]
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
