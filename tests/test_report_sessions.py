"""Rendered reports on four kinds of session: the sample, two people in turn, a failed step, no face.

Each report is checked against the data it came from (the summary's figures), for gaps (no chart
line spans missing data: the charts are rebuilt from the analysed session and their Vega-Lite data
inspected), for the network (nothing to fetch, checked in headless Chromium with every request
recorded), and photographed into ``tests/artifacts/report_<case>.png``.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import emonb as eb
from emonb.report import remote_scripts
from emonb.report import sections as rs
from emonb.report import summary as su

from conftest import write_two_people_video, write_video

pytest.importorskip("papermill")
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def _visible(html: str) -> str:
    return re.sub(r"<details class=\"emonb-code\">.*?</details>", "", html, flags=re.S)


def _summary(html: str) -> str:
    shown = _visible(html)
    return shown[shown.index('<section class="emonb-summary">'):shown.index("</section>")]


def _browse(path: Path, shot: str | None) -> dict:
    """Open the report in headless Chromium: every request it makes, and a full-page screenshot."""
    import lab_browser

    reason = lab_browser.skip_reason()
    if reason:
        return {"skipped": reason}
    from playwright.sync_api import sync_playwright

    requests = []
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=lab_browser.CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = b.new_page(viewport={"width": 1100, "height": 1400})
        page.on("request", lambda r: requests.append(r.url))
        page.goto(path.resolve().as_uri())
        page.wait_for_load_state("load")
        if shot:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"report_{shot}.png"), full_page=True)
        images = page.eval_on_selector_all("img", "els => els.map(e => [e.naturalWidth, e.complete])")
        b.close()
    return {"requests": requests, "images": images}


def _offline(path: Path, shot: str, *, images: bool = True):
    html = path.read_text()
    assert remote_scripts(html) == []
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html, flags=re.I)
    assert "default-src 'none'" in html and "Traceback" not in html
    seen = _browse(path, shot)
    if "skipped" not in seen:
        assert [u for u in seen["requests"] if not u.startswith(("file:", "data:"))] == []
        assert bool(seen["images"]) == images
        assert all(w > 0 and ok for w, ok in seen["images"])  # every chart and key frame drew


def _no_line_spans_a_gap(tree, subject):
    charts = [rs.emotion_chart(tree, subject=subject), rs.valence_arousal_chart(tree, subject=subject),
              rs.voice_chart(tree), rs.physio_chart(tree)]
    n = 0
    for chart in [c for c in charts if c is not None]:
        for data, enc in rs.chart_lines(chart):
            assert enc["detail"]["field"] == "segment"
            keys = [enc["color"]["field"]] if "field" in enc.get("color", {}) else []
            for _, g in data.groupby(keys + ["segment"]):
                t = np.sort(g["time"].to_numpy(float))
                assert g[enc["y"]["field"]].notna().all()
                if t.size > 2:
                    assert np.diff(t).max() <= rs.GAP_STEPS * np.median(np.diff(t)) + 1e-9
                n += 1
    assert n > 0


def _reviews(path: Path, session: str) -> Path:
    store = eb.review.AnnotationStore(path, session=session)
    for reviewer, shift in (("dr_lee", 0.0), ("dr_kim", 0.3)):
        store.add(9.5 + shift, 14.0, label="happiness", reviewer=reviewer, confidence=0.9)
        store.add(1.0, 3.0 + shift, label="sadness", reviewer=reviewer, note="looks down")
    store.close()
    return path


def test_sample_report_summary_matches_the_data(tmp_path):
    reviews = _reviews(tmp_path / "reviews.sqlite", "sample")
    out = eb.run_report("sample", tmp_path / "sample.html", stride=4, store=str(reviews),
                        save_to=str(tmp_path / "s.zarr"), progress=False)
    html = out.read_text()
    summary = _summary(html)
    tree = eb.open_session(tmp_path / "s.zarr", load=True)
    # what was recorded, with coverage on the session clock
    rec = su.recording_table(tree).set_index("modality")
    assert list(rec.index) == ["video", "audio", "physio", "transcript"]
    assert rec.loc["audio", "coverage"] == pytest.approx(0.2, abs=0.01)  # 4 s of speech audio in a 20 s session
    assert f"<td>audio</td><td>speech.wav</td><td class=\"num\">3.00</td><td class=\"num\">7.00</td>" in summary
    # the subject and their expressions, figures as the data gives them
    tab = eb.subjects.subject_table(tree["face"].to_dataset())
    assert tab["subject"].tolist() == ["S1"]
    assert f"{100 * tab['share'].iloc[0]:.0f}%" in summary
    sh = su.expression_shares(tree, "S1").set_index("emotion")
    top = sh["share"].idxmax()
    assert f"<td>{top}</td><td>{100 * sh.loc[top, 'share']:.0f}% [{100 * sh.loc[top, 'low']:.0f}%, " \
           f"{100 * sh.loc[top, 'high']:.0f}%]</td>" in summary
    aff = su.affect_means(tree, ["S1"])
    fv = aff[(aff["source"] == "face") & (aff["measure"] == "valence")].iloc[0]
    num = lambda v: f"{round(v, 2) + 0.0:+.2f}"  # noqa: E731  (no "-0.00")
    assert f"{num(fv['mean'])} [{num(fv['low'])}, {num(fv['high'])}]" in summary
    assert "voice (where speech was detected)" in summary
    # the moments reviewers marked and their agreement
    assert "dr_kim, dr_lee" in summary and "kappa" in summary and "Moments reviewers marked" in summary
    # the rest of the page
    shown = _visible(html)
    assert shown.index("emonb-summary") < shown.index("Session and provenance")
    assert "Emotion analysis report: the emonb sample session" in shown and "Session session" not in shown
    assert "Analysed and reported on" in shown
    assert shown.count("accuracy") >= 2 and "calibrat" in shown          # model cards next to the outputs
    assert "modality_weight" not in shown
    assert shown.count("not felt emotion") == 1                          # the voice limitation once
    assert "<td>happiness</td>" in shown and "jp-RenderedHTMLCommon table" in html
    _no_line_spans_a_gap(tree, "S1")
    _offline(out, "sample")
    # and a printable PDF of it
    pdf = eb.report.print_pdf(out, tmp_path / "sample.pdf")
    data = pdf.read_bytes()
    assert data[:5] == b"%PDF-" and len(re.findall(rb"/Type\s*/Page[^s]", data)) >= 3
    with pytest.raises(eb.EmonbFileError, match="exists"):
        eb.report.print_pdf(out, tmp_path / "sample.pdf")
    (tmp_path / "mine.pdf").write_bytes(b"%PDF-1.4 a user's file")
    with pytest.raises(eb.EmonbFileError):
        eb.report.print_pdf(out, tmp_path / "mine.pdf", overwrite=True)


@pytest.fixture(scope="module")
def turns(shared_data, tmp_path_factory):
    """One person 0-3 s, another 3-6 s, the first again 6-8 s (real clips, real decoding, real mediapipe)."""
    pytest.importorskip("mediapipe")
    pytest.importorskip("torch")
    folder = tmp_path_factory.mktemp("interview-07")
    path = write_two_people_video(shared_data / "video", folder / "session.mp4")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return eb.analyze(eb.load_session(video=path), ["face", "spot"], options={"face": {"stride": 2}},
                          progress=False)


@pytest.mark.realdata
def test_two_people_in_turn_report_from_an_in_memory_tree(turns, tmp_path):
    assert turns.attrs["session_id"] == "session"                        # from session.mp4
    out = eb.run_report(turns, tmp_path / "turns.html", subjects="all", fusion=None, progress=False)
    html = out.read_text()
    shown = _visible(html)
    summary = _summary(html)
    assert "Emotion analysis report: interview-07" in shown and "Session session" not in shown
    tab = eb.subjects.subject_table(turns["face"].to_dataset())
    assert tab["subject"].tolist() == ["S1", "S2"]
    for row in tab.itertuples():
        assert f"<td>{row.subject}</td><td>{row.faces}</td>" in summary
        assert f"{100 * row.share:.0f}%" in summary
        assert f"Subject {row.subject}: expressions" in summary
    assert "no face in 83%" not in shown and "face 0" not in summary
    # every subject's charts and key frames on request
    for s in ("S1", "S2"):
        assert f'<h3 class="emonb-subject">Subject {s}</h3>' in shown
    assert shown.count("data:image/jpeg") == 2
    _no_line_spans_a_gap(turns, "S2")
    # S2 is absent from her chart outside 3-6 s: no line data there
    lines = rs.chart_lines(rs.emotion_chart(turns, subject="S2"))
    t = np.concatenate([d["time"].to_numpy(float) for d, _ in lines])
    assert t.min() >= 2.9 and t.max() <= 6.0
    # by default the main subject only
    out2 = eb.run_report(turns, tmp_path / "main.html", fusion=None, modalities=["face"], progress=False)
    shown2 = _visible(out2.read_text())
    assert 'class="emonb-subject"' not in shown2 and shown2.count("data:image/jpeg") == 1
    _offline(out, "two_people")


def test_report_with_a_failed_step(tmp_path):
    store = eb.save_session(eb.sample_session(), tmp_path / "s.zarr")
    with pytest.warns(eb.EmonbWarning, match="analysis step"):
        out = eb.run_report(store, tmp_path / "failed.html", modalities=["voice", "physio", "text"], fusion=None,
                            models={"voice": "no-such-voice-model"}, progress=False)
    shown = _visible(out.read_text())
    banner = shown.index('class="emonb-banner emonb-banner-failed"')
    assert banner < shown.index('<section class="emonb-summary">') < shown.index("Session and provenance")
    summary = _summary(out.read_text())
    assert "voice (where speech was detected)" not in summary and "physiology" in summary
    assert "<td>voice analysis failed (see above)</td>" in summary and "<td>not analysed</td>" in summary  # video
    _offline(out, "failed_step")


def test_report_with_no_face(tmp_path):
    path = write_video(tmp_path / "empty_room.mp4", n=48, fps=12, size=(160, 120))   # gray frames: nobody
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tree = eb.analyze(eb.load_session(video=path), ["face"], progress=False)
    out = eb.run_report(tree, tmp_path / "noface.html", fusion=None, progress=False)
    shown = _visible(out.read_text())
    assert "No face was found in any of the 48 analysed frames" in _summary(out.read_text())
    assert "No face found, or no face analysis" in shown and "No video frames with a face" in shown
    assert "Emotion analysis report: session empty_room" in shown
    _offline(out, "no_face", images=False)          # nothing to chart: no empty chart either
