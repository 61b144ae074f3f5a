"""One validation helper set with uniform error messages."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Iterable

from .errors import EmonbDependencyError, EmonbFileError, EmonbValueError


def check_option(name: str, value, allowed: Iterable):
    """Return ``value`` if it is one of ``allowed``, else raise a uniform error.

    >>> check_option("method", "linear", ("linear", "nearest"))
    'linear'
    """
    allowed = tuple(allowed)
    if value not in allowed:
        opts = ", ".join(repr(a) for a in allowed)
        raise EmonbValueError(f"invalid value for {name}: {value!r}; expected one of {opts}")
    return value


def check_positive(name: str, value, *, allow_none: bool = False):
    """Return ``float(value)`` if it is a finite positive number."""
    if value is None and allow_none:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise EmonbValueError(f"{name} must be a positive number, got {value!r}") from None
    if not (v > 0 and v < float("inf")):
        raise EmonbValueError(f"{name} must be a positive number, got {value!r}")
    return v


def check_file(path, *, what: str = "file") -> Path:
    """Return ``path`` as a :class:`Path` if it is an existing, non-empty regular file."""
    if path is None:
        raise EmonbValueError(f"no {what} path given")
    try:
        p = Path(os.fspath(path)).expanduser()
    except TypeError:
        raise EmonbValueError(f"{what} must be a path, got {type(path).__name__}") from None
    if not p.exists():
        raise EmonbFileError(p, f"{what} not found")
    if p.is_dir():
        raise EmonbFileError(p, f"expected {'an' if what[:1] in 'aeiou' else 'a'} {what} but found a folder")
    if p.stat().st_size == 0:
        raise EmonbFileError(p, f"{what} is empty (0 bytes)")
    return p


def require(module: str, *, extra: str | None = None, purpose: str | None = None):
    """Import an optional dependency or raise :class:`EmonbDependencyError` with the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise EmonbDependencyError(module.split(".")[0], extra=extra, purpose=purpose) from None
