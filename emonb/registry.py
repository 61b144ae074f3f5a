"""A small registry for readers, models and fusion methods.

Built-ins and third-party plugins register the same way: through an entry-point group
(``emonb.readers``, ``emonb.models``, ``emonb.fusion``) or by calling :meth:`Registry.register`.
A plugin that fails to import (usually a missing optional dependency) is skipped with a warning
and listed in :meth:`Registry.unavailable` with the reason, never raised at import time.
"""

from __future__ import annotations

import warnings
from importlib import metadata
from typing import Callable, Generic, Iterator, TypeVar

from .errors import EmonbValueError, EmonbWarning

T = TypeVar("T")

__all__ = ["Registry"]


class Registry(Generic[T]):
    """Name -> object mapping filled lazily from an entry-point group.

    Parameters
    ----------
    group : str
        Entry-point group, for example ``"emonb.readers"``.
    kind : str
        What the entries are, used in messages (``"reader"``, ``"model"``).
    validate : callable, optional
        Called on each object before registration; raises on a malformed plugin.
    builtins : callable, optional
        Registers the built-in entries; called once before entry points, so the registry works
        from a source checkout where the package metadata is not installed.
    """

    def __init__(self, group: str, kind: str, *, validate: Callable[[T], None] | None = None,
                 builtins: Callable[["Registry[T]"], None] | None = None):
        self.group = group
        self.kind = kind
        self._validate = validate
        self._builtins = builtins
        self._items: dict[str, T] = {}
        self._unavailable: dict[str, str] = {}
        self._loaded = False

    # -- loading -------------------------------------------------------------------------
    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if self._builtins is not None:
            self._builtins(self)
        try:
            eps = metadata.entry_points(group=self.group)
        except Exception:  # pragma: no cover - broken metadata
            eps = []
        for ep in eps:
            if ep.name in self._items:
                continue  # built-in already registered (editable installs list them too)
            try:
                obj = ep.load()
            except Exception as exc:  # a broken plugin must not break emonb
                self._unavailable[ep.name] = f"{type(exc).__name__}: {exc}"
                warnings.warn(
                    f"emonb {self.kind} plugin {ep.name!r} ({ep.value}) was skipped: {exc}",
                    EmonbWarning, stacklevel=3,
                )
                continue
            try:
                self.register(obj, name=ep.name)
            except Exception as exc:
                self._unavailable[ep.name] = f"{type(exc).__name__}: {exc}"
                warnings.warn(f"emonb {self.kind} plugin {ep.name!r} is malformed: {exc}",
                              EmonbWarning, stacklevel=3)

    # -- public --------------------------------------------------------------------------
    def register(self, obj: T, *, name: str | None = None, overwrite: bool = False) -> T:
        """Add ``obj`` under ``name`` (default: ``obj.name``) and return it."""
        name = name or getattr(obj, "name", None)
        if not name:
            raise EmonbValueError(f"a {self.kind} needs a name")
        if self._validate is not None:
            self._validate(obj)
        if name in self._items and not overwrite and self._items[name] is not obj:
            raise EmonbValueError(
                f"a {self.kind} named {name!r} is already registered; pass overwrite=True to replace it"
            )
        self._items[name] = obj
        self._unavailable.pop(name, None)
        return obj

    def unregister(self, name: str) -> None:
        self._load()
        self._items.pop(name, None)

    def get(self, name: str) -> T:
        self._load()
        try:
            return self._items[name]
        except KeyError:
            pass
        if name in self._unavailable:
            raise EmonbValueError(
                f"{self.kind} {name!r} is installed but unavailable: {self._unavailable[name]}"
            )
        known = ", ".join(sorted(self._items)) or "none"
        raise EmonbValueError(f"unknown {self.kind} {name!r}; registered: {known}")

    def names(self) -> list[str]:
        self._load()
        return list(self._items)

    def items(self) -> list[tuple[str, T]]:
        self._load()
        return list(self._items.items())

    def unavailable(self) -> dict[str, str]:
        """Plugins that were found but skipped, with the reason."""
        self._load()
        return dict(self._unavailable)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"<Registry {self.group}: {', '.join(self.names())}>"
