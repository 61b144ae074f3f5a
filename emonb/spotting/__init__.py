"""Micro- and macro-expression spotting, its MEGC evaluation, and test videos with known truth.

>>> import emonb as eb
>>> spots = eb.spot_expressions("interview.mp4")          # doctest: +SKIP
>>> spots.to_dataframe()                                   # doctest: +SKIP
>>> eb.spotting.evaluate(spots, truth)                     # doctest: +SKIP

Submodules: :mod:`~emonb.spotting.core` (the method), :mod:`~emonb.spotting.scoring` (MEGC
protocol), :mod:`~emonb.spotting.regions` (mesh regions), :mod:`~emonb.spotting.synthetic`
(generated videos). Nothing heavy is imported until first use.
"""

from __future__ import annotations

from .._lazy import lazy_attributes

_LAZY = {
    "spot_expressions": ("emonb.spotting.core", "spot_expressions"),
    "spot_landmarks": ("emonb.spotting.core", "spot_landmarks"),
    "align_landmarks": ("emonb.spotting.core", "align_landmarks"),
    "empty_spots": ("emonb.spotting.core", "empty_spots"),
    "DEFAULTS": ("emonb.spotting.core", "DEFAULTS"),
    "evaluate": ("emonb.spotting.scoring", "evaluate"),
    "interval_iou": ("emonb.spotting.scoring", "interval_iou"),
    "match_intervals": ("emonb.spotting.scoring", "match_intervals"),
    "REGIONS": ("emonb.spotting.regions", "REGIONS"),
    "REGION_NAMES": ("emonb.spotting.regions", "REGION_NAMES"),
    "make_spotting_video": ("emonb.spotting.synthetic", "make_spotting_video"),
    "make_spotting_landmarks": ("emonb.spotting.synthetic", "make_spotting_landmarks"),
    "synthetic": ("emonb.spotting.synthetic", None),
    "core": ("emonb.spotting.core", None),
    "regions": ("emonb.spotting.regions", None),
}

__all__ = [  # noqa: RUF022 (grouped as in _LAZY)
    "spot_expressions",
    "spot_landmarks",
    "align_landmarks",
    "empty_spots",
    "DEFAULTS",
    "evaluate",
    "interval_iou",
    "match_intervals",
    "REGIONS",
    "REGION_NAMES",
    "make_spotting_video",
    "make_spotting_landmarks",
    "synthetic",
    "core",
    "regions",
]

__getattr__, __dir__ = lazy_attributes("emonb.spotting", _LAZY, globals())
