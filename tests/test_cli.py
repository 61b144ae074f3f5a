import subprocess
import sys

import emonb as eb
from emonb.cli import main


def test_demo_writes_a_session_store(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "out"), "--modalities", "", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "session sample" in out and "physio" in out and "aligned onto one 10 Hz grid" in out
    tree = eb.open_session(tmp_path / "out" / "sample.zarr")
    assert set(tree.children) >= {"video", "audio", "physio", "transcript"}


def test_info_and_errors_exit_cleanly(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nothing.zarr")]) == 2
    assert "not found" in capsys.readouterr().err


def test_console_script_is_installed(tmp_path):
    r = subprocess.run([sys.executable, "-m", "emonb.cli", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and "emonb" in r.stdout


def _broken_text(*args, **kwargs):
    raise RuntimeError("the text model fell over")


def test_failing_step_makes_analyze_exit_nonzero_and_keeps_the_rest(tmp_path, capsys, monkeypatch):
    import json

    import emonb.models.text.analyze as text_analyze

    src = eb.save_session(eb.sample_session(), tmp_path / "in.zarr")
    monkeypatch.setattr(text_analyze, "analyze_text", _broken_text)
    code = main(["analyze", str(src), "--modalities", "text,physio", "--quiet", "--out", str(tmp_path / "out.zarr")])
    cap = capsys.readouterr()
    assert code == 1
    assert "text    FAILED  RuntimeError: the text model fell over" in cap.out
    assert "FAILED: 1 analysis step(s) failed: text" in cap.err
    tree = eb.open_session(tmp_path / "out.zarr")                     # what worked is written
    assert "physio_features" in tree.children and "text" not in tree.children
    rec = json.loads(tree.attrs["analysis"])
    assert rec["text"]["status"] == "failed" and rec["physio"]["status"] == "ok"
    assert "the text model fell over" in tree.attrs["analysis_failed"] and "analysis_failed" in repr(tree)
    summary = tree.emonb.summary()
    assert "text: FAILED RuntimeError" in summary.loc["text", "analysis"]
    assert summary.loc["physio_features", "analysis"] == "physio: ok"


def test_analyze_exits_zero_when_every_step_runs(tmp_path, capsys):
    src = eb.save_session(eb.sample_session(), tmp_path / "in.zarr")
    assert main(["analyze", str(src), "--modalities", "text", "--quiet", "--out", str(tmp_path / "o.zarr")]) == 0
    cap = capsys.readouterr()
    assert "text    ok" in cap.out and "FAILED" not in cap.out + cap.err
    assert "analysis_failed" not in eb.open_session(tmp_path / "o.zarr").attrs


def test_every_option_has_help():
    import argparse

    from emonb.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = [f"{name} {opt.option_strings or opt.dest}" for name, p in sub.choices.items() for opt in p._actions
               if not isinstance(opt, argparse._HelpAction) and not opt.help]
    assert missing == []
    text = sub.choices["analyze"].format_help()
    for flag in ("--modalities", "--stride", "--device"):
        line = next(ln for ln in text.splitlines() if ln.strip().startswith(flag))
        assert len(line.split(maxsplit=2)) > 1, line


def test_command_line_errors_name_the_flag(tmp_path, capsys):
    import numpy as np

    video = tmp_path / "v.mp4"
    from emonb.spotting.synthetic import make_spotting_video

    make_spotting_video(video, fps=10, duration=1.0, events=[], seed=1)
    csv = tmp_path / "bio.csv"
    csv.write_text("ecg\n" + "\n".join(f"{v:.4f}" for v in np.sin(np.arange(200) / 5)))
    code = main(["analyze", str(video), "--physio", str(csv), "--modalities", "physio", "--quiet",
                 "--out", str(tmp_path / "o.zarr")])
    err = capsys.readouterr().err
    assert code == 2 and "--physio-rate" in err and "sampling_rate=" not in err


def test_manifest_outside_its_folder_needs_allow_outside(tmp_path, capsys, monkeypatch):
    import os

    from emonb.session import ALLOW_OUTSIDE_ENV

    monkeypatch.setenv(ALLOW_OUTSIDE_ENV, "0")  # recorded, so that what main() sets is undone after the test
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "t.vtt").write_text("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nhello there\n")
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "s.yaml").write_text("session_id: s1\ntranscript: ../elsewhere/t.vtt\n")
    assert main(["info", str(folder / "s.yaml")]) == 2
    err = capsys.readouterr().err
    assert "--allow-outside" in err and "allow_outside=True" not in err
    assert main(["info", str(folder / "s.yaml"), "--allow-outside"]) == 0
    assert "transcript" in capsys.readouterr().out
    assert os.environ[ALLOW_OUTSIDE_ENV] == "1"   # for report kernels and batch workers
