import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import emonb as eb
from conftest import write_audio, write_video


@pytest.fixture()
def files(tmp_path):
    v = write_video(tmp_path / "clip.mp4", n=30, fps=15)
    a = write_audio(tmp_path / "voice.wav", 0.1 * np.sin(np.arange(32000) / 5.0), 16000)
    t = np.arange(0, 4, 0.01)
    pd.DataFrame({"time": t, "ECG": np.sin(t * 7), "EDA": 3 + t}).to_csv(tmp_path / "bio.csv", index=False)
    (tmp_path / "clip.vtt").write_text("WEBVTT\n\n00:00:00.500 --> 00:00:01.500\n<v P1>hi there\n")
    return tmp_path


def test_load_session_with_offsets(files):
    tree = eb.load_session(video=files / "clip.mp4", audio=files / "voice.wav", physio=files / "bio.csv",
                           transcript=files / "clip.vtt", offsets={"physio": -2.5, "audio": 0.25},
                           subject="P1", consent="lab study, no publication")
    assert set(tree.children) == {"video", "audio", "physio", "transcript"}
    assert tree["physio"].time.values[0] == pytest.approx(-2.5)
    assert tree["physio"].attrs["t0"] == -2.5
    assert tree["audio"].time.values[0] == pytest.approx(0.25)
    assert tree.attrs["subject"] == "P1" and tree.attrs["session_id"] == "clip"
    assert json.loads(tree.attrs["offsets"]) == {"physio": -2.5, "audio": 0.25}
    assert "emonb_version" in tree.attrs and "created" in tree.attrs
    s = eb.summarize(tree)
    assert s.loc["physio", "t0"] == -2.5 and s.loc["video", "rate_hz"] == pytest.approx(15, rel=1e-3)


def test_audio_from_the_video_and_bad_offsets(files):
    with pytest.raises(eb.EmonbFormatError, match="no audio track"):
        eb.load_session(video=files / "clip.mp4", audio="video")
    with pytest.raises(eb.EmonbValueError, match="unknown node"):
        eb.load_session(video=files / "clip.mp4", offsets={"vidoe": 1.0})
    with pytest.raises(eb.EmonbValueError, match="at least one"):
        eb.load_session()


def test_zarr_round_trip_is_exact(files, tmp_path):
    tree = eb.load_session(video=files / "clip.mp4", audio=files / "voice.wav", physio=files / "bio.csv",
                           transcript=files / "clip.vtt", offsets={"physio": 1.0})
    store = eb.save_session(tree, tmp_path / "s01.zarr")
    back = eb.open_session(store)
    assert back.attrs == tree.attrs
    for name in tree.children:
        a = tree[name].to_dataset().drop_vars("frames", errors="ignore")
        b = back[name].to_dataset().drop_vars("frames", errors="ignore").load()
        xr.testing.assert_identical(a, b)
        for v in a.variables:
            assert a[v].dtype == b[v].dtype, v
    # frames come back from the original file
    v = eb.session.resolve_node(back, "video")
    np.testing.assert_array_equal(v["frames"][3].values, tree["video"].to_dataset()["frames"][3].values)
    with pytest.raises(eb.EmonbFileError, match="already exists"):
        eb.save_session(tree, tmp_path / "s01.zarr", mode="w-")
    with pytest.raises(eb.EmonbFileError, match="not found"):
        eb.open_session(tmp_path / "nothing.zarr")


def test_manifest(files):
    (files / "s.yaml").write_text(
        "session_id: s07\nvideo: clip.mp4\nphysio: {path: bio.csv, channels: {EDA: eda, ECG: ecg}}\n"
        "offsets: {physio: 0.5}\n")
    tree = eb.load_manifest(files / "s.yaml")
    assert tree.attrs["session_id"] == "s07" and tree["physio"].time.values[0] == pytest.approx(0.5)
    (files / "bad.yaml").write_text("video: clip.mp4\ncolour: blue\n")
    with pytest.raises(eb.EmonbFormatError, match="bad.yaml.*colour"):
        eb.load_manifest(files / "bad.yaml")
    (files / "missing.yaml").write_text("video: nothere.mp4\n")
    with pytest.raises(eb.EmonbFileError, match="nothere.mp4"):
        eb.load_manifest(files / "missing.yaml")


def test_sample_session_is_offline_and_real():
    tree = eb.sample_session()
    assert set(tree.children) == {"video", "audio", "physio", "transcript"}
    sources = json.loads(tree.attrs["sources"])
    assert "Pexels" in sources["video"] and "ARCTIC" in sources["audio"] and "NeuroKit2" in sources["physio"]
    assert tree["video"].attrs["n_frames"] == 472
    assert tree["audio"].time.values[0] == pytest.approx(3.0)
    assert tree["physio"].attrs["sampling_rate"] == 100
    assert "superlative" in " ".join(tree["transcript"].text.values)
    assert "<xarray.DataTree" in repr(tree) and "video" in tree._repr_html_()
