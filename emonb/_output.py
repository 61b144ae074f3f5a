"""Where emonb may write, and how: never over what it did not write, never half a store.

emonb writes a store (a zarr folder) only to a path that does not exist yet, to an empty folder, or
to a store it wrote itself. It recognises its own stores by the marker file :data:`STORE_MARKER`
that it puts inside each one (a small JSON with the emonb version), or, for stores written by
older versions, by emonb's attributes in the zarr root metadata (``emonb_version``; for aligned
grids ``session_id``, ``alignment`` and ``nodes``). Replacing one of its own stores needs
``overwrite=True`` (``--overwrite`` on the command line); a file or a folder that emonb did not
write is refused with an :class:`~emonb.errors.EmonbFileError` naming it, whatever ``overwrite``
says.

A store is written under a hidden temporary name beside its destination (``.<name>.partial-...``)
and renamed into place when it is complete, so an interrupted write never leaves half a store
under the real name, and an old store is replaced only once the new one is whole.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import re
import shutil
import time
import uuid
import warnings
from pathlib import Path
from typing import Callable

from .errors import EmonbFileError, EmonbValueError

__all__ = ["STORE_MARKER", "is_emonb_store", "check_store_target", "write_store", "install_store",
           "check_file_target", "write_file", "fresh_path", "ensure_folder", "staging_path"]

#: file inside every store emonb writes (JSON: ``{"emonb_store": kind, "emonb_version": ...}``)
STORE_MARKER = ".emonb-store"
#: how an error tells the user to replace one of emonb's own outputs (the CLI says ``--overwrite``)
OVERWRITE_HINT = "pass overwrite=True to replace it"
_STALE_AGE_S = 24 * 3600
_TEMP_RE = re.compile(r"\.(partial|replaced)-(?:(\d+)-)?[0-9a-f]{8}$")


def _abs(path) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise EmonbValueError(f"an output path must be a str or a path, got {type(path).__name__}")
    return Path(os.path.abspath(os.fspath(path)))


def _tag() -> str:
    return f"{os.getpid()}-{uuid.uuid4().hex[:8]}"


def staging_path(final, kind: str = "partial") -> Path:
    """A hidden sibling of ``final`` that does not exist: ``.<name>.partial-<pid>-<random>``."""
    final = _abs(final)
    return final.parent / f".{final.name}.{kind}-{_tag()}"


def store_marker(kind: str) -> dict:
    from ._version import __version__

    # every chunk is written (emonb.session._write_zarr), so a chunk missing later is damage
    return {"emonb_store": kind, "emonb_version": __version__, "all_chunks_written": True,
            "written": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


@contextlib.contextmanager
def quiet_markers():
    """Hide zarr's warning about emonb's marker files when it lists a store without consolidated metadata."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Object at (\.emonb-store|emonb_batch_complete\.json) is not "
                                                  r"recognized as a component of a Zarr hierarchy")
        yield


def _read_json(p: Path):
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def _root_attrs(p: Path) -> dict:
    """The root attributes of a zarr store (v2 ``.zattrs``/``.zmetadata`` or v3 ``zarr.json``)."""
    attrs = _read_json(p / ".zattrs")
    if isinstance(attrs, dict):
        return attrs
    meta = _read_json(p / ".zmetadata")
    if isinstance(meta, dict) and isinstance(meta.get("metadata"), dict):
        attrs = meta["metadata"].get(".zattrs")
        if isinstance(attrs, dict):
            return attrs
    meta = _read_json(p / "zarr.json")
    if isinstance(meta, dict) and isinstance(meta.get("attributes"), dict):
        return meta["attributes"]
    return {}


def is_emonb_store(path) -> bool:
    """Whether ``path`` is a store folder that emonb wrote (its marker, or emonb's zarr root attrs)."""
    p = _abs(path)
    if p.is_symlink() or not p.is_dir():
        return False
    marker = _read_json(p / STORE_MARKER)
    if isinstance(marker, dict) and "emonb_store" in marker:
        return True
    attrs = _root_attrs(p)
    if "emonb_version" in attrs:  # a session store written before the marker existed
        return True
    return {"session_id", "alignment", "nodes"} <= set(attrs)  # an aligned grid from an older emonb


def _refuse(p: Path, problem: str, hint: str | None = None):
    raise EmonbFileError(p, problem, hint)


def check_store_target(path, *, overwrite: bool = False, exclusive: bool = False) -> str:
    """Raise unless emonb may write a store at ``path``; say what is there.

    Returns ``"new"`` (nothing there), ``"empty"`` (an empty folder) or ``"replace"`` (an emonb
    store, with ``overwrite=True``). ``exclusive`` refuses an existing store even with ``overwrite``.
    """
    p = _abs(path)
    if p.is_symlink():
        _refuse(p, "is a symbolic link; emonb does not write through links or replace them",
                "give the real path of a new or emonb-written store")
    if not p.exists():
        parent = next((q for q in p.parents if q.exists()), None)
        if parent is not None and not parent.is_dir():
            _refuse(p, f"cannot be created: {parent} is a file, not a folder")
        return "new"
    if not p.is_dir():
        _refuse(p, "exists and is a file, not a store emonb wrote; emonb never overwrites it",
                "choose a new path for the store")
    if is_emonb_store(p):
        state = "replace"
        if exclusive:
            _refuse(p, "an emonb store already exists here (mode='w-' never replaces one)")
        if not overwrite:
            _refuse(p, "an emonb store already exists here", OVERWRITE_HINT)
    else:
        try:
            empty = not any(p.iterdir())
        except OSError as exc:
            _refuse(p, f"cannot be read ({exc.strerror or exc})")
        if not empty:
            _refuse(p, "exists and is not a store emonb wrote (it holds other files); emonb never deletes "
                       "or writes into it", "choose a new path for the store")
        state = "empty"
    cwd = Path.cwd()
    if p == cwd or p in cwd.parents:
        _refuse(p, "is the current folder (or holds it); emonb does not replace it",
                "give the store a name of its own, for example out.zarr")
    return state


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill would terminate the process there: rely on the age alone
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _clean_stale(final: Path) -> None:
    """Remove temporary siblings of ``final`` left by writers that died (never the only copy of a store)."""
    try:
        entries = list(final.parent.iterdir())
    except OSError:
        return
    prefix = f".{final.name}."
    now = time.time()
    for e in entries:
        if not e.name.startswith(prefix):
            continue
        m = _TEMP_RE.fullmatch(e.name[len(prefix) - 1:])
        if not m or e.is_symlink():
            continue
        kind, pid = m.group(1), m.group(2)
        try:
            old = now - e.lstat().st_mtime > _STALE_AGE_S
        except OSError:
            continue
        dead = pid is None or not _alive(int(pid)) or old
        if not dead:
            continue
        if kind == "replaced" and not is_emonb_store(final):
            continue  # the replaced store may be the only copy left: keep it
        if e.is_dir():
            shutil.rmtree(e, ignore_errors=True)
        else:
            try:
                e.unlink()
            except OSError:
                pass


