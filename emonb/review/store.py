"""Reviewer annotations in SQLite: one row per annotation, an append-only history, nothing lost.

The file is a plain SQLite database in WAL mode. Each change runs in its own ``BEGIN IMMEDIATE``
transaction with a busy timeout, so two notebooks (two processes) writing to the same file at once
wait for each other instead of failing or losing rows. Every insert, update and delete appends the
full row before and after the change to ``history``; triggers refuse any UPDATE or DELETE on
``history`` and any DELETE on ``annotations`` (a delete is a flag, the row stays).
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from ..errors import EmonbFileError, EmonbValueError
from .schemes import SCHEMES, resolve_scheme

SCHEMA_VERSION = 1

#: Columns of an annotation row, in order.
COLUMNS = ("id", "session", "reviewer", "onset", "duration", "label", "scheme", "intensity", "confidence",
           "note", "created", "updated", "deleted", "version")
EDITABLE = ("session", "reviewer", "onset", "duration", "label", "scheme", "intensity", "confidence", "note")

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS annotations (
    id TEXT PRIMARY KEY,
    session TEXT NOT NULL,
    reviewer TEXT NOT NULL,
    onset REAL NOT NULL,
    duration REAL NOT NULL,
    label TEXT NOT NULL,
    scheme TEXT,
    intensity REAL,
    confidence REAL,
    note TEXT,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS annotations_session ON annotations(session, onset);
CREATE TABLE IF NOT EXISTS history (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    annotation_id TEXT NOT NULL,
    action TEXT NOT NULL,
    at TEXT NOT NULL,
    actor TEXT,
    before TEXT,
    after TEXT
);
CREATE INDEX IF NOT EXISTS history_annotation ON history(annotation_id);
CREATE TABLE IF NOT EXISTS schemes (name TEXT PRIMARY KEY, labels TEXT NOT NULL, created TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS history_no_update BEFORE UPDATE ON history
    BEGIN SELECT RAISE(ABORT, 'emonb history is append-only'); END;
CREATE TRIGGER IF NOT EXISTS history_no_delete BEFORE DELETE ON history
    BEGIN SELECT RAISE(ABORT, 'emonb history is append-only'); END;
CREATE TRIGGER IF NOT EXISTS annotations_no_delete BEFORE DELETE ON annotations
    BEGIN SELECT RAISE(ABORT, 'emonb annotations are never removed; set deleted=1'); END;
"""


_NO_MATCH = object()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _opt_float(name, value, *, lo=None, hi=None):
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise EmonbValueError(f"{name} must be a number, got {value!r}") from None
    if math.isnan(v):
        return None
    if not math.isfinite(v) or (lo is not None and v < lo) or (hi is not None and v > hi):
        rng = f" in [{lo}, {hi}]" if hi is not None else (f" >= {lo}" if lo is not None else "")
        raise EmonbValueError(f"{name} must be a finite number{rng}, got {value!r}")
    return v


