"""Voice analysis: voice activity, prosody and spectral features, speech emotion.

>>> import emonb as eb
>>> voice = eb.analyze_voice("interview.mp4")            # doctest: +SKIP
>>> clips = eb.predict_voice_clips(["a.wav", "b.flac"])  # doctest: +SKIP
>>> calibrated = eb.analyze_voice("interview.mp4", session_calibration=True)  # one speaker  # doctest: +SKIP
>>> model = eb.voice.train_emotion_model("my_clips/", labels="labels.csv")  # doctest: +SKIP

The default speech-emotion model (``voice-emotion-ravdess`` v2) averages two logistic regressions on
utterance functionals and a small log-mel CNN (:mod:`.recipe`), all in numpy at run time;
``scripts/train_voice_model.py`` reproduces it and its card
(``emonb/models/weights/voice_emotion_ravdess_v2.json``).

Importing this package is cheap: librosa, onnxruntime and scikit-learn load on first use.
"""

from __future__ import annotations

from ..._lazy import lazy_attributes

_LAZY = {
    "analyze_voice": ("emonb.models.voice.analyze", "analyze_voice"),
    "predict_voice_clips": ("emonb.models.voice.analyze", "predict_voice_clips"),
    "train_emotion_model": ("emonb.models.voice.train", "train_emotion_model"),
    "evaluate_emotion_model": ("emonb.models.voice.train", "evaluate_emotion_model"),
    "TrainedVoiceModel": ("emonb.models.voice.train", "TrainedVoiceModel"),
    "FUNCTIONAL_NAMES": ("emonb.models.voice.features", "FUNCTIONAL_NAMES"),
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_attributes("emonb.models.voice", _LAZY, globals())
