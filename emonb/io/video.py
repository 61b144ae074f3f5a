"""Video and still-image reading with PyAV.

Time comes from each frame's presentation timestamp (PTS x time_base), never ``index / fps``, so
variable-frame-rate video comes out right. Opening a video demuxes its packets to learn the
timestamps but decodes only the first frame (to read the display orientation); frames are decoded
on demand (:meth:`VideoReader.frame_at`) or in chunks (:meth:`VideoReader.iter_chunks`), with memory
flat in the video's length.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections import OrderedDict
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np
import xarray as xr

from .._checks import check_file, check_option
from ..errors import EmonbFileError, EmonbFormatError, EmonbValueError, EmonbWarning
from . import Reader
from ._yuv import frame_to_rgb

__all__ = ["VideoReader", "load_video", "load_image", "read_image", "video_reader",
           "VIDEO_EXTENSIONS", "IMAGE_EXTENSIONS"]

VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".3gp")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def _open_container(path: Path):
    import av

    try:
        return av.open(str(path), mode="r")
    except av.error.InvalidDataError:
        why = "corrupt, truncated (an MP4/MOV cut before its index) or not a video"
        raise EmonbFormatError(path, f"not a readable video file (invalid data: {why})") from None
    except av.error.FFmpegError as exc:
        raise EmonbFormatError(path, f"cannot be opened as a video: {exc}") from None


def _decode_frames(container, stream):
    """Decoded frames of ``stream``, packet by packet: a packet that fails to decode is skipped
    (a decode generator would stop at the first error), and a read error ends the stream."""
    import av

    ffmpeg_error = av.error.FFmpegError  # bound now: at interpreter exit the module may be gone
    try:
        for pkt in container.demux(stream):
            try:
                frames = pkt.decode()
            except ffmpeg_error:
                continue
            yield from frames
    except ffmpeg_error:
        return


def _threaded_stream(container, threads: int | None):
    """The container's video stream, decoding with ``threads`` FFmpeg threads (``None``: FFmpeg's choice)."""
    s = container.streams.video[0]
    if threads is None:
        s.thread_type = "AUTO"
    else:
        s.thread_count = max(1, int(threads))
    return s


def _rotate(img: np.ndarray, rotation: int) -> np.ndarray:
    """Apply a display rotation (degrees counter-clockwise, as FFmpeg's display matrix)."""
    k = int(round(rotation / 90.0)) % 4
    return np.ascontiguousarray(np.rot90(img, k=k)) if k else img


#: ``verify="auto"`` decodes every frame when a video is opened up to this many frames (about
#: 3.5 min at 30 fps; a decoding pass costs about 1 s per 700 frames of 640x360 here)
VERIFY_MAX_FRAMES = 6000


class VideoReader:
    """Random and chunked access to the frames of one video file.

    Parameters
    ----------
    path : str or Path
        Any container/codec FFmpeg reads (mp4, mov, mkv, avi, webm, ...).
    cache_size : int
        Number of decoded frames kept for random access (``frame_at``).

    Attributes
    ----------
    times : ndarray of float64, shape (n_frames,)
        Presentation time of each frame in seconds, relative to the container start.
    pts : ndarray of int64
        The raw presentation timestamps in units of ``time_base``.
    fps : float
        Nominal frame rate (the median of the frame intervals; the stream's average rate when a
        video has a single frame).
    width, height : int
        Display size (after applying rotation metadata).
    rotation : int
        Display rotation in degrees (counter-clockwise) that is applied to every decoded frame.
    """

    def __init__(self, path, *, cache_size: int = 32, verify: str = "auto"):
        self.path = check_file(path, what="video file")
        self.cache_size = int(cache_size)
        self.verify = check_option("verify", verify, ("auto", "decode", "packets"))
        self._lock = threading.RLock()
        self._container = None
        self._decoder = None
        self._next_index = None
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._scan()

    # -- metadata ----------------------------------------------------------------------------
    def _scan(self) -> None:
        """Demux every packet and (``verify``) decode every video frame once, to learn what is there.

        With decoding (``verify="decode"``, and ``"auto"`` for videos of at most
        :data:`VERIFY_MAX_FRAMES` frames) the index (``pts``/``times``) holds the frames that
        decode, not the frames the container lists: frames an edit list hides, frames of corrupt
        packets and frames cut off by a truncated file are left out and counted in the flags
        (``frames_listed``, ``frames_lost``, ``edit_list_frames``, ``decode_errors``,
        ``truncated``). Without (``"packets"``, and ``"auto"`` for longer videos, where a decoding
        pass would cost minutes) the index holds the frames whose packets are in the file, edit
        lists and truncation still found; ``verified`` says which it was.
        """
        import av

        c = _open_container(self.path)
        try:
            if not c.streams.video:
                raise EmonbFormatError(self.path, "has no video stream")
            s = c.streams.video[0]
            s.thread_type = "AUTO"
            self.time_base = s.time_base or Fraction(1, 90000)
            self.codec = s.codec_context.name
            start = c.start_time  # microseconds, over all streams
            self.container_start = (start / 1e6) if start is not None else 0.0
            listed = int(s.frames or 0)
            rate = s.average_rate or s.guessed_rate
            expected = listed or (c.duration / 1e6 * float(rate) if c.duration and rate else 0)
            # "auto": decode unless the video is known to be long
            decode_all = self.verify == "decode" or (self.verify == "auto" and not expected > VERIFY_MAX_FRAMES)
            decoded, packet_pts, n_packets, n_discard, n_corrupt, n_errors = [], [], 0, 0, 0, 0
            stream_end = -np.inf  # seconds: the latest packet end over all streams
            rot, size = 0, None
            truncated = False

            def take(frames):
                nonlocal rot, size
                for fr in frames:
                    if fr.pts is None:
                        continue
                    if size is None:
                        rot = int(getattr(fr, "rotation", 0) or 0)
                        size = (fr.width, fr.height)
                    decoded.append(fr.pts)

            try:
                for pkt in c.demux():
                    if pkt.size and pkt.pts is not None and pkt.time_base is not None:
                        end = (pkt.pts + (pkt.duration or 0)) * float(pkt.time_base)
                        stream_end = max(stream_end, end)
                    if pkt.stream.index != s.index:
                        continue
                    if pkt.size:
                        n_packets += 1
                        n_discard += bool(pkt.is_discard)
                        n_corrupt += bool(pkt.is_corrupt)
                        if not pkt.is_discard and pkt.pts is not None:
                            packet_pts.append(pkt.pts)
                    if not decode_all and size is not None:
                        continue  # packets only: the first frame told the display size
                    try:
                        take(pkt.decode())  # the empty packet at the end flushes the decoder
                    except av.error.FFmpegError:
                        n_errors += 1
            except av.error.FFmpegError:
                truncated = True  # keep what could be read
            declared = c.duration / 1e6 if c.duration else None
            fmt = c.format.name if c.format is not None else ""
            coded_size = (s.codec_context.width, s.codec_context.height)
        finally:
            c.close()
        if not decoded:
            what = "no video frame decodes" if n_packets else "contains no video frames"
            raise EmonbFileError(self.path, f"{what} (empty, truncated or corrupt file)")
        self.verified = "decoded" if decode_all else "packets"
        self.pts = np.unique(np.asarray(decoded if decode_all else packet_pts, dtype=np.int64))
        self.times = self.pts.astype(np.float64) * float(self.time_base) - self.container_start
        self.nominal_fps = float(rate) if rate else float("nan")
        if listed and n_packets < listed:
            truncated = True  # the container lists frames whose data is not in the file
        if declared and np.isfinite(stream_end) and ("matroska" in fmt or "mov" in fmt):
            step = 1.0 / self.nominal_fps if np.isfinite(self.nominal_fps) and self.nominal_fps > 0 else 0.1
            if stream_end - self.container_start < declared - max(1.5 * step, 0.05):
                truncated = True  # the header's duration is longer than the data in the file
        self.frames_listed = max(listed, n_packets)
        self.edit_list_frames = int(n_discard)
        self.frames_lost = max(0, self.frames_listed - n_discard - self.n_frames)
        self.decode_errors = int(n_errors)
        self.truncated = bool(truncated)
        self.n_corrupt_packets = int(n_corrupt)
        width, height = size if size is not None else coded_size
        self.rotation = rot % 360
        if self.rotation in (90, 270):
            width, height = height, width
        self.width, self.height = int(width), int(height)
        if self.n_frames > 1:
            d = np.diff(self.times)
            span = float(self.times[-1] - self.times[0])
            # mean rate: robust to timestamps rounded to a coarse time base (1 ms steps of 33/34)
            self.fps = (self.n_frames - 1) / span if span > 0 else self.nominal_fps
            self.variable_frame_rate = bool(np.ptp(d) > 0.1 * np.median(d) + 1e-6)
        else:
            self.fps = self.nominal_fps
            self.variable_frame_rate = False
        if np.isfinite(self.nominal_fps) and abs(self.fps - self.nominal_fps) < 1e-3 * self.nominal_fps:
            self.fps = self.nominal_fps
        if self.truncated or self.frames_lost:
            warnings.warn(f"{self.path}: {self.loss_note()}", EmonbWarning, stacklevel=4)

    @property
    def flags(self) -> list[str]:
        """What was lost or found damaged: ``truncated``, ``frames_lost``, ``corrupt_packets``."""
        out = []
        if self.truncated:
            out.append("truncated")
        if self.frames_lost:
            out.append("frames_lost")
        if self.n_corrupt_packets or self.decode_errors:
            out.append("corrupt_packets")
        return out

    def loss_note(self) -> str:
        """One sentence on what of the listed frames decodes."""
        parts = []
        if self.frames_lost:
            parts.append(f"{self.n_frames} of the {self.frames_listed - self.edit_list_frames} frames it lists "
                         f"decode ({self.frames_lost} lost to corrupt or missing data)")
        else:
            parts.append(f"all {self.n_frames} frames it lists decode")
        if self.truncated:
            parts.append("the file is truncated (it ends before the data its header announces)")
        return "; ".join(parts) + "; the video node holds the frames that decode"

    @property
    def n_frames(self) -> int:
        return int(self.pts.size)

    @property
    def duration(self) -> float:
        """Seconds from the first frame to the end of the last one."""
        if self.n_frames == 0:
            return 0.0
        last = 1.0 / self.fps if self.fps and np.isfinite(self.fps) else 0.0
        return float(self.times[-1] - self.times[0] + last)

    def index_at(self, t: float) -> int:
        """Index of the frame on screen at time ``t`` (the last frame whose time is <= t)."""
        i = int(np.searchsorted(self.times, float(t) + 1e-9, side="right") - 1)
        return min(max(i, 0), self.n_frames - 1)

    # -- decoding ----------------------------------------------------------------------------
    def _to_array(self, frame, size=None) -> np.ndarray:
        if size is not None:
            w, h = size
            if self.rotation in (90, 270):
                w, h = h, w
            frame = frame.reformat(width=w, height=h)
        return _rotate(frame_to_rgb(frame), self.rotation)

    def _index_of_pts(self, pts) -> int | None:
        if pts is None:
            return None
        i = int(np.searchsorted(self.pts, pts))
        if i < self.n_frames and self.pts[i] == pts:
            return i
        return None

    def _ensure_open(self):
        if self._container is None:
            self._container = _open_container(self.path)
            st = self._container.streams.video[0]
            st.thread_type = "AUTO"
            self._stream = st

    def frame(self, index: int) -> np.ndarray:
        """Decoded RGB frame ``index`` as uint8 (height, width, 3)."""
        import av

        index = int(index)
        if not 0 <= index < self.n_frames:
            raise EmonbValueError(f"{self.path}: frame index {index} outside 0..{self.n_frames - 1}")
        with self._lock:
            if index in self._cache:
                self._cache.move_to_end(index)
                return self._cache[index]
            # first from the nearest key frame (or on from the last frame decoded), then, if the
            # seek failed or landed on damaged data, from the start of the file
            for from_start in (False, True):
                self._ensure_open()
                ahead = self._next_index is not None and 0 <= index - self._next_index < 48
                if from_start:
                    self._restart()
                elif not ahead or self._decoder is None:
                    try:
                        self._container.seek(int(self.pts[index]), stream=self._stream, backward=True,
                                             any_frame=False)
                        self._decoder = _decode_frames(self._container, self._stream)
                    except av.error.FFmpegError:
                        self._restart()
                self._decode_up_to(index)
                if index in self._cache:
                    return self._cache[index]
            raise EmonbFileError(self.path, f"frame {index} (t={self.times[index]:.3f} s) could not be decoded")

    def _restart(self):
        if self._container is not None:
            self._container.close()
        self._container = None
        self._ensure_open()
        self._decoder = _decode_frames(self._container, self._stream)
        self._next_index = None

    def _decode_up_to(self, index: int) -> None:
        import av

        target = int(self.pts[index])
        try:
            for fr in self._decoder:
                i = self._index_of_pts(fr.pts)
                if fr.pts is not None and fr.pts > target and i is None:
                    break
                if i is None:
                    continue
                self._next_index = i + 1
                if i >= index - 2:  # keep the neighbours, handy when stepping frame by frame
                    self._remember(i, self._to_array(fr))
                if i >= index:
                    return
        except av.error.FFmpegError:
            pass
        self._decoder = None  # exhausted or broken: the next call seeks again
        self._next_index = None

    def _remember(self, i, arr):
        self._cache[i] = arr
        self._cache.move_to_end(i)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def frame_at(self, t: float) -> np.ndarray:
        """The RGB frame on screen at session time ``t`` (seconds, without the node's ``t0``)."""
        return self.frame(self.index_at(t))

    def iter_chunks(self, chunk_size: int = 64, *, stride: int = 1, start: float | None = None,
                    end: float | None = None, size: tuple[int, int] | None = None,
                    decoder_threads: int | None = None,
                    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Decode the video sequentially in chunks.

        Parameters
        ----------
        chunk_size : int
            Frames per chunk.
        stride : int
            Keep every ``stride``-th frame (by frame index).
        start, end : float, optional
            Time range in seconds (container clock).
        size : (width, height), optional
            Scale frames while decoding (cheap, done by FFmpeg).
        decoder_threads : int, optional
            FFmpeg decoder threads; ``None``: FFmpeg chooses (frame and slice threads). ``1``
            costs about a quarter less CPU per frame, for callers that decode several parts at
            once on all cores (``analyze_face``'s ``parallel`` parts).

        Yields
        ------
        times : ndarray (n,) float64 seconds
        indices : ndarray (n,) int64 frame indices
        frames : ndarray (n, height, width, 3) uint8 RGB
            Frames that fail to decode are left out (the caller sees a gap in ``indices``).
        """
        import av

        chunk_size = max(1, int(chunk_size))
        stride = max(1, int(stride))
        i0 = 0 if start is None else int(np.searchsorted(self.times, float(start) - 1e-9))
        i1 = self.n_frames if end is None else int(np.searchsorted(self.times, float(end) + 1e-9, side="right"))
        if i0 >= i1:
            return
        c = _open_container(self.path)
        try:
            s = _threaded_stream(c, decoder_threads)
            if i0 > 0:
                try:
                    c.seek(int(self.pts[i0]), stream=s, backward=True, any_frame=False)
                except av.error.FFmpegError:  # a damaged index: decode from the start instead
                    c.close()
                    c = _open_container(self.path)
                    s = _threaded_stream(c, decoder_threads)
            # frames go straight into a preallocated chunk array (no list of frames + np.stack copy)
            buf_t, buf_i, buf_f, k = [], [], None, 0
            # packet by packet: a corrupt packet is skipped and decoding carries on with the next
            for fr in _decode_frames(c, s):
                i = self._index_of_pts(fr.pts)
                if i is None or i < i0:
                    continue
                if i >= i1:
                    break
                if (i - i0) % stride:
                    continue
                try:
                    arr = self._to_array(fr, size)
                except Exception:
                    continue
                if buf_f is not None and buf_f.shape[1:] != arr.shape:  # the frame size changed
                    yield np.asarray(buf_t), np.asarray(buf_i, dtype=np.int64), buf_f[:k]
                    buf_t, buf_i, buf_f, k = [], [], None, 0
                if buf_f is None:
                    buf_f = np.empty((chunk_size,) + arr.shape, arr.dtype)
                buf_f[k] = arr
                k += 1
                buf_t.append(self.times[i])
                buf_i.append(i)
                if k == chunk_size:
                    yield np.asarray(buf_t), np.asarray(buf_i, dtype=np.int64), buf_f
                    buf_t, buf_i, buf_f, k = [], [], None, 0
            if k:
                yield np.asarray(buf_t), np.asarray(buf_i, dtype=np.int64), buf_f[:k]
        finally:
            c.close()

    def close(self):
        with self._lock:
            if self._container is not None:
                self._container.close()
            self._container = None
            self._decoder = None
            self._next_index = None
            self._cache.clear()

    def __getstate__(self):  # picklable for dask: drop open handles
        st = self.__dict__.copy()
        st.update(_container=None, _decoder=None, _next_index=None, _cache=OrderedDict(), _lock=None)
        return st

    def __setstate__(self, st):
        self.__dict__.update(st)
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return self.n_frames

    def __repr__(self) -> str:
        vfr = ", variable frame rate" if self.variable_frame_rate else ""
        return (f"<VideoReader {self.path.name}: {self.n_frames} frames, {self.width}x{self.height}, "
                f"{self.fps:.3f} fps{vfr}, {self.duration:.2f} s, codec {self.codec}>")


# -- lazy frames inside a Dataset ----------------------------------------------------------------
_READERS_CACHE: dict[tuple[str, float, str], VideoReader] = {}


def _cached_reader(path, verify: str = "auto") -> VideoReader:
    p = Path(path)
    key = (str(p.resolve()), p.stat().st_mtime, verify)
    r = _READERS_CACHE.get(key)
    if r is None:
        if len(_READERS_CACHE) > 16:
            _READERS_CACHE.clear()
        r = _READERS_CACHE[key] = VideoReader(p, verify=verify)
    return r


class _LazyFrames:
    """xarray backend array: indexing decodes only the frames asked for."""

    def __init__(self, reader: VideoReader, indices: np.ndarray):
        from xarray.backends.common import BackendArray  # noqa: F401  (interface reference)

        self.reader = reader
        self.indices = np.asarray(indices, dtype=np.int64)
        self.shape = (self.indices.size, reader.height, reader.width, 3)
        self.dtype = np.dtype(np.uint8)

    def __getitem__(self, key):
        from xarray.core import indexing

        return indexing.explicit_indexing_adapter(key, self.shape, indexing.IndexingSupport.OUTER, self._raw)

    def _raw(self, key):
        tkey = key[0] if isinstance(key, tuple) else key
        rest = key[1:] if isinstance(key, tuple) else ()
        idx = np.atleast_1d(np.arange(self.shape[0])[tkey])
        frames = np.stack([self.reader.frame(int(self.indices[i])) for i in idx]) if idx.size else \
            np.zeros((0,) + self.shape[1:], np.uint8)
        out = frames[(slice(None),) + tuple(rest)]
        if np.isscalar(tkey) or (isinstance(tkey, np.integer)):
            out = out[0]
        return out


def _lazy_frames_variable(reader: VideoReader, indices) -> xr.Variable:
    from xarray.backends.common import BackendArray
    from xarray.core import indexing

    class _Arr(_LazyFrames, BackendArray):
        pass

    arr = indexing.LazilyIndexedArray(_Arr(reader, indices))
    return xr.Variable(("time", "y", "x", "rgb"), arr,
                       attrs={"long_name": "video frames (decoded on access)", "units": "uint8 RGB"})


def attach_frames(ds: xr.Dataset) -> xr.Dataset:
    """Add the lazily decoded ``frames(time, y, x, rgb)`` variable to a video node.

    Used by :func:`load_video` and when a saved session is reopened (frames are not copied into the
    session store; they are read from ``attrs["path"]`` when that file is still there).
    """
    path = ds.attrs.get("path")
    if not path or not os.path.exists(path) or "frames" in ds:
        return ds
    if Path(path).suffix.lower() in IMAGE_EXTENSIONS:
        img = read_image(path)
        return ds.assign(frames=(("time", "y", "x", "rgb"), img[None]))
    reader = _cached_reader(path)
    return ds.assign(frames=_lazy_frames_variable(reader, ds["frame_index"].values))


def load_video(path, *, t0: float = 0.0, frames: bool = True, verify: str = "auto") -> xr.Dataset:
    """Open a video as a session node without decoding its frames.

    Parameters
    ----------
    path : str or Path
        A video file (mp4, mov, mkv, avi, webm, ...) or a still image (loads as a one-frame video).
    t0 : float
        Offset of the video on the session clock, in seconds; added to ``time``.
    frames : bool
        Attach the lazily decoded ``frames(time, y, x, rgb)`` variable.
    verify : {"auto", "decode", "packets"}
        Decode every frame once now to index exactly the frames that decode (``"decode"``), or
        index the frames whose packets are in the file (``"packets"``: fast, no decoding).
        ``"auto"`` decodes videos of up to :data:`VERIFY_MAX_FRAMES` frames. ``attrs["verified"]``
        records which.

    Returns
    -------
    xarray.Dataset
        Coordinates ``time`` (float64 s, from frame PTS, plus ``t0``) and ``frame_index(time)``;
        attrs ``fps``, ``width``, ``height``, ``path``, ``codec``, ``rotation``,
        ``variable_frame_rate``, ``n_frames``, ``duration``, ``t0``. Only frames that decode are
        on ``time``; ``frames_listed`` (what the container lists), ``frames_lost`` (listed frames
        that do not decode), ``edit_list_frames`` (frames an edit list hides), ``decode_errors``,
        ``truncated`` and ``flags`` (comma-separated: ``truncated``, ``frames_lost``,
        ``corrupt_packets``) say what was lost; an :class:`~emonb.errors.EmonbWarning` says it too.

    Examples
    --------
    >>> video = eb.load_video("clip.mp4")                 # doctest: +SKIP
    >>> img = video.emonb.frame_at(1.5)                   # doctest: +SKIP
    """
    is_image = Path(path).suffix.lower() in IMAGE_EXTENSIONS
    p = check_file(path, what="image file" if is_image else "video file")
    if is_image:
        return load_image(p, t0=t0)
    reader = _cached_reader(p, check_option("verify", verify, ("auto", "decode", "packets")))
    t0 = float(t0)
    ds = xr.Dataset(
        coords={
            "time": ("time", reader.times + t0, {"units": "s", "long_name": "session time (frame PTS)"}),
            "frame_index": ("time", np.arange(reader.n_frames, dtype=np.int64)),
        },
        attrs={
            "modality": "video", "path": str(p.resolve()), "codec": reader.codec,
            "fps": float(reader.fps), "nominal_fps": float(reader.nominal_fps),
            "width": reader.width, "height": reader.height, "rotation": reader.rotation,
            "n_frames": reader.n_frames, "duration": reader.duration,
            "variable_frame_rate": int(reader.variable_frame_rate), "truncated": int(reader.truncated),
            "corrupt_packets": int(reader.n_corrupt_packets), "decode_errors": reader.decode_errors,
            "frames_listed": int(reader.frames_listed), "frames_lost": int(reader.frames_lost),
            "edit_list_frames": reader.edit_list_frames, "flags": ",".join(reader.flags), "t0": t0,
            "verified": reader.verified,
        },
    )
    if not reader.variable_frame_rate:
        ds.attrs["sampling_rate"] = float(reader.fps)
    if frames:
        ds = ds.assign(frames=_lazy_frames_variable(reader, ds["frame_index"].values))
    return ds


def read_image(path) -> np.ndarray:
    """Read a still image as RGB uint8 (height, width, 3).

    Gray and RGBA images are converted (alpha composited on white), 16-bit images scaled to 8 bit,
    and the EXIF orientation applied.
    """
    p = check_file(path, what="image file")
    try:
        from PIL import Image, ImageOps, UnidentifiedImageError
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib/mediapipe
        return _read_image_av(p)
    try:
        with Image.open(p) as im:
            im = ImageOps.exif_transpose(im)
            im.load()
    except UnidentifiedImageError:
        raise EmonbFormatError(p, "is not a readable image") from None
    except (OSError, SyntaxError) as exc:
        raise EmonbFileError(p, f"image is truncated or corrupt ({exc})") from None
    return image_to_rgb(np.asarray(_pil_plain_mode(im)), mode=im.mode, path=p)


def _pil_plain_mode(im):
    """A Pillow image in a mode whose array is gray, gray+alpha, RGB or RGBA values.

    Palette images hold indices into their palette and CMYK/YCbCr/LAB/HSV images hold other
    channels; read as arrays directly they give wrong colours (gray indices, an all-white face).
    """
    if im.mode in ("P", "PA"):
        has_alpha = im.mode == "PA" or "transparency" in im.info
        return im.convert("RGBA" if has_alpha else "RGB")
    if im.mode in ("CMYK", "YCbCr", "LAB", "HSV", "RGBX", "RGBa"):
        return im.convert("RGB")
    if im.mode == "La":
        return im.convert("LA")
    return im


def image_to_rgb(arr: np.ndarray, *, mode: str | None = None, path=None) -> np.ndarray:
    """Convert a gray, RGBA, 16-bit or float image array to RGB uint8 (height, width, 3)."""
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype in (np.uint16, np.int32, np.uint32, np.int16) or (mode or "").startswith("I"):
        hi = 65535.0 if a.max(initial=0) > 255 else 255.0
        a = np.clip(a.astype(np.float64) / hi * 255.0, 0, 255).round().astype(np.uint8)
    elif np.issubdtype(a.dtype, np.floating):
        scale = 255.0 if np.nanmax(a, initial=0) <= 1.0 else 1.0
        a = np.clip(np.nan_to_num(a) * scale, 0, 255).round().astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    elif a.ndim == 3 and a.shape[2] == 2:  # gray + alpha
        alpha = a[..., 1:2].astype(np.float32) / 255.0
        g = a[..., :1].astype(np.float32) * alpha + 255.0 * (1 - alpha)
        a = np.repeat(g.round().astype(np.uint8), 3, axis=2)
    elif a.ndim == 3 and a.shape[2] == 4:
        alpha = a[..., 3:4].astype(np.float32) / 255.0
        a = (a[..., :3].astype(np.float32) * alpha + 255.0 * (1 - alpha)).round().astype(np.uint8)
    if a.ndim != 3 or a.shape[2] != 3:
        where = f"{path}: " if path else ""
        raise EmonbValueError(f"{where}cannot interpret an image of shape {np.shape(arr)}")
    if min(a.shape[:2]) < 1:
        raise EmonbValueError(f"{path or 'image'}: image has no pixels")
    return np.ascontiguousarray(a.astype(np.uint8, copy=False))


def _read_image_av(p: Path) -> np.ndarray:
    c = _open_container(p)
    try:
        fr = next(c.decode(video=0))
        return fr.to_ndarray(format="rgb24")
    finally:
        c.close()


def load_image(path, *, t0: float = 0.0) -> xr.Dataset:
    """Load a still image as a one-frame video node (``frames`` held in memory)."""
    p = check_file(path, what="image file")
    img = read_image(p)
    h, w = img.shape[:2]
    return xr.Dataset(
        {"frames": (("time", "y", "x", "rgb"), img[None], {"units": "uint8 RGB"})},
        coords={"time": ("time", [float(t0)], {"units": "s"}), "frame_index": ("time", [0])},
        attrs={"modality": "video", "path": str(p.resolve()), "codec": "image", "fps": float("nan"),
               "width": int(w), "height": int(h), "rotation": 0, "n_frames": 1, "duration": 0.0,
               "variable_frame_rate": 0, "truncated": 0, "corrupt_packets": 0, "frames_listed": 1,
               "frames_lost": 0, "flags": "", "t0": float(t0), "still_image": 1},
    )


def video_reader(src) -> VideoReader:
    """A :class:`VideoReader` for a path or a video node (from ``attrs["path"]``)."""
    if isinstance(src, VideoReader):
        return src
    if isinstance(src, (xr.Dataset, xr.DataArray)):
        path = src.attrs.get("path")
        if not path:
            raise EmonbValueError("this video node has no 'path' attribute to read frames from")
        return _cached_reader(check_file(path, what="video file"))
    return _cached_reader(check_file(src, what="video file"))


VIDEO_READER = Reader("video", "video", VIDEO_EXTENSIONS, "emonb.io.video:load_video",
                      description="any FFmpeg-readable video through PyAV; time from frame PTS")
IMAGE_READER = Reader("image", "image", IMAGE_EXTENSIONS, "emonb.io.video:load_image",
                      description="still image (JPEG/PNG/...) as a one-frame video")
READERS = [VIDEO_READER, IMAGE_READER]
