"""Annotator: label time ranges from a coding scheme, written through to an AnnotationStore."""

from __future__ import annotations

import json
import math
import os
from datetime import datetime, timezone
from pathlib import Path

import anywidget
import numpy as np
import traitlets as t
import xarray as xr

from ..errors import EmonbError, EmonbValueError
from ..review.schemes import SCHEMES, resolve_scheme
from ..review.store import AnnotationStore
from ._assets import read_asset


def _jsonable(row: dict) -> dict:
    out = {}
    for k, v in row.items():
        if isinstance(v, float) and math.isnan(v):
            v = None
        elif isinstance(v, np.generic):
            v = v.item()
        out[k] = v
    out["offset"] = (out["onset"] or 0.0) + (out["duration"] or 0.0)
    return out


class Annotator(anywidget.AnyWidget):
    """Mark a time range, choose a label, intensity, confidence and a note; edit and delete.

    Every change is written through to the :class:`~emonb.review.AnnotationStore` at once. When the
    store cannot be written (locked, read-only), the change is kept in ``pending`` (and appended to
    ``<store>.pending.jsonl`` next to it when possible), the widget shows the error, and
    :meth:`retry_pending` (also run before each later change) writes it when the store is back.

    Parameters
    ----------
    src : xarray.DataTree, optional
        The session (its ``session_id`` attribute names the session; its ``face`` node feeds the review
        queue).
    store : str, path or AnnotationStore
        The SQLite file (created when missing).
    reviewer : str
        Who is annotating (recorded with every row and change).
    scheme : {"basic7", "facs"} or list of str
        Coding scheme: basic emotions, FACS action units, or your own labels.
    scheme_name : str, optional
        Name under which a user-defined scheme is recorded in the store (default ``"custom"``).
    session : str, optional
        Session id (default: ``src.attrs["session_id"]``).

    Notes
    -----
    Synced traits: ``current_time`` (s), ``range_start``/``range_end`` (s or None), ``labels``,
    ``scheme``, ``reviewer``, ``session``, ``annotations`` (rows of this session), ``queue`` (review
    queue: segments where the model is least certain), ``error``, ``status``, ``n_pending``.
    """

    _esm = t.Unicode(read_asset("annotator.js")).tag(sync=True)
    _css = t.Unicode(read_asset("annotator.css")).tag(sync=True)

    current_time = t.Float(0.0).tag(sync=True)
    duration = t.Float(0.0).tag(sync=True)
    range_start = t.Float(None, allow_none=True).tag(sync=True)
    range_end = t.Float(None, allow_none=True).tag(sync=True)
    labels = t.List(t.Unicode()).tag(sync=True)
    scheme = t.Unicode("basic7").tag(sync=True)
    reviewer = t.Unicode("").tag(sync=True)
    session = t.Unicode("").tag(sync=True)
    store_path = t.Unicode("").tag(sync=True)
    annotations = t.List(t.Dict()).tag(sync=True)
    queue = t.List(t.Dict()).tag(sync=True)
    error = t.Unicode("").tag(sync=True)
    status = t.Unicode("").tag(sync=True)
    n_pending = t.Int(0).tag(sync=True)
    deleted = t.List(t.Dict()).tag(sync=True)  # this reviewer's deleted rows (restorable)
    undo_label = t.Unicode("").tag(sync=True)  # what undo would undo ("" = nothing)
    redo_label = t.Unicode("").tag(sync=True)
    exported = t.Unicode("").tag(sync=True)  # full path of the last export

    def __init__(self, src=None, *, store, reviewer: str, scheme="basic7", scheme_name: str | None = None,
                 session: str | None = None, **kwargs):
        super().__init__(**kwargs)
        if not reviewer:
            raise EmonbValueError("the Annotator needs a reviewer id (reviewer='...')")
        name, labels = resolve_scheme(scheme, name=scheme_name)
        if labels is None:
            raise EmonbValueError("the Annotator needs a coding scheme with labels")
        if session is None:
            session = (src.attrs.get("session_id") if isinstance(src, (xr.DataTree, xr.Dataset)) else None) or "session"
        self.session, self.reviewer = str(session), str(reviewer)
        self.scheme, self.labels = name, list(labels)
        self.pending: list[dict] = []
        self._undo: list[tuple[str, dict]] = []  # (what, change that undoes it)
        self._redo: list[tuple[str, dict]] = []
        self.frame_times = np.zeros(0)  # video frame times (s): onsets and offsets snap to them
        self._store = store if isinstance(store, AnnotationStore) else None
        self._store_arg = store
        self._user_scheme = None if name in SCHEMES else (name, labels)
        self.store_path = os.path.abspath(str(store.path if isinstance(store, AnnotationStore)
                                              else Path(os.fspath(store))))
        try:
            self._open_store()
        except EmonbError as e:  # corrupt, newer schema, unreadable: show it, keep what is typed
            self.error = f"{e} -- annotations are kept in this widget and in {Path(self.store_path).name}" \
                         ".pending.jsonl until the store can be written"
        if isinstance(src, xr.DataTree):
            self.duration = _session_duration(src)
            self.queue = review_queue(src)
            if "video" in src.children and "time" in src["video"].coords:
                self.frame_times = np.sort(src["video"]["time"].to_numpy().astype(float))
        self.refresh()
        self.on_msg(self._on_msg)

    # ------------------------------------------------------------------ store I/O
    @property
    def store(self) -> AnnotationStore:
        """The :class:`~emonb.review.AnnotationStore` (opened again on use if it failed to open)."""
        return self._open_store()

    def _open_store(self) -> AnnotationStore:
        if self._store is None:
            self._store = AnnotationStore(self._store_arg, session=self.session, reviewer=self.reviewer)
        if self._user_scheme is not None:
            name, labels = self._user_scheme
            self._store.define_scheme(name, labels)
            self._user_scheme = None
        return self._store

    def refresh(self):
        """Reload this session's annotations from the store (other reviewers' too)."""
        try:
            self.annotations = [_jsonable(r) for r in self.store.list(session=self.session)]
            self.deleted = [_jsonable(r) for r in self.store.list(session=self.session, reviewer=self.reviewer,
                                                                  include_deleted=True) if r["deleted"]]
        except EmonbError as e:
            if not self.pending and not self.error:  # keep the message that says what is pending
                self.error = str(e)

    def _safe(self, fn, *, keep: dict | None = None):
        try:
            out = fn()
        except EmonbValueError as e:  # a bad value: say so, nothing to keep
            self.error = str(e)
            return None
        except EmonbError as e:  # the file: keep the change, say so
            self.error = f"{e} -- kept, not lost: {len(self.pending) + (keep is not None)} change(s) pending"
            if keep is not None:
                self.pending.append(keep)
                self._journal(keep)
            self.n_pending = len(self.pending)
            return None
        self.error = ""
        return out

    def _journal(self, change: dict):
        try:
            p = Path(self.store_path + ".pending.jsonl")
            with open(p, "a", encoding="utf-8") as f:
                f.write(json.dumps({**change, "at": datetime.now(timezone.utc).isoformat()}) + "\n")
        except OSError:
            pass  # the change is still held in memory

    def retry_pending(self) -> int:
        """Write the changes that could not be written earlier; returns how many are still pending."""
        while self.pending:
            change = self.pending[0]
            try:
                self._apply(change)
            except EmonbValueError as e:
                self.pending.pop(0)
                self.error = f"dropped a pending change that is no longer valid: {e}"
                continue
            except EmonbError as e:
                self.error = f"{e} -- kept, not lost: {len(self.pending)} change(s) pending"
                break
            self.pending.pop(0)
        self.n_pending = len(self.pending)
        if not self.pending:
            if "pending" in self.error:
                self.error = ""
                self.status = "pending changes written"
            p = Path(self.store_path + ".pending.jsonl")
            if p.exists():
                try:
                    p.rename(p.with_suffix(f".written-{os.getpid()}-{datetime.now().strftime('%Y%m%d%H%M%S')}"))
                except OSError:
                    pass
        return len(self.pending)

    def _apply(self, change: dict):
        kind = change["op"]
        args = {k: v for k, v in change.items() if k != "op"}
        if kind == "add":
            return self.store.add(session=self.session, reviewer=self.reviewer, scheme=self.scheme, **args)
        if kind == "update":
            return self.store.update(args.pop("id"), actor=self.reviewer, **args)
        if kind == "delete":
            return self.store.delete(args["id"], actor=self.reviewer)
        if kind == "restore":
            return self.store.restore(args["id"], actor=self.reviewer)
        raise EmonbValueError(f"unknown change {kind!r}")

    def _do(self, change: dict):
        if self.pending:
            self.retry_pending()
        if self.pending:  # keep order: queue behind the earlier ones
            self.pending.append(change)
            self._journal(change)
            self.n_pending = len(self.pending)
            self.error = self.error.rsplit(" -- ", 1)[0] + f" -- kept, not lost: {len(self.pending)} change(s) pending"
            return None
        out = self._safe(lambda: self._apply(change), keep=change)
        self.refresh()
        if out is not None:
            self.status = f"{change['op']} saved to {Path(self.store_path).name}"
        return out

    # ------------------------------------------------------------------ frames
    def _frame_step(self) -> float:
        ft = self.frame_times
        return float(np.median(np.diff(ft))) if ft.size > 1 else 0.0

    def snap_in(self, t: float) -> float:
        """Start of the video frame on screen at ``t`` (``t`` itself without frame times)."""
        ft = self.frame_times
        if not ft.size:
            return float(t)
        i = int(np.searchsorted(ft, float(t) + 1e-9, side="right") - 1)
        return float(ft[min(max(i, 0), ft.size - 1)])

    def snap_out(self, t: float) -> float:
        """End of the video frame on screen at ``t`` (the next frame's time): a segment marked in and
        out on the same frame covers that one frame."""
        ft = self.frame_times
        if not ft.size:
            return float(t)
        i = int(np.searchsorted(ft, float(t) + 1e-9, side="right") - 1)
        i = min(max(i, 0), ft.size - 1)
        return float(ft[i + 1]) if i + 1 < ft.size else float(ft[i] + self._frame_step())

    def _snap_edge(self, t: float) -> float:
        """The frame boundary nearest ``t`` (for an end given as a time, e.g. by a drag)."""
        ft = self.frame_times
        if not ft.size:
            return float(t)
        edges = np.append(ft, ft[-1] + self._frame_step())
        return float(edges[int(np.argmin(np.abs(edges - float(t))))])

    # ------------------------------------------------------------------ actions
    def mark_in(self, t: float | None = None):
        """Start the selected range at the frame on screen at ``t`` (default ``current_time``)."""
        self.range_start = self.snap_in(self.current_time if t is None else t)
        if self.range_end is not None and self.range_end <= self.range_start:
            self.range_end = None

    def mark_out(self, t: float | None = None):
        """End the selected range with the frame on screen at ``t`` (default ``current_time``): the
        range ends where that frame ends."""
        self.range_end = self.snap_out(self.current_time if t is None else t)
        if self.range_start is not None and self.range_end <= self.range_start:
            # out before in: the range runs from the out frame to the end of the in frame
            self.range_start, self.range_end = self.snap_in(self.range_end - 1e-6), self.snap_out(self.range_start)

    def add(self, label: str, *, onset: float | None = None, offset: float | None = None,
            intensity: float | None = None, confidence: float | None = None, note: str | None = None):
        """Add an annotation on ``[onset, offset]`` (default: the marked range).

        Both ends are needed (marked with :meth:`mark_in`/:meth:`mark_out` or given); the onset
        snaps to the start of its video frame and the offset to the nearest frame boundary, and a
        segment of no length is refused. ``intensity`` and ``confidence`` left out are stored as
        not rated (null), never as a default value.
        """
        if onset is None:
            onset = self.range_start
        if offset is None:
            offset = self.range_end
        if onset is None or offset is None:
            raise EmonbValueError("mark in [i] and out [o] first: an annotation needs both ends")
        if not label:
            raise EmonbValueError("choose a label first (keys 1-9)")
        onset, offset = self.snap_in(float(onset)), self._snap_edge(float(offset))
        if not offset > onset:
            raise EmonbValueError(f"a segment needs an out after its in (in {onset:.3f} s, out {offset:.3f} s)")
        change = {"op": "add", "onset": onset, "offset": offset, "label": label,
                  "intensity": intensity, "confidence": confidence, "note": note or None}
        out = self._do(change)
        if out is not None:
            self.range_start = self.range_end = None
            self._remember(f"add {label}", {"op": "delete", "id": out["id"]})
        return out

    def update(self, id: str, **changes):
        """Edit an annotation (the old version stays in the store's history)."""
        try:
            before = self.store.get(id)
        except EmonbError:
            before = None
        if "onset" in changes and changes["onset"] is not None:
            changes["onset"] = self.snap_in(float(changes["onset"]))
        if "offset" in changes and changes["offset"] is not None:
            changes["offset"] = self._snap_edge(float(changes["offset"]))
            if changes["offset"] <= float(changes.get("onset", before["onset"] if before else -np.inf)):
                raise EmonbValueError("a segment needs an out after its in")
        out = self._do({"op": "update", "id": id, **changes})
        if out is not None and before is not None:
            back = {k: before[k] for k in ("label", "intensity", "confidence", "note", "onset")}
            back["offset"] = float(before["onset"]) + float(before["duration"])
            self._remember(f"edit {before['label']}", {"op": "update", "id": id, **_plain(back)})
        return out

    def delete(self, id: str):
        """Delete an annotation (a flag: it stays in the store and its history; :meth:`restore`)."""
        out = self._do({"op": "delete", "id": id})
        if out is not None:
            self._remember(f"delete {out.get('label', '')}", {"op": "restore", "id": id})
        return out

    def restore(self, id: str):
        """Bring back a deleted annotation."""
        out = self._do({"op": "restore", "id": id})
        if out is not None:
            self._remember(f"restore {out.get('label', '')}", {"op": "delete", "id": id})
        return out

    # ------------------------------------------------------------------ undo / redo
    def _remember(self, what: str, inverse: dict, *, redoing: bool = False):
        self._undo.append((what, inverse))
        if not redoing:
            self._redo.clear()
        self._labels()

    def _labels(self):
        self.undo_label = self._undo[-1][0] if self._undo else ""
        self.redo_label = self._redo[-1][0] if self._redo else ""

    def _inverse_of(self, change: dict) -> dict | None:
        """The change undoing ``change`` (read from the store before it is applied)."""
        op = change["op"]
        if op == "delete":
            return {"op": "restore", "id": change["id"]}
        if op == "restore":
            return {"op": "delete", "id": change["id"]}
        before = self.store.get(change["id"])
        back = {k: before[k] for k in ("label", "intensity", "confidence", "note", "onset")}
        back["offset"] = float(before["onset"]) + float(before["duration"])
        return {"op": "update", "id": change["id"], **_plain(back)}

    def _step(self, source: list, target: list) -> dict | None:
        if not source:
            return None
        what, change = source[-1]
        try:
            inverse = self._inverse_of(change)
        except EmonbError as e:
            self.error = str(e)
            return None
        out = self._safe(lambda: self._apply(change))
        self.refresh()
        if out is None:
            return None
        source.pop()
        target.append((what, inverse))
        self._labels()
        return out

    def undo(self):
        """Undo this widget's last add, edit, delete or restore (itself a change in the store's
        history: nothing is lost)."""
        what = self.undo_label
        out = self._step(self._undo, self._redo)
        if out is not None:
            self.status = f"undone: {what}"
        return out

    def redo(self):
        """Redo what :meth:`undo` undid."""
        what = self.redo_label
        out = self._step(self._redo, self._undo)
        if out is not None:
            self.status = f"redone: {what}"
        return out

    # ------------------------------------------------------------------ export
    def export(self, format: str = "csv") -> Path | None:
        """Write this session's annotations beside the store, under a fresh name that touches no
        existing file: ``<store>.<session>.csv``, ``.eaf`` (ELAN) or ``_events.tsv`` (BIDS)."""
        from .._output import fresh_path
        from ..review.formats import export_annotations

        ext = {"csv": ".csv", "eaf": ".eaf", "bids": "_events.tsv"}.get(format)
        if ext is None:
            self.error = f"unknown export format {format!r}; use csv, eaf or bids"
            return None
        base = Path(self.store_path)
        target = base.with_name(f"{base.stem}.{self.session}{ext}")

        def run():
            p = fresh_path(target)
            return export_annotations(self.store, p, session=self.session, format=format)
        out = self._safe(run)
        if out is not None:
            self.exported = str(out)
            self.status = f"exported to {out}"
        return out

    def _on_msg(self, widget, content, buffers):
        if not isinstance(content, dict):
            return
        try:
            self._handle(content)
        except EmonbValueError as e:  # a bad value from the form: say so in the widget
            self.error = str(e)

    def _handle(self, content: dict):
        kind = content.get("type")
        fields = ("label", "onset", "offset", "intensity", "confidence", "note")
        if kind == "add":
            self.add(**{k: content.get(k) for k in fields})
        elif kind == "update":
            ch = {k: content[k] for k in ("label", "onset", "intensity", "confidence", "note", "offset",
                                          "expected_version") if k in content}
            self.update(content["id"], **ch)
        elif kind == "delete":
            self.delete(content["id"])
        elif kind == "restore":
            self.restore(content["id"])
        elif kind == "mark_in":
            self.mark_in(content.get("t"))
        elif kind == "mark_out":
            self.mark_out(content.get("t"))
        elif kind == "undo":
            self.undo()
        elif kind == "redo":
            self.redo()
        elif kind == "export":
            self.export(str(content.get("format", "csv")))
        elif kind == "refresh":
            self.refresh()
            self.retry_pending()


