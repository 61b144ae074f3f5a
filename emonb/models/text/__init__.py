"""Text analysis: sentiment of transcript segments on the session clock.

emonb does not transcribe speech; it reads transcripts (WebVTT, SRT, CSV/TSV with start, end, text
and optional speaker columns) made by any speech-to-text tool or by hand.

>>> import emonb as eb
>>> text = eb.analyze_text("interview.vtt")      # doctest: +SKIP
"""

from __future__ import annotations

from ..._lazy import lazy_attributes

_LAZY = {"analyze_text": ("emonb.models.text.analyze", "analyze_text"),
         "sentiment_scores": ("emonb.models.text.analyze", "sentiment_scores")}
__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_attributes("emonb.models.text", _LAZY, globals())
