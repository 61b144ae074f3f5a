"""Annotation files: CSV, BIDS ``events.tsv`` and ELAN ``.eaf``, both ways."""

from __future__ import annotations

import json
import math
import os
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from .._checks import check_file, check_option
from ..errors import EmonbFormatError, EmonbValueError

FORMATS = ("csv", "bids", "eaf")
EAF_LINGUISTIC_TYPE = "emonb-label"


def _format_of(path: Path, format: str | None) -> str:
    if format is not None:
        return check_option("format", format, FORMATS)
    suf = path.suffix.lower()
    if suf == ".csv":
        return "csv"
    if suf == ".tsv":
        return "bids"
    if suf == ".eaf":
        return "eaf"
    raise EmonbValueError(f"cannot tell the annotation format of {path.name!r} from its suffix; "
                          f"use .csv, .tsv or .eaf, or pass format= one of {FORMATS}")


def export_annotations(store, path, *, session=None, format=None, include_deleted=False) -> Path:
    path = Path(os.fspath(path)).expanduser()
    fmt = _format_of(path, format)
    df = store.to_dataframe(session=session, include_deleted=include_deleted)
    if fmt == "csv":
        df.to_csv(path, index=False)
    elif fmt == "bids":
        _write_bids(df, path)
    else:
        _write_eaf(df, path, session=session or store.session)
    return path


def _write_bids(df: pd.DataFrame, path: Path):
    out = pd.DataFrame({
        "onset": df["onset"].round(6),
        "duration": df["duration"].round(6),
        "trial_type": df["label"],
        "reviewer": df["reviewer"],
        "scheme": df["scheme"],
        "intensity": df["intensity"],
        "confidence": df["confidence"],
        "note": df["note"],
        "session": df["session"],
        "annotation_id": df["id"],
    }).sort_values(["onset", "reviewer"], kind="stable")
    out.to_csv(path, sep="\t", index=False, na_rep="n/a")
    sidecar = path.with_suffix(".json")
    sidecar.write_text(json.dumps({
        "onset": {"Description": "start of the annotated interval", "Units": "s"},
        "duration": {"Description": "length of the annotated interval", "Units": "s"},
        "trial_type": {"Description": "label chosen by the reviewer from the coding scheme"},
        "reviewer": {"Description": "reviewer id"},
        "scheme": {"Description": "coding scheme: basic7 (basic emotions), facs (action units) or user-defined"},
        "intensity": {"Description": "intensity rated by the reviewer", "Units": "1 (0-1)"},
        "confidence": {"Description": "reviewer's confidence in the label", "Units": "1 (0-1)"},
        "note": {"Description": "free-text note"},
        "session": {"Description": "session id"},
        "annotation_id": {"Description": "id of the annotation in the emonb AnnotationStore"},
    }, indent=2))


def _write_eaf(df: pd.DataFrame, path: Path, *, session=None):
    sessions = sorted(df["session"].unique())
    if len(sessions) > 1:
        raise EmonbValueError(f"an ELAN file holds one session; this store has {sessions}: pass session=...")
    root = ET.Element("ANNOTATION_DOCUMENT", {
        "AUTHOR": ", ".join(sorted(df["reviewer"].unique())),
        "DATE": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "FORMAT": "3.0", "VERSION": "3.0",
        "xmlns:xsi": "http://www.w3.org/2001/XMLSchema-instance",
        "xsi:noNamespaceSchemaLocation": "http://www.mpi.nl/tools/elan/EAFv3.0.xsd",
    })
    header = ET.SubElement(root, "HEADER", {"MEDIA_FILE": "", "TIME_UNITS": "milliseconds"})
    prop = ET.SubElement(header, "PROPERTY", {"NAME": "emonb_session"})
    prop.text = sessions[0] if sessions else (session or "")
    last = ET.SubElement(header, "PROPERTY", {"NAME": "lastUsedAnnotationId"})
    last.text = str(len(df))
    time_order = ET.SubElement(root, "TIME_ORDER")
    slots: dict[int, str] = {}
    ms_on = (df["onset"] * 1000).round().astype(np.int64).to_numpy()
    ms_off = ((df["onset"] + df["duration"]) * 1000).round().astype(np.int64).to_numpy()
    for v in sorted(set(ms_on.tolist()) | set(ms_off.tolist())):
        sid = f"ts{len(slots) + 1}"
        slots[v] = sid
        ET.SubElement(time_order, "TIME_SLOT", {"TIME_SLOT_ID": sid, "TIME_VALUE": str(int(v))})
    n = 0
    for reviewer in sorted(df["reviewer"].unique()):
        tier = ET.SubElement(root, "TIER", {"TIER_ID": reviewer, "ANNOTATOR": reviewer,
                                           "LINGUISTIC_TYPE_REF": EAF_LINGUISTIC_TYPE})
        sub = df[df["reviewer"] == reviewer]
        for i in sub.index:
            n += 1
            ann = ET.SubElement(tier, "ANNOTATION")
            pos = df.index.get_loc(i)
            al = ET.SubElement(ann, "ALIGNABLE_ANNOTATION", {
                "ANNOTATION_ID": f"a{n}", "TIME_SLOT_REF1": slots[int(ms_on[pos])],
                "TIME_SLOT_REF2": slots[int(ms_off[pos])]})
            val = ET.SubElement(al, "ANNOTATION_VALUE")
            val.text = str(df.at[i, "label"])
    ET.SubElement(root, "LINGUISTIC_TYPE", {"LINGUISTIC_TYPE_ID": EAF_LINGUISTIC_TYPE,
                                            "TIME_ALIGNABLE": "true", "GRAPHIC_REFERENCES": "false"})
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="UTF-8", xml_declaration=True)


