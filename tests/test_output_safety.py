"""emonb writes only where it may: new paths, or stores and reports it wrote itself.

A user's file or folder is never deleted or overwritten (with or without ``overwrite``), an emonb
store is replaced only with ``overwrite=True`` / ``--overwrite``, and a write that fails midway
leaves what was there untouched and no half store.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import emonb as eb
from emonb import _output
from emonb.cli import main
from emonb.errors import EmonbFileError, EmonbValueError
from emonb.session import make_tree, save_dataset

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


# -- helpers ----------------------------------------------------------------------------------------
def tiny_tree(session_id: str = "tiny", value: float = 1.0) -> xr.DataTree:
    t = np.arange(200) / 100.0
    physio = xr.Dataset({"ecg": ("time", (value * np.sin(7 * t)).astype("float32"))}, coords={"time": t},
                        attrs={"modality": "physio", "sampling_rate": 100.0, "t0": 0.0})
    return make_tree({"physio": physio}, {"session_id": session_id, "emonb_version": eb.__version__})


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` (relative path -> sha256 of its bytes)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def user_folder(path: Path) -> dict:
    path.mkdir(parents=True, exist_ok=True)
    (path / "notes.txt").write_bytes(b"my notes\x00\xff")
    (path / "clip.mp4").write_bytes(os.urandom(2048))
    return snapshot(path)


def temporaries(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if ".partial-" in p.name or ".replaced-" in p.name]


# -- the Python API ------------------------------------------------------------------------------------
@pytest.mark.parametrize("save", ["session", "dataset"])
def test_a_folder_holding_a_users_files_is_refused_and_survives(tmp_path, save):
    target = tmp_path / "mine"
    before = user_folder(target)
    write = (lambda p, **kw: eb.save_session(tiny_tree(), p, **kw)) if save == "session" else \
        (lambda p, **kw: save_dataset(eb.align(tiny_tree(), rate=10), p, **kw))
    for kw in ({}, {"overwrite": True}, {"mode": "a"}):
        with pytest.raises(EmonbFileError, match="not a store emonb wrote") as info:
            write(target, **kw)
        assert str(target) in str(info.value)
        assert snapshot(target) == before
    assert temporaries(tmp_path) == []


def test_a_users_file_is_refused_even_with_overwrite(tmp_path):
    f = tmp_path / "s.zarr"
    f.write_bytes(b"not a store")
    with pytest.raises(EmonbFileError, match="is a file"):
        eb.save_session(tiny_tree(), f, overwrite=True)
    assert f.read_bytes() == b"not a store"
    with pytest.raises(EmonbFileError, match="is a file, not a folder"):
        eb.save_session(tiny_tree(), f / "inner.zarr")


def test_the_current_folder_is_refused(tmp_path, monkeypatch):
    before = user_folder(tmp_path / "cwd")
    monkeypatch.chdir(tmp_path / "cwd")
    with pytest.raises(EmonbFileError, match="not a store emonb wrote"):
        eb.save_session(tiny_tree(), ".", overwrite=True)
    assert snapshot(tmp_path / "cwd") == before
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path / "empty")
    with pytest.raises(EmonbFileError, match="current folder"):
        eb.save_session(tiny_tree(), ".")
    assert list((tmp_path / "empty").iterdir()) == []


def test_a_link_is_refused(tmp_path):
    real = tmp_path / "real.zarr"
    eb.save_session(tiny_tree(), real)
    (tmp_path / "link.zarr").symlink_to(real)
    with pytest.raises(EmonbFileError, match="symbolic link"):
        eb.save_session(tiny_tree("other"), tmp_path / "link.zarr", overwrite=True)
    assert eb.open_session(real).attrs["session_id"] == "tiny"


def test_an_emonb_store_is_replaced_only_with_overwrite(tmp_path):
    store = eb.save_session(tiny_tree("first"), tmp_path / "s.zarr")
    marker = json.loads((store / _output.STORE_MARKER).read_text())
    assert marker["emonb_store"] == "session" and marker["emonb_version"] == eb.__version__
    with pytest.raises(EmonbFileError, match="already exists.*overwrite=True") as info:
        eb.save_session(tiny_tree("second"), store)
    assert str(store) in str(info.value)
    with pytest.raises(EmonbFileError, match="already exists"):
        eb.save_session(tiny_tree("second"), store, mode="w-")
    with pytest.raises(EmonbValueError, match="w-"):
        eb.save_session(tiny_tree("second"), store, mode="w-", overwrite=True)
    assert eb.open_session(store).attrs["session_id"] == "first"
    eb.save_session(tiny_tree("second"), store, overwrite=True)
    assert eb.open_session(store).attrs["session_id"] == "second"
    assert temporaries(tmp_path) == []
    # an aligned grid the same way
    grid = save_dataset(eb.align(tiny_tree(), rate=10), tmp_path / "g.zarr")
    with pytest.raises(EmonbFileError, match="already exists"):
        save_dataset(eb.align(tiny_tree(), rate=5), grid)
    save_dataset(eb.align(tiny_tree(), rate=5), grid, overwrite=True)
    assert xr.open_zarr(grid).attrs["rate"] == 5.0


def test_stores_of_older_versions_without_a_marker_are_recognised(tmp_path):
    store = eb.save_session(tiny_tree("old"), tmp_path / "old.zarr")
    grid = save_dataset(eb.align(tiny_tree(), rate=10), tmp_path / "grid.zarr")
    for p in (store, grid):
        (p / _output.STORE_MARKER).unlink()  # as written before the marker existed
        assert _output.is_emonb_store(p)
        with pytest.raises(EmonbFileError, match="already exists"):
            eb.save_session(tiny_tree("new"), p)
        eb.save_session(tiny_tree("new"), p, overwrite=True)
        assert eb.open_session(p).attrs["session_id"] == "new"
    # a zarr store of someone else's is not emonb's
    xr.Dataset({"x": ("t", np.arange(3))}).to_zarr(tmp_path / "theirs.zarr", zarr_format=2)
    assert not _output.is_emonb_store(tmp_path / "theirs.zarr")
    with pytest.raises(EmonbFileError, match="not a store emonb wrote"):
        eb.save_session(tiny_tree(), tmp_path / "theirs.zarr", overwrite=True)


def test_an_empty_folder_and_append_mode(tmp_path):
    (tmp_path / "empty.zarr").mkdir()
    eb.save_session(tiny_tree(), tmp_path / "empty.zarr")
    assert _output.is_emonb_store(tmp_path / "empty.zarr")
    store = eb.save_session(tiny_tree(), tmp_path / "a.zarr", mode="a")  # a new store
    extra = make_tree({"physio": tiny_tree()["physio"].to_dataset(), "more": xr.Dataset({"v": ("k", [1, 2])})},
                      dict(tiny_tree().attrs))
    eb.save_session(extra, store, mode="a")  # added in place
    assert "more" in eb.open_session(store).children


def _crash_midway(obj, path, mode):
    Path(path).mkdir()
    (Path(path) / ".zgroup").write_text("{}")
    raise RuntimeError("disk on fire")


def test_a_crash_midway_leaves_the_old_store_and_no_half_store(tmp_path, monkeypatch):
    import emonb.session as session

    store = eb.save_session(tiny_tree("old"), tmp_path / "s.zarr")
    before = snapshot(store)
    monkeypatch.setattr(session, "_write_zarr", _crash_midway)
    with pytest.raises(RuntimeError, match="disk on fire"):
        eb.save_session(tiny_tree("new"), store, overwrite=True)
    with pytest.raises(RuntimeError, match="disk on fire"):
        eb.save_session(tiny_tree("new"), tmp_path / "fresh.zarr")
    with pytest.raises(RuntimeError, match="disk on fire"):
        save_dataset(eb.align(tiny_tree(), rate=10), tmp_path / "grid.zarr")
    assert snapshot(store) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]  # no half store, no temporary left
    monkeypatch.undo()
    assert eb.open_session(store).attrs["session_id"] == "old"


def test_temporaries_of_dead_writers_are_cleaned_but_never_the_only_copy(tmp_path):
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(proc.stdout)
    partial = tmp_path / f".s.zarr.partial-{dead}-0123abcd"
    partial.mkdir()
    replaced = tmp_path / f".s.zarr.replaced-{dead}-0123abcd"
    eb.save_session(tiny_tree(), replaced)
    live = tmp_path / f".s.zarr.partial-{os.getpid()}-89abcdef"
    live.mkdir()
    _output._clean_stale(tmp_path / "s.zarr")
    assert not partial.exists() and replaced.exists() and live.exists()  # no s.zarr: keep the old copy
    eb.save_session(tiny_tree(), tmp_path / "s.zarr")
    _output._clean_stale(tmp_path / "s.zarr")
    assert not replaced.exists() and live.exists()


def test_batch_replaces_its_own_stores_and_refuses_a_users_folder(tmp_path):
    from emonb.batch import COMPLETE_MARKER, _write_store

    before = user_folder(tmp_path / "s01.zarr")
    with pytest.raises(EmonbFileError, match="not a store emonb wrote"):
        _write_store(tiny_tree(), tmp_path / "s01.zarr", {"session_id": "s01"})
    assert snapshot(tmp_path / "s01.zarr") == before
    _write_store(tiny_tree("a"), tmp_path / "s02.zarr", {"session_id": "s02"})
    _write_store(tiny_tree("b"), tmp_path / "s02.zarr", {"session_id": "s02", "run": 2})
    assert json.loads((tmp_path / "s02.zarr" / COMPLETE_MARKER).read_text())["run"] == 2
    assert eb.open_session(tmp_path / "s02.zarr").attrs["session_id"] == "b"
    assert temporaries(tmp_path) == []


# -- the command line ---------------------------------------------------------------------------------
def test_cli_out_dot_is_refused_and_the_input_survives(tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    before = user_folder(work)
    monkeypatch.chdir(work)
    eb.save_session(tiny_tree(), tmp_path / "in.zarr")
    for argv in (["analyze", str(tmp_path / "in.zarr"), "--modalities", "", "--quiet", "--out", "."],
                 ["analyze", str(tmp_path / "in.zarr"), "--modalities", "", "--quiet", "--out", ".", "--overwrite"],
                 ["align", str(tmp_path / "in.zarr"), "--rate", "10", "--out", "."],
                 ["align", str(tmp_path / "in.zarr"), "--rate", "10", "--out", ".", "--overwrite"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"emonb: error: {work}:" in err and "never deletes" in err
        assert snapshot(work) == before


def test_cli_replaces_a_store_only_with_overwrite(tmp_path, capsys):
    src = eb.save_session(tiny_tree(), tmp_path / "in.zarr")
    out = tmp_path / "out.zarr"
    assert main(["analyze", str(src), "--modalities", "", "--quiet", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["analyze", str(src), "--modalities", "", "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "already exists" in err and "--overwrite" in err and "overwrite=True" not in err
    assert main(["analyze", str(src), "--modalities", "", "--quiet", "--out", str(out), "--overwrite"]) == 0
    grid = tmp_path / "grid.zarr"
    assert main(["align", str(src), "--rate", "10", "--out", str(grid)]) == 0
    assert main(["align", str(src), "--rate", "5", "--out", str(grid)]) == 2
    assert str(grid) in capsys.readouterr().err
    assert main(["align", str(src), "--rate", "5", "--out", str(grid), "--overwrite"]) == 0
    assert xr.open_zarr(grid).attrs["rate"] == 5.0


def test_demo_runs_twice_and_refuses_a_users_folder(tmp_path, capsys):
    out = tmp_path / "demo"
    for _ in range(2):
        assert main(["demo", "--out", str(out), "--modalities", "", "--quiet"]) == 0
    assert _output.is_emonb_store(out / "sample.zarr") and _output.is_emonb_store(out / "sample_aligned.zarr")
    other = tmp_path / "other"
    before = user_folder(other / "sample_aligned.zarr")
    capsys.readouterr()
    assert main(["demo", "--out", str(other), "--modalities", "", "--quiet"]) == 2
    assert str(other / "sample_aligned.zarr") in capsys.readouterr().err
    assert snapshot(other / "sample_aligned.zarr") == before
    assert not (other / "sample.zarr").exists()  # refused before anything was written


# -- reports ------------------------------------------------------------------------------------------
def _template(tmp_path: Path) -> Path:
    """A tiny report template (fast): writes ``save_to`` the way the real one does."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("session = 'sample'\nsave_to = None\ntitle = None")
    params.metadata["tags"] = ["parameters"]
    body = nbformat.v4.new_code_cell(
        "import emonb as eb\nfrom emonb.session import make_tree\n"
        "if save_to:\n    eb.save_session(make_tree({}, {'session_id': 'from-report'}), save_to)\n"
        "print('report on', session)")
    nb.cells = [params, body]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    p = tmp_path / "tpl" / "tpl.ipynb"
    p.parent.mkdir()
    nbformat.write(nb, p)
    return p


