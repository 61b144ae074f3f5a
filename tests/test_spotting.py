"""Expression spotting: MEGC evaluation, the spotter on generated meshes and videos, integration."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import emonb as eb
from emonb.errors import EmonbError, EmonbFileError, EmonbValueError
from emonb.spotting import evaluate, interval_iou, match_intervals
from emonb.spotting.core import SPOT_VARIABLES, align_landmarks, spot_expressions
from emonb.spotting.synthetic import make_spotting_landmarks, make_spotting_video, random_events


# -- evaluation ------------------------------------------------------------------------------------
@pytest.mark.parametrize("a, b, expected", [
    ((0, 9), (0, 9), 1.0),
    ((0, 0), (0, 0), 1.0),            # one frame each: frames are inclusive
    ((0, 9), (10, 19), 0.0),          # adjacent, no shared frame
    ((0, 9), (9, 18), 1 / 19),        # one shared frame
    ((0, 9), (0, 4), 0.5),            # contained, exactly half
    ((0, 9), (0, 3), 0.4),
    ((5, 14), (0, 9), 5 / 15),
])
def test_interval_iou(a, b, expected):
    assert interval_iou(a, b) == pytest.approx(expected)
    assert interval_iou(b, a) == pytest.approx(expected)


def test_iou_half_is_a_match_and_below_is_not():
    r = evaluate([(0, 4, "micro")], [(0, 9, "micro")])
    assert r.loc["micro", "tp"] == 1  # IoU exactly 0.5
    r = evaluate([(0, 3, "micro")], [(0, 9, "micro")])
    assert r.loc["micro", "tp"] == 0 and r.loc["micro", "fp"] == 1 and r.loc["micro", "fn"] == 1
    assert r.loc["micro", "f1"] == 0.0


def test_each_true_interval_counts_once():
    spots = [(10, 20, "micro"), (11, 21, "micro"), (12, 20, "micro")]
    r = evaluate(spots, [(10, 20, "micro")])
    assert (r.loc["micro", ["tp", "fp", "fn"]].tolist()) == [1, 2, 0]
    assert r.loc["micro", "precision"] == pytest.approx(1 / 3)
    assert r.loc["micro", "recall"] == 1.0
    assert r.loc["micro", "f1"] == pytest.approx(0.5)
    # one-to-one, best IoU first: each spot takes its own truth
    m = match_intervals([(0, 10), (5, 15)], [(5, 15), (0, 10)])
    assert sorted((i, j) for i, j, _ in m) == [(0, 1), (1, 0)]


def test_kinds_and_overall():
    truth = [(0, 10, "micro"), (50, 100, "macro"), (200, 260, "macro")]
    spots = [(1, 10, "micro"), (52, 98, "macro"), (200, 260, "micro"), (400, 410, "micro")]
    r = evaluate(spots, truth)
    assert r.loc["micro", ["n_true", "n_spotted", "tp", "fp", "fn"]].tolist() == [1, 3, 1, 2, 0]
    assert r.loc["macro", ["n_true", "n_spotted", "tp", "fp", "fn"]].tolist() == [2, 1, 1, 0, 1]
    assert r.loc["overall", ["tp", "fp", "fn"]].tolist() == [2, 2, 1]
    assert r.loc["overall", "f1"] == pytest.approx(2 * 2 / (2 * 2 + 2 + 1))
    # ignoring kinds, the wrongly-typed spot matches its macro interval
    r2 = evaluate(spots, truth, match_kind=False)
    assert r2.loc["overall", "tp"] == 3 and r2.loc["macro", "tp"] == 2


def test_empty_and_undefined():
    r = evaluate([], [])
    assert np.isnan(r.loc["overall", "f1"]) and r.loc["overall", "tp"] == 0
    r = evaluate([], [(0, 5, "micro")])
    assert r.loc["micro", "fn"] == 1 and r.loc["micro", "f1"] == 0.0 and np.isnan(r.loc["micro", "precision"])


def test_pooled_over_videos_and_input_forms():
    t1 = pd.DataFrame({"onset_frame": [10], "offset_frame": [20], "kind": ["micro"]})
    t2 = [(0, 40, "macro")]
    s1 = xr.Dataset({"onset_frame": ("spot", [10]), "offset_frame": ("spot", [19]),
                     "kind": ("spot", np.array(["micro"], dtype=object))})
    s2 = pd.DataFrame({"onset_frame": [100], "offset_frame": [140], "kind": ["macro"]})
    r = evaluate([s1, s2], [t1, t2])
    assert r.attrs["videos"] == 2
    assert r.loc["overall", ["tp", "fp", "fn"]].tolist() == [1, 1, 1]
    rd = evaluate({"a": s1, "b": s2}, {"a": t1, "b": t2})
    pd.testing.assert_frame_equal(r, rd)
    # kinds inferred from the duration when fps is given: 12 frames at 30 fps = 0.4 s -> micro
    r = evaluate([(0, 11)], [(0, 11, "micro")], fps=30)
    assert r.loc["micro", "tp"] == 1


@pytest.mark.parametrize("spots, truth, fragment", [
    ([(10, 5, "micro")], [], "ends before it starts"),
    ([(0, 5, "tiny")], [], "kind must be"),
    ([(0, 5)], [], "no kind"),
    (pd.DataFrame({"start": [1]}), [], "onset_frame"),
    ({"a": [(0, 5, "micro")]}, {"b": []}, "only one of"),
    ([(0, 5, "micro", 1)], [], "onset_frame, offset_frame"),
])
def test_evaluate_errors(spots, truth, fragment):
    with pytest.raises(EmonbValueError, match=fragment):
        evaluate(spots, truth)
    with pytest.raises(EmonbValueError, match="iou"):
        evaluate([], [], iou=0)


# -- the spotter on generated meshes -----------------------------------------------------------------
@pytest.fixture(scope="module")
def base_mesh():
    from emonb.spotting.synthetic import base_face

    return base_face(None)[1]


@pytest.mark.parametrize("fps", [30, 60])
def test_spotting_on_generated_landmarks(base_mesh, fps):
    spots_all, truth_all = [], []
    for seed in range(3):
        L, truth = make_spotting_landmarks(fps=fps, duration=16, seed=seed, landmarks=base_mesh)
        spots = spot_expressions(L, fps=fps)
        spots_all.append(spots)
        truth_all.append(truth)
    r = evaluate(spots_all, truth_all)
    assert r.loc["micro", "n_true"] > 3 and r.loc["macro", "n_true"] > 3
    assert r.loc["overall", "f1"] >= 0.8, r
    assert r.loc["micro", "f1"] >= 0.7 and r.loc["macro", "f1"] >= 0.7
    # seconds and frames agree, kinds follow the duration
    df = spots_all[0].to_dataframe()
    np.testing.assert_allclose(df["onset"], df["onset_frame"] / fps)
    np.testing.assert_allclose(df["duration"], (df["offset_frame"] - df["onset_frame"] + 1) / fps)
    assert set(df["kind"]) <= {"micro", "macro"}
    assert ((df["kind"] == "micro") == (df["duration"] <= 0.5 + 1e-9)).all()
    assert (df["onset"] <= df["apex"]).all() and (df["apex"] <= df["offset"]).all()


def test_head_turn_landmarks_not_spotted(base_mesh):
    for seed in (1, 2):
        L, truth = make_spotting_landmarks(fps=30, duration=15, seed=seed, events=[], head_motion="turn",
                                           landmarks=base_mesh)
        assert len(truth) == 0
        spots = spot_expressions(L, fps=30)
        assert spots.sizes["spot"] == 0, spots.to_dataframe()


def test_alignment_removes_rigid_motion(base_mesh):
    from emonb.spotting.synthetic import _rotation

    rng = np.random.default_rng(0)
    frames = []
    for _ in range(20):
        R = _rotation(*rng.uniform(-15, 15, 3)) * rng.uniform(0.8, 1.2)
        frames.append((base_mesh - base_mesh.mean(0)) @ R.T + rng.uniform(-30, 30, 3))
    aligned, valid, iod = align_landmarks(np.stack(frames))
    assert valid.all() and iod > 0
    assert np.abs(aligned - aligned[0]).max() < 1e-6


def test_steady_head_turn_raises_threshold(base_mesh):
    from emonb.spotting.synthetic import _rotation

    # 20 degrees of yaw at a constant speed (1/3 degree per frame): the angle's window contrast is
    # zero during the turn, the rotation inside the window is not
    yaw = np.concatenate([np.zeros(30), np.linspace(0, 20, 61), np.full(30, 20.0)])
    c = base_mesh.mean(0)
    L = np.stack([(base_mesh - c) @ _rotation(0, y, 0).T + c for y in yaw])
    _, signals = spot_expressions(L, fps=30, return_signals=True)
    rot = signals["head_rotation"].sel(scale="micro").values  # window +/- 6 frames
    assert rot[60] == pytest.approx(2.0, abs=0.05)
    assert rot[10] < 0.05 and rot[110] < 0.05


def test_missing_faces(base_mesh):
    L, truth = make_spotting_landmarks(fps=30, duration=12, seed=4, landmarks=base_mesh)
    # a gap without a face across the first expression: no crash, no spot across the gap
    on, off = int(truth.onset_frame[0]), int(truth.offset_frame[0])
    L[on - 2: off + 3] = np.nan
    spots = spot_expressions(L, fps=30)
    df = spots.to_dataframe()
    assert not ((df["onset_frame"] <= off + 2) & (df["offset_frame"] >= on - 2)).any()
    assert spots.attrs["face_coverage"] < 1.0
    # no face at all: an empty result with a quality flag
    empty = spot_expressions(np.full((90, 478, 3), np.nan), fps=30)
    assert empty.sizes["spot"] == 0
    assert empty.attrs["quality"] == "no_face" and "no face" in empty.attrs["warning"]
    assert list(empty.to_dataframe().columns) == list(spots.to_dataframe().columns)
    short = spot_expressions(L[:10], fps=30)
    assert short.sizes["spot"] == 0 and short.attrs["quality"] == "too_short"


def test_layout_and_attrs(base_mesh):
    L, _ = make_spotting_landmarks(fps=30, duration=10, seed=0, landmarks=base_mesh)
    spots, signals = spot_expressions(L, fps=30, return_signals=True)
    assert set(SPOT_VARIABLES) <= set(spots.data_vars)
    assert all(spots[v].dims == ("spot",) for v in spots.data_vars)
    df = spots.to_dataframe()
    assert len(df) == spots.sizes["spot"] > 0
    for c in ("onset_frame", "apex_frame", "offset_frame"):
        assert df[c].dtype.kind == "i"
    assert df["kind"].isin(["micro", "macro"]).all()
    assert all(isinstance(x, str) for x in df["regions"]) and all(isinstance(x, str) for x in df["aus"])
    assert set(",".join(df["regions"]).split(",")) <= set(eb.spotting.REGION_NAMES)
    a = spots.attrs
    assert a["modality"] == "spots" and a["method"] and a["fps"] == 30 and a["source"] == "landmark array"
    assert json.loads(a["parameters"])["micro_window"] == 0.2
    assert signals["contrast"].dims == ("scale", "time", "region")
    assert list(signals.scale.values) == ["micro", "macro"]


@pytest.mark.parametrize("call, err, fragment", [
    (lambda: spot_expressions("/nonexistent/clip.mp4"), EmonbFileError, "clip.mp4"),
    (lambda: spot_expressions(np.zeros((10, 478, 3))), EmonbValueError, "fps"),
    (lambda: spot_expressions(np.zeros((10, 478)), fps=30), EmonbValueError, "shape"),
    (lambda: spot_expressions(np.zeros((100, 68, 2)), fps=30), EmonbValueError, "478"),
    (lambda: spot_expressions(xr.Dataset({"x": ("time", [1.0])}), fps=30), EmonbValueError, "face result"),
    (lambda: spot_expressions(np.zeros((10, 478, 3)), fps=30, threshold=-1), EmonbValueError, "threshold"),
    (lambda: spot_expressions(np.zeros((10, 478, 3)), fps=30, extent=0.7), EmonbValueError, "extent"),
    (lambda: spot_expressions(np.zeros((10, 478, 3)), fps=30, regions=["ears"]), EmonbValueError, "region"),
    (lambda: spot_expressions(xr.DataTree(), fps=30), EmonbValueError, "neither a 'face' nor a 'video'"),
    (lambda: spot_expressions(42), EmonbValueError, "cannot read"),
])
def test_bad_input(call, err, fragment):
    with pytest.raises(err, match=fragment):
        call()


def test_generator_schedule_and_errors(tmp_path):
    ev = random_events(30, seed=3)
    assert ev and all(e["onset"] < e["apex"] <= e["plateau_end"] < e["offset"] for e in ev)
    for e in ev:
        d = e["offset"] - e["onset"]
        assert (0.2 <= d <= 0.45) if e["kind"] == "micro" else (1.0 <= d <= 3.0)
    assert all(a["offset"] + 1.0 <= b["onset"] for a, b in itertools.pairwise(ev))
    assert random_events(30, seed=3) == ev
    with pytest.raises(EmonbValueError, match="mp4"):
        make_spotting_video(tmp_path / "x.gif")
    with pytest.raises(EmonbError, match="does not exist"):
        make_spotting_video(tmp_path / "missing" / "x.mp4")
    with pytest.raises(EmonbValueError, match="action"):
        make_spotting_landmarks(events=[{"action": "wink", "onset": 1, "duration": 0.3}], landmarks=np.zeros((478, 3)))


# -- end to end on small generated videos ------------------------------------------------------------
EVENTS = [
    {"action": "brow_raise", "onset": 1.0, "duration": 0.33, "amplitude": 0.07},
    {"action": "smile", "onset": 2.4, "duration": 1.5, "amplitude": 0.12},
    {"action": "frown", "onset": 4.8, "duration": 0.4, "amplitude": 0.08},
]


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("spot") / "expressions.mp4"
    truth = make_spotting_video(path, fps=30, duration=6.2, events=EVENTS, seed=1)
    face = eb.analyze_face(path, progress=False, detector_score=False)
    return path, truth, face


def test_video_end_to_end(video):
    path, truth, face = video
    assert list(truth["kind"]) == ["micro", "macro", "micro"]
    assert truth.attrs["n_frames"] == 186
    spots = spot_expressions(face)
    r = evaluate(spots, truth)
    assert r.loc["overall", "tp"] >= 2, (spots.to_dataframe(), truth)
    assert r.loc["overall", "f1"] >= 0.66
    assert spots.attrs["source"] == str(path) and spots.attrs["quality"] == "ok"
    smile = spots.to_dataframe().query("kind == 'macro'")
    assert len(smile) == 1 and "mouth" in smile["regions"].iloc[0]
    # the face result's AUs are listed at the apex
    assert "AU12" in smile["aus"].iloc[0].split(",")


def test_head_turn_video_not_spotted(tmp_path):
    path = tmp_path / "turn.mp4"
    truth = make_spotting_video(path, fps=30, duration=5.0, events=[], head_motion="turn", seed=5)
    assert len(truth) == 0
    face = eb.analyze_face(path, progress=False, detector_score=False)
    assert float(np.nanmax(np.abs(face.face_pose.sel(pose_angle="yaw").values))) > 10  # it did turn
    spots = spot_expressions(face)
    assert spots.sizes["spot"] == 0, spots.to_dataframe()


def test_analyze_step_reuses_face_node(video, monkeypatch, tmp_path):
    import emonb.models.face.analyze as fa

    path, _truth, face = video
    calls = []

    def fake_face(src, **opts):
        calls.append(src)
        return face

    monkeypatch.setattr(fa, "analyze_face", fake_face)
    tree = eb.load_session(video=path)
    out = eb.analyze(tree, ["spot", "face"], progress=False)
    assert len(calls) == 1                      # spot ran after face and reused its node
    assert {"face", "spots"} <= set(out.children)
    rec = json.loads(out.attrs["analysis"])
    assert list(rec) == ["face", "spot"] and rec["spot"]["status"] == "ok"
    spots = out["spots"].to_dataset()
    assert spots.attrs["modality"] == "spots" and spots.attrs["source"] == "session face node"
    assert spots.sizes["spot"] >= 2
    # a session with a face node: the spot step alone
    out2 = eb.analyze(out, ["spot"], progress=False)
    assert out2["spots"].sizes["spot"] == spots.sizes["spot"] and len(calls) == 1
    # without a face node the step is skipped, not failed
    rec = json.loads(eb.analyze(tree, ["spot"], progress=False).attrs["analysis"])
    assert rec["spot"]["status"] == "skipped"
    # the spots node survives a save / open round trip
    eb.save_session(out, tmp_path / "s.zarr")
    back = eb.open_session(tmp_path / "s.zarr")["spots"].to_dataset()
    pd.testing.assert_frame_equal(back.to_dataframe(), spots.to_dataframe(), check_dtype=False, check_like=True)


def test_session_and_video_inputs(video):
    _path, _truth, face = video
    tree = xr.DataTree.from_dict({"/": xr.Dataset(), "/face": face})
    a = spot_expressions(tree)
    b = spot_expressions(face)
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())
    with pytest.raises(EmonbValueError, match="face=3"):
        spot_expressions(face, face=3)
