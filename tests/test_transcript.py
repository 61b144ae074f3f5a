import numpy as np
import pytest

import emonb as eb


def test_vtt_with_voices(tmp_path):
    (tmp_path / "a.vtt").write_text(
        "WEBVTT\n\n1\n00:00:01.000 --> 00:00:02.500\n<v Ana>Hello <b>there</b>\n\n"
        "00:01:00.250 --> 00:01:01.000\n<v Ben>Second line\nwraps\n")
    d = eb.load_transcript(tmp_path / "a.vtt", t0=1.0)
    assert list(d["text"].values) == ["Hello there", "Second line wraps"]
    assert list(d["speaker"].values) == ["Ana", "Ben"]
    np.testing.assert_allclose(d["start"].values, [2.0, 61.25])
    np.testing.assert_allclose(d["end"].values, [3.5, 62.0])


def test_srt_and_csv(tmp_path):
    (tmp_path / "a.srt").write_text("1\n00:00:00,500 --> 00:00:01,000\nDR: How are you?\n\n"
                                    "2\n00:00:01,200 --> 00:00:02,000\nFine.\n")
    s = eb.load_transcript(tmp_path / "a.srt")
    assert list(s["speaker"].values) == ["DR", ""] and s["start"].values[0] == 0.5
    (tmp_path / "a.csv").write_text("start,end,text,speaker\n2.0,3.0,later,A\n0.0,1.0,first,B\n")
    c = eb.load_transcript(tmp_path / "a.csv")
    assert list(c["text"].values) == ["first", "later"]  # sorted by start


def test_transcript_errors(tmp_path):
    (tmp_path / "b.vtt").write_text("00:00:01.000 --> 00:00:02.000\nno header\n")
    with pytest.raises(eb.EmonbFormatError, match="WEBVTT"):
        eb.load_transcript(tmp_path / "b.vtt")
    (tmp_path / "c.csv").write_text("when,what\n1,hi\n")
    with pytest.raises(eb.EmonbFormatError, match="c.csv.*start"):
        eb.load_transcript(tmp_path / "c.csv")
    (tmp_path / "d.srt").write_text("1\n00:00:05,000 --> 00:00:01,000\nbackwards\n")
    with pytest.raises(eb.EmonbFormatError, match="reversed"):
        eb.load_transcript(tmp_path / "d.srt")
    (tmp_path / "e.vtt").write_text("WEBVTT\n\n")
    with pytest.raises(eb.EmonbFileError, match="no transcript segments"):
        eb.load_transcript(tmp_path / "e.vtt")
