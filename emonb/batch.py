"""Analyse many sessions on ``dask.distributed``: one task per session, failures isolated, resumable.

>>> import emonb as eb
>>> result = eb.batch.run_batch("data/*/session.yaml", "results/", workers=4)  # doctest: +SKIP
>>> result.failed                                                               # doctest: +SKIP

Each session is loaded, analysed (:func:`emonb.analyze`), fused (late fusion, a ``fused`` node),
written to ``<out>/<session_id>.zarr`` and, when asked, rendered to ``<out>/<session_id>.html``.
A store is first written under a temporary name and renamed when it is complete, with a completion
marker inside it, so an interrupted batch never leaves something that looks finished: the next run
skips the finished sessions and redoes the rest.

Paths (sources and ``out``) must be visible under the same names to this process and to every
worker, which is always the case on the default local cluster and needs a shared file system on a
real one.
"""

from __future__ import annotations

import datetime as _dt
import glob as _glob
import html as _html
import json
import os
import re
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ._checks import check_option, check_positive
from .errors import EmonbError, EmonbFileError, EmonbFormatError, EmonbValueError

__all__ = ["COMPLETE_MARKER", "BatchResult", "SessionResult", "add_batch_command", "run_batch"]

#: file written inside a session store once it is complete (the resume check looks for it)
COMPLETE_MARKER = "emonb_batch_complete.json"
SUMMARY_NAME = "batch_summary"
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".wmv", ".flv",
                  ".mts", ".ts")
MANIFEST_SUFFIXES = (".yaml", ".yml")
#: manifest file names too generic to name a session: the folder name is used instead
_GENERIC_STEMS = {"session", "manifest", "index", "config", "video", "recording", "face", "camera"}
_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS")
_STATUSES = ("ok", "failed", "skipped")


# -- results ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SessionResult:
    """What happened to one session of a batch.

    Attributes
    ----------
    session_id : str
        Unique within the batch; names ``<out>/<session_id>.zarr``.
    source : str
        The manifest, session store or video file it came from.
    kind : {"manifest", "store", "video", "unknown"}
    status : {"ok", "failed", "skipped"}
        ``skipped``: a finished store (and report, when asked) was already there.
    seconds : float
        Wall time of the task on its worker (0 when skipped).
    peak_memory_mb : float
        Peak resident memory of the worker process while the session ran (MiB, sampled every
        50 ms); NaN when unknown.
    store, report : str
        Paths written (empty when not written).
    error : str
        ``"ErrorClass: message"`` when the session failed, else empty.
    step_errors : str
        Analysis steps that failed while the session still finished (``"face: ..."``), see
        ``attrs["analysis"]`` in the store.
    subjects : str
        The people in view and their share of the analysed frames (``"S1 62%; S2 38%"``), from the
        face analysis (:func:`emonb.subjects.subject_shares`); empty without one.
    warnings : tuple of str
        Distinct warnings raised while the session ran.
    worker : str
        Address of the worker that ran it.
    """

    session_id: str
    source: str
    kind: str = "unknown"
    status: str = "failed"
    seconds: float = 0.0
    peak_memory_mb: float = float("nan")
    store: str = ""
    report: str = ""
    error: str = ""
    step_errors: str = ""
    subjects: str = ""
    warnings: tuple = field(default_factory=tuple)
    worker: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["warnings"] = list(self.warnings)
        return d


