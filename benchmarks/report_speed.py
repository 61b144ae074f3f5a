"""Wall time and peak memory of ``emonb report`` on the embedded sample session.

Two cases, each in a fresh process (peak memory is the largest resident set of the process tree,
the papermill kernel included):

- ``render``: the session store is already analysed (``emonb analyze``), the report only draws;
- ``analyse+render``: the report starts from the raw manifest and runs the analysis itself;
- ``print to PDF``: the rendered report printed by headless Chromium (``eb.report.print_pdf``).

Usage::

    python benchmarks/report_speed.py              # both cases, face analysed at every frame
    python benchmarks/report_speed.py --stride 2
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "emonb" / "data" / "sample" / "session.yaml"


def _run(cmd: list[str]) -> tuple[float, float]:
    """Seconds and peak RSS (MB) of the process tree of ``cmd``, measured in a fresh wrapper process."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--measure", "--", *cmd], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return seconds, float(proc.stdout.strip().splitlines()[-1]) / 1024


def _measure(cmd: list[str]) -> int:
    """Run ``cmd``; print the largest resident set (KiB) among it and its descendants."""
    rc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=sys.stderr).returncode
    print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return rc


def _pdf(html: Path) -> tuple[float, float, int]:
    """Seconds, peak MB and pages of printing ``html`` to PDF (NaN without Chromium)."""
    import re

    code = f"import emonb.report as r; r.print_pdf({str(html)!r})"
    try:
        t, m = _run([sys.executable, "-c", code])
    except SystemExit:
        return float("nan"), float("nan"), 0
    pages = len(re.findall(rb"/Type\s*/Page[^s]", html.with_suffix(".pdf").read_bytes()))
    return t, m, pages


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--measure"]:
        return _measure(argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stride", type=int, default=1)
    args = ap.parse_args(argv)
    exe = [sys.executable, "-m", "emonb.cli"]
    env_note = f"{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f}"
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "sample.zarr"
        t_an, m_an = _run(exe + ["analyze", str(MANIFEST), "--out", str(store), "--stride", str(args.stride), "--quiet"])
        t_r, m_r = _run(exe + ["report", str(store), "--out", str(Path(tmp) / "a.html"), "--quiet"])
        size = (Path(tmp) / "a.html").stat().st_size / 1e6
        t_pdf, m_pdf, pages = _pdf(Path(tmp) / "a.html")
        t_ar, m_ar = _run(exe + ["report", str(MANIFEST), "--out", str(Path(tmp) / "b.html"), "--quiet",
                                 "--stride", str(args.stride)])
    print(f"emonb report on the sample session (20 s of video, 4 s speech, 20 s physio), stride {args.stride}; {env_note}")
    print(f"  emonb analyze (for reference)  {t_an:6.1f} s   peak {m_an:6.0f} MB")
    print(f"  report, render only            {t_r:6.1f} s   peak {m_r:6.0f} MB   HTML {size:.1f} MB")
    print(f"  report, analyse + render       {t_ar:6.1f} s   peak {m_ar:6.0f} MB")
    if t_pdf == t_pdf:
        print(f"  print to PDF (Chromium)        {t_pdf:6.1f} s   peak {m_pdf:6.0f} MB   {pages} A4 pages")
    else:
        print("  print to PDF: no Chromium on the PATH")
    return 0


if __name__ == "__main__":
    sys.exit(main())
