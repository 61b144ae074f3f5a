"""Voice analysis on the session clock: activity, prosody, spectral features, speech emotion.

>>> import emonb as eb
>>> voice = eb.analyze_voice("interview.mp4")     # doctest: +SKIP
>>> voice.voice_arousal.plot()                    # doctest: +SKIP
>>> clips = eb.predict_voice_clips(["a.wav", "b.flac"])   # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..._checks import check_positive
from ...errors import EmonbFileError, EmonbValueError
from ...schema import EMOTION_VALENCE_AROUSAL

__all__ = ["analyze_voice", "predict_voice_clips"]

DEFAULT_MODEL = "voice-emotion-ravdess"
DEFAULT_VAD = "silero-vad"

CALM_NOTE = ("The default model was trained on RAVDESS, whose 'calm' category is folded into "
             "'neutral'; it outputs no separate calm probability.")
HONESTY_NOTE = ("Emotion from voice is a probability about an acted vocal expression (model trained on "
                "RAVDESS actors), not a fact about a feeling.")

_FRAME_VARS = {
    # name: (feature key, units, long name)
    "voice_pitch": ("pitch", "Hz", "fundamental frequency (YIN), NaN when unvoiced"),
    "voice_loudness": ("loudness", "dBFS", "RMS level over 25 ms, dB re full scale"),
    "voice_hnr": ("hnr", "dB", "harmonics-to-noise ratio from YIN aperiodicity, NaN when unvoiced"),
    "voice_jitter": ("jitter", "1", "relative period change between voiced 10 ms frames (jitter-like proxy)"),
    "voice_shimmer": ("shimmer", "dB", "level change between voiced 10 ms frames (shimmer-like proxy)"),
    "voice_spectral_slope": ("spectral_slope", "dB/kHz", "slope of the power spectrum, 50-4000 Hz"),
    "voice_alpha_ratio": ("alpha_ratio", "dB", "energy 1-5 kHz over 50 Hz-1 kHz"),
    "voice_spectral_centroid": ("spectral_centroid", "Hz", "spectral centroid"),
    "voice_spectral_flux": ("spectral_flux", "1", "change of the normalised magnitude spectrum"),
}


def _emotion_runtime(model, device):
    from . import _core

    if model is None:
        return None
    return _core.get_runtime(model.spec if hasattr(model, "spec") and hasattr(model, "path") else model,
                             device=device)


def _labels_of(rt) -> list[str]:
    from ...schema import EMOTION_ALIASES

    return [EMOTION_ALIASES.get(str(l).lower(), str(l)) for l in rt.spec.outputs]


def _va_table(labels):
    va = np.full((len(labels), 2), np.nan)
    for i, lab in enumerate(labels):
        if lab in EMOTION_VALENCE_AROUSAL:
            va[i] = EMOTION_VALENCE_AROUSAL[lab]
    return va


def _valence_arousal(probs: np.ndarray, labels) -> tuple[np.ndarray, np.ndarray]:
    """Expected circumplex position under the emotion probabilities (NaN rows stay NaN)."""
    va = _va_table(labels)
    known = ~np.isnan(va[:, 0])
    if not known.any():
        n = len(probs)
        return np.full(n, np.nan), np.full(n, np.nan)
    p = probs[:, known]
    w = p.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = p / w
    return (p @ va[known, 0]).astype(np.float32), (p @ va[known, 1]).astype(np.float32)


def _box_sum(x: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    c = np.concatenate([[0.0], np.cumsum(np.asarray(x, np.float64))])
    a = np.clip(starts, 0, len(x))
    b = np.clip(starts + length, 0, len(x))
    return c[b] - c[a]


def _snr_factor(snr_db):
    return 1.0 / (1.0 + np.exp(-(np.asarray(snr_db, float) - 10.0) / 3.0))


def _bad_frames(bad, n: int) -> np.ndarray:
    """Frames (10 ms hop, 25 ms window) whose window holds a flagged sample."""
    from . import features as F

    out = np.zeros(n, bool)
    if bad is None or not np.any(bad):
        return out
    c = np.concatenate([[0], np.cumsum(bad, dtype=np.int64)])
    centre = np.arange(n) * F.HOP
    a = np.clip(centre - F.WIN // 2, 0, len(bad))
    b = np.clip(centre + F.WIN // 2, 0, len(bad))
    return (c[b] - c[a]) > 0


def _emotion_probs(rt, X, feats, bounds, session=None):
    """Probabilities for frame ranges: functionals ``X`` plus, for a model with one, the log-mel CNN."""
    cnn = rt.cnn_logits(feats, bounds) if getattr(rt, "has_cnn", False) else None
    if cnn is None and session is None:
        return rt.predict(X)
    return rt.predict(X, cnn_logits=cnn, session=session)


def _session_stats(rt, X, ok):
    """Speaker statistics over a session's utterances (None when the model has no session head or no speech)."""
    if not getattr(rt, "has_session_head", False):
        raise EmonbValueError(f"session_calibration needs a model with a per-session head; "
                              f"{rt.spec.name!r} has none")
    if not np.any(ok):
        return None
    return rt.session_stats(X[ok])


