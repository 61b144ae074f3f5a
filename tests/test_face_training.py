"""Training the expression network: data split, targets, calibration, checkpoints and resume.

Fast tests run on a small generated pack with the FER2013 pack's layout; the real pack in
../shared/data is used only to check the split (skipped when absent).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from emonb.models.face import train_expression as T  # noqa: E402
from emonb.schema import EMOTIONS  # noqa: E402

FER = Path(__file__).resolve().parents[2] / "shared" / "data" / "face" / "fer2013" / "fer2013_trainval.npz"


def _pack(path: Path, n_train: int = 140, n_val: int = 70, seed: int = 0) -> Path:
    """A pack with the FER2013 layout: each class a different bright bar on noise."""
    rng = np.random.default_rng(seed)
    n = n_train + n_val
    y = np.arange(n) % len(EMOTIONS)
    images = rng.integers(0, 80, (n, 48, 48)).astype(np.uint8)
    for i, k in enumerate(y):
        images[i, 6 * k:6 * k + 6, 8:40] = 230
    votes = np.zeros((n, 10), np.uint8)
    cols = [T.FERPLUS_COLUMNS.index(e) for e in EMOTIONS]
    votes[np.arange(n), np.array(cols)[y]] = 8
    votes[:, T.FERPLUS_COLUMNS.index("neutral")] += 2
    group = np.full(n, -1, np.int32)
    group[[0, n_train]] = 7           # one validation image repeats a training image
    group[[n_train + 1, n_train + 2]] = 9   # and two validation images repeat each other
    np.savez(path, images=images, label=np.array(EMOTIONS)[y], split=np.array(["train"] * n_train + ["val"] * n_val),
             name=np.array([f"{i}.jpg" for i in range(n)]), md5=np.array(["x"] * n), dup_group=group,
             ferplus_votes=votes, ferplus_note=np.array([""] * n))
    return path


def test_split_drops_validation_images_seen_in_training(tmp_path):
    pack = T.load_pack(_pack(tmp_path / "p.npz"))
    tr, va = T.split_indices(pack)
    assert len(tr) == 140 and 140 not in va           # repeats a training image
    assert (141 in va) != (142 in va)                 # one of a duplicated pair is kept
    assert len(va) == 70 - 2


@pytest.mark.realdata
def test_real_pack_split_is_deduplicated():
    if not FER.exists():
        pytest.skip(f"{FER} is absent (../shared/data)")
    pack = T.load_pack(FER)
    tr, va = T.split_indices(pack)
    g = pack["dup_group"]
    train_groups = set(g[tr][g[tr] >= 0].tolist())
    assert len(tr) == 27549 and 3000 < len(va) < 3451
    assert not (set(g[va][g[va] >= 0].tolist()) & train_groups)
    assert len(set(g[va][g[va] >= 0].tolist())) == int((g[va] >= 0).sum())


def test_targets_mix_labels_and_votes(tmp_path):
    pack = T.load_pack(_pack(tmp_path / "p.npz"))
    idx = np.arange(7)
    hard = T.targets(pack, idx, T.recipe("ls"))
    assert np.allclose(hard.sum(1), 1) and np.allclose(hard[np.arange(7), pack["y"][idx]], 0.9 + 0.1 / 7)
    soft = T.targets(pack, idx, T.recipe("ferplus"))
    assert np.allclose(soft.sum(1), 1)
    neutral = EMOTIONS.index("neutral")
    assert soft[0, neutral] == pytest.approx(0.5 * 0.2)   # half of the 2-in-10 neutral votes (row 0 is anger)


def test_augment_keeps_shape_and_changes_pixels():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (16, 48, 48)).astype(np.uint8)
    before = x.copy()
    out = T.augment(x, rng, T.recipe("ls"))
    assert out.shape == x.shape and out.dtype == np.uint8
    assert np.array_equal(x, before)                  # the input is not written to
    assert (out != x).mean() > 0.3


def test_temperature_scaling_recovers_the_temperature_and_lowers_ece():
    rng = np.random.default_rng(1)
    z = rng.normal(0, 3, (4000, 7))
    p = np.exp(z / 2.5)
    p /= p.sum(1, keepdims=True)
    labels = np.array([rng.choice(7, p=row) for row in p])
    t = T.fit_temperature(z, labels)
    assert t == pytest.approx(2.5, rel=0.1)
    raw = T.expected_calibration_error(np.exp(z) / np.exp(z).sum(1, keepdims=True), labels)
    cal = T.expected_calibration_error(np.exp(z / t) / np.exp(z / t).sum(1, keepdims=True), labels)
    assert raw > 0.1 and cal < 0.03


def test_training_checkpoints_resume_and_reproduce(tmp_path, monkeypatch):
    """An interrupted run resumes from its checkpoint and ends with the same weights as one straight run."""
    torch.set_num_threads(1)
    data = _pack(tmp_path / "p.npz")
    r = T.recipe("ferplus", epochs=2, batch_size=32, widths=(8, 8, 16, 16), head=16)
    straight = T.train(r, data, tmp_path / "a", progress=False, log=lambda m: None)
    assert len(straight["history"]) == 2 and straight["data"]["sha256"] == T.sha256_file(data)
    assert {"validation", "validation_uncalibrated", "temperature", "weights_sha256"} <= set(straight)

    real_save = T._save_atomic
    calls = []

    def save_then_stop(obj, path):
        real_save(obj, path)
        calls.append(path)
        if len(calls) == 1:
            raise KeyboardInterrupt  # killed right after the first epoch's checkpoint

    monkeypatch.setattr(T, "_save_atomic", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        T.train(r, data, tmp_path / "b", progress=False, log=lambda m: None)
    monkeypatch.setattr(T, "_save_atomic", real_save)
    messages = []
    resumed = T.train(r, data, tmp_path / "b", progress=False, log=messages.append)
    assert any("resumed ferplus after epoch 1" in m for m in messages)
    assert [h["epoch"] for h in resumed["history"]] == [1, 2]
    a = torch.load(tmp_path / "a" / "weights.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "weights.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["validation"]["accuracy"] == straight["validation"]["accuracy"]

    with pytest.raises(Exception, match="another recipe"):
        T.train(T.recipe("ls", epochs=2, batch_size=32, widths=(8, 8, 16, 16), head=16), data,
                tmp_path / "b", progress=False, log=lambda m: None)


def test_fine_tune_starts_from_its_base_run_and_records_it(tmp_path):
    """A recipe with ``init`` starts from the named run's weights (and says which), or fails clearly."""
    torch.set_num_threads(1)
    data = _pack(tmp_path / "p.npz")
    small = {"batch_size": 32, "widths": (8, 8, 16, 16), "head": 16}
    base = T.train(T.recipe("ls", epochs=1, **small), data, tmp_path / "ls", progress=False, log=lambda m: None)
    tune = T.recipe("ls-light-eq", init="ls", epochs=1, dropout=0.3, **small)
    with pytest.raises(Exception, match="train recipe 'ls' first"):
        T.train(tune, data, tmp_path / "elsewhere" / "ls-light-eq", progress=False, log=lambda m: None)
    messages = []
    rec = T.train(tune, data, tmp_path / "ls-light-eq", progress=False, log=messages.append)
    assert rec["init_sha256"] == base["weights_sha256"]
    assert any("starting from" in m for m in messages)


