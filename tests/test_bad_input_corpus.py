"""A generated corpus of bad inputs, one table, one expected outcome per case (issue 15).

Each case writes a small damaged or awkward input into ``tmp_path`` (nothing is committed), runs
one public call on it, and expects either

* ``ok(check)``: a clean result, and ``check`` asserts the honest NaN / flags on it, or
* ``err(ErrorClass, "text")``: an emonb error of that class whose message contains the text and
  the file's name.

Whatever the case, nothing but an :class:`emonb.errors.EmonbError` may escape (a traceback from
inside a dependency is a defect), and no case may hang. Warnings are allowed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import traceback
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import xarray as xr

import emonb as eb
from conftest import write_audio, write_video
from emonb.errors import (EmonbError, EmonbFileError, EmonbFormatError, EmonbManifestError,
                          EmonbValueError)

SR = 16000


# -- the outcome of a case ---------------------------------------------------------------------------
@dataclass
class Ok:
    check: Callable[[Any, Path], None]


@dataclass
class Err:
    cls: type
    text: str


def ok(check=lambda r, p: None):
    return Ok(check)


def err(cls, text):
    return Err(cls, text)


@dataclass
class Case:
    id: str
    kind: str
    build: Callable[[Path], Path]          # writes the bad input under tmp_path, returns its path
    call: Callable[[Path], Any]            # the public call on it
    expect: Ok | Err
    name: Callable[[Path], str] | None = None  # what an error must name (default: the path's name)


CASES: list = []


def case(id, kind, build, call, expect, name=None, xfail=None):
    c = Case(id, kind, build, call, expect, name)
    if xfail:
        CASES.append(pytest.param(c, id=id, marks=pytest.mark.xfail(strict=True, reason=xfail)))
    else:
        CASES.append(pytest.param(c, id=id))


def flags_of(ds, key="flags", sep=","):
    return [f for f in str(ds.attrs.get(key, "")).split(sep) if f]


def cli(argv):
    """Run the command line; returns (exit code, stderr)."""
    from emonb.cli import main

    buf = io.StringIO()
    with contextlib.redirect_stderr(buf), contextlib.redirect_stdout(io.StringIO()):
        rc = main([str(a) for a in argv])
    return rc, buf.getvalue()


def cli_refuses(r, p):
    rc, stderr = r
    assert rc == 2, (rc, stderr)
    assert "emonb: error:" in stderr and p.name in stderr, stderr
    assert "Traceback" not in stderr


def write(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(bytes(data))
    return path


def rand_bytes(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


# -- video -----------------------------------------------------------------------------------------
def _noise(i, t):
    return np.random.default_rng(i).integers(0, 255, (48, 64, 3), dtype=np.uint8)


def _video(tmp, name="ok.mp4", n=30, **kw):
    return write_video(tmp / name, n=n, frame_fn=_noise, **kw)


def _cut(src: Path, dst: Path, frac: float) -> Path:
    data = src.read_bytes()
    return write(dst, data[: int(len(data) * frac)])


def _garbage_middle(tmp):
    p = _video(tmp, "ok.mp4", n=72)
    data = bytearray(p.read_bytes())
    a, b = int(len(data) * 0.45), int(len(data) * 0.55)
    data[a:b] = rand_bytes(b - a, 7)
    return write(tmp / "garbage.mp4", data)


def _decodes(v, n_max):
    assert 0 < v.sizes["time"] < n_max
    r = v.emonb.reader()
    assert sum(len(c[1]) for c in r.iter_chunks(16)) == v.sizes["time"]
    assert r.frame(r.n_frames - 1).shape == (48, 64, 3)


def _check_truncated_video(n):
    def check(v, p):
        assert v.attrs["truncated"] == 1 and "truncated" in v.attrs["flags"]
        _decodes(v, n)
    return check


def _check_frames_lost(v, p):
    assert "frames_lost" in v.attrs["flags"].split(",")
    assert v.attrs["frames_lost"] == v.attrs["frames_listed"] - v.sizes["time"] > 0
    _decodes(v, 72)


def _audio_only_mp4(tmp):
    return write_audio(tmp / "voice_only.mp4", 0.3 * np.sin(np.arange(SR) / 5.0), SR, codec="aac")


V = lambda p: eb.load_video(p)  # noqa: E731
case("video-zero-bytes", "video", lambda t: write(t / "empty.mp4", b""), V, err(EmonbFileError, "empty"))
case("video-random-bytes", "video", lambda t: write(t / "noise.mp4", rand_bytes(4096)), V,
     err(EmonbFormatError, "not a readable video"))
case("video-text-named-mp4", "video", lambda t: write(t / "notes.mp4", "just some notes\n" * 50), V,
     err(EmonbFormatError, "not a readable video"))
case("video-header-only", "video", lambda t: _cut(_video(t), t / "head.mp4", 0.01), V,
     err(EmonbFormatError, "not a readable video file"))
case("video-truncated-mp4-index-last", "video", lambda t: _cut(_video(t), t / "plain_cut.mp4", 0.5), V,
     err(EmonbFormatError, "truncated"))
case("video-truncated-mp4-index-first", "video",
     lambda t: _cut(_video(t, "fast.mp4", n=60, container_options={"movflags": "faststart"}), t / "fast_cut.mp4", 0.6),
     V, ok(_check_truncated_video(60)))
case("video-truncated-mkv", "video", lambda t: _cut(_video(t, "full.mkv", n=60), t / "cut.mkv", 0.5), V,
     ok(_check_truncated_video(60)))
case("video-truncated-mkv-early", "video", lambda t: _cut(_video(t, "full.mkv", n=60), t / "cut20.mkv", 0.2), V,
     ok(_check_truncated_video(60)))
case("video-garbage-in-the-middle", "video", _garbage_middle, V, ok(_check_frames_lost))
case("video-no-video-stream", "video", _audio_only_mp4, V, err(EmonbFormatError, "no video"))
case("video-missing-file", "video", lambda t: t / "absent.mp4", V, err(EmonbFileError, "not found"))
case("video-a-folder", "video", lambda t: (t / "folder.mp4").mkdir() or t / "folder.mp4", V,
     err(EmonbFileError, "folder"))
case("video-cli-info-random-bytes", "video", lambda t: write(t / "noise.mp4", rand_bytes(4096, 3)),
     lambda p: cli(["info", p]), ok(cli_refuses))


case("video-png-named-mp4", "video", lambda t: write(t / "still.mp4", _pil(t, "still.png").read_bytes()), V,
     ok(lambda v, p: v.sizes["time"] == 1 and v["frames"].values[0].shape == (24, 36, 3)))


# -- stills ----------------------------------------------------------------------------------------
def _three_colours():
    rgb = np.zeros((24, 36, 3), np.uint8)
    rgb[:, :12] = (200, 30, 40)
    rgb[:, 12:24] = (10, 180, 60)
    rgb[:, 24:] = (20, 40, 220)
    return rgb


def _pil(tmp, name, arr=None, mode=None, **save):
    from PIL import Image

    im = Image.fromarray(_three_colours() if arr is None else arr)
    if mode == "P":
        im = im.convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    elif mode:
        im = im.convert(mode)
    im.save(tmp / name, **save)
    return tmp / name


def _check_colours(tol):
    def check(v, p):
        img = v["frames"].values[0]
        assert img.shape == (24, 36, 3)
        assert np.abs(img.astype(int) - _three_colours()).mean() <= tol
    return check


def _png16(tmp):
    from PIL import Image

    a = np.tile(np.linspace(0, 65535, 36).astype(np.uint16), (24, 1))
    Image.fromarray(a).save(tmp / "deep16.png")
    return tmp / "deep16.png"


def _check_png16(v, p):
    img = v["frames"].values[0]
    assert img.dtype == np.uint8 and img.shape == (24, 36, 3)
    assert img[0, 0, 0] == 0 and img[0, -1, 0] == 255  # scaled to 8 bit, not clipped or wrapped


def _rgba(tmp):
    a = np.zeros((24, 36, 4), np.uint8)
    a[..., 0] = 255  # red, fully transparent: composited on white
    return _pil(tmp, "clear.png", a)


def _check_rgba(v, p):
    assert (v["frames"].values[0] == 255).all()


def _check_tiny_face(ds, p):
    assert ds.sizes["image"] == 1
    assert np.isnan(ds.face_valence.values).all()


IMG = lambda p: eb.load_video(p)  # noqa: E731
case("still-truncated-jpeg", "stills", lambda t: _cut(_pil(t, "full.jpg", quality=95), t / "cut.jpg", 0.5), IMG,
     err(EmonbFileError, "truncated or corrupt"))
case("still-palette-png", "stills", lambda t: _pil(t, "pal.png", mode="P"), IMG, ok(_check_colours(0)))
case("still-cmyk-jpeg", "stills", lambda t: _pil(t, "cmyk.jpg", mode="CMYK", quality=95), IMG, ok(_check_colours(6)))
case("still-16-bit-png", "stills", _png16, IMG, ok(_check_png16))
case("still-transparent-png", "stills", _rgba, IMG, ok(_check_rgba))
case("still-1x1-image", "stills", lambda t: _pil(t, "dot.png", np.full((1, 1, 3), 128, np.uint8)),
     lambda p: eb.predict_face_images([p], progress=False), ok(_check_tiny_face))
case("still-text-named-jpg", "stills", lambda t: write(t / "notes.jpg", "not a picture\n" * 20), IMG,
     err(EmonbFormatError, "not a readable image"))
case("still-zero-bytes-png", "stills", lambda t: write(t / "empty.png", b""), IMG,
     err(EmonbFileError, "image file is empty"))
case("still-text-jpg-to-face-model", "stills", lambda t: write(t / "fake.jpg", "hello\n" * 20),
     lambda p: eb.predict_face_images([p], progress=False), err(EmonbFormatError, "not a readable image"))


case("still-folder-to-face-model", "stills", lambda t: (t / "photos").mkdir() or t / "photos",
     lambda p: eb.predict_face_images([p], progress=False),
     err(EmonbFileError, "expected an image file but found a folder"))


# -- audio -----------------------------------------------------------------------------------------
def _tone(seconds=2.0, amp=0.3, sr=SR):
    return amp * np.sin(2 * np.pi * 220 * np.arange(int(seconds * sr)) / sr)


def _sf(tmp, name, x, sr=SR, **kw):
    import soundfile as sf

    sf.write(tmp / name, x, sr, **kw)
    return tmp / name


def _nan_wav(tmp):
    y = (0.005 * np.random.default_rng(0).standard_normal(3 * SR)).astype(np.float32)
    y[SR:2 * SR] = np.nan
    return _sf(tmp, "nan.wav", y, subtype="FLOAT")


def _inf_wav(tmp):
    y = _tone(3).astype(np.float32)
    y[SR:SR + 4000] = np.inf
    return _sf(tmp, "inf.wav", y, subtype="FLOAT")


def _check_audio_flag(flag, duration=None):
    def check(a, p):
        assert flag in flags_of(a), a.attrs["flags"]
        if duration is not None:
            assert a.attrs["duration"] == pytest.approx(duration, abs=0.05)
        assert np.nanmax(np.abs(a["audio"].values)) <= 1.0
    return check


def _check_truncated_audio(a, p):
    assert "truncated" in flags_of(a)
    assert 0 < a.attrs["duration"] < 1.8


def _check_voice_nan(ds, p):
    assert "nan_samples" in flags_of(ds, "quality_flags")
    inside = ds.sel(time=slice(1.1, 1.9))
    assert np.isnan(inside.voice_activity.values).all()
    assert ds.sizes["segment"] == 0


def _check_silence(ds, p):
    assert ds.sizes["segment"] == 0
    assert "silent" in flags_of(ds, "quality_flags")


def _check_plain(duration, channels=None):
    def check(a, p):
        assert a.attrs["duration"] == pytest.approx(duration, abs=0.05)
        x = a["audio"].values
        assert np.isfinite(x).all() and 0.2 < np.abs(x).max() <= 0.31  # the tone's level, not noise
        assert flags_of(a) == [], a.attrs["flags"]
    return check


def _check_not_clipped(a, p):
    # FFmpeg's mono downmix (each channel at -3 dB) took this to 1.27 and clipped 43% of it, unflagged
    x = a["audio"].values
    assert np.abs(x).max() == pytest.approx(0.9, abs=0.01) and (np.abs(x) >= 0.999).mean() == 0
    assert "clipped" not in flags_of(a)


def _check_too_short(ds, p):
    assert "too_short" in flags_of(ds, "quality_flags") and ds.sizes["segment"] == 0


def _wav_as_mp3(tmp):
    src = write_audio(tmp / "tone.wav", _tone(), SR)
    return write(tmp / "tone.mp3", src.read_bytes())


A = lambda p: eb.load_audio(p)  # noqa: E731
VOICE = lambda p: eb.analyze_voice(str(p), model=None, progress=False)  # noqa: E731
case("audio-zero-bytes", "audio", lambda t: write(t / "empty.wav", b""), A, err(EmonbFileError, "empty"))
case("audio-header-only", "audio", lambda t: _sf(t, "header_only.wav", np.zeros((0, 1), np.float32), 44100), A,
     err(EmonbFileError, "no audio samples"))
case("audio-header-only-voice", "audio", lambda t: _sf(t, "header_only.wav", np.zeros((0, 1), np.float32), 44100),
     VOICE, err(EmonbFileError, "no audio samples"))
case("audio-truncated-wav", "audio", lambda t: _cut(write_audio(t / "tone.wav", _tone(3), SR), t / "cut.wav", 0.5),
     A, ok(_check_truncated_audio))
case("audio-truncated-flac", "audio",
     lambda t: _cut(write_audio(t / "tone.flac", _tone(3), SR), t / "cut.flac", 0.5), A, ok(_check_truncated_audio))
case("audio-truncated-mp3", "audio",
     lambda t: _cut(write_audio(t / "tone.mp3", _tone(3), SR), t / "cut.mp3", 0.5), A, ok(_check_truncated_audio))
case("audio-nan-samples-voice", "audio", _nan_wav, VOICE, ok(_check_voice_nan))
case("audio-nan-samples-load", "audio", _nan_wav, A, ok(_check_audio_flag("nan_samples", 3.0)))
case("audio-stereo-near-full-scale", "audio", lambda t: _sf(t, "loud_stereo.wav", np.stack([_tone(2, 0.9)] * 2, 1)),
     A, ok(_check_not_clipped))
case("audio-inf-samples-voice", "audio", _inf_wav, VOICE,
     ok(lambda ds, p: "nan_samples" in flags_of(ds, "quality_flags")))
case("audio-silence", "audio", lambda t: _sf(t, "silence.wav", np.zeros(2 * SR, np.float32)), VOICE,
     ok(_check_silence))
case("audio-silence-load", "audio", lambda t: _sf(t, "silence.wav", np.zeros(2 * SR, np.float32)), A,
     ok(_check_audio_flag("silent", 2.0)))
case("audio-clipped", "audio", lambda t: _sf(t, "loud.wav", np.clip(_tone(2, 1.6), -1, 1)), A,
     ok(_check_audio_flag("clipped", 2.0)))
case("audio-8-bit-wav", "audio", lambda t: _sf(t, "u8.wav", _tone(), subtype="PCM_U8"), A, ok(_check_plain(2.0)))
case("audio-wrong-extension", "audio", _wav_as_mp3, A, ok(_check_plain(2.0)))
case("audio-stereo", "audio", lambda t: _sf(t, "stereo.wav", np.stack([_tone(), _tone()], 1)), A,
     ok(_check_plain(2.0)))
case("audio-random-bytes", "audio", lambda t: write(t / "noise.wav", rand_bytes(8192, 1)), A,
     err(EmonbFormatError, "cannot be opened as audio"))
case("audio-text-named-wav", "audio", lambda t: write(t / "notes.wav", "hello\n" * 100), A,
     err(EmonbFormatError, "cannot be opened as audio"))
case("audio-video-without-sound", "audio", lambda t: _video(t, "silent_film.mp4"), A,
     err(EmonbFormatError, "no audio"))


case("audio-mp3-header-only", "audio",
     lambda t: _cut(write_audio(t / "tone.mp3", _tone(1), SR), t / "head.mp3", 0.02), A,
     err(EmonbFormatError, "cannot be opened as audio"))
case("audio-10-ms-voice", "audio", lambda t: _sf(t, "blip.wav", _tone(0.01)), VOICE, ok(_check_too_short))


# -- physio ----------------------------------------------------------------------------------------
def _csv(tmp, name, text):
    return write(tmp / name, text)


def _table(cols: dict, n=None) -> str:
    names = list(cols)
    n = n or len(next(iter(cols.values())))
    rows = [",".join(names)] + [",".join(str(cols[c][i]) for c in names) for i in range(n)]
    return "\n".join(rows) + "\n"


T100 = np.round(np.arange(400) / 100.0, 4)
ECG = np.round(np.sin(np.arange(400) / 5.0), 5)


def _check_physio_flag(flag):
    def check(ds, p):
        assert flag in ds.attrs["flags"], ds.attrs["flags"]
        assert ds.attrs["sampling_rate"] == pytest.approx(100.0)
    return check


def _check_ms(ds, p):
    assert ds.attrs["sampling_rate"] == pytest.approx(100.0)
    assert ds.attrs["duration"] == pytest.approx(4.0)
    assert ds.attrs["time_unit"].startswith("ms")


def _check_non_numeric(ds, p):
    x = ds["ecg"].values
    assert np.isnan(x[3]) and np.isfinite(x[4])
    assert "ecg:nan" in ds.attrs["flags"]


def _check_huge(ds, p):
    assert "nan" in ds.attrs["flags"]
    assert np.isnan(ds["ecg"].values[10])


def _check_gap(ds, p):  # 2 s, 8 s missing, 2 s: on one grid, the gap NaN
    assert ds.attrs["sampling_rate"] == pytest.approx(100.0) and ds.attrs["duration"] == pytest.approx(12.0)
    assert np.isnan(ds["ecg"].sel(time=slice(2.5, 9.5)).values).all() and "ecg:nan" in ds.attrs["flags"]


PH = lambda p: eb.load_physio(p)  # noqa: E731
case("physio-no-rate", "physio", lambda t: _csv(t, "bio.csv", _table({"ECG": ECG})), PH,
     err(EmonbValueError, "sampling"))
case("physio-ms-timestamps", "physio", lambda t: _csv(t, "ms.csv", _table({"timestamp": T100 * 1000, "ECG": ECG})),
     PH, ok(_check_ms))
case("physio-flat-channel", "physio",
     lambda t: _csv(t, "flat.csv", _table({"time": T100, "ECG": ECG, "EDA": [2.5] * 400})),
     PH, ok(_check_physio_flag("eda:flat")))
case("physio-nan-column", "physio",
     lambda t: _csv(t, "nan.csv", _table({"time": T100, "ECG": ECG, "EDA": ["nan"] * 400})), PH,
     ok(_check_physio_flag("eda:nan=1.000")))
case("physio-non-numeric-cells", "physio",
     lambda t: _csv(t, "cells.csv", _table({"time": T100, "ECG": [*ECG[:3], "n/a", *ECG[4:]]})), PH,
     ok(_check_non_numeric))
case("physio-empty-file", "physio", lambda t: write(t / "empty.csv", b""), PH, err(EmonbFileError, "empty"))
case("physio-header-only", "physio", lambda t: _csv(t, "head.csv", "time,ECG,EDA\n"), PH,
     err(EmonbFileError, "no samples"))
case("physio-duplicated-timestamps", "physio",
     lambda t: _csv(t, "dup.csv", _table({"time": np.repeat(T100[:200], 2), "ECG": ECG})), PH,
     err(EmonbFileError, "not strictly increasing"))
case("physio-decreasing-time", "physio", lambda t: _csv(t, "back.csv", _table({"time": T100[::-1], "ECG": ECG})), PH,
     err(EmonbFileError, "not strictly increasing"))
case("physio-huge-values", "physio",
     lambda t: _csv(t, "huge.csv", _table({"time": T100, "ECG": [*ECG[:10], "1e999", *ECG[11:]]})), PH,
     ok(_check_huge))
case("physio-binary-file", "physio", lambda t: write(t / "blob.csv", rand_bytes(4096, 2)), PH,
     err(EmonbFormatError, "cannot be parsed as a table"))
case("physio-one-time-value", "physio", lambda t: _csv(t, "one.csv", "time,ECG\n0.0,1.0\n"), PH,
     err(EmonbFileError, "fewer than two"))


case("physio-semicolons-decimal-commas", "physio",
     lambda t: _csv(t, "euro.csv", "time;ECG\n" + "".join(f"{i / 100:.2f};{np.sin(i / 5):.3f}\n".replace(".", ",")
                                                          for i in range(300))),
     PH, err(EmonbFileError, "fewer than two numeric values"))
case("physio-gap-in-time", "physio",
     lambda t: _csv(t, "gap.csv", _table({"time": np.r_[T100[:200], 10 + T100[:200]], "ECG": ECG})), PH,
     ok(_check_gap))


# -- transcripts -----------------------------------------------------------------------------------
def _check_latin1(tr, p):
    assert tr.text.values[0] == "Ça va très bien" and "encoding_guessed" in tr.attrs["flags"]


def _check_bom(tr, p):
    assert tr.text.values[0] == "naïve" and tr.attrs["encoding"] == "utf-8"
    assert float(tr.start.values[0]) == 0.0


def _check_empty_cue(ds, p):
    s = ds.text_sentiment.values
    assert np.isnan(s[0]) and np.isfinite(s[1])


TR = lambda p: eb.load_transcript(p)  # noqa: E731
case("transcript-minutes-above-59", "transcripts",
     lambda t: write(t / "t.vtt", "WEBVTT\n\n00:75:00.000 --> 00:75:02.000\nhello\n"), TR,
     err(EmonbFormatError, "00:75:00.000"))
case("transcript-seconds-above-59-srt", "transcripts",
     lambda t: write(t / "s.srt", "1\n00:00:61,000 --> 00:01:02,000\nhello\n"), TR, err(EmonbFormatError, "61"))
case("transcript-end-before-start", "transcripts",
     lambda t: write(t / "back.vtt", "WEBVTT\n\n00:00:05.000 --> 00:00:02.000\nhello\n"), TR,
     err(EmonbFormatError, "reversed times"))
case("transcript-latin-1", "transcripts",
     lambda t: write(t / "fr.srt", "1\n00:00:01,000 --> 00:00:03,000\nÇa va très bien\n".encode("latin-1")), TR,
     ok(_check_latin1))
case("transcript-empty-file", "transcripts", lambda t: write(t / "empty.vtt", b""), TR, err(EmonbFileError, "empty"))
case("transcript-empty-cue", "transcripts",
     lambda t: write(t / "cues.vtt", "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n&nbsp;\n\n"
                                     "00:00:03.000 --> 00:00:04.000\nwhat a great day\n"),
     lambda p: eb.analyze_text(p), ok(_check_empty_cue))
case("transcript-bad-timestamp-text", "transcripts",
     lambda t: write(t / "words.vtt", "WEBVTT\n\n00:00:aa.000 --> 00:00:02.000\nhello\n"), TR,
     err(EmonbFormatError, "line 3"))
case("transcript-bom", "transcripts",
     lambda t: write(t / "bom.vtt", "\ufeffWEBVTT\n\n00:00.000 --> 00:01.000\nnaïve\n".encode("utf-8")), TR,
     ok(_check_bom))
case("transcript-binary", "transcripts", lambda t: write(t / "blob.srt", rand_bytes(2048, 4)), TR,
     err(EmonbFileError, "no transcript segments"))
case("transcript-csv-missing-columns", "transcripts", lambda t: write(t / "words.csv", "when,what\n1,hello\n"), TR,
     err(EmonbFormatError, "start"))


case("transcript-vtt-without-header", "transcripts",
     lambda t: write(t / "bare.vtt", "00:00:01.000 --> 00:00:02.000\nhello\n"), TR,
     err(EmonbFormatError, "must start with 'WEBVTT'"))


# -- manifests -------------------------------------------------------------------------------------
VTT = "WEBVTT\n\n00:00:00.500 --> 00:00:01.500\nhi there\n"


def _manifest(text, name="session.yaml"):
    def build(tmp):
        folder = tmp / "study" / "s01"
        write(folder / "clip.vtt", VTT)
        write(tmp / "secret.vtt", VTT)
        if isinstance(text, bytes):
            return write(folder / name, text)
        return write(folder / name, text.replace("{tmp}", str(tmp)))
    return build


def _bomb(levels=8, width=9):
    lines = ["transcript: clip.vtt", "sources:", '  l0: &l0 ["lol"]']
    lines += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


M = lambda p: eb.load_manifest(p)  # noqa: E731
case("manifest-alias-bomb", "manifests", _manifest(_bomb()), M, err(EmonbManifestError, "YAML alias"))
case("manifest-outside-path", "manifests", _manifest("transcript: ../../secret.vtt\n"), M,
     err(EmonbManifestError, "outside the manifest's folder"))
case("manifest-absolute-path", "manifests", _manifest("transcript: {tmp}/secret.vtt\n"), M,
     err(EmonbManifestError, "outside the manifest's folder"))
case("manifest-wrong-type", "manifests", _manifest("transcript: clip.vtt\nsr: fast\n"), M,
     err(EmonbManifestError, "field 'sr'"))
case("manifest-wrong-offset-type", "manifests", _manifest("transcript: clip.vtt\noffsets: {physio: soon}\n"), M,
     err(EmonbManifestError, "offsets.physio"))
case("manifest-missing-file", "manifests", _manifest("transcript: absent.vtt\n"), M,
     err(EmonbFileError, "transcript file not found"), name=lambda p: "absent.vtt")
case("manifest-not-a-mapping", "manifests", _manifest("- transcript\n- clip.vtt\n"), M,
     err(EmonbFormatError, "must be a mapping"))
case("manifest-binary", "manifests", _manifest(b"video: \xff\xfe\x00clip.mp4\n"), M,
     err(EmonbManifestError, "not UTF-8"))
case("manifest-empty", "manifests", _manifest(""), M, err(EmonbFileError, "is empty"))
case("manifest-yaml-syntax", "manifests", _manifest("transcript: [clip.vtt\nsr: 1\n"), M,
     err(EmonbFormatError, "not valid YAML"))
case("manifest-unknown-key", "manifests", _manifest("transcript: clip.vtt\nallow_outside: true\n"), M,
     err(EmonbManifestError, "unknown key"))
case("manifest-cli-info", "manifests", _manifest("transcript: ../../secret.vtt\n"), lambda p: cli(["info", p]),
     ok(cli_refuses))


def _physio_folder(tmp):
    (tmp / "study" / "s01" / "sub").mkdir(parents=True)
    return _manifest("physio: {path: sub}\n")(tmp)


case("manifest-physio-is-a-folder", "manifests", _physio_folder, M,
     err(EmonbFileError, "expected a physio file but found a folder"), name=lambda p: "sub")


# -- stores ----------------------------------------------------------------------------------------
def _tree():
    from emonb.session import make_tree

    audio = xr.Dataset({"audio": ("time", (0.1 * np.sin(np.arange(300_000) / 5.0)).astype(np.float32))},
                       coords={"time": np.arange(300_000) / SR},
                       attrs={"modality": "audio", "sampling_rate": float(SR), "flags": ""})
    physio = xr.Dataset({"ecg": ("time", np.sin(np.arange(1000) / 5.0), {"channel_type": "ecg"})},
                        coords={"time": np.arange(1000) / 100.0},
                        attrs={"modality": "physio", "sampling_rate": 100.0, "flags": ""})
    return make_tree({"audio": audio, "physio": physio}, {"session_id": "s"})


def _store(damage):
    def build(tmp):
        p = eb.save_session(_tree(), tmp / "s.zarr")
        damage(p)
        return p
    return build


def _pickle_codec(p):
    import numcodecs

    zarray = {"shape": [2], "chunks": [2], "dtype": "|O", "fill_value": None, "order": "C",
              "filters": [{"id": "pickle", "protocol": 5}], "compressor": None, "dimension_separator": ".",
              "zarr_format": 2}
    zattrs = {"_ARRAY_DIMENSIONS": ["item"]}
    write(p / "physio" / "note" / ".zarray", json.dumps(zarray))
    write(p / "physio" / "note" / ".zattrs", json.dumps(zattrs))
    write(p / "physio" / "note" / "0", numcodecs.Pickle(protocol=5).encode(np.array(["a", "b"], dtype=object)))
    meta = json.loads((p / ".zmetadata").read_text())
    meta["metadata"].update({"physio/note/.zarray": zarray, "physio/note/.zattrs": zattrs})
    (p / ".zmetadata").write_text(json.dumps(meta))


def _check_missing_chunks(t, p):
    assert "missing_chunks:audio" in t["audio"].attrs["flags"]
    assert np.isnan(t["audio"]["audio"].values[-1000:]).all()


def _not_zarr(tmp):
    write(tmp / "photos.zarr" / "holiday.txt", "not a store")
    return tmp / "photos.zarr"


def _open_all(p):
    t = eb.open_session(p)
    for node in t.subtree:
        for v in node.to_dataset().data_vars.values():
            v.values
    return t


ST = lambda p: eb.open_session(p)  # noqa: E731
case("store-deleted-node", "stores", _store(lambda p: shutil.rmtree(p / "physio")), ST, err(EmonbFileError, "missing"))
case("store-deleted-variable", "stores", _store(lambda p: shutil.rmtree(p / "physio" / "ecg")), ST,
     err(EmonbFileError, "'physio/ecg'"))
case("store-deleted-chunk", "stores", _store(lambda p: os.remove(p / "audio" / "audio" / "1")), _open_all,
     ok(_check_missing_chunks))
case("store-pickle-codec", "stores", _store(_pickle_codec), _open_all, err(EmonbFormatError, "'pickle' codec"))
case("store-not-a-zarr-folder", "stores", _not_zarr, ST, err(EmonbFormatError, "not a readable emonb session store"))
case("store-empty-folder", "stores", lambda t: (t / "void.zarr").mkdir() or t / "void.zarr", ST,
     err(EmonbFormatError, "not a readable emonb session store"))
case("store-corrupt-metadata", "stores", _store(lambda p: (p / ".zmetadata").write_text("{not json")), ST,
     err(EmonbFormatError, "consolidated metadata (.zmetadata) is unreadable"))
case("store-missing", "stores", lambda t: t / "absent.zarr", ST, err(EmonbFileError, "not found"))
case("store-is-a-file", "stores", lambda t: write(t / "flat.zarr", b"PK\x03\x04 not a zip"), ST,
     err(EmonbFormatError, "not a readable emonb session store"))
case("store-cli-info-empty-folder", "stores", lambda t: (t / "void.zarr").mkdir() or t / "void.zarr",
     lambda p: cli(["info", p]), ok(cli_refuses))


def _truncate_chunk(p):
    c = p / "physio" / "ecg" / "0"
    c.write_bytes(c.read_bytes()[:50])


def _bad_zattrs(p):
    os.remove(p / ".zmetadata")  # not consolidated: every node's own metadata is read
    (p / "physio" / ".zattrs").write_text("{oops")


def _garbage_chunk(p):
    write(p / "audio" / "audio" / "0", rand_bytes(3000))


LOADED = lambda p: eb.open_session(p, load=True)  # noqa: E731
case("store-garbage-chunk-loaded", "stores", _store(_garbage_chunk), LOADED,
     err(EmonbFileError, "stored data cannot be decoded"))
case("store-truncated-chunk-loaded", "stores", _store(_truncate_chunk), LOADED,
     err(EmonbFileError, "stored data cannot be decoded"))
case("store-garbage-chunk-lazy", "stores", _store(_garbage_chunk), _open_all, err(EmonbFileError, "cannot be decoded"))
case("store-bad-node-attrs", "stores", _store(_bad_zattrs), ST, err(EmonbFormatError, "physio/.zattrs is unreadable"))


# -- model files -----------------------------------------------------------------------------------
class _Payload:
    """Unpickling this creates a marker file: what a malicious 'fusion model' would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def _pickle_model(name):
    def build(tmp):
        import pickle

        return write(tmp / name, pickle.dumps(_Payload(tmp / "PWNED")))
    return build


