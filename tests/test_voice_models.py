"""Speech-emotion model v2 on generated data: augmentation, CNN runtime, calibration, training, weights."""

from __future__ import annotations

import json

import numpy as np
import pytest

import emonb as eb
from emonb.errors import EmonbValueError
from conftest import harmonic  # noqa: E402

SR = 16000




# --- augmentation ---------------------------------------------------------------------------------

def test_augmentations_do_what_they_say():
    from emonb.models.voice import augment as A

    y = harmonic([150, 220, 160], 1.5, syll_rate=4)
    y0 = y.copy()
    assert len(A.speed_perturb(y, 1.1)) == pytest.approx(len(y) / 1.1, abs=2)
    tel = A.telephone(y)
    assert len(tel) == len(y) // 2
    spec = np.abs(np.fft.rfft(tel)) ** 2
    f = np.fft.rfftfreq(len(tel), 1 / 8000)
    assert spec[f > 3700].sum() < 0.01 * spec.sum()  # band-limited
    for snr in (20.0, 5.0):
        noisy = A.add_noise(y, snr, np.random.default_rng(0), color="pink")
        noise = noisy - y
        measured = 20 * np.log10(A.active_rms(y) / np.sqrt(np.mean(noise ** 2)))
        assert measured == pytest.approx(snr, abs=0.5)
    r = A.reverberate(y, 0.5, np.random.default_rng(1))
    assert len(r) == len(y) and not np.allclose(r, y)
    a, ra, da = A.random_chain(y, np.random.default_rng(3))
    b, rb, db = A.random_chain(y, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert ra == rb and da == db
    np.testing.assert_array_equal(y, y0)  # inputs are never written
    for cond in A.CONDITIONS:
        out, rate = A.apply_condition(y, cond, 5)
        assert rate in (8000, 16000) and np.isfinite(out).all()


# --- the log-mel network ----------------------------------------------------------------------------

def test_numpy_cnn_matches_torch_and_blocks_agree():
    torch = pytest.importorskip("torch")
    from emonb.models.voice.melcnn import (MelCNNNumpy, build_torch_net, export_torch_net, normalise_logmel,
                                           reference_level)

    torch.manual_seed(0)
    net = build_torch_net(5)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):  # non-trivial statistics, so folding is tested
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    net.eval()
    rng = np.random.default_rng(0)
    T = 336  # a multiple of the 8-frame stride (torch floors odd tails, numpy pads them)
    lm = (rng.standard_normal((T, 40)) * 10 - 40).astype(np.float32)
    voice = np.ones(T, bool)
    voice[:30] = False
    bm, bs = np.full(40, -5.0, np.float32), np.full(40, 8.0, np.float32)
    np_net = MelCNNNumpy(export_torch_net(net, bm, bs))
    ref = reference_level(lm, voice)
    emb = np_net.embed(lm, voice, ref=ref)
    x = torch.from_numpy(normalise_logmel(lm, ref, bm, bs))[None]
    with torch.no_grad():
        e_t = net.embed(x)[0].numpy()
        mask = np_net.step_mask(voice)
        logits_t = net(x, torch.from_numpy(mask[None].astype(np.float32))).numpy()
    np.testing.assert_allclose(emb[: len(e_t)], e_t, atol=1e-4)
    logits = np_net.logits_from_embeddings(emb, mask, [(0, T)])
    np.testing.assert_allclose(logits, logits_t, atol=1e-4)
    np.testing.assert_allclose(np_net.embed(lm, voice, ref=ref, block=64), emb, atol=1e-5)
    tail = np_net.embed(lm[:331], voice[:331], ref=ref[:331])  # a ragged tail only changes the last steps
    assert tail.shape == (42, emb.shape[1])
    np.testing.assert_allclose(tail[:39], emb[:39], atol=1e-5)
    # a range without voice frames gives NaN, never a guess
    assert np.isnan(np_net.logits_from_embeddings(emb, mask, [(0, 16)])).all()


# --- calibration ------------------------------------------------------------------------------------

