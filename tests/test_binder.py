"""Binder: the files in ``binder/`` make an environment in which the quickstart notebook runs.

The slow test builds that environment the way mybinder.org does (a fresh Python environment,
``pip install -r binder/requirements.txt``, then ``binder/postBuild``) in a new virtual environment,
and executes ``notebooks/quickstart.ipynb`` with it. It installs from the package registry (several
minutes); ``EMONB_SKIP_INSTALL_TESTS=1`` skips it.

One line of ``binder/requirements.txt`` is left out here: the PyTorch CPU index
(``--extra-index-url https://download.pytorch.org/whl/cpu``), which mybinder.org reaches and CI
cannot. ``torch==2.13.0`` then resolves from the indexes pip is configured with (the local wheel of
2.13.0+cpu on CI machines; PyPI's build elsewhere). ``EMONB_BINDER_TORCH_INDEX=1`` keeps the line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
TORCH_INDEX = re.compile(r"^\s*--(extra-)?index-url\s+\S*download\.pytorch\.org", re.MULTILINE)


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[;\s]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _requirement_lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith(("#", "-"))]


LOCK = ROOT / "requirements" / "constraints.txt"
CONSTRAINT_LINE = "-c ../requirements/constraints.txt"


def _lock_pins() -> dict[str, str]:
    if os.environ.get("EMONB_NEWEST_RELEASES") == "1":
        pytest.skip("the newest-releases run (scripts/test_latest.sh) does not check the lock it may be rewriting")
    pins = {}
    for line in _requirement_lines(LOCK.read_text()):
        name, sep, version = line.partition("==")
        assert sep and version and ";" not in line, f"{LOCK}: not a plain pin: {line!r}"
        pins[_name(name)] = version
    return pins


def test_lock_pins_every_dependency_within_pyproject_ranges():
    """requirements/constraints.txt pins every package of emonb[all,test], each inside pyproject's range."""
    tomllib = pytest.importorskip("tomllib")
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _lock_pins()
    reqs = list(project["dependencies"])
    for extra, items in project["optional-dependencies"].items():
        if extra != "dev":  # the lock is of emonb[all,test]; dev tools (ruff) are the developer's own
            reqs += [r for r in items if not r.startswith("emonb")]
    for text in reqs:
        req = Requirement(text)
        name = _name(req.name)
        assert name in pins, f"{name} is not pinned in {LOCK}: regenerate it (scripts/test_latest.sh --lock)"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"{LOCK} pins {name}=={pins[name]}, outside pyproject's {text!r}"
        for sub in req.extras:  # dask[distributed]: the extra's package is pinned too
            assert _name(sub) in pins, f"{sub} (extra of {name}) is not pinned in {LOCK}"
    assert "emonb" not in pins
    assert not any("+" in v for v in pins.values()), "local version labels (+cpu) do not exist on PyPI"


def test_binder_files_match_the_package():
    """binder/requirements.txt names every dependency of ``emonb[all]``, pinned through the lock."""
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r): r for r in project["dependencies"]}
    for extra, reqs in project["optional-dependencies"].items():
        if extra in ("test", "dev", "all"):
            continue
        wanted.update({_name(r): r for r in reqs})
    text = (BINDER / "requirements.txt").read_text()
    listed = {_name(r): r for r in _requirement_lines(text)}
    assert sorted(set(wanted) - set(listed)) == [], "add these to binder/requirements.txt"
    assert sorted(set(listed) - set(wanted)) == [], "binder/requirements.txt has names pyproject lacks"
    assert CONSTRAINT_LINE in text.splitlines(), "binder/requirements.txt must install through the lock"
    pins = _lock_pins()
    assert all(name in pins for name in listed)
    assert listed["torch"] == wanted["torch"] == "torch==2.13.0" and pins["torch"] == "2.13.0"
    assert len(TORCH_INDEX.findall(text)) == 1  # the CPU wheels on mybinder.org

    post = BINDER / "postBuild"
    assert os.access(post, os.X_OK), "binder/postBuild must be executable"
    body = post.read_text()
    assert body.startswith("#!/bin/bash") and "--no-deps -e ." in body

    runtime = (BINDER / "runtime.txt").read_text().strip()
    m = re.fullmatch(r"python-(\d+)\.(\d+)", runtime)
    low = re.search(r">=\s*(\d+)\.(\d+)", project["requires-python"])
    assert m and low and tuple(map(int, m.groups())) >= tuple(map(int, low.groups()))


