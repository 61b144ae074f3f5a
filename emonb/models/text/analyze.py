"""Sentiment of transcript segments (VADER), per segment and on the session clock.

emonb does not transcribe speech. It reads transcripts made elsewhere: WebVTT, SRT, or CSV/TSV
with ``start``, ``end`` (seconds), ``text`` and optional ``speaker`` columns.

>>> import emonb as eb
>>> text = eb.analyze_text(tree)          # tree["transcript"]: text/start/end/speaker(segment)  # doctest: +SKIP
>>> text.text_valence.plot()                                                                 # doctest: +SKIP
"""

from __future__ import annotations

import os
import threading

import numpy as np

from ..._checks import check_positive, require
from ...errors import EmonbValueError

__all__ = ["analyze_text", "sentiment_scores", "build_vader"]

DEFAULT_MODEL = "vader"
POLARITIES = ("negative", "neutral", "positive")

_ANALYZER = None
_LOCK = threading.Lock()


class VaderRuntime:
    """VADER analyzer; the lexicon loads on first use."""

    def __init__(self, spec, *, device: str = "auto"):
        self.spec = spec
        self.device = device

    def load(self):
        global _ANALYZER
        with _LOCK:
            if _ANALYZER is None:
                mod = require("vaderSentiment.vaderSentiment", extra="text", purpose="text sentiment")
                _ANALYZER = mod.SentimentIntensityAnalyzer()
        self.model_ = _ANALYZER
        return self

    def predict(self, texts) -> np.ndarray:
        """(n, 4) float32: negative, neutral, positive, compound; NaN rows for text without words.

        Empty cues, whitespace, punctuation or symbols only (``"..."``, ``"♪"``), ``None`` and NaN
        have nothing to score: they get NaN, not a neutral 0.0.
        """
        self.load()
        out = np.full((len(texts), 4), np.nan, np.float32)
        for i, t in enumerate(texts):
            if t is None or (isinstance(t, float) and not np.isfinite(t)):
                continue
            t = str(t)
            if not _has_words(t):
                continue
            s = self.model_.polarity_scores(t)
            if s["neg"] + s["neu"] + s["pos"] == 0:  # VADER found no token to score
                continue
            out[i] = (s["neg"], s["neu"], s["pos"], s["compound"])
        return out

    def provenance(self) -> dict:
        return self.spec.provenance(device="cpu")


def _has_words(t: str) -> bool:
    """Whether ``t`` holds a letter or digit (and is not the "nan" of a missing table cell)."""
    st = t.strip()
    if not st or st.lower() == "nan":
        return False
    return any(ch.isalnum() for ch in st)


def build_vader(spec, *, device="auto", **_):
    return VaderRuntime(spec, device=device)


def sentiment_scores(texts) -> np.ndarray:
    """VADER scores of a list of strings: (n, 4) negative, neutral, positive, compound."""
    from .. import get_model

    if isinstance(texts, str):
        texts = [texts]
    return get_model(DEFAULT_MODEL).create().predict(list(texts))


def _resolve_transcript(src):
    """Return a Dataset with text/start/end/speaker on ``segment``."""
    import pandas as pd
    import xarray as xr

    if isinstance(src, xr.DataTree):
        if "transcript" not in src.children:
            raise EmonbValueError("the session has no 'transcript' node; load one with eb.load_transcript")
        src = src["transcript"].to_dataset()
    if isinstance(src, (str, os.PathLike)):
        from ...io.transcript import load_transcript

        src = load_transcript(src)
    if isinstance(src, pd.DataFrame):
        cols = {c.lower(): c for c in src.columns}
        need = [c for c in ("text", "start", "end") if c not in cols]
        if need:
            raise EmonbValueError(f"a transcript table needs text, start and end columns; missing {need}")
        src = xr.Dataset({
            # missing text (None/NaN) is empty text, not the words "None"/"nan"
            "text": ("segment", src[cols["text"]].map(lambda v: "" if v is None or (isinstance(v, float) and v != v)
                                                      else str(v)).to_numpy(dtype=object)),
            "start": ("segment", pd.to_numeric(src[cols["start"]], errors="coerce").to_numpy(float)),
            "end": ("segment", pd.to_numeric(src[cols["end"]], errors="coerce").to_numpy(float)),
            "speaker": ("segment", (src[cols["speaker"]].astype(str) if "speaker" in cols
                                    else pd.Series([""] * len(src))).to_numpy(dtype=object)),
        })
    elif isinstance(src, (list, tuple)):
        rows = []
        for r in src:
            if isinstance(r, dict):
                rows.append((r.get("start"), r.get("end"), r.get("text", ""), r.get("speaker", "")))
            elif isinstance(r, (list, tuple)) and len(r) >= 3:
                rows.append((r[0], r[1], r[2], r[3] if len(r) > 3 else ""))
            else:
                raise EmonbValueError("transcript rows must be (start, end, text[, speaker]) or dicts")
        return _resolve_transcript(pd.DataFrame(rows, columns=["start", "end", "text", "speaker"]))
    if not isinstance(src, xr.Dataset):
        raise EmonbValueError(
            f"cannot read a transcript from {type(src).__name__}: pass a .vtt/.srt/.csv path, a transcript "
            "node, a session tree, a DataFrame or a list of (start, end, text) rows"
        )
    missing = [v for v in ("text", "start", "end") if v not in src.variables]
    if missing:
        raise EmonbValueError(f"the transcript node lacks {missing} (needs text, start, end on 'segment')")
    return src


