"""A small all-intra proxy of a video: every frame as a low-resolution JPEG, for instant jumps.

H.264 decodes a frame only from its previous keyframe, so a jump to any place costs tens of
milliseconds of decoding. The proxy holds every frame on its own (JPEG, ``width`` px wide, a few kB
each), so the scrubber answers a jump with the proxy frame at once and sends the full frame after it.

The proxy is built by one sequential decode (FFmpeg scales while decoding), in a background thread
the first time a video is explored, and cached: in memory for the process, and on disk in emonb's own
cache folder (``$EMONB_CACHE_DIR``, else ``$XDG_CACHE_HOME/emonb``, else ``~/.cache/emonb``), under
``proxy/<hash of path, size and mtime>.npz`` (plain arrays, read with ``allow_pickle=False``), written
through a temporary sibling and an atomic rename (:func:`emonb._output.write_file`). A file there that
does not read back as a proxy of this video is ignored and rebuilt.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
from pathlib import Path

import numpy as np

#: proxy frame width (px) and JPEG quality
PROXY_WIDTH = 256
PROXY_QUALITY = 60
_FORMAT = 1
_MEMORY: dict[tuple, "VideoProxy"] = {}
_MEMORY_LOCK = threading.Lock()


def cache_dir() -> Path:
    """emonb's cache folder (created on first write)."""
    if os.environ.get("EMONB_CACHE_DIR"):
        return Path(os.environ["EMONB_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "emonb"


def _key(path: str, width: int) -> tuple:
    st = os.stat(path)
    return (os.path.abspath(path), int(st.st_size), int(st.st_mtime_ns), int(width), _FORMAT)


def _jpeg(frame: np.ndarray, quality: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame)).save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue()


class VideoProxy:
    """Low-resolution JPEG frames of one video, by frame index, filled by :meth:`build`.

    Parameters
    ----------
    path : str
        The video file.
    n_frames : int
        Frames in the video (frame indices 0..n_frames-1).
    width : int
        Width (px) of the proxy frames; the height keeps the aspect ratio.

    Attributes
    ----------
    ready : bool
        Every frame is in.
    size : (width, height)
    """

    def __init__(self, path: str, n_frames: int, *, width: int = PROXY_WIDTH, height: int | None = None,
                 quality: int = PROXY_QUALITY):
        self.path, self.n_frames = str(path), int(n_frames)
        self.quality = int(quality)
        self.size = (int(width), int(height or 0))
        self._width = int(width)  # as asked (the cache key); the frames are never wider than the video
        self._frames: list[bytes | None] = [None] * self.n_frames
        self.n_built = 0
        self.ready = False
        self.error = ""
        self._thread: threading.Thread | None = None

    def __repr__(self):
        state = "ready" if self.ready else f"{self.n_built}/{self.n_frames} frames"
        return f"<VideoProxy {Path(self.path).name} {self.size[0]}x{self.size[1]} {state}, {self.nbytes / 1e6:.1f} MB>"

    @property
    def nbytes(self) -> int:
        return sum(len(f) for f in self._frames if f is not None)

    def jpeg(self, index: int) -> bytes | None:
        """The proxy JPEG of frame ``index`` (None while it is not built yet)."""
        if 0 <= int(index) < self.n_frames:
            return self._frames[int(index)]
        return None

    # ------------------------------------------------------------------ building
    def build(self, *, progress: bool = False):
        """Decode the video once, sequentially, and keep every frame as a small JPEG."""
        from ..io.video import video_reader

        reader = video_reader(self.path)
        w, h = self.size
        if not h:
            w = min(w, int(reader.width)) or w  # never larger than the video
            h = max(2, int(round(reader.height * w / max(reader.width, 1) / 2)) * 2)
            self.size = (w, h)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.n_frames, desc="video proxy", unit="frame")
        try:
            for _, idx, frames in reader.iter_chunks(32, size=(w, h)):
                for i, fr in zip(idx, frames):
                    if 0 <= i < self.n_frames and self._frames[i] is None:
                        self._frames[i] = _jpeg(fr, self.quality)
                        self.n_built += 1
                if bar is not None:
                    bar.update(len(idx))
        finally:
            if bar is not None:
                bar.close()
        self.ready = True
        return self

    def build_in_background(self, on_done=None) -> threading.Thread:
        """:meth:`build` in a daemon thread (started once); ``on_done(proxy)`` runs after it."""
        if self._thread is None:
            def run():
                try:
                    self.build()
                    self.save()
                except Exception as e:  # noqa: BLE001  (the full frames still work without a proxy)
                    self.error = f"video proxy not built: {e}"
                if on_done is not None:
                    on_done(self)
            self._thread = threading.Thread(target=run, name="emonb-video-proxy", daemon=True)
            self._thread.start()
        return self._thread

    # ------------------------------------------------------------------ disk cache
    def cache_path(self) -> Path:
        digest = hashlib.sha1(repr(_key(self.path, self._width)).encode()).hexdigest()[:20]
        return cache_dir() / "proxy" / f"{digest}.npz"

    def save(self, path=None) -> Path | None:
        """Write a complete proxy to the cache (or ``path``); None when it is not complete."""
        from .._output import write_file

        if not self.ready or any(f is None for f in self._frames):
            return None
        p = Path(path) if path is not None else self.cache_path()
        p.parent.mkdir(parents=True, exist_ok=True)
        lens = np.array([len(f) for f in self._frames], np.int64)
        meta = json.dumps({"format": _FORMAT, "key": list(_key(self.path, self._width)), "size": self.size,
                           "quality": self.quality})
        buf = io.BytesIO()
        np.savez(buf, lengths=lens, data=np.frombuffer(b"".join(self._frames), np.uint8),
                 meta=np.frombuffer(meta.encode(), np.uint8))
        return write_file(p, buf.getvalue())

    def load(self, path=None) -> bool:
        """Fill from a cached file made for this very video; False (nothing changed) otherwise."""
        p = Path(path) if path is not None else self.cache_path()
        try:
            with np.load(p, allow_pickle=False) as z:
                meta = json.loads(bytes(z["meta"]).decode())
                lens, data = z["lengths"], z["data"]
                if meta.get("key") != list(_key(self.path, self._width)) or lens.size != self.n_frames \
                        or int(lens.sum()) != data.size:
                    return False
                raw = data.tobytes()
        except (OSError, ValueError, KeyError, UnicodeDecodeError):
            return False
        ends = np.cumsum(lens)
        self._frames = [raw[e - n:e] for n, e in zip(lens.tolist(), ends.tolist())]
        self.size = tuple(int(v) for v in meta["size"])
        self.n_built, self.ready = self.n_frames, True
        return True


def video_proxy(path, n_frames: int, *, width: int = PROXY_WIDTH, build: str = "background") -> VideoProxy:
    """The proxy of a video: from memory, from the disk cache, or built (``build``: "background",
    "now" or "never").

    Parameters
    ----------
    path : str
        The video file.
    n_frames : int
        Frames in the video.
    width : int
        Width of the proxy frames (px).
    build : {"background", "now", "never"}
    """
    key = _key(str(path), width)
    with _MEMORY_LOCK:
        proxy = _MEMORY.get(key)
        if proxy is None:
            proxy = VideoProxy(path, n_frames, width=width)
            _MEMORY[key] = proxy
            proxy.load()
    if not proxy.ready:
        if build == "now":
            proxy.build()
            proxy.save()
        elif build == "background":
            proxy.build_in_background()
    return proxy