def _never_ran(text):
    return Err(EmonbFileError, text)


def _npz(tmp, name, **arrays):
    with open(tmp / name, "wb") as f:
        np.savez(f, **arrays)
    return tmp / name


HEADER = json.dumps({"format": "emonb-fusion", "format_version": 1, "method": "late", "params": {}, "state": {}})
FL = lambda p: eb.fusion.load(p)  # noqa: E731
case("model-pickle-payload", "model files", _pickle_model("evil.joblib"), FL, _never_ran("pickle"))
case("model-pickle-named-npz", "model files", _pickle_model("model.npz"), FL, _never_ran("pickle"))
case("model-pickle-via-fuse", "model files", _pickle_model("evil.pkl"),
     lambda p: eb.fuse(xr.DataTree(), model=p), _never_ran("pickle"))
case("model-truncated-npz", "model files",
     lambda t: _cut(_npz(t, "full.npz", __emonb_fusion__=np.array(HEADER), a0=np.zeros(5000)), t / "cut.npz", 0.5),
     FL, err(EmonbFileError, "damaged zip file"))
case("model-random-bytes", "model files", lambda t: write(t / "noise.npz", rand_bytes(4096, 5)), FL,
     err(EmonbFileError, "not a saved emonb fusion model"))
case("model-object-array", "model files",
     lambda t: _npz(t, "objects.npz", __emonb_fusion__=np.array(HEADER), a0=np.array([{"x": 1}], dtype=object)), FL,
     err(EmonbFileError, "objects"))
