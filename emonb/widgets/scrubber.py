"""Scrubber: the video frame at ``current_time`` with face overlays, play/pause, step and a slider."""

from __future__ import annotations

import io
import threading
import time
from collections import OrderedDict

import anywidget
import numpy as np
import traitlets as t
import xarray as xr

from ..errors import EmonbError, EmonbValueError
from ._assets import read_asset
from ._faces import FaceView

#: most frames one ``ahead`` request may ask for
MAX_AHEAD = 64
#: most frames in one ``ahead`` message
AHEAD_BATCH = 6

#: landmarks sent for the overlay (a sparse subset of the 478-point mesh: contour, brows, eyes, lips)
KEY_LANDMARKS = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
                 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
                 70, 63, 105, 66, 107, 336, 296, 334, 293, 300, 33, 160, 158, 133, 153, 144, 362, 385,
                 387, 263, 373, 380, 61, 40, 37, 0, 267, 270, 291, 321, 314, 17, 84, 91, 1, 4)


def encode_jpeg(frame: np.ndarray, *, quality: int = 80) -> bytes:
    """RGB uint8 (H, W, 3) -> JPEG bytes."""
    try:
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(frame)).save(buf, format="JPEG", quality=int(quality))
        return buf.getvalue()
    except ImportError:  # pragma: no cover - PIL is nearly always there; cv2 as a fallback
        import cv2

        ok, enc = cv2.imencode(".jpg", frame[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        return enc.tobytes()


def _node(src, name):
    if isinstance(src, xr.DataTree):
        return src[name].to_dataset() if name in src.children else None
    return None


class Scrubber(anywidget.AnyWidget):
    """The video frame at ``current_time``, with overlays, play/pause, frame steps and a slider.

    Parameters
    ----------
    src : xarray.DataTree, xarray.Dataset or path
        A session tree (uses its ``video`` node and, when present, its ``face`` node for the overlay),
        a video node, or a video file.
    cache_size : int
        Number of encoded frames kept (LRU), so memory stays flat on long videos.
    prefetch : int
        After each frame sent, decode up to this many following frames in a background thread
        (bounded by the video reader's cache), so scrubbing forward and playback hit the cache.
        0 turns read-ahead off.
    browser_cache : int
        Frames the browser keeps decoded (about 0.9 MB each at 640x360). After each frame drawn the
        front-end asks for the frames just ahead of it that it does not hold (up to a quarter of this,
        at most :data:`MAX_AHEAD`); the kernel encodes and sends them from its background thread,
        so a slider moved forward or playback draws from the browser without a round trip to the
        kernel. 0 turns the browser cache off (every frame is asked for).
    quality : int
        JPEG quality (1-100).
    max_width : int
        Frames wider than this are downscaled before encoding (overlay coordinates follow).
    frame_format : {"auto", "jpeg", "raw"}
        How a requested frame travels: "jpeg" (small, decoded by the browser), "raw" (RGB pixels,
        about 0.7 MB at 640x360, drawn at once) or "auto": raw when the page comes from this machine
        (localhost), where bytes are cheap and decoding is the cost, JPEG otherwise. Frames sent
        ahead to the browser's cache are always JPEG.
    timelines : bool
        Draw timelines (emotions, valence/arousal, voice, physiology, fused, spotted expressions and
        reviewer annotations, when present) under the frame: an Altair chart with a cursor at
        ``current_time``; clicking a timeline seeks, shift-drag selects ``range_start``..``range_end``.

    Notes
    -----
    Synced traits: ``current_time`` (s, session clock), ``playing``, ``show_overlay``, ``duration``,
    ``start``, ``fps``, ``width``/``height`` (of the frames sent), ``message``, ``range_start``/
    ``range_end``, and ``timeline_spec`` (the timelines' Vega-Lite spec, from
    :func:`emonb.widgets.timeline.timeline_chart`; ``timelines`` keeps the tracks, Python side only).
    Frames travel only on request: the front-end sends ``{"type": "frame", "t": ...}`` and gets the
    JPEG bytes back in a custom message with the frame's own time, position and overlay; it asks for
    the frame times once (``{"type": "times"}``, one float64 buffer) to find frames in its own cache,
    and for frames ahead with ``{"type": "ahead", "positions": [...], "gen": n}`` (answered with
    ``{"type": "ahead", "frames": [...]}`` messages with one JPEG buffer per frame, the most wanted
    frame first and alone; a newer request cancels the rest of an older one). The vendored Vega and
    Vega-Lite builds travel the same way, once per page (``{"type": "vega"}``), so nothing is loaded
    from the network.
    """

    _esm = t.Unicode(read_asset("scrubber.js")).tag(sync=True)
    _css = t.Unicode(read_asset("scrubber.css")).tag(sync=True)

    current_time = t.Float(0.0).tag(sync=True)
    playing = t.Bool(False).tag(sync=True)
    show_overlay = t.Bool(True).tag(sync=True)
    start = t.Float(0.0).tag(sync=True)
    duration = t.Float(0.0).tag(sync=True)
    fps = t.Float(0.0).tag(sync=True)
    width = t.Int(0).tag(sync=True)
    height = t.Int(0).tag(sync=True)
    has_video = t.Bool(False).tag(sync=True)
    has_face = t.Bool(False).tag(sync=True)
    message = t.Unicode("").tag(sync=True)
    frame_time = t.Float(0.0).tag(sync=True)  # time of the frame last sent
    timelines = t.List(t.Dict())  # downsampled tracks (Python side; the front-end gets timeline_spec)
    timeline_spec = t.Dict().tag(sync=True)  # Vega-Lite spec of the timelines (Altair, data inline)
    range_start = t.Float(None, allow_none=True).tag(sync=True)  # selected range (shift-drag on a timeline)
    range_end = t.Float(None, allow_none=True).tag(sync=True)
    face = t.Unicode("auto").tag(sync=True)  # the face or subject shown: "auto" (whoever is in view), a subject, a face id
    face_options = t.List(t.Dict()).tag(sync=True)  # [{"value", "label"}] for the face selector
    tiers = t.List(t.Dict()).tag(sync=True)  # annotation tiers (interval tracks), updated live on the timelines
    reviewers = t.List(t.Unicode())  # reviewers that always get a tier (the annotator's first)
    has_audio = t.Bool(False).tag(sync=True)
    audio_t0 = t.Float(0.0).tag(sync=True)  # session time (s) of the first audio sample sent
    speed = t.Float(1.0).tag(sync=True)  # playback rate, 0.25-2
    muted = t.Bool(False).tag(sync=True)
    proxy_ready = t.Bool(False).tag(sync=True)  # the all-intra proxy is there: jumps draw it first
    browser_cache = t.Int(48).tag(sync=True)  # frames the front-end keeps decoded (0: none)
    frame_format = t.Enum(["auto", "jpeg", "raw"], "auto").tag(sync=True)  # how requested frames travel

    def __init__(self, src=None, *, cache_size: int = 64, quality: int = 80, max_width: int = 640,
                 timelines: bool = True, prefetch: int = 24, browser_cache: int = 48,
                 frame_format: str = "auto", proxy: bool = True, audio: bool = True, **kwargs):
        super().__init__(browser_cache=max(int(browser_cache), 0), frame_format=frame_format, **kwargs)
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._cache_lock = threading.Lock()  # the background thread encodes too
        self._prefetch = max(int(prefetch), 0)
        self._prefetch_gen = 0
        self._prefetch_wake = threading.Event()
        self._prefetch_job: tuple = ([], None)  # ([(kind, position), ...], request gen)
        self._moves: list[int] = []  # positions of the last frames asked for, to predict a drag
        self._prefetch_thread = None
        self.n_ahead = 0  # frames sent ahead to the browser's cache
        self._cache_size = int(cache_size)
        self._quality = int(quality)
        self._max_width = int(max_width)
        self._reader = None
        self._times = np.zeros(0)
        self._index = np.zeros(0, int)
        self._scale = 1.0
        self._face = None
        self._faces = FaceView(None)
        self._proxy = None
        self._audio = None  # (samples float32, rate, t0)
        self._tree = src if isinstance(src, xr.DataTree) else None
        self.n_sent = 0
        self.n_proxy = 0
        messages = []
        video = None
        if isinstance(src, xr.DataTree):
            video = _node(src, "video")
            self._face = _node(src, "face")
            if video is None:
                messages.append("this session has no video: no frames to show")
        elif isinstance(src, xr.Dataset):
            video = src
        elif src is not None:
            from ..io.video import load_video

            video = load_video(src, frames=False)
        if video is not None:
            try:
                self._open_video(video)
            except EmonbError as e:
                messages.append(f"video unavailable: {e}")
        if self.has_video and self._face is None:
            messages.append("no face results: run eb.analyze_face for overlays")
        elif self._face is not None and "face_box" not in self._face:
            messages.append("face node has no face_box: no overlay")
            self._face = None
        self.has_face = self._face is not None
        self._faces = FaceView(self._face, self._times if self._times.size else None)
        self.face_options = self._faces.options() if self.has_face else []
        self.face = self._faces.check(self.face)
        if proxy and self.has_video:
            self._start_proxy(video)
        if audio:
            self._audio = _session_audio(src, video)
            if self._audio is not None:
                self.has_audio, self.audio_t0 = True, float(self._audio[2])
        if not self.has_video and self._face is not None and "time" in self._face.coords:
            ft = self._face["time"].to_numpy().astype(float)
            if ft.size:
                self.start, self.duration = float(ft[0]), float(ft[-1] - ft[0])
        self._timelines_on = bool(timelines and isinstance(src, xr.DataTree))
        if self._timelines_on:
            if not self.duration:
                end = max((float(n["time"].values[-1]) for n in src.subtree
                           if "time" in n.coords and n.sizes.get("time", 0)), default=0.0)
                self.duration = end - self.start
            try:
                self._build_timelines()
            except ImportError:
                messages.append("timelines need altair (pip install altair)")
        self.message = "; ".join(messages)
        self.current_time = self.start
        self.observe(self._on_face, "face")
        self.observe(self._on_tiers, "tiers")
        self.on_msg(self._on_msg)

    # ------------------------------------------------------------------ timelines, faces, tiers
    #: width (px) of the timelines' plots
    timeline_width = 900

    def _build_timelines(self):
        from .timeline import annotation_tiers, timeline_spec, timeline_tracks

        end = self.start + self.duration
        tracks = timeline_tracks(self._tree, start=self.start, end=end, faces=self._faces, face=self.face)
        stored = [tr for tr in tracks if tr.get("tier") is not None]
        tracks = [tr for tr in tracks if tr.get("tier") is None]
        live = list(self.tiers) if self.tiers else stored
        if self.reviewers and not self.tiers:
            live = annotation_tiers([], start=self.start, end=end, reviewers=self.reviewers) + \
                [tr for tr in stored if tr["tier"] not in self.reviewers]
        self.timelines = tracks + live
        self.timeline_spec = timeline_spec(self.timelines, start=self.start, end=end, width=self.timeline_width)

    @t.validate("face")
    def _valid_face(self, proposal):
        faces = getattr(self, "_faces", None)  # an unknown face or subject: whoever is in view
        return proposal["value"] if faces is None else faces.check(str(proposal["value"]))

    def _on_face(self, change):
        if self._timelines_on:
            self._build_timelines()

    def _on_tiers(self, change):
        """Annotation tiers changed: the front-end updates their data in place; a tier that is new
        (a reviewer the timelines have no row for) needs the chart built again."""
        if not self._timelines_on:
            return
        have = {tr.get("tier") for tr in self.timelines if tr.get("tier") is not None}
        if {tr.get("tier") for tr in change["new"]} - have:
            self._build_timelines()
        else:
            self.timelines = [tr for tr in self.timelines if tr.get("tier") is None] + list(change["new"])

    def set_annotations(self, rows: list[dict]):
        """Show these annotation rows as tiers (one per reviewer, :attr:`reviewers` first)."""
        from .timeline import annotation_tiers

        stored = [tr for tr in self.timelines if tr.get("tier") is not None]
        keep = [tr["tier"] for tr in stored]
        self.tiers = annotation_tiers(rows, start=self.start, end=self.start + self.duration,
                                      reviewers=list(dict.fromkeys(list(self.reviewers) + keep)))

    # ------------------------------------------------------------------ proxy and sound
    def _start_proxy(self, video: xr.Dataset):
        from .proxy import video_proxy

        path = video.attrs.get("path")
        if not path or self._reader is None:
            return
        try:
            self._proxy = video_proxy(path, int(self._reader.n_frames))
        except (OSError, EmonbError):
            self._proxy = None
            return
        if self._proxy.ready:
            self.proxy_ready = True
        else:
            def done(p, me=self):
                me.proxy_ready = bool(p.ready)
            thread = self._proxy.build_in_background()
            threading.Thread(target=lambda: (thread.join(), done(self._proxy)), daemon=True).start()

    @property
    def proxy(self):
        """The :class:`~emonb.widgets.proxy.VideoProxy` jumps are drawn from first (None: none)."""
        return self._proxy

    def audio_wav(self) -> bytes:
        """The session's sound (the audio node, else the video's own track) as a 16-bit mono WAV."""
        import wave

        if self._audio is None:
            raise EmonbValueError("this session has no sound")
        x, rate, _ = self._audio
        pcm = (np.clip(np.nan_to_num(x, nan=0.0), -1.0, 1.0) * 32767).astype("<i2")
        buf = io.BytesIO()
        with wave.open(buf, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(int(rate))
            w.writeframes(pcm.tobytes())
        return buf.getvalue()

    def send_proxies(self, positions) -> list[int]:
        """Send the proxy frames at ``positions`` (at most :data:`MAX_AHEAD`) in one message, for
        playback: they are encoded already, so this costs the kernel next to nothing."""
        if self._proxy is None or not self.has_video:
            return []
        meta, bufs = [], []
        for p in list(positions)[:MAX_AHEAD]:
            try:
                p = int(p)
            except (TypeError, ValueError):
                continue
            if not 0 <= p < self._times.size:
                continue
            small = self._proxy.jpeg(int(self._index[p]))
            if small is None:
                continue
            ft = float(self._times[p])
            meta.append({"position": p, "frame_time": ft, "overlay": self._overlay_sent(ft)})
            bufs.append(small)
        if meta:
            self.send({"type": "proxies", "frames": meta}, buffers=bufs)
            self.n_proxy += len(meta)
        return [m["position"] for m in meta]

    def send_audio(self) -> dict:
        """Send the sound (one WAV buffer) and the session time of its first sample (``t0``)."""
        if self._audio is None:
            msg = {"type": "audio", "error": "no sound in this session"}
            self.send(msg)
            return msg
        x, rate, t0 = self._audio
        msg = {"type": "audio", "t0": float(t0), "rate": int(rate), "duration": float(x.size / rate)}
        self.send(msg, buffers=[self.audio_wav()])
        return msg

    def _open_video(self, video: xr.Dataset):
        from ..io.video import video_reader

        self._reader = video_reader(video)
        times = video["time"].to_numpy().astype(float)
        if "frame_index" in video.coords:
            index = video["frame_index"].to_numpy().astype(int)
        else:
            index = np.arange(times.size)
        order = np.argsort(times)
        self._times, self._index = times[order], index[order]
        w, h = int(video.attrs.get("width", self._reader.width)), int(video.attrs.get("height", self._reader.height))
        self._scale = min(1.0, self._max_width / w) if w else 1.0
        self.width, self.height = int(round(w * self._scale)), int(round(h * self._scale))
        fps = float(video.attrs.get("fps") or 0.0)
        if not fps and times.size > 1:
            fps = 1.0 / float(np.median(np.diff(self._times)))
        self.fps = fps
        if times.size:
            last = 1.0 / fps if fps else 0.0
            self.start = float(self._times[0])
            self.duration = float(self._times[-1] - self._times[0] + last)
        self.has_video = times.size > 0

    # ------------------------------------------------------------------ frames
    def frame_position(self, t: float) -> int:
        """Position (0-based, in time order) of the frame on screen at session time ``t``."""
        if not self._times.size:
            raise EmonbValueError("no video frames in this scrubber")
        i = int(np.searchsorted(self._times, float(t) + 1e-9, side="right") - 1)
        return min(max(i, 0), self._times.size - 1)

    def frame_jpeg(self, t: float | None = None) -> bytes:
        """JPEG bytes of the frame on screen at ``t`` (default ``current_time``), from a small LRU cache."""
        return self._jpeg_at(self.frame_position(self.current_time if t is None else t))

    def _rgb_at(self, pos: int) -> np.ndarray:
        """The frame at position ``pos``, RGB uint8 at the size sent (``height`` x ``width``)."""
        frame = self._reader.frame(int(self._index[pos]))
        if self._scale < 1.0:
            from PIL import Image

            frame = np.asarray(Image.fromarray(frame).resize((self.width, self.height), Image.BILINEAR))
        return frame

    def _jpeg_at(self, pos: int) -> bytes:
        with self._cache_lock:
            hit = self._cache.get(pos)
            if hit is not None:
                self._cache.move_to_end(pos)
                return hit
        data = encode_jpeg(self._rgb_at(pos), quality=self._quality)
        with self._cache_lock:
            self._cache[pos] = data
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return data

    @property
    def cache_info(self) -> dict:
        return {"frames": len(self._cache), "bytes": sum(len(v) for v in self._cache.values()),
                "max_frames": self._cache_size}

    def overlay_at(self, t: float | None = None) -> dict:
        """Overlay data at ``t``: the faces of the analysed frame belonging to ``t`` (the rule of
        :class:`~emonb.widgets._faces.FaceView`, shared with the AU inspector and the timelines),
        each with its box (px of the frames sent), key landmarks, top emotion + probability, its
        face or subject ``key`` and ``selected`` (the one the selector shows); ``analysed_time``."""
        t = self.current_time if t is None else float(t)
        face = self._face
        k = self._faces.index_at(t) if face is not None else None
        if k is None:
            return {"faces": []}
        shown = self._faces.column_at(k, self.face)
        s = self._scale
        out = []
        boxes = face["face_box"].isel(time=k).to_numpy()
        if boxes.ndim == 1:
            boxes = boxes[None]
        for j, box in enumerate(boxes):
            if not np.all(np.isfinite(box)):
                continue
            key = self._faces.key_at(k, j)
            item = {"face": j, "key": key, "name": self._faces.noun(key), "selected": j == shown,
                    "box": [float(v) * s for v in box]}
            if "face_emotion" in face:
                p = face["face_emotion"].isel(time=k)
                if "face" in p.dims:
                    p = p.isel(face=j)
                pv = p.to_numpy().astype(float)
                if np.isfinite(pv).any():
                    m = int(np.nanargmax(pv))
                    item["emotion"] = str(p["emotion"].values[m])
                    item["probability"] = float(pv[m])
                    item["model"] = str(face["face_emotion"].attrs.get("model", face.attrs.get("model", "")))
            if "face_landmarks" in face:
                lm = face["face_landmarks"].isel(time=k)
                if "face" in lm.dims:
                    lm = lm.isel(face=j)
                pts = lm.to_numpy()[list(KEY_LANDMARKS), :2] * s
                if np.isfinite(pts).all():
                    item["landmarks"] = np.round(pts, 1).tolist()
            out.append(item)
        return {"faces": out, "analysed_time": float(self._faces.times[k])}

    def step(self, n: int = 1):
        """Move ``current_time`` by ``n`` frames (negative = back)."""
        if not self._times.size:
            return
        pos = min(max(self.frame_position(self.current_time) + int(n), 0), self._times.size - 1)
        self.current_time = float(self._times[pos])

    def _on_msg(self, widget, content, buffers):
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "frame":
            self.send_frame(content.get("t"), request_id=content.get("id"), raw=bool(content.get("raw")),
                            proxy=bool(content.get("proxy")), proxy_only=bool(content.get("proxy_only")))
        elif kind == "audio":
            self.send_audio()
        elif kind == "proxies":
            self.send_proxies(content.get("positions") or [])
        elif kind == "step":
            self.step(int(content.get("n", 1)))
        elif kind == "vega":
            self.send_vega(gzip=bool(content.get("gzip", True)))
        elif kind == "times":
            self.send_times()
        elif kind == "ahead":
            self.send_ahead(content.get("positions") or [], gen=content.get("gen"))
        elif kind == "ping":  # transport round trip, without a frame (benchmarks/scrubber_latency.py)
            self.send({"type": "pong", "id": content.get("id")})

    def send_vega(self, *, gzip: bool = True) -> dict:
        """Send the vendored Vega and Vega-Lite builds (two buffers) the timelines render with."""
        from .timeline import VEGA_VERSIONS, vega_sources

        msg = {"type": "vega", "encoding": "gzip" if gzip else "identity", "versions": VEGA_VERSIONS}
        self.send(msg, buffers=list(vega_sources(compressed=gzip)))
        return msg

    def send_frame(self, t=None, *, request_id=None, raw: bool = False, proxy: bool = False,
                   proxy_only: bool = False):
        """Send the frame at ``t`` (and its overlay) to the front-end; returns the message sent.

        ``raw=True`` sends the RGB pixels (``format: "rgb"``, width x height x 3 bytes) instead of a
        JPEG: no encoding here and no decoding in the browser, for a browser on the same machine
        (the front-end asks for it when the page comes from localhost, see ``frame_format``).
        ``proxy=True`` (a jump the browser has nothing near) first sends the proxy frame
        (``{"type": "proxy", id, position, frame_time, overlay}`` with its small JPEG), at once,
        before the full frame is decoded; ``proxy_only=True`` (playback that fell behind) sends only
        the proxy frame (``final: true``) when there is one, so the picture keeps up with the sound
        while the full frames come ahead."""
        t0 = time.perf_counter()
        t = self.current_time if t is None else float(t)
        if not self.has_video:
            msg = {"type": "frame", "id": request_id, "t": t, "error": self.message or "no video",
                   "overlay": self._overlay_sent(t)}
            self.send(msg)
            return msg
        pos = self.frame_position(t)
        if (proxy_only or (proxy and not self._cheap(pos, raw))) and self._proxy is not None:
            small = self._proxy.jpeg(int(self._index[pos]))
            if small is not None:
                ft = float(self._times[pos])
                msg = {"type": "proxy", "id": request_id, "t": t, "frame_time": ft, "position": pos,
                       "overlay": self._overlay_sent(ft), "final": bool(proxy_only),
                       "server_ms": round(1000 * (time.perf_counter() - t0), 2)}
                self.send(msg, buffers=[small])
                self.n_proxy += 1
                if proxy_only:
                    self._start_job([])  # nothing sent ahead unasked: the page asks for what it needs
                    return msg
                # the full frame from the background thread: this handler returns at once, so the
                # kernel's I/O thread sends the proxy frame now, not after the decoding
                self._start_job([("full", (pos, raw, request_id, t))])
                return msg
        return self._full_frame(pos, t, raw=raw, request_id=request_id, t0=t0)

    def _cheap(self, pos: int, raw: bool) -> bool:
        """Whether the full frame at ``pos`` costs little: encoded already, decoded already, or a few
        frames on from the last one decoded (no decoding from a keyframe); then no proxy is sent."""
        if not raw and pos in self._cache:
            return True
        reader, index = self._reader, int(self._index[pos])
        if index in getattr(reader, "_cache", {}):
            return True
        nxt = getattr(reader, "_next_index", None)
        return nxt is not None and 0 <= index - nxt < 4

    def _full_frame(self, pos: int, t: float, *, raw: bool, request_id, t0: float) -> dict:
        """Send the frame at ``pos`` (JPEG or raw RGB) with its overlay, and start the read-ahead."""
        try:
            data = np.ascontiguousarray(self._rgb_at(pos)).tobytes() if raw else self._jpeg_at(pos)
        except EmonbError as e:
            msg = {"type": "frame", "id": request_id, "t": t, "error": str(e)}
            self.send(msg)
            return msg
        ft = float(self._times[pos])
        msg = {"type": "frame", "id": request_id, "t": t, "frame_time": ft, "position": pos,
               "format": "rgb" if raw else "jpeg",
               "overlay": self._overlay_sent(ft)}
        msg["server_ms"] = round(1000 * (time.perf_counter() - t0), 2)
        self.frame_time = ft
        self.n_sent += 1
        job = self._read_ahead_job(pos)
        msg["ahead"] = [p for kind, p in job if kind == "send"]  # the front-end expects these, does not ask
        self.send(msg, buffers=[data])
        self._start_job(job)  # after the reply; an empty job stops frames still to be sent ahead
        return msg

    def _overlay_sent(self, t: float) -> dict:
        """The overlay that goes with a frame: :meth:`overlay_at`, or no faces when overlays are off."""
        return self.overlay_at(t) if self.show_overlay else {"faces": []}

    def send_times(self) -> dict:
        """Send the frame times (session clock, time order) as one little-endian float64 buffer."""
        msg = {"type": "times", "n": int(self._times.size)}
        self.send(msg, buffers=[np.ascontiguousarray(self._times, dtype="<f8").tobytes()])
        return msg

    def send_ahead(self, positions, *, gen=None) -> list[int]:
        """Send the frames at ``positions`` (frame positions in time order) to the browser's cache,
        from the background thread, in a few ``{"type": "ahead"}`` messages; returns the positions
        queued. A later call, or any frame request, cancels what is left of this one."""
        if not self.has_video or self._reader is None:
            return []
        n = self._times.size
        wanted = []
        for p in positions:
            try:
                p = int(p)
            except (TypeError, ValueError):
                continue
            if 0 <= p < n and p not in wanted:
                wanted.append(p)
        wanted = wanted[:MAX_AHEAD]
        self._start_job([("send", p) for p in wanted], gen)
        return wanted

    def predicted_position(self) -> int | None:
        """Where the next request most likely lands when the last moves were a steady drag: the last
        position plus the last move, when the last two moves agree (same direction, about the same
        size, more than one frame); None otherwise (steps, playback, random jumps)."""
        if len(self._moves) < 3:
            return None
        a, b, c = self._moves[-3:]
        d1, d2 = b - a, c - b
        if abs(d2) <= 1 or d1 * d2 <= 0 or abs(d2 - d1) > max(2, abs(d2) // 4):
            return None
        q = c + d2
        return q if 0 <= q < self._times.size else None

    # ------------------------------------------------------------------ read-ahead
    def _read_ahead_job(self, pos: int) -> list:
        """Background work after the frame at ``pos`` is sent: ``[(kind, position), ...]``.

        During a steady drag (with a browser cache): "send" the frames where the next move lands,
        before they are asked for. Without a browser cache: "decode" the next ``prefetch`` frames into
        the reader's cache (bounded by it, so memory stays flat), since scrubbing and playback mostly
        move forward and the next request is then a cache hit (JPEG encoding only). With a browser
        cache the browser asks for what it needs itself.
        """
        if self._reader is None:
            return []
        self._moves = (self._moves + [pos])[-3:]
        job = []
        q = self.predicted_position() if self.browser_cache else None
        if q is not None:
            job += [("send", p) for p in (q, q + 1, q - 1) if 0 <= p < self._times.size]
        if self._prefetch and not self.browser_cache:
            ahead = min(self._prefetch, max(getattr(self._reader, "cache_size", 32) - 4, 0))
            job += [("decode", p) for p in range(pos + 1, min(pos + 1 + ahead, self._times.size))]
        return job

    def _start_job(self, job: list, request=None):
        """Hand ``job`` to the background thread; what it was doing stops after the current frame."""
        if not job:
            self._prefetch_gen += 1
            return
        # the job before the generation: a thread that reads the old generation with the new job
        # stops at its first check and, woken again, starts the new job
        self._prefetch_job = (job, request)
        self._prefetch_gen += 1
        self._prefetch_wake.set()
        if self._prefetch_thread is None or not self._prefetch_thread.is_alive():
            self._prefetch_thread = threading.Thread(target=self._prefetch_loop, name="emonb-scrubber-prefetch",
                                                     daemon=True)
            self._prefetch_thread.start()

    def _prefetch_loop(self):
        reader = self._reader
        while self._prefetch_wake.wait(timeout=30.0):
            self._prefetch_wake.clear()
            gen, (job, request) = self._prefetch_gen, self._prefetch_job
            batch, messages = [], 0  # frames for the browser go in few messages (each costs the page ~1-2 ms)
            for kind, p in job:
                if gen != self._prefetch_gen:
                    break  # a newer request: start again from there
                try:
                    if kind == "full":  # the full frame after a proxy frame (then its read-ahead job)
                        pos, raw, rid, t = p
                        self._full_frame(pos, t, raw=raw, request_id=rid, t0=time.perf_counter())
                        continue
                    if kind == "decode":
                        reader.frame(int(self._index[p]))
                        continue
                    batch.append((p, self._jpeg_at(p)))
                except Exception:  # noqa: BLE001  (a frame that fails here fails again, clearly, on request)
                    break
                # the first frame (the most wanted) alone, then up to AHEAD_BATCH per message
                if len(batch) >= (AHEAD_BATCH if messages else 1):
                    self._send_ahead_batch(batch, request)
                    batch, messages = [], messages + 1
            if batch:
                self._send_ahead_batch(batch, request)
        self._prefetch_thread = None

    def _send_ahead_batch(self, batch: list, request):
        meta = []
        for p, _ in batch:
            ft = float(self._times[p])
            meta.append({"position": p, "frame_time": ft, "overlay": self._overlay_sent(ft)})
        self.send({"type": "ahead", "gen": request, "frames": meta}, buffers=[data for _, data in batch])
        self.n_ahead += len(batch)


def _session_audio(src, video) -> tuple | None:
    """``(samples float32, rate, t0)``: the session's audio node, else the video file's own sound."""
    if isinstance(src, xr.DataTree) and "audio" in src.children and "audio" in src["audio"].data_vars:
        da = src["audio"]["audio"]
        if "time" in da.dims and da.sizes["time"]:
            rate = float(src["audio"].attrs.get("sampling_rate") or 0.0)
            tt = da["time"].to_numpy()
            if not rate and tt.size > 1:
                rate = 1.0 / float(np.median(np.diff(tt)))
            return da.to_numpy().astype(np.float32).reshape(-1), rate, float(tt[0])
    path = video.attrs.get("path") if isinstance(video, xr.Dataset) else None
    if not path:
        return None
    try:
        import av

        with av.open(str(path)) as c:
            if not c.streams.audio:
                return None
        from ..io.audio import load_audio

        a = load_audio(path, sr=16000, t0=float(video.attrs.get("t0", 0.0)))
    except Exception:  # noqa: BLE001  (a video without readable sound plays silent)
        return None
    tt = a["time"].to_numpy()
    return a["audio"].to_numpy().astype(np.float32).reshape(-1), 16000.0, float(tt[0]) if tt.size else 0.0