def ensure_folder(path) -> Path:
    """Create a folder (and its parents) for outputs; a clear error when a file is in the way."""
    p = _abs(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        _refuse(p, "is a file, not a folder; emonb writes its outputs into a folder")
    except OSError as exc:
        _refuse(p, f"the folder cannot be created ({exc.strerror or exc})")
    return p


def install_store(tmp, final, *, overwrite: bool = False, exclusive: bool = False) -> Path:
    """Rename the complete store ``tmp`` to ``final`` (checked as :func:`check_store_target` does).

    An emonb store at ``final`` is moved aside first and deleted only once the new one is in place.
    """
    tmp, final = _abs(tmp), _abs(final)
    state = check_store_target(final, overwrite=overwrite, exclusive=exclusive)
    try:
        if state == "empty":
            os.rmdir(final)  # fails, and so refuses, if something was put there meanwhile
        if state == "replace":
            old = staging_path(final, "replaced")
            os.replace(final, old)
            try:
                os.replace(tmp, final)
            except BaseException:
                os.replace(old, final)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, final)
    except OSError as exc:
        raise EmonbFileError(final, f"the store could not be put in place ({exc.strerror or exc}); "
                                    "nothing there was changed") from None
    return final


def write_store(path, write: Callable[[Path], object], *, overwrite: bool = False, exclusive: bool = False,
                kind: str = "session") -> Path:
    """Write a store with ``write(tmp)`` into a temporary sibling, add the marker, rename into place.

    ``path`` is checked before anything is written (:func:`check_store_target`). On any error the
    temporary folder is removed and whatever was at ``path`` is left as it was.
    """
    final = _abs(path)
    check_store_target(final, overwrite=overwrite, exclusive=exclusive)
    ensure_folder(final.parent)
    _clean_stale(final)
    tmp = staging_path(final)
    try:
        write(tmp)
        if not tmp.is_dir():
            raise EmonbFileError(final, "the store was not written (the writer made no folder)")
        (tmp / STORE_MARKER).write_text(json.dumps(store_marker(kind), indent=1))
        install_store(tmp, final, overwrite=overwrite, exclusive=exclusive)
    except BaseException:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists() or tmp.is_symlink():
            tmp.unlink()
        raise
    return Path(path)


def mark_store(path, kind: str = "session") -> None:
    """Add the marker to an emonb store updated in place (stores from older versions have none)."""
    p = _abs(path)
    if not (p / STORE_MARKER).is_file():
        marker = store_marker(kind)
        marker["all_chunks_written"] = False  # the older parts of this store may have skipped empty chunks
        (p / STORE_MARKER).write_text(json.dumps(marker, indent=1))


# -- single files (reports and their sidecars) -----------------------------------------------------------
def check_file_target(path, *, overwrite: bool, ours: Callable[[Path], bool], what: str) -> bool:
    """Raise unless emonb may write the file ``path``; True when it would replace one of its own.

    ``what`` names the file with its article ("an HTML report"). A file emonb did not write
    (``ours(path)`` is false) is refused whatever ``overwrite`` says.
    """
    p = _abs(path)
    if p.is_symlink():
        _refuse(p, f"is a symbolic link; emonb does not write {what} through links",
                "give the real path of a new file")
    if not p.exists():
        return False
    if not p.is_file():
        _refuse(p, f"exists and is not a file; emonb cannot write {what} there", "choose another name")
    if not ours(p):
        _refuse(p, f"exists and is not {what} that emonb wrote; emonb never overwrites it",
                "choose another name, or move the file away")
    if not overwrite:
        _refuse(p, f"{what} that emonb wrote already exists here", OVERWRITE_HINT)
    return True


def write_file(path, data: str | bytes) -> Path:
    """Write a file through a temporary sibling and an atomic rename."""
    p = _abs(path)
    tmp = staging_path(p)
    try:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)
        os.replace(tmp, p)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    return Path(path)


def fresh_path(path) -> Path:
    """Claim ``path``, or ``<stem>-2<suffix>``, ``-3``, ... whichever does not exist yet (created empty).

    The name is taken with an exclusive create, so two writers never get the same one and a file
    that exists is never touched.
    """
    p = _abs(path)
    for n in range(1, 10_000):
        cand = p if n == 1 else p.with_name(f"{p.stem}-{n}{p.suffix}")
        try:
            fd = os.open(cand, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return cand
    raise EmonbFileError(p, "no free name beside it (tried 9999)")
