"""A real JupyterLab on localhost and Debian's chromium through Playwright, for the browser test and
``benchmarks/scrubber_latency.py``.

Playwright's own browser download does not work offline, so the system chromium is driven through
``executable_path`` with ``--headless --no-sandbox --disable-gpu``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM = os.environ.get("EMONB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def skip_reason() -> str | None:
    """Why a browser run is impossible here (None when it is possible)."""
    if not Path(CHROMIUM).exists():
        return f"chromium not found at {CHROMIUM} (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright python package is not installed"
    if shutil.which("jupyter") is None:
        return "jupyter is not installed"
    return None


def notebook(source: str) -> dict:
    """A one-cell notebook running ``source`` on the default python3 kernel."""
    return {"cells": [{"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {}, "outputs": [],
                       "source": source}],
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


TOKEN = "emonbtest"


@contextlib.contextmanager
def jupyter_server(root: Path, app: str = "jupyterlab", args=(), timeout: float = 60.0,
                   log_name: str = "lab.log"):
    """Run ``python -m <app>`` (jupyterlab or jupyter_server) on a free localhost port serving ``root``,
    until it answers; yields ``{"base", "token", "log"}``. The server is stopped on exit."""
    port = _free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(root / ".jupyter"), "JUPYTER_RUNTIME_DIR": str(root / ".rt")}
    if sys.prefix != sys.base_prefix:  # a venv over system packages: the lab extensions live in the base prefix
        env["JUPYTER_PATH"] = os.pathsep.join(p for p in (os.environ.get("JUPYTER_PATH"),
                                                          str(Path(sys.base_prefix) / "share" / "jupyter")) if p)
    log_path = root / log_name
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", app, "--no-browser", f"--port={port}", "--ip=127.0.0.1",
             f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}", *args]
            + (["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + timeout
            while True:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"{app} did not start: " + log_path.read_text()[-2000:])
                try:
                    urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2)
                    break
                except OSError:
                    time.sleep(0.3)
            yield {"base": base, "token": TOKEN, "log": log_path}
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextlib.contextmanager
def jupyterlab(root: Path, notebook_name: str, timeout: float = 60.0):
    """Start JupyterLab serving ``root``; yields ``{"url", "base"}`` (the notebook's URL, the server's).
    ``EMONB_LAB_ARGS`` (space-separated) adds command-line options, e.g. to turn an extension off."""
    args = ["--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            *os.environ.get("EMONB_LAB_ARGS", "").split()]
    with jupyter_server(root, "jupyterlab", args, timeout) as server:
        yield {"url": f"{server['base']}/lab/tree/{notebook_name}?token={TOKEN}", "base": server["base"]}


def launch(playwright):
    """Debian's chromium, headless."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def run_first_cell(page, tries: int = 4):
    """Run the first cell with Shift+Enter once the kernel is idle; retry when the run was dropped
    (a kernel still connecting on a busy machine ignores the request)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    prompt = ".jp-Notebook .jp-Cell:first-child .jp-InputPrompt"
    for _ in range(tries):
        page.wait_for_function(
            "() => /Idle/.test(document.querySelector('.jp-StatusBar-Widget, #jp-main-statusbar')?.textContent"
            " || document.body.textContent)", timeout=90_000)
        page.click(".jp-Notebook .jp-Cell:first-child .jp-InputArea-editor")
        page.keyboard.press("Shift+Enter")
        try:
            page.wait_for_function(f"() => !/\\[ \\]/.test(document.querySelector('{prompt}').textContent)",
                                   timeout=20_000)
            return
        except PlaywrightTimeout:
            continue  # the run was dropped: try again
    raise AssertionError("the notebook cell never ran (kernel did not accept the execution)")


def write_notebook(root: Path, name: str, source: str) -> Path:
    path = root / name
    path.write_text(json.dumps(notebook(source)))
    return path
