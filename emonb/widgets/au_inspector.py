"""AU inspector: action-unit intensities at ``current_time``, their time course, a heatmap, a face
diagram of the active regions, and the EMFACS reading beside the expression model."""

from __future__ import annotations

import anywidget
import numpy as np
import traitlets as t
import xarray as xr

from ..schema import AU_NAMES
from ._assets import read_asset
from ._faces import FaceView

#: face-diagram region of each AU (the front-end draws and highlights these regions)
AU_REGIONS = {
    "AU01": "brow_inner", "AU02": "brow_outer", "AU04": "brow_inner", "AU05": "upper_lid", "AU06": "cheek",
    "AU07": "lower_lid", "AU09": "nose", "AU10": "upper_lip", "AU11": "upper_lip", "AU12": "lip_corner",
    "AU13": "cheek", "AU14": "lip_corner", "AU15": "lip_corner", "AU16": "lower_lip", "AU17": "chin",
    "AU18": "lips", "AU20": "lip_corner", "AU22": "lips", "AU23": "lips", "AU24": "lips", "AU25": "lips",
    "AU26": "jaw", "AU27": "jaw", "AU28": "lips", "AU43": "upper_lid", "AU45": "upper_lid", "AU46": "upper_lid",
}


def _top(da: xr.DataArray | None, k: int, column: int | None):
    if da is None or column is None:
        return None
    da = da.isel(time=k)
    v = (da.isel(face=column) if "face" in da.dims else da).to_numpy().astype(float)
    if not np.isfinite(v).any():
        return None
    m = int(np.nanargmax(v))
    return {"label": str(da["emotion"].values[m]), "probability": round(float(v[m]), 4)}


