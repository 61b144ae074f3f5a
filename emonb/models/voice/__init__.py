"""Voice analysis: voice activity, prosody and spectral features, speech emotion.

>>> import emonb as eb
>>> voice = eb.analyze_voice("interview.mp4")            # doctest: +SKIP
>>> clips = eb.predict_voice_clips(["a.wav", "b.flac"])  # doctest: +SKIP
>>> model = eb.voice.train_emotion_model("my_clips/", labels="labels.csv")  # doctest: +SKIP

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
