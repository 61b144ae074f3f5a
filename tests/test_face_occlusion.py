"""Face occlusion model: training script (tiny run), shipped weights, behaviour on pasted occluders, real video.

The training test runs on a small generated pack with the FER2013 pack's layout; the occluder tests
use real FER2013 PublicTest faces and the real-video test the embedded sample (skipped when absent).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from emonb.errors import EmonbValueError  # noqa: E402
from emonb.models import get_model, sha256_file  # noqa: E402
from emonb.models.face.occlusion import REGIONS, OcclusionNet, predict_occlusion  # noqa: E402
from emonb.schema import EMOTIONS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FER = ROOT.parent / "shared" / "data" / "face" / "fer2013" / "fer2013_trainval.npz"
SAMPLE = ROOT / "emonb" / "data" / "sample" / "video.mp4"


def _script():
    spec = importlib.util.spec_from_file_location("train_face_occlusion", ROOT / "scripts" / "train_face_occlusion.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, mod)          # dataclasses look their module up while it loads
    spec.loader.exec_module(mod)
    return mod


T = _script()


def _pack(path: Path, n_train: int = 60, n_val: int = 20, seed: int = 0) -> Path:
    """A pack with the FER2013 layout: face-like blobs (dark eyes and mouth on a lighter oval)."""
    import cv2

    rng = np.random.default_rng(seed)
    n = n_train + n_val
    images = np.empty((n, 48, 48), np.uint8)
    for i in range(n):
        im = np.full((48, 48), rng.integers(30, 90), np.uint8)
        cv2.ellipse(im, (24, 26), (17, 22), 0, 0, 360, int(rng.integers(120, 200)), -1)
        for x in (16, 32):
            cv2.circle(im, (x, 20), 3, 40, -1)
        cv2.ellipse(im, (24, 37), (7, int(rng.integers(2, 5))), 0, 0, 360, 50, -1)
        images[i] = np.clip(im + rng.normal(0, 6, im.shape), 0, 255).astype(np.uint8)
    y = np.arange(n) % len(EMOTIONS)
    np.savez(path, images=images, label=np.array(EMOTIONS)[y], split=np.array(["train"] * n_train + ["val"] * n_val),
             name=np.array([f"{i}.jpg" for i in range(n)]), md5=np.array(["x"] * n), dup_group=np.full(n, -1, np.int32),
             ferplus_votes=np.zeros((n, 10), np.uint8), ferplus_note=np.array([""] * n))
    return path


def test_training_script_tiny_run_and_resume(tmp_path, capsys):
    data = _pack(tmp_path / "pack.npz")
    out = tmp_path / "run"
    args = ["--data", str(data), "--out", str(out), "--per-epoch", "256", "--epochs", "2", "--quiet"]
    assert T.main(args + ["--stop-after", "1"]) == 0           # interrupted after one epoch
    assert (out / "checkpoint.pt").exists() and not (out / "record.json").exists()
    assert T.main(args) == 0                                   # resumes from the checkpoint
    assert "resumed hands1 after epoch 1" in capsys.readouterr().out
    rec = json.loads((out / "record.json").read_text())
    assert rec["data"]["sha256"] == sha256_file(data)
    assert rec["recipe"]["epochs"] == 2 and [h["epoch"] for h in rec["history"]] == [1, 2]
    assert set(rec["validation"]) == set(REGIONS)
    assert rec["weights_sha256"] == sha256_file(out / "weights.pt")
    model = OcclusionNet(widths=rec["recipe"]["widths"])
    model.load_state_dict(torch.load(out / "weights.pt", weights_only=True))
    # the same recipe and seed reproduce the same weights
    again = T.train(T.replace(T.RECIPES["hands1"], epochs=1, per_epoch=256), data, tmp_path / "b", progress=False)
    first = T.train(T.replace(T.RECIPES["hands1"], epochs=1, per_epoch=256), data, tmp_path / "c", progress=False)
    assert again["weights_sha256"] == first["weights_sha256"]


def test_synthesis_labels_follow_coverage():
    rng = np.random.default_rng(0)
    face = np.full((64, 64), 120, np.float32)
    for render in (T.render_hand, T.render_hand_v2):   # fingers sideways, from a palm on the mouth
        img, alpha = render(face, face.astype(np.uint8), T._region_centre("mouth"), 24, np.pi / 2, rng)
        cov = T.coverage(alpha)
        assert cov[REGIONS.index("mouth")] > 0.5, render.__name__
        assert cov[REGIONS.index("eyes")] < 0.1, render.__name__
        assert np.abs(img - face)[alpha > 0.9].mean() > 5 and np.abs(img - face)[alpha == 0].max() < 60
    y, w = T.labels_weights(np.array([[0.0, 0.3, 0.9]], np.float32), T.RECIPES["hands1"])
    assert y.tolist() == [[0, 0, 1]] and w.tolist() == [[1, 0, 1]]
    assert T.auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0


def test_shipped_weights_load_and_match_their_sha():
    spec = get_model("emonb-face-occlusion")
    assert spec.task == "occlusion" and spec.outputs == REGIONS
    assert sha256_file(spec.check_weights()) == spec.sha256
    card = json.loads(spec.weights_path.with_suffix(".json").read_text())
    assert card["weights_sha256"] == spec.sha256
    p = predict_occlusion(np.zeros((2, 64, 64), np.uint8))
    assert p.shape == (2, 3) and p.dtype == np.float32 and ((p >= 0) & (p <= 1)).all()
    assert predict_occlusion(np.zeros((0, 64, 64), np.uint8)).shape == (0, 3)


def test_bad_crops_are_refused():
    with pytest.raises(EmonbValueError, match="64, 64"):
        predict_occlusion(np.zeros((2, 48, 48), np.uint8))
    with pytest.raises(EmonbValueError, match="uint8"):
        predict_occlusion(np.zeros((2, 64, 64), np.float32))


@pytest.mark.realdata
def test_pasted_occluder_raises_its_region_on_real_faces():
    if not FER.exists():
        pytest.skip(f"{FER} is absent (../shared/data)")
    with np.load(FER) as d:
        idx = np.flatnonzero(d["split"] == "val")[:300]
        faces = T.to64(d["images"][idx], T.RECIPES["hands1"].fer_dy)
    rng = np.random.default_rng(123)
    clean = predict_occlusion(faces)
    for j, region in enumerate(REGIONS):
        covered = np.stack([T.render_hand(f.astype(np.float32), faces[(k + 7) % len(faces)],
                                          T._region_centre(region), 26, rng.uniform(-np.pi, np.pi), rng)[0]
                            for k, f in enumerate(faces)])
        p = predict_occlusion(np.clip(covered + 0.5, 0, 255).astype(np.uint8))
        assert p[:, j].mean() > clean[:, j].mean() + 0.4, region
        assert (p[:, j] > 0.5).mean() > 0.7, region
    assert (clean > 0.5).mean(axis=0).max() < 0.1      # clean faces are rarely flagged


@pytest.mark.realdata
def test_sample_video_mouth_covered_inside_the_labelled_span():
    if not SAMPLE.exists():
        pytest.skip(f"{SAMPLE} is absent")
    t, crops = T.video_crops(SAMPLE)
    p = predict_occlusion(crops)
    inside = T._in_spans(t, T.SAMPLE_SPANS["mouth"], T.MARGIN)
    clean = T._in_spans(t, T.SAMPLE_SPANS["clean"], T.MARGIN)
    m = REGIONS.index("mouth")
    assert inside.sum() > 50 and clean.sum() > 100
    assert p[inside, m].mean() > p[clean, m].mean() + 0.2
