"""Transcript sentiment (VADER) per segment and on the session clock."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import emonb as eb
from emonb.errors import EmonbValueError

ROWS = [
    (1.0, 3.0, "I love this, it is a wonderful day!", "A"),
    (3.5, 5.0, "This is terrible and I hate it.", "B"),
    (6.0, 6.02, "The meeting is at noon.", "A"),
    (7.0, 8.0, "", "B"),
]


def _node(offset=0.0):
    return xr.Dataset(
        {"text": ("segment", np.array([r[2] for r in ROWS], dtype=object)),
         "start": ("segment", np.array([r[0] for r in ROWS]) + offset),
         "end": ("segment", np.array([r[1] for r in ROWS]) + offset),
         "speaker": ("segment", np.array([r[3] for r in ROWS], dtype=object))},
        coords={"segment": np.arange(len(ROWS))},
    )


def test_sentiment_per_segment_and_on_the_clock():
    ds = eb.analyze_text(_node(offset=10.0))
    s = ds.text_sentiment.values
    assert s[0] > 0.5 and s[1] < -0.5 and abs(s[2]) < 0.2 and np.isnan(s[3])
    assert ds.text_sentiment.dims == ("segment",)
    np.testing.assert_allclose(ds.start.values, [11.0, 13.5, 16.0, 17.0])
    sc = ds.text_sentiment_scores
    assert sc.dims == ("segment", "polarity") and list(ds.polarity.values) == ["negative", "neutral", "positive"]
    np.testing.assert_allclose(sc.values[:3].sum(axis=1), 1.0, atol=0.01)
    # time track on the session clock: the segment being spoken, NaN in gaps
    assert ds.time.dtype == np.float64 and float(ds.time[0]) == pytest.approx(11.0)
    assert np.allclose(np.diff(ds.time.values), 0.1)
    v = ds.text_valence
    assert float(v.sel(time=12.0, method="nearest")) == pytest.approx(s[0], abs=1e-6)
    assert float(v.sel(time=14.0, method="nearest")) == pytest.approx(s[1], abs=1e-6)
    assert np.isnan(float(v.sel(time=15.5, method="nearest")))
    assert float(ds.text_confidence.sel(time=15.5, method="nearest")) == 0.0
    # a segment shorter than one step still shows up
    assert np.isfinite(v.sel(time=16.0, method="nearest"))
    for key in ("model", "model_version", "model_license", "device"):
        assert key in ds.attrs
    assert ds.attrs["model"] == "vader" and ds.attrs["model_license"] == "MIT"
    assert ds.text_sentiment.attrs["units"] == "1"


def test_inputs_session_tree_table_rows_and_file(tmp_path):
    ref = eb.analyze_text(_node()).text_sentiment.values
    tree = xr.DataTree.from_dict({"transcript": _node()})
    np.testing.assert_allclose(eb.analyze_text(tree).text_sentiment.values, ref, equal_nan=True)
    df = pd.DataFrame(ROWS, columns=["start", "end", "text", "speaker"])
    np.testing.assert_allclose(eb.analyze_text(df).text_sentiment.values, ref, equal_nan=True)
    np.testing.assert_allclose(eb.analyze_text(ROWS).text_sentiment.values, ref, equal_nan=True)
    vtt = tmp_path / "talk.vtt"
    vtt.write_text("WEBVTT\n\n00:00:01.000 --> 00:00:03.000\n<v Ann>What a great and happy result!\n\n"
                   "00:00:04.000 --> 00:00:05.500\n<v Bob>That was an awful, sad failure.\n")
    ds = eb.analyze_text(str(vtt))
    assert ds.text_sentiment.values[0] > 0.3 and ds.text_sentiment.values[1] < -0.3
    assert list(ds.speaker.values) == ["Ann", "Bob"]


def test_rate_and_bad_input():
    ds = eb.analyze_text(ROWS, rate=2.0)
    assert np.allclose(np.diff(ds.time.values), 0.5)
    with pytest.raises(EmonbValueError):
        eb.analyze_text(ROWS, rate=0)
    with pytest.raises(EmonbValueError, match="transcript"):
        eb.analyze_text(xr.DataTree())
    with pytest.raises(EmonbValueError):
        eb.analyze_text(pd.DataFrame({"words": ["hi"]}))
    with pytest.raises(EmonbValueError):
        eb.analyze_text(3.14)


def test_empty_transcript_gives_empty_result():
    ds = eb.analyze_text(pd.DataFrame({"start": [], "end": [], "text": []}))
    assert ds.sizes["segment"] == 0 and ds.sizes["time"] == 0
