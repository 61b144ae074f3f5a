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

VOICE_EMOTION = ModelSpec(
    name="voice-emotion-ravdess",
    modality="voice",
    task="speech_emotion",
    runtime="python",
    factory="emonb.models.voice.emotion:build_emotion_model",
    outputs=("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"),
    version="1",
    weights="voice_emotion_ravdess.npz",
    sha256="9efe07266aa8e73d5c6ff5f0bb8841982eb5a07ec7b5334920c6f09d5ed82aa1",
    license="CC BY-NC-SA 4.0 (trained on RAVDESS; non-commercial use only)",
    citation="Livingstone SR, Russo FA (2018). The Ryerson Audio-Visual Database of Emotional Speech "
             "and Song (RAVDESS): A dynamic, multimodal set of facial and vocal expressions in North "
             "American English. PLoS ONE 13(5): e0196391. https://doi.org/10.1371/journal.pone.0196391",
    training_data="RAVDESS speech, actors 1-16 (960 clips, 8 acted emotions, 2 sentences); "
                  "RAVDESS 'calm' is folded into 'neutral'.",
    limitations="Acted, read North-American English sentences by 16 actors in a quiet studio; "
                "speaker-independent accuracy is modest (see PROVENANCE.md) and it does not transfer "
                "reliably to spontaneous speech, other languages, children, or noisy/telephone audio. "
                "Outputs are probabilities of an expressed (acted) category, not felt emotion.",
    description="eGeMAPS-like utterance functionals (pitch, loudness, voice quality, spectral shape, "
                "MFCCs) over speech frames, standardised, into a small multilayer perceptron "
                "(numpy at run time).",
    input_rate=16000.0,
    label_map={"calm": "neutral", "happy": "happiness", "sad": "sadness", "angry": "anger",
               "fearful": "fear", "surprised": "surprise"},
    params={},
)

SPECS = [SILERO_VAD, VOICE_EMOTION]
