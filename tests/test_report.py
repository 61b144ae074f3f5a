"""Reports: parameters, the papermill run, the offline HTML, failures that keep the executed notebook."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

import emonb as eb
from emonb.errors import EmonbFileError, EmonbValueError
from emonb.report import PARAMETERS, ReportError, _template_parameters, remote_scripts, report_template

pytest.importorskip("papermill")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _template(tmp_path, cells, *, tag=True) -> Path:
    nb = nbformat.v4.new_notebook()
    first = nbformat.v4.new_code_cell("session = 'sample'\nvalue = 1")
    if tag:
        first.metadata["tags"] = ["parameters"]
    nb.cells = [first] + [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    p = tmp_path / "tpl.ipynb"
    nbformat.write(nb, p)
    return p


def test_default_template_declares_every_documented_parameter():
    names = _template_parameters(report_template())
    assert set(PARAMETERS) == set(names)


@pytest.mark.parametrize("name, value, match", [
    ("rate", "ten", "'rate' must be int or float"),
    ("rate", 0, "'rate' must be positive"),
    ("modalities", "face", "'modalities' must be list"),
    ("blur_faces", 1, "'blur_faces' must be bool"),
    ("stride", 0, "at least 1"),
    ("bogus", 1, "not in the parameters cell"),
])
def test_wrong_parameters_are_refused_before_running(tmp_path, name, value, match):
    with pytest.raises(EmonbValueError, match=match):
        eb.run_report("sample", tmp_path / "r.html", **{name: value})
    assert not (tmp_path / "r.ipynb").exists()


def test_bad_paths_and_templates(tmp_path):
    with pytest.raises(EmonbFileError, match="session not found"):
        eb.run_report(tmp_path / "missing.zarr", tmp_path / "r.html")
    with pytest.raises(EmonbFileError, match="annotation store not found"):
        eb.run_report("sample", tmp_path / "r.html", store=str(tmp_path / "none.sqlite"))
    with pytest.raises(EmonbValueError, match="no code cell tagged 'parameters'"):
        eb.run_report("sample", tmp_path / "r.html", template=_template(tmp_path, ["x = 1"], tag=False))
    with pytest.raises(EmonbValueError, match=r"\.html"):
        eb.run_report("sample", tmp_path / "r.pdf")
    with pytest.raises(EmonbValueError, match="end .* after start"):
        eb.run_report("sample", tmp_path / "r.html", start=5.0, end=2.0)


def test_failed_report_keeps_the_executed_notebook(tmp_path):
    tpl = _template(tmp_path, ["assert value == 7", "raise RuntimeError('broken on purpose: ' + str(value))"])
    with pytest.raises(ReportError, match="broken on purpose: 7") as info:
        eb.run_report("sample", tmp_path / "out" / "r.html", template=tpl, value=7, progress=False)
    kept = info.value.notebook
    assert kept is not None and kept.exists()
    nb = nbformat.read(kept, as_version=4)
    assert any(o.get("ename") == "RuntimeError" for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert not (tmp_path / "out" / "r.html").exists()


def test_remote_script_detection():
    assert remote_scripts('<script src="https://cdn.example/x.js"></script><script>var a;</script>') == \
        ["https://cdn.example/x.js"]
    assert remote_scripts("<script src='//cdn.example/y.js'></script>") == ["//cdn.example/y.js"]
    assert remote_scripts('<script src="local.js"></script>') == []


def _visible(html: str) -> str:
    """The report as a reader sees it: without the folded code cells."""
    return re.sub(r"<details class=\"emonb-code\">.*?</details>", "", html, flags=re.S)


def _annotated_store(path: Path) -> Path:
    store = eb.review.AnnotationStore(path, session="sample")
    for reviewer, shift in (("dr_lee", 0.0), ("dr_kim", 0.3)):
        store.add(9.5 + shift, 14.0, label="happiness", reviewer=reviewer, confidence=0.9)
        store.add(1.0, 3.0 + shift, label="sadness", reviewer=reviewer, note="looks down")
    store.close()
    return path


def test_report_on_the_sample_session_is_self_contained(tmp_path):
    """The full path a user takes: analysis inside the report, annotations, blurred key frames."""
    store = _annotated_store(tmp_path / "reviews.sqlite")
    out = eb.run_report("sample", tmp_path / "report.html", modalities=["face", "voice", "physio", "text"],
                        stride=4, blur_faces=True, store=str(store), save_to=str(tmp_path / "s.zarr"),
                        progress=False)
    html = out.read_text()
    assert remote_scripts(html) == []
    assert not re.search(r"<link[^>]+href=[\"']https?://", html)
    assert "Traceback" not in html
    for heading in ("Session and provenance", "Emotions over time", "Valence and arousal", "Facial action units",
                    "Key frames", "Voice", "Physiology", "Reviewer annotations", "Limitations"):
        assert heading in html
    assert html.count("data:image/svg+xml") >= 5          # charts rendered to SVG, embedded
    assert "data:image/jpeg" in html                      # key frames embedded
    shown = _visible(html)
    assert "Faces are blurred" in shown and "No video frames" not in shown
    assert "dr_kim" in shown and "kappa" in shown         # annotations and agreement
    face_model = eb.open_session(tmp_path / "s.zarr")["face"].attrs["expression_model"]
    assert face_model in html and "CC BY-NC-SA" in html   # provenance and licenses
    assert "probability about an expression" in html
    assert "show code" in html and "<details" in html     # code folded
    assert "session = " not in html.split("show code")[0]  # the template's defaults cell is not shown
    assert (tmp_path / "s.zarr").exists()
    assert not (tmp_path / "report.ipynb").exists()       # removed after a successful run
    assert (tmp_path / "report.report.json").exists()


def test_report_on_a_store_without_video_or_face(tmp_path):
    tree = eb.analyze(eb.sample_session(), ["physio", "text"], progress=False)
    nodes = {n: tree[n].to_dataset(inherit=False) for n in tree.children if n != "video"}
    from emonb.session import make_tree

    store = eb.save_session(make_tree(nodes, tree.attrs), tmp_path / "physio_only.zarr")
    out = eb.run_report(store, tmp_path / "p.html", modalities=["physio", "text"], keep_notebook=True,
                        progress=False)
    html = out.read_text()
    shown = _visible(html)
    assert "No face found, or no face analysis" in shown
    assert "No video frames with a face" in shown
    assert "No emotion probabilities in this session" in shown   # physio and text carry none
    assert "Physiology" in html and html.count("data:image/svg+xml") >= 2  # physio and valence/arousal charts
    assert (tmp_path / "p.ipynb").exists()
    assert remote_scripts(html) == []


def test_cli_report_and_errors(tmp_path, capsys):
    from emonb.cli import main

    assert main(["report", str(tmp_path / "nope.zarr")]) == 2
    assert "session not found" in capsys.readouterr().err
    assert main(["report", "sample", "--param", "rate=\"x\"", "--out", str(tmp_path / "x.html")]) == 2
    assert "'rate' must be int or float" in capsys.readouterr().err


def test_key_frames_blur_removes_facial_detail():
    """Blurred key frames keep the label but leave no fine detail inside the face box."""
    import io

    import numpy as np
    import xarray as xr
    from PIL import Image

    from emonb.report import sections as rs
    from emonb.schema import EMOTIONS
    from emonb.session import make_tree

    video = eb.load_video(eb.session.SAMPLE_DIR / "video.mp4")
    times = video["time"].values[::40]
    emo = np.full((times.size, 1, len(EMOTIONS)), 0.05)
    emo[3, 0, EMOTIONS.index("happiness")] = 0.9          # one clear peak
    box = np.tile([[[330.0, 60.0, 470.0, 240.0]]], (times.size, 1, 1))
    face = xr.Dataset({"face_emotion": (("time", "face", "emotion"), emo),
                       "face_box": (("time", "face", "box_coord"), box)},
                      coords={"time": times, "face": [0], "emotion": list(EMOTIONS)})
    tree = make_tree({"video": video, "face": face}, {"session_id": "t"})

    def detail(blur):
        jpg, table = rs.key_frames(tree, n=1, blur=blur, height=360)
        assert table["emotion"].tolist() == ["happiness"] and table["time_s"][0] == pytest.approx(times[3])
        img = np.asarray(Image.open(io.BytesIO(jpg)).convert("L"), float)[70:230, 345:455]  # inside the box lines
        return np.abs(np.diff(img, axis=0)).mean() + np.abs(np.diff(img, axis=1)).mean()

    sharp, blurred = detail(False), detail(True)
    assert blurred < 0.3 * sharp
    empty = make_tree({"video": video}, {"session_id": "t"})
    assert rs.key_frames(empty)[0] is None


def test_failed_steps_open_the_report_with_a_banner_and_fail_the_cli(tmp_path, capsys):
    """A step that fails in the report is listed at the top; its section says it failed, not 'no recording'."""
    import json

    from emonb.cli import main
    from emonb.errors import EmonbWarning

    store = eb.save_session(eb.sample_session(), tmp_path / "s.zarr")
    with pytest.warns(EmonbWarning, match="analysis step"):
        out = eb.run_report(store, tmp_path / "r.html", modalities=["voice", "text"], fusion=None,
                            models={"voice": "no-such-voice-model"}, progress=False)
    shown = _visible(out.read_text())
    top = shown.index('<div class="emonb-banner emonb-banner-failed" role="alert">')
    assert top < shown.index("Session and provenance")          # before every section
    assert "Analysis incomplete: 1 step(s) failed" in shown
    assert "voice</b>: analysis failed: EmonbValueError: unknown model 'no-such-voice-model'" in shown
    section = shown[shown.index('id="Voice"'):shown.index('id="Physiology"')]
    assert "voice analysis failed" in section and "No voice analysis" not in section
    assert json.loads((tmp_path / "r.report.json").read_text())["failed_steps"].keys() == {"voice"}
    assert "application/vnd.emonb" not in shown                  # the status output stays out of the page

    code = main(["report", str(store), "--out", str(tmp_path / "c.html"), "--modalities", "text",
                 "--fusion", "none", "--param", 'models={"text": "nope"}', "--quiet"])
    assert code == 1 and "FAILED: 1 analysis step(s) failed: text" in capsys.readouterr().err
    assert 'class="emonb-banner emonb-banner-failed"' in (tmp_path / "c.html").read_text()


def test_report_without_failures_has_no_failure_banner(tmp_path):
    store = eb.save_session(eb.sample_session(), tmp_path / "s.zarr")
    html, failed = eb.report.run_report_status(store, tmp_path / "r.html", modalities=["text"], fusion=None,
                                               progress=False)
    assert failed == {} and 'class="emonb-banner' not in html.read_text()


def test_report_refuses_a_pickle_fusion_model_before_it_runs(tmp_path):
    """``--fusion FILE`` / ``fusion=FILE``: a pickle is refused with the file's name, its payload never runs."""
    import joblib

    marker = tmp_path / "PWNED"

    class Payload:
        def __reduce__(self):
            return (exec, (f"open({str(marker)!r}, 'w').write('pwned')",))

    evil = tmp_path / "evil.joblib"
    joblib.dump(Payload(), evil)
    with pytest.raises(ReportError, match=r"EmonbFileError: .*evil\.joblib: is a pickle"):
        eb.run_report("sample", tmp_path / "r.html", modalities=[], fusion=str(evil), progress=False)
    assert not marker.exists()
    assert not (tmp_path / "r.html").exists()
    # a model in the safe format is used
    from emonb.fusion.simulate import simulate_session

    model = eb.fusion.train([simulate_session(20, seed=1, subject="a"), simulate_session(20, seed=2, subject="b")],
                            method="late").save(tmp_path / "late.npz")
    out = eb.run_report("sample", tmp_path / "ok.html", modalities=["text"], fusion=str(model), progress=False)
    assert "Mean modality weights in the fusion" in out.read_text()