case("model-zero-bytes", "model files", lambda t: write(t / "empty.npz", b""), FL, err(EmonbFileError, "is empty"))
case("model-no-header", "model files", lambda t: _npz(t, "plain.npz", a0=np.zeros(3)), FL,
     err(EmonbFileError, "__emonb_fusion__"))


case("model-header-not-json", "model files",
     lambda t: _npz(t, "header.npz", __emonb_fusion__=np.array("{not json")), FL,
     err(EmonbFileError, "header is not valid JSON"))


# -- annotation files ------------------------------------------------------------------------------
def _ann_store(tmp):
    from emonb.review import AnnotationStore

    return AnnotationStore(tmp / "ann.sqlite", session="s01", reviewer="r")


def _import_nothing_on_error(p):
    s = _ann_store(p.parent)
    try:
        s.import_file(p)
    except EmonbError:
        assert len(s) == 0, "a failed import left rows behind"
        raise
    return s


def _reimport(p):
    s = _ann_store(p.parent)
    first = s.import_file(p)
    second = s.import_file(p)
    return first, second, len(s)


def _check_reimport(r, p):
    first, second, n = r
    assert len(first) == 2 and second == [] and n == 2


def _eaf_export(tmp):
    s = _ann_store(tmp)
    s.add(0, 1, label="joy\x00ful", scheme=None)
    s.add(1, 2, label="vertical\x0btab", scheme=None)
    return s


