"""Voice analysis on real speech (RAVDESS clips in ../shared/data; skipped when absent)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import emonb as eb

pytestmark = pytest.mark.realdata
SR = 16000


@pytest.fixture(scope="module")
def ravdess(shared_data):
    root = shared_data / "speech" / "ravdess"
    if not (root / "labels.csv").exists():
        pytest.skip(f"RAVDESS speech folder not available ({root})")
    return root


@pytest.fixture(scope="module")
def labels(ravdess):
    return pd.read_csv(ravdess / "labels.csv")


def _pick(labels, emotion, intensity, actors, statement=1, repetition=1):
    rows = labels[(labels.emotion == emotion) & (labels.intensity == intensity)
                  & labels.actor.isin(actors) & (labels.statement == statement)
                  & (labels.repetition == repetition)]
    return rows.file.tolist()


def test_shipped_model_on_real_clips(ravdess, labels):
    actors = [2, 5, 11, 14]
    angry = _pick(labels, "angry", "strong", actors)
    neutral = _pick(labels, "neutral", "normal", actors)
    assert len(angry) == 4 and len(neutral) == 4
    ds = eb.predict_voice_clips([str(ravdess / f) for f in angry + neutral], progress=False)
    p = ds.voice_emotion.values
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-4)
    assert (ds.voice_speech_duration.values > 0.5).all()
    assert (ds.voice_label.values[:4] == "anger").sum() >= 3
    # acted anger sounds more aroused than neutral reading, for each speaker
    assert np.all(ds.voice_arousal.values[:4] > ds.voice_arousal.values[4:])
    pitch = ds.voice_functionals.sel(functional="pitch_semitones_p50").values
    f0 = 27.5 * 2 ** (pitch / 12)
    assert np.all((f0 > 70) & (f0 < 600))
    # neutral reading: male actors (odd: 5, 11) lower than female actors (2, 14)
    assert max(f0[5], f0[6]) < 180 < min(f0[4], f0[7]) + 30
    assert f0[:4].mean() > f0[4:].mean()  # shouting raises pitch


def test_analyze_voice_on_concatenated_real_speech(ravdess, labels):
    import soundfile as sf

    files = _pick(labels, "happy", "strong", [1, 4, 7, 10, 13, 16])
    gap = np.zeros(SR, np.float32)
    parts = [gap]
    for f in files:
        y, sr = sf.read(str(ravdess / f), dtype="float32")
        parts += [y, gap]
    y = np.concatenate(parts)
    ds = eb.analyze_voice(y, sampling_rate=SR)
    n_seg = ds.sizes["segment"]
    assert len(files) <= n_seg <= 3 * len(files)
    # segments lie inside the signal and in order
    assert np.all(ds.end.values > ds.start.values) and np.all(np.diff(ds.start.values) > 0)
    speech = ds.voice_activity.values > 0.5
    assert 0.2 < speech.mean() < 0.8
    assert np.isfinite(ds.voice_pitch.values[speech]).mean() > 0.4
    assert np.isnan(ds.voice_pitch.sel(time=slice(0.1, 0.9)).values).all()  # leading digital silence
    emo = np.isfinite(ds.voice_emotion.values).all(axis=1)
    assert emo[speech].mean() > 0.9 and not emo[:50].any()
    assert np.isfinite(ds.voice_segment_emotion.values).all(axis=1).sum() >= len(files) // 2
    assert ds.attrs["snr_db"] > 20
    assert ds.voice_confidence.values[speech].mean() > ds.voice_confidence.values[~speech].mean()


def test_vad_batched_blocks_agree_on_real_speech(ravdess, labels):
    import soundfile as sf

    files = _pick(labels, "sad", "normal", [3, 6, 9, 12]) + _pick(labels, "happy", "strong", [3, 6, 9, 12])
    y = np.concatenate([sf.read(str(ravdess / f), dtype="float32")[0] for f in files])
    spec = eb.models.get_model("silero-vad")
    _, whole = spec.create(block_s=1e6).predict(y)  # one sequential pass
    _, blocks = spec.create(block_s=5.0, warmup_s=4.0).predict(y)  # parallel blocks with warm-up
    assert np.mean(np.abs(whole - blocks) < 0.1) > 0.95
    assert np.mean((whole > 0.5) == (blocks > 0.5)) > 0.98


def test_training_api_on_a_handful_of_real_clips(ravdess, labels, tmp_path):
    sub = labels[labels.actor.isin([1, 2, 3, 4]) & (labels.statement == 1)
                 & (((labels.emotion == "angry") & (labels.intensity == "strong")) | (labels.emotion == "calm"))]
    sub = sub.groupby(["actor", "emotion"]).head(2)
    assert len(sub) == 16
    model = eb.voice.train_emotion_model(sub, labels="emotion", groups="speaker", root=ravdess, augment=1,
                                         cnn_params={"epochs": 10}, output=tmp_path / "tiny.npz", progress=False)
    assert model.meta["architecture"] == "functionals+cnn"
    assert model.labels == ["anger", "neutral"]  # calm is folded into neutral
    assert model.n_groups == 4 and model.n_clips == 16
    assert model.accuracy >= 0.75
    clips = eb.predict_voice_clips([str(ravdess / f) for f in sub.file[:4]], model=model, progress=False)
    assert list(clips.emotion.values) == ["anger", "neutral"]
    assert model.spec.license == "user-supplied"


def test_telephone_band_keeps_the_arousal_ordering(ravdess, labels):
    """Through the 8 kHz path (300-3400 Hz, mu-law), acted anger still sounds more aroused than neutral."""
    import soundfile as sf

    from emonb.models.voice.augment import telephone

    actors = [2, 5, 11, 14]
    files = _pick(labels, "angry", "strong", actors) + _pick(labels, "neutral", "normal", actors)
    y8 = [telephone(sf.read(str(ravdess / f), dtype="float32")[0]) for f in files]
    ds = eb.predict_voice_clips(y8, sampling_rate=8000, progress=False)
    assert all("band_limited" in f for f in ds.voice_flags.values)
    a = ds.voice_arousal.values
    assert np.isfinite(a).all()
    assert np.all(a[:4] > a[4:])
    assert (ds.voice_label.values[:4] == "anger").sum() >= 2


def test_session_calibration_on_real_speakers(ravdess, labels):
    """speakers= normalises over each actor's own clips; arousal ordering holds within each actor."""
    actors = [3, 6, 9, 12]
    angry = _pick(labels, "angry", "strong", actors)
    neutral = _pick(labels, "neutral", "normal", actors)
    sad = _pick(labels, "sad", "normal", actors)
    files = angry + neutral + sad
    spk = [f.split("-")[-1].split(".")[0] for f in files]
    ds = eb.predict_voice_clips([str(ravdess / f) for f in files], speakers=spk, progress=False)
    p = ds.voice_emotion.values
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-4)
    a = ds.voice_arousal.values
    assert np.all(a[:4] > a[4:8])
    assert "speakers=" in ds.attrs["session_calibration"]