def _run(cmd, *, env, cwd, timeout, log: Path):
    t = time.perf_counter()
    with open(log, "a") as fh:
        fh.write(f"\n$ {' '.join(map(str, cmd))}\n")
        fh.flush()
        proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT,
                              timeout=timeout, check=False)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-40:])
        pytest.fail(f"{cmd[0]} ... exited {proc.returncode}; last lines of {log}:\n{tail}")
    return time.perf_counter() - t


def _registry_unreachable() -> str | None:
    """Why pip's package index cannot be reached (None when it can): this test installs from it."""
    import urllib.request

    index = os.environ.get("PIP_INDEX_URL")
    if not index:
        r = subprocess.run([sys.executable, "-m", "pip", "config", "get", "global.index-url"],
                           capture_output=True, text=True)
        index = r.stdout.strip() if r.returncode == 0 and r.stdout.strip() else "https://pypi.org/simple"
    try:
        urllib.request.urlopen(index.rstrip("/") + "/pip/", timeout=15).close()
    except OSError as exc:
        return f"the package registry {index} is unreachable ({exc})"
    return None


@pytest.mark.slow_install
@pytest.mark.timeout(2400)
def test_fresh_binder_environment_runs_the_quickstart(tmp_path):
    if os.environ.get("EMONB_SKIP_INSTALL_TESTS") == "1":
        pytest.skip("EMONB_SKIP_INSTALL_TESTS=1")
    reason = _registry_unreachable()
    if reason:
        pytest.skip(reason)
    log = tmp_path / "binder-build.log"
    venv = tmp_path / "venv"
    bindir = venv / "bin"
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONSTARTUP")}
    env.update({"PATH": f"{bindir}{os.pathsep}{env.get('PATH', '')}", "VIRTUAL_ENV": str(venv),
                "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONNOUSERSITE": "1",
                # only this environment's kernels and settings, never the user's
                "JUPYTER_DATA_DIR": str(tmp_path / "jupyter-data"),
                "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"), "JUPYTER_PATH": "",
                "IPYTHONDIR": str(tmp_path / "ipython")})
    timings = {}

    timings["venv"] = _run([sys.executable, "-m", "venv", venv], env=env, cwd=tmp_path, timeout=300, log=log)
    req = (BINDER / "requirements.txt").read_text()
    if os.environ.get("EMONB_BINDER_TORCH_INDEX") != "1":
        req, n = TORCH_INDEX.subn("# (PyTorch CPU index left out for this test)", req)
        assert n == 1
    # the copy lives elsewhere: its constraint line names the lock by its full path
    req = req.replace(CONSTRAINT_LINE, f"-c {LOCK}")
    (tmp_path / "requirements.txt").write_text(req)
    timings["pip install -r binder/requirements.txt"] = _run(
        [bindir / "python", "-m", "pip", "install", "-r", tmp_path / "requirements.txt"],
        env=env, cwd=ROOT, timeout=1800, log=log)
    timings["binder/postBuild"] = _run(["bash", BINDER / "postBuild"], env=env, cwd=ROOT, timeout=600,
                                       log=log)

    # the quickstart, plus one cell that says which Python and which emonb ran it
    nb = json.loads((ROOT / "notebooks" / "quickstart.ipynb").read_text())
    nb["cells"].append({"cell_type": "code", "execution_count": None, "id": "binder-check",
                        "metadata": {}, "outputs": [],
                        "source": "import sys, emonb\nprint(sys.prefix)\nprint(emonb.__file__)"})
    work = tmp_path / "run"
    work.mkdir()
    (work / "quickstart.ipynb").write_text(json.dumps(nb))
    timings["execute quickstart"] = _run(
        [bindir / "python", "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
         "--ExecutePreprocessor.timeout=900", "--output", "executed.ipynb", work / "quickstart.ipynb"],
        env=env, cwd=work, timeout=1200, log=log)

    out = json.loads((work / "executed.ipynb").read_text())
    errors = [o for c in out["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert errors == []
    check = next(c for c in out["cells"] if c.get("id") == "binder-check")
    printed = "".join("".join(o.get("text", "")) for o in check["outputs"]).split()
    assert Path(printed[0]).resolve() == venv.resolve(), "the notebook ran outside the new environment"
    assert Path(printed[1]).resolve() == (ROOT / "emonb" / "__init__.py").resolve()
    face = [c for c in out["cells"] if c["cell_type"] == "code" and "face_emotion" in "".join(c["source"])]
    assert face and face[0]["outputs"], "the face analysis cell printed nothing"
    total = sum(timings.values())
    steps = ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
    print(f"binder environment build and quickstart: {steps}; total {total:.0f} s")
    shutil.rmtree(venv, ignore_errors=True)
