"""Text analysis: sentiment of transcript segments on the session clock.

emonb does not transcribe speech; it reads transcripts (WebVTT, SRT, CSV/TSV with start, end, text
and optional speaker columns) made by any speech-to-text tool or by hand.

>>> import emonb as eb
>>> text = eb.analyze_text("interview.vtt")      # doctest: +SKIP
"""

from __future__ import annotations

import importlib

_LAZY = {"analyze_text": ("emonb.models.text.analyze", "analyze_text"),
         "sentiment_scores": ("emonb.models.text.analyze", "sentiment_scores")}
__all__ = sorted(_LAZY)


def __getattr__(name):
    try:
        mod, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'emonb.models.text' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(mod), attr)
    globals()[name] = value
    return value


def __dir__():
    return __all__