@pytest.fixture()
def template(tmp_path):
    pytest.importorskip("papermill")
    return _template(tmp_path)


def test_report_beside_a_users_notebook_and_sidecar_leaves_both_untouched(tmp_path, template, capsys):
    work = tmp_path / "work"
    work.mkdir()
    (work / "analysis.ipynb").write_bytes(b'{"my": "notebook"}\n')
    (work / "analysis.report.json").write_bytes(b'{"my": "own json"}\n')
    before = snapshot(work)
    html = work / "analysis.html"
    args = ["report", "sample", "--template", str(template), "--out", str(html), "--quiet"]
    assert main(args) == 2  # the sidecar's name is taken by a file emonb did not write
    err = capsys.readouterr().err
    assert str(work / "analysis.report.json") in err and "never overwrites" in err
    assert main(args + ["--overwrite"]) == 2
    capsys.readouterr()
    assert snapshot(work) == before and not html.exists()

    (work / "analysis.report.json").unlink()  # the user moves their file away
    before = snapshot(work)
    assert main(args) == 0
    assert snapshot(work)["analysis.ipynb"] == before["analysis.ipynb"]  # the notebook ran in a temporary folder
    assert sorted(p.name for p in work.iterdir()) == ["analysis.html", "analysis.ipynb", "analysis.report.json"]
    side = json.loads((work / "analysis.report.json").read_text())
    assert side["emonb_report"] == eb.__version__ and side["html"] == "analysis.html"

    capsys.readouterr()
    assert main(args) == 2  # an emonb report is replaced only with --overwrite
    err = capsys.readouterr().err
    assert str(html) in err and "--overwrite" in err
    assert main(args + ["--overwrite", "--keep-notebook"]) == 0
    assert "analysis-2.ipynb" in capsys.readouterr().out  # a fresh name: the user's notebook stays
    assert (work / "analysis.ipynb").read_bytes() == b'{"my": "notebook"}\n'
    assert json.loads((work / "analysis.report.json").read_text())["notebook"] == "analysis-2.ipynb"
    kept = json.loads((work / "analysis-2.ipynb").read_text())
    assert any("report on" in "".join(o.get("text", "")) for c in kept["cells"] for o in c.get("outputs", []))


