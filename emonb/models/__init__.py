"""Model registry: specs as data, runtimes built lazily.

>>> import emonb as eb
>>> eb.models.list_models()            # doctest: +SKIP
>>> spec = eb.models.get_model("mini-xception-fer")   # doctest: +SKIP
>>> runtime = spec.create(device="auto")               # weights load on first use

Built-in specs live in ``emonb/models/<modality>/specs.py`` (a ``SPECS`` list each); plugins
register a :class:`ModelSpec` through the ``emonb.models`` entry-point group or
:func:`register_model`.
"""

from __future__ import annotations

import importlib
from typing import Sequence

from .._checks import check_option, check_file
from ..errors import EmonbValueError
from ..registry import Registry
from .device import resolve_device
from .spec import WEIGHTS_DIR, ModelSpec, sha256_file

__all__ = [
    "ModelSpec", "list_models", "get_model", "register_model", "model_from_file",
    "resolve_device", "MODEL_REGISTRY", "WEIGHTS_DIR", "sha256_file",
]

_BUILTIN_SPEC_MODULES = (
    "emonb.models.face.specs",
    "emonb.models.voice.specs",
    "emonb.models.physio.specs",
    "emonb.models.text.specs",
)


def _validate(obj) -> None:
    if not isinstance(obj, ModelSpec):
        raise EmonbValueError(f"a model plugin must be an emonb ModelSpec, got {type(obj).__name__}")


def _builtins(reg: Registry) -> None:
    for mod in _BUILTIN_SPEC_MODULES:
        try:
            m = importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name == mod:
                continue  # this modality has no built-in models yet
            raise
        for spec in getattr(m, "SPECS", ()):
            reg.register(spec)


MODEL_REGISTRY: Registry[ModelSpec] = Registry("emonb.models", "model", validate=_validate, builtins=_builtins)


def register_model(spec: ModelSpec, *, overwrite: bool = False) -> ModelSpec:
    """Register a model spec so every analysis function can use it by name."""
    return MODEL_REGISTRY.register(spec, overwrite=overwrite)


def get_model(name: str | ModelSpec) -> ModelSpec:
    """The spec registered under ``name`` (a spec passes through unchanged)."""
    if isinstance(name, ModelSpec):
        return name
    return MODEL_REGISTRY.get(name)


def list_models(modality: str | None = None, task: str | None = None):
    """A table of the registered models: name, modality, task, runtime, outputs, license, limits.

    Returns
    -------
    pandas.DataFrame
        One row per model, indexed by name.
    """
    import pandas as pd

    rows = []
    for name, spec in MODEL_REGISTRY.items():
        if modality and spec.modality != modality:
            continue
        if task and spec.task != task:
            continue
        rows.append({
            "name": name, "modality": spec.modality, "task": spec.task, "runtime": spec.runtime,
            "version": spec.version, "outputs": ", ".join(spec.outputs), "license": spec.license,
            "training_data": spec.training_data, "limitations": spec.limitations,
        })
    cols = ["name", "modality", "task", "runtime", "version", "outputs", "license",
            "training_data", "limitations"]
    return pd.DataFrame(rows, columns=cols).set_index("name")


def model_from_file(path, labels: Sequence[str], *, name: str | None = None, modality: str = "face",
                    task: str = "expression", input_size: tuple[int, int] | None = None,
                    license: str = "user-supplied", description: str = "", register: bool = True,
                    overwrite: bool = False, **params) -> ModelSpec:
    """Turn any ONNX or TorchScript file plus a label list into a registered model.

    Parameters
    ----------
    path : str or Path
        ``.onnx`` file, or a TorchScript ``.pt``/``.pth``/``.torchscript`` file.
    labels : sequence of str
        Output labels in the model's output order; emotion names are mapped onto the emonb
        vocabulary (``"happy"`` -> ``"happiness"``).
    input_size : (height, width), optional
        For image models: the crop size the model expects.
    """
    from ..schema import EMOTION_ALIASES

    p = check_file(path, what="model file")
    runtime = "onnx" if p.suffix.lower() == ".onnx" else "torchscript"
    labels = [str(label) for label in labels]
    if not labels:
        raise EmonbValueError(f"{p}: a model needs at least one output label")
    label_map = {lab: EMOTION_ALIASES[lab.lower()] for lab in labels if lab.lower() in EMOTION_ALIASES}
    spec = ModelSpec(
        name=name or p.stem, modality=check_option("modality", modality, ("face", "voice", "physio", "text")),
        task=task, runtime=runtime,
        factory=f"emonb.models.runtimes:build_{runtime}", outputs=tuple(labels),
        weights=str(p.resolve()), sha256=sha256_file(p), license=license,
        description=description or f"user {runtime} model from {p.name}",
        input_size=tuple(input_size) if input_size else None, label_map=label_map, params=params,
    )
    if register:
        register_model(spec, overwrite=overwrite)
    return spec
