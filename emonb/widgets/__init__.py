"""Notebook widgets (anywidget): Scrubber, AUInspector, Annotator, and ``explore`` linking them on ``current_time``.

Needs the ``notebook`` extra (anywidget, ipywidgets). ``import emonb`` does not import this module.

>>> tree = eb.sample_session()                                                       # doctest: +SKIP
>>> tree.emonb.explore(store="reviews.sqlite", reviewer="dr_lee")                     # doctest: +SKIP
"""

from __future__ import annotations

from .._checks import require

require("anywidget", extra="notebook", purpose="the notebook widgets")
require("ipywidgets", extra="notebook", purpose="the notebook widgets")

from .annotator import Annotator, review_queue
from .au_inspector import AUInspector
from .explore import Explorer, explore
from .scrubber import Scrubber, encode_jpeg

__all__ = ["AUInspector", "Annotator", "Explorer", "Scrubber", "encode_jpeg", "explore", "review_queue"]
