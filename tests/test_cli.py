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