class BatchResult:
    """The outcome of :func:`run_batch`: one :class:`SessionResult` per session.

    Attributes
    ----------
    sessions : list of SessionResult
        In source order.
    out : pathlib.Path
        The output folder (stores, reports, ``batch_summary.json`` / ``.csv``).
    wall_seconds : float
        Wall time of the whole batch, cluster start included.
    workers : int or None
        Workers of the cluster that ran it (None when nothing had to run).
    scheduler : str
        Scheduler address (empty when nothing had to run).
    """

    def __init__(self, sessions: Sequence[SessionResult], out, *, wall_seconds: float = 0.0,
                 workers: int | None = None, scheduler: str = ""):
        self.sessions = list(sessions)
        self.out = Path(out)
        self.wall_seconds = float(wall_seconds)
        self.workers = workers
        self.scheduler = scheduler

    # selections
    def _with(self, status: str) -> list[SessionResult]:
        return [s for s in self.sessions if s.status == status]

    @property
    def ok(self) -> list[SessionResult]:
        """Sessions analysed and written in this run."""
        return self._with("ok")

    @property
    def failed(self) -> list[SessionResult]:
        """Sessions that failed, each with its ``error``."""
        return self._with("failed")

    @property
    def skipped(self) -> list[SessionResult]:
        """Sessions already finished by an earlier run (resume)."""
        return self._with("skipped")

    @property
    def all_ok(self) -> bool:
        """True when no session failed."""
        return not self.failed

    @property
    def stores(self) -> list[Path]:
        """Session stores that exist after the batch (analysed now or earlier)."""
        return [Path(s.store) for s in self.sessions if s.status in ("ok", "skipped") and s.store]

    def __len__(self) -> int:
        return len(self.sessions)

    def __iter__(self):
        return iter(self.sessions)

    def __getitem__(self, session_id: str) -> SessionResult:
        for s in self.sessions:
            if s.session_id == session_id:
                return s
        raise KeyError(session_id)

    def raise_for_failures(self) -> BatchResult:
        """Raise :class:`~emonb.errors.EmonbError` listing the failed sessions, if any."""
        if self.failed:
            lines = "\n".join(f"  {s.session_id} ({s.source}): {s.error}" for s in self.failed)
            raise EmonbError(f"{len(self.failed)} of {len(self)} session(s) failed:\n{lines}")
        return self

    def to_dataframe(self):
        """One row per session (index ``session_id``), the :class:`SessionResult` fields as columns."""
        import pandas as pd

        cols = [f.name for f in fields(SessionResult)]
        rows = [s.to_dict() for s in self.sessions]
        for r in rows:
            r["warnings"] = "; ".join(r["warnings"])
        return pd.DataFrame(rows, columns=cols).set_index("session_id")

    # display
    def _headline(self) -> str:
        counts = ", ".join(f"{len(self._with(s))} {s}" for s in _STATUSES)
        where = f" on {self.workers} worker(s)" if self.workers else ""
        return f"{len(self)} session(s): {counts} in {self.wall_seconds:.1f} s{where}"

    def format_table(self) -> str:
        """A plain-text table: session, status, seconds, peak memory, error (or the subjects in view)."""
        head = f"{'session':<24} {'status':<8} {'seconds':>8} {'peak MiB':>9}  error / note"
        lines = [head, "-" * len(head)]
        for s in self.sessions:
            mem = "" if s.peak_memory_mb != s.peak_memory_mb else f"{s.peak_memory_mb:.0f}"
            note = s.error or (f"step failed: {s.step_errors}" if s.step_errors else "") \
                or (f"subjects: {s.subjects}" if s.subjects else "")
            lines.append(f"{s.session_id[:24]:<24} {s.status:<8} {s.seconds:>8.1f} {mem:>9}  {note}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        lines = [f"BatchResult(out={str(self.out)!r}, {self._headline()})"]
        for s in self.failed[:10]:
            lines.append(f"  failed: {s.session_id} ({s.source}): {s.error}")
        if len(self.failed) > 10:
            lines.append(f"  ... and {len(self.failed) - 10} more failed (see .failed)")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        e = _html.escape
        rows = []
        colour = {"ok": "#1a7f37", "failed": "#cf222e", "skipped": "#57606a"}
        for s in self.sessions:
            mem = "" if s.peak_memory_mb != s.peak_memory_mb else f"{s.peak_memory_mb:.0f}"
            note = s.error or (f"step failed: {s.step_errors}" if s.step_errors else "") \
                or (f"subjects: {s.subjects}" if s.subjects else "")
            rows.append(
                f"<tr><td>{e(s.session_id)}</td><td style='color:{colour.get(s.status, '')}'>"
                f"<b>{e(s.status)}</b></td><td style='text-align:right'>{s.seconds:.1f}</td>"
                f"<td style='text-align:right'>{mem}</td><td>{e(s.store)}</td><td>{e(note)}</td></tr>")
        return (f"<div><b>emonb batch</b> &rarr; <code>{e(str(self.out))}</code>: {e(self._headline())}"
                "<table><thead><tr><th>session</th><th>status</th><th>seconds</th><th>peak MiB</th>"
                f"<th>store</th><th>error / note</th></tr></thead><tbody>{''.join(rows)}</tbody>"
                "</table></div>")


# -- sources ------------------------------------------------------------------------------------------
def _is_pattern(s: str) -> bool:
    return any(c in s for c in "*?[")


def _expand_sources(sources) -> list[Path]:
    """Glob strings are expanded (sorted); paths are kept as given."""
    if isinstance(sources, (str, os.PathLike)):
        items = [sources]
    elif isinstance(sources, (list, tuple)):
        items = list(sources)
        if not items:
            raise EmonbValueError("sources is an empty list: nothing to run")
    else:
        raise EmonbValueError("sources must be a glob pattern, a path or a list of paths, "
                              f"got {type(sources).__name__}")
    paths: list[Path] = []
    for item in items:
        if isinstance(item, str):
            if _is_pattern(item) and not os.path.exists(item):
                found = sorted(_glob.glob(os.path.expanduser(item), recursive=True))
                if not found:
                    raise EmonbFileError(item, "no files match this pattern",
                                         hint="check the pattern, and quote it on the command line")
                paths.extend(Path(f) for f in found)
                continue
            paths.append(Path(item).expanduser())
        elif isinstance(item, os.PathLike):
            paths.append(Path(item).expanduser())
        else:
            raise EmonbValueError(f"each source must be a path or a glob pattern, got {type(item).__name__}")
    if isinstance(sources, (str, os.PathLike)) and not _is_pattern(str(sources)) and not paths[0].exists():
        raise EmonbFileError(paths[0], "source not found")
    # the same file named twice is analysed once
    seen, unique = set(), []
    for p in paths:
        key = os.path.abspath(p)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def _source_kind(p: Path) -> tuple[str, Path]:
    """('manifest' | 'store' | 'video' | 'unknown', path to load)."""
    suffix = p.suffix.lower()
    if p.is_dir() and suffix != ".zarr":
        for name in ("session.yaml", "session.yml"):
            if (p / name).is_file():
                return "manifest", p / name
        return "unknown", p
    if suffix in MANIFEST_SUFFIXES:
        return "manifest", p
    if suffix == ".zarr":
        return "store", p
    if suffix in VIDEO_SUFFIXES:
        return "video", p
    return "unknown", p


def _raw_session_id(kind: str, p: Path) -> str:
    """A session id read cheaply, without loading the session."""
    if kind == "manifest":
        from .errors import EmonbError
        from .session import read_manifest

        try:
            _, m = read_manifest(p)  # no YAML aliases: an alias bomb in session_id stays small
        except EmonbError:
            m = None  # the task reports the broken manifest
        if isinstance(m, dict) and m.get("session_id"):
            return str(m["session_id"])
    if kind == "store":
        try:
            attrs = json.loads((p / ".zattrs").read_text())
        except (OSError, UnicodeDecodeError, ValueError):
            attrs = {}
        if isinstance(attrs, dict) and attrs.get("session_id"):
            return str(attrs["session_id"])
    if p.stem.lower() in _GENERIC_STEMS and p.resolve().parent.name:
        return p.resolve().parent.name  # data/s01/session.yaml, data/s01/video.mp4 -> s01
    return p.stem or p.name


def _safe_id(s: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", s.strip()).strip("._")
    return s or "session"


def _unique_ids(raw: Sequence[str], sources: Sequence[str] | None = None,
                out: Path | None = None) -> list[str]:
    """Safe, unique ids: a clash gets ``-2``, ``-3``, ...

    With ``out``, an id whose finished store there came from another source is taken too, so a
    re-run with a different set of sources never skips (or overwrites) a namesake's store.
    """
    taken: set[str] = set()

    def clash(sid: str, source: str | None) -> bool:
        if sid.lower() in taken:
            return True
        if out is None or source is None:
            return False
        owner = _marker(out / f"{sid}.zarr").get("source_abs")
        return owner is not None and owner != source

    ids = []
    for i, r in enumerate(raw):
        base = _safe_id(r)
        sid, n = base, 1
        while clash(sid, None if sources is None else sources[i]):
            n += 1
            sid = f"{base}-{n}"
        taken.add(sid.lower())
        ids.append(sid)
    return ids


def _marker(store: Path) -> dict:
    """The completion marker of a finished store, ``{}`` when there is none."""
    try:
        m = json.loads((store / COMPLETE_MARKER).read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    return m if isinstance(m, dict) else {"complete": True}


def _is_complete(store: Path) -> bool:
    return (store / COMPLETE_MARKER).is_file()


# -- the task (runs on a worker) -------------------------------------------------------------------------
class _PeakMemory:
    """Sample this process's resident memory in a background thread; ``peak_mb`` when stopped."""

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        try:
            import psutil
        except ImportError:  # psutil comes with distributed; stay harmless without it
            self._proc = None
        else:
            self._proc = psutil.Process()
            self._errors = (OSError, psutil.Error)

    def _sample(self):
        try:
            self.peak = max(self.peak, self._proc.memory_info().rss)
        except self._errors:  # skip this sample
            return

    def _run(self):
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self):
        if self._proc is not None:
            self._sample()
            self._thread = threading.Thread(target=self._run, daemon=True, name="emonb-peak-memory")
            self._thread.start()
        return self

    def __exit__(self, *exc):
        if self._proc is not None:
            self._stop.set()
            self._thread.join()
            self._sample()

    @property
    def peak_mb(self) -> float:
        return self.peak / 2**20 if self.peak else float("nan")


def _limit_threads(n: int = 1) -> None:
    """One thread per task for the numeric libraries already loaded in this worker process.

    Does nothing in a main process (an in-process cluster): the user's session keeps its settings.
    """
    import multiprocessing

    if multiprocessing.parent_process() is None:
        return
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads") and torch.get_num_threads() != n:
        torch.set_num_threads(n)
    cv2 = sys.modules.get("cv2")
    if cv2 is not None and hasattr(cv2, "setNumThreads"):
        cv2.setNumThreads(n)


def _load(kind: str, path: Path):
    from .session import open_source

    if kind in ("manifest", "store", "video"):
        return open_source(path)
    if path.is_dir():
        raise EmonbFormatError(path, "a folder that is neither a session store (.zarr) nor holds a "
                                     "session.yaml manifest")
    if not path.exists():
        raise EmonbFileError(path, "source not found")
    raise EmonbFormatError(path, "not a session source; expected a manifest (.yaml), a session store "
                                 f"(.zarr) or a video file ({', '.join(VIDEO_SUFFIXES)})")


def _write_store(tree, final: Path, marker: dict) -> None:
    """Write under a temporary name, add the completion marker, then rename into place.

    A finished emonb store of an earlier run is replaced; a folder emonb did not write is refused
    (the session fails with an error naming it), never deleted.
    """
    from ._output import write_store
    from .session import _write_session

    def write(tmp: Path) -> None:
        _write_session(tree, tmp)
        (tmp / COMPLETE_MARKER).write_text(json.dumps(marker, indent=1, default=str))

    write_store(final, write, overwrite=True, kind="session")


def _step_errors(tree) -> str:
    try:
        rec = json.loads(tree.attrs.get("analysis", "{}") or "{}")
    except (TypeError, ValueError):
        return ""
    return "; ".join(f"{k}: {v.get('error', '')}" for k, v in rec.items() if v.get("status") == "failed")


def _subjects(tree) -> str:
    """``"S1 62%; S2 38%"`` for the summary (empty without a face analysis)."""
    if "face" not in tree.children:
        return ""
    face = tree["face"].to_dataset()
    if "face_box" not in face or "time" not in face.dims:
        return ""
    from .subjects import subject_shares

    return subject_shares(face) or "no face found"


def _run_session(job: dict) -> dict:
    """Run one session end to end; never raises (the error goes into the returned record)."""
    t0 = time.perf_counter()
    rec = {"session_id": job["session_id"], "source": job["source"], "kind": job["kind"],
           "status": "failed", "store": "", "report": "", "error": "", "step_errors": "", "subjects": "",
           "warnings": (), "worker": ""}
    try:
        from distributed import get_worker

        rec["worker"] = get_worker().address
    except (ImportError, ValueError):  # not on a dask worker
        pass
    caught: list = []
    with _PeakMemory() as mem:
        try:
            _limit_threads(1)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                final = Path(job["store"])
                if job["stage"] == "all":
                    from .analysis import analyze

                    tree = _load(job["kind"], Path(job["path"]))
                    tree = analyze(tree, job["modalities"], device=job["device"],
                                   options=job["options"], errors="warn", progress=False)
                    _limit_threads(1)  # torch/cv2 may only now be loaded
                    rec["step_errors"] = _step_errors(tree)
                    rec["subjects"] = _subjects(tree)
                    if job["rate"]:
                        from .analysis import add_fusion

                        tree = add_fusion(tree, method="late", rate=job["rate"])
                    marker = {"session_id": job["session_id"], "source": job["source"],
                              "source_abs": job["source_abs"],
                              "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                              "seconds": round(time.perf_counter() - t0, 3),
                              "modalities": list(job["modalities"]), "options": job["options"],
                              "step_errors": rec["step_errors"]}
                    _write_store(tree, final, marker)
                rec["store"] = str(final)
                if job["report"]:
                    from .report import run_report

                    html = Path(job["report"])
                    try:
                        run_report(str(final), str(html), **{"overwrite": True, **job["report_parameters"]})
                    except Exception as exc:
                        raise _ReportFailed(f"{type(exc).__name__}: {exc}") from exc
                    rec["report"] = str(html)
            rec["status"] = "ok"
        except _ReportFailed as exc:
            rec["error"] = f"report failed: {exc}"
        except Exception as exc:  # noqa: BLE001  (failure isolation: the error goes into the record)
            rec["error"] = f"{type(exc).__name__}: {exc}"
        except BaseException as exc:  # noqa: BLE001  (KeyboardInterrupt, SystemExit in a worker thread)
            rec["error"] = f"{type(exc).__name__}: {exc}"
    msgs = []
    for w in caught:
        m = f"{w.category.__name__}: {w.message}"
        if m not in msgs:
            msgs.append(m)
    rec["warnings"] = tuple(msgs[:20])
    rec["seconds"] = round(time.perf_counter() - t0, 3)
    rec["peak_memory_mb"] = round(mem.peak_mb, 1)
    return rec


class _ReportFailed(Exception):
    pass


# -- the cluster --------------------------------------------------------------------------------------
def _check_address(address: str) -> str:
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import backends

    try:
        scheme, loc = parse_address(address, strict=False)
        if scheme not in backends:
            raise ValueError(f"unknown scheme {scheme!r} (known: {', '.join(sorted(backends))})")
        if scheme != "inproc":
            parse_host_port(loc)
    except ValueError as exc:
        raise EmonbValueError(f"bad dask scheduler address {address!r}: {exc}; expected something like "
                              "'tcp://host:8786'") from None
    return address


def _start_client(*, workers, scheduler, n_jobs: int, cluster_options: Mapping | None):
    """(client, cluster or None, owns_client)."""
    try:
        import distributed
    except ImportError:
        from .errors import EmonbDependencyError

        raise EmonbDependencyError("distributed", extra="batch", purpose="batch runs on dask") from None
    if scheduler is not None:
        if isinstance(scheduler, distributed.Client):
            return scheduler, None, False
        if hasattr(scheduler, "scheduler_address"):  # a dask Cluster object (SpecCluster, ...)
            return distributed.Client(scheduler), None, True
        if not isinstance(scheduler, str):
            raise EmonbValueError("scheduler must be an address such as 'tcp://host:8786', a "
                                  f"distributed.Client or a dask cluster, got {type(scheduler).__name__}")
        address = _check_address(scheduler)
        try:
            return distributed.Client(address), None, True
        except (OSError, TimeoutError) as exc:
            raise EmonbValueError(f"could not connect to the dask scheduler at {address!r}: {exc}") from None
    import logging

    n = workers or max(1, min(n_jobs, os.cpu_count() or 1))
    opts = {"n_workers": n, "threads_per_worker": 1, "processes": True, "dashboard_address": ":0",
            "silence_logs": logging.ERROR,
            "env": {k: "1" for k in _THREAD_ENV}}
    opts.update(dict(cluster_options or {}))
    try:
        cluster = distributed.LocalCluster(**opts)
    except Exception as exc:
        raise EmonbError(
            f"could not start a local dask cluster with {n} worker(s): {type(exc).__name__}: {exc}. "
            "In a script, call run_batch under `if __name__ == '__main__':` (worker processes "
            "re-import the main module)") from exc
    try:
        return distributed.Client(cluster), cluster, True
    except Exception:
        cluster.close()
        raise


def _n_workers(client) -> int | None:
    try:
        return len(client.scheduler_info().get("workers", {}))
    except Exception:  # noqa: BLE001  (only used for display)
        return None


# -- summary ------------------------------------------------------------------------------------------
def _write_summary(result: BatchResult, meta: dict) -> None:
    out = result.out
    doc = dict(meta)
    doc.update({"wall_seconds": round(result.wall_seconds, 3), "workers": result.workers,
                "scheduler": result.scheduler,
                "counts": {s: len(result._with(s)) for s in _STATUSES},
                "sessions": [s.to_dict() for s in result.sessions]})
    tmp = out / f".{SUMMARY_NAME}.json.tmp"
    tmp.write_text(json.dumps(doc, indent=1, default=str))
    os.replace(tmp, out / f"{SUMMARY_NAME}.json")
    tmp = out / f".{SUMMARY_NAME}.csv.tmp"
    result.to_dataframe().to_csv(tmp)
    os.replace(tmp, out / f"{SUMMARY_NAME}.csv")


# -- the public entry point ------------------------------------------------------------------------------
def run_batch(sources, out, *, workers: int | None = None, scheduler=None,
              modalities: Sequence[str] = ("face", "voice", "physio", "text"),
              options: Mapping[str, Mapping] | None = None, rate: float | None = 10.0,
              report: bool = False, report_parameters: Mapping | None = None, resume: bool = True,
              progress: bool = True, device: str = "auto",
              cluster_options: Mapping | None = None) -> BatchResult:
    """Analyse many sessions on dask, one task per session, and write one store per session.

    Parameters
    ----------
    sources : str, path or list of them
        A glob pattern (``"data/*/session.yaml"``, ``"videos/**/*.mp4"``), a path, or a list of
        paths and patterns. Each is a session manifest (``.yaml``, :func:`emonb.load_manifest`),
        a session store (``.zarr``, :func:`emonb.open_session`), a folder holding a
        ``session.yaml``, or a video file (its own audio track is used when it has one).
    out : str or path
        Output folder, created if needed: ``<session_id>.zarr`` per session,
        ``<session_id>.html`` with ``report=True``, and ``batch_summary.json`` / ``.csv``
        (updated as sessions finish).
    workers : int, optional
        Worker processes of the local cluster (one thread each; default: one per CPU core, at most
        one per session). Not allowed together with ``scheduler``.
    scheduler : str, distributed.Client or dask cluster, optional
        An existing cluster: its address (``"tcp://host:8786"``), a client, or a cluster object.
        A client passed in is left open.
    modalities : sequence of {"face", "voice", "physio", "text"}
        Analysis steps (:func:`emonb.analyze`); a step whose input a session lacks is skipped.
    options : dict, optional
        Per-modality options for :func:`emonb.analyze`, e.g. ``{"face": {"stride": 5}}``.
    rate : float or None
        Grid rate in Hz of the late fusion written as each session's ``fused`` node; ``None``
        writes no fusion.
    report : bool
        Also render ``<session_id>.html`` with :func:`emonb.run_report`.
    report_parameters : dict, optional
        Keyword parameters for :func:`emonb.run_report` (``modalities``, ``rate``, ...).
    resume : bool
        Skip sessions whose store is complete (and whose report exists, with ``report=True``).
        With ``False`` every session is redone and its outputs replaced.
    progress : bool
        A progress bar over finished sessions (``tqdm.auto``: a widget in Jupyter).
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"`` for the neural-network steps.
    cluster_options : dict, optional
        Extra keyword arguments for :class:`distributed.LocalCluster` (``memory_limit``,
        ``dashboard_address=":8787"``, ...).

    Returns
    -------
    BatchResult
        One :class:`SessionResult` per session (``.ok``, ``.failed``, ``.skipped``,
        ``.to_dataframe()``). A session that fails never stops the others: its error
        (``"ErrorClass: message"``) is in the result and in the summary files.

    Raises
    ------
    EmonbFileError
        A pattern that matches nothing (named in the message) or a single source that does not exist.
    EmonbValueError
        A bad argument or scheduler address, or a scheduler that cannot be reached.

    Notes
    -----
    Worker processes re-import the main module: in a script, call ``run_batch`` under
    ``if __name__ == "__main__":``. Each worker runs one session at a time with one thread for
    the numeric libraries (``OMP_NUM_THREADS=1``), so memory grows with the number of workers,
    not with threads. A store is written under a temporary name and renamed when complete, with
    ``emonb_batch_complete.json`` inside; a store without that marker (an interrupted run) is
    redone. Changing ``modalities`` or ``options`` does not invalidate finished stores: use
    ``resume=False`` (or delete them) to redo them.
    """
    from .analysis import STEPS

    t_start = time.perf_counter()
    if not isinstance(out, (str, os.PathLike)):
        raise EmonbValueError(f"out must be a folder path, got {type(out).__name__}")
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise EmonbFileError(out, "exists and is not a folder")
    if workers is not None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise EmonbValueError(f"workers must be a positive integer, got {workers!r}")
        if scheduler is not None:
            raise EmonbValueError("workers sets the size of the local cluster; it cannot be combined "
                                  "with scheduler= (size an existing cluster where it runs)")
    if isinstance(modalities, str):
        modalities = [m.strip() for m in modalities.split(",") if m.strip()]
    if not isinstance(modalities, (list, tuple)):
        raise EmonbValueError(f"modalities must be a list of names, got {type(modalities).__name__}")
    modalities = [check_option("modality", m, tuple(STEPS)) for m in modalities]
    if options is not None and not isinstance(options, Mapping):
        raise EmonbValueError(f"options must be a dict per modality, got {type(options).__name__}")
    options = {str(k): dict(v) for k, v in (options or {}).items()}
    unknown = set(options) - set(STEPS)
    if unknown:
        raise EmonbValueError(f"options for unknown modalities {sorted(unknown)}; expected {list(STEPS)}")
    if "face" in modalities:
        # sessions already run side by side, one per single-threaded worker: one face sequence each
        options.setdefault("face", {}).setdefault("parallel", 1)
    rate = check_positive("rate", rate, allow_none=True)
    for name, flag in (("report", report), ("resume", resume), ("progress", progress)):
        if not isinstance(flag, bool):
            raise EmonbValueError(f"{name} must be True or False, got {flag!r}")
    if report_parameters is not None and not isinstance(report_parameters, Mapping):
        raise EmonbValueError(f"report_parameters must be a dict, got {type(report_parameters).__name__}")
    if report_parameters and not report:
        raise EmonbValueError("report_parameters given but report=False")
    if not isinstance(device, str):
        raise EmonbValueError(f"device must be a string such as 'auto', got {type(device).__name__}")
    if cluster_options is not None and not isinstance(cluster_options, Mapping):
        raise EmonbValueError(f"cluster_options must be a dict, got {type(cluster_options).__name__}")
    if report:
        try:
            import emonb.report  # noqa: F401  (fail before any work, not once per session)
        except ImportError as exc:
            raise EmonbError(f"report=True needs emonb.report, which does not import: {exc}") from None

    paths = _expand_sources(sources)
    kinds = [_source_kind(p) for p in paths]
    abs_sources = [os.path.abspath(p) for p in paths]
    ids = _unique_ids([_raw_session_id(k, p) for k, p in kinds], abs_sources, out)
    out.mkdir(parents=True, exist_ok=True)

    meta = {"started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "out": str(out), "modalities": modalities, "options": options, "rate": rate,
            "report": report, "resume": resume, "device": device}
    results: dict[str, SessionResult] = {}
    jobs = []
    for src, src_abs, (kind, p), sid in zip(paths, abs_sources, kinds, ids):
        store = out / f"{sid}.zarr"
        html = out / f"{sid}.html"
        done = resume and _is_complete(store)
        if done and (not report or html.is_file()):
            results[sid] = SessionResult(sid, str(src), kind, "skipped", 0.0, float("nan"), str(store),
                                         str(html) if report else "")
            continue
        jobs.append({"session_id": sid, "source": str(src), "source_abs": src_abs, "kind": kind,
                     "path": str(p),
                     "store": str(store), "stage": "report" if done else "all",
                     "modalities": list(modalities), "options": options, "rate": rate,
                     "device": device, "report": str(html) if report else "",
                     "report_parameters": dict(report_parameters or {})})

    def assemble(wall=None, n_workers=None, address=""):
        ordered = [results[sid] if sid in results else
                   SessionResult(sid, str(src), k, "failed", error="not run (batch interrupted)")
                   for src, (k, _), sid in zip(paths, kinds, ids)]
        return BatchResult(ordered, out, wall_seconds=time.perf_counter() - t_start if wall is None else wall,
                           workers=n_workers, scheduler=address)

    if not jobs:
        result = assemble()
        _write_summary(result, meta)
        return result

    client, cluster, owns = _start_client(workers=workers, scheduler=scheduler, n_jobs=len(jobs),
                                          cluster_options=cluster_options)
    n_workers = _n_workers(client)
    address = str(getattr(client.scheduler, "address", "") or "")
    futures = {}
    bar = None
    try:
        from distributed import as_completed

        token = uuid.uuid4().hex[:8]
        for job in jobs:
            fut = client.submit(_run_session, job, key=f"emonb-batch-{job['session_id']}-{token}",
                                pure=False, retries=0)
            futures[fut] = job
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(paths), initial=len(paths) - len(jobs), desc="sessions", unit="session")
        for fut in as_completed(list(futures)):
            job = futures[fut]
            try:
                rec = fut.result()
            except Exception as exc:  # noqa: BLE001  (the worker died (KilledWorker), was cancelled, ...)
                died = "KilledWorker" in type(exc).__name__
                hint = " (the worker process died: out of memory?)" if died else ""
                rec = {"session_id": job["session_id"], "source": job["source"], "kind": job["kind"],
                       "status": "failed", "error": f"{type(exc).__name__}: {exc}{hint}"}
            results[job["session_id"]] = SessionResult(**rec)
            if bar is not None:
                bar.update(1)
                n_failed = sum(r.status == "failed" for r in results.values())
                if n_failed:
                    bar.set_postfix(failed=n_failed)
            _write_summary(assemble(n_workers=n_workers, address=address), meta)
    finally:
        if bar is not None:
            bar.close()
        pending = [f for f in futures if not f.done()]
        if pending:
            client.cancel(pending)
        if owns:
            client.close()
        if cluster is not None:
            cluster.close()
        result = assemble(n_workers=n_workers, address=address)
        meta["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        _write_summary(result, meta)
    return result


# -- command line -------------------------------------------------------------------------------------
def _parse_report_param(text: str):
    key, sep, value = text.partition("=")
    if not sep or not key:
        import argparse

        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    import yaml

    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError:
        return key.strip(), value


def _cmd_batch(args) -> int:
    sources = args.sources[0] if len(args.sources) == 1 else list(args.sources)
    mods = [m.strip() for m in args.modalities.split(",") if m.strip()]
    stride = args.stride if args.stride and args.stride != 1 and "face" in mods else None
    options = {"face": {"stride": stride}} if stride else None
    result = run_batch(sources, args.out, workers=args.workers, scheduler=args.scheduler, modalities=mods,
                       options=options, rate=args.rate, report=args.report,
                       report_parameters=dict(args.report_param or []) or None,
                       resume=not args.no_resume, progress=not args.quiet, device=args.device)
    print(result.format_table())
    print(f"\n{result._headline()}")
    print(f"summary: {result.out / (SUMMARY_NAME + '.json')} and .csv")
    return 0 if result.all_ok else 1


def add_batch_command(subparsers):
    """Register ``emonb batch`` on the CLI's sub-parsers; returns the new parser.

    ``emonb batch "data/*/session.yaml" --out results/ --workers 4 [--scheduler tcp://host:8786]
    [--modalities face,voice] [--stride N] [--report] [--no-resume]``. The handler prints a table
    and returns 0 when every session finished, 1 when some failed.
    """
    b = subparsers.add_parser(
        "batch", help="analyse many sessions on dask (a local cluster, or --scheduler)",
        description="Analyse many sessions, one dask task each: manifests (.yaml), session stores "
                    "(.zarr) or video files. Finished sessions are skipped on a re-run.")
    b.add_argument("sources", nargs="+",
                   help="glob pattern (quote it: \"data/*/session.yaml\") or paths")
    b.add_argument("--out", required=True, help="output folder: <session>.zarr, batch_summary.json/.csv")
    b.add_argument("--workers", type=int, default=None,
                   help="worker processes of the local cluster (default: one per CPU core)")
    b.add_argument("--scheduler", default=None, help="address of an existing dask scheduler, "
                                                      "e.g. tcp://host:8786")
    b.add_argument("--modalities", default="face,voice,physio,text", help="analysis steps, comma-separated")
    b.add_argument("--stride", type=int, default=1, help="analyse every n-th video frame")
    b.add_argument("--rate", type=float, default=10.0, help="fusion grid rate in Hz")
    b.add_argument("--device", default="auto", help="auto, cpu or cuda")
    b.add_argument("--report", action="store_true", help="also render <session>.html reports")
    b.add_argument("--report-param", action="append", type=_parse_report_param, metavar="KEY=VALUE",
                   help="report parameter (repeatable), e.g. --report-param blur_faces=true")
    b.add_argument("--no-resume", action="store_true", help="redo sessions that are already finished")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.add_argument("--allow-outside", action="store_true",
                   help="let manifests name files outside their own folder (only manifests you trust)")
    b.set_defaults(func=_cmd_batch)
    return b
