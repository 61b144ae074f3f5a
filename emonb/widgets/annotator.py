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
        self._store = store if isinstance(store, AnnotationStore) else None
        self._store_arg = store
        self._user_scheme = None if name in SCHEMES else (name, labels)
        self.store_path = str(store.path if isinstance(store, AnnotationStore) else Path(os.fspath(store)))
        try:
            self._open_store()
        except EmonbError as e:  # corrupt, newer schema, unreadable: show it, keep what is typed
            self.error = f"{e} -- annotations are kept in this widget and in {Path(self.store_path).name}" \
                         ".pending.jsonl until the store can be written"
        if isinstance(src, xr.DataTree):
            self.duration = _session_duration(src)
            self.queue = review_queue(src)
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

    # ------------------------------------------------------------------ actions
    def mark_in(self, t: float | None = None):
        """Start the selected range at ``t`` (default ``current_time``)."""
        self.range_start = float(self.current_time if t is None else t)
        if self.range_end is not None and self.range_end < self.range_start:
            self.range_end = None

    def mark_out(self, t: float | None = None):
        """End the selected range at ``t`` (default ``current_time``)."""
        self.range_end = float(self.current_time if t is None else t)
        if self.range_start is not None and self.range_end < self.range_start:
            self.range_start, self.range_end = self.range_end, self.range_start

    def add(self, label: str, *, onset: float | None = None, offset: float | None = None,
            intensity: float | None = None, confidence: float | None = None, note: str | None = None):
        """Add an annotation on ``[onset, offset]`` (default: the marked range, else ``current_time``)."""
        if onset is None:
            onset = self.range_start if self.range_start is not None else self.current_time
        if offset is None:
            offset = self.range_end if self.range_end is not None else onset
        change = {"op": "add", "onset": float(onset), "offset": float(offset), "label": label,
                  "intensity": intensity, "confidence": confidence, "note": note or None}
        out = self._do(change)
        if out is not None:
            self.range_start = self.range_end = None
        return out

    def update(self, id: str, **changes):
        """Edit an annotation (the old version stays in the store's history)."""
        return self._do({"op": "update", "id": id, **changes})

    def delete(self, id: str):
        """Delete an annotation (a flag: it stays in the store and its history)."""
        return self._do({"op": "delete", "id": id})

    def restore(self, id: str):
        return self._do({"op": "restore", "id": id})

    def _on_msg(self, widget, content, buffers):
        if not isinstance(content, dict):
            return
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
        elif kind == "refresh":
            self.refresh()
            self.retry_pending()


def _session_duration(tree: xr.DataTree) -> float:
    end = 0.0
    for node in tree.subtree:
        if "time" in node.coords and node.sizes.get("time", 0):
            end = max(end, float(node["time"].values[-1]))
    return end


def review_queue(tree: xr.DataTree, *, n: int = 10, window: float = 1.0) -> list[dict]:
    """Segments where the face model is least certain, or disagrees with its FACS reading, worst first.

    Uncertainty per window = 1 - mean top probability of ``face_emotion``; disagreement adds 0.5 when
    the argmax of ``face_emotion`` and ``face_emotion_facs`` differ in most of the window.

    Returns
    -------
    list of dict
        ``onset``, ``offset`` (s), ``score`` (higher = review first), ``reason``.
    """
    spotted = _spot_items(tree)
    if "face" not in tree.children:
        return spotted[:n]
    face = tree["face"].to_dataset()
    if "face_emotion" not in face or "time" not in face.coords or face.sizes.get("time", 0) == 0:
        return spotted[:n]
    p = face["face_emotion"]
    if "face" in p.dims:
        p = p.isel(face=0)
    tt = p["time"].to_numpy().astype(float)
    pv = p.transpose("time", "emotion").to_numpy().astype(float)
    top = np.nanmax(np.where(np.isfinite(pv), pv, -np.inf), axis=1)
    top[~np.isfinite(top)] = np.nan
    arg = np.where(np.isfinite(pv).any(axis=1), np.nanargmax(np.nan_to_num(pv, nan=-1), axis=1), -1)
    arg_facs = None
    if "face_emotion_facs" in face:
        q = face["face_emotion_facs"]
        if "face" in q.dims:
            q = q.isel(face=0)
        qv = q.transpose("time", "emotion").to_numpy().astype(float)
        arg_facs = np.where(np.isfinite(qv).any(axis=1), np.nanargmax(np.nan_to_num(qv, nan=-1), axis=1), -1)
    out = []
    start = tt[0]
    while start < tt[-1]:
        sel = (tt >= start) & (tt < start + window)
        if sel.any() and np.isfinite(top[sel]).any():
            score = 1.0 - float(np.nanmean(top[sel]))
            reason = f"model unsure (mean top probability {1 - score:.2f})"
            if arg_facs is not None:
                both = sel & (arg >= 0) & (arg_facs >= 0)
                if both.any() and np.mean(arg[both] != arg_facs[both]) > 0.5:
                    score += 0.5
                    reason += "; expression model and FACS reading disagree"
            out.append({"onset": float(start), "offset": float(start + window), "score": round(score, 4),
                        "reason": reason})
        start += window
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
