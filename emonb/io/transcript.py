"""Transcripts: WebVTT, SRT, and CSV/TSV with start, end, text (and speaker) columns."""

from __future__ import annotations

import html
import re
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from .._checks import check_file
from ..errors import EmonbFileError, EmonbFormatError, EmonbValueError, EmonbWarning
from . import Reader, find_reader

__all__ = ["load_transcript", "parse_timestamp"]

_TS = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2})[.,](\d{1,3})$")
_CUE = re.compile(r"^\s*(\S+)\s+-->\s+(\S+)")
_VOICE = re.compile(r"^<v(?:\.[^ >]*)?\s+([^>]+)>")
_TAGS = re.compile(r"<[^>]+>")


def parse_timestamp(s: str) -> float:
    """``"01:02:03.500"``, ``"02:03,5"`` or ``"12.5"`` -> seconds.

    >>> parse_timestamp("00:01:02.500")
    62.5
    """
    s = s.strip()
    m = _TS.match(s)
    if m:
        h, mi, se, frac = m.groups()
        if int(se) > 59 or (int(mi) > 59 and h is not None):
            raise EmonbValueError(f"bad timestamp {s!r}: minutes and seconds run from 00 to 59")
        if int(mi) > 59:
            raise EmonbValueError(f"bad timestamp {s!r}: minutes run from 00 to 59 (write hours as hh:mm:ss.ttt)")
        return int(h or 0) * 3600 + int(mi) * 60 + int(se) + int(frac.ljust(3, "0")) / 1000.0
    v = float(s)
    if not np.isfinite(v):
        raise EmonbValueError(f"bad timestamp {s!r}: not a finite number of seconds")
    return v


def _cues(path: Path, lines: list[str], *, vtt: bool):
    out, i = [], 0
    while i < len(lines):
        m = _CUE.match(lines[i])
        if not m:
            i += 1
            continue
        try:
            start, end = parse_timestamp(m.group(1)), parse_timestamp(m.group(2))
        except ValueError as exc:
            why = f" ({exc})" if isinstance(exc, EmonbValueError) else ""
            raise EmonbFormatError(path, f"line {i + 1}: bad timestamp in {lines[i].strip()!r}{why}") from None
        i += 1
        text = []
        # a cue's text ends at a blank line, or at the next cue's timing line when the blank is missing
        while i < len(lines) and lines[i].strip() and not _CUE.match(lines[i]):
            text.append(lines[i].strip())
            i += 1
        if not vtt and text and i < len(lines) and _CUE.match(lines[i]) and text[-1].isdigit():
            text.pop()  # an SRT cue number that belongs to the next cue
        body = " ".join(text)
        speaker = ""
        if vtt:
            v = _VOICE.match(body)
            if v:
                speaker = v.group(1).strip()
        if not speaker:
            sp = re.match(r"^([A-Z][\w .'-]{0,30}):\s+(.*)$", body)
            if sp:
                speaker, body = sp.group(1), sp.group(2)
        # tags off, then character references (&amp; &nbsp; ...) decoded: "&nbsp;" is an empty cue
        out.append((start, end, html.unescape(_TAGS.sub("", body)).strip(), speaker))
    return out


def read_text(path: Path) -> tuple[str, str]:
    """The text of a file and the encoding it was read with.

    UTF-8 (with or without a byte-order mark) and UTF-16 with a byte-order mark are read as such.
    Other bytes are read as Windows-1252 (Latin-1 for the five bytes it leaves undefined) with an
    :class:`~emonb.errors.EmonbWarning`: nothing is silently replaced by U+FFFD.
    """
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise EmonbFormatError(path, "starts with a UTF-16 byte-order mark but is not valid UTF-16") from None
    try:
        return raw.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError as exc:
        where = exc.start
    try:
        text, enc = raw.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        text, enc = raw.decode("latin-1"), "latin-1"
    line = raw[:where].count(b"\n") + 1
    warnings.warn(f"{path}: not UTF-8 (first non-UTF-8 byte on line {line}); read as {enc}. Check accented "
                  "letters, and save transcripts as UTF-8 to avoid the guess", EmonbWarning, stacklevel=4)
    return text, enc


