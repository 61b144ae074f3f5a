"""Human review: the annotation store, file formats, coding schemes and agreement statistics.

>>> import emonb as eb
>>> store = eb.review.AnnotationStore("reviews.sqlite", session="s01", reviewer="dr_lee")  # doctest: +SKIP
>>> store.add(1.0, 2.5, label="happiness", intensity=0.6)                                 # doctest: +SKIP
>>> eb.review.agreement(store)                                                           # doctest: +SKIP
"""

from .agreement import agreement, cohen_kappa, krippendorff_alpha, segment_agreement, time_grid
from .schemes import SCHEMES, resolve_scheme
from .store import SCHEMA_VERSION, AnnotationStore

__all__ = [
    "SCHEMA_VERSION",
    "SCHEMES",
    "AnnotationStore",
    "agreement",
    "cohen_kappa",
    "krippendorff_alpha",
    "resolve_scheme",
    "segment_agreement",
    "time_grid",
]
