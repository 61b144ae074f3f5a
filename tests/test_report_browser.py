"""Script injection into the HTML report: every user field carries a payload, none runs in Chromium.

One report carries them all (a report takes 20-60 s): the session id, the subject and the title,
a reviewer, a label and a note of the annotation store, the transcript text and speaker, and the
file names of the video, audio, physio and transcript. Each payload would set ``window.__pwned``,
change ``document.title`` and call ``console.log`` -- through ``<img onerror>`` and ``<script>``,
behind a backtick that would end a Markdown code span. The report is opened in headless Chromium;
nothing may run, and each payload must be visible as text where the report shows that field.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import lab_browser
import pytest

import emonb as eb

pytest.importorskip("papermill")
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

CSP = "default-src 'none'"


def payload(field: str, *, script: bool = True) -> str:
    """Text that runs ``field``'s marker if it reaches the page as HTML (or Markdown)."""
    js = f"window.__pwned='{field}';document.title='PWNED';console.log('PWNED-{field}')"
    s = f"{field}`<img src=x onerror=\"{js}\">`"
    if script:  # file names cannot hold '/'
        s += f"<script>{js}</script>"
    return s


#: fields whose payload must be shown (as text) in the report
VISIBLE = ("title", "session", "subject", "reviewer", "label", "note", "video-file", "audio-file",
           "physio-file", "transcript-file")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    reason = lab_browser.skip_reason()
    if reason:
        pytest.skip(reason)
    from emonb.session import SAMPLE_DIR, make_tree

    root = tmp_path_factory.mktemp("inject")
    files = root / "in"
    files.mkdir()
    names = {}
    for kind, src in (("video", "video.mp4"), ("audio", "speech.wav"), ("physio", "physio.csv"),
                      ("transcript", "transcript.vtt")):
        names[kind] = files / (payload(f"{kind}-file", script=False) + Path(src).suffix)
        shutil.copy(SAMPLE_DIR / src, names[kind])
    tree = eb.load_session(video=names["video"], audio=names["audio"], physio=names["physio"],
                           transcript=names["transcript"], offsets={"audio": 3.0}, session_id=payload("session"),
                           subject=payload("subject"), physio_options={"channels": {"Photosensor": "event"}})
    nodes = {k: tree[k].to_dataset() for k in tree.children}
    tr = nodes["transcript"]
    n = tr.sizes["segment"]
    tr["text"] = tr["text"].copy(data=[payload("transcript")] * n)
    tr["speaker"] = tr["speaker"].copy(data=[payload("speaker")] * n)
    store = eb.save_session(make_tree(nodes, tree.attrs), root / "s.zarr")
    reviews = eb.review.AnnotationStore(root / "reviews.sqlite", session=tree.attrs["session_id"])
    for who, shift in ((payload("reviewer"), 0.0), ("dr_kim", 0.3)):
        reviews.add(9.5 + shift, 14.0, label=payload("label"), scheme=None, reviewer=who, confidence=0.9,
                    note=payload("note"))
        reviews.add(1.0, 3.0 + shift, label="sadness", scheme=None, reviewer=who, note="looks down")
    reviews.close()
    out = eb.run_report(store, root / "report.html", modalities=["face", "voice", "physio", "text"], stride=8,
                        store=str(root / "reviews.sqlite"), title=payload("title"), progress=False)
    return out


def _open(path: Path) -> dict:
    """Load ``path`` in headless Chromium; what ran (console, dialogs, errors) and what shows."""
    from playwright.sync_api import sync_playwright

    seen = {"console": [], "dialogs": [], "errors": []}
    with sync_playwright() as p:
        browser = lab_browser.launch(p)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.on("console", lambda m: seen["console"].append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: seen["errors"].append(str(e)))

            def on_dialog(d):
                seen["dialogs"].append(d.message)
                d.dismiss()

            page.on("dialog", on_dialog)
            page.goto(path.resolve().as_uri(), wait_until="load")
            page.wait_for_timeout(500)  # an onerror handler fires after the failed image load
            seen["pwned"] = page.evaluate("typeof window.__pwned === 'undefined' ? null : String(window.__pwned)")
            seen["title"] = page.title()
            seen["text"] = page.inner_text("body")
            seen["images"] = page.evaluate(
                "Array.from(document.images).map(i => [i.src.slice(0, 22), i.complete && i.naturalWidth > 0])")
        finally:
            browser.close()
    return seen


def test_no_payload_runs_and_every_one_shows_as_text(report):
    seen = _open(report)
    assert seen["pwned"] is None, f"a payload ran: window.__pwned = {seen['pwned']!r}"
    assert seen["dialogs"] == []
    assert not [m for m in seen["console"] if "PWNED" in m], seen["console"]
    # nothing even tried to run or load: no blocked script, no request for the payloads' src=x
    assert not [m for m in seen["console"] if "Content Security Policy" in m], seen["console"]
    assert seen["errors"] == []
    assert seen["title"] == payload("title")  # <title> escaped, and never changed by a payload
    text = seen["text"]
    for field in VISIBLE:
        assert payload(field, script=not field.endswith("-file")) in text, f"{field} is not shown as text"
    # the report still displays under its Content-Security-Policy: charts (SVG) and key frames (JPEG)
    kinds = [src for src, _ in seen["images"]]
    assert all(ok for _, ok in seen["images"]), seen["images"]
    assert sum(k.startswith("data:image/svg+xml") for k in kinds) >= 4
    assert any(k.startswith("data:image/jpeg") for k in kinds)
    assert all(k.startswith("data:image/") for k in kinds)


def test_the_report_html_holds_no_raw_payload_and_forbids_scripts(report):
    html = report.read_text()
    head = html[: html.index("</head>")]
    tag = re.search(r'<meta[^>]*http-equiv="Content-Security-Policy"[^>]*>', head)
    policy = re.search(r'content="([^"]+)"', tag.group(0)).group(1) if tag else ""
    assert CSP in policy and "script-src 'none'" in policy and "img-src data:" in policy
    assert head.index("Content-Security-Policy") < min((head.find(t) for t in ("<script", "<style", "<link")
                                                       if t in head), default=len(head))
    body = html[html.index("</head>"):]
    assert not re.search(r"<script\b", body, re.I)  # neither the payloads nor the template put a script
    assert not re.search(r"<img[^>]*\bonerror\b", html, re.I)
    assert "&lt;img src=x onerror=" in html


def test_the_policy_alone_stops_a_script_that_slipped_through(report, tmp_path):
    """Defence in depth: with unescaped payloads pasted into the report, the CSP still stops them."""
    html = report.read_text()
    raw = payload("slipped")
    forged = tmp_path / "forged.html"
    forged.write_text(html.replace("</main>", f"<p>{raw}</p><svg onload=\"{'window.__pwned=1'}\"></svg></main>", 1))
    seen = _open(forged)
    assert seen["pwned"] is None and seen["dialogs"] == []
    assert not [m for m in seen["console"] if m.startswith("log: PWNED")]
    assert seen["title"] == payload("title")
