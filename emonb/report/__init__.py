"""Parameterized session reports: a notebook template run by papermill, exported to one HTML file.

>>> eb.run_report("s01.zarr", "s01.html", modalities=["face", "voice"], rate=10)   # doctest: +SKIP

The template (``notebooks/report.ipynb``, shipped inside the package as well) has a cell tagged
``parameters``; :data:`PARAMETERS` lists them with their types and defaults. The HTML opens
offline: charts are rendered to SVG (Altair through vl-convert), images are embedded, code cells are
folded under "show code", and no script is loaded from anywhere. It opens with a summary
(:mod:`emonb.report.summary`); the charts and tables are :mod:`emonb.report.sections`;
:func:`print_pdf` prints it to PDF with a headless Chromium.
"""

from __future__ import annotations

import json
import os
import re
import time
import warnings
from pathlib import Path
from typing import Any

from .._checks import require
from ..errors import EmonbError, EmonbFileError, EmonbValueError, EmonbWarning

__all__ = ["run_report", "run_report_status", "export_html", "print_pdf", "report_template", "PARAMETERS", "ReportError", "remote_scripts"]

_NONE = type(None)
#: name -> (accepted types, default, description). ``session`` is filled from ``src``.
PARAMETERS: dict[str, tuple[tuple[type, ...], Any, str]] = {
    "session": ((str,), "sample", "session store (.zarr), manifest (.yaml), video file, or 'sample'"),
    "modalities": ((list,), ["face", "voice", "physio", "text", "spot"], "analysis steps to cover"),
    "models": ((dict,), {}, "per-step model choice, e.g. {'face': {'expression': 'my-onnx'}}"),
    "fusion": ((str, _NONE), "late", "'late', a saved fitted fusion model, or None"),
    "ensemble": ((str,), "mean", "late-fusion rule: mean, product or max"),
    "rate": ((int, float), 10.0, "fusion grid rate in Hz"),
    "start": ((int, float, _NONE), None, "start of the reported range in session seconds"),
    "end": ((int, float, _NONE), None, "end of the reported range in session seconds"),
    "blur_faces": ((bool,), False, "blur faces in the key frames"),
    "store": ((str, _NONE), None, "reviewer annotation store (.sqlite) to show annotations and agreement"),
    "stride": ((int,), 1, "analyse every n-th video frame"),
    "device": ((str,), "auto", "'auto', 'cpu' or 'cuda'"),
    "key_frames": ((int,), 4, "how many key frames at expression peaks"),
    "save_to": ((str, _NONE), None, "also write the analysed session to this store (.zarr)"),
    "title": ((str, _NONE), None, "report title (default: from the session id, or its recording's name)"),
    "subjects": ((str, list), "main", "whose face charts, AU heatmap and key frames to show: 'main' (most "
                                      "screen time), 'all', or a list of subject names"),
}


class ReportError(EmonbError):
    """A report notebook failed to execute; ``notebook`` is the executed notebook kept for debugging."""

    def __init__(self, message: str, notebook: Path | None = None):
        super().__init__(message)
        self.notebook = notebook


def report_template() -> Path:
    """The default template: inside the installed package, or ``notebooks/report.ipynb`` in a checkout."""
    here = Path(__file__).resolve().parent
    for p in (here / "report.ipynb", here.parent.parent / "notebooks" / "report.ipynb"):
        if p.is_file():
            return p
    raise EmonbFileError(here / "report.ipynb", "the report template is missing from this installation")


def _check_parameters(params: dict, template: Path, known: dict[str, Any]) -> dict:
    out = {}
    for name, value in params.items():
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if isinstance(value, tuple):
            value = list(value)
        if name in PARAMETERS and name in known:
            types = PARAMETERS[name][0]
            ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
            if not ok:
                names = " or ".join("None" if t is _NONE else t.__name__ for t in types)
                raise EmonbValueError(f"report parameter {name!r} must be {names}, got {type(value).__name__} {value!r}")
        if name not in known:
            raise EmonbValueError(f"report parameter {name!r} is not in the parameters cell of {template}; "
                                  f"it has: {', '.join(sorted(known))}")
        out[name] = value
    if "rate" in out and not out["rate"] > 0:
        raise EmonbValueError(f"report parameter 'rate' must be positive, got {out['rate']!r}")
    if "stride" in out and out["stride"] < 1:
        raise EmonbValueError(f"report parameter 'stride' must be at least 1, got {out['stride']!r}")
    s, e = out.get("start"), out.get("end")
    if s is not None and e is not None and not e > s:
        raise EmonbValueError(f"report parameters: end ({e}) must be after start ({s})")
    return out