def _export_control(p):
    s = _eaf_export(p.parent)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = s.export(p.parent / "ctrl.eaf")
    ET.parse(out)  # well-formed
    from emonb.review import AnnotationStore

    other = AnnotationStore(p.parent / "other.sqlite")
    return other.import_file(out), other.import_file(out)


def _check_control(r, p):
    first, second = r
    assert len(first) == 2 and second == []
    assert sorted(a["label"] for a in first) == ["joy\ufffdful", "vertical\ufffdtab"]


ANN_CSV = "onset,duration,label\n1.0,0.5,joy\n2.0,0.5,fear\n"
case("annotation-non-numeric-onset", "annotation files",
     lambda t: write(t / "bad.csv", "onset,duration,label\n1.0,1,a\nsoon,1,b\n"), _import_nothing_on_error,
     err(EmonbFormatError, "onset 'soon' is not a number"))
case("annotation-missing-columns", "annotation files", lambda t: write(t / "cols.csv", "when,what\n1,joy\n"),
     _import_nothing_on_error, err(EmonbFormatError, "onset"))
case("annotation-negative-duration", "annotation files",
     lambda t: write(t / "neg.csv", "onset,duration,label\n1.0,-1,a\n"), _import_nothing_on_error,
     err(EmonbFormatError, "duration"))
