"""Inputs of the face analysis: image files, arrays and videos, as chunks of frames.

A background thread decodes the next chunk while the models work on the current one
(:class:`_ChunkSource`).
"""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path

import numpy as np

from ...errors import EmonbValueError

__all__ = ["IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def _is_image_path(p) -> bool:
    return isinstance(p, (str, os.PathLike)) and Path(p).suffix.lower() in IMAGE_SUFFIXES


def _to_rgb(arr, *, path=None) -> np.ndarray:
    from ...io.video import image_to_rgb

    a = np.asarray(arr)
    if a.ndim not in (2, 3) or a.size == 0:
        raise EmonbValueError(f"{path or 'image'}: expected an image (H, W), (H, W, 3) or (H, W, 4), got shape {a.shape}")
    return image_to_rgb(a, path=path)


def _read_image(p) -> np.ndarray:
    from ...io.video import read_image

    return read_image(p)


class _ChunkSource:
    """Yields (times, frame_indices, frames) chunks, decoding in a background thread."""

    def __init__(self, iterator_factory, *, threaded: bool = True, prefetch: int = 1):
        self.factory = iterator_factory
        self.threaded = threaded
        self.prefetch = prefetch

    def __iter__(self):
        if not self.threaded:
            yield from self.factory()
            return
        q: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()
        done = object()

        def work():
            try:
                for item in self.factory():
                    while not stop.is_set():
                        try:
                            q.put(item, timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
                q.put(done)
            except BaseException as exc:  # hand the error to the consumer
                q.put(exc)

        th = threading.Thread(target=work, name="emonb-face-decode", daemon=True)
        th.start()
        try:
            while True:
                item = q.get()
                if item is done:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            th.join(timeout=5)


def _array_chunks(frames: np.ndarray, times: np.ndarray, stride: int, chunk_size: int, scale: float = 1.0):
    idx = np.arange(0, frames.shape[0], stride)
    for s in range(0, len(idx), chunk_size):
        sel = idx[s:s + chunk_size]
        chunk = np.asarray(frames[sel])
        if scale != 1.0:
            import cv2

            chunk = np.stack([cv2.resize(f, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) for f in chunk])
        yield times[sel], sel.astype(np.int64), chunk