def _template_parameters(template: Path) -> dict[str, Any]:
    """Names in the template's ``parameters`` cell (a clear error when there is none)."""
    import nbformat

    try:
        nb = nbformat.read(template, as_version=4)
    except Exception as exc:
        raise EmonbFileError(template, f"not a readable notebook: {exc}") from None
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        raise EmonbValueError(f"{template}: the template has no code cell tagged 'parameters'; tag the cell "
                              "that defines the defaults (View > Cell Toolbar > Tags in classic Jupyter, or the "
                              "property inspector in JupyterLab)")
    names = {}
    for line in cells[0].source.splitlines():
        m = re.match(r"^([A-Za-z_]\w*)\s*(?::[^=]*)?=", line)
        if m:
            names[m.group(1)] = None
    return names


def run_report_status(src, output, **options) -> tuple[Path, dict[str, str]]:
    """:func:`run_report`, and the analysis steps that failed in it: ``(html, {step: error})``.

    The report itself lists them at the top; the command line uses this to exit non-zero.
    """
    return _run(src, output, **options)


def run_report(src, output, *, template=None, keep_notebook: bool = False, overwrite: bool = False,
               kernel_name: str = "python3", timeout: float | None = None, progress: bool = True,
               **parameters) -> Path:
    """Run the report notebook on a session and write one self-contained HTML file.

    Parameters
    ----------
    src : xarray.DataTree, str or path
        A session tree in memory (saved to a temporary store for the report's kernel), a session
        store (``.zarr``), manifest (``.yaml``), video file, or ``"sample"``.
    output : str or path
        HTML file to write, with a ``.report.json`` sidecar beside it (parameters, timing, status).
        The notebook is executed in a temporary folder; it is kept beside the HTML (``.ipynb``,
        or ``-2.ipynb``, ... when that name is taken: a file that exists is never touched) when
        ``keep_notebook`` is true or the run fails.
    template : path, optional
        Another notebook with a ``parameters`` cell (default: :func:`report_template`).
    keep_notebook : bool
        Keep the executed notebook after a successful run.
    overwrite : bool
        Replace an HTML report at ``output`` and a store at ``save_to`` that emonb wrote earlier.
        Without it an existing one is refused before anything runs. A file or folder emonb did
        not write (recognised by content: emonb's reports, sidecars and marked stores) is refused
        whatever ``overwrite`` says, with an :class:`~emonb.errors.EmonbFileError` naming it.
    kernel_name : str
        Jupyter kernel that executes the notebook (``python3`` is this Python).
    timeout : float, optional
        Seconds allowed per cell (default: no limit).
    progress : bool
        Papermill's progress bar over cells.
    **parameters
        Values for the template's parameters cell; see :data:`PARAMETERS` (``modalities``, ``models``,
        ``fusion``, ``rate``, ``start``, ``end``, ``blur_faces``, ``store``, ...).

    Returns
    -------
    pathlib.Path
        The HTML file.

    Raises
    ------
    ReportError
        When a cell fails; the message names the cell and the kept notebook.

    A report whose analysis steps failed is still written, with a banner at its top that lists them,
    and an :class:`emonb.errors.EmonbWarning` names them (:func:`run_report_status` returns them).
    """
    html, failed = _run(src, output, template=template, keep_notebook=keep_notebook, overwrite=overwrite,
                        kernel_name=kernel_name, timeout=timeout, progress=progress, **parameters)
    if failed:
        warnings.warn(f"the report {html} was written, but analysis step(s) failed: "
                      + "; ".join(f"{k}: {v}" for k, v in failed.items()), EmonbWarning, stacklevel=2)
    return html


def _run(src, output, **options) -> tuple[Path, dict[str, str]]:
    html, failed, _ = _execute(src, output, **options)
    return html, failed


#: key that marks a ``.report.json`` sidecar as emonb's own
SIDECAR_KEY = "emonb_report"
_OLD_SIDECAR_KEYS = {"html", "parameters", "seconds"}  # sidecars of versions before the key


