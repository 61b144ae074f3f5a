"""Built-in voice models (data only; nothing heavy is imported here)."""

from __future__ import annotations

from ..spec import ModelSpec

SILERO_VAD = ModelSpec(
    name="silero-vad",
    modality="voice",
    task="vad",
    runtime="onnx",
    factory="emonb.models.voice.vad:build_silero_vad",
    outputs=("speech",),
    version="6.2.3",
    weights="silero_vad.onnx",
    sha256="1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3",
    license="MIT",
    citation="Silero Team (2024). Silero VAD: pre-trained enterprise-grade Voice Activity Detector. "
             "https://github.com/snakers4/silero-vad",
    training_data="Silero's own multi-language speech and noise corpora (not published).",
    limitations="Speech vs non-speech only (singing and shouting count as speech); 32 ms chunks; "
                "runs at 16 kHz (other rates are resampled).",
    description="Silero VAD v6 (ONNX file from the silero-vad 6.2.3 wheel), run through onnxruntime.",
    input_rate=16000.0,
)

_RAVDESS_CITATION = ("Livingstone SR, Russo FA (2018). The Ryerson Audio-Visual Database of Emotional Speech "
                     "and Song (RAVDESS): A dynamic, multimodal set of facial and vocal expressions in North "
                     "American English. PLoS ONE 13(5): e0196391. https://doi.org/10.1371/journal.pone.0196391")
_RAVDESS_LICENSE = "CC BY-NC-SA 4.0 (trained on RAVDESS; non-commercial use only)"
_LABEL_MAP = {"calm": "neutral", "happy": "happiness", "sad": "sadness", "angry": "anger",
              "fearful": "fear", "surprised": "surprise"}

VOICE_EMOTION = ModelSpec(
    name="voice-emotion-ravdess",
    modality="voice",
    task="speech_emotion",
    runtime="python",
    factory="emonb.models.voice.emotion:build_emotion_model",
    outputs=("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"),
    version="2",
    weights="voice_emotion_ravdess_v2.npz",
    sha256="6241c0ceb824e62199651425f4b496dd989a29aed7338215696173c58dc74134",
    license=_RAVDESS_LICENSE,
    citation=_RAVDESS_CITATION,
    training_data="RAVDESS speech, actors 1-16 (960 clips, 8 acted emotions, 2 sentences), each with 2 "
                  "perturbed copies (speed/pitch, reverberation, noise, telephone band); RAVDESS 'calm' is "
                  "folded into 'neutral'. Card: voice_emotion_ravdess_v2.json.",
    limitations="Acted, read North-American English sentences by 16 actors in a quiet studio; "
                "speaker-independent accuracy 0.570 (balanced 0.566) over 7 classes (4 actor folds; card and PROVENANCE.md); "
                "not validated on spontaneous speech, other languages, children, or real telephone/noisy "
                "recordings (the 8 kHz and noise figures are synthetic perturbations). Outputs are "
                "probabilities of an expressed (acted) category, not felt emotion.",
    description="Ensemble: eGeMAPS-like utterance functionals into two logistic regressions (clean clips; "
                "clean plus perturbed copies), and the 40-band log-mel spectrum into a small CNN (8-16-32-32, "
                "mean+std pooling over speech frames); log-probabilities averaged, temperature-calibrated; "
                "optional per-session speaker "
                "normalisation (session_calibration=True). numpy at run time.",
    input_rate=16000.0,
    label_map=_LABEL_MAP,
    params={},
)

VOICE_EMOTION_V1 = ModelSpec(
    name="voice-emotion-ravdess-v1",
    modality="voice",
    task="speech_emotion",
    runtime="python",
    factory="emonb.models.voice.emotion:build_emotion_model",
    outputs=("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"),
    version="1",
    weights="voice_emotion_ravdess.npz",
    sha256="9efe07266aa8e73d5c6ff5f0bb8841982eb5a07ec7b5334920c6f09d5ed82aa1",
    license=_RAVDESS_LICENSE,
    citation=_RAVDESS_CITATION,
    training_data="RAVDESS speech, actors 1-16 (960 clips, 8 acted emotions, 2 sentences); "
                  "RAVDESS 'calm' is folded into 'neutral'.",
    limitations="The first emonb speech model (uncalibrated): accuracy 0.557 across speakers (4 actor folds), sadness "
                "recall 0.32; loses most of its accuracy on telephone-band or noisy audio. Acted, read "
                "North-American English by 16 actors. Outputs are probabilities of an expressed (acted) "
                "category, not felt emotion.",
    description="eGeMAPS-like utterance functionals (pitch, loudness, voice quality, spectral shape, "
                "MFCCs) over speech frames, standardised, into a logistic regression (numpy at run time).",
    input_rate=16000.0,
    label_map=_LABEL_MAP,
    params={},
)

SPECS = [SILERO_VAD, VOICE_EMOTION, VOICE_EMOTION_V1]