case("annotation-elan-bad-xml", "annotation files",
     lambda t: write(t / "broken.eaf", "<?xml version='1.0'?><ANNOTATION_DOCUMENT><TIER>"), _import_nothing_on_error,
     err(EmonbFormatError, "cannot read annotations"))
case("annotation-elan-binary", "annotation files", lambda t: write(t / "blob.eaf", rand_bytes(2048, 6)),
     _import_nothing_on_error, err(EmonbFormatError, "cannot read annotations"))
case("annotation-empty-csv", "annotation files", lambda t: write(t / "empty.csv", b""), _import_nothing_on_error,
     err(EmonbFileError, "is empty"))
case("annotation-reimport-adds-nothing", "annotation files", lambda t: write(t / "plain.csv", ANN_CSV), _reimport,
     ok(_check_reimport))
case("annotation-control-characters", "annotation files", lambda t: t / "unused", _export_control, ok(_check_control))


def _reimport_own_export(p):
    s = _ann_store(p.parent)
    s.add(0.5, 1.25, label="happiness", note="smile")
    s.add(2.0, 3.0, label="surprise")
    s.add(2.0, 3.0, label="surprise")  # the same twice: both count
    s.export(p)
    return s.import_file(p), len(s)


EAF_UNKNOWN_SLOT = (
    '<?xml version="1.0" encoding="UTF-8"?><ANNOTATION_DOCUMENT><HEADER TIME_UNITS="milliseconds"/><TIME_ORDER>'
    '<TIME_SLOT TIME_SLOT_ID="ts1" TIME_VALUE="100"/></TIME_ORDER><TIER TIER_ID="r" LINGUISTIC_TYPE_REF="default">'
    '<ANNOTATION><ALIGNABLE_ANNOTATION ANNOTATION_ID="a1" TIME_SLOT_REF1="ts1" TIME_SLOT_REF2="ts9">'
    '<ANNOTATION_VALUE>joy</ANNOTATION_VALUE></ALIGNABLE_ANNOTATION></ANNOTATION></TIER></ANNOTATION_DOCUMENT>')