def test_report_refuses_a_users_html_even_with_overwrite(tmp_path, template):
    page = tmp_path / "page.html"
    page.write_bytes(b"<html>my page</html>")
    for overwrite in (False, True):
        with pytest.raises(EmonbFileError, match="not an HTML report that emonb wrote"):
            eb.run_report("sample", page, template=template, overwrite=overwrite, progress=False)
    assert page.read_bytes() == b"<html>my page</html>"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["page.html", "tpl"]


def test_report_save_to_follows_the_store_rules(tmp_path, template, capsys):
    before = user_folder(tmp_path / "mine.zarr")
    with pytest.raises(EmonbFileError, match="not a store emonb wrote"):
        eb.run_report("sample", tmp_path / "r.html", template=template, save_to=str(tmp_path / "mine.zarr"),
                      overwrite=True, progress=False)
    assert snapshot(tmp_path / "mine.zarr") == before and not (tmp_path / "r.html").exists()

    store = eb.save_session(tiny_tree("old"), tmp_path / "s.zarr")
    args = ["report", "sample", "--template", str(template), "--out", str(tmp_path / "r.html"), "--quiet",
            "--save-to", str(store)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert str(store) in err and "--overwrite" in err
    assert eb.open_session(store).attrs["session_id"] == "old" and not (tmp_path / "r.html").exists()
    assert main(args + ["--overwrite"]) == 0
    assert eb.open_session(store).attrs["session_id"] == "from-report"
    assert json.loads((tmp_path / "r.report.json").read_text())["parameters"]["save_to"] == str(store.resolve())
    assert temporaries(tmp_path) == []
