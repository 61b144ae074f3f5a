"""Run every per-modality analysis on a session and put the results into its tree."""

from __future__ import annotations

import json
import time
import warnings
from typing import Mapping, Sequence

import xarray as xr

from ._checks import check_option
from .errors import EmonbError, EmonbValueError, EmonbWarning

__all__ = ["analyze", "add_fusion", "analysis_record", "failed_steps", "STEPS"]

#: modality -> (input node, result node, "module:function")
STEPS: dict[str, tuple[str, str, str]] = {
    "face": ("video", "face", "emonb.models.face.analyze:analyze_face"),
    "voice": ("audio", "voice", "emonb.models.voice.analyze:analyze_voice"),
    "physio": ("physio", "physio_features", "emonb.models.physio.analyze:analyze_physio"),
    "text": ("transcript", "text", "emonb.models.text.analyze:analyze_text"),
    "spot": ("face", "spots", "emonb.spotting.core:spot_expressions"),
}


def analysis_record(tree) -> dict[str, dict]:
    """Per step, what the analysis of a session did: ``{"face": {"status": "ok", ...}, ...}``.

    ``status`` is ``"ok"`` (with ``node``, ``seconds``, ``model``), ``"failed"`` (with ``error``) or
    ``"skipped"`` (with ``reason``). Empty for a session that was not analysed.
    """
    raw = tree.attrs.get("analysis", "") or "{}"
    try:
        rec = json.loads(raw)
    except (TypeError, ValueError):
        raise EmonbValueError(f"the session's attrs['analysis'] is not the JSON emonb writes: {str(raw)[:80]!r}") from None
    return rec if isinstance(rec, dict) else {}


def failed_steps(tree) -> dict[str, str]:
    """The steps whose analysis failed, with the reason: ``{"physio": "ValueError: ..."}``."""
    return {step: str(r.get("error", "")) for step, r in analysis_record(tree).items()
            if isinstance(r, dict) and r.get("status") == "failed"}


def _with_record(attrs: dict, record: dict) -> dict:
    """Root attrs carrying the analysis record; ``analysis_failed`` names the failed steps, so that
    the tree's repr shows them (it is dropped once every step has run)."""
    attrs = dict(attrs)
    attrs["analysis"] = json.dumps(record)
    failed = [f"{k}: {v.get('error', '')}" for k, v in record.items() if v.get("status") == "failed"]
    if failed:
        attrs["analysis_failed"] = "; ".join(failed)
    else:
        attrs.pop("analysis_failed", None)
    return attrs


def _with_subjects(face: xr.Dataset, video) -> xr.Dataset:
    """The face result with its subjects (:func:`emonb.subjects.assign_subjects`); unchanged, with a
    warning, where they cannot be assigned (a face result without time, say)."""
    from .subjects import assign_subjects

    if "time" not in face.dims or "face_box" not in face:
        return face
    try:
        return assign_subjects(face, video=video if video is not None and video.attrs.get("path") else None)
    except EmonbError as exc:
        warnings.warn(f"face analysis: subjects not assigned: {exc}", EmonbWarning, stacklevel=3)
        return face


def _function(spec: str):
    import importlib

    mod, _, attr = spec.partition(":")
    return getattr(importlib.import_module(mod), attr)


