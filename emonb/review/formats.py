"""Annotation files: CSV, BIDS ``events.tsv`` and ELAN ``.eaf``, both ways."""

from __future__ import annotations

import json
import math
import os
import re
import warnings
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from .._checks import check_file, check_option
from ..errors import EmonbFormatError, EmonbValueError, EmonbWarning

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


# characters XML 1.0 cannot hold at all (not even as &#..; references): C0 controls but tab, newline
# and carriage return; surrogates; U+FFFE and U+FFFF
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


class _XmlText:
    """Replace what XML cannot hold by U+FFFD, counting the replacements."""

    def __init__(self):
        self.replaced = 0

    def __call__(self, v) -> str:
        s = "" if v is None else str(v)
        s, n = _XML_BAD.subn("\ufffd", s)
        self.replaced += n
        return s


def _write_eaf(df: pd.DataFrame, path: Path, *, session=None):
    x = _XmlText()
    df = df.copy()
    for col in ("label", "reviewer", "session"):
        df[col] = df[col].map(x)
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
    prop.text = sessions[0] if sessions else x(session or "")
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
    if x.replaced:
        warnings.warn(f"{path}: {x.replaced} control character(s) that XML cannot hold (in labels, reviewer or "
                      "session ids) were written as U+FFFD; the CSV and TSV exports keep them", EmonbWarning,
                      stacklevel=4)
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
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ET.ParseError) as e:
        raise EmonbFormatError(path, f"cannot read annotations: {e}") from None
    prepared = []
    for r in rows:
        try:
            prepared.append(store._prepare_import(r, session=session, reviewer=reviewer, scheme=scheme))
        except EmonbValueError as e:
            raise EmonbFormatError(path, f"{r.get('_where', 'an annotation')}: {e}; nothing was imported") from None
        if session:  # an explicit session= puts every row in that session
            prepared[-1]["session"] = str(session)
    return store._import_rows(prepared) if prepared else []


def _number(rec, col, path, where, *, required=False):
    """A numeric cell as float (None when empty), or a clear error naming the file and the row."""
    v = _clean(rec.get(col))
    if v is None:
        if required:
            raise EmonbFormatError(path, f"{where}: {col} is empty; it must be a number of seconds")
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise EmonbFormatError(path, f"{where}: {col} {v!r} is not a number") from None
    if math.isnan(x):
        if required:
            raise EmonbFormatError(path, f"{where}: {col} is empty; it must be a number of seconds")
        return None
    if not math.isfinite(x):
        raise EmonbFormatError(path, f"{where}: {col} {v!r} is not a finite number")
    return x


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
    for i, rec in enumerate(df.to_dict("records")):
        where = f"row {i + 1} (line {i + 2})"
        onset = _number(rec, "onset", path, where, required=True)
        dur = _number(rec, "duration", path, where)
        if dur is None:
            off = _number(rec, "offset", path, where)
            if off is not None:
                dur = off - onset
        r = {"onset": onset, "duration": 0.0 if dur is None else dur,
             "label": "" if _clean(rec[label_col]) is None else str(rec[label_col]), "_where": where}
        for k in ("session", "reviewer", "scheme", "note"):
            r[k] = _clean(rec.get(k))
        for k in ("intensity", "confidence"):
            r[k] = _number(rec, k, path, where)
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
        try:
            slots[ts.get("TIME_SLOT_ID")] = float(v) / 1000.0 if v is not None else None
        except ValueError:
            raise EmonbFormatError(path, f"time slot {ts.get('TIME_SLOT_ID')!r}: TIME_VALUE {v!r} is not a "
                                         "number of milliseconds") from None
    session = None
    for p in root.iter("PROPERTY"):
        if p.get("NAME") == "emonb_session":
            session = p.text
    rows = []
    unaligned = 0
    for tier in root.iter("TIER"):
        reviewer = tier.get("ANNOTATOR") or tier.get("TIER_ID")
        for al in tier.iter("ALIGNABLE_ANNOTATION"):
            refs = al.get("TIME_SLOT_REF1"), al.get("TIME_SLOT_REF2")
            unknown = [r for r in refs if r not in slots]
            if unknown:
                raise EmonbFormatError(path, f"annotation {al.get('ANNOTATION_ID')!r} of tier {tier.get('TIER_ID')!r} "
                                             f"refers to time slot {unknown[0]!r}, which the file does not define")
            t1, t2 = slots[refs[0]], slots[refs[1]]
            if t1 is None or t2 is None:
                unaligned += 1  # unaligned slot: no time to put it at
                continue
            val = al.findtext("ANNOTATION_VALUE") or ""
            if not val.strip():
                continue
            rows.append({"onset": t1, "duration": max(0.0, t2 - t1), "label": val.strip(), "reviewer": reviewer,
                         "session": session, "scheme": None,
                         "_where": f"annotation {al.get('ANNOTATION_ID')!r} of tier {tier.get('TIER_ID')!r}"})
    if unaligned:
        warnings.warn(f"{path}: {unaligned} annotation(s) on unaligned time slots (no TIME_VALUE) were not "
                      "imported", EmonbWarning, stacklevel=3)
    return rows
