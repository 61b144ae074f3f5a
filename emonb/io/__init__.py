"""Readers for every modality, behind one small registry (entry-point group ``emonb.readers``).

Built-in readers register the same way a plugin does. Each reader is a :class:`Reader`: a name, the
kind of node it produces (``video``, ``audio``, ``physio``, ``transcript``), the file extensions it
claims, and a ``load(path, **options)`` callable returning an :class:`xarray.Dataset`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .._checks import check_file, check_option
from ..errors import EmonbFormatError, EmonbValueError
from ..registry import Registry

__all__ = ["Reader", "READERS", "register_reader", "find_reader", "read"]

KINDS = ("video", "image", "audio", "physio", "transcript")


@dataclass(frozen=True)
class Reader:
    """A file reader.

    Parameters
    ----------
    name : str
        Registry name.
    kind : {"video", "image", "audio", "physio", "transcript"}
    extensions : tuple of str
        Lower-case suffixes with the dot (``(".csv", ".tsv")``).
    load : str or callable
        ``"module:function"`` (imported on first use) or a callable ``load(path, **options)``.
    sniff : callable, optional
        ``sniff(path) -> bool`` for files whose suffix is ambiguous (``.txt``).
    priority : int
        Higher wins when several readers claim a file.
    """

    name: str
    kind: str
    extensions: tuple[str, ...]
    load: str | Callable
    sniff: Callable | None = None
    priority: int = 0
    description: str = ""

    def __post_init__(self):
        check_option("kind", self.kind, KINDS)

    def __call__(self, path, **options):
        fn = self.load
        if isinstance(fn, str):
            mod, _, attr = fn.partition(":")
            fn = getattr(importlib.import_module(mod), attr)
        return fn(path, **options)

    def claims(self, path: Path) -> bool:
        if path.suffix.lower() not in self.extensions:
            return False
        if self.sniff is None:
            return True
        try:
            return bool(self.sniff(path))
        except Exception:
            return False


def _validate(obj) -> None:
    if not isinstance(obj, Reader):
        raise EmonbValueError(f"a reader plugin must be an emonb.io.Reader, got {type(obj).__name__}")


def _builtins(reg: Registry) -> None:
    for mod in ("emonb.io.video", "emonb.io.audio", "emonb.io.physio", "emonb.io.transcript"):
        for reader in importlib.import_module(mod).READERS:
            reg.register(reader)


READERS: Registry[Reader] = Registry("emonb.readers", "reader", validate=_validate, builtins=_builtins)


def register_reader(reader: Reader, *, overwrite: bool = False) -> Reader:
    """Register a reader; it is then used by the ``load_*`` functions for the files it claims."""
    return READERS.register(reader, overwrite=overwrite)


def find_reader(path, kind: str | tuple[str, ...]) -> Reader:
    """The highest-priority reader of ``kind`` that claims ``path``."""
    p = Path(path)
    kinds = (kind,) if isinstance(kind, str) else tuple(kind)
    cands = [r for _, r in READERS.items() if r.kind in kinds and r.claims(p)]
    if not cands:
        exts = sorted({e for _, r in READERS.items() if r.kind in kinds for e in r.extensions})
        raise EmonbFormatError(
            p, f"no {'/'.join(kinds)} reader for files ending in {p.suffix or '(no suffix)'!r}",
            hint="supported: " + " ".join(exts),
        )
    return max(cands, key=lambda r: r.priority)


def read(path, kind: str, **options):
    """Load ``path`` with the reader registered for its format."""
    p = check_file(path, what=f"{kind} file")
    return find_reader(p, kind)(p, **options)


from .. import accessor as _accessor  # noqa: E402,F401  (registers the .emonb accessors)
