"""Facial regions of the 478-point MediaPipe face mesh used by expression spotting.

Indices follow the MediaPipe FaceLandmarker topology (the same numbering as
``face_landmarks(time, face, landmark, coord)`` in the result of :func:`emonb.analyze_face`).
"Left" and "right" are the subject's: the subject's right eye is on the image's left.
"""

from __future__ import annotations

from types import MappingProxyType

__all__ = ["ANCHORS", "BLINK_PAIRS", "EYE_CORNERS", "REGIONS", "REGION_NAMES"]

_BROW_R = (46, 52, 53, 55, 63, 65, 66, 70, 105, 107)
_BROW_L = (276, 282, 283, 285, 293, 295, 296, 300, 334, 336)
_EYE_R = (7, 33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246)
_EYE_L = (249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466)
_NOSE = (1, 2, 4, 5, 19, 45, 48, 64, 94, 97, 98, 115, 220, 275, 278, 294, 326, 327, 344, 440)
_MOUTH = (0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191,
          267, 269, 270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415)
_CHEEK_R = (36, 50, 101, 117, 118, 123, 126, 142, 147, 187, 205, 206, 207, 216)
_CHEEK_L = (266, 280, 330, 346, 347, 352, 355, 371, 376, 411, 425, 426, 427, 436)

#: Region name -> landmark indices whose motion the region's signal measures.
REGIONS = MappingProxyType({
    "brows": _BROW_R + _BROW_L,
    "eyes": _EYE_R + _EYE_L,
    "nose": _NOSE,
    "mouth": _MOUTH,
    "cheeks": _CHEEK_R + _CHEEK_L,
})
REGION_NAMES: tuple[str, ...] = tuple(REGIONS)

#: Points that move little with expressions: nose bridge, eye corners, temples, upper forehead.
#: Head motion is removed by a similarity fit of these points onto a per-video reference.
ANCHORS: tuple[int, ...] = (6, 168, 197, 195, 133, 362, 33, 263, 127, 356, 234, 454, 162, 389,
                            10, 151, 9, 109, 338, 67, 297)

#: Corners of each eye (outer, inner): right eye, left eye. Their centres define the
#: inter-ocular distance (IOD), the unit of every displacement.
EYE_CORNERS: tuple[tuple[int, int], tuple[int, int]] = ((33, 133), (263, 362))

#: (upper lid, lower lid) landmark pairs of each eye, for the eye aspect ratio (blinks).
BLINK_PAIRS: tuple[tuple[int, int], ...] = (
    (159, 145), (158, 153), (160, 144),   # right eye
    (386, 374), (385, 380), (387, 373),   # left eye
)