def analyze_text(src, *, model=DEFAULT_MODEL, rate: float = 10.0, progress: bool = True):
    """Sentiment of each transcript segment, and a valence track on the session clock.

    Parameters
    ----------
    src : path, xr.Dataset, xr.DataTree, DataFrame or list
        A transcript file (``.vtt``, ``.srt``, ``.csv``/``.tsv``), a transcript node
        (``text``, ``start``, ``end``, ``speaker`` on ``segment``; times in session seconds), a session
        tree with a ``transcript`` node, a table with those columns, or ``(start, end, text)`` rows.
    model : str or ModelSpec
        Sentiment model (default ``"vader"``).
    rate : float
        Sampling rate in Hz of the time-indexed ``text_valence``/``text_confidence`` track.
    progress : bool
        Accepted for API symmetry (scoring is fast).

    Returns
    -------
    xr.Dataset
        On ``segment``: ``start``, ``end`` (s, session clock), ``text``, ``speaker``,
        ``text_sentiment(segment)`` (VADER compound score in [-1, 1]; NaN for a cue without words:
        empty, whitespace, punctuation or symbols only),
        ``text_sentiment_scores(segment, polarity)`` (shares of negative/neutral/positive words).
        On ``time`` (float64 s, regular at ``rate``): ``text_valence(time)`` (compound score of the
        segment being spoken, mean where segments overlap, NaN between segments) and
        ``text_confidence(time)`` (1 - neutral share of that segment; 0 between segments), for fusion.
        Attributes: ``model``, ``model_version``, ``model_license``, ``device``, ``rate``, ``note``.
    """
    import xarray as xr

    from .. import get_model

    rate = check_positive("rate", rate)
    tr = _resolve_transcript(src)
    spec = get_model(model)
    rt = spec.create()
    texts = ["" if t is None or (isinstance(t, float) and t != t) else str(t)
             for t in np.asarray(tr["text"].values, dtype=object)]
    start = np.asarray(tr["start"].values, float)
    end = np.asarray(tr["end"].values, float)
    speaker = (np.asarray(tr["speaker"].values, dtype=object).astype(str) if "speaker" in tr.variables
               else np.array([""] * len(texts)))
    scores = rt.predict(texts) if texts else np.zeros((0, 4), np.float32)
    compound = scores[:, 3]

    # time track on the session clock
    ok = np.isfinite(start) & np.isfinite(end) & (end >= start)
    if ok.any():
        t_lo = np.floor(start[ok].min() * rate) / rate
        t_hi = np.ceil(end[ok].max() * rate) / rate
        time = t_lo + np.arange(int(round((t_hi - t_lo) * rate)) + 1) / rate
    else:
        time = np.zeros(0)
    acc = np.zeros(len(time))
    cnt = np.zeros(len(time))
    conf_acc = np.zeros(len(time))
    for i in np.flatnonzero(ok & np.isfinite(compound)):
        a, b = np.searchsorted(time, start[i], "left"), np.searchsorted(time, end[i], "right")
        if b <= a:  # a segment shorter than one step still marks its nearest sample
            a = min(int(np.argmin(np.abs(time - 0.5 * (start[i] + end[i])))), len(time) - 1)
            b = a + 1
        acc[a:b] += compound[i]
        conf_acc[a:b] += 1.0 - scores[i, 1]
        cnt[a:b] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        valence = np.where(cnt > 0, acc / cnt, np.nan).astype(np.float32)
        conf = np.where(cnt > 0, conf_acc / cnt, 0.0).astype(np.float32)

    ds = xr.Dataset(
        {
            "start": ("segment", start, {"units": "s", "long_name": "segment start (session clock)"}),
            "end": ("segment", end, {"units": "s", "long_name": "segment end (session clock)"}),
            "text": ("segment", np.array(texts, dtype=object)),
            "speaker": ("segment", speaker.astype(object)),
            "text_sentiment": ("segment", compound, {"units": "1", "long_name": "VADER compound sentiment in [-1, 1]"}),
            "text_sentiment_scores": (("segment", "polarity"), scores[:, :3],
                                      {"units": "1", "long_name": "share of negative/neutral/positive wording"}),
            "text_valence": ("time", valence, {"units": "1", "long_name": "sentiment of the segment being spoken, "
                                                                           "in [-1, 1]; NaN between segments"}),
            "text_confidence": ("time", conf, {"units": "1", "long_name": "1 - neutral share of the segment; 0 between segments"}),
        },
        coords={"segment": np.arange(len(texts)), "polarity": list(POLARITIES),
                "time": ("time", time, {"units": "s", "long_name": "session time"})},
    )
    ds.attrs.update(rt.provenance())
    ds.attrs.update({
        "rate": rate, "sampling_rate": rate, "t0": float(time[0]) if len(time) else 0.0,
        "n_segments": len(texts),
        "note": "Sentiment of the words in the transcript (emonb does not transcribe speech), not of the "
                "speaker's feeling.",
    })
    return ds