def _read_subtitles(path: Path, vtt: bool):
    text, enc = read_text(path)
    if vtt and not text.lstrip().startswith("WEBVTT"):
        raise EmonbFormatError(path, "a WebVTT file must start with 'WEBVTT'")
    return _cues(path, text.splitlines(), vtt=vtt), enc


def _read_table(path: Path):
    import pandas as pd

    import io

    sep = "\t" if path.suffix.lower() == ".tsv" else None
    text, enc = read_text(path)
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, engine="python")
    except Exception as exc:
        raise EmonbFormatError(path, f"cannot be parsed as a table: {exc}") from None
    cols = {c.lower().strip(): c for c in df.columns}

    def pick(*names):
        return next((cols[n] for n in names if n in cols), None)

    cs, ce, ct = pick("start", "onset", "begin", "start_time"), pick("end", "offset", "stop", "end_time"), \
        pick("text", "transcript", "utterance", "words")
    cd = pick("duration")
    sp = pick("speaker", "participant", "who")
    if cs is None or ct is None or (ce is None and cd is None):
        raise EmonbFormatError(path, f"needs start, end (or duration) and text columns; it has {list(df.columns)}")
    start = pd.to_numeric(df[cs], errors="coerce").to_numpy(float)
    end = pd.to_numeric(df[ce], errors="coerce").to_numpy(float) if ce is not None else \
        start + pd.to_numeric(df[cd], errors="coerce").to_numpy(float)
    speaker = df[sp].fillna("").astype(str).to_numpy() if sp is not None else [""] * len(df)
    return list(zip(start, end, df[ct].fillna("").astype(str), speaker)), enc


def load_transcript(path, *, t0: float = 0.0) -> xr.Dataset:
    """Load a transcript as a session node.

    Parameters
    ----------
    path : str or Path
        ``.vtt``, ``.srt``, or ``.csv``/``.tsv`` with ``start``, ``end`` (or ``duration``), ``text``
        and optionally ``speaker`` columns (times in seconds).
    t0 : float
        Offset on the session clock in seconds, added to start and end.

    Returns
    -------
    xarray.Dataset
        ``text(segment)``, ``start(segment)``, ``end(segment)`` (seconds), ``speaker(segment)``;
        attrs ``encoding`` (``utf-8``, or ``cp1252``/``latin-1`` guessed with a warning, then also
        in ``flags``). Timestamps with minutes or seconds above 59 are refused.
    """
    p = check_file(path, what="transcript file")
    reader = find_reader(p, "transcript")
    return reader(p, t0=t0)


def _load(path, *, t0=0.0):
    p = Path(path)
    suf = p.suffix.lower()
    rows, enc = _read_subtitles(p, vtt=True) if suf == ".vtt" else (
        _read_subtitles(p, vtt=False) if suf == ".srt" else _read_table(p))
    if not rows:
        raise EmonbFileError(p, "contains no transcript segments")
    start = np.array([r[0] for r in rows], float) + float(t0)
    end = np.array([r[1] for r in rows], float) + float(t0)
    bad = ~(np.isfinite(start) & np.isfinite(end)) | (end < start)
    if bad.any():
        raise EmonbFormatError(p, f"segment(s) {np.flatnonzero(bad).tolist()} have missing or reversed times")
    order = np.argsort(start, kind="stable")
    return xr.Dataset(
        {"text": ("segment", np.array([rows[i][2] for i in order], dtype=object)),
         "start": ("segment", start[order], {"units": "s"}),
         "end": ("segment", end[order], {"units": "s"}),
         "speaker": ("segment", np.array([rows[i][3] for i in order], dtype=object))},
        coords={"segment": np.arange(len(rows))},
        attrs={"modality": "transcript", "path": str(p.resolve()), "t0": float(t0),
               "format": suf.lstrip("."), "n_segments": len(rows), "encoding": enc,
               "flags": "" if enc == "utf-8" or enc == "utf-16" else f"encoding_guessed:{enc}"},
    )


TRANSCRIPT_READER = Reader("transcript", "transcript", (".vtt", ".srt", ".csv", ".tsv"), _load,
                           description="WebVTT, SRT, CSV/TSV with start/end/text(/speaker)")
READERS = [TRANSCRIPT_READER]