def is_emonb_report(path) -> bool:
    """Whether ``path`` is an HTML report written by :func:`run_report` (by its content)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8 << 20)
    except OSError:
        return False
    return b"emonb-code" in head or b'name="generator" content="emonb' in head


def is_emonb_sidecar(path) -> bool:
    """Whether ``path`` is a ``.report.json`` written by :func:`run_report` (by its content)."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(doc, dict) and (SIDECAR_KEY in doc or _OLD_SIDECAR_KEYS <= set(doc))


def _keep(executed: Path, output: Path) -> Path | None:
    """Copy the executed notebook beside ``output`` under a name that does not exist yet."""
    from .._output import fresh_path

    if not executed.is_file():
        return None
    kept = fresh_path(output.with_suffix(".ipynb"))
    try:
        kept.write_bytes(executed.read_bytes())
    except BaseException:
        kept.unlink(missing_ok=True)
        raise
    return kept


def _execute(src, output, *, template=None, keep_notebook: bool = False, overwrite: bool = False,
             kernel_name: str = "python3", timeout: float | None = None, progress: bool = True,
             **parameters) -> tuple[Path, dict[str, str], Path | None]:
    """Run the report: ``(html, {failed step: error}, kept notebook or None)``."""
    import shutil
    import tempfile

    from .. import _output

    pm = require("papermill", extra="report", purpose="reports")

    template = Path(template) if template is not None else report_template()
    if not template.is_file():
        raise EmonbFileError(template, "report template not found")
    known = _template_parameters(template)
    tree_src = None
    if _is_tree(src):
        tree_src, src = src, "sample"  # checked as a path below; the saved tree replaces it before the run
    elif not isinstance(src, (str, os.PathLike)):
        raise EmonbValueError(f"run_report needs a session tree, a session path or 'sample', got {type(src).__name__}")
    if not isinstance(overwrite, bool):
        raise EmonbValueError(f"overwrite must be True or False, got {overwrite!r}")
    if not (isinstance(src, str) and src == "sample"):
        sp = Path(src)
        if not sp.exists():
            raise EmonbFileError(sp, "session not found (expected a .zarr store, a .yaml manifest or a video file)")
        src = str(sp.resolve())
    for key in ("store", "save_to"):
        if isinstance(parameters.get(key), (str, os.PathLike)):
            parameters[key] = str(Path(parameters[key]).resolve())
    if isinstance(parameters.get("store"), str) and not Path(parameters["store"]).is_file():
        raise EmonbFileError(Path(parameters["store"]), "annotation store not found")
    params = _check_parameters({"session": src, **parameters}, template, known)
    output = Path(output)
    if output.suffix.lower() not in (".html", ".htm"):
        raise EmonbValueError(f"report output must be an .html file, got {output}")
    # every output is checked before anything runs: nothing emonb did not write is ever replaced
    _output.check_file_target(output, overwrite=overwrite, ours=is_emonb_report, what="an HTML report")
    sidecar = output.with_suffix(".report.json")
    _output.check_file_target(sidecar, overwrite=True, ours=is_emonb_sidecar, what="a report sidecar (.report.json)")
    save_to = params.get("save_to")
    staged = None
    if save_to:
        _output.check_store_target(save_to, overwrite=overwrite)
        staged = _output.staging_path(save_to)  # the notebook writes here; renamed into place after
    _output.ensure_folder(output.parent)
    run_params = dict(params, save_to=str(staged)) if staged else dict(params)
    work = Path(tempfile.mkdtemp(prefix="emonb-report-"))
    executed = work / output.with_suffix(".ipynb").name
    try:
        if tree_src is not None:  # an in-memory session: the notebook's kernel reads it from a store
            from ..session import save_session

            run_params["session"] = str(save_session(tree_src, work / "session.zarr"))
            params["session"] = f"(in-memory session tree {tree_src.attrs.get('session_id', '')})"
        t0 = time.perf_counter()
        try:
            pm.execute_notebook(str(template), str(executed), parameters=run_params, kernel_name=kernel_name,
                                progress_bar=progress, execution_timeout=timeout, cwd=str(output.parent),
                                report_mode=False)
        except pm.PapermillExecutionError as exc:
            _install_saved(staged, save_to, overwrite, quiet=True)
            kept = _keep(executed, output)
            raise ReportError(f"the report notebook failed in cell {exc.exec_count}: {exc.ename}: {exc.evalue}. "
                              f"The executed notebook is kept at {kept}", kept) from None
        except Exception as exc:
            _install_saved(staged, save_to, overwrite, quiet=True)
            if isinstance(exc, EmonbError):
                raise
            kept = _keep(executed, output)
            where = f"; see {kept}" if kept else ""
            raise ReportError(f"the report could not run ({type(exc).__name__}: {exc}){where}", kept) from None
        seconds = time.perf_counter() - t0
        _install_saved(staged, save_to, overwrite)
        status = notebook_status(executed)
        page = work / output.name
        export_html(executed, page, title=params.get("title") or _title(src, tree_src))
        # checked again: a file that appeared meanwhile is not replaced either
        _output.check_file_target(output, overwrite=overwrite, ours=is_emonb_report, what="an HTML report")
        _output.write_file(output, page.read_bytes())
        kept = _keep(executed, output) if keep_notebook else None
        _log(output, params, seconds, status, notebook=kept)
        return output, dict(status.get("failed", {})), kept
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if staged is not None and staged.exists():
            shutil.rmtree(staged, ignore_errors=True)