class AnnotationStore:
    """Reviewer annotations of sessions, in one SQLite file.

    Parameters
    ----------
    path : str or os.PathLike
        The SQLite file (created when missing). Several processes may open the same file.
    session : str, optional
        Default session id for :meth:`add` and the queries.
    reviewer : str, optional
        Default reviewer id for :meth:`add`, recorded as the actor of each change.
    timeout : float
        Seconds to wait for another writer's lock before giving up (default 30).
    readonly : bool
        Open without writing (also chosen automatically when the file is not writable).

    Notes
    -----
    Times are session-clock seconds: ``onset`` and ``duration`` (``offset = onset + duration``).
    ``intensity`` and ``confidence`` are numbers in [0, 1] (NaN/None when not given).

    Examples
    --------
    >>> store = AnnotationStore("reviews.sqlite", session="s01", reviewer="dr_lee")  # doctest: +SKIP
    >>> a = store.add(onset=1.2, offset=2.0, label="happiness", scheme="basic7")    # doctest: +SKIP
    >>> store.export("events.tsv")                                                  # doctest: +SKIP
    """

    def __init__(self, path, *, session: str | None = None, reviewer: str | None = None,
                 timeout: float = 30.0, readonly: bool = False):
        self.path = Path(os.fspath(path)).expanduser()
        self.session = session
        self.reviewer = reviewer
        self.timeout = float(timeout)
        if self.path.is_dir():
            raise EmonbFileError(self.path, "expected an annotation store file but found a folder")
        exists = self.path.exists()
        writable = os.access(self.path if exists else (self.path.parent if str(self.path.parent) else "."),
                             os.W_OK)
        self.readonly = bool(readonly) or not writable
        if not exists and self.readonly:
            raise EmonbFileError(self.path, "annotation store does not exist and cannot be created here",
                                 "the folder is not writable")
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = None
        self._init_schema()

    # ------------------------------------------------------------------ connection
    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        try:
            if self.readonly:
                uri = f"file:{self.path.resolve()}?mode=ro"
                conn = sqlite3.connect(uri, uri=True, timeout=self.timeout, isolation_level=None,
                                       check_same_thread=False)
            else:
                conn = sqlite3.connect(str(self.path), timeout=self.timeout, isolation_level=None,
                                       check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            if not self.readonly:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":  # pragma: no cover - filesystems without shared memory
                    conn.execute("PRAGMA journal_mode=DELETE")
                conn.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.DatabaseError as e:
            raise self._file_error(e) from None
        self._conn, self._pid = conn, os.getpid()
        return conn

    def _file_error(self, e: Exception) -> EmonbFileError:
        msg = str(e)
        if "not a database" in msg or "malformed" in msg:
            return EmonbFileError(self.path, "is not a readable annotation store (corrupt or not SQLite)",
                                  "keep the file for recovery and open a new store")
        if "locked" in msg or "busy" in msg:
            return EmonbFileError(self.path, f"annotation store is locked by another process ({msg})",
                                  "try again; nothing was written")
        if "readonly" in msg or "read-only" in msg:
            return EmonbFileError(self.path, "annotation store is read-only; nothing was written",
                                  "open a writable copy")
        return EmonbFileError(self.path, f"annotation store error: {msg}")

    def close(self):
        """Close this process's connection (a new one opens on the next call)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __getstate__(self):  # picklable for multiprocessing: no connection travels
        d = self.__dict__.copy()
        d["_conn"], d["_pid"], d["_lock"] = None, None, None
        return d

    def __setstate__(self, d):
        self.__dict__.update(d)
        self._lock = threading.RLock()

    def __repr__(self):
        return f"AnnotationStore({str(self.path)!r}, session={self.session!r}, reviewer={self.reviewer!r})"

    def _read(self, sql: str, params: Sequence = ()) -> list[sqlite3.Row]:
        with self._lock:
            conn = self._connect()
            try:
                cur = conn.execute(sql, params)
                cols = [c[0] for c in cur.description]
                return [dict(zip(cols, r)) for r in cur.fetchall()]
            except sqlite3.DatabaseError as e:
                raise self._file_error(e) from None

    def _write(self, fn):
        """Run ``fn(conn)`` in one immediate transaction; roll back on any error."""
        if self.readonly:
            raise EmonbFileError(self.path, "annotation store is opened read-only; nothing was written")
        with self._lock:
            conn = self._connect()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.DatabaseError as e:
                raise self._file_error(e) from None
            try:
                out = fn(conn)
                conn.execute("COMMIT")
                return out
            except BaseException as e:
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                if isinstance(e, sqlite3.DatabaseError):
                    raise self._file_error(e) from None
                raise

    def _init_schema(self):
        if self.readonly:
            if not self.path.exists() or self.path.stat().st_size == 0:
                raise EmonbFileError(self.path, "annotation store is empty or missing")
            rows = self._read("SELECT value FROM meta WHERE key='schema_version'")
            self._check_version(rows)
            return

        def init(conn):
            for stmt in _DDL.split(";\n"):
                if stmt.strip():
                    conn.execute(stmt)
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                conn.execute("INSERT INTO meta VALUES ('created', ?)", (_now(),))
                from .._version import __version__
                conn.execute("INSERT INTO meta VALUES ('emonb_version', ?)", (__version__,))
            return row

        try:
            conn = self._connect()
            # a newer schema must be refused before any DDL touches it
            try:
                rows = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchall()
                self._check_version([{"value": r[0]} for r in rows])
            except sqlite3.OperationalError as e:
                if "no such table" not in str(e):
                    raise
        except sqlite3.DatabaseError as e:
            raise self._file_error(e) from None
        self._write(init)

    def _check_version(self, rows):
        if rows:
            v = int(rows[0]["value"])
            if v > SCHEMA_VERSION:
                raise EmonbFileError(self.path, f"annotation store has schema version {v}, newer than this "
                                                f"emonb understands ({SCHEMA_VERSION})", "upgrade emonb")

    @property
    def schema_version(self) -> int:
        rows = self._read("SELECT value FROM meta WHERE key='schema_version'")
        return int(rows[0]["value"])

    # ------------------------------------------------------------------ schemes
    def define_scheme(self, name: str, labels: Iterable[str]) -> tuple[str, ...]:
        """Record a user-defined coding scheme (its labels are then checked by :meth:`add`)."""
        name = str(name)
        if name in SCHEMES:
            raise EmonbValueError(f"{name!r} is a built-in scheme; choose another name")
        _, labs = resolve_scheme(list(labels), name=name)

        def fn(conn):
            row = conn.execute("SELECT labels FROM schemes WHERE name=?", (name,)).fetchone()
            if row is not None and tuple(json.loads(row[0])) != labs:
                raise EmonbValueError(f"scheme {name!r} is already defined in {self.path} with other labels: "
                                      f"{json.loads(row[0])}")
            if row is None:
                conn.execute("INSERT INTO schemes VALUES (?, ?, ?)", (name, json.dumps(labs), _now()))
        self._write(fn)
        return labs

    def scheme_labels(self, name: str | None) -> tuple[str, ...] | None:
        """Labels of a scheme (built-in or defined in this store); None for free labels."""
        if name is None or name == "free":
            return None
        if name in SCHEMES:
            return SCHEMES[name]
        rows = self._read("SELECT labels FROM schemes WHERE name=?", (name,))
        if not rows:
            raise EmonbValueError(f"unknown coding scheme {name!r}; built-in: {sorted(SCHEMES)}, defined here: "
                                  f"{[r['name'] for r in self._read('SELECT name FROM schemes')]}")
        return tuple(json.loads(rows[0]["labels"]))

    # ------------------------------------------------------------------ validation
    def _validate(self, row: dict) -> dict:
        if not row.get("session"):
            raise EmonbValueError("an annotation needs a session id (pass session=... here or to the store)")
        if not row.get("reviewer"):
            raise EmonbValueError("an annotation needs a reviewer id (pass reviewer=... here or to the store)")
        row["session"], row["reviewer"] = str(row["session"]), str(row["reviewer"])
        onset = _opt_float("onset", row.get("onset"))
        if onset is None:
            raise EmonbValueError("an annotation needs an onset (session seconds)")
        dur = _opt_float("duration", row.get("duration"), lo=0.0)
        row["onset"], row["duration"] = onset, 0.0 if dur is None else dur
        label = row.get("label")
        if label is None or str(label).strip() == "":
            raise EmonbValueError("an annotation needs a label")
        row["label"] = str(label).strip()
        labels = self.scheme_labels(row.get("scheme"))
        if labels is not None and row["label"] not in labels:
            raise EmonbValueError(f"label {row['label']!r} is not in coding scheme {row['scheme']!r}: {list(labels)}")
        row["intensity"] = _opt_float("intensity", row.get("intensity"), lo=0.0, hi=1.0)
        row["confidence"] = _opt_float("confidence", row.get("confidence"), lo=0.0, hi=1.0)
        note = row.get("note")
        row["note"] = None if note is None or (isinstance(note, float) and math.isnan(note)) else str(note)
        return row

    @staticmethod
    def _times(onset, offset, duration):
        if offset is not None and duration is not None:
            raise EmonbValueError("give offset or duration, not both")
        if offset is not None:
            onset_f, off_f = _opt_float("onset", onset), _opt_float("offset", offset)
            if onset_f is None or off_f is None:
                raise EmonbValueError("onset and offset must be numbers (session seconds)")
            if off_f < onset_f:
                raise EmonbValueError(f"offset {off_f} is before onset {onset_f}")
            return onset_f, off_f - onset_f
        return onset, duration

    # ------------------------------------------------------------------ writes
    def add(self, onset: float, offset: float | None = None, *, duration: float | None = None,
            label: str, scheme: str | None = "basic7", session: str | None = None,
            reviewer: str | None = None, intensity: float | None = None, confidence: float | None = None,
            note: str | None = None, id: str | None = None, _action: str = "insert") -> dict:
        """Add one annotation and return its row.

        Parameters
        ----------
        onset, offset : float
            Start and end in session seconds (or ``duration`` instead of ``offset``; 0 = a point event).
        label : str
            The label, checked against ``scheme`` (``"basic7"``, ``"facs"``, a scheme defined with
            :meth:`define_scheme`, or None for free text).
        intensity, confidence : float, optional
            In [0, 1].
        note : str, optional
            Free text.
        """
        onset, duration = self._times(onset, offset, duration)
        now = _now()
        row = self._validate({
            "id": id or uuid.uuid4().hex, "session": session or self.session,
            "reviewer": reviewer or self.reviewer, "onset": onset, "duration": duration, "label": label,
            "scheme": scheme, "intensity": intensity, "confidence": confidence, "note": note,
            "created": now, "updated": now, "deleted": 0, "version": 1})

        def fn(conn):
            conn.execute(f"INSERT INTO annotations ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                         [row[c] for c in COLUMNS])
            conn.execute("INSERT INTO history (annotation_id, action, at, actor, before, after) "
                         "VALUES (?, ?, ?, ?, NULL, ?)", (row["id"], _action, now, row["reviewer"], json.dumps(row)))
        try:
            self._write(fn)
        except sqlite3.IntegrityError:  # pragma: no cover - caught as DatabaseError above
            raise EmonbValueError(f"an annotation with id {row['id']!r} already exists") from None
        except EmonbFileError as e:
            if "UNIQUE" in str(e):
                raise EmonbValueError(f"an annotation with id {row['id']!r} already exists") from None
            raise
        return row

    # ------------------------------------------------------------------ imports
    def _prepare_import(self, r: dict, *, session=None, reviewer=None, scheme=None) -> dict:
        """One imported row, validated like :meth:`add` (raises :class:`EmonbValueError`)."""
        now = _now()
        onset, duration = self._times(r.get("onset"), None, r.get("duration"))
        return self._validate({
            "id": r.get("id") or None, "session": r.get("session") or session or self.session,
            "reviewer": r.get("reviewer") or reviewer or self.reviewer, "onset": onset, "duration": duration,
            "label": r.get("label"), "scheme": r.get("scheme") if r.get("scheme") else scheme,
            "intensity": r.get("intensity"), "confidence": r.get("confidence"), "note": r.get("note"),
            "created": now, "updated": now, "deleted": 0, "version": 1})

    @staticmethod
    def _content_key(row) -> tuple:
        """What makes two annotations the same one when neither file nor store has an id for it:
        session, reviewer, onset and offset to the millisecond (the precision of ELAN files), label."""
        onset, duration = float(row["onset"]), float(row["duration"])
        return (str(row["session"]), str(row["reviewer"]), int(round(onset * 1000)),
                int(round((onset + duration) * 1000)), str(row["label"]))

    def _import_rows(self, rows: list[dict]) -> list[dict]:
        """Insert prepared rows in one transaction, skipping those the store already holds.

        A row is skipped when its id is in the store (deleted rows too), or, without an id, when
        the store holds an annotation with the same content key (:meth:`_content_key`) and the
        same note (any note when the file gives none). Each stored annotation answers for one
        file row, so a file with two identical rows adds two the first time and none the next.
        The transaction makes an import all or nothing: one killed midway leaves no partial
        import behind, and a retry adds exactly what is missing.
        """
        def fn(conn):
            sessions = sorted({r["session"] for r in rows})
            known_ids, notes = set(), {}
            for sess in sessions:
                cur = conn.execute("SELECT id, session, reviewer, onset, duration, label, note FROM annotations "
                                   "WHERE session=?", (sess,))
                for rid, se, rev, on, du, lab, note in cur.fetchall():
                    known_ids.add(rid)
                    key = self._content_key({"session": se, "reviewer": rev, "onset": on, "duration": du,
                                             "label": lab})
                    notes.setdefault(key, []).append(note)
            added = []
            for r in rows:
                if r["id"] is not None and (r["id"] in known_ids or
                                            conn.execute("SELECT 1 FROM annotations WHERE id=?", (r["id"],)).fetchone()):
                    continue
                if r["id"] is None:
                    have = notes.get(self._content_key(r), [])
                    match = r["note"] if r["note"] in have else (
                        (None if None in have else have[0]) if r["note"] is None and have else _NO_MATCH)
                    if match is not _NO_MATCH:
                        have.remove(match)
                        continue
                row = {**r, "id": r["id"] or uuid.uuid4().hex}
                conn.execute(f"INSERT INTO annotations ({', '.join(COLUMNS)}) VALUES "
                             f"({', '.join('?' * len(COLUMNS))})", [row[c] for c in COLUMNS])
                conn.execute("INSERT INTO history (annotation_id, action, at, actor, before, after) "
                             "VALUES (?, 'import', ?, ?, NULL, ?)",
                             (row["id"], row["created"], row["reviewer"], json.dumps(row)))
                known_ids.add(row["id"])
                added.append(row)
            return added
        return self._write(fn)

    def _get_row(self, conn, id):
        cur = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM annotations WHERE id=?", (id,))
        r = cur.fetchone()
        if r is None:
            raise EmonbValueError(f"no annotation with id {id!r} in {self.path}")
        return dict(zip(COLUMNS, r))

    def update(self, id: str, *, expected_version: int | None = None, actor: str | None = None,
               offset: float | None = None, **changes) -> dict:
        """Change fields of an annotation; the old row is kept in the history.

        Parameters
        ----------
        id : str
        expected_version : int, optional
            Refuse the change when the row was changed meanwhile (its ``version`` differs): two
            reviewers editing the same annotation never overwrite each other silently.
        offset : float, optional
            New end time (sets ``duration``).
        **changes
            Any of ``session, reviewer, onset, duration, label, scheme, intensity, confidence, note``.
        """
        bad = set(changes) - set(EDITABLE)
        if bad:
            raise EmonbValueError(f"cannot update {sorted(bad)}; editable fields: {list(EDITABLE)}")

        def fn(conn):
            before = self._get_row(conn, id)
            if before["deleted"]:
                raise EmonbValueError(f"annotation {id!r} is deleted; restore it first")
            if expected_version is not None and int(expected_version) != before["version"]:
                raise EmonbValueError(f"annotation {id!r} was changed by someone else (version "
                                      f"{before['version']}, expected {expected_version}); reload it")
            after = {**before, **changes}
            if offset is not None:
                off = _opt_float("offset", offset)
                if off < float(after["onset"]):
                    raise EmonbValueError(f"offset {off} is before onset {after['onset']}")
                after["duration"] = off - float(after["onset"])
            after = self._validate(after)
            after["updated"] = _now()
            after["version"] = before["version"] + 1
            self._set(conn, after)
            conn.execute("INSERT INTO history (annotation_id, action, at, actor, before, after) "
                         "VALUES (?, 'update', ?, ?, ?, ?)",
                         (id, after["updated"], actor or self.reviewer or after["reviewer"], json.dumps(before),
                          json.dumps(after)))
            return after
        return self._write(fn)

    def _set(self, conn, row):
        cols = [c for c in COLUMNS if c != "id"]
        conn.execute(f"UPDATE annotations SET {', '.join(c + '=?' for c in cols)} WHERE id=?",
                     [row[c] for c in cols] + [row["id"]])

    def delete(self, id: str, *, actor: str | None = None) -> dict:
        """Mark an annotation deleted (the row and its history stay; :meth:`restore` undoes it)."""
        return self._flag(id, 1, "delete", actor)

    def restore(self, id: str, *, actor: str | None = None) -> dict:
        """Undo :meth:`delete`."""
        return self._flag(id, 0, "restore", actor)

    def _flag(self, id, value, action, actor):
        def fn(conn):
            before = self._get_row(conn, id)
            if before["deleted"] == value:
                return before
            after = {**before, "deleted": value, "updated": _now(), "version": before["version"] + 1}
            self._set(conn, after)
            conn.execute("INSERT INTO history (annotation_id, action, at, actor, before, after) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         (id, action, after["updated"], actor or self.reviewer or before["reviewer"],
                          json.dumps(before), json.dumps(after)))
            return after
        return self._write(fn)

    # ------------------------------------------------------------------ reads
    def get(self, id: str) -> dict:
        """One annotation row (deleted ones too) as a dict."""
        rows = self._read(f"SELECT {', '.join(COLUMNS)} FROM annotations WHERE id=?", (id,))
        if not rows:
            raise EmonbValueError(f"no annotation with id {id!r} in {self.path}")
        return rows[0]

    def list(self, *, session: str | None = None, reviewer: str | None = None, label: str | None = None,
             include_deleted: bool = False) -> list[dict]:
        """Annotation rows, sorted by session, onset and reviewer."""
        where, params = [], []
        session = session or self.session
        for col, val in (("session", session), ("reviewer", reviewer), ("label", label)):
            if val is not None:
                where.append(f"{col}=?")
                params.append(val)
        if not include_deleted:
            where.append("deleted=0")
        sql = f"SELECT {', '.join(COLUMNS)} FROM annotations"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return self._read(sql + " ORDER BY session, onset, reviewer, created", params)

    def sessions(self) -> list[str]:
        return [r["session"] for r in self._read("SELECT DISTINCT session FROM annotations WHERE deleted=0 "
                                                 "ORDER BY session")]

    def reviewers(self, *, session: str | None = None) -> list[str]:
        return sorted({r["reviewer"] for r in self.list(session=session)})

    def __len__(self):
        return len(self.list())

    def to_dataframe(self, **filters) -> pd.DataFrame:
        """Annotations as a DataFrame (columns as the table plus ``offset``; missing numbers NaN)."""
        rows = self.list(**filters)
        df = pd.DataFrame(rows, columns=list(COLUMNS))
        for c in ("onset", "duration", "intensity", "confidence"):
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
        df.insert(df.columns.get_loc("duration") + 1, "offset", df["onset"] + df["duration"])
        df["deleted"] = df["deleted"].astype(bool)
        return df

    def history(self, id: str | None = None) -> pd.DataFrame:
        """The append-only change log: ``seq, annotation_id, action, at, actor, before, after`` (rows as dicts)."""
        sql = "SELECT seq, annotation_id, action, at, actor, before, after FROM history"
        rows = self._read(sql + (" WHERE annotation_id=?" if id else "") + " ORDER BY seq", (id,) if id else ())
        for r in rows:
            r["before"] = json.loads(r["before"]) if r["before"] else None
            r["after"] = json.loads(r["after"]) if r["after"] else None
        return pd.DataFrame(rows, columns=["seq", "annotation_id", "action", "at", "actor", "before", "after"])

    def to_dataset(self, *, session: str | None = None):
        """The session's ``annotations`` node: variables on an ``annotation`` dimension.

        Returns
        -------
        xarray.Dataset
            ``onset``, ``duration``, ``offset`` (s, session clock), ``label``, ``reviewer``, ``scheme``,
            ``note`` (str), ``intensity``, ``confidence`` (1, NaN when not given); coordinate
            ``annotation`` = annotation ids. attrs: store path, session, schema_version.
        """
        import xarray as xr

        df = self.to_dataframe(session=session)
        sess = session or self.session
        ds = xr.Dataset(
            {
                "onset": ("annotation", df["onset"].to_numpy(float), {"units": "s", "long_name": "start, session clock"}),
                "duration": ("annotation", df["duration"].to_numpy(float), {"units": "s"}),
                "offset": ("annotation", df["offset"].to_numpy(float), {"units": "s", "long_name": "end, session clock"}),
                "label": ("annotation", df["label"].astype(str).to_numpy(object)),
                "reviewer": ("annotation", df["reviewer"].astype(str).to_numpy(object)),
                "scheme": ("annotation", df["scheme"].fillna("free").astype(str).to_numpy(object)),
                "intensity": ("annotation", df["intensity"].to_numpy(float), {"units": "1"}),
                "confidence": ("annotation", df["confidence"].to_numpy(float), {"units": "1"}),
                "note": ("annotation", df["note"].fillna("").astype(str).to_numpy(object)),
                "session": ("annotation", df["session"].astype(str).to_numpy(object)),
            },
            coords={"annotation": df["id"].astype(str).to_numpy(object)},
            attrs={"store": str(self.path), "session": sess or "", "schema_version": SCHEMA_VERSION,
                   "t0": 0.0, "modality": "annotations"},
        )
        return ds

    # ------------------------------------------------------------------ files
    def export(self, path, *, session: str | None = None, format: str | None = None,
               include_deleted: bool = False) -> Path:
        """Write annotations to CSV, BIDS ``events.tsv`` (+ ``events.json``) or ELAN ``.eaf``.

        The format follows the suffix (``.csv``, ``.tsv``, ``.eaf``) unless ``format`` is given.
        """
        from .formats import export_annotations

        return export_annotations(self, path, session=session, format=format, include_deleted=include_deleted)

    def import_file(self, path, *, session: str | None = None, reviewer: str | None = None,
                    scheme: str | None = None, format: str | None = None) -> list[dict]:
        """Add the annotations of a CSV, BIDS ``events.tsv`` or ELAN ``.eaf`` file; returns the new rows.

        The import is one transaction (all rows or none) and idempotent: rows whose id is in the
        store are skipped, and so are rows without an id (ELAN files, foreign CSV/TSV) whose
        session, reviewer, onset, offset (to the millisecond), label and note match an annotation
        already stored. Importing twice, or again after an interrupted import, adds nothing twice.
        A row that cannot be read raises :class:`~emonb.errors.EmonbFormatError` naming the file
        and the row, and nothing is added.
        """
        from .formats import import_annotations

        return import_annotations(self, path, session=session, reviewer=reviewer, scheme=scheme, format=format)

