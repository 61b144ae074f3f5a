"""Face analysis: mesh, head pose, action units, expressions, valence/arousal and quality.

>>> import emonb as eb
>>> face = eb.analyze_face("interview.mp4", stride=2)                # doctest: +SKIP
>>> crops = eb.predict_face_images(gray_48x48_stack, faces="full")  # doctest: +SKIP
>>> eb.face.AU_MAPPING["AU12"]                                       # doctest: +SKIP

Models (see ``eb.models.list_models("face")``): ``mediapipe-face-landmarker`` (Apache-2.0),
``mini-xception-fer`` (MIT) and the AU rules ``emonb-au-blendshape-rules``. Importing this
package loads neither torch nor mediapipe; the functions do, on first use.
"""

from __future__ import annotations

from ..._lazy import lazy_attributes
from .aus import (
    AU_MAPPING,
    EMFACS_PROTOTYPES,
    FACE_AUS,
    compute_aus,
    emfacs_emotion,
)
from .au_learned import describe_mapping

__all__ = [
    "AU_MAPPING",
    "BLENDSHAPES",
    "EMFACS_PROTOTYPES",
    "FACE_AUS",
    "analyze_face",
    "compute_aus",
    "describe_mapping",
    "emfacs_emotion",
    "predict_face_images",
]


__getattr__, _ = lazy_attributes("emonb.models.face", {
    "analyze_face": ("emonb.models.face.analyze", "analyze_face"),
    "predict_face_images": ("emonb.models.face.analyze", "predict_face_images"),
    "BLENDSHAPES": ("emonb.models.face.mesh", "BLENDSHAPES"),
}, globals())