def _install_saved(staged: Path | None, save_to, overwrite: bool, *, quiet: bool = False) -> None:
    """Rename the store the notebook wrote (``save_to``) into place, when it wrote one.

    ``quiet`` (a failed run): a store that cannot be put in place is a warning, not a second error.
    """
    from .._output import install_store

    if staged is None or not staged.is_dir():
        return
    try:
        install_store(staged, save_to, overwrite=overwrite)
    except EmonbError as exc:
        if not quiet:
            raise
        warnings.warn(f"the analysed session was not saved: {exc}", EmonbWarning, stacklevel=4)


def _is_tree(src) -> bool:
    import xarray as xr

    return isinstance(src, xr.DataTree)


def _title(src, tree=None) -> str:
    """The page title: from the session (its id, or its recording's folder and name when the id is
    as generic as ``session``), else from the source's name."""
    from .sections import GENERIC_IDS, report_heading

    if tree is not None:
        return report_heading(tree)
    if src == "sample":
        return "Emotion analysis report: the emonb sample session"
    p = Path(src)
    name = p.stem
    if name.lower() in GENERIC_IDS and p.parent.name:
        name = f"{p.parent.name}/{p.name}"
    return f"Emotion analysis report: {name}"


def notebook_status(notebook) -> dict:
    """What the executed report notebook said about the analysis: ``{"failed": {...}, "skipped": {...}}``."""
    import nbformat

    from .sections import STATUS_MIME

    nb = nbformat.read(Path(notebook), as_version=4)
    for cell in nb.cells:
        for o in cell.get("outputs", []) if cell.cell_type == "code" else []:
            data = o.get("data", {})
            if STATUS_MIME in data:
                value = data[STATUS_MIME]
                return json.loads(value) if isinstance(value, str) else dict(value)
    return {}


def _log(output: Path, params: dict, seconds: float, status: dict, notebook: Path | None = None):
    """Write the ``.report.json`` sidecar, unless a file emonb did not write took its name meanwhile."""
    from .._output import write_file
    from .._version import __version__

    meta = output.with_suffix(".report.json")
    if meta.exists() and not is_emonb_sidecar(meta):
        warnings.warn(f"{meta} is not a report sidecar emonb wrote; it was left as it is and no sidecar was "
                      "written", EmonbWarning, stacklevel=3)
        return
    write_file(meta, json.dumps({SIDECAR_KEY: __version__, "html": output.name, "parameters": params,
                                 "seconds": round(seconds, 2), "notebook": notebook.name if notebook else None,
                                 "failed_steps": status.get("failed", {}),
                                 "skipped_steps": status.get("skipped", {})}, indent=1, default=str))