def import_annotations(store, path, *, session=None, reviewer=None, scheme=None, format=None) -> list[dict]:
    path = check_file(path, what="annotation file")
    fmt = _format_of(path, format)
    try:
        if fmt == "eaf":
            rows = _read_eaf(path)
        else:
            df = pd.read_csv(path, sep="," if fmt == "csv" else "\t", na_values=["n/a"], keep_default_na=True)
            rows = _rows_from_table(df, path, fmt)
    except (pd.errors.ParserError, UnicodeDecodeError, ET.ParseError) as e:
        raise EmonbFormatError(path, f"cannot read annotations: {e}") from None
    existing = {r["id"] for r in store.list(session=None, include_deleted=True)} if rows else set()
    added = []
    for r in rows:
        if r.get("id") in existing:
            continue
        sess = r.get("session") or session or store.session
        rev = r.get("reviewer") or reviewer or store.reviewer
        sch = r.get("scheme") if r.get("scheme") else scheme
        added.append(store.add(r["onset"], duration=r["duration"], label=r["label"], scheme=sch,
                               session=session or sess, reviewer=rev, intensity=r.get("intensity"),
                               confidence=r.get("confidence"), note=r.get("note"), id=r.get("id"),
                               _action="import"))
    return added


def _clean(v):
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, str) and v in ("", "n/a"):
        return None
    return v


def _rows_from_table(df: pd.DataFrame, path: Path, fmt: str) -> list[dict]:
    label_col = "label" if "label" in df else "trial_type" if "trial_type" in df else None
    if "onset" not in df or label_col is None:
        raise EmonbFormatError(path, f"needs columns onset and label (or trial_type); found {list(df.columns)}")
    if "duration" not in df and "offset" not in df:
        raise EmonbFormatError(path, "needs a duration or offset column")
    rows = []
    for rec in df.to_dict("records"):
        dur = _clean(rec.get("duration"))
        if dur is None and _clean(rec.get("offset")) is not None:
            dur = float(rec["offset"]) - float(rec["onset"])
        r = {"onset": float(rec["onset"]), "duration": 0.0 if dur is None else float(dur),
             "label": str(rec[label_col])}
        for k in ("session", "reviewer", "scheme", "intensity", "confidence", "note"):
            r[k] = _clean(rec.get(k))
        r["id"] = _clean(rec.get("id", rec.get("annotation_id")))
        if r["session"] is not None:
            r["session"] = str(r["session"])
        if fmt == "csv" and bool(_clean(rec.get("deleted")) or False):
            continue
        rows.append(r)
    return rows


def _read_eaf(path: Path) -> list[dict]:
    root = ET.parse(path).getroot()
    if root.tag != "ANNOTATION_DOCUMENT":
        raise EmonbFormatError(path, f"not an ELAN file (root element {root.tag!r})")
    units = root.find("HEADER").get("TIME_UNITS", "milliseconds") if root.find("HEADER") is not None else "milliseconds"
    if units != "milliseconds":
        raise EmonbFormatError(path, f"time units {units!r} not supported (milliseconds only)")
    slots = {}
    for ts in root.iter("TIME_SLOT"):
        v = ts.get("TIME_VALUE")
        slots[ts.get("TIME_SLOT_ID")] = float(v) / 1000.0 if v is not None else None
    session = None
    for p in root.iter("PROPERTY"):
        if p.get("NAME") == "emonb_session":
            session = p.text
    rows = []
    for tier in root.iter("TIER"):
        reviewer = tier.get("ANNOTATOR") or tier.get("TIER_ID")
        for al in tier.iter("ALIGNABLE_ANNOTATION"):
            t1, t2 = slots.get(al.get("TIME_SLOT_REF1")), slots.get(al.get("TIME_SLOT_REF2"))
            if t1 is None or t2 is None:
                continue  # unaligned slot: no time to put it at
            val = al.findtext("ANNOTATION_VALUE") or ""
            if not val.strip():
                continue
            rows.append({"onset": t1, "duration": max(0.0, t2 - t1), "label": val.strip(), "reviewer": reviewer,
                         "session": session, "scheme": None})
    return rows
