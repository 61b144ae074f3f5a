"""The ``emonb`` command line: ``demo``, ``analyze``, ``report``, ``batch``, ``info``, ``align``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .errors import EmonbError, EmonbValueError


def _result_lines(tree) -> list[str]:
    """Short human-readable lines about the analysis results in a session."""
    import numpy as np

    lines = []
    if "face" in tree.children:
        f = tree["face"].to_dataset()
        if "face_box" in f and "time" in f.dims:
            from .subjects import subject_summary

            lines += [f"  face: {line}" for line in subject_summary(f)]
            if "face_emotion" in f:
                lines.append(f"  face: expression model {f.attrs.get('expression_model') or f.attrs.get('model', '?')}")
    if "voice" in tree.children:
        v = tree["voice"].to_dataset()
        if "voice_activity" in v:
            lines.append(f"  voice: speech in {100 * float((v['voice_activity'] > 0.5).mean()):.0f}% of the audio")
        if "voice_emotion" in v:
            em = v["voice_emotion"].mean("time", skipna=True)
            if np.isfinite(em.values).any():
                lines.append(f"  voice: highest mean emotion {str(em.emotion[int(em.argmax(dim='emotion'))].values)} "
                             f"{float(em.max()):.2f} (model {v.attrs.get('model', '?')})")
    if "physio_features" in tree.children:
        p = tree["physio_features"].to_dataset()
        for var, unit in (("ecg_rate", "bpm"), ("rsp_rate", "breaths/min"), ("eda_tonic", "uS")):
            if var in p and np.isfinite(p[var].values).any():
                lines.append(f"  physio: median {var} {float(p[var].median()):.1f} {unit}")
        if "physio_arousal" in p:
            lines.append(f"  physio: arousal range {float(p['physio_arousal'].min()):+.2f} .. "
                         f"{float(p['physio_arousal'].max()):+.2f}")
    if "spots" in tree.children:
        sp = tree["spots"].to_dataset()
        kinds = [str(k) for k in sp["kind"].values] if "kind" in sp else []
        lines.append(f"  spotting: {kinds.count('micro')} micro- and {kinds.count('macro')} macro-expression "
                     f"candidate(s) for review")
    if "text" in tree.children:
        t = tree["text"].to_dataset()
        lines.append(f"  text: {t.sizes.get('segment', 0)} transcript segment(s) scored")
    return lines


def _analysis_status(tree) -> list[str]:
    """One line per analysis step: ok with its time and node, FAILED with the reason, or skipped."""
    from .analysis import analysis_record

    out = []
    for step, r in analysis_record(tree).items():
        status = r.get("status")
        if status == "ok":
            out.append(f"  {step:<7} ok      {r.get('seconds', 0):6.1f} s  -> {r.get('node')}")
        elif status == "failed":
            out.append(f"  {step:<7} FAILED  {r.get('error', '')}")
        else:
            out.append(f"  {step:<7} {status:<7} {r.get('reason', '')}")
    return out


def _failure_summary(tree, where: str) -> int:
    """Print a FAILED line for the failed steps and return the exit status (1 if any failed)."""
    from .analysis import failed_steps

    failed = failed_steps(tree)
    if not failed:
        return 0
    print(f"FAILED: {len(failed)} analysis step(s) failed: {', '.join(failed)}. "
          f"The steps that worked are written to {where}.", file=sys.stderr)
    return 1


def _add_fusion(tree, *, rate: float):
    """Late fusion of whatever results the session has, as its ``fused`` node, with a printed line."""
    import numpy as np

    from .analysis import add_fusion, analysis_record

    tree = add_fusion(tree, method="late", rate=rate)
    if "fused" not in tree.children:
        r = analysis_record(tree).get("fusion", {})
        print(f"  fusion  {'FAILED ' if r.get('status') == 'failed' else 'skipped'} "
              f"{r.get('error') or r.get('reason', '')}")
        return tree
    fused = tree["fused"].to_dataset()
    w = fused["modality_weight"].mean("time", skipna=True)
    weights = ", ".join(f"{str(m)} {float(w.sel(modality=m)):.2f}" for m in w.modality.values)
    em = fused["fused_emotion"].mean("time", skipna=True)
    top = str(em.emotion[int(np.nanargmax(em.values))].values) if np.isfinite(em.values).any() else "-"
    print(f"  fused (late): mean modality weights {weights}; highest mean emotion {top} "
          f"{float(np.nanmax(em.values)) if np.isfinite(em.values).any() else float('nan'):.2f}")
    return tree


def _cmd_demo(args) -> int:
    from ._output import check_store_target, ensure_folder
    from .alignment import align
    from .analysis import analyze
    from .session import format_summary, open_session, sample_session, save_dataset, save_session

    t_start = time.perf_counter()
    out = Path(args.out)
    store = out / "sample.zarr"
    aligned_store = out / "sample_aligned.zarr"
    # the demo's outputs are its own: a store an earlier demo wrote is replaced, anything else refused
    for target in (store, aligned_store):
        check_store_target(target, overwrite=True)
    if args.modalities and not args.no_report:
        from ._output import check_file_target
        from .report import is_emonb_report

        check_file_target(out / "sample_report.html", overwrite=True, ours=is_emonb_report, what="an HTML report")
    ensure_folder(out)
    print("emonb demo: the embedded sample session (a composite of real recordings, offline)")
    tree = sample_session()
    print(format_summary(tree))
    if args.modalities:
        mods = [m.strip() for m in args.modalities.split(",") if m.strip()]
        print(f"\nanalysing: {', '.join(mods)}")
        tree = analyze(tree, mods, options={"face": {"stride": args.stride}}, progress=not args.quiet)
        print("\n".join(_analysis_status(tree)))
        print("\n".join(_result_lines(tree)))
        tree = _add_fusion(tree, rate=args.rate)
    grid = align(tree, rate=args.rate)
    save_session(tree, store, overwrite=True)
    save_dataset(grid, aligned_store, overwrite=True)
    reopened = open_session(store)
    print(f"\naligned onto one {args.rate:g} Hz grid: {grid.sizes['time']} steps from "
          f"{float(grid.time[0]):.2f} to {float(grid.time[-1]):.2f} s, {len(grid.data_vars)} variables")
    raw = [v for v in ("video_frame_index", "audio_rms", "ecg", "eda", "rsp", "photosensor",
                       "face_valence", "voice_arousal", "physio_arousal") if v in grid]
    cover = {v: f"{100 * float(grid[v].notnull().mean()):.0f}%" for v in raw}
    print("coverage of the grid (non-NaN): " + ", ".join(f"{k} {v}" for k, v in cover.items()))
    print(f"session store: {store} ({len(list(reopened.children))} nodes, reopened OK)")
    print(f"aligned grid:  {aligned_store}")
    if args.modalities and not args.no_report:
        from .analysis import failed_steps
        from .report import run_report_status

        t_report = time.perf_counter()
        html, report_failed = run_report_status(store, out / "sample_report.html", progress=not args.quiet,
                                                overwrite=True, rate=args.rate, modalities=mods,
                                                stride=args.stride)
        print(f"report:        {html.resolve()} ({html.stat().st_size / 1e6:.1f} MB, "
              f"{time.perf_counter() - t_report:.1f} s; open it in any browser, it needs no network)")
        if report_failed and not failed_steps(tree):
            print(f"FAILED: in the report, analysis step(s) failed: {', '.join(report_failed)}", file=sys.stderr)
            return 1
    print(f"done in {time.perf_counter() - t_start:.1f} s")
    return _failure_summary(tree, str(out))


def _cmd_analyze(args) -> int:
    from ._output import check_store_target
    from .analysis import analyze
    from .session import format_summary, open_source, save_session

    check_store_target(args.out, overwrite=args.overwrite)  # before hours of analysis, not after
    # a manifest or store carries its own files and offsets; the options describe a bare video
    load_options = {"physio": args.physio, "transcript": args.transcript,
                    "offsets": {"physio": args.physio_offset} if args.physio_offset else {},
                    "physio_options": {"sampling_rate": args.physio_rate} if args.physio_rate else None}
    if args.audio:
        load_options["audio"] = args.audio  # default: the video's own track when it has one
    tree = open_source(Path(args.input), **load_options)
    mods = [m.strip() for m in args.modalities.split(",") if m.strip()]
    tree = analyze(tree, mods, device=args.device, options={"face": {"stride": args.stride}},
                   progress=not args.quiet)
    save_session(tree, args.out, overwrite=args.overwrite)
    print(format_summary(tree))
    print("\n".join(_analysis_status(tree)))
    print("\n".join(_result_lines(tree)))
    print(f"session store: {args.out}")
    return _failure_summary(tree, args.out)


def _cmd_report(args) -> int:
    from .report import _execute

    params = {}
    for item in args.param or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise EmonbValueError(f"--param needs name=value, got {item!r}")
        try:
            params[name.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[name.strip()] = value
    for key in ("rate", "start", "end", "store", "stride", "fusion", "device", "title", "save_to"):
        value = getattr(args, key)
        if value is not None:
            params[key] = value
    if args.modalities is not None:
        params["modalities"] = [m.strip() for m in args.modalities.split(",") if m.strip()]
    if args.fusion == "none":
        params["fusion"] = None
    if args.blur_faces:
        params["blur_faces"] = True
    if args.subjects:
        params["subjects"] = args.subjects if args.subjects in ("main", "all") else \
            [s.strip() for s in args.subjects.split(",") if s.strip()]
    out = Path(args.out) if args.out else Path(str(Path(args.session).with_suffix("")) + ".html")
    t0 = time.perf_counter()
    html, failed, notebook = _execute(args.session, out, template=args.template, keep_notebook=args.keep_notebook,
                                      overwrite=args.overwrite, progress=not args.quiet, **params)
    print(f"report: {html} ({html.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f} s")
    if args.pdf:
        from .report import print_pdf

        print(f"pdf: {print_pdf(html, None if args.pdf == 'auto' else args.pdf, overwrite=args.overwrite)}")
    if notebook is not None:
        print(f"executed notebook: {notebook}")
    if failed:
        print(f"FAILED: {len(failed)} analysis step(s) failed: {', '.join(failed)}; the report lists them at "
              "the top", file=sys.stderr)
        return 1
    return 0


def _cmd_info(args) -> int:
    from .session import format_summary, open_source

    tree = open_source(Path(args.path))
    print(format_summary(tree))
    print("attrs: " + json.dumps({k: v for k, v in tree.attrs.items()}, default=str))
    return 0


def _cmd_align(args) -> int:
    from ._output import check_store_target
    from .alignment import align
    from .session import open_source, save_dataset

    check_store_target(args.out, overwrite=args.overwrite)
    tree = open_source(Path(args.path))
    grid = align(tree, rate=args.rate, method=args.method)
    save_dataset(grid, args.out, overwrite=args.overwrite)
    print(f"wrote {args.out}: {grid.sizes['time']} steps at {args.rate:g} Hz, {len(grid.data_vars)} variables")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from ._version import __version__

    ap = argparse.ArgumentParser(prog="emonb", description="Offline multimodal emotion analysis on one session clock.")
    ap.add_argument("--version", action="version", version=f"emonb {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    d = sub.add_parser("demo", help="run the main job on the embedded sample session")
    d.add_argument("--out", default="emonb-demo",
                   help="output folder (default: ./emonb-demo); a re-run replaces the demo's own outputs there")
    d.add_argument("--rate", type=float, default=10.0, help="grid rate in Hz for alignment")
    d.add_argument("--modalities", default="face,voice,physio,text,spot",
                   help="analysis steps, comma-separated ('' for loading and alignment only)")
    d.add_argument("--stride", type=int, default=1, help="analyse every n-th video frame")
    d.add_argument("--quiet", action="store_true", help="no progress bars")
    d.add_argument("--no-report", action="store_true", help="skip the HTML report")
    d.set_defaults(func=_cmd_demo)
    z = sub.add_parser("analyze", help="analyse a recording (or a session manifest) into a session store")
    z.add_argument("input", help="video file or session manifest (.yaml)")
    z.add_argument("--audio", help="separate audio file (default: the video's own track)")
    z.add_argument("--physio", help="physio recording")
    z.add_argument("--physio-rate", type=float, help="physio sampling rate in Hz when the file has none")
    z.add_argument("--physio-offset", type=float, default=0.0, help="seconds added to the physio clock")
    z.add_argument("--transcript", help="transcript (.vtt, .srt, .csv)")
    z.add_argument("--modalities", default="face,voice,physio,text,spot",
                   help="analysis steps, comma-separated, of face, voice, physio, text, spot "
                        "(default: all; a step without its input is skipped)")
    z.add_argument("--stride", type=int, default=1, help="analyse every n-th video frame (default 1: all)")
    z.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="where the neural networks run (default auto: a GPU when there is one)")
    z.add_argument("--quiet", action="store_true", help="no progress bars")
    _store_out_flags(z, "session store")
    _allow_outside_flag(z)
    z.set_defaults(func=_cmd_analyze)
    r = sub.add_parser("report", help="run the report notebook on a session and write one offline HTML file")
    r.add_argument("session", help="session store (.zarr), manifest (.yaml), video file, or 'sample'")
    r.add_argument("--out", help="HTML file (default: beside the session, .html), with a .report.json beside it")
    r.add_argument("--modalities", help="analysis steps to cover, comma-separated (default: all)")
    r.add_argument("--rate", type=float, help="fusion grid rate in Hz (default 10)")
    r.add_argument("--start", type=float, help="start of the reported range (s)")
    r.add_argument("--end", type=float, help="end of the reported range (s)")
    r.add_argument("--fusion", help="'late' (default), 'none', or a saved fitted fusion model")
    r.add_argument("--blur-faces", action="store_true", help="blur faces in the key frames")
    r.add_argument("--store", help="reviewer annotation store (.sqlite)")
    r.add_argument("--stride", type=int, help="analyse every n-th video frame when analysis is needed")
    r.add_argument("--device", help="'auto', 'cpu' or 'cuda'")
    r.add_argument("--title", help="report title")
    r.add_argument("--subjects", help="whose face charts, AU heatmap and key frames: 'main' (default), 'all', "
                                      "or subject names, comma-separated")
    r.add_argument("--pdf", nargs="?", const="auto", help="also print the report to PDF with headless Chromium "
                                                          "(default: beside the HTML, .pdf)")
    r.add_argument("--save-to", dest="save_to", help="also write the analysed session to this store (.zarr)")
    r.add_argument("--template", help="another report notebook with a 'parameters' cell")
    r.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="any template parameter (VALUE as JSON, else a string); repeatable")
    r.add_argument("--keep-notebook", action="store_true",
                   help="keep the executed notebook beside the HTML (.ipynb; -2.ipynb, ... when that name is taken)")
    r.add_argument("--overwrite", action="store_true",
                   help="replace an HTML report and a --save-to store that emonb wrote earlier (files and folders "
                        "emonb did not write are never replaced)")
    r.add_argument("--quiet", action="store_true", help="no progress bars")
    _allow_outside_flag(r)
    r.set_defaults(func=_cmd_report)
    from .batch import add_batch_command  # light: dask loads only when a batch runs

    add_batch_command(sub)
    i = sub.add_parser("info", help="summarize a session store or manifest")
    i.add_argument("path", help="session store (.zarr), manifest (.yaml) or media file")
    _allow_outside_flag(i)
    i.set_defaults(func=_cmd_info)
    a = sub.add_parser("align", help="align a session onto one grid and write it as zarr")
    a.add_argument("path", help="session store (.zarr) or manifest (.yaml)")
    a.add_argument("--rate", type=float, required=True, help="grid rate in Hz")
    a.add_argument("--method", default="auto", choices=["auto", "linear", "nearest", "previous"],
                   help="resampling onto the grid (default auto: by each variable's kind)")
    _store_out_flags(a, "aligned grid store")
    _allow_outside_flag(a)
    a.set_defaults(func=_cmd_align)
    return ap


#: per command, how the Python API's wording in an error message reads on the command line
_OUTSIDE = {"pass allow_outside=True to eb.load_manifest, or set": "pass --allow-outside, or set"}
CLI_WORDS = {
    "analyze": {**_OUTSIDE, "sampling_rate=... (Hz)": "--physio-rate HZ", "sampling_rate=...": "--physio-rate HZ",
                "sampling_rate=": "--physio-rate HZ", "stride=": "--stride", "device=": "--device",
                "overwrite=True": "--overwrite"},
    "report": {**_OUTSIDE, "stride=": "--stride", "device=": "--device", "start=": "--start", "end=": "--end",
               "overwrite=True": "--overwrite"},
    "demo": {"stride=": "--stride"},
    "align": {**_OUTSIDE, "rate=": "--rate", "method=": "--method", "overwrite=True": "--overwrite"},
    "info": dict(_OUTSIDE),
}


def cli_message(command: str, message: str) -> str:
    """An error message with the API's argument names replaced by the command's flags."""
    for api, flag in CLI_WORDS.get(command, {}).items():
        message = message.replace(api, flag)
    return message


def _store_out_flags(parser, what: str):
    parser.add_argument("--out", required=True, help=f"{what} to write (.zarr): a new path, or a store emonb "
                                                     "wrote (replaced only with --overwrite)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the store at --out if emonb wrote it (a file or folder emonb did not write "
                             "is never replaced)")


def _allow_outside_flag(parser):
    parser.add_argument("--allow-outside", action="store_true",
                        help="let a manifest name files outside its own folder (only for manifests you trust)")


def main(argv=None) -> int:
    import os

    args = build_parser().parse_args(argv)
    if getattr(args, "allow_outside", False):  # report kernels and batch workers inherit it
        from .session import ALLOW_OUTSIDE_ENV

        os.environ[ALLOW_OUTSIDE_ENV] = "1"
    try:
        return int(args.func(args) or 0)
    except EmonbError as exc:
        print(f"emonb: error: {cli_message(args.command, str(exc))}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