def _plain(d: dict) -> dict:
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}


def _session_duration(tree: xr.DataTree) -> float:
    end = 0.0
    for node in tree.subtree:
        if "time" in node.coords and node.sizes.get("time", 0):
            end = max(end, float(node["time"].values[-1]))
    return end


def frame_scores(face: xr.Dataset, *, faces=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per analysed frame: the expression model's uncertainty and its disagreement with the FACS reading.

    Returns
    -------
    times : ndarray (time,) s
    uncertainty : ndarray (time,)
        Normalised entropy of ``face_emotion`` (0 = one class certain, 1 = all equally likely);
        NaN where no face.
    disagreement : ndarray (time,)
        Total-variation distance between ``face_emotion`` and ``face_emotion_facs`` (0 = the same
        distribution, 1 = no overlap); NaN without a FACS reading.
    """
    from ._faces import FaceView

    faces = faces or FaceView(face)
    tt = face["time"].to_numpy().astype(float)
    p = faces.pick(face["face_emotion"], "auto").transpose("time", "emotion").to_numpy().astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.clip(p, 1e-12, None)
        q = q / q.sum(axis=1, keepdims=True)
        ent = -(q * np.log(q)).sum(axis=1) / np.log(p.shape[1])
    ent[~np.isfinite(p).all(axis=1)] = np.nan
    dis = np.full(tt.size, np.nan)
    if "face_emotion_facs" in face:
        f = faces.pick(face["face_emotion_facs"], "auto").transpose("time", "emotion").to_numpy().astype(float)
        with np.errstate(invalid="ignore"):
            dis = 0.5 * np.abs(p / p.sum(axis=1, keepdims=True) - f / f.sum(axis=1, keepdims=True)).sum(axis=1)
    return tt, ent, dis


def review_queue(tree: xr.DataTree, *, n: int = 10, threshold: float = 0.6, quantile: float = 0.9,
                 min_duration: float = 0.2, merge: float = 0.25) -> list[dict]:
    """The few moments worth a human look, worst first: where the face model is unsure, or disagrees
    with its own FACS reading, clearly more than elsewhere in the session; and the spotted
    micro/macro-expressions.

    Per analysed frame the score is the larger of the uncertainty (normalised entropy) and the
    disagreement (total-variation distance to the FACS reading) of :func:`frame_scores`. A frame is
    flagged when its score is at least ``threshold`` *and* in the session's top ``1 - quantile``;
    flagged frames closer than ``merge`` s join into one segment, segments shorter than
    ``min_duration`` s are dropped, and each segment's score is its mean. A session where the model
    is sure and agrees with the FACS reading gives an empty queue (besides spotted expressions).

    Returns
    -------
    list of dict
        ``onset``, ``offset`` (s), ``score`` (0-1, higher = review first), ``reason``.
    """
    spotted = _spot_items(tree)
    if "face" not in tree.children:
        return spotted[:n]
    face = tree["face"].to_dataset()
    if "face_emotion" not in face or "time" not in face.coords or face.sizes.get("time", 0) < 2:
        return spotted[:n]
    tt, ent, dis = frame_scores(face)
    score = np.fmax(ent, dis)
    ok = np.isfinite(score)
    if not ok.any():
        return spotted[:n]
    cut = max(float(threshold), float(np.quantile(score[ok], quantile)))
    flag = ok & (score >= cut)
    step = float(np.median(np.diff(tt)))
    out, i = [], 0
    idx = np.flatnonzero(flag)
    while i < idx.size:
        j = i
        while j + 1 < idx.size and tt[idx[j + 1]] - tt[idx[j]] <= merge + 1e-9:
            j += 1
        a, b = idx[i], idx[j]
        onset, offset = float(tt[a]), float(tt[b] + step)
        if offset - onset >= min_duration - 1e-9:
            sel = slice(a, b + 1)
            s_ent, s_dis = np.nanmean(ent[sel]), (np.nanmean(dis[sel]) if np.isfinite(dis[sel]).any() else np.nan)
            parts = []
            if s_ent >= cut or not np.isfinite(s_dis) or s_ent >= s_dis:
                parts.append(f"model unsure (entropy {s_ent:.2f})")
            if np.isfinite(s_dis) and s_dis >= min(cut, s_ent):
                parts.append(f"expression model and FACS reading disagree (distance {s_dis:.2f})")
            out.append({"onset": round(onset, 4), "offset": round(offset, 4),
                        "score": round(float(np.nanmean(score[sel])), 4), "reason": "; ".join(parts)})
        i = j + 1
    out.sort(key=lambda d: -d["score"])
    # spotted expressions are short and easy to miss: each gets its own place in the queue
    return sorted(out[:n] + spotted, key=lambda d: -d["score"])[:n + len(spotted)]


def _spot_items(tree: xr.DataTree) -> list[dict]:
    """Queue entries for the spotted micro/macro-expressions of a ``spots`` node (score 0.75..1)."""
    if "spots" not in tree.children:
        return []
    ds = tree["spots"].to_dataset()
    if not ds.sizes.get("spot", 0):
        return []
    strength = ds["strength"].to_numpy().astype(float) if "strength" in ds else np.ones(ds.sizes["spot"])
    top = np.nanmax(strength) if np.isfinite(strength).any() else 1.0
    items = []
    for i in range(ds.sizes["spot"]):
        kind = str(ds["kind"].values[i]) if "kind" in ds else "expression"
        regions = str(ds["regions"].values[i]) if "regions" in ds else ""
        rel = float(strength[i] / top) if top > 0 and np.isfinite(strength[i]) else 0.0
        items.append({"onset": float(ds["onset"].values[i]), "offset": float(ds["offset"].values[i]),
                      "score": round(0.75 + 0.25 * rel, 4),
                      "reason": f"spotted {kind}-expression" + (f" ({regions})" if regions else "")})
    return items