def analyze_voice(src, *, model=DEFAULT_MODEL, vad=DEFAULT_VAD, window: float = 2.0, hop: float = 0.5,
                  vad_threshold: float = 0.5, session_calibration: bool = False,
                  sampling_rate: float | None = None, device: str = "auto", progress: bool = True):
    """Voice activity, prosody, spectral features and speech emotion on the session clock.

    Parameters
    ----------
    src : str, Path, ndarray, xr.Dataset or xr.DataTree
        An audio file, a video file (its audio track), a signal (with ``sampling_rate=``), an
        audio node (``audio(time)``) or a session tree with an ``audio`` node.
    model : str, ModelSpec, TrainedVoiceModel or None
        Speech-emotion model (default ``"voice-emotion-ravdess"``); ``None`` skips emotion.
    vad : str or ModelSpec
        Voice-activity model (default ``"silero-vad"``).
    window, hop : float
        Sliding window for emotion, arousal, valence and confidence, in seconds.
    vad_threshold : float
        Speech probability above which a frame counts as speech (segments use hysteresis).
    session_calibration : bool
        Per-session speaker normalisation: a session is one speaker, so the functionals are
        standardised over this recording's own speech segments (shrunk towards the training
        population when there are few; one lone utterance is judged mostly against the population)
        and read by the model's speaker-normalised head. Better across speakers when the recording
        holds one speaker in several states; wrong when it mixes speakers. Recorded in
        ``attrs["session_calibration"]`` with the number of utterances it used.
    sampling_rate : float, optional
        Sampling rate in Hz when ``src`` is a raw signal.
    device : str
        Accepted for API symmetry; the voice models run on the CPU.
    progress : bool
        Accepted for API symmetry (one recording is a single step).

    Returns
    -------
    xr.Dataset
        On ``time`` (float64 s, session clock, 10 ms frames, ``attrs["sampling_rate"] = 100``):

        - ``voice_activity(time)``: speech probability (Silero VAD), in [0, 1].
        - ``voice_pitch(time)`` Hz (NaN unvoiced), ``voice_loudness(time)`` dBFS,
          ``voice_hnr`` dB, ``voice_jitter``, ``voice_shimmer`` dB, ``voice_spectral_slope``
          dB/kHz, ``voice_alpha_ratio`` dB, ``voice_spectral_centroid`` Hz,
          ``voice_spectral_flux``, ``voice_speaking_rate`` (loudness peaks per second of speech,
          a syllable-rate proxy over a 2 s window).
        - ``voice_mfcc(time, mfcc)``: 13 MFCCs (c0..c12) of a 40-band log-mel spectrum.
        - ``voice_emotion(time, emotion)``: probabilities from the sliding window whose centre is
          nearest, NaN where that window has too little speech; ``voice_arousal(time)``,
          ``voice_valence(time)`` in [-1, 1] (expected circumplex position of the categories).
        - ``voice_confidence(time)``: mean speech probability in the window times an SNR factor.

        On ``segment`` (speech segments): ``start(segment)``, ``end(segment)`` (s, session clock),
        ``voice_segment_emotion(segment, emotion)``, ``voice_segment_arousal``,
        ``voice_segment_valence``, ``voice_functionals(segment, functional)``.

        Attributes record the models (``model``, ``model_version``, ``model_license``,
        ``vad_model``...), ``device``, the parameters, ``t0``, ``snr_db`` and ``quality_flags``
        (``nan_samples`` when the input held NaN/inf samples: frames that read them are NaN, never
        speech; ``nan_samples_s`` says how many seconds). A file without samples raises
        :class:`~emonb.errors.EmonbFileError`.
    """
    import xarray as xr

    from . import _core
    from . import features as F
    from ._audio import read_voice_input
    from .vad import speech_segments

    window = check_positive("window", window)
    hop = check_positive("hop", hop)
    if not 0 < float(vad_threshold) < 1:
        raise EmonbValueError(f"vad_threshold must be between 0 and 1, got {vad_threshold!r}")
    audio = read_voice_input(src, sampling_rate=sampling_rate)
    flags = list(audio.flags)
    vad_rt = _core.get_runtime(vad)
    emo_rt = _emotion_runtime(model, device)

    feats = _core.analyze_signal(audio.y, vad=vad_rt.spec, threshold=vad_threshold)
    n = len(feats["time"])
    time = audio.t0 + feats["time"].astype(np.float64)
    # frames that read NaN/inf input samples (set to 0 before analysis): no speech, NaN results
    bad_f = _bad_frames(audio.bad, n)
    if bad_f.any():
        for key in ("speech", "voiced", "voice"):
            feats[key] = np.where(bad_f, False, feats[key])
        feats["vad"] = np.where(bad_f, np.nan, feats["vad"]).astype(np.float32)
    speech = feats["speech"]
    vadp = feats["vad"]
    if audio.duration < 0.03:
        vadp = np.full(n, np.nan, np.float32)
        speech = np.zeros(n, bool)
    if not speech.any():
        flags.append("no_speech")

    # noise floor and SNR
    loud = feats["loudness"].astype(np.float64)
    nonspeech = ~speech & (loud > F.SILENCE_DB + 1)
    noise_floor = float(np.percentile(loud[nonspeech], 20)) if nonspeech.sum() >= 20 else float(
        np.percentile(loud, 5))
    snr_db = float(np.median(loud[speech]) - noise_floor) if speech.any() else float("nan")
    if np.isfinite(snr_db) and snr_db < 10:
        flags.append("low_snr")

    # speaking-rate proxy on a 2 s box
    nuc = np.zeros(n)
    nuc[F.syllable_nuclei(feats["loudness"], feats["voiced"])] = 1.0
    box = int(2.0 * F.FRAME_RATE)
    starts_box = np.arange(n) - box // 2
    n_nuc = _box_sum(nuc * feats["voice"], starts_box, box)
    voice_s_box = _box_sum(feats["voice"], starts_box, box) / F.FRAME_RATE
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(voice_s_box >= 0.3, n_nuc / voice_s_box, np.nan).astype(np.float32)

    # sliding windows
    wlen = max(1, int(round(window * F.FRAME_RATE)))
    whop = max(1, int(round(hop * F.FRAME_RATE)))
    wstart = np.arange(0, max(n - wlen, 0) + 1, whop)
    if len(wstart) and wstart[-1] + wlen < n:
        wstart = np.append(wstart, n - wlen)
    wcenter = wstart + wlen / 2.0
    speech_s = _box_sum(speech, wstart, wlen) / F.FRAME_RATE
    voiced_s = _box_sum(feats["voiced"], wstart, wlen) / F.FRAME_RATE
    vad_f = np.nan_to_num(vadp, nan=0.0)
    max_vad = np.array([vad_f[s:s + wlen].max() if s < n else 0.0 for s in wstart]) if len(wstart) else np.zeros(0)
    valid = _core.has_speech(speech_s, voiced_s, max_vad)
    mean_vad = _box_sum(vad_f, wstart, wlen) / np.maximum(np.minimum(wstart + wlen, n) - wstart, 1)
    loud_sp = _box_sum(np.where(speech, loud, 0.0), wstart, wlen)
    cnt_sp = _box_sum(speech, wstart, wlen)
    with np.errstate(invalid="ignore", divide="ignore"):
        w_snr = np.where(cnt_sp > 0, loud_sp / cnt_sp - noise_floor, np.nan)
    conf_w = (mean_vad * np.nan_to_num(_snr_factor(w_snr), nan=0.0)).astype(np.float32)
    if audio.duration < 0.03:
        conf_w[:] = np.nan

    labels = _labels_of(emo_rt) if emo_rt is not None else []

    # speech segments and their functionals (read before the windows: the session statistics come from them)
    seg = speech_segments(feats["time"], vadp, threshold=vad_threshold) if speech.any() else np.zeros((0, 2))
    bounds = [(int(np.floor(s * F.FRAME_RATE)), int(np.ceil(e * F.FRAME_RATE))) for s, e in seg]
    seg_fun = F.segment_functionals(feats, feats["voice"], bounds) if len(bounds) else np.zeros(
        (0, len(F.FUNCTIONAL_NAMES)), np.float32)
    seg_ok = np.zeros(len(bounds), bool)
    if len(bounds):
        seg_speech = np.array([speech[a:b].sum() for a, b in bounds]) / F.FRAME_RATE
        seg_voiced = np.array([feats["voiced"][a:b].sum() for a, b in bounds]) / F.FRAME_RATE
        seg_ok = _core.has_speech(seg_speech, seg_voiced, np.ones(len(bounds)))
    probs_w = np.full((len(wstart), len(labels)), np.nan, np.float32)
    X = F.window_functionals(feats, feats["voice"], wstart[valid], wlen) if emo_rt is not None and valid.any() else None
    session, session_note = None, "none"
    if emo_rt is not None and session_calibration:
        if seg_ok.any():
            session = _session_stats(emo_rt, seg_fun, seg_ok)
            session_note = f"speaker-normalised over {int(seg_ok.sum())} speech segments of this recording"
        elif X is not None:  # no VAD segment, but voiced windows: windows that do not overlap
            step = max(1, int(np.ceil(wlen / whop)))
            session = _session_stats(emo_rt, X[::step], np.ones(len(X[::step]), bool))
            session_note = f"speaker-normalised over {len(X[::step])} non-overlapping windows of this recording"
        else:
            session_note = "requested, but no speech: population statistics"
    if X is not None:
        probs_w[valid] = _emotion_probs(emo_rt, X, feats, np.stack([wstart[valid], wstart[valid] + wlen], axis=1),
                                        session)
    # frames take the values of the window whose centre is nearest
    if len(wstart):
        nearest = np.clip(np.searchsorted(wcenter, np.arange(n) + 0.5) , 0, len(wcenter) - 1)
        left = np.clip(nearest - 1, 0, len(wcenter) - 1)
        pick = np.where(np.abs(wcenter[left] - np.arange(n)) < np.abs(wcenter[nearest] - np.arange(n)), left, nearest)
    else:
        pick = np.zeros(n, int)
    probs = probs_w[pick] if len(wstart) else np.full((n, len(labels)), np.nan, np.float32)
    conf = conf_w[pick] if len(wstart) else np.full(n, np.nan, np.float32)
    val, aro = _valence_arousal(probs, labels) if labels else (np.full(n, np.nan), np.full(n, np.nan))

    # emotion per speech segment
    seg_probs = np.full((len(bounds), len(labels)), np.nan, np.float32)
    if emo_rt is not None and seg_ok.any():
        seg_probs[seg_ok] = _emotion_probs(emo_rt, seg_fun[seg_ok], feats, np.asarray(bounds)[seg_ok], session)
    seg_val, seg_aro = _valence_arousal(seg_probs, labels) if labels else (np.zeros(0), np.zeros(0))

    def var(data, units, long_name, dims=("time",), **extra):
        if bad_f.any() and dims and dims[0] == "time" and np.asarray(data).dtype.kind == "f":
            data = np.array(data, copy=True)
            data[bad_f] = np.nan
        return xr.Variable(dims, data, {"units": units, "long_name": long_name, **extra})

    data_vars = {
        "voice_activity": var(vadp.astype(np.float32), "1", "speech probability",
                              model=vad_rt.spec.name, model_license=vad_rt.spec.license),
    }
    for name, (key, units, long_name) in _FRAME_VARS.items():
        data_vars[name] = var(np.asarray(feats[key], np.float32), units, long_name)
    data_vars["voice_speaking_rate"] = var(rate, "1/s", "loudness peaks per second of voice over 2 s "
                                           "(syllable-rate proxy), NaN with < 0.3 s of voice")
    data_vars["voice_mfcc"] = var(feats["mfcc"], "dB", "mel-frequency cepstral coefficients", ("time", "mfcc"))
    if labels:
        emo_attrs = {"model": emo_rt.spec.name, "model_license": emo_rt.spec.license,
                     "window_s": window, "hop_s": hop, "note": CALM_NOTE}
        data_vars["voice_emotion"] = var(probs, "1", "emotion probability (sliding window)",
                                         ("time", "emotion"), **emo_attrs)
        data_vars["voice_arousal"] = var(aro, "1", "arousal in [-1, 1] from emotion probabilities", **emo_attrs)
        data_vars["voice_valence"] = var(val, "1", "valence in [-1, 1] from emotion probabilities", **emo_attrs)
    data_vars["voice_confidence"] = var(conf, "1", "mean speech probability in the window x SNR factor")
    data_vars["start"] = var(audio.t0 + seg[:, 0], "s", "speech segment start (session clock)", ("segment",))
    data_vars["end"] = var(audio.t0 + seg[:, 1], "s", "speech segment end (session clock)", ("segment",))
    data_vars["voice_functionals"] = var(seg_fun, "", "utterance functionals per speech segment",
                                         ("segment", "functional"))
    if labels:
        data_vars["voice_segment_emotion"] = var(seg_probs, "1", "emotion probability per speech segment",
                                                 ("segment", "emotion"))
        data_vars["voice_segment_arousal"] = var(seg_aro, "1", "arousal per speech segment", ("segment",))
        data_vars["voice_segment_valence"] = var(seg_val, "1", "valence per speech segment", ("segment",))
    coords = {
        "time": ("time", time, {"units": "s", "long_name": "session time"}),
        "mfcc": ("mfcc", np.arange(F.N_MFCC)),
        "segment": ("segment", np.arange(len(seg))),
        "functional": ("functional", list(F.FUNCTIONAL_NAMES)),
    }
    if labels:
        coords["emotion"] = ("emotion", labels)
    attrs = {}
    if emo_rt is not None:
        attrs.update(emo_rt.provenance())
    else:
        attrs.update({"model": "none", "model_version": "", "model_license": ""})
    attrs["device"] = "cpu"
    attrs.update({
        "vad_model": vad_rt.spec.name, "vad_model_version": vad_rt.spec.version,
        "vad_model_license": vad_rt.spec.license,
        "sampling_rate": F.FRAME_RATE, "audio_sampling_rate": float(audio.source_rate), "t0": float(audio.t0),
        "window": window, "hop": hop, "vad_threshold": float(vad_threshold),
        "session_calibration": session_note,
        "pitch_method": f"YIN ({F.PITCH_FMIN:g}-{F.PITCH_FMAX:g} Hz, aperiodicity < {F.VOICING_THRESHOLD})",
        "snr_db": snr_db, "noise_floor_dbfs": noise_floor, "duration": float(audio.duration),
        "quality_flags": ",".join(dict.fromkeys(flags)), "emotion_note": CALM_NOTE + " " + HONESTY_NOTE,
        "nan_samples_s": float(audio.bad.sum()) / F.SR if audio.bad is not None else 0.0,
    })
    if audio.path:
        attrs["source"] = str(audio.path)
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def predict_voice_clips(clips, *, model=DEFAULT_MODEL, vad=DEFAULT_VAD, sampling_rate: float | None = None,
                        names=None, speakers=None, device: str = "auto", progress: bool = True):
    """Emotion probabilities, arousal and valence for whole clips (one row per clip).

    Parameters
    ----------
    clips : path, array, or sequence of paths/arrays
        Audio files (or videos with sound), or signals with ``sampling_rate=``.
    model : str, ModelSpec or TrainedVoiceModel
        Speech-emotion model (default ``"voice-emotion-ravdess"``).
    names : sequence of str, optional
        Clip labels for the ``clip`` coordinate (default: file names, or ``clip0``, ``clip1``...).
    speakers : sequence, optional
        One speaker (or session) id per clip: per-session speaker normalisation. Each clip's
        functionals are standardised over the clips of its own speaker (shrunk towards the
        training population when a speaker has few clips; a lone clip is judged mostly against
        the population) and read by the model's speaker-normalised head. Use it only when the ids
        are right: it is a calibration on the speaker's own speech.

    Returns
    -------
    xr.Dataset
        ``voice_emotion(clip, emotion)`` probabilities, ``voice_arousal(clip)``,
        ``voice_valence(clip)`` in [-1, 1], ``voice_label(clip)`` (most probable emotion, only
        together with ``voice_label_probability``), ``voice_speech_duration(clip)`` s,
        ``voice_duration(clip)`` s, ``voice_flags(clip)`` (comma-separated quality flags:
        ``no_audio``, ``too_short``, ``silent``, ``no_speech``, ``clipping``, ``band_limited``,
        ``dead_channel``, ``unreadable``) and ``voice_functionals(clip, functional)``. A clip
        without usable speech gets NaN, never a guess. Read the clip names with ``ds["clip"]``
        (``ds.clip`` is the Dataset method of that name).
    """
    import xarray as xr
    from tqdm.auto import tqdm

    from . import _core
    from . import features as F
    from ._audio import read_voice_input

    if isinstance(clips, (str, os.PathLike)) or (isinstance(clips, np.ndarray) and clips.ndim == 1):
        clips = [clips]
    clips = list(clips)
    if not clips:
        raise EmonbValueError("predict_voice_clips needs at least one clip")
    for c in clips:  # fail early, before any work, on paths that do not exist
        if isinstance(c, (str, os.PathLike)):
            p = Path(os.fspath(c)).expanduser()
            if not p.exists():
                raise EmonbFileError(p, "audio clip not found")
    if names is None:
        names = [Path(os.fspath(c)).name if isinstance(c, (str, os.PathLike)) else f"clip{i}"
                 for i, c in enumerate(clips)]
    names = [str(x) for x in names]
    if len(names) != len(clips):
        raise EmonbValueError("names= needs one entry per clip")
    if len(set(names)) != len(names):
        names = [f"{i}:{nm}" for i, nm in enumerate(names)]
    vad_rt = _core.get_runtime(vad)
    emo_rt = _emotion_runtime(model, device)
    labels = _labels_of(emo_rt)
    N = len(clips)
    if speakers is not None:
        speakers = [str(s) for s in speakers]
        if len(speakers) != N:
            raise EmonbValueError("speakers= needs one entry per clip")
        if not getattr(emo_rt, "has_session_head", False):
            raise EmonbValueError(f"speakers= needs a model with a per-session head; {emo_rt.spec.name!r} has none")
    use_cnn = bool(getattr(emo_rt, "has_cnn", False))
    cnn = np.full((N, len(labels)), np.nan, np.float32) if use_cnn else None
    X = np.full((N, len(F.FUNCTIONAL_NAMES)), np.nan, np.float32)
    sp = np.full(N, np.nan)
    dur = np.full(N, np.nan)
    flags = []
    for i, c in enumerate(tqdm(clips, desc="voice clips", disable=not progress)):
        fl: list[str] = []
        try:
            audio = read_voice_input(c, sampling_rate=sampling_rate)
        except EmonbFileError as exc:
            fl.append("no_audio" if "no audio" in str(exc) else "unreadable")
            flags.append(",".join(fl))
            continue
        fl += audio.flags
        dur[i] = audio.duration
        if audio.duration >= 0.03:
            feats = _core.analyze_signal(audio.y, vad=vad_rt.spec)
            X[i], sp[i] = _core.clip_functionals(feats)
            if np.all(np.isnan(X[i])):
                fl.append("no_speech")
            elif use_cnn:
                cnn[i] = emo_rt.cnn_logits(feats, [(0, len(feats["time"]))])[0]
        else:
            sp[i] = 0.0
            if "no_audio" not in fl:
                fl.append("no_speech")
        flags.append(",".join(dict.fromkeys(fl)))
    probs = np.full((N, len(labels)), np.nan, np.float32)
    ok = ~np.all(np.isnan(X), axis=1)
    if ok.any() and speakers is None:
        probs[ok] = emo_rt.predict(X[ok], cnn_logits=cnn[ok]) if use_cnn else emo_rt.predict(X[ok])
    elif ok.any():
        spk = np.asarray(speakers, dtype=object)
        for g in dict.fromkeys(spk[ok].tolist()):
            m = ok & (spk == g)
            probs[m] = emo_rt.predict(X[m], cnn_logits=cnn[m] if use_cnn else None,
                                      session=emo_rt.session_stats(X[m]))
    val, aro = _valence_arousal(probs, labels)
    best = np.array([labels[int(np.argmax(p))] if np.isfinite(p).all() else "" for p in probs], dtype=object)
    bestp = np.array([float(np.max(p)) if np.isfinite(p).all() else np.nan for p in probs], np.float32)
    emo_attrs = {"model": emo_rt.spec.name, "model_license": emo_rt.spec.license, "note": CALM_NOTE}
    ds = xr.Dataset(
        {
            "voice_emotion": (("clip", "emotion"), probs, {"units": "1", "long_name": "emotion probability", **emo_attrs}),
            "voice_arousal": ("clip", aro, {"units": "1", "long_name": "arousal in [-1, 1]", **emo_attrs}),
            "voice_valence": ("clip", val, {"units": "1", "long_name": "valence in [-1, 1]", **emo_attrs}),
            "voice_label": ("clip", best.astype(str), {"long_name": "most probable emotion (see voice_label_probability)"}),
            "voice_label_probability": ("clip", bestp, {"units": "1"}),
            "voice_speech_duration": ("clip", sp.astype(np.float32), {"units": "s", "long_name": "detected speech"}),
            "voice_duration": ("clip", dur.astype(np.float32), {"units": "s"}),
            "voice_flags": ("clip", np.array(flags, dtype=str), {"long_name": "quality flags (comma-separated)"}),
            "voice_functionals": (("clip", "functional"), X, {"long_name": "utterance functionals over speech"}),
        },
        coords={"clip": names, "emotion": labels, "functional": list(F.FUNCTIONAL_NAMES)},
    )
    ds.attrs.update(emo_rt.provenance())
    ds.attrs["session_calibration"] = ("speaker-normalised over each speaker's clips (speakers=)"
                                       if speakers is not None else "none")
    ds.attrs.update({"device": "cpu", "vad_model": vad_rt.spec.name, "vad_model_version": vad_rt.spec.version,
                     "vad_model_license": vad_rt.spec.license, "emotion_note": CALM_NOTE + " " + HONESTY_NOTE})
    return ds
