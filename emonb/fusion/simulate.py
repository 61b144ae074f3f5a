"""Generated sessions with known ground truth, for testing and benchmarking fusion.

Each modality sees the true emotion with a chosen reliability: ``"complementary"`` makes the face
clear on happiness/surprise/disgust/neutral but blind between anger, fear and sadness, and the voice
the opposite, so only a fusion can get every class right; ``"noise"`` makes a modality pure noise
(unrelated to the labels, yet reporting high confidence).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ..schema import EMOTIONS, EMOTION_VALENCE_AROUSAL

#: Classes each modality tells apart in the complementary setting; the rest it confuses as a group.
FACE_CLEAR = ("happiness", "surprise", "disgust", "neutral")
VOICE_CLEAR = ("anger", "fear", "sadness", "neutral")


def _smooth(x: np.ndarray, n: int) -> np.ndarray:
    if n <= 1:
        return x
    k = np.ones(n) / n
    pad = np.pad(x, [(n // 2, n - 1 - n // 2)] + [(0, 0)] * (x.ndim - 1), mode="edge")
    return np.apply_along_axis(lambda c: np.convolve(c, k, mode="valid"), 0, pad)


def _probs(truth: np.ndarray, rng, *, clear, strength: float, noise: float, smooth: int,
           mode: str) -> np.ndarray:
    K = len(EMOTIONS)
    T = truth.size
    if mode == "noise":
        logits = _smooth(rng.normal(0, 1.5, (T, K)), smooth)
    else:
        logits = _smooth(rng.normal(0, noise, (T, K)), smooth)
        clear_idx = [EMOTIONS.index(e) for e in clear]
        blur_idx = [i for i in range(K) if i not in clear_idx]
        for t in range(T):
            c = truth[t]
            if c in clear_idx:
                logits[t, c] += strength
            else:  # ambiguous: every class of the confusable group gets the same boost
                logits[t, blur_idx] += strength
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def simulate_session(duration: float = 60.0, *, seed: int = 0, subject: str = "s0",
                     face: str = "complementary", voice: str = "complementary", physio: str = "good",
                     text: str = "good", face_missing: float = 0.15, classes=EMOTIONS,
                     strength: float = 2.5, noise: float = 0.8) -> xr.DataTree:
    """A session tree with face/voice/physio_features/text results and its ground-truth annotations.

    Parameters
    ----------
    duration : float
        Seconds.
    face, voice : {"complementary", "good", "noise", "absent"}
        ``"complementary"``: clear on its own class set (:data:`FACE_CLEAR`, :data:`VOICE_CLEAR`),
        blind within the rest; ``"good"``: clear on every class; ``"noise"``: unrelated to the truth.
    physio, text : {"good", "noise", "absent"}
        Arousal (physio) and valence (text) near the truth, or noise.
    face_missing : float
        Share of the time with no face (NaN, as a detector reports it).
    classes : sequence of str
        Emotions that occur.

    Returns
    -------
    xarray.DataTree
        Nodes ``face`` (15 Hz, two faces, the second a weak distractor), ``voice`` (10 Hz),
        ``physio_features`` (4 Hz), ``text`` (segments), ``annotations`` (onset, duration, label,
        reviewer); root attrs ``session_id`` and ``subject``.
    """
    rng = np.random.default_rng(seed)
    # ground truth: segments of 2-5 s
    onsets, labels = [0.0], []
    while onsets[-1] < duration:
        labels.append(str(rng.choice(list(classes))))
        onsets.append(min(onsets[-1] + float(rng.uniform(2, 5)), duration))
    onsets = np.asarray(onsets)

    def truth_at(t):
        i = np.clip(np.searchsorted(onsets, t, side="right") - 1, 0, len(labels) - 1)
        return np.array([EMOTIONS.index(labels[j]) for j in i])

    va = np.array([EMOTION_VALENCE_AROUSAL[e] for e in EMOTIONS])
    nodes = {}
    if face != "absent":
        t = np.arange(0, duration, 1 / 15)
        y = truth_at(t)
        mode = "noise" if face == "noise" else "signal"
        clear = FACE_CLEAR if face == "complementary" else EMOTIONS
        p0 = _probs(y, rng, clear=clear, strength=strength, noise=noise, smooth=5, mode=mode)
        p1 = _probs(rng.integers(0, 7, t.size), rng, clear=EMOTIONS, strength=0.5, noise=1.0, smooth=5,
                    mode="noise")
        score = np.stack([np.clip(rng.normal(0.9, 0.05, t.size), 0, 1),
                          np.clip(rng.normal(0.3, 0.05, t.size), 0, 1)], axis=1)
        # face 1 (the distractor) is listed first half of the time: fusion must pick by score
        swap = rng.random(t.size) < 0.5
        P = np.stack([p0, p1], axis=1)
        P[swap] = P[swap][:, ::-1]
        score[swap] = score[swap][:, ::-1]
        miss = np.zeros(t.size, bool)
        while miss.mean() < face_missing:
            a = rng.integers(0, t.size)
            miss[a:a + int(rng.integers(10, 40))] = True
        P[miss] = np.nan
        score[miss] = np.nan
        fv = P @ va[:, 0] + rng.normal(0, 0.1, (t.size, 2))
        fa = P @ va[:, 1] + rng.normal(0, 0.1, (t.size, 2))
        nodes["face"] = xr.Dataset(
            {"face_emotion": (("time", "face", "emotion"), P.astype(np.float32)),
             "face_valence": (("time", "face"), fv.astype(np.float32)),
             "face_arousal": (("time", "face"), fa.astype(np.float32)),
             "face_score": (("time", "face"), score.astype(np.float32))},
            coords={"time": t, "face": [0, 1], "emotion": list(EMOTIONS)},
            attrs={"model": "simulated", "sampling_rate": 15.0})
    if voice != "absent":
        t = np.arange(0, duration, 1 / 10)
        y = truth_at(t)
        mode = "noise" if voice == "noise" else "signal"
        clear = VOICE_CLEAR if voice == "complementary" else EMOTIONS
        p = _probs(y, rng, clear=clear, strength=strength, noise=noise, smooth=3, mode=mode)
        act = (rng.random(t.size) > 0.1).astype(np.float32)  # 10 % silence
        p[act == 0] = np.nan
        nodes["voice"] = xr.Dataset(
            {"voice_emotion": (("time", "emotion"), p.astype(np.float32)),
             "voice_valence": ("time", (p @ va[:, 0] + rng.normal(0, 0.15, t.size)).astype(np.float32)),
             "voice_arousal": ("time", (p @ va[:, 1] + rng.normal(0, 0.15, t.size)).astype(np.float32)),
             "voice_activity": ("time", act)},
            coords={"time": t, "emotion": list(EMOTIONS)}, attrs={"model": "simulated"})
    if physio != "absent":
        t = np.arange(0, duration, 1 / 4)
        true_a = va[truth_at(t), 1]
        a = rng.normal(0, 0.5, t.size) if physio == "noise" else true_a + rng.normal(0, 0.2, t.size)
        nodes["physio_features"] = xr.Dataset(
            {"physio_arousal": ("time", np.clip(a, -1, 1).astype(np.float32)),
             "physio_arousal_confidence": ("time", np.full(t.size, 0.8, np.float32))},
            coords={"time": t}, attrs={"model": "simulated"})
    if text != "absent":
        starts = onsets[:-1] + 0.3
        ends = np.minimum(onsets[1:] - 0.3, duration)
        mids = 0.5 * (starts + ends)
        tv = va[truth_at(mids), 0]
        tv = rng.normal(0, 0.5, tv.size) if text == "noise" else tv + rng.normal(0, 0.2, tv.size)
        nodes["text"] = xr.Dataset(
            {"text_valence": ("segment", np.clip(tv, -1, 1)), "start": ("segment", starts),
             "end": ("segment", ends)}, attrs={"model": "simulated"})
    nodes["annotations"] = xr.Dataset(
        {"onset": ("annotation", onsets[:-1]), "duration": ("annotation", np.diff(onsets)),
         "label": ("annotation", np.array(labels, dtype=object)),
         "reviewer": ("annotation", np.array(["truth"] * len(labels), dtype=object))})
    tree = xr.DataTree.from_dict({k: v for k, v in nodes.items()})
    tree.attrs = {"session_id": f"sim-{subject}-{seed}", "subject": subject}
    return tree