def test_temperature_scaling_recovers_a_known_temperature_and_lowers_ece():
    from emonb.models.voice.calibration import ece, fit_temperature, log_softmax

    rng = np.random.default_rng(0)
    z = rng.standard_normal((4000, 7)) * 2.0
    p_true = np.exp(log_softmax(z / 2.5))  # labels drawn from a softer distribution: overconfident logits
    y = np.array([rng.choice(7, p=p) for p in p_true])
    T = fit_temperature(z, y)
    assert T == pytest.approx(2.5, rel=0.1)
    before = ece(np.exp(log_softmax(z)), y)
    after = ece(np.exp(log_softmax(z / T)), y)
    assert after < before / 2 and after < 0.03
    assert ece(np.eye(3)[[0, 1, 2]], np.array([0, 1, 2])) == 0.0


def test_speaker_normalisation_shrinks_a_lone_utterance_to_the_population():
    from emonb.models.voice.calibration import speaker_normalise, speaker_stats

    pop_mean, pop_var = np.zeros(3), np.ones(3)
    x = np.array([[5.0, 5.0, 5.0]])
    m, sd = speaker_stats(x, pop_mean, pop_var, prior=2.0)
    np.testing.assert_allclose(m, 5.0 / 3)  # one utterance: mostly the population
    many = np.random.default_rng(0).normal(10.0, 2.0, (400, 3))
    m, sd = speaker_stats(many, pop_mean, pop_var, prior=2.0)
    np.testing.assert_allclose(m, many.mean(axis=0), rtol=0.01)
    Z = speaker_normalise(np.vstack([many, many + 3]), ["a"] * 400 + ["b"] * 400, pop_mean, pop_var, prior=2.0)
    np.testing.assert_allclose(Z[:400].mean(axis=0), Z[400:].mean(axis=0), atol=0.05)


# --- training with the new architecture -------------------------------------------------------------

def _toy_corpus():
    """Two 'emotions' (high, loud, fast vs low, soft, slow) by four 'speakers' with their own pitch."""
    clips, labels, groups = [], [], []
    for s, base in enumerate((100.0, 115.0, 130.0, 145.0)):
        for r in range(2):
            clips.append(harmonic([base * 1.4, base * 1.75, base * 1.54], 2.0, amp=0.4, syll_rate=5, seed=10 * s + r))
            labels.append("angry")
            clips.append(harmonic([base, base * 0.95, base * 0.9], 2.0, amp=0.15, syll_rate=3, seed=10 * s + r + 5))
            labels.append("sad")
            groups += [f"s{s}", f"s{s}"]
    return clips, labels, groups


def test_training_with_the_cnn_on_a_handful_of_clips(tmp_path):
    pytest.importorskip("torch")
    clips, labels, groups = _toy_corpus()
    kw = dict(labels=labels, groups=groups, sampling_rate=SR, augment=1, cnn_params={"epochs": 4},
              n_splits=2, progress=False)
    m = eb.voice.train_emotion_model(clips, output=tmp_path / "a.npz", **kw)
    assert m.labels == ["anger", "sadness"]
    assert m.meta["architecture"] == "functionals+cnn"
    assert m.n_groups == 4 and m.n_clips == 16
    assert m.accuracy >= 0.75
    assert set(m.meta["temperatures"]) >= {"temperature", "temperature_functionals", "temperature_session"}
    assert np.isfinite(m.meta["cv_ece"]) and np.isfinite(m.meta["cv_ece_calibrated"])
    rt = m.spec.create()
    assert rt.has_cnn and rt.has_session_head
    ds = eb.predict_voice_clips(clips[:4], sampling_rate=SR, model=m, progress=False)
    p = ds.voice_emotion.values
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert list(ds.voice_label.values[:2]) == ["anger", "sadness"]
    assert ds.voice_arousal.values[0] > ds.voice_arousal.values[1]
    # deterministic: the same seed writes the same bytes
    m2 = eb.voice.train_emotion_model(clips, output=tmp_path / "b.npz", **kw)
    assert m2.spec.sha256 == m.spec.sha256
    # the weights are a pickle-free npz
    with np.load(m.path, allow_pickle=False) as z:
        assert "cnn_conv0_w" in z.files and "sn_W" in z.files


