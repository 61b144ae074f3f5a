"""Physiological signals: ECG, PPG, EDA, respiration, EMG, event-related epochs and remote PPG.

>>> import emonb as eb
>>> phys = eb.analyze_physio(tree)                           # doctest: +SKIP
>>> ev = eb.physio.events(tree, channel="photosensor")       # doctest: +SKIP
>>> ep = eb.physio.epochs(tree, ev, window=(-1, 10))         # doctest: +SKIP
>>> pulse = eb.physio.rppg(tree)                             # doctest: +SKIP

Importing this package is cheap: NeuroKit2, OpenCV, MediaPipe and PyAV load on first use.
"""

from __future__ import annotations

from ..._lazy import lazy_attributes

__all__ = ["analyze_physio", "events", "epochs", "rppg", "QUALITY_THRESHOLD", "FLAG_NAMES"]

_LAZY = {
    "analyze_physio": ("emonb.models.physio.analyze", "analyze_physio"),
    "events": ("emonb.models.physio.eventrelated", "events"),
    "epochs": ("emonb.models.physio.eventrelated", "epochs"),
    "rppg": ("emonb.models.physio.remote_ppg", "rppg"),
    "QUALITY_THRESHOLD": ("emonb.models.physio.quality", "QUALITY_THRESHOLD"),
    "FLAG_NAMES": ("emonb.models.physio.quality", "FLAG_NAMES"),
}


__getattr__, __dir__ = lazy_attributes("emonb.models.physio", _LAZY, globals())
