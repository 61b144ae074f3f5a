"""Which face the widgets show, and which analysed frame belongs to a time: one rule for all of them.

The scrubber's overlay, the AU inspector and the timelines all ask :class:`FaceView` so that, for a
given ``current_time``, they read the same analysed frame of the same face (or subject).

- **The analysed frame at t**: ``t`` is first snapped to the video frame on screen (the last frame
  whose time is <= t, as :meth:`Scrubber.frame_position`), then the analysed frame is the last face
  result at or before that frame's time, provided it is not older than one analysis step (the median
  spacing of the face results, so a result computed every third frame covers the two after it).
- **The selection**: ``"auto"`` (whoever is in view: the first face or subject, in order of screen
  time, that has a result at that frame), a subject name when the face node has a ``subject``
  coordinate on its ``face`` dimension (``emonb.subjects.assign_subjects``), otherwise a face id.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

AUTO = "auto"


class FaceView:
    """The faces (or subjects) of a face result, and the analysed frame belonging to each time.

    Parameters
    ----------
    face : xarray.Dataset or None
        A face result (``face_box(time, face, box_coord)``, ``face_au(time, face, au)``, ...).
    video_times : array of float, optional
        Times (s, session clock) of the video frames, to snap a time to the frame on screen.
    """

    def __init__(self, face: xr.Dataset | None, video_times=None):
        self.face = face
        self.video_times = None if video_times is None else np.sort(np.asarray(video_times, float))
        self.times = np.zeros(0)
        self.labels = np.zeros((0, 0), dtype=object)  # (time, face column): whose face ("" = none)
        self.order: list[str] = []
        self.frames: dict[str, int] = {}
        self.by_subject = False
        if face is None or "time" not in face.coords or face.sizes.get("time", 0) == 0:
            return
        self.times = face["time"].to_numpy().astype(float)
        n_face = face.sizes.get("face", 1)
        probe = next((face[v] for v in ("face_box", "face_au", "face_emotion") if v in face), None)
        if probe is not None and "face" in probe.dims:
            arr = probe.transpose("time", "face", ...).to_numpy().astype(float)
            present = np.isfinite(arr.reshape(arr.shape[0], arr.shape[1], -1)).any(axis=2)
        else:
            present = np.ones((self.times.size, n_face), bool)
        if "face_subject" in face and set(face["face_subject"].dims) == {"time", "face"}:
            # emonb.subjects: a slot may hold different people over time
            labels = face["face_subject"].transpose("time", "face").to_numpy().astype(str).astype(object)
            self.by_subject = True
        else:
            if "subject" in face.coords and "face" in face["subject"].dims:
                keys = [str(s) for s in face["subject"].to_numpy()]
                self.by_subject = True
            elif "face" in face.coords:
                keys = [str(f) for f in face["face"].to_numpy()]
            else:
                keys = [str(j) for j in range(n_face)]
            labels = np.tile(np.array(keys, dtype=object), (self.times.size, 1))
        labels[~present] = ""
        self.labels = labels
        names = [k for k in dict.fromkeys(labels.ravel().tolist()) if k]
        self.frames = {k: int((labels == k).any(axis=1).sum()) for k in names}
        main = str(face.attrs.get("main_subject", ""))
        # the main subject (attrs) leads, then the most screen time
        self.order = sorted(names, key=lambda k: (k != main, -self.frames[k]))

    # ------------------------------------------------------------------ selection
    @property
    def keys(self) -> list[str]:
        """Selectable faces or subjects, the most on screen first."""
        return list(self.order)

    def options(self) -> list[dict]:
        """``[{"value", "label"}]`` for a selector: auto first, then each face or subject with its
        share of the analysed frames."""
        n = max(self.times.size, 1)
        noun = "subject" if self.by_subject else "face"
        out = [{"value": AUTO, "label": f"{noun}: whoever is in view"}]
        for k in self.keys:
            out.append({"value": k, "label": f"{noun} {k} · {100 * self.frames[k] / n:.0f}% of frames"})
        return out

    def noun(self, key: str) -> str:
        return f"{'subject' if self.by_subject else 'face'} {key}"

    def check(self, key: str) -> str:
        """``key`` if it is a valid selection, else ``"auto"``."""
        return key if key == AUTO or key in self.frames else AUTO

    def column_at(self, k: int | None, key: str) -> int | None:
        """The face column shown for selection ``key`` at analysed frame ``k`` (None: not in view)."""
        if k is None or not self.order:
            return None
        row = self.labels[k]
        for name in (self.keys if key == AUTO else [key]):
            hit = np.flatnonzero(row == name)
            if hit.size:
                return int(hit[0])
        return None

    def in_view(self, k: int | None) -> list[str]:
        """Faces or subjects with a result at analysed frame ``k``."""
        if k is None or not self.order:
            return []
        row = set(self.labels[k].tolist())
        return [n for n in self.keys if n in row]

    def key_at(self, k: int, column: int) -> str:
        return str(self.labels[k, column]) if self.labels.size else str(column)

    def columns_over_time(self, key: str) -> np.ndarray:
        """Per analysed frame, the column shown for ``key`` (-1 where none)."""
        out = np.full(self.times.size, -1)
        names = self.keys if key == AUTO else [key]
        for name in reversed(names):  # the first name wins
            hit = self.labels == name
            has = hit.any(axis=1)
            out[has] = hit.argmax(axis=1)[has]
        return out

    def pick(self, da: xr.DataArray, key: str) -> xr.DataArray:
        """``da`` (dims time, face, ...) for selection ``key``, without the face dim: per time, the
        column holding that face or subject (auto: the first in view, in screen-time order); NaN
        where it is not in view."""
        if "face" not in da.dims:
            return da
        da = da.transpose("time", "face", ...)
        arr = da.to_numpy().astype(float)
        if arr.shape[0] != self.times.size:
            return da.isel(face=0)
        cols = self.columns_over_time(key)
        out = np.full((arr.shape[0],) + arr.shape[2:], np.nan)
        ok = cols >= 0
        out[ok] = arr[np.flatnonzero(ok), cols[ok]]
        rest = da.dims[2:]
        coords = {d: da[d] for d in rest if d in da.coords}
        coords["time"] = da["time"]
        return xr.DataArray(out, dims=("time", *rest), coords=coords, attrs=dict(da.attrs), name=da.name)

    # ------------------------------------------------------------------ time
    def frame_time(self, t: float) -> float:
        """Time of the video frame on screen at ``t`` (``t`` itself without video times)."""
        vt = self.video_times
        if vt is None or not vt.size:
            return float(t)
        i = int(np.searchsorted(vt, float(t) + 1e-9, side="right") - 1)
        return float(vt[min(max(i, 0), vt.size - 1)])

    def step(self) -> float:
        """The analysis step (s): median spacing of the face results."""
        if self.times.size > 1:
            return float(np.median(np.diff(self.times)))
        if self.video_times is not None and self.video_times.size > 1:
            return float(np.median(np.diff(self.video_times)))
        return 0.1

    def index_at(self, t: float) -> int | None:
        """Index of the analysed frame belonging to time ``t`` (None: no result covers it)."""
        if not self.times.size:
            return None
        ft = self.frame_time(t)
        k = int(np.searchsorted(self.times, ft + 1e-9, side="right") - 1)
        if k < 0:
            return None
        # an analysed frame covers the frames until the next one (one analysis step at most)
        return k if ft - self.times[k] < self.step() * 1.01 + 1e-9 else None
