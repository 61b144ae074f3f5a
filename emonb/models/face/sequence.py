"""Running the mesh over a video: one VIDEO-mode sequence, or contiguous parts in parallel threads."""

from __future__ import annotations

import threading

import numpy as np

from .mesh import MeshResult, boxes_from_landmarks
from .pipeline import FacePipeline
from .source import _ChunkSource
from .store import _Store

__all__ = ["_MeshStep", "_run_segments"]


def _frame_scale(fr: np.ndarray, meta: dict) -> float:
    """Width of the frame the models see over the original width (``scale``)."""
    if meta.get("width") and fr.shape[1] != meta["width"]:
        return fr.shape[1] / float(meta["width"])
    return 1.0


def _run_segments(reader, pipe: FacePipeline, store: _Store, *, segments: int, i0: int, i1: int, stride: int,
                  chunk_size: int, size, meta: dict, threads: bool, step_args: tuple, post, t0: float,
                  bar) -> int:
    """Analyse ``segments`` contiguous parts of a video at once, each in its own thread with its own
    decoder and landmarker session (the landmarker runs on one core at a time, so this is how a
    second core helps). Faces are stored in detection order at their frame's row; the caller then
    runs :meth:`_Store.retrack`. Returns the number of frames analysed.
    """
    rows_total = len(range(i0, i1, stride))
    bounds = np.linspace(0, rows_total, segments + 1).round().astype(int)
    part_chunk = max(8, int(chunk_size) // segments)
    filled = np.zeros(rows_total, bool)
    lock = threading.Lock()
    errors: list = []
    stop = threading.Event()

    def run(a: int, b: int) -> None:
        first, last = i0 + a * stride, i0 + (b - 1) * stride
        # smaller chunks per part: the parts together hold about what one sequence would
        src = _ChunkSource(lambda: reader.iter_chunks(part_chunk, stride=stride, start=float(reader.times[first]),
                                                      end=float(reader.times[last]), size=size,
                                                      decoder_threads=1 if segments > 1 else None),
                           threaded=threads)
        step = None
        it = iter(src)
        try:
            step = _MeshStep(pipe, *step_args)
            for times, indices, frames in it:
                if stop.is_set():
                    return
                meshes = [step(fr, float(t), _frame_scale(fr, meta)) for t, fr in zip(times, frames)]
                faces_list = post(times, frames, meshes)
                with lock:
                    for t, i, f in zip(times, indices, faces_list):
                        r = (int(i) - i0) // stride
                        if 0 <= r < rows_total:
                            store.put(r, float(t) + t0, int(i), f)
                            filled[r] = True
                    bar.update(len(times))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            errors.append(exc)
            stop.set()
        finally:
            it.close()
            if step is not None:
                step.close()

    workers = [threading.Thread(target=run, args=(int(a), int(b)), name=f"emonb-face-segment-{k}", daemon=True)
               for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])) if b > a]
    for w in workers:
        w.start()
    try:
        for w in workers:
            while w.is_alive():
                w.join(timeout=0.2)
    except BaseException:
        stop.set()
        for w in workers:
            w.join()
        raise
    if errors:
        raise errors[0]
    store.compact(np.flatnonzero(filled))
    return store.n


class _MeshStep:
    """The mesh of one frame after another in one VIDEO-mode session, with the detector score.

    Holds the per-sequence state: the landmarker session, the ``redetect`` search and when the
    BlazeFace score last ran.
    """

    def __init__(self, pipe: FacePipeline, max_faces: int, score_interval: float, redetect: float | None):
        self.pipe = pipe
        self.score_interval = float(score_interval)
        self.session = pipe.mesh.video_session()
        self.search = _FaceSearch(pipe.mesh, max_faces, float(redetect)) if redetect is not None else None
        self.last_score_t = -np.inf
        self.last_n = -1

    def __call__(self, fr: np.ndarray, t: float, fr_scale: float):
        res = self.session.detect(fr, t)
        dets = None
        if self.search is not None:
            self.session, res, dets = self.search.step(self.session, fr, t, res)
        want = (t - self.last_score_t >= self.score_interval) or res.n_faces != self.last_n
        if want and res.n_faces:
            self.last_score_t = t
        self.last_n = res.n_faces
        score = self.pipe.face_scores(fr, res, dets) if want else np.full(res.n_faces, np.nan, np.float32)
        return res, fr_scale, score

    def close(self) -> None:
        self.session.close()


class _FaceSearch:
    """Keeps the VIDEO landmarker's face count at the faces in view (``analyze_face(redetect=...)``).

    MediaPipe runs its face detector on every frame while the landmarker tracks fewer faces than
    it was built for. Here the landmarker is rebuilt for as many faces as it tracks once that has
    held for ``interval`` seconds, and the BlazeFace detector looks for new faces at most every
    ``interval`` seconds; when it finds one that no tracked face covers, the landmarker is
    rebuilt for more faces and runs the frame again.
    """

    def __init__(self, mesh, max_faces: int, interval: float, min_score: float = 0.5):
        self.mesh = mesh
        self.max_faces = int(max_faces)
        self.interval = float(interval)
        self.min_score = float(min_score)
        self.num_faces = self.max_faces
        self.short_since: float | None = None
        self.last_search = -np.inf
        self.rebuilds = 0

    def _rebuild(self, session, n: int):
        session.close()
        self.num_faces = n
        self.rebuilds += 1
        return self.mesh.video_session(num_faces=n)

    def step(self, session, rgb: np.ndarray, t: float, res: MeshResult):
        """Returns (session, res, detections or None) for frame ``rgb`` at time ``t``."""
        n = res.n_faces
        dets = None
        if 0 < n < self.num_faces:  # the landmarker is searching for faces that are not there
            if self.short_since is None:
                self.short_since = t
            elif t - self.short_since >= self.interval:
                session = self._rebuild(session, n)  # its first frame detects again: fine
                self.short_since = None
        else:
            self.short_since = None
        if 0 < n == self.num_faces < self.max_faces and t - self.last_search >= self.interval:
            self.last_search = t
            dets = self.mesh.detections(rgb)
            boxes, scores = dets
            keep = scores >= self.min_score
            if keep.any():
                mesh_boxes = boxes_from_landmarks(res.landmarks)
                cx = (boxes[keep, 0] + boxes[keep, 2]) / 2
                cy = (boxes[keep, 1] + boxes[keep, 3]) / 2
                inside = ((cx[:, None] >= mesh_boxes[None, :, 0]) & (cx[:, None] <= mesh_boxes[None, :, 2])
                          & (cy[:, None] >= mesh_boxes[None, :, 1]) & (cy[:, None] <= mesh_boxes[None, :, 3]))
                new = int((~inside.any(axis=1)).sum())
                if new:
                    session = self._rebuild(session, min(self.max_faces, n + new))
                    again = session.detect(rgb, t)
                    if again.n_faces <= n:  # the landmarker does not confirm it: search less often
                        self.last_search = t + 4 * self.interval
                    res = again
        return session, res, dets
