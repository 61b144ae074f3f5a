"""Front-end sources (ES modules + CSS) of the widgets.

They live in the top-level ``widgets/`` folder of the repository; wheels carry a copy in
``emonb/widgets/static`` (hatch force-include). Read once, at import of this module.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from ..errors import EmonbFileError

_HERE = Path(__file__).resolve().parent


def asset_dir() -> Path:
    """The folder holding the widgets' ``.js`` and ``.css`` files."""
    static = _HERE / "static"
    if static.is_dir():
        return static
    repo = _HERE.parents[1] / "widgets"
    if repo.is_dir():
        return repo
    raise EmonbFileError(static, "the widgets' front-end files are missing from this installation",
                         "reinstall emonb")


@cache
def read_asset(name: str) -> str:
    """Text of one front-end file (e.g. ``"scrubber.js"``)."""
    p = asset_dir() / name
    if not p.is_file():
        raise EmonbFileError(p, "front-end file of a widget is missing", "reinstall emonb")
    return p.read_text(encoding="utf-8")