class AUInspector(anywidget.AnyWidget):
    """Action units at ``current_time``: named bars with the presence threshold, time course of the
    selected AU, an AU x time heatmap, a face diagram of the active regions, and the EMFACS reading
    beside the expression model so disagreement is visible.

    Parameters
    ----------
    src : xarray.DataTree or xarray.Dataset
        A session with a ``face`` node, or the face result itself (``face_au(time, [face,] au)``).
    points : int
        Time bins of the heatmap and the time course.

    Notes
    -----
    Synced traits: ``current_time`` (s), ``selected_au``, ``threshold``, ``aus`` (id, name, region),
    ``values`` (intensities at the current time, 0-1, null = no face), ``model_top`` and ``emfacs_top``
    (label + probability), ``heatmap`` (au x time, 0-1), ``course`` (selected AU over time), ``message``.
    """

    _esm = t.Unicode(read_asset("au_inspector.js")).tag(sync=True)
    _css = t.Unicode(read_asset("au_inspector.css")).tag(sync=True)

    current_time = t.Float(0.0).tag(sync=True)
    selected_au = t.Unicode("AU12").tag(sync=True)
    threshold = t.Float(0.5).tag(sync=True)
    aus = t.List(t.Dict()).tag(sync=True)
    values = t.List().tag(sync=True)
    model_top = t.Dict(allow_none=True).tag(sync=True)
    emfacs_top = t.Dict(allow_none=True).tag(sync=True)
    model_name = t.Unicode("").tag(sync=True)
    heatmap = t.List(t.List()).tag(sync=True)
    course = t.List().tag(sync=True)
    start = t.Float(0.0).tag(sync=True)
    end = t.Float(0.0).tag(sync=True)
    message = t.Unicode("").tag(sync=True)
    face = t.Unicode("auto").tag(sync=True)  # face or subject shown ("auto": whoever is in view)
    shown = t.Unicode("").tag(sync=True)  # what is shown now ("subject S1", "face 0"; "" = nobody)
    in_view = t.List(t.Unicode()).tag(sync=True)  # faces or subjects with a result at this time
    analysed_time = t.Float(None, allow_none=True).tag(sync=True)  # time of the analysed frame read

    def __init__(self, src=None, *, points: int = 300, video_times=None, **kwargs):
        super().__init__(**kwargs)
        face = None
        if isinstance(src, xr.DataTree):
            face = src["face"].to_dataset() if "face" in src.children else None
            if video_times is None and "video" in src.children and "time" in src["video"].coords:
                video_times = src["video"]["time"].to_numpy()
        elif isinstance(src, xr.Dataset):
            face = src
        self._points = int(points)
        self._faces = FaceView(None)
        if face is None or "face_au" not in face or face.sizes.get("time", 0) == 0:
            self._face = None
            self.message = "no action units: run eb.analyze_face on this session first"
            return
        self._face = face
        self._faces = FaceView(face, video_times)
        self.face = self._faces.check(self.face)
        self._t = face["time"].to_numpy().astype(float)
        self._au_all = face["face_au"].transpose("time", ..., "au")
        ids = [str(a) for a in face["au"].values]
        self._au = self._faces.pick(self._au_all, self.face).transpose("time", "au").to_numpy().astype(float)
        self.aus = [{"id": a, "name": AU_NAMES.get(a, a), "region": AU_REGIONS.get(a, "")} for a in ids]
        if "face_au_presence" in face:
            self.threshold = float(face["face_au_presence"].attrs.get("threshold", 0.5))
        em = face.get("face_emotion")
        self.model_name = str(em.attrs.get("model", face.attrs.get("model", ""))) if em is not None else ""
        self.start, self.end = float(self._t[0]), float(self._t[-1])
        self.heatmap = self._binned(self._au)
        if self.selected_au not in ids:
            self.selected_au = ids[0]
        self._update_course()
        self.observe(lambda _: self._update_now(), "current_time")
        self.observe(lambda _: self._update_course(), "selected_au")
        self.observe(self._on_face, "face")
        self.current_time = self.start
        self._update_now()

    def _binned(self, arr: np.ndarray) -> list:
        """(time, k) -> k lists of ``points`` bin means (null where no face)."""
        n = self._points
        span = max(self.end - self.start, 1e-9)
        idx = np.minimum(((self._t - self.start) / span * n).astype(int), n - 1)
        out = []
        for j in range(arr.shape[1]):
            v = arr[:, j]
            ok = np.isfinite(v)
            s = np.bincount(idx[ok], weights=v[ok], minlength=n)
            c = np.bincount(idx[ok], minlength=n)
            out.append([None if c[i] == 0 else round(float(s[i] / c[i]), 3) for i in range(n)])
        return out

    def _update_course(self):
        if self._face is None:
            return
        ids = [a["id"] for a in self.aus]
        if self.selected_au in ids:
            self.course = self._binned(self._au[:, [ids.index(self.selected_au)]])[0]

    @t.validate("face")
    def _valid_face(self, proposal):
        faces = getattr(self, "_faces", None)  # an unknown face or subject: whoever is in view
        return proposal["value"] if faces is None else faces.check(str(proposal["value"]))

    def _on_face(self, change):
        self._au = self._faces.pick(self._au_all, self.face).transpose("time", "au").to_numpy().astype(float)
        self.heatmap = self._binned(self._au)
        self._update_course()
        self._update_now()

    def _index(self) -> int | None:
        """The analysed frame belonging to ``current_time`` (the rule shared with the overlay)."""
        return self._faces.index_at(self.current_time)

    def _update_now(self):
        if self._face is None:
            return
        k = self._index()
        j = self._faces.column_at(k, self.face)
        self.analysed_time = None if k is None else float(self._t[k])
        self.in_view = [self._faces.noun(n) for n in self._faces.in_view(k)]
        if j is None:
            self.shown = ""
            self.values = [None] * len(self.aus)
            self.model_top = self.emfacs_top = None
            return
        self.shown = self._faces.noun(self._faces.key_at(k, j))
        row = self._au_all.isel(time=k)
        row = (row.isel(face=j) if "face" in row.dims else row).to_numpy().astype(float)
        self.values = [None if not np.isfinite(v) else round(float(v), 4) for v in row]
        self.model_top = _top(self._face.get("face_emotion"), k, j)
        self.emfacs_top = _top(self._face.get("face_emotion_facs"), k, j)

    def active(self) -> list[str]:
        """AUs at or above the presence threshold at ``current_time``."""
        return [a["id"] for a, v in zip(self.aus, self.values) if v is not None and v >= self.threshold]
