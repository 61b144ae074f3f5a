"""Batch runs on dask: failure isolation, resume, summaries, schedulers, reports, the CLI wiring."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("distributed")

from emonb.batch import (
    COMPLETE_MARKER,
    BatchResult,
    SessionResult,
    _raw_session_id,
    _source_kind,
    _unique_ids,
    add_batch_command,
    run_batch,
)
from emonb.errors import EmonbError, EmonbFileError, EmonbValueError
from emonb.session import SAMPLE_DIR, open_session

FACE_STRIDE = 120  # 4 of the sample's 472 frames: the face step runs, quickly


def _manifest(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / "session.yaml"
    p.write_text(text)
    return p


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Two physio+text sessions, one text-only, one video file, a truncated video, a missing file."""
    root = tmp_path_factory.mktemp("batch-data")
    for name in ("s01", "s02"):
        d = root / "sessions" / name
        d.mkdir(parents=True)
        shutil.copy(SAMPLE_DIR / "physio.csv", d)
        shutil.copy(SAMPLE_DIR / "transcript.vtt", d)
        _manifest(d, "physio: {path: physio.csv, channels: {Photosensor: event}}\n"
                     "transcript: transcript.vtt\n")
    _manifest(root / "sessions" / "s03", "session_id: gone\nvideo: no-such-video.mp4\n")
    t = root / "textonly"
    t.mkdir()
    shutil.copy(SAMPLE_DIR / "transcript.vtt", t)
    _manifest(t, "session_id: words\ntranscript: transcript.vtt\n")
    (root / "videos").mkdir()
    shutil.copy(SAMPLE_DIR / "video.mp4", root / "videos" / "clip.mp4")
    raw = (SAMPLE_DIR / "video.mp4").read_bytes()
    (root / "videos" / "broken.mp4").write_bytes(raw[: len(raw) // 50])  # truncated: no moov atom
    return root


@pytest.fixture(scope="module")
def client():
    """A small process-based local cluster shared by the tests of this module."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", silence_logs=logging.ERROR)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


# -- one batch with a broken session, then resume ------------------------------------------------------
def test_batch_isolates_failures_writes_summaries_and_resumes(data, client, tmp_path):
    sources = [str(data / "sessions" / "*" / "session.yaml"), data / "videos" / "clip.mp4",
               data / "videos" / "broken.mp4"]
    out = tmp_path / "results"
    kw = {"scheduler": client, "modalities": ("face", "physio", "text"),
              "options": {"face": {"stride": FACE_STRIDE}}, "progress": False}
    res = run_batch(sources, out, **kw)

    assert [s.session_id for s in res] == ["s01", "s02", "gone", "clip", "broken"]
    status = {s.session_id: s.status for s in res}
    assert status == {"s01": "ok", "s02": "ok", "gone": "failed", "clip": "ok", "broken": "failed"}
    assert res["gone"].error.startswith("EmonbFileError:") and "no-such-video.mp4" in res["gone"].error
    assert res["broken"].error.startswith("EmonbFormatError:") and "broken.mp4" in res["broken"].error
    assert {s.session_id for s in res.failed} == {"gone", "broken"} and not res.all_ok
    assert len(res.ok) == 3 and res.workers == 2
    for s in res.ok:
        assert s.seconds > 0 and s.peak_memory_mb > 50 and s.worker.startswith("tcp://")

    # finished stores hold the results, the late fusion and the completion marker
    t = open_session(out / "s01.zarr")
    assert {"physio", "transcript", "physio_features", "text", "fused"} <= set(t.children)
    assert json.loads(t.attrs["analysis"])["face"]["status"] == "skipped"  # no video in s01
    clip = open_session(out / "clip.zarr")
    assert {"video", "face", "fused"} <= set(clip.children)
    assert clip["face"].sizes["time"] == 4
    assert (out / "clip.zarr" / COMPLETE_MARKER).is_file()
    assert not (out / "broken.zarr").exists() and not list(out.glob(".*partial*"))

    # summaries list every session with its error
    doc = json.loads((out / "batch_summary.json").read_text())
    assert doc["counts"] == {"ok": 3, "failed": 2, "skipped": 0}
    by_id = {r["session_id"]: r for r in doc["sessions"]}
    assert by_id["broken"]["status"] == "failed" and "EmonbFormatError" in by_id["broken"]["error"]
    csv = pd.read_csv(out / "batch_summary.csv", index_col="session_id")
    assert list(csv.loc[["s01", "gone"], "status"]) == ["ok", "failed"]
    df = res.to_dataframe()
    assert df.loc["clip", "kind"] == "video" and df.loc["s01", "kind"] == "manifest"

    # a re-run skips what is finished and retries what failed
    again = run_batch(sources, out, **kw)
    assert {s.session_id: s.status for s in again} == {
        "s01": "skipped", "s02": "skipped", "gone": "failed", "clip": "skipped", "broken": "failed"}

    # an interrupted write (no marker, a stale temporary store) is redone, not taken as finished
    (out / "s02.zarr" / COMPLETE_MARKER).unlink()
    (out / ".s02.zarr.partial-deadbeef").mkdir()
    third = run_batch(sources[:1], out, **kw)
    assert {s.session_id: s.status for s in third} == {"s01": "skipped", "s02": "ok", "gone": "failed"}
    assert (out / "s02.zarr" / COMPLETE_MARKER).is_file()
    assert not (out / ".s02.zarr.partial-deadbeef").exists()

    # resume=False redoes finished sessions
    redo = run_batch([data / "sessions" / "s01" / "session.yaml"], out, **{**kw, "modalities": ["text"]},
                     resume=False)
    assert redo["s01"].status == "ok"
    assert "physio_features" not in open_session(out / "s01.zarr").children


# -- schedulers -------------------------------------------------------------------------------------
def test_default_local_cluster_and_scheduler_address(data, client, tmp_path):
    src = data / "textonly" / "session.yaml"
    res = run_batch(src, tmp_path / "a", workers=1, modalities=["text"], progress=False)
    assert res.workers == 1 and res["words"].status == "ok"
    assert res.scheduler.startswith("tcp://")
    assert "text" in open_session(tmp_path / "a" / "words.zarr").children

    res = run_batch(str(src), tmp_path / "b", scheduler=client.scheduler.address, modalities="text",
                    progress=False)
    assert res["words"].status == "ok" and res.scheduler == client.scheduler.address


def test_nothing_to_do_starts_no_cluster(data, client, tmp_path):
    src = data / "textonly" / "session.yaml"
    run_batch(src, tmp_path, scheduler=client, modalities=["text"], progress=False)
    res = run_batch(src, tmp_path, scheduler="tcp://127.0.0.1:9", modalities=["text"], progress=False)
    assert res["words"].status == "skipped" and res.workers is None


# -- reports ---------------------------------------------------------------------------------------
def test_report_is_rendered_and_a_failed_report_is_retried_alone(data, tmp_path):
    """``report=True`` runs the real emonb.report.run_report (on an in-process cluster)."""
    distributed = pytest.importorskip("distributed")
    pytest.importorskip("papermill")
    import nbformat

    from emonb.report import remote_scripts

    broken = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("session = None\nmodalities = []\nrate = 10.0")
    params.metadata["tags"] = ["parameters"]
    broken.cells = [params, nbformat.v4.new_code_cell("raise RuntimeError('template broke')")]
    broken.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(broken, tmp_path / "broken.ipynb")
    src = data / "textonly" / "session.yaml"
    with distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=":0",
                                  silence_logs=logging.ERROR) as cluster, distributed.Client(cluster) as c:
        kw = {"scheduler": c, "modalities": ["text"], "progress": False, "report": True}
        res = run_batch(src, tmp_path, **kw, report_parameters={"modalities": ["text"], "rate": 5.0,
                                                                "template": str(tmp_path / "broken.ipynb")})
        assert res["words"].status == "failed"
        assert res["words"].error.startswith("report failed: ReportError:")
        assert "template broke" in res["words"].error
        assert (tmp_path / "words.zarr" / COMPLETE_MARKER).is_file()  # the analysis is kept
        res = run_batch(src, tmp_path, **kw, report_parameters={"modalities": ["text"], "rate": 5.0})
        assert res["words"].status == "ok" and res["words"].report == str(tmp_path / "words.html")
        html = (tmp_path / "words.html").read_text()
        assert "Emotion analysis report: session words" in html and remote_scripts(html) == []
        assert run_batch(src, tmp_path, **kw, report_parameters={"modalities": ["text"]})["words"].status == "skipped"


# -- errors ----------------------------------------------------------------------------------------
def test_clear_errors(tmp_path):
    with pytest.raises(EmonbFileError, match=r"nothing/\*/session.yaml: no files match"):
        run_batch(str(tmp_path / "nothing" / "*" / "session.yaml"), tmp_path / "out")
    with pytest.raises(EmonbFileError, match="source not found"):
        run_batch(tmp_path / "absent.yaml", tmp_path / "out")
    src = _manifest(tmp_path / "x", "transcript: t.vtt\n")
    bad = [
        ({"sources": 42}, "sources must be"),
        ({"sources": []}, "empty list"),
        ({"sources": [3.5]}, "each source must be"),
        ({"out": 7}, "out must be a folder"),
        ({"workers": 0}, "workers must be a positive integer"),
        ({"workers": "2"}, "workers must be a positive integer"),
        ({"workers": 2, "scheduler": "tcp://h:8786"}, "cannot be combined"),
        ({"modalities": ["smell"]}, "invalid value for modality"),
        ({"options": {"smell": {}}}, "unknown modalities"),
        ({"report": "yes"}, "report must be True or False"),
        ({"report_parameters": {"rate": 5}}, "report=False"),
        ({"rate": -1}, "rate must be a positive number"),
        ({"scheduler": "foo://host:1"}, "bad dask scheduler address 'foo://host:1'.*unknown scheme"),
        ({"scheduler": "tcp://host:notaport"}, "bad dask scheduler address"),
        ({"scheduler": "localhost"}, "bad dask scheduler address"),
        ({"scheduler": 8786}, "scheduler must be an address"),
    ]
    for kw, msg in bad:
        args = {"sources": src, "out": tmp_path / "out", **kw}
        with pytest.raises(EmonbValueError, match=msg):
            run_batch(args.pop("sources"), args.pop("out"), **args)
    file_out = tmp_path / "a-file"
    file_out.write_text("x")
    with pytest.raises(EmonbFileError, match="not a folder"):
        run_batch(src, file_out)


def test_unreachable_scheduler(tmp_path):
    import dask

    src = _manifest(tmp_path / "x", "transcript: t.vtt\n")
    msg = "could not connect to the dask scheduler at 'tcp://127.0.0.1:9'"
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}), \
            pytest.raises(EmonbValueError, match=msg):
        run_batch(src, tmp_path / "out", scheduler="tcp://127.0.0.1:9", progress=False)


# -- pieces without a cluster -------------------------------------------------------------------------
def test_session_ids_and_source_kinds(tmp_path):
    assert _unique_ids(["s01", "s01", "S01", "a b/c", ""]) == ["s01", "s01-2", "S01-3", "a_b_c", "session"]
    m = _manifest(tmp_path / "P07", "transcript: t.vtt\n")
    assert _raw_session_id("manifest", m) == "P07"  # generic file name: the folder names it
    named = tmp_path / "P07" / "visit2.yaml"
    named.write_text("session_id: P07-v2\n")
    assert _raw_session_id("manifest", named) == "P07-v2"
    broken = tmp_path / "P07" / "broken.yaml"
    broken.write_text("key: [unclosed\n")
    assert _raw_session_id("manifest", broken) == "broken"
    (tmp_path / "P08").mkdir()
    assert _raw_session_id("video", tmp_path / "P08" / "video.mp4") == "P08"
    assert _raw_session_id("video", tmp_path / "P08" / "take-3.mp4") == "take-3"
    assert _source_kind(tmp_path / "P07") == ("manifest", m)
    assert _source_kind(Path("a/b.MP4"))[0] == "video"
    assert _source_kind(Path("a/b.zarr"))[0] == "store"
    assert _source_kind(Path("a/b.txt"))[0] == "unknown"


def test_a_namesakes_finished_store_is_neither_skipped_nor_overwritten(tmp_path):
    out = tmp_path / "out"
    (out / "s01.zarr").mkdir(parents=True)
    (out / "s01.zarr" / COMPLETE_MARKER).write_text(json.dumps({"source_abs": "/data/a/session.yaml"}))
    assert _unique_ids(["s01"], ["/data/a/session.yaml"], out) == ["s01"]  # its own store: resume
    assert _unique_ids(["s01"], ["/data/b/session.yaml"], out) == ["s01-2"]  # another source's
    (out / "s02.zarr").mkdir()  # an interrupted store (no marker) is free to be redone
    assert _unique_ids(["s02"], ["/data/c/session.yaml"], out) == ["s02"]


def test_batch_result_displays():
    res = BatchResult([SessionResult("a", "a.yaml", "manifest", "ok", 2.5, 300.0, "out/a.zarr"),
                       SessionResult("b", "b.mp4", "video", "failed", 0.1, error="EmonbFormatError: <bad>"),
                       SessionResult("c", "c.yaml", "manifest", "skipped", store="out/c.zarr")],
                      "out", wall_seconds=4.0, workers=2)
    text = repr(res)
    assert "3 session(s): 1 ok, 1 failed, 1 skipped in 4.0 s on 2 worker(s)" in text
    assert "failed: b (b.mp4): EmonbFormatError: <bad>" in text
    html = res._repr_html_()
    assert "&lt;bad&gt;" in html and "<table>" in html
    assert res.stores == [Path("out/a.zarr"), Path("out/c.zarr")]
    assert list(res.to_dataframe().columns[:3]) == ["source", "kind", "status"]
    assert "b " in res.format_table()
    with pytest.raises(EmonbError, match="1 of 3 session"):
        res.raise_for_failures()
    with pytest.raises(KeyError):
        res["zzz"]


# -- command line -------------------------------------------------------------------------------------
def test_cli_batch_command(data, client, tmp_path, capsys):
    ap = argparse.ArgumentParser(prog="emonb")
    add_batch_command(ap.add_subparsers(dest="command", required=True))
    src = str(data / "textonly" / "session.yaml")
    args = ap.parse_args(["batch", src, "--out", str(tmp_path / "r"), "--scheduler", client.scheduler.address,
                          "--modalities", "text", "--quiet"])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "words" in printed and "1 ok" in printed and "batch_summary.json" in printed
    args = ap.parse_args(["batch", src, str(data / "videos" / "broken.mp4"), "--out", str(tmp_path / "r"),
                          "--scheduler", client.scheduler.address, "--modalities", "text,face",
                          "--stride", "50", "--quiet"])
    assert args.func(args) == 1
    printed = capsys.readouterr().out
    assert "skipped" in printed and "EmonbFormatError" in printed
    args = ap.parse_args(["batch", src, "--out", "r", "--workers", "4", "--no-resume", "--report",
                          "--report-param", "rate=5", "--report-param", "blur_faces=true"])
    assert (args.workers, args.no_resume, args.report) == (4, True, True)
    assert dict(args.report_param) == {"rate": 5, "blur_faces": True}