def test_functionals_architecture_trains_in_a_moment(tmp_path):
    clips, labels, groups = _toy_corpus()
    m = eb.voice.train_emotion_model(clips, labels=labels, groups=groups, sampling_rate=SR, augment=0,
                                     architecture="functionals", output=tmp_path / "f.npz", progress=False)
    assert m.meta["architecture"] == "functionals" and not m.spec.create().has_cnn
    assert m.accuracy >= 0.75
    with pytest.raises(EmonbValueError, match="architecture"):
        eb.voice.train_emotion_model(clips, labels=labels, groups=groups, sampling_rate=SR,
                                     architecture="transformer", progress=False)


# --- the shipped weights ----------------------------------------------------------------------------

def test_shipped_weights_card_and_sha():
    from emonb.models.spec import WEIGHTS_DIR, sha256_file

    spec = eb.models.get_model("voice-emotion-ravdess")
    path = spec.check_weights()  # raises on a SHA mismatch
    assert sha256_file(path) == spec.sha256
    card = json.loads((WEIGHTS_DIR / "voice_emotion_ravdess_v2.json").read_text())
    assert card["sha256"] == spec.sha256 and card["weights"] == path.name
    assert card["license"].startswith("CC BY-NC-SA 4.0") and "non-commercial" in card["license"]
    shipped = card["validation"]["shipped"]
    v1 = card["validation"]["variants"]["lr"]
    assert shipped["clean"]["accuracy"] > v1["clean"]["accuracy"]  # the default beats the first model
    assert shipped["clean"]["ece_calibrated"] < shipped["clean"]["ece"] + 0.01
    for key in ("tel", "noise10"):
        assert 0 < shipped[key]["accuracy"] <= 1
    assert card["speed"]["rtf_cpu_one_core"] >= 50
    assert "North-American" in card["limitations"] and "Acted" in card["limitations"]
    with np.load(path, allow_pickle=False) as z:
        assert "cnn_conv0_w" in z.files and "temperature" in z.files
    rt = spec.create()
    assert rt.has_cnn and rt.has_session_head
    assert rt.temperatures_["temperature"] == pytest.approx(card["temperatures"]["temperature"])
    old = eb.models.get_model("voice-emotion-ravdess-v1")
    assert old.check_weights().exists() and old.version == "1"


def test_eight_khz_path_and_session_calibration():
    from emonb.models.voice.augment import telephone

    y = np.concatenate([np.zeros(SR // 4, np.float32), harmonic([140, 220, 170], 2.0, syll_rate=4),
                        np.zeros(SR // 4, np.float32), harmonic([120, 160, 130], 2.0, syll_rate=3, seed=2)])
    y8 = telephone(y)
    ds = eb.predict_voice_clips([y8], sampling_rate=8000, progress=False)
    assert "band_limited" in str(ds.voice_flags.values[0])
    p = ds.voice_emotion.values[0]
    assert np.isfinite(p).all() and p.sum() == pytest.approx(1.0, abs=1e-5)
    full = eb.analyze_voice(y8, sampling_rate=8000)
    assert full.attrs["audio_sampling_rate"] == 8000
    assert np.isfinite(full.voice_emotion.values).all(axis=1).any()
    cal = eb.analyze_voice(y, sampling_rate=SR, session_calibration=True)
    assert cal.attrs["session_calibration"].startswith("speaker-normalised over")  # segments or windows
    q = cal.voice_emotion.values
    ok = np.isfinite(q).all(axis=1)
    assert ok.any()
    np.testing.assert_allclose(q[ok].sum(axis=1), 1.0, atol=1e-4)
    clips = eb.predict_voice_clips([y, y[: SR * 2]], sampling_rate=SR, speakers=["a", "a"], progress=False)
    assert "speakers=" in clips.attrs["session_calibration"]
    with pytest.raises(EmonbValueError, match="per-session head"):
        eb.predict_voice_clips([y], sampling_rate=SR, speakers=["a"], model="voice-emotion-ravdess-v1",
                               progress=False)
    with pytest.raises(EmonbValueError, match="one entry per clip"):
        eb.predict_voice_clips([y], sampling_rate=SR, speakers=["a", "b"], progress=False)
