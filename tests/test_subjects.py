"""Subjects: face tracks joined into people (emonb.subjects), on generated data and a real recording."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

import emonb as eb
from emonb.errors import EmonbValueError
from emonb.subjects import assign_subjects, subject_summary, subject_table, subject_track

from conftest import write_two_people_video, write_video


def _face(times, spans, *, n_faces=2, boxes=None, path=None, timeout=1.0):
    """A small analyze_face-like result: ``spans`` = [(slot, start, stop), ...] where a face is in view.

    The face in a span has a box (``boxes[slot]``, default a 20x20 box in the slot's column),
    valence = slot + 1 and emotion probabilities peaked on emotion ``slot``.
    """
    t = np.asarray(times, float)
    T = t.size
    box = np.full((T, n_faces, 4), np.nan, np.float32)
    val = np.full((T, n_faces), np.nan, np.float32)
    emo = np.full((T, n_faces, 7), np.nan, np.float32)
    for slot, a, b in spans:
        m = (t >= a) & (t < b)
        box[m, slot] = boxes[slot] if boxes is not None else (10 + 30 * slot, 10, 30 + 30 * slot, 30)
        val[m, slot] = slot + 1
        p = np.full(7, 0.05, np.float32)
        p[slot] = 0.7
        emo[m, slot] = p
    ds = xr.Dataset(
        {"face_box": (("time", "face", "box_coord"), box),
         "face_valence": (("time", "face"), val),
         "face_emotion": (("time", "face", "emotion"), emo),
         "face_count": (("time",), np.isfinite(box[..., 0]).sum(1).astype(np.float32))},
        coords={"time": t, "frame_index": ("time", np.arange(T)), "face": np.arange(n_faces),
                "box_coord": ["x0", "y0", "x1", "y1"], "emotion": list(eb.schema.EMOTIONS)},
        attrs={"track_timeout": timeout, "modality": "face"})
    if path is not None:
        ds.attrs["path"] = str(path)
    return ds


T10 = np.arange(0, 10, 0.1)


def test_without_video_every_track_is_its_own_subject():
    # slot 0 holds one face 0-3 s and (after a gap longer than the timeout) another 6-9 s
    ds = _face(T10, [(0, 0, 3), (1, 3, 6), (0, 6, 9)])
    out = assign_subjects(ds)
    assert "no appearance signature" in out.attrs["subject_method"]
    tab = subject_table(out)
    assert tab["subject"].tolist() == ["S1", "S2", "S3"]
    assert tab["faces"].tolist() == ["0", "1", "0"]
    np.testing.assert_allclose(tab["screen_time_s"], [3.0, 3.0, 3.0], atol=0.11)
    np.testing.assert_allclose(tab["share"], [0.3, 0.3, 0.3], atol=0.011)
    np.testing.assert_allclose(tab["first_seen_s"], [0.0, 3.0, 6.0], atol=1e-9)
    np.testing.assert_allclose(tab["last_seen_s"], [2.9, 5.9, 8.9], atol=1e-9)
    assert out.attrs["main_subject"] == "S1" and tab["main"].tolist() == [True, False, False]
    assert out["subject"].values.tolist() == ["S1", "S2"]
    # the input is not changed
    assert "face_subject" not in ds and "subject" not in ds.coords


def test_a_short_gap_is_one_track():
    ds = _face(T10, [(0, 0, 3), (0, 3.5, 6)])  # 0.6 s apart, timeout 1 s: the tracker vouches
    tab = subject_table(assign_subjects(ds))
    assert tab["subject"].tolist() == ["S1"]
    assert tab["faces"].tolist() == ["0"]


def test_a_sparse_stride_is_not_a_gap():
    # analysed frames 1.7 s apart (a large stride), the face in every one: one track, one subject
    t = np.arange(12) * 1.7
    ds = _face(t, [(0, 0, 12 * 1.7)])
    tab = subject_table(assign_subjects(ds))
    assert tab["subject"].tolist() == ["S1"] and tab["share"].tolist() == [1.0]


def test_subject_track_merges_slots_and_is_nan_where_absent():
    ds = _face(T10, [(0, 0, 3), (1, 6, 9)])
    out = assign_subjects(ds, names={0: "Ann", 1: "Ann"})
    tr = subject_track(out, "Ann")
    assert "face" not in tr.dims and tr["face_valence"].dims == ("time",)
    v = tr["face_valence"].values
    t = tr["time"].values
    np.testing.assert_array_equal(v[t < 3], 1.0)
    np.testing.assert_array_equal(v[(t >= 6) & (t < 9)], 2.0)
    assert np.isnan(v[(t >= 3) & (t < 6)]).all() and np.isnan(v[t >= 9]).all()
    np.testing.assert_array_equal(tr["face_id"].values[t < 3], 0)
    assert np.isnan(tr["face_id"].values[(t >= 3) & (t < 6)]).all()
    assert tr["face_emotion"].dims == ("time", "emotion")
    assert tr.attrs["subject"] == "Ann"
    assert "face_count" in tr
    with pytest.raises(EmonbValueError, match="no subject 'Bob'"):
        subject_track(out, "Bob")


def test_names_win_and_are_checked():
    ds = _face(T10, [(0, 0, 3), (1, 3, 6)])
    out = assign_subjects(ds, names={1: "Bo"})
    assert subject_table(out)["subject"].tolist() == ["S1", "Bo"]
    # stored names are kept when more are given later
    again = assign_subjects(out, names={0: "Al"})
    assert subject_table(again)["subject"].tolist() == ["Al", "Bo"]
    with pytest.raises(EmonbValueError, match="no face 5"):
        assign_subjects(ds, names={5: "X"})
    with pytest.raises(EmonbValueError, match="non-empty string"):
        assign_subjects(ds, names={0: "  "})
    with pytest.raises(EmonbValueError, match="analyze_face"):
        assign_subjects(xr.Dataset({"x": ("time", [1.0])}))
    # two faces on screen at once given one name: the user's word is kept, with a warning
    both = _face(T10, [(0, 0, 5), (1, 2, 6)])
    with pytest.warns(eb.errors.EmonbWarning, match="same time"):
        tab = subject_table(assign_subjects(both, names={0: "Al", 1: "Al"}))
    assert tab["subject"].tolist() == ["Al"]


def test_no_face_at_all():
    ds = _face(T10, [])
    out = assign_subjects(ds)
    assert out.attrs["main_subject"] == ""
    assert subject_table(out).empty
    assert subject_summary(out) == ["no face in any of 100 analysed frames"]


# -- joining by appearance, on a real (generated) video ----------------------------------------------
PERSON = {"A": ((200, 150, 120), (40, 30, 20)), "B": ((120, 80, 60), (230, 220, 120))}  # skin, hair (RGB)


def _scene(path, plan, *, fps=10, n=100):
    """A 160x80 video; ``plan`` = [(person, x0, start, stop)]: a skin box with hair above at x0."""

    def frame(i, t):
        img = np.full((80, 160, 3), 60, np.uint8)
        for who, x0, a, b in plan:
            if a <= t < b:
                skin, hair = PERSON[who]
                img[8:24, x0 - 6:x0 + 26] = hair
                img[24:56, x0:x0 + 20] = skin
        return img

    return write_video(path, n=n, fps=fps, size=(160, 80), frame_fn=frame)


def test_tracks_with_the_same_appearance_join_and_others_do_not(tmp_path):
    # A on the left 0-3 s, B on the right 3-6 s, A again on the left 6-9 s (slot 0 reused after the timeout)
    plan = [("A", 20, 0, 3), ("B", 110, 3, 6), ("A", 20, 6, 9)]
    path = _scene(tmp_path / "turns.mp4", plan)
    boxes = {0: (20, 24, 40, 56), 1: (110, 24, 130, 56)}
    ds = _face(T10, [(0, 0, 3), (1, 3, 6), (0, 6, 9)], boxes=boxes, path=path)
    out = assign_subjects(ds)
    assert "colour histograms" in out.attrs["subject_method"]
    tab = subject_table(out)
    assert tab["subject"].tolist() == ["S1", "S2"]
    assert tab["faces"].tolist() == ["0", "1"]
    np.testing.assert_allclose(tab["share"], [0.6, 0.3], atol=0.011)
    assert out.attrs["main_subject"] == "S1"
    # B in A's slot later: not joined with A (different colours), a subject of its own
    plan2 = [("A", 20, 0, 3), ("B", 20, 6, 9)]
    path2 = _scene(tmp_path / "other.mp4", plan2)
    ds2 = _face(T10, [(0, 0, 3), (0, 6, 9)], boxes=boxes, path=path2)
    tab2 = subject_table(assign_subjects(ds2))
    assert tab2["subject"].tolist() == ["S1", "S2"] and tab2["faces"].tolist() == ["0", "0"]
    # the user's names win over the appearance: told they differ, they stay apart
    tab3 = subject_table(assign_subjects(ds, names={0: "Al"}))
    assert tab3["subject"].tolist() == ["Al", "S1"]


def test_a_cut_to_someone_else_at_the_same_place_is_a_new_subject(tmp_path):
    # A 0-4 s, then (no gap: the tracker keeps slot 0) B at the same place 4-7 s, then A again 7-10 s
    plan = [("A", 20, 0, 4), ("B", 20, 4, 7), ("A", 20, 7, 10)]
    path = _scene(tmp_path / "cut.mp4", plan)
    ds = _face(T10, [(0, 0, 10)], boxes={0: (20, 24, 40, 56)}, path=path)
    out = assign_subjects(ds)
    assert "2 change(s) of person within a track" in out.attrs["subject_method"]
    tab = subject_table(out)
    assert tab["subject"].tolist() == ["S1", "S2"] and tab["faces"].tolist() == ["0", "0"]
    np.testing.assert_allclose(tab["share"], [0.7, 0.3], atol=0.011)    # each cut on the first frame of the new person
    per = out["face_subject"].isel(face=0).values
    t = out["time"].values
    assert (per[t < 3.95] == "S1").all() and (per[(t > 3.95) & (t < 6.95)] == "S2").all()
    assert (per[t > 6.95] == "S1").all()
    # one person throughout, with a one-frame glitch (a flash): not cut
    flash = [("A", 20, 0, 5), ("B", 20, 5, 5.1), ("A", 20, 5.1, 10)]
    ds2 = _face(T10, [(0, 0, 10)], boxes={0: (20, 24, 40, 56)}, path=_scene(tmp_path / "flash.mp4", flash))
    assert subject_table(assign_subjects(ds2))["subject"].tolist() == ["S1"]


def test_look_alikes_on_screen_together_are_never_joined(tmp_path):
    plan = [("A", 20, 0, 9), ("A", 110, 3, 6)]  # the same colours twice, at the same time
    path = _scene(tmp_path / "twins.mp4", plan)
    boxes = {0: (20, 24, 40, 56), 1: (110, 24, 130, 56)}
    ds = _face(T10, [(0, 0, 9), (1, 3, 6)], boxes=boxes, path=path)
    tab = subject_table(assign_subjects(ds))
    assert tab["subject"].tolist() == ["S1", "S2"]


# -- a real recording: one person speaks, then another, then the first again -----------------------------------
@pytest.fixture(scope="module")
def turns_session(shared_data, tmp_path_factory):
    """Wolfgang Langer 0-3 s, the single_face.mp4 speaker 3-6 s (its 72 frames at 24 fps), Wolfgang again 6-8 s."""
    pytest.importorskip("mediapipe")
    pytest.importorskip("torch")
    path = write_two_people_video(shared_data / "video", tmp_path_factory.mktemp("turns") / "turns.mp4")
    tree = eb.load_session(video=path, session_id="turns")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return eb.analyze(tree, ["face"], options={"face": {"stride": 2}}, progress=False)


@pytest.mark.realdata
def test_two_people_in_turn_become_two_subjects(turns_session, tmp_path):
    face = turns_session["face"].to_dataset()
    assert face.sizes["face"] == 2 and "subject" in face.coords
    tab = turns_session.emonb.subjects()
    assert tab["subject"].tolist() == ["S1", "S2"]
    s1, s2 = tab.iloc[0], tab.iloc[1]
    # the man is in view 0-3 s and 6-8 s (two tracks, one subject), the woman 3-6 s
    assert s1["faces"] == "0" and s2["faces"] == "1"
    assert s1["first_seen_s"] < 0.1 and s1["last_seen_s"] > 7.8
    assert 2.9 < s2["first_seen_s"] < 3.1 and 5.8 < s2["last_seen_s"] < 6.0
    n = face.sizes["time"]
    in_view = np.isfinite(face["face_box"].values[..., 0])
    np.testing.assert_allclose(s1["share"], in_view[:, 0].mean(), atol=1e-9)
    np.testing.assert_allclose(s2["share"], in_view[:, 1].mean(), atol=1e-9)
    assert s1["share"] > 0.6 and 0.3 < s2["share"] < 0.4 and bool(s1["main"])
    assert face.attrs["main_subject"] == "S1"
    assert "3 track(s), 1 join(s)" in face.attrs["subject_method"]
    # the summaries speak of subjects
    from emonb.cli import _result_lines

    lines = "\n".join(_result_lines(turns_session))
    assert f"subject S1 (main): in view {100 * s1['share']:.0f}% of {n} analysed frames" in lines
    assert f"subject S2: in view {100 * s2['share']:.0f}% of {n}" in lines
    assert "face 0" not in lines.replace("(face 0;", "")
    from emonb.batch import _subjects

    assert _subjects(turns_session) == f"S1 {100 * s1['share']:.0f}%; S2 {100 * s2['share']:.0f}%"  # batch summary
    summ = turns_session.emonb.summary()
    assert summ.loc["face", "subjects"] == f"S1 {100 * s1['share']:.0f}%; S2 {100 * s2['share']:.0f}%"
    # the subject's track is the woman's data on time, NaN while she is not in view
    tr = subject_track(face, "S2")
    t = tr["time"].values
    assert np.isfinite(tr["face_valence"].values[(t > 3.1) & (t < 5.8)]).all()
    assert np.isnan(tr["face_valence"].values[(t < 2.9) | (t > 6.0)]).all()


@pytest.mark.realdata
def test_a_users_name_persists_through_the_store(turns_session, tmp_path):
    tree = turns_session.copy()
    tab = tree.emonb.name_subject(face=1, subject="Dr <b>Lee</b>")
    assert tab["subject"].tolist() == ["S1", "Dr <b>Lee</b>"]
    store = eb.save_session(tree, tmp_path / "s.zarr")
    back = eb.open_session(store)
    tab2 = back.emonb.subjects()
    assert tab2["subject"].tolist() == ["S1", "Dr <b>Lee</b>"]
    assert back["face"].to_dataset().attrs["main_subject"] == "S1"
    # naming again from the opened store keeps the first name
    tab3 = back.emonb.name_subject(face=0, subject="Wolfgang")
    assert tab3["subject"].tolist() == ["Wolfgang", "Dr <b>Lee</b>"]
    # the original tree is unchanged
    assert turns_session.emonb.subjects()["subject"].tolist() == ["S1", "S2"]
