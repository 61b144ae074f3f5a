"""The AU mapping fitted to OpenFace: mesh-geometry features, the signed fit, baselines, the shipped card."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emonb.models.face.au_features import FEATURE_NAMES, GEOMETRY_FEATURES, au_features, geometry_matrix
from emonb.models.face.au_fit import AU_INPUTS, apply_fit, blocked_cv_r, fit_au, pearson
from emonb.models.face.au_learned import MIN_BASELINE_FRAMES, LearnedAUs, track_segments

ROOT = Path(__file__).resolve().parents[1]
GEO = {n: i for i, n in enumerate(GEOMETRY_FEATURES)}


def _face(n=1, seed=0):
    """A face-like mesh: the points the geometry features read, in pixels, plus small noise elsewhere."""
    rng = np.random.default_rng(seed)
    lm = rng.normal(150, 5, (n, 478, 3)).astype(np.float64)
    pts = {33: (100, 100), 133: (130, 100), 362: (170, 100), 263: (200, 100),
           107: (132, 80), 336: (168, 80), 105: (115, 78), 334: (185, 78), 70: (100, 85), 300: (200, 85),
           159: (115, 95), 145: (115, 105), 386: (185, 95), 374: (185, 105),
           1: (150, 140), 2: (150, 148), 129: (138, 135), 358: (162, 135),
           0: (150, 160), 13: (150, 168), 14: (150, 170), 17: (150, 180), 61: (125, 170), 291: (175, 170),
           152: (150, 215)}
    for i, (x, y) in pts.items():
        lm[:, i, 0], lm[:, i, 1], lm[:, i, 2] = x, y, 0.0
    return lm


def _rotate(lm, angle_deg, scale=1.0, shift=(0.0, 0.0)):
    a = np.radians(angle_deg)
    R = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    c = lm.mean(axis=1, keepdims=True)
    return (lm - c) @ R.T * scale + c + np.array([shift[0], shift[1], 0.0])


def test_geometry_does_not_depend_on_roll_size_or_position():
    lm = _face()
    g = geometry_matrix(lm)
    assert np.isfinite(g).all()
    moved = geometry_matrix(_rotate(lm, 25, scale=1.7, shift=(40, -15)))
    np.testing.assert_allclose(moved, g, atol=1e-4)


def test_geometry_follows_the_muscles():
    lm = _face()
    base = geometry_matrix(lm)[0]
    brows = lm.copy()
    brows[:, [107, 336], 1] -= 8  # inner brows up (image y grows downward)
    assert geometry_matrix(brows)[0, GEO["brow_inner_height"]] > base[GEO["brow_inner_height"]] + 0.05  # 8 px of 100
    smile = lm.copy()
    smile[:, [61, 291], 1] -= 6
    smile[:, 61, 0] -= 4
    smile[:, 291, 0] += 4
    g = geometry_matrix(smile)[0]
    assert g[GEO["corner_height"]] > base[GEO["corner_height"]] and g[GEO["mouth_width"]] > base[GEO["mouth_width"]]
    jaw = lm.copy()
    jaw[:, [152, 17, 14], 1] += 20
    g = geometry_matrix(jaw)[0]
    assert g[GEO["jaw_drop"]] > base[GEO["jaw_drop"]] and g[GEO["lip_gap"]] > base[GEO["lip_gap"]]


def test_features_reject_wrong_shapes_and_give_nan_without_a_mesh():
    with pytest.raises(ValueError, match="478"):
        geometry_matrix(np.zeros((2, 68, 2)))
    f = au_features(np.full((1, 52), np.nan), np.full((1, 478, 3), np.nan))
    assert f.shape == (1, len(FEATURE_NAMES)) and np.isnan(f).all()


def test_signed_fit_never_turns_an_input_around():
    rng = np.random.default_rng(1)
    n = 400
    X = rng.uniform(0, 1, (n, len(FEATURE_NAMES)))
    good = FEATURE_NAMES.index("browInnerUp")
    wrong = FEATURE_NAMES.index("brow_inner_height")  # declared +, but made to move against the target
    y = 0.6 * X[:, good] + 0.02 * rng.normal(size=n)
    X[:, wrong] = 1 - X[:, good]
    p = fit_au("AU01", X, y, alpha=0.01)
    assert all(w >= 0 for w in p["weights"])
    assert p["weights"][p["inputs"].index("brow_inner_height")] == 0.0
    assert pearson(apply_fit(p, X), y) > 0.95
    r = blocked_cv_r("AU01", X, y, alpha=0.01)
    assert 0.9 < r <= 1.0
    assert set(AU_INPUTS["AU01"]) == set(p["inputs"])
    json.dumps(p)  # JSON-ready


def test_pearson_is_nan_for_a_constant():
    assert np.isnan(pearson(np.zeros(10), np.arange(10.0)))
    assert pearson(np.arange(10.0), 2 * np.arange(10.0)) == pytest.approx(1.0)


def test_track_segments_split_at_long_gaps():
    t = np.arange(10) * 0.1
    t[6:] += 2.0  # a gap of 2 s
    present = np.ones(10, bool)
    present[3] = False
    segs = track_segments(present, t, max_gap=1.0)
    assert [s.tolist() for s in segs] == [[0, 1, 2, 4, 5], [6, 7, 8, 9]]
    assert track_segments(np.zeros(4, bool), t[:4], max_gap=1.0) == []


@pytest.fixture(scope="module")
def fitted():
    import emonb as eb

    return LearnedAUs(eb.models.get_model("emonb-au-openface-fit")).load()


def test_shipped_fit_loads_with_its_hash_and_covers_the_weak_aus(fitted):
    card = fitted.card_
    assert {"AU01", "AU04", "AU15", "AU26"} <= set(fitted.aus)
    assert card["held_out"] and "single_face.mp4" in card["held_out"]
    assert card["training"]["video"] not in card["held_out"]
    for au, p in fitted.params_.items():
        assert set(p) >= {"static", "dynamic", "cv_r"}
        assert all(w >= 0 for w in p["dynamic"]["weights"]) and any(w > 0 for w in p["dynamic"]["weights"])


def test_dynamic_aus_ignore_a_persons_constant_offset(fitted):
    rng = np.random.default_rng(2)
    X = rng.uniform(0, 0.5, (60, len(FEATURE_NAMES)))
    shifted = X + 0.3  # another face shape, the same movements
    np.testing.assert_allclose(fitted.dynamic(shifted), fitted.dynamic(X), atol=1e-6)
    assert not np.allclose(fitted.static(shifted), fitted.static(X))
    out = fitted.static(X)
    assert out.shape == (60, len(fitted.aus)) and (out >= 0).all() and (out <= 1).all()


def test_describe_mapping_says_how_each_au_is_computed_and_its_agreement(fitted):
    import emonb as eb

    table = eb.face.describe_mapping()
    held = fitted.card_["held_out_r"]
    line = next(x for x in table.splitlines() if x.startswith("| AU01 |"))
    assert "fitted" in line and f"{held['single_face.mp4:dynamic:AU01']['emonb']:.2f}" in line
    assert "| AU12 | lip corner puller | rule |" in table
    assert "| AU16 |" in table and "not in OpenFace" in next(x for x in table.splitlines() if x.startswith("| AU16"))
    rules_only = eb.face.describe_mapping(eb.face.AU_MAPPING)
    assert "fitted" not in rules_only


@pytest.fixture(scope="module")
def face_video(tmp_path_factory):
    from emonb.spotting.synthetic import make_spotting_video

    path = tmp_path_factory.mktemp("aus") / "face.mp4"
    make_spotting_video(path, fps=24.0, duration=2.5, events=[{"action": "smile", "onset": 1.0, "duration": 0.8}],
                        seed=3)
    return path


def test_video_aus_use_a_per_track_baseline_and_stills_do_not(face_video):
    """Generated face video (the real face of the spotting tests, animated): baseline flag and its absence."""
    import emonb as eb

    frames = face_video
    ds = eb.analyze_face(frames, progress=False)
    base = ds.face_au_baseline.isel(face=0).values
    found = np.isfinite(base)
    assert found.sum() >= MIN_BASELINE_FRAMES and (base[found] == 1).all()
    flat = eb.analyze_face(frames, progress=False, au_baseline=False)
    assert (flat.face_au_baseline.isel(face=0).values[found] == 0).all()
    rules = eb.analyze_face(frames, progress=False, model={"au": "emonb-au-blendshape-rules"})
    assert rules.attrs["au_model"] == "emonb-au-blendshape-rules" and rules.attrs["learned_aus"] == ""
    assert ds.attrs["au_model"] == "emonb-au-openface-fit"
    learned = ds.attrs["learned_aus"].split(", ")
    other = [a for a in ds.au.values if a not in learned]
    np.testing.assert_allclose(ds.face_au.sel(au=other).values, rules.face_au.sel(au=other).values, atol=1e-6)


def test_fit_script_reproduces_the_shipped_parameters(shared_data, tmp_path, fitted):
    video = shared_data / "video"
    if not (video / "openface").is_dir():
        pytest.skip(f"no OpenFace references in {video / 'openface'}")
    out = tmp_path / "fit.json"
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "fit_face_aus.py"), "--data", str(video),
                          "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "held-out person" in res.stdout
    new = json.loads(out.read_text())["aus"]
    assert set(new) == set(fitted.params_)
    for au, p in new.items():
        np.testing.assert_allclose(p["dynamic"]["weights"], fitted.params_[au]["dynamic"]["weights"], atol=1e-3)
        np.testing.assert_allclose(p["static"]["intercept"], fitted.params_[au]["static"]["intercept"], atol=1e-3)
