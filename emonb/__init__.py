"""emonb: offline, Jupyter-first multimodal emotion analysis on one session clock.

``import emonb`` is cheap: it loads no torch, mediapipe, onnxruntime, ipywidgets or av. Every public
name below resolves on first access (PEP 562 module ``__getattr__``).

>>> import emonb as eb
>>> tree = eb.sample_session()                   # doctest: +SKIP
>>> grid = eb.align(tree, rate=30)               # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_attributes
from ._version import __version__
from .errors import (EmonbDependencyError, EmonbError, EmonbFileError, EmonbFormatError,
                     EmonbModelError, EmonbValueError, EmonbWarning)

# public name -> (module, attribute); attribute None means the module itself
_LAZY: dict[str, tuple[str, str | None]] = {
    # loading and sessions
    "load_video": ("emonb.io.video", "load_video"),
    "load_image": ("emonb.io.video", "load_image"),
    "load_audio": ("emonb.io.audio", "load_audio"),
    "load_physio": ("emonb.io.physio", "load_physio"),
    "load_transcript": ("emonb.io.transcript", "load_transcript"),
    "load_session": ("emonb.session", "load_session"),
    "load_manifest": ("emonb.session", "load_manifest"),
    "sample_session": ("emonb.session", "sample_session"),
    "save_session": ("emonb.session", "save_session"),
    "open_session": ("emonb.session", "open_session"),
    "summarize": ("emonb.session", "summarize"),
    "align": ("emonb.alignment", "align"),
    "estimate_offset": ("emonb.sync", "estimate_offset"),
    # analysis (filled by the modality packages)
    "analyze": ("emonb.analysis", "analyze"),
    "analyze_face": ("emonb.models.face.analyze", "analyze_face"),
    "predict_face_images": ("emonb.models.face.analyze", "predict_face_images"),
    "analyze_voice": ("emonb.models.voice.analyze", "analyze_voice"),
    "predict_voice_clips": ("emonb.models.voice.analyze", "predict_voice_clips"),
    "analyze_physio": ("emonb.models.physio.analyze", "analyze_physio"),
    "analyze_text": ("emonb.models.text.analyze", "analyze_text"),
    "fuse": ("emonb.fusion", "fuse"),
    "spot_expressions": ("emonb.spotting", "spot_expressions"),
    "run_report": ("emonb.report", "run_report"),
    # namespaces
    "io": ("emonb.io", None),
    "models": ("emonb.models", None),
    "schema": ("emonb.schema", None),
    "sync": ("emonb.sync", None),
    "face": ("emonb.models.face", None),
    "voice": ("emonb.models.voice", None),
    "physio": ("emonb.models.physio", None),
    "text": ("emonb.models.text", None),
    "fusion": ("emonb.fusion", None),
    "spotting": ("emonb.spotting", None),
    "review": ("emonb.review", None),
    "widgets": ("emonb.widgets", None),
    "batch": ("emonb.batch", None),
    "subjects": ("emonb.subjects", None),
}

__all__ = sorted(
    list(_LAZY)
    + ["__version__", "EmonbError", "EmonbFileError", "EmonbFormatError", "EmonbValueError",
       "EmonbModelError", "EmonbDependencyError", "EmonbWarning"]
)


__getattr__, __dir__ = lazy_attributes("emonb", _LAZY, globals())


if TYPE_CHECKING:  # pragma: no cover
    from .alignment import align
    from .io.audio import load_audio
    from .io.physio import load_physio
    from .io.video import load_video
    from .session import load_session, open_session, sample_session, save_session
