import numpy as np
import pytest

import emonb as eb
from conftest import write_audio, write_video


def _peak_hz(x, sr):
    sp = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return np.argmax(sp) * sr / x.size


@pytest.mark.parametrize("ext", [".wav", ".flac", ".mp3", ".m4a"])
def test_formats_resample_to_16k(tmp_path, ext):
    sr = 44100
    x = 0.5 * np.sin(2 * np.pi * 440 * np.arange(sr) / sr)
    p = write_audio(tmp_path / f"tone{ext}", x, sr)
    a = eb.load_audio(p, sr=16000)
    assert a.attrs["sampling_rate"] == 16000 and a.attrs["original_sampling_rate"] == 44100
    assert a["audio"].dtype == np.float32
    assert a.attrs["duration"] == pytest.approx(1.0, abs=0.06)
    assert _peak_hz(a["audio"].values, 16000) == pytest.approx(440, abs=3)
    np.testing.assert_allclose(np.diff(a["time"].values[:3]), 1 / 16000)


def test_downsampling_is_alias_free_and_stereo_mixes_down(tmp_path):
    sr = 48000
    t = np.arange(sr) / sr
    left = 0.4 * np.sin(2 * np.pi * 300 * t) + 0.4 * np.sin(2 * np.pi * 11000 * t)  # 11 kHz > 8 kHz Nyquist
    right = 0.4 * np.sin(2 * np.pi * 300 * t)
    p = write_audio(tmp_path / "st.wav", np.vstack([left, right]), sr)
    a = eb.load_audio(p, sr=16000)
    assert a["audio"].ndim == 1 and a.attrs["channels"] == 2
    y = a["audio"].values
    sp = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    f = np.fft.rfftfreq(y.size, 1 / 16000)
    alias = sp[(f > 4800) & (f < 5200)].max()   # 11 kHz would alias to 5 kHz
    assert alias < 0.01 * sp.max()
    keep = eb.load_audio(p, sr=None, mono=False)
    assert keep["audio"].dims == ("channel", "time") and keep.attrs["sampling_rate"] == 48000


def test_offset_and_flags(tmp_path):
    p = write_audio(tmp_path / "silence.wav", np.zeros(8000), 16000)
    a = eb.load_audio(p, t0=2.5)
    assert a["time"].values[0] == pytest.approx(2.5)
    assert "silent" in a.attrs["flags"]


def test_audio_track_of_video_and_missing_track(tmp_path):
    v = write_video(tmp_path / "noaudio.mp4", n=5)
    with pytest.raises(eb.EmonbFormatError, match="no audio track"):
        eb.load_audio(v)
    with pytest.raises(eb.EmonbFileError, match="not found"):
        eb.load_audio(tmp_path / "nope.wav")
    (tmp_path / "bad.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    with pytest.raises(eb.EmonbFileError, match="bad.wav"):
        eb.load_audio(tmp_path / "bad.wav")


@pytest.mark.realdata
def test_real_audio(shared_data):
    a = eb.load_audio(shared_data / "speech" / "ravdess" / "03-01-01-01-01-01-01.flac")
    assert a.attrs["sampling_rate"] == 16000 and 2.5 < a.attrs["duration"] < 5
    assert not a.attrs["flags"]
    v = eb.load_audio(shared_data / "video" / "WolfgangLanger_Pexels.mp4", sr=16000)
    assert v.attrs["duration"] == pytest.approx(19.69, abs=0.1)
    assert "silent" in v.attrs["flags"]  # the Pexels clip's audio track is silent
