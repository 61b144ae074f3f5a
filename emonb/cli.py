"""The ``emonb`` command line: ``emonb demo``, ``emonb info``, ``emonb align``.

The analysis issues add ``analyze``, ``report`` and ``batch`` as they land.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .errors import EmonbError


def _cmd_demo(args) -> int:
    from .align import align
    from .session import format_summary, open_session, sample_session, save_dataset, save_session

    t_start = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print("emonb demo: the embedded sample session (a composite of real recordings, offline)")
    tree = sample_session()
    print(format_summary(tree))
    grid = align(tree, rate=args.rate)
    store = out / "sample.zarr"
    save_session(tree, store)
    aligned_store = out / "sample_aligned.zarr"
    save_dataset(grid, aligned_store)
    reopened = open_session(store)
    print(f"\naligned onto one {args.rate:g} Hz grid: {grid.sizes['time']} steps from "
          f"{float(grid.time[0]):.2f} to {float(grid.time[-1]):.2f} s, variables: "
          + ", ".join(grid.data_vars))
    cover = {v: f"{100 * float(grid[v].notnull().mean()):.0f}%" for v in grid.data_vars
             if grid[v].dtype.kind == "f"}
    print("coverage of the grid (non-NaN): " + ", ".join(f"{k} {v}" for k, v in cover.items()))
    print(f"session store: {store} ({len(list(reopened.children))} nodes, reopened OK)")
    print(f"aligned grid:  {aligned_store}")
    print(f"done in {time.perf_counter() - t_start:.1f} s")
    return 0


def _cmd_info(args) -> int:
    from .session import format_summary, load_manifest, open_session

    p = Path(args.path)
    tree = load_manifest(p) if p.suffix in (".yaml", ".yml") else open_session(p)
    print(format_summary(tree))
    print("attrs: " + json.dumps({k: v for k, v in tree.attrs.items()}, default=str))
    return 0


def _cmd_align(args) -> int:
    from .align import align
    from .session import load_manifest, open_session

    p = Path(args.path)
    tree = load_manifest(p) if p.suffix in (".yaml", ".yml") else open_session(p)
    grid = align(tree, rate=args.rate, method=args.method)
    from .session import save_dataset

    save_dataset(grid, args.out)
    print(f"wrote {args.out}: {grid.sizes['time']} steps at {args.rate:g} Hz, {len(grid.data_vars)} variables")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from ._version import __version__

    ap = argparse.ArgumentParser(prog="emonb", description="Offline multimodal emotion analysis on one session clock.")
    ap.add_argument("--version", action="version", version=f"emonb {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="run the main job on the embedded sample session")
    d.add_argument("--out", default="emonb-demo", help="output folder (default: ./emonb-demo)")
    d.add_argument("--rate", type=float, default=10.0, help="grid rate in Hz for alignment")
    d.set_defaults(func=_cmd_demo)
    i = sub.add_parser("info", help="summarize a session store or manifest")
    i.add_argument("path")
    i.set_defaults(func=_cmd_info)
    a = sub.add_parser("align", help="align a session onto one grid and write it as zarr")
    a.add_argument("path", help="session store (.zarr) or manifest (.yaml)")
    a.add_argument("--rate", type=float, required=True)
    a.add_argument("--method", default="auto", choices=["auto", "linear", "nearest", "previous"])
    a.add_argument("--out", required=True)
    a.set_defaults(func=_cmd_align)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except EmonbError as exc:
        print(f"emonb: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
