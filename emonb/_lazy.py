"""One mechanism for lazy public names (PEP 562), used by every package that defers heavy imports."""

from __future__ import annotations

import importlib
from typing import Callable, Mapping


def lazy_attributes(module_name: str, names: Mapping[str, tuple[str, str | None]],
                    namespace: dict) -> tuple[Callable, Callable]:
    """Return ``(__getattr__, __dir__)`` for a module whose ``names`` resolve on first access.

    Parameters
    ----------
    module_name : str
        The module being defined (for error messages).
    names : mapping
        public name -> (module to import, attribute or ``None`` for the module itself).
    namespace : dict
        The module's ``globals()``: a resolved value is cached there.
    """

    def __getattr__(name: str):
        try:
            mod, attr = names[name]
        except KeyError:
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}") from None
        module = importlib.import_module(mod)
        value = module if attr is None else getattr(module, attr)
        namespace[name] = value
        return value

    def __dir__():
        return sorted(set(namespace.get("__all__", ())) | set(names))

    return __getattr__, __dir__