case("annotation-bids-na-onset", "annotation files",
     lambda t: write(t / "events.tsv", "onset\tduration\ttrial_type\nn/a\t1\tjoy\n2\t1\tfear\n"),
     _import_nothing_on_error, err(EmonbFormatError, "onset is empty"))
case("annotation-elan-unknown-time-slot", "annotation files", lambda t: write(t / "slots.eaf", EAF_UNKNOWN_SLOT),
     _import_nothing_on_error, err(EmonbFormatError, "refers to time slot 'ts9'"))
case("annotation-reimport-own-elan-export", "annotation files", lambda t: t / "own.eaf", _reimport_own_export,
     ok(lambda r, p: r == ([], 3) or pytest.fail(f"re-import gave {r}")))


# -- output paths ----------------------------------------------------------------------------------
def _user_folder(tmp):
    write(tmp / "mine" / "notes.txt", b"my notes\x00\xff")
    write(tmp / "mine" / "clip.mp4", rand_bytes(2048, 8))
    return tmp / "mine"


def _save(p, **kw):
    return eb.save_session(_tree(), p, **kw)


def _save_keeps(p, **kw):
    before = {q.name: q.read_bytes() for q in p.iterdir()} if p.is_dir() else p.read_bytes() if p.exists() else None
    try:
        return eb.save_session(_tree(), p, **kw)
    finally:
        after = {q.name: q.read_bytes() for q in p.iterdir()} if p.is_dir() else p.read_bytes() if p.exists() else None
        assert after == before, "the user's files changed"


