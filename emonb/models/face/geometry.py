"""Head pose, quality measures and face tracking across frames."""

from __future__ import annotations

import numpy as np

from .mesh import box_iou

__all__ = ["FaceTracker", "fraction_outside", "pose_from_matrices"]


def pose_from_matrices(matrices: np.ndarray) -> np.ndarray:
    """Pitch, yaw, roll in degrees from face-to-camera transformation matrices (F, 4, 4).

    MediaPipe's camera follows OpenGL (x right, y up, looking down -z), and the canonical face
    looks at the camera. With ``R = Rz(roll) @ Ry(yaw) @ Rx(pitch)``:

    - pitch > 0: chin up (the face looks up),
    - yaw > 0: the face turns toward the image's right side (the subject's left),
    - roll > 0: the head tilts counter-clockwise as seen in the image.

    Returns
    -------
    ndarray, shape (F, 3), float32, in degrees; NaN rows for NaN matrices.
    """
    m = np.asarray(matrices, np.float64)
    if m.shape[0] == 0:
        return np.zeros((0, 3), np.float32)
    R = m[:, :3, :3]
    # remove any scale the geometry pipeline leaves in the matrix
    norms = np.linalg.norm(R, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        R = R / norms
    pitch_x = np.arctan2(R[:, 2, 1], R[:, 2, 2])
    yaw = np.arctan2(-R[:, 2, 0], np.hypot(R[:, 2, 1], R[:, 2, 2]))
    roll = np.arctan2(R[:, 1, 0], R[:, 0, 0])
    # Rx(+a) turns the face's forward axis (+z) toward -y (down), so chin-up is -a.
    return np.degrees(np.stack([-pitch_x, yaw, roll], axis=1)).astype(np.float32)


def fraction_outside(landmarks: np.ndarray, width: int, height: int) -> np.ndarray:
    """Fraction of each face's mesh points (F, 478, 3) that fall outside the image. Returns (F,)."""
    if landmarks.shape[0] == 0:
        return np.zeros(0, np.float32)
    x, y = landmarks[..., 0], landmarks[..., 1]
    out = (x < 0) | (y < 0) | (x >= width) | (y >= height)
    return out.mean(axis=1).astype(np.float32)


class FaceTracker:
    """Stable face ids across frames by box overlap.

    Each face keeps its slot (0, 1, ...) while it is seen; a new face takes the lowest free slot,
    so face 0 stays the same person when a second one enters. A slot is freed when its face has
    not been seen for ``timeout`` seconds.

    Parameters
    ----------
    max_faces : int
        Number of slots.
    iou_threshold : float
        Least overlap with the face's last box to continue a track.
    timeout : float
        Seconds after which an unseen face's slot is freed.
    """

    def __init__(self, max_faces: int, *, iou_threshold: float = 0.2, timeout: float = 1.0):
        self.max_faces = int(max_faces)
        self.iou_threshold = float(iou_threshold)
        self.timeout = float(timeout)
        self._boxes = np.full((self.max_faces, 4), np.nan)
        self._last_seen = np.full(self.max_faces, -np.inf)

    def update(self, boxes: np.ndarray, t: float) -> np.ndarray:
        """Slot of each box (F,) at time ``t``; -1 where all slots are taken."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        n = boxes.shape[0]
        slots = np.full(n, -1, int)
        if n == 0:
            return slots
        alive = (t - self._last_seen) <= self.timeout
        free_slots = set(range(self.max_faces))
        if alive.any():
            live = np.flatnonzero(alive)
            iou = box_iou(boxes, self._boxes[live])
            # also accept a track whose centre moved less than half the box size
            pairs = sorted(((iou[i, j], i, live[j]) for i in range(n) for j in range(len(live))),
                           reverse=True)
            used_b, used_s = set(), set()
            for score, i, s in pairs:
                if i in used_b or s in used_s:
                    continue
                if score < self.iou_threshold and not self._near(boxes[i], self._boxes[s]):
                    continue
                slots[i] = s
                used_b.add(i)
                used_s.add(s)
            free_slots -= set(int(s) for s in live)
        for i in range(n):
            if slots[i] < 0 and free_slots:
                s = min(free_slots)
                free_slots.discard(s)
                slots[i] = s
        for i, s in enumerate(slots):
            if s >= 0:
                self._boxes[s] = boxes[i]
                self._last_seen[s] = t
        return slots

    @staticmethod
    def _near(a, b) -> bool:
        ca = (a[:2] + a[2:]) / 2
        cb = (b[:2] + b[2:]) / 2
        size = max(b[2] - b[0], b[3] - b[1], 1.0)
        return bool(np.hypot(*(ca - cb)) < 0.5 * size)
