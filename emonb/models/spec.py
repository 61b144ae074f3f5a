"""Models described as data.

A :class:`ModelSpec` names a model, its modality and task, input size and rate, output labels,
weights file with SHA-256, runtime, license, citation, training data and known limitations. The
runtime object is built lazily from the spec (``spec.create(device=...)``); weights load on first
use, never at import or construction time, and never from the network.
"""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from .._checks import check_option
from ..errors import EmonbModelError, EmonbValueError

__all__ = ["ModelSpec", "WEIGHTS_DIR", "sha256_file", "RUNTIMES", "MODALITIES"]

#: Folder inside the package that holds the shipped default weights and their provenance.
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
RUNTIMES = ("torch", "torchscript", "onnx", "mediapipe", "sklearn", "python")
MODALITIES = ("face", "voice", "physio", "text", "fusion")

_HASH_CACHE: dict[tuple[str, float], str] = {}


def sha256_file(path) -> str:
    """SHA-256 hex digest of a file (cached per path and modification time)."""
    p = Path(path)
    key = (str(p.resolve()), p.stat().st_mtime)
    if key not in _HASH_CACHE:
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        _HASH_CACHE[key] = h.hexdigest()
    return _HASH_CACHE[key]


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to build, cite and judge a model.

    Parameters
    ----------
    name : str
        Registry name, for example ``"mini-xception-fer"``.
    modality : {"face", "voice", "physio", "text", "fusion"}
    task : str
        What it does: ``"expression"``, ``"landmarks"``, ``"vad"``, ``"speech_emotion"``, ...
    runtime : {"torch", "torchscript", "onnx", "mediapipe", "sklearn", "python"}
    factory : str
        ``"module:callable"`` that builds the runtime: ``callable(spec, device=...)``.
    outputs : tuple of str
        Output labels in the model's output order (mapped onto :mod:`emonb.schema`).
    weights : str, optional
        File name inside :data:`WEIGHTS_DIR`, or an absolute path for user weights.
    sha256 : str, optional
        Expected SHA-256 of the weights; checked on first load.
    license, citation, training_data, limitations, description : str
        Shown by :func:`emonb.models.list_models`, in reports and in widgets.
    input_size : tuple of int, optional
        Spatial input size (height, width) for image models.
    input_rate : float, optional
        Sampling rate in Hz for signal models.
    label_map : dict, optional
        Original label -> canonical label, for models with other vocabularies.
    params : dict, optional
        Default parameters passed to the runtime.
    """

    name: str
    modality: str
    task: str
    runtime: str
    factory: str
    outputs: tuple[str, ...] = ()
    version: str = "1"
    weights: str | None = None
    sha256: str | None = None
    license: str = "unknown"
    citation: str = ""
    training_data: str = ""
    limitations: str = ""
    description: str = ""
    input_size: tuple[int, ...] | None = None
    input_rate: float | None = None
    label_map: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if not self.name or not isinstance(self.name, str):
            raise EmonbValueError("a model spec needs a non-empty name")
        check_option("modality", self.modality, MODALITIES)
        check_option("runtime", self.runtime, RUNTIMES)
        if ":" not in self.factory:
            raise EmonbValueError(f"model {self.name!r}: factory must be 'module:callable', got {self.factory!r}")
        object.__setattr__(self, "outputs", tuple(self.outputs))

    # -- weights ---------------------------------------------------------------------------
    @property
    def weights_path(self) -> Path | None:
        if self.weights is None:
            return None
        p = Path(self.weights)
        return p if p.is_absolute() else WEIGHTS_DIR / p

    def check_weights(self) -> Path:
        """Return the weights path after checking it exists and matches ``sha256``."""
        p = self.weights_path
        if p is None:
            raise EmonbModelError(f"model {self.name!r} has no weights file")
        if not p.exists():
            raise EmonbModelError(f"model {self.name!r}: weights file not found: {p}")
        if self.sha256:
            got = sha256_file(p)
            if got != self.sha256:
                raise EmonbModelError(
                    f"model {self.name!r}: weights file {p} has SHA-256 {got[:12]}..., "
                    f"expected {self.sha256[:12]}... (corrupt or replaced file)"
                )
        return p

    # -- runtime ---------------------------------------------------------------------------
    def create(self, *, device: str = "auto", **params):
        """Build the runtime (weights still load lazily on first use)."""
        mod_name, _, attr = self.factory.partition(":")
        try:
            factory = getattr(importlib.import_module(mod_name), attr)
        except ImportError as exc:
            raise EmonbModelError(
                f"model {self.name!r} needs a package that is not installed ({exc.name}); "
                f"install the emonb extra for {self.modality!r}: pip install \"emonb[{self.modality}]\""
            ) from None
        except AttributeError:
            raise EmonbModelError(f"model {self.name!r}: factory {self.factory!r} not found") from None
        merged = {**self.params, **params}
        return factory(self, device=device, **merged)

    def replace(self, **changes) -> "ModelSpec":
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["outputs"] = list(self.outputs)
        d["input_size"] = list(self.input_size) if self.input_size else None
        return d

    def provenance(self, device: str | None = None) -> dict[str, Any]:
        """Attributes for a result node: ``model``, ``model_version``, ``model_license``, ..."""
        out = {
            "model": self.name,
            "model_version": self.version,
            "model_license": self.license,
            "model_citation": self.citation,
        }
        if device is not None:
            out["device"] = device
        return out

    def _repr_markdown_(self) -> str:
        rows = [("modality", self.modality), ("task", self.task), ("runtime", self.runtime),
                ("version", self.version), ("outputs", ", ".join(self.outputs)),
                ("license", self.license), ("training data", self.training_data),
                ("limitations", self.limitations), ("citation", self.citation)]
        body = "\n".join(f"| {k} | {v} |" for k, v in rows if v)
        return f"**{self.name}**: {self.description}\n\n| | |\n|---|---|\n{body}"