def _save_in_cwd(p):
    old = os.getcwd()
    os.chdir(p)
    try:
        return _save_keeps(Path("."), overwrite=True)
    finally:
        os.chdir(old)


def _cli_align_out(p):
    store = eb.save_session(_tree(), p.parent / "src.zarr")
    return cli(["align", store, "--rate", "10", "--out", p, "--overwrite"])


case("output-existing-user-folder", "output paths", _user_folder, lambda p: _save_keeps(p),
     err(EmonbFileError, "not a store emonb wrote"))
case("output-user-folder-overwrite", "output paths", _user_folder, lambda p: _save_keeps(p, overwrite=True),
     err(EmonbFileError, "not a store emonb wrote"))
case("output-file-where-store-goes", "output paths", lambda t: write(t / "s.zarr", b"not a store"),
     lambda p: _save_keeps(p, overwrite=True), err(EmonbFileError, "is a file"))
case("output-inside-a-file", "output paths", lambda t: write(t / "plain.txt", b"text"),
     lambda p: _save(p / "inner.zarr"), err(EmonbFileError, "is a file, not a folder"))
case("output-current-folder", "output paths", _user_folder, _save_in_cwd,
     err(EmonbFileError, "not a store emonb wrote"),
     name=lambda p: p.name)  # the folder "." resolves to