def analyze(tree: xr.DataTree, modalities: Sequence[str] = ("face", "voice", "physio", "text"), *,
            device: str = "auto", options: Mapping[str, Mapping] | None = None,
            errors: str = "warn", progress: bool = True) -> xr.DataTree:
    """Fill a session's result nodes: ``face``, ``voice``, ``physio_features``, ``text``.

    Parameters
    ----------
    tree : xarray.DataTree
        A session (:func:`emonb.load_session`, :func:`emonb.sample_session`).
    modalities : sequence of {"face", "voice", "physio", "text", "spot"}
        Steps to run; a step whose input node is missing is skipped and noted. ``"spot"``
        (expression spotting, node ``spots``) reads the ``face`` node, so it runs after ``"face"``.
    device : str
        Passed to the steps that run neural networks (``"auto"``, ``"cpu"``, ``"cuda"``).
    options : dict, optional
        Per-modality keyword options, e.g. ``{"face": {"stride": 2}, "physio": {"window": 10}}``.
    errors : {"warn", "raise"}
        With ``"warn"`` a failing step is recorded in ``attrs["analysis"]`` and the others still run.
    progress : bool
        Show progress bars.

    Returns
    -------
    xarray.DataTree
        A new tree: the input nodes plus one result node per step that ran; the root's
        ``attrs["analysis"]`` (JSON) records, per step, its status, seconds and error if any.
        The face result carries its subjects (:func:`emonb.subjects.assign_subjects`: the
        ``subject`` coordinate, ``face_subject``, ``attrs["main_subject"]``).
    """
    if not isinstance(tree, xr.DataTree):
        raise EmonbValueError(f"analyze needs a session DataTree, got {type(tree).__name__}")
    check_option("errors", errors, ("warn", "raise"))
    modalities = [modalities] if isinstance(modalities, str) else list(modalities)
    for m in modalities:
        check_option("modality", m, tuple(STEPS))
    if "spot" in modalities and "face" in modalities[modalities.index("spot"):]:
        modalities.remove("spot")
        modalities.insert(modalities.index("face") + 1, "spot")
    options = {k: dict(v) for k, v in (options or {}).items()}
    unknown = set(options) - set(STEPS)
    if unknown:
        raise EmonbValueError(f"options for unknown modalities {sorted(unknown)}; expected {list(STEPS)}")
    nodes = {name: tree[name].to_dataset(inherit=False) for name in tree.children}
    record = analysis_record(tree)
    produced: set[str] = set()
    for m in modalities:
        src_node, out_node, fn_name = STEPS[m]
        if src_node not in nodes:
            record[m] = {"status": "skipped", "reason": f"no {src_node} node"}
            continue
        opts = dict(options.get(m, {}))
        if m == "face":
            opts.setdefault("device", device)
        if m in ("face", "voice", "physio", "spot"):
            opts.setdefault("progress", progress)
        t0 = time.perf_counter()
        src = tree  # a step whose input was made in this run sees it
        if src_node in produced:
            src = xr.DataTree.from_dict({"/": xr.Dataset(attrs=dict(tree.attrs)),
                                         **{f"/{k}": v for k, v in nodes.items()}})
        try:
            fn = _function(fn_name)
            try:
                result = fn(src, **opts)
            except TypeError as exc:
                if "progress" in str(exc) and "progress" in opts:
                    opts.pop("progress")
                    result = fn(src, **opts)
                else:
                    raise
        except Exception as exc:
            if errors == "raise":
                raise
            msg = f"{type(exc).__name__}: {exc}"
            record[m] = {"status": "failed", "error": msg, "seconds": round(time.perf_counter() - t0, 3)}
            kind = "" if isinstance(exc, EmonbError) else " (unexpected)"
            warnings.warn(f"{m} analysis failed{kind}: {msg}", EmonbWarning, stacklevel=2)
            continue
        if isinstance(result, xr.DataTree):
            result = result.to_dataset()
        if m == "face":
            result = _with_subjects(result, nodes.get("video"))
        nodes[out_node] = result
        produced.add(out_node)
        record[m] = {"status": "ok", "node": out_node, "seconds": round(time.perf_counter() - t0, 3),
                     "model": str(result.attrs.get("model", ""))}
    d = {"/": xr.Dataset(attrs=_with_record(tree.attrs, record))}
    d.update({f"/{k}": v for k, v in nodes.items()})
    return xr.DataTree.from_dict(d)


def add_fusion(tree: xr.DataTree, *, method: str = "late", rate: float = 10.0, model=None,
               ensemble: str = "mean", errors: str = "warn") -> xr.DataTree:
    """Fuse whatever results a session has (:func:`emonb.fuse`) and add them as its ``fused`` node.

    With ``errors="warn"`` a session that cannot be fused (no result with emotions or valence and
    arousal) is returned unchanged with a warning, and ``attrs["analysis"]["fusion"]`` says why.
    """
    from .fusion import fuse
    from .session import make_tree

    check_option("errors", errors, ("warn", "raise"))
    record = analysis_record(tree)
    nodes = {n: tree[n].to_dataset(inherit=False) for n in tree.children}
    t0 = time.perf_counter()
    try:
        fused = fuse(tree, method=method, model=model, rate=rate, ensemble=ensemble)
    except Exception as exc:
        if errors == "raise":
            raise
        if isinstance(exc, EmonbError):  # nothing to fuse: a reason, not a fault
            warnings.warn(f"fusion skipped: {exc}", EmonbWarning, stacklevel=2)
            record["fusion"] = {"status": "skipped", "reason": str(exc)}
        else:
            msg = f"{type(exc).__name__}: {exc}"
            warnings.warn(f"fusion failed (unexpected): {msg}", EmonbWarning, stacklevel=2)
            record["fusion"] = {"status": "failed", "error": msg, "seconds": round(time.perf_counter() - t0, 3)}
        return make_tree(nodes, _with_record(tree.attrs, record))
    record["fusion"] = {"status": "ok", "node": "fused", "seconds": round(time.perf_counter() - t0, 3),
                        "model": str(fused.attrs.get("model", ""))}
    nodes["fused"] = fused
    return make_tree(nodes, _with_record(tree.attrs, record))
