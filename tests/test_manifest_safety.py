"""Session manifests from someone else: no alias bombs, no paths outside the folder, typed fields."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pandas as pd
import pytest

import emonb as eb
from emonb.errors import EmonbFormatError, EmonbManifestError, EmonbValueError

VTT = "WEBVTT\n\n00:00:00.500 --> 00:00:01.500\n<v P1>hi there\n"


@pytest.fixture()
def study(tmp_path):
    """``tmp_path/study/s01`` with a transcript and a physio table, and a secret file beside the study."""
    folder = tmp_path / "study" / "s01"
    folder.mkdir(parents=True)
    (folder / "clip.vtt").write_text(VTT)
    t = np.arange(0, 4, 0.01)
    pd.DataFrame({"time": t, "ECG": np.sin(t * 7), "EDA": 3 + t}).to_csv(folder / "bio.csv", index=False)
    (tmp_path / "secret.vtt").write_text(VTT.replace("hi there", "the secret"))
    return folder


def _manifest(folder, text, name="session.yaml"):
    p = folder / name
    p.write_text(text)
    return p


# -- YAML aliases -----------------------------------------------------------------------------------------
def _bomb(levels: int, width: int = 9) -> str:
    lines = ["transcript: clip.vtt", "sources:", '  l0: &l0 ["lol"]']
    for i in range(1, levels + 1):
        lines.append(f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_quickly(study):
    # 9 ** 8 = 43 million strings once expanded (the 9-level original took 40 s and 6 GB)
    p = _manifest(study, _bomb(8))
    t0 = time.perf_counter()
    with pytest.raises(EmonbManifestError, match=r"session\.yaml: line 4: uses the YAML alias '\*l0'"):
        eb.load_manifest(p)
    assert time.perf_counter() - t0 < 2.0
    with pytest.raises(EmonbValueError, match="alias"):  # through every entry point, also as a ValueError
        eb.session.open_source(p)


def test_any_alias_or_merge_is_refused_but_anchors_alone_are_harmless(study):
    p = _manifest(study, "transcript: clip.vtt\nphysio: &bio {path: bio.csv}\nsources: {physio: *bio}\n")
    with pytest.raises(EmonbManifestError, match="line 3: uses the YAML alias"):
        eb.load_manifest(p)
    p = _manifest(study, "base: &b {path: bio.csv}\nphysio:\n  <<: *b\n")
    with pytest.raises(EmonbManifestError, match="alias"):
        eb.load_manifest(p)
    p = _manifest(study, "transcript: &t clip.vtt\nsession_id: s01\n")
    assert eb.load_manifest(p).attrs["session_id"] == "s01"


def test_oversized_deep_and_binary_manifests_are_refused(study):
    big = _manifest(study, "notes: '" + "x" * (1 << 20) + "'\n", "big.yaml")
    with pytest.raises(EmonbManifestError, match="big.yaml.*short text file"):
        eb.load_manifest(big)
    deep = _manifest(study, "notes: " + "[" * 200 + "]" * 200 + "\n", "deep.yaml")
    with pytest.raises(EmonbManifestError, match="deep.yaml.*nested deeper than 16"):
        eb.load_manifest(deep)
    binary = study / "bin.yaml"
    binary.write_bytes(b"video: \xff\xfe\x00clip.mp4\n")
    with pytest.raises(EmonbManifestError, match="bin.yaml.*not UTF-8"):
        eb.load_manifest(binary)


# -- paths --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["../../secret.vtt", "../s01/../../secret.vtt", "{secret}"])
def test_paths_outside_the_manifest_folder_are_refused(study, value):
    secret = study.parent.parent / "secret.vtt"
    p = _manifest(study, f"transcript: {value.format(secret=secret)}\n")
    with pytest.raises(EmonbManifestError, match=r"field 'transcript': .* is outside the manifest's folder") as info:
        eb.load_manifest(p)
    msg = str(info.value)
    assert str(p) in msg and "allow_outside=True" in msg and "EMONB_ALLOW_OUTSIDE=1" in msg
    # allowed explicitly: the argument, or the environment variable (command line, reports, batches)
    tree = eb.load_manifest(p, allow_outside=True)
    assert "the secret" in str(tree["transcript"].to_dataset()["text"].values)
    os.environ["EMONB_ALLOW_OUTSIDE"] = "1"
    try:
        assert "transcript" in eb.session.open_source(p).children
        with pytest.raises(EmonbManifestError, match="outside"):  # the argument wins over the environment
            eb.load_manifest(p, allow_outside=False)
    finally:
        del os.environ["EMONB_ALLOW_OUTSIDE"]


def test_every_path_field_is_checked_and_inside_paths_work(study):
    for field in ("video: ../../x.mp4", "audio: ../x.wav", "physio: ../bio.csv", "physio: {path: /etc/hostname}",
                  "transcript: ~/x.vtt"):
        p = _manifest(study, field + "\n")
        with pytest.raises(EmonbManifestError, match="outside the manifest's folder"):
            eb.load_manifest(p)
    (study / "sub").mkdir()
    (study / "sub" / "b.vtt").write_text(VTT)
    p = _manifest(study, "transcript: sub/../sub/./b.vtt\nphysio: {path: bio.csv, channels: {ECG: ecg}}\n")
    tree = eb.load_manifest(p)
    assert set(tree.children) == {"transcript", "physio"}


def test_a_symlink_out_of_the_folder_is_outside(study):
    link = study / "linked.vtt"
    try:
        link.symlink_to(study.parent.parent / "secret.vtt")
    except OSError:
        pytest.skip("no symbolic links here")
    p = _manifest(study, "transcript: linked.vtt\n")
    with pytest.raises(EmonbManifestError, match="outside"):
        eb.load_manifest(p)
    assert "transcript" in eb.load_manifest(p, allow_outside=True).children


def test_the_sample_session_is_inside_its_folder():
    assert eb.sample_session().attrs["session_id"] == "sample"


# -- field types ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("line, match", [
    ("offsets: {physio: soon}", r"field 'offsets.physio': expected a number \(seconds\), got the text 'soon'"),
    ("offsets: [1, 2]", r"field 'offsets': expected a mapping, for example \{physio: -2.5\}.*got the list \[1, 2\]"),
    ("offsets: {physio: true}", r"'offsets.physio': expected a number.*boolean true"),
    ("offsets: {physio: .nan}", r"'offsets.physio': expected a number"),
    ("offsets: {vidoe: 1}", r"field 'offsets': unknown node 'vidoe'"),
    ("sr: fast", r"field 'sr': expected the audio sampling rate in Hz.*got the text 'fast'"),
    ("sr: -8000", r"field 'sr': expected .* positive whole number"),
    ("sr: 16000.5", r"field 'sr'"),
    ("sr: [16000]", r"field 'sr'.*the list"),
    ("session_id: [a, b]", r"field 'session_id': expected text, got the list"),
    ("subject: no", r"field 'subject': expected text, got the boolean false.*quote it"),
    ("subject: {name: x}", r"field 'subject': expected text, got a mapping"),
    ("consent: [1]", r"field 'consent': expected text"),
    ("video: 12", r"field 'video': expected a file path"),
    ("audio: [a.wav]", r"field 'audio': expected a file path \(text\) or 'video'"),
    ("transcript: {path: clip.vtt}", r"field 'transcript': expected a file path"),
    ("physio: 3", r"field 'physio': expected a file path or a mapping"),
    ("physio: {sampling_rate: 100}", r"field 'physio.path': expected the physio file path"),
    ("physio: {path: bio.csv, sampling_rate: fast}", r"'physio.sampling_rate': expected a positive number"),
    ("physio: {path: bio.csv, sampling_rate: 0}", r"'physio.sampling_rate': expected a positive number"),
    ("physio: {path: bio.csv, channels: eda}", r"'physio.channels': expected a mapping of column"),
    ("physio: {path: bio.csv, channels: {ECG: [ecg]}}", r"'physio.channels.ECG': expected text"),
    ("physio: {path: bio.csv, units: mV}", r"'physio.units': expected a mapping"),
    ("physio: {path: bio.csv, rate: 100}", r"field 'physio': unknown key\(s\) \['rate'\]"),
    ("sources: [a, b]", r"field 'sources': expected a mapping"),
    ("sources: {video: {camera: 2}}", r"field 'sources.video': expected text"),
    ("notes: {a: 1}", r"field 'notes': expected text"),
])
def test_wrong_field_types_name_the_file_the_field_and_what_was_expected(study, line, match):
    p = _manifest(study, f"transcript: clip.vtt\n{line}\n", "typed.yaml")
    with pytest.raises(EmonbManifestError, match=match) as info:
        eb.load_manifest(p)
    assert str(info.value).startswith(str(p))
    assert isinstance(info.value, EmonbValueError) and isinstance(info.value, EmonbFormatError)


def test_well_typed_fields_are_used(study):
    p = _manifest(study, "session_id: 7\nsubject: 2021-03-04\nnotes: [first, second]\nsr: 8000.0\n"
                         "transcript: clip.vtt\noffsets: {physio: -1, transcript: 0.5}\n"
                         "physio: {path: bio.csv, channels: {EDA: eda, ECG: ecg}, units: {EDA: uS}}\n"
                         "sources: {physio: lab amplifier, transcript: 3}\n")
    tree = eb.load_manifest(p)
    assert tree.attrs["session_id"] == "7" and tree.attrs["subject"] == "2021-03-04"
    assert json.loads(tree.attrs["offsets"]) == {"physio": -1.0, "transcript": 0.5}
    assert json.loads(tree.attrs["sources"])["transcript"] == "3"
    assert tree["physio"].to_dataset()["eda"].attrs["units"] == "uS"
    assert tree["physio"].time.values[0] == pytest.approx(-1.0)


def test_unknown_top_level_keys_are_still_refused(study):
    p = _manifest(study, "transcript: clip.vtt\nallow_outside: true\n")
    with pytest.raises(EmonbManifestError, match=r"unknown key\(s\) \['allow_outside'\]"):
        eb.load_manifest(p)