def export_html(notebook, output, *, title: str | None = None) -> Path:
    """Export an executed notebook to one offline HTML file (code folded, no remote scripts)."""
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    nb = nbformat.read(Path(notebook), as_version=4)
    from .sections import STATUS_MIME

    for cell in nb.cells:  # native libraries' log lines and warnings: kept in the notebook, not the report
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.get("outputs", [])
                            if not (o.get("output_type") == "stream" and o.get("name") == "stderr")
                            and STATUS_MIME not in o.get("data", {})]
    dirs = _template_dirs()
    exporter = HTMLExporter(extra_template_basedirs=dirs, extra_template_paths=dirs[1:],
                            template_name="emonb_report")
    exporter.embed_images = True
    # cells tagged "remove-cell" (the template's own introduction and default parameters) stay out
    exporter.register_preprocessor(TagRemovePreprocessor(remove_cell_tags={"remove-cell"}, enabled=True), enabled=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title or Path(output).stem}})
    remote = remote_scripts(body)
    if remote:  # never ship a report that would fetch code when opened
        body = re.sub(r"<script[^>]*\bsrc\s*=\s*[\"']?(https?:)?//[^>]*>\s*</script>", "", body, flags=re.I)
    Path(output).write_text(body, encoding="utf-8")
    return Path(output)


def _template_dirs() -> list[str]:
    """emonb's report template, plus nbconvert's own templates where they were installed.

    nbconvert looks for its base templates (``lab``) under the Jupyter data paths of the running
    prefix; a virtual environment made with ``--system-site-packages`` has them only in the base
    prefix, so the folder the nbconvert package installed them to is added as well.
    """
    from importlib import metadata

    dirs = [str(Path(__file__).parent / "templates")]
    try:
        dist = metadata.distribution("nbconvert")
    except metadata.PackageNotFoundError:  # pragma: no cover - nbconvert is required above
        return dirs
    for f in dist.files or []:
        if str(f).endswith("templates/lab/index.html.j2"):
            dirs.append(str(Path(dist.locate_file(f)).resolve().parents[1]))
            break
    return dirs


def remote_scripts(html: str) -> list[str]:
    """``src`` of every ``<script>`` in ``html`` that loads from the network (should be empty)."""
    return re.findall(r"<script[^>]*\bsrc\s*=\s*[\"']?((?:https?:)?//[^\"'\s>]+)", html, flags=re.I)


def _is_printed_pdf(path) -> bool:
    """A PDF that a Chromium print wrote (Skia is its PDF producer), as :func:`print_pdf` does."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return False
    return data[:5] == b"%PDF-" and b"Skia/PDF" in data


_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def print_pdf(html, pdf=None, *, browser: str | None = None, overwrite: bool = False, timeout: float = 120.0) -> Path:
    """Print a report to PDF with a headless Chromium (the page's own print stylesheet applies).

    Parameters
    ----------
    html : str or path
        An HTML report written by :func:`run_report`.
    pdf : str or path, optional
        The PDF to write (default: beside ``html``, ``.pdf``). An existing file is replaced only
        with ``overwrite=True``.
    browser : str, optional
        Chromium or Chrome executable (default: the first of ``chromium``, ``chromium-browser``,
        ``google-chrome`` on the PATH).

    Raises
    ------
    EmonbDependencyError
        No Chromium-like browser is installed.
    """
    import shutil
    import subprocess
    import tempfile

    from .._output import check_file_target, write_file
    from ..errors import EmonbDependencyError

    html = Path(html)
    if not html.is_file():
        raise EmonbFileError(html, "report not found")
    pdf = Path(pdf) if pdf is not None else html.with_suffix(".pdf")
    if pdf.suffix.lower() != ".pdf":
        raise EmonbValueError(f"the PDF output must end in .pdf, got {pdf}")
    check_file_target(pdf, overwrite=overwrite, ours=_is_printed_pdf, what="a PDF")
    exe = browser or next((b for b in _BROWSERS if shutil.which(b)), None)
    if exe is None or shutil.which(exe) is None:
        raise EmonbDependencyError(f"printing a report to PDF needs Chromium or Chrome on the PATH "
                                   f"(looked for {', '.join(_BROWSERS)}); or open {html} and print it from a browser")
    with tempfile.TemporaryDirectory(prefix="emonb-pdf-") as tmp:
        out = Path(tmp) / "report.pdf"
        cmd = [shutil.which(exe), "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
               f"--user-data-dir={tmp}/profile", f"--print-to-pdf={out}", html.resolve().as_uri()]
        try:
            res = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise EmonbError(f"printing {html} to PDF took longer than {timeout:g} s") from None
        if not out.is_file() or out.read_bytes()[:5] != b"%PDF-":
            raise EmonbError(f"{exe} did not print {html} to PDF (exit {res.returncode}): "
                             f"{res.stderr.decode(errors='replace')[-300:]}")
        write_file(pdf, out.read_bytes())
    return pdf