def _quantize_script():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / "quantize_face_expression.py"
    spec = importlib.util.spec_from_file_location("quantize_face_expression", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_quantization_builds_a_calibrated_int8_network_reproducibly(tmp_path):
    onnx = pytest.importorskip("onnx")
    from emonb.models.face.expression import predict_expression
    from emonb.models.face.fernet import FerNetInt8Model
    from emonb.models.spec import ModelSpec

    script = _quantize_script()
    pack = _pack(tmp_path / "pack.npz")
    rec = script.build(pack, tmp_path / "a", 64, log=lambda *_: None)
    script.build(pack, tmp_path / "b", 64, log=lambda *_: None)
    a, b = (tmp_path / d / f"{script.NAME}.onnx" for d in "ab")
    assert a.read_bytes() == b.read_bytes() and rec["onnx_sha256"] == T.sha256_file(a)
    assert rec["calibration"]["images"] == 64 and rec["data"]["n_validation"] == 68
    assert 0.25 <= rec["temperature"] <= 8 and rec["validation"]["nll"] <= rec["validation_uncalibrated"]["nll"] + 1e-9
    graph = onnx.load(str(a)).graph
    assert graph.node[-1].op_type == "Div" and graph.node[-1].name == "calibration"
    assert sum(n.op_type == "QuantizeLinear" for n in graph.node) >= 10  # integer layers, not a float copy
    spec = ModelSpec(name="int8-test", modality="face", task="expression", runtime="onnx",
                     factory="emonb.models.face.fernet:build_fernet_int8", outputs=EMOTIONS, weights=str(a),
                     input_size=(48, 48))
    images = np.load(pack)["images"][:20]
    p = predict_expression(FerNetInt8Model(spec), images)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
    float_p = predict_expression(eb_fernet(), images)
    assert (p.argmax(1) == float_p.argmax(1)).mean() >= 0.9


def eb_fernet():
    import emonb as eb

    return eb.models.get_model("emonb-fernet").create(device="cpu")


@pytest.mark.skipif(not FER.exists(), reason=f"the FER2013 pack is absent ({FER})")
def test_quantization_script_reproduces_the_shipped_int8_network(tmp_path):
    pytest.importorskip("onnx")
    import emonb as eb
    from emonb.models.face.quantize_expression import onnx_logits

    script = _quantize_script()
    rec = script.build(FER, tmp_path, 1024, log=lambda *_: None)
    shipped = eb.models.get_model("emonb-fernet-int8")
    assert rec["validation"]["accuracy"] > 0.64 and rec["agreement_with_float"] > 0.98
    x = T.to_input(T.load_pack(FER)["images"][:300]).numpy()
    np.testing.assert_allclose(onnx_logits(tmp_path / f"{script.NAME}.onnx", x), onnx_logits(shipped.check_weights(), x),
                               atol=1e-5)
