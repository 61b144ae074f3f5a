"""Decoded video frames to RGB arrays: OpenCV's I420 conversion where it gives the right colours.

FFmpeg's software scaler (``frame.to_ndarray(format="rgb24")``) costs about 1 ms per 640x360
frame here; OpenCV's BT.601 I420 conversion of the same planes about 0.1 ms. Both use the BT.601
limited-range matrix, which is what FFmpeg applies to frames tagged BT.601 or untagged, and both
give each colour sample to its 2x2 pixels. OpenCV rounds the formula (0.25 levels from it on the
shared Pexels clip); FFmpeg's fast path comes out 1.2 levels darker on average. Every other frame
(BT.709 and other colour spaces, full-range "JPEG" levels, other pixel formats, odd sizes) goes
through FFmpeg, which honours the frame's tags.
"""

from __future__ import annotations

import numpy as np

__all__ = ["frame_to_rgb", "FAST_I420"]

#: ``False``: convert every frame with FFmpeg's scaler, as emonb did before this module.
FAST_I420 = True

#: FFmpeg colour-space tags that mean the BT.601 matrix (unspecified, BT.470BG, SMPTE 170M)
_BT601 = (2, 5, 6)
#: colour-range tags of limited ("MPEG", 16-235) levels (unspecified, MPEG)
_LIMITED = (0, 1)


def fast_path(frame) -> bool:
    """Whether OpenCV's conversion gives this frame FFmpeg's colours (see the module docstring)."""
    return (FAST_I420 and frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0
            and int(frame.colorspace) in _BT601 and int(frame.color_range) in _LIMITED)


def frame_to_rgb(frame) -> np.ndarray:
    """(H, W, 3) uint8 RGB array of a PyAV video frame (a new array the caller owns)."""
    if fast_path(frame):
        import cv2

        planes = frame.to_ndarray(format="yuv420p")
        return cv2.cvtColor(planes, cv2.COLOR_YUV2RGB_I420)
    return frame.to_ndarray(format="rgb24")
