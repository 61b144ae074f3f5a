"""Voice analysis on generated audio: features, VAD runtime, outputs, bad input, training API."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from conftest import write_audio, write_video

import emonb as eb
from emonb.errors import EmonbFileError, EmonbValueError
from emonb.schema import EMOTIONS
from conftest import harmonic  # noqa: E402

SR = 16000




# --- features -----------------------------------------------------------------------------------

def test_yin_pitch_follows_a_harmonic_tone():
    from emonb.models.voice.features import frame_features

    for f0 in (110.0, 220.0, 330.0):
        f = frame_features(harmonic(f0, 1.0))
        mid = f["pitch"][10:-10]
        assert np.mean(np.isfinite(mid)) > 0.95
        assert abs(np.nanmedian(mid) - f0) / f0 < 0.01


def test_frame_grid_and_shapes():
    from emonb.models.voice.features import FUNCTIONAL_NAMES, frame_features, functionals

    y = harmonic(150, 1.234)
    f = frame_features(y)
    n = 1 + len(y) // 160
    assert len(f["time"]) == n and np.allclose(np.diff(f["time"]), 0.01)
    assert f["mfcc"].shape == (n, 13)
    fu = functionals(f)
    assert fu.shape == (len(FUNCTIONAL_NAMES),)
    assert np.isfinite(fu).all()
    i = FUNCTIONAL_NAMES.index("pitch_semitones_p50")
    assert abs(fu[i] - 12 * np.log2(150 / 27.5)) < 0.2


def test_pitch_is_nan_for_silence_and_noise():
    from emonb.models.voice.features import frame_features

    f = frame_features(np.zeros(SR, np.float32))
    assert np.isnan(f["pitch"]).all() and np.isnan(f["hnr"]).all()
    assert np.all(f["loudness"] <= -100)
    noise = 0.1 * np.random.default_rng(1).standard_normal(SR).astype(np.float32)
    f = frame_features(noise)
    assert np.mean(np.isnan(f["pitch"])) > 0.9


def test_window_functionals_match_direct_functionals():
    from emonb.models.voice.features import frame_features, functionals, window_functionals

    f = frame_features(harmonic([120, 220, 140], 3.0, syll_rate=4))
    mask = np.ones(len(f["time"]), bool)
    mask[50:70] = False
    W = window_functionals(f, mask, np.array([0, 100]), 150)
    m0 = np.zeros_like(mask)
    m0[0:150] = mask[0:150]
    np.testing.assert_allclose(W[0], functionals(f, m0), rtol=1e-4, atol=1e-4)


def test_speech_segments_hysteresis():
    from emonb.models.voice.vad import speech_segments

    t = np.arange(300) * 0.01
    p = np.zeros(300)
    p[50:120] = 0.9
    p[125:128] = 0.2  # a short dip inside speech is bridged by min_silence
    p[128:180] = 0.9
    p[250:255] = 0.9  # 50 ms blip: shorter than min_speech
    seg = speech_segments(t, p, threshold=0.5, min_silence_s=0.1, pad_s=0.0)
    assert seg.shape == (1, 2)
    assert seg[0, 0] == pytest.approx(0.495, abs=0.011) and seg[0, 1] == pytest.approx(1.795, abs=0.011)


# --- VAD runtime ---------------------------------------------------------------------------------

def test_silero_weights_and_batching():
    spec = eb.models.get_model("silero-vad")
    spec.check_weights()
    rt = spec.create()
    y = harmonic([120, 200, 150], 4.0, syll_rate=4)
    t1, p1 = rt.predict(y)
    assert len(t1) == int(np.ceil(len(y) / 512)) and ((p1 >= 0) & (p1 <= 1)).all()
    batched = spec.create(block_s=1.0, warmup_s=0.5)
    t2, p2 = batched.predict(y)
    np.testing.assert_allclose(t1, t2)
    assert np.max(np.abs(p1 - p2)) < 0.1


# --- analyze_voice -------------------------------------------------------------------------------

def test_analyze_voice_contract_on_a_signal():
    y = np.concatenate([np.zeros(SR // 2, np.float32), harmonic([110, 180, 130], 2.5, syll_rate=4)])
    ds = eb.analyze_voice(y, sampling_rate=SR)
    assert isinstance(ds, xr.Dataset)
    assert ds["time"].dtype == np.float64 and float(ds.time[1] - ds.time[0]) == pytest.approx(0.01)
    for name in ("voice_activity", "voice_pitch", "voice_loudness", "voice_mfcc", "voice_emotion",
                 "voice_arousal", "voice_valence", "voice_confidence", "voice_hnr", "voice_jitter",
                 "voice_shimmer", "voice_spectral_slope", "voice_speaking_rate", "start", "end"):
        assert name in ds, name
        assert "units" in ds[name].attrs, name
    assert ds.voice_pitch.attrs["units"] == "Hz" and ds.voice_loudness.attrs["units"] == "dBFS"
    assert ds.voice_emotion.dims == ("time", "emotion")
    assert tuple(ds.emotion.values) == EMOTIONS
    assert ds.voice_mfcc.dims == ("time", "mfcc") and ds.sizes["mfcc"] == 13
    assert ds.start.dims == ("segment",)
    for key in ("model", "model_version", "model_license", "device", "vad_model", "window", "hop", "t0"):
        assert key in ds.attrs, key
    assert "CC BY-NC-SA" in ds.attrs["model_license"]
    assert "calm" in ds.attrs["emotion_note"]
    # the leading half second of digital silence has no pitch
    assert np.isnan(ds.voice_pitch.sel(time=slice(0, 0.4))).all()
    p = ds.voice_emotion.values
    ok = np.isfinite(p).all(axis=1)
    np.testing.assert_allclose(p[ok].sum(axis=1), 1.0, atol=1e-4)
    a = ds.voice_arousal.values
    assert np.all(np.isnan(a) == ~ok)
    assert np.nanmin(a) >= -1 and np.nanmax(a) <= 1


def test_analyze_voice_on_an_audio_node_keeps_the_session_clock():
    y = harmonic([120, 200], 2.0)
    t = 5.0 + np.arange(len(y)) / SR
    node = xr.Dataset({"audio": ("time", y)}, coords={"time": t}, attrs={"sampling_rate": SR, "t0": 5.0})
    ds = eb.analyze_voice(node, model=None)
    assert float(ds.time[0]) == pytest.approx(5.0)
    assert ds.attrs["t0"] == pytest.approx(5.0)
    assert "voice_emotion" not in ds and ds.attrs["model"] == "none"
    tree = xr.DataTree.from_dict({"audio": node})
    ds2 = eb.analyze_voice(tree, model=None)
    np.testing.assert_allclose(ds2.voice_pitch.values, ds.voice_pitch.values, equal_nan=True)


def test_silence_gives_nan_emotion_and_flags():
    ds = eb.analyze_voice(np.zeros(2 * SR, np.float32), sampling_rate=SR)
    assert np.isnan(ds.voice_emotion.values).all()
    assert np.isnan(ds.voice_arousal.values).all()
    assert np.isnan(ds.voice_pitch.values).all()
    assert ds.sizes["segment"] == 0
    flags = ds.attrs["quality_flags"].split(",")
    assert "silent" in flags and "no_speech" in flags
    assert np.all(ds.voice_confidence.values == 0)


@pytest.mark.parametrize("n", [0, 50, 3000])
def test_very_short_clips_do_not_crash(n):
    y = harmonic(150, 1.0)[:n]
    ds = eb.analyze_voice(y, sampling_rate=SR)
    assert np.isnan(ds.voice_emotion.values).all()
    flags = ds.attrs["quality_flags"]
    assert ("no_audio" in flags) if n == 0 else ("too_short" in flags)
    clips = eb.predict_voice_clips([y], sampling_rate=SR, progress=False)
    assert np.isnan(clips.voice_emotion.values).all()
    assert str(clips.voice_label.values[0]) == ""


def test_clipping_and_band_limited_flags():
    y = np.clip(harmonic(150, 1.0, amp=3.0), -1, 1)
    assert "clipping" in eb.analyze_voice(y, sampling_rate=SR, model=None).attrs["quality_flags"]
    y8 = harmonic(150, 1.0, sr=8000)
    ds = eb.analyze_voice(y8, sampling_rate=8000, model=None)
    assert "band_limited" in ds.attrs["quality_flags"]
    assert ds.attrs["audio_sampling_rate"] == 8000
    assert abs(np.nanmedian(ds.voice_pitch.values[10:-10]) - 150) < 3


def test_stereo_with_a_dead_channel(tmp_path):
    y = harmonic(150, 1.0)
    mono = tmp_path / "mono.wav"
    stereo = tmp_path / "stereo.wav"
    write_audio(mono, y, SR)
    write_audio(stereo, np.stack([np.zeros_like(y), y]), SR)
    a = eb.analyze_voice(str(mono), model=None)
    b = eb.analyze_voice(str(stereo), model=None)
    assert "dead_channel" in b.attrs["quality_flags"]
    np.testing.assert_allclose(np.nanmedian(a.voice_loudness), np.nanmedian(b.voice_loudness), atol=0.5)


def test_video_without_audio_track(tmp_path):
    video = write_video(tmp_path / "silent.mp4", n=10)
    with pytest.raises(EmonbFileError, match="no audio track"):
        eb.analyze_voice(str(video))
    ok = tmp_path / "tone.wav"
    write_audio(ok, harmonic(150, 1.0), SR)
    ds = eb.predict_voice_clips([str(video), str(ok)], progress=False)
    assert list(ds["clip"].values) == ["silent.mp4", "tone.wav"]
    assert ds.voice_flags.values[0] == "no_audio"
    assert np.isnan(ds.voice_emotion.values[0]).all()


def test_bad_input_errors(tmp_path):
    with pytest.raises(EmonbFileError):
        eb.analyze_voice(tmp_path / "missing.wav")
    with pytest.raises(EmonbFileError, match="not found"):
        eb.predict_voice_clips([str(tmp_path / "missing.wav")])
    with pytest.raises(EmonbValueError, match="sampling_rate"):
        eb.analyze_voice(np.zeros(100))
    with pytest.raises(EmonbValueError):
        eb.analyze_voice(np.zeros(1000), sampling_rate=SR, window=0)
    with pytest.raises(EmonbValueError):
        eb.analyze_voice(42)


# --- models and training API ----------------------------------------------------------------------

def test_specs_are_registered_with_license_and_weights():
    table = eb.models.list_models(modality="voice")
    assert {"silero-vad", "voice-emotion-ravdess"} <= set(table.index)
    spec = eb.models.get_model("voice-emotion-ravdess")
    assert spec.license.startswith("CC BY-NC-SA 4.0")
    assert "Livingstone" in spec.citation and "RAVDESS" in spec.citation
    assert spec.sha256 and spec.check_weights().exists()
    assert spec.outputs == EMOTIONS
    assert "calm" in spec.training_data


def test_import_stays_light():
    code = ("import sys, emonb as eb; eb.models.list_models(); import emonb.models.voice, emonb.models.text; "
            "bad=[m for m in ('onnxruntime','librosa','sklearn','torch','vaderSentiment') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_training_is_deterministic_and_grouped(tmp_path):
    from emonb.models.voice.features import FUNCTIONAL_NAMES
    from emonb.models.voice.train import train_emotion_model

    rng = np.random.default_rng(0)
    n_per, k = 12, len(FUNCTIONAL_NAMES)
    labels = np.repeat(["angry", "sad", "calm"], n_per * 2)
    groups = np.tile(np.repeat(["s1", "s2", "s3", "s4"], n_per // 2), 3)
    X = rng.standard_normal((len(labels), k)).astype(np.float32)
    X[labels == "angry", :5] += 2.0
    X[labels == "sad", 5:10] += 2.0
    X[3, :] = np.nan  # a clip without speech is skipped, not fatal
    clips = [f"c{i}" for i in range(len(labels))]
    m1 = train_emotion_model(clips, labels=list(labels), groups=list(groups), output=tmp_path / "a.npz",
                             _features=(X, np.ones(len(X))), progress=False)
    m2 = train_emotion_model(clips, labels=list(labels), groups=list(groups), output=tmp_path / "b.npz",
                             _features=(X, np.ones(len(X))), progress=False)
    assert m1.labels == ["anger", "sadness", "neutral"]  # canonical names, calm -> neutral
    assert m1.spec.sha256 == m2.spec.sha256
    assert m1.n_clips == len(X) - 1 and m1.n_groups == 4
    assert m1.accuracy > 0.8
    assert set(m1.recall) == {"anger", "sadness", "neutral"}
    assert int(m1.confusion.values.sum()) == len(X) - 1
    for fold in m1.meta["folds"]:  # every speaker is held out whole
        assert set(fold) <= {"s1", "s2", "s3", "s4"}
    assert sorted(s for f in m1.meta["folds"] for s in f) == ["s1", "s2", "s3", "s4"]
    rt = m1.spec.create()
    p = rt.predict(X[:6])
    np.testing.assert_allclose(np.nansum(p, axis=1)[~np.isnan(p).all(axis=1)], 1, atol=1e-5)
    with pytest.raises(EmonbValueError):
        train_emotion_model(clips, labels=["angry"] * len(clips), groups=list(groups),
                            _features=(X, np.ones(len(X))), progress=False)


def test_pure_noise_gives_no_emotion():
    noise = 0.05 * np.random.default_rng(3).standard_normal(3 * SR).astype(np.float32)
    ds = eb.analyze_voice(noise, sampling_rate=SR)
    assert np.isnan(ds.voice_emotion.values).mean() > 0.9
    assert np.mean(np.isnan(ds.voice_pitch.values)) > 0.9
    assert np.nanmax(ds.voice_confidence.values) < 0.5


def test_public_names_resolve():
    for name in dir(eb.voice):
        assert getattr(eb.voice, name) is not None
    assert eb.voice.train_emotion_model is eb.models.voice.train.train_emotion_model
    assert callable(eb.text.analyze_text) and eb.analyze_voice is eb.voice.analyze_voice