def test_user_strings_reach_the_report_as_text_only():
    """The title block and every Markdown helper escape what came from a user or a file."""
    import xarray as xr
    from nbconvert.filters.markdown_mistune import markdown2html_mistune as markdown

    from emonb.report import sections as rs
    from emonb.session import make_tree

    evil = "x`<img src=x onerror=alert(1)>`[link](javascript:alert(2)) *b* # h\n- item & <script>alert(3)</script>"
    tree = make_tree({
        "voice": xr.Dataset(attrs={"quality_flags": evil, "snr_db": evil, "emotion_note": evil}),
        "text": xr.Dataset(attrs={"note": evil}),
        "fused": xr.Dataset({"modality_weight": (("time", "modality"), [[1.0]])},
                            coords={"time": [0.0], "modality": [evil]}),
    }, {"session_id": evil, "subject": evil})
    head = rs.title_html(tree, title=evil, start=1, end=evil)
    assert head.count("&lt;img src=x onerror=alert(1)&gt;") == 4 and "<img" not in head and "<script" not in head
    for text in (rs.limitations_markdown(tree), rs.modality_weights_markdown(tree), rs.escape_markdown(evil)):
        out = markdown(text)
        assert "<img" not in out and "<script" not in out and "<a " not in out and "<h1" not in out, out
        assert "&lt;img src=x onerror=alert(1)&gt;" in out and "[link](javascript:alert(2))" in out
    assert markdown(rs.escape_markdown("a & b < c")).strip() == "<p>a &amp; b &lt; c</p>"
