"""One exception root for everything emonb raises on purpose.

Every error names the file (when there is one) and the problem in plain words, so a user
never has to read a traceback from deep inside a dependency.
"""

from __future__ import annotations

import os

__all__ = [
    "EmonbError",
    "EmonbFileError",
    "EmonbFormatError",
    "EmonbValueError",
    "EmonbManifestError",
    "EmonbModelError",
    "EmonbDependencyError",
    "EmonbWarning",
]


class EmonbError(Exception):
    """Root of all errors raised by emonb."""


class EmonbFileError(EmonbError, OSError):
    """A file is missing, unreadable, empty, truncated or corrupt.

    Parameters
    ----------
    path : str or os.PathLike
        The file the problem is about.
    problem : str
        What is wrong, in plain words.
    hint : str, optional
        What the user can do about it.
    """

    def __init__(self, path, problem: str, hint: str | None = None):
        self.path = os.fspath(path) if path is not None else None
        self.problem = problem
        self.hint = hint
        msg = f"{self.path}: {problem}" if self.path else problem
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)

    def __str__(self) -> str:  # OSError would otherwise format errno/strerror
        return self.args[0]


class EmonbFormatError(EmonbFileError):
    """A file exists but its format is not supported or cannot be understood."""


class EmonbValueError(EmonbError, ValueError):
    """An argument has a value that emonb cannot use."""


class EmonbManifestError(EmonbFormatError, EmonbValueError):
    """A session manifest has a field of the wrong type or value, a refused YAML construct, or a path
    outside its folder. Both a file error (it names the manifest) and a value error."""


class EmonbModelError(EmonbError):
    """A model's weights are missing, do not load, or do not match their spec."""


class EmonbDependencyError(EmonbError, ImportError):
    """An optional dependency needed for this step is not installed."""

    def __init__(self, package: str, extra: str | None = None, purpose: str | None = None):
        self.package = package
        self.extra = extra
        what = f" for {purpose}" if purpose else ""
        how = f'pip install "emonb[{extra}]"' if extra else f"pip install {package}"
        super().__init__(f"the optional package {package!r} is needed{what}; install it with: {how}")


class EmonbWarning(UserWarning):
    """Warnings emitted by emonb (skipped plugins, flagged data, guessed parameters)."""