case("output-existing-store-no-overwrite", "output paths", lambda t: eb.save_session(_tree(), t / "old.zarr"),
     lambda p: _save(p), err(EmonbFileError, "already exists"))
case("output-cli-align-user-folder", "output paths", _user_folder, _cli_align_out, ok(cli_refuses))


# -- the one test ----------------------------------------------------------------------------------
def _last_frame(exc):
    tb = traceback.extract_tb(exc.__traceback__)
    return f"{tb[-1].filename}:{tb[-1].lineno} in {tb[-1].name}" if tb else "?"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("c", CASES)
def test_bad_input(c: Case, tmp_path):
    path = c.build(tmp_path)
    marker = tmp_path / "PWNED"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # EmonbWarnings are allowed; what they say is tested elsewhere
        try:
            result = c.call(path)
        except EmonbError as exc:
            result, error = None, exc
        except Exception as exc:  # a traceback from inside a dependency, or an emonb bug
            pytest.fail(f"{type(exc).__module__}.{type(exc).__name__} escaped ({_last_frame(exc)}): {exc}")
        else:
            error = None
    assert not marker.exists(), "a pickle payload ran"
    if isinstance(c.expect, Err):
        assert error is not None, f"expected {c.expect.cls.__name__}, got a result: {result!r:.500}"
        msg = str(error)
        assert isinstance(error, c.expect.cls), f"{type(error).__name__}: {msg}"
        assert c.expect.text in msg, msg
        name = c.name(path) if c.name else path.name
        assert name in msg, f"the message does not name {name!r}: {msg}"
    else:
        assert error is None, f"{type(error).__name__}: {error}"
        assert c.expect.check(result, path) is not False, "the check on the result failed"


def test_the_corpus_is_wide():
    kinds = {}
    for p in CASES:
        c = p.values[0]
        kinds[c.kind] = kinds.get(c.kind, 0) + 1
    assert sum(kinds.values()) >= 60
    assert set(kinds) == {"video", "stills", "audio", "physio", "transcripts", "manifests", "stores",
                          "model files", "annotation files", "output paths"}
