"""Coding schemes: the label vocabularies a reviewer chooses from."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import EmonbValueError
from ..schema import AUS, EMOTIONS

#: Built-in coding schemes, by name.
SCHEMES: dict[str, tuple[str, ...]] = {
    "basic7": tuple(EMOTIONS),
    "facs": tuple(AUS),
}


def resolve_scheme(scheme: str | Sequence[str] | None, *, name: str | None = None
                   ) -> tuple[str, tuple[str, ...] | None]:
    """Return ``(scheme_name, labels)`` for a scheme name or a user-defined label list.

    Parameters
    ----------
    scheme : str, sequence of str or None
        ``"basic7"`` (:data:`emonb.schema.EMOTIONS`), ``"facs"`` (:data:`emonb.schema.AUS`), a list of
        labels (a user-defined scheme), or None (free labels, nothing checked).
    name : str, optional
        Name of a user-defined scheme (default ``"custom"``).

    Returns
    -------
    name : str
    labels : tuple of str or None
        None means any label is accepted.
    """
    if scheme is None:
        return (name or "free", None)
    if isinstance(scheme, str):
        if scheme in SCHEMES:
            return scheme, SCHEMES[scheme]
        raise EmonbValueError(f"unknown coding scheme {scheme!r}; use one of {sorted(SCHEMES)} "
                              "or pass a list of labels")
    labels = tuple(str(x) for x in scheme)
    if not labels:
        raise EmonbValueError("a user-defined coding scheme needs at least one label")
    if len(set(labels)) != len(labels):
        raise EmonbValueError(f"a coding scheme has duplicate labels: {labels}")
    return (name or "custom", labels)
