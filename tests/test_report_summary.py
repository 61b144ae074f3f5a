"""Report parts on small generated sessions: summary figures, gaps in charts, time axes, tables, titles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import emonb as eb
from emonb.report import sections as rs
from emonb.report import summary as su
from emonb.schema import EMOTIONS
from emonb.session import make_tree

pytest.importorskip("altair")

T = np.round(np.arange(0, 20, 0.1), 3)  # 10 Hz, 0-19.9 s


def _face(spans, *, top=None, n_faces=2):
    """Face result: ``spans`` = [(slot, start, stop)]; ``top(t)`` gives the top emotion index at time t."""
    n = T.size
    box = np.full((n, n_faces, 4), np.nan, np.float32)
    emo = np.full((n, n_faces, 7), np.nan, np.float32)
    val = np.full((n, n_faces), np.nan, np.float32)
    au = np.full((n, n_faces, 2), np.nan, np.float32)
    for slot, a, b in spans:
        m = (T >= a) & (T < b)
        box[m, slot] = (10 + 40 * slot, 10, 40 + 40 * slot, 40)
        for i in np.flatnonzero(m):
            k = top(T[i]) if top else slot
            p = np.full(7, 0.3 / 6, np.float32)
            p[k] = 0.7
            emo[i, slot] = p
        val[m, slot] = 0.5 if slot == 0 else -0.5
        au[m, slot] = 0.4
    ds = xr.Dataset(
        {"face_box": (("time", "face", "box_coord"), box), "face_emotion": (("time", "face", "emotion"), emo),
         "face_valence": (("time", "face"), val), "face_arousal": (("time", "face"), val / 2),
         "face_au": (("time", "face", "au"), au)},
        coords={"time": T, "frame_index": ("time", np.arange(n)), "face": np.arange(n_faces),
                "box_coord": ["x0", "y0", "x1", "y1"], "emotion": list(EMOTIONS), "au": ["AU06", "AU12"]},
        attrs={"track_timeout": 1.0, "modality": "face", "model": "test", "sampling_rate": 10.0})
    return eb.subjects.assign_subjects(ds)


def _voice(t0=3.0, t1=7.0, speech=(4.0, 6.0)):
    t = np.round(np.arange(t0, t1, 0.01), 3)
    conf = ((t >= speech[0]) & (t < speech[1])).astype(np.float32)
    val = np.full(t.size, 0.8, np.float32)        # the model says +0.8 everywhere ...
    val[conf > 0] = -0.2                           # ... and -0.2 where there is speech
    emo = np.tile(np.float32([0.4, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]), (t.size, 1))
    return xr.Dataset({"voice_activity": ("time", conf), "voice_confidence": ("time", conf),
                       "voice_valence": ("time", val), "voice_arousal": ("time", val),
                       "voice_emotion": (("time", "emotion"), emo)},
                      coords={"time": t, "emotion": list(EMOTIONS)}, attrs={"model": "voice-test", "t0": t0})


def _tree(face, voice=None, **attrs):
    video = xr.Dataset(coords={"time": T, "frame_index": ("time", np.arange(T.size))},
                       attrs={"modality": "video", "fps": 10.0, "path": "/data/interview-03/session.mp4"})
    nodes = {"video": video, "face": face}
    if voice is not None:
        audio = xr.Dataset({"audio": ("time", np.zeros(64000, np.float32))},
                           coords={"time": 3.0 + np.arange(64000) / 16000},
                           attrs={"modality": "audio", "sampling_rate": 16000.0, "path": "/data/a/speech.wav"})
        nodes.update(audio=audio, voice=voice)
    return make_tree(nodes, {"session_id": "session", **attrs})


def test_segments_break_at_nan_and_at_jumps():
    df = pd.DataFrame({"time": [0, 1, 2, 3, 4, 10, 11], "value": [1, 2, np.nan, 4, 5, 6, 7], "k": "a"})
    seg = rs.segments(df, ["k"])
    assert seg["value"].notna().all()
    assert seg.groupby("segment")["time"].apply(list).tolist() == [[0, 1], [3, 4], [10, 11]]


def _assert_no_line_spans_a_gap(chart, step):
    lines = rs.chart_lines(chart)
    assert lines, "no line marks in the chart"
    for data, enc in lines:
        assert enc.get("detail", {}).get("field") == "segment"   # one line per unbroken run
        series = [enc["color"]["field"]] if "field" in enc.get("color", {}) else []
        for _, g in data.groupby(series + ["segment"]):
            y = enc["y"]["field"]
            assert g[y].notna().all()
            assert (np.diff(np.sort(g["time"].to_numpy(float))) <= rs.GAP_STEPS * step + 1e-9).all()
    return lines


def test_an_absent_subject_is_absent_from_the_charts():
    # S1 in view 0-5 s and 12-20 s (one slot, a 7 s gap: two tracks), S2 5-12 s; no video to compare: 3 subjects
    face = _face([(0, 0, 5), (1, 5, 12), (0, 12, 20)])
    tree = _tree(face)
    assert tree["face"].attrs["main_subject"] == "S3"      # 8 s in view, the longest
    chart = rs.emotion_chart(tree, subject="S1")
    lines = _assert_no_line_spans_a_gap(chart, 0.1)
    t = np.concatenate([d["time"].to_numpy(float) for d, _ in lines])
    assert t.min() == 0.0 and t.max() < 5.0                # S1's first track only
    # joined by the user's names, the subject's line breaks at 5-12 s instead of being drawn across
    named = eb.subjects.assign_subjects(face, names={0: "Ann"})
    tree = _tree(named)
    lines = _assert_no_line_spans_a_gap(rs.emotion_chart(tree, subject="Ann"), 0.1)
    t = np.concatenate([d["time"].to_numpy(float) for d, _ in lines])
    assert not ((t >= 5.0) & (t < 12.0)).any() and t.max() > 19.8
    va = _assert_no_line_spans_a_gap(rs.valence_arousal_chart(tree, subject="Ann"), 0.1)
    assert all(not ((d["time"] >= 5.0) & (d["time"] < 12.0)).any() for d, _ in va)
    heat = rs.au_frame(tree, subject="Ann")
    assert not ((heat["start"] >= 5.0) & (heat["stop"] <= 12.0)).any() and len(heat)


def test_voice_only_where_there_is_speech_and_every_chart_on_the_session_axis():
    tree = _tree(_face([(0, 0, 20)]), _voice())
    lo, hi = su.session_extent(tree)
    assert (lo, hi) == (0.0, pytest.approx(20.0))
    df = rs.valence_arousal_frame(tree)
    v = df[(df["source"] == "voice")].dropna(subset=["value"])
    assert v["time"].between(4.0, 6.0 - 1e-9).all() and (v["value"] == -0.2).all()
    for chart in (rs.emotion_chart(tree), rs.valence_arousal_chart(tree), rs.voice_chart(tree), rs.au_heatmap(tree)):
        spec = chart.to_dict()
        domains = []

        def walk(n):
            if isinstance(n, dict):
                if n.get("field") in ("time", "start") and "scale" in n and "domain" in n["scale"]:
                    domains.append(n["scale"]["domain"])
                for x in n.values():
                    walk(x)
            elif isinstance(n, list):
                for x in n:
                    walk(x)

        walk(spec)
        assert domains and all(d == [lo, hi] for d in domains), domains
    means = su.affect_means(tree, ["S1"])
    voice = means[(means["source"].str.startswith("voice")) & (means["measure"] == "valence")].iloc[0]
    assert voice["mean"] == pytest.approx(-0.2) and voice["seconds"] == pytest.approx(2.0, abs=0.02)
    face = means[(means["scope"] == "subject S1") & (means["measure"] == "valence")].iloc[0]
    assert face["mean"] == pytest.approx(0.5) and face["low"] == pytest.approx(0.5) and face["high"] == pytest.approx(0.5)


def test_expression_shares_match_the_data_with_an_interval():
    # happiness on top in the first 14 s of 20, sadness after: shares 0.7 and 0.3
    top = lambda t: EMOTIONS.index("happiness") if t < 14 else EMOTIONS.index("sadness")  # noqa: E731
    tree = _tree(_face([(0, 0, 20)], top=top))
    sh = su.expression_shares(tree, "S1").set_index("emotion")
    assert sh.loc["happiness", "share"] == pytest.approx(0.7) and sh.loc["sadness", "share"] == pytest.approx(0.3)
    assert sh.loc["anger", "share"] == 0 and int(sh["frames"].iloc[0]) == 200
    assert sh.loc["happiness", "low"] < 0.7 < sh.loc["happiness", "high"]
    assert 0.3 < sh.loc["happiness", "low"] and sh.loc["happiness", "high"] < 1.0
    assert sh.loc["happiness", "mean_probability"] == pytest.approx(0.7 * 0.7 + 0.3 * 0.05, abs=1e-6)
    assert list(sh.index) == list(EMOTIONS)
    html = su.summary_html(tree, subjects=["S1"])
    assert "70% [" in html and "Subject S1: expressions" in html and "share of analysed frames" in html


def test_bootstrap_interval_needs_two_blocks():
    est, lo, hi = su.bootstrap_ci(np.ones(5), np.arange(5) * 0.1)
    assert est == 1 and np.isnan(lo) and np.isnan(hi)
    est, lo, hi = su.bootstrap_ci(np.r_[np.zeros(50), np.ones(50)], np.arange(100) * 0.1)
    assert est == 0.5 and 0.0 <= lo < 0.5 < hi <= 1.0


def test_recording_table_coverage_on_the_session_clock():
    tree = _tree(_face([(0, 0, 10)]), _voice())
    rec = su.recording_table(tree).set_index("modality")
    assert rec.loc["video", "coverage"] == pytest.approx(1.0)
    assert rec.loc["audio", "start_s"] == pytest.approx(3.0) and rec.loc["audio", "end_s"] == pytest.approx(7.0)
    assert rec.loc["audio", "coverage"] == pytest.approx(0.2)
    assert rec.loc["audio", "found"] == "speech in 50% of the audio"
    assert rec.loc["video", "found"] == "subjects in view: S1 50% of 200 analysed frames"


def test_no_face_summary_and_key_frames():
    tree = _tree(_face([]))
    assert su.subject_list(tree) == [] and rs.emotion_chart(tree) is None and rs.au_heatmap(tree) is None
    assert "No face was found in any of the 200 analysed frames" in su.summary_html(tree, subjects=[])
    assert rs.key_frames(tree)[0] is None


def test_subject_list_choices():
    tree = _tree(_face([(0, 0, 5), (1, 5, 20)]))
    assert su.subject_list(tree) == ["S2"]
    assert su.subject_list(tree, "all") == ["S1", "S2"]
    assert su.subject_list(tree, ["S1"]) == ["S1"]
    with pytest.raises(eb.EmonbValueError, match="no subject"):
        su.subject_list(tree, ["Bob"])


def test_key_frames_show_different_expressions():
    # happiness is the strongest everywhere but surprise and sadness are on top in stretches
    def top(t):
        return EMOTIONS.index("surprise") if 4 <= t < 6 else EMOTIONS.index("sadness") if 10 <= t < 12 \
            else EMOTIONS.index("happiness")

    face = _face([(0, 0, 20)], top=top)
    p = face["face_emotion"].values.copy()
    p[T < 4, 0, EMOTIONS.index("happiness")] = 0.9       # the strongest peaks, all happiness
    face["face_emotion"] = face["face_emotion"].copy(data=p)
    peaks = rs._peak_times(eb.subjects.subject_track(face, "S1"), 4, 1.0)
    assert {e for _, e, _ in peaks} == {"happiness", "surprise", "sadness"}
    assert len(peaks) == 4


def test_spots_table_columns_in_time_order_and_rounded():
    spots = xr.Dataset({"onset": ("spot", [5.12345, 1.0]), "apex": ("spot", [5.3333, 1.2]),
                        "offset": ("spot", [5.6666, 1.4]), "kind": ("spot", ["macro", "micro"]),
                        "regions": ("spot", ["mouth", "eyes"]), "score": ("spot", [0.87654, 0.5]),
                        "face": ("spot", [0, 0])}, coords={"spot": [0, 1]})
    tab = rs.spots_table(make_tree({"spots": spots}, {}))
    assert list(tab.columns) == ["onset", "apex", "end", "duration", "kind", "regions", "score"]
    assert tab["onset"].tolist() == [1.0, 5.12] and tab["end"].tolist() == [1.4, 5.67]
    assert tab["duration"].tolist() == [0.4, 0.54] and tab["score"].tolist() == [0.5, 0.88]
    # with two people in view, each spot says whose it is (the face at its apex)
    face = _face([(0, 0, 3), (1, 3, 20)])
    spots2 = spots.assign(face=("spot", [1, 0]))
    tab2 = rs.spots_table(make_tree({"spots": spots2, "face": face}, {}))
    assert tab2["subject"].tolist() == ["S1", "S2"]
    assert "subject" not in rs.spots_table(make_tree({"spots": spots, "face": _face([(0, 0, 20)])}, {}))


def test_titles_from_generic_ids_name_the_recording():
    tree = _tree(_face([]))
    assert rs.report_heading(tree) == "Emotion analysis report: interview-03/session.mp4"
    assert "Session session" not in rs.title_html(tree)
    named = make_tree({}, {"session_id": "P07-baseline"})
    assert rs.report_heading(named) == "Emotion analysis report: session P07-baseline"
    from emonb.report import _title

    assert _title("/data/p12/session.mp4") == "Emotion analysis report: p12/session.mp4"


def test_tables_are_escaped_and_rounded():
    html = su.table_html(pd.DataFrame({"label": ["<b>x</b>"], "v": [0.123456], "n": [3]}), digits=2)
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>" not in html
    assert '<td class="num">0.12</td>' in html and '<td class="num">3</td>' in html
    assert 'class="emonb-table"' in html


def test_the_report_uses_the_widgets_emotion_colours():
    pytest.importorskip("anywidget")
    from emonb.widgets.timeline import COLORS

    assert [rs.EMOTION_COLORS[e] for e in list(EMOTIONS) + ["contempt"]] == list(COLORS)


def test_model_notes_state_accuracy_and_calibration():
    import re

    from emonb.report.sections import _provenance_text, calibration, measured_accuracy

    for name in ("emonb-fernet-int8", "emonb-fernet", "mini-xception-fer", "voice-emotion-ravdess"):
        spec = eb.models.get_model(name)
        acc = measured_accuracy(spec)
        assert re.search(r"accuracy.*\d\.\d{3}|\d\.\d{3} accuracy", acc), (name, acc)
        # the figure is the card's own (or the weights' provenance entry's), not made up here
        card = " ".join(" ".join(str(getattr(spec, k, "") or "") for k in ("limitations", "description")).split())
        prov = " ".join(_provenance_text().replace("`", "").split())
        assert acc in card or acc.split(": ", 1)[-1] in prov, (name, acc)
    assert "calibrated by temperature" in calibration(eb.models.get_model("emonb-fernet"))
    assert "calibrated by temperature" in calibration(eb.models.get_model("emonb-fernet-int8"))
    assert calibration(eb.models.get_model("mini-xception-fer")) == "probabilities not calibrated"
    assert measured_accuracy(eb.models.get_model("vader")) == "no measured accuracy on its model card"


def test_poor_signal_quality_is_shaded_and_its_gaps_break_the_line():
    t = np.round(np.arange(0, 20, 0.5), 3)
    rate = np.full(t.size, 70.0)
    rate[(t >= 5) & (t < 8)] = np.nan                       # the flagged window has no rate
    flag = np.where((t >= 5) & (t < 8), 4, 0).astype(np.int8)
    phys = xr.Dataset({"ecg_rate": ("time", rate), "ecg_flag": ("time", flag, {
        "flag_values": np.arange(6, dtype=np.int8), "flag_meanings": "ok flat saturated disconnected noisy too_short"})},
        coords={"time": t})
    tree = make_tree({"physio_features": phys}, {"session_id": "p"})
    chart = rs.physio_chart(tree)
    lines = _assert_no_line_spans_a_gap(chart, 0.5)
    assert sorted(lines[0][0].groupby("segment")["time"].min().tolist()) == [0.0, 8.0]
    spec = chart.to_dict()
    rects = [d for d in spec["datasets"].values() if d and "shading" in d[0]]
    assert rects == [[{"start": 5.0, "stop": 8.0, "shading": "ECG signal: noisy"}]]


def test_a_users_subject_name_reaches_the_report_as_text():
    from nbconvert.filters.markdown_mistune import markdown2html_mistune as markdown

    evil = "<img src=x onerror=alert(1)>`*b*`"
    face = eb.subjects.assign_subjects(_face([(0, 0, 10)]), names={0: evil})
    tree = _tree(face)
    html = su.summary_html(tree, subjects=[evil])
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    out = markdown(rs.limitations_markdown(tree))
    assert "<img" not in out and "&lt;img src=x onerror=alert(1)&gt;" in out


def test_unsure_face_estimates_are_shaded():
    face = _face([(0, 0, 20)])
    conf = np.full((T.size, 2), np.nan, np.float32)
    conf[:, 0] = np.where((T >= 6) & (T < 9), 0.2, 0.9)     # the face covered 6-9 s
    face["face_confidence"] = (("time", "face"), conf)
    chart = rs.emotion_chart(_tree(face))
    rects = [d for d in chart.to_dict()["datasets"].values() if d and "shading" in d[0]]
    assert [(r["start"], r["stop"]) for r in rects[0]] == [(6.0, pytest.approx(9.0))]
