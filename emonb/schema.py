"""Canonical vocabularies and names, imported everywhere else.

Categories are dimensions, not column names: ``face_au(time, face, au)`` with ``au`` one of
:data:`AUS`, ``face_emotion(time, face, emotion)`` with ``emotion`` one of :data:`EMOTIONS`.
"""

from __future__ import annotations

#: The shared emotion vocabulary (basic six plus neutral). Models with other labels map onto it.
EMOTIONS: tuple[str, ...] = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
#: Extended vocabulary for models that also output contempt.
EMOTIONS_WITH_CONTEMPT: tuple[str, ...] = EMOTIONS + ("contempt",)

#: Common alternative spellings of emotion labels, mapped onto :data:`EMOTIONS`.
EMOTION_ALIASES: dict[str, str] = {
    "angry": "anger", "anger": "anger", "ang": "anger",
    "disgust": "disgust", "disgusted": "disgust", "dis": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "fea": "fear",
    "happy": "happiness", "happiness": "happiness", "joy": "happiness", "hap": "happiness",
    "sad": "sadness", "sadness": "sadness",
    "surprise": "surprise", "surprised": "surprise", "sur": "surprise",
    "neutral": "neutral", "neu": "neutral", "calm": "neutral",
    "contempt": "contempt",
}

#: Position of each emotion on Russell's circumplex (valence, arousal) in [-1, 1], used to derive
#: valence/arousal from category probabilities. Values follow the placement of the category words in
#: Russell (1980) and the affect-grid norms of Warriner et al. (2013), rescaled to [-1, 1].
EMOTION_VALENCE_AROUSAL: dict[str, tuple[float, float]] = {
    "anger": (-0.51, 0.59),
    "disgust": (-0.60, 0.35),
    "fear": (-0.64, 0.60),
    "happiness": (0.81, 0.51),
    "sadness": (-0.63, -0.27),
    "surprise": (0.40, 0.67),
    "neutral": (0.0, 0.0),
    "contempt": (-0.55, 0.25),
}

#: FACS action units with their names (Ekman, Friesen & Hager 2002).
AU_NAMES: dict[str, str] = {
    "AU01": "inner brow raiser",
    "AU02": "outer brow raiser",
    "AU04": "brow lowerer",
    "AU05": "upper lid raiser",
    "AU06": "cheek raiser",
    "AU07": "lid tightener",
    "AU09": "nose wrinkler",
    "AU10": "upper lip raiser",
    "AU11": "nasolabial deepener",
    "AU12": "lip corner puller",
    "AU13": "sharp lip puller",
    "AU14": "dimpler",
    "AU15": "lip corner depressor",
    "AU16": "lower lip depressor",
    "AU17": "chin raiser",
    "AU18": "lip pucker",
    "AU20": "lip stretcher",
    "AU22": "lip funneler",
    "AU23": "lip tightener",
    "AU24": "lip pressor",
    "AU25": "lips part",
    "AU26": "jaw drop",
    "AU27": "mouth stretch",
    "AU28": "lip suck",
    "AU43": "eyes closed",
    "AU45": "blink",
}
#: All known AU codes, in FACS order.
AUS: tuple[str, ...] = tuple(AU_NAMES)

#: Modalities a session can hold, and the node name of each raw modality.
MODALITIES: tuple[str, ...] = ("face", "voice", "physio", "text")
RAW_NODES: tuple[str, ...] = ("video", "audio", "physio", "transcript")
RESULT_NODES: tuple[str, ...] = ("face", "voice", "physio_features", "fused", "spots", "annotations")

#: Physiological channel types, with the name fragments that identify them (lower case).
CHANNEL_TYPES: dict[str, tuple[str, ...]] = {
    "ecg": ("ecg", "ekg", "electrocardio"),
    "ppg": ("ppg", "bvp", "pleth", "pulse"),
    "eda": ("eda", "gsr", "scl", "skin conductance", "electrodermal", "sc"),
    "rsp": ("rsp", "resp", "breath", "respiration"),
    "emg": ("emg", "electromyo"),
    "event": ("photosensor", "photo", "trigger", "marker", "event", "sync", "ttl", "stim", "digital"),
    "temp": ("temp", "skt"),
    "acc": ("acc", "accel"),
}

#: Default units per channel type when a file does not say.
DEFAULT_UNITS: dict[str, str] = {
    "ecg": "mV", "ppg": "a.u.", "eda": "uS", "rsp": "a.u.", "emg": "mV",
    "event": "a.u.", "temp": "degC", "acc": "g", "other": "a.u.",
}


def canonical_emotion(label: str) -> str:
    """Map a model's label onto the shared vocabulary (``"happy"`` -> ``"happiness"``).

    Raises
    ------
    EmonbValueError
        When the label has no mapping.
    """
    from .errors import EmonbValueError

    key = str(label).strip().lower()
    if key in EMOTION_ALIASES:
        return EMOTION_ALIASES[key]
    raise EmonbValueError(
        f"emotion label {label!r} has no mapping onto the emonb vocabulary {EMOTIONS}"
    )
