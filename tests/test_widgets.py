"""Widgets, Python side: synced traits, frame requests, overlays, write-through annotations."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

pytest.importorskip("anywidget")

from conftest import write_video

import emonb as eb
from emonb.review import AnnotationStore
from emonb.schema import AUS, EMOTIONS
from emonb.widgets import Annotator, AUInspector, Scrubber, explore, review_queue

# variable frame rate: 10 frames, gaps of 0.1 s then 0.2 s
TIMES = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4])
LEVELS = np.linspace(20, 230, TIMES.size)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    path = write_video(tmp_path_factory.mktemp("v") / "clip.mp4", times=TIMES, values=LEVELS, size=(64, 48))
    video = eb.load_video(path)
    emo = np.full((TIMES.size, 1, len(EMOTIONS)), 0.05)
    emo[:, 0, EMOTIONS.index("happiness")] = np.linspace(0.3, 0.9, TIMES.size)
    facs = np.full_like(emo, 0.05)
    facs[:, 0, EMOTIONS.index("surprise")] = 0.9  # disagrees everywhere
    box = np.tile([[[10.0, 8.0, 40.0, 38.0]]], (TIMES.size, 1, 1))
    box[3] = np.nan  # no face in frame 3
    emo[3] = facs[3] = np.nan
    lm = np.random.default_rng(0).uniform(10, 40, (TIMES.size, 1, 478, 3))
    face = xr.Dataset(
        {"face_box": (("time", "face", "box_coord"), box),
         "face_emotion": (("time", "face", "emotion"), emo, {"model": "toy-expr"}),
         "face_emotion_facs": (("time", "face", "emotion"), facs),
         "face_landmarks": (("time", "face", "landmark", "coord"), lm)},
        coords={"time": TIMES, "face": [0], "emotion": list(EMOTIONS), "box_coord": ["x0", "y0", "x1", "y1"],
                "coord": ["x", "y", "z"]})
    au = np.full((TIMES.size, 1, len(AUS)), 0.1)
    au[5:, 0, AUS.index("AU12")] = 0.8  # smile from frame 5 on
    au[5:, 0, AUS.index("AU06")] = 0.7
    au[3] = np.nan
    face["face_au"] = (("time", "face", "au"), au)
    face["face_au_presence"] = (("time", "face", "au"), (au >= 0.5).astype(float), {"threshold": 0.5})
    face = face.assign_coords(au=list(AUS))
    tree = xr.DataTree.from_dict({"video": video, "face": face})
    tree.attrs["session_id"] = "s01"
    return tree


def _gray(jpeg: bytes) -> float:
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB"), float)
    return float(img[30:, 30:].mean())  # away from the white corner square


def test_scrubber_frames_follow_current_time(session):
    s = Scrubber(session, cache_size=4)
    assert s.has_video and s.has_face and s.message == ""
    assert (s.width, s.height) == (64, 48)
    assert s.start == 0.0 and s.duration == pytest.approx(1.4 + 1 / s.fps)
    # the frame on screen at t is the last frame whose PTS <= t (variable frame rate)
    assert s.frame_position(0.55) == 4 and s.frame_position(0.6) == 5 and s.frame_position(99) == 9
    for pos in (0, 5, 9):
        assert _gray(s.frame_jpeg(TIMES[pos] + 0.01)) == pytest.approx(LEVELS[pos], abs=6)
    for t in TIMES:
        s.frame_jpeg(t)
    assert s.cache_info["frames"] == 4  # LRU: memory stays flat


def test_scrubber_frame_request_message_and_step(session):
    s = Scrubber(session)
    s.current_time = 0.65
    s._on_msg(s, {"type": "frame", "t": 0.65, "id": 7}, [])
    assert s.frame_time == pytest.approx(0.6) and s.n_sent == 1
    s._on_msg(s, {"type": "step", "n": 1}, [])
    assert s.current_time == pytest.approx(0.8)
    s.step(-3)
    assert s.current_time == pytest.approx(0.3)
    s.step(-10)
    assert s.current_time == 0.0


def test_scrubber_overlay(session):
    s = Scrubber(session)
    ov = s.overlay_at(TIMES[9])
    (f,) = ov["faces"]
    assert f["box"] == [10.0, 8.0, 40.0, 38.0]
    assert f["emotion"] == "happiness" and f["probability"] == pytest.approx(0.9)
    assert f["model"] == "toy-expr" and len(f["landmarks"]) > 50
    assert s.overlay_at(TIMES[3])["faces"] == []  # NaN box: nothing drawn
    s.show_overlay = False
    assert s.send_frame(0.0)["overlay"] == {"faces": []}
    json.dumps(ov)  # overlay travels as JSON


def test_scrubber_without_video_or_face(session):
    no_face = xr.DataTree.from_dict({"video": session["video"].to_dataset()})
    s = Scrubber(no_face)
    assert s.has_video and not s.has_face and "no face results" in s.message
    assert s.send_frame(0.1)["overlay"] == {"faces": []}
    no_video = xr.DataTree.from_dict({"face": session["face"].to_dataset()})
    s2 = Scrubber(no_video)
    assert not s2.has_video and "no video" in s2.message
    assert s2.duration == pytest.approx(1.4)
    assert "error" in s2.send_frame(0.2)
    # the video node alone works too (ds.emonb.scrub())
    s3 = session["video"].to_dataset().emonb.scrub()
    assert isinstance(s3, Scrubber) and s3.has_video


def test_annotator_writes_through(session, tmp_path):
    path = tmp_path / "reviews.sqlite"
    a = Annotator(session, store=path, reviewer="dr_lee", scheme="basic7")
    assert a.session == "s01" and a.labels == list(EMOTIONS) and a.annotations == []
    a.current_time = 0.2
    a.mark_in()
    a.current_time = 0.9
    a.mark_out()
    # snapped to the video's frames: in at the start of the frame on screen at 0.2 s, out at the end
    # of the frame on screen at 0.9 s (the frame at 0.8 s, next frame at 1.0 s)
    assert (a.range_start, a.range_end) == (0.2, 1.0)
    row = a.add("happiness", intensity=0.7, confidence=0.8, note="smile")
    assert a.range_start is None and a.error == ""
    # in the file at once, seen by another connection
    con = sqlite3.connect(path)
    assert con.execute("SELECT label, onset, duration, reviewer FROM annotations").fetchall() == [
        ("happiness", 0.2, pytest.approx(0.8), "dr_lee")]
    # the front-end's messages
    a._on_msg(a, {"type": "add", "onset": 1.0, "offset": 1.3, "label": "surprise", "intensity": 0.4,
                  "confidence": 0.5, "note": None}, [])
    assert len(a.annotations) == 2 and a.annotations[1]["label"] == "surprise"
    a._on_msg(a, {"type": "update", "id": row["id"], "label": "fear", "expected_version": 1}, [])
    a._on_msg(a, {"type": "delete", "id": a.annotations[1]["id"]}, [])
    assert [r["label"] for r in a.annotations] == ["fear"]
    store = AnnotationStore(path)
    assert list(store.history()["action"]) == ["insert", "insert", "update", "delete"]
    a._on_msg(a, {"type": "add", "onset": 0, "offset": 1, "label": "joy"}, [])
    assert "not in coding scheme" in a.error and len(store.list()) == 1


def test_annotator_keeps_changes_when_store_is_locked(session, tmp_path):
    path = tmp_path / "locked.sqlite"
    a = Annotator(session, store=AnnotationStore(path, session="s01", reviewer="r1", timeout=0.2),
                  reviewer="r1", scheme=["engaged", "bored"], scheme_name="engagement")
    assert a.scheme == "engagement" and a.labels == ["engaged", "bored"]
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("BEGIN IMMEDIATE")  # another notebook holds the write lock
    a.add("bored", onset=0.0, offset=0.5)
    a.add("engaged", onset=0.5, offset=1.0)
    assert a.n_pending == 2 and "locked" in a.error and "not lost" in a.error
    assert (tmp_path / "locked.sqlite.pending.jsonl").read_text().count("\n") == 2
    con.execute("ROLLBACK")
    assert a.retry_pending() == 0 and a.n_pending == 0
    a.refresh()
    assert [r["label"] for r in a.annotations] == ["bored", "engaged"]  # order kept


def test_explore_links_current_time(session, tmp_path):
    ex = explore(session, store=tmp_path / "x.sqlite", reviewer="dr_lee")
    ex.scrubber.current_time = 0.8
    assert ex.annotator.current_time == 0.8
    ex.annotator.current_time = 0.3
    assert ex.scrubber.current_time == 0.3
    assert ex.annotator.duration > 1.0
    assert ex.au_inspector.current_time == 0.3
    ex.scrubber.range_start, ex.scrubber.range_end = 0.2, 0.6  # shift-drag on a timeline
    assert (ex.annotator.range_start, ex.annotator.range_end) == (0.2, 0.6)
    assert ex.annotator.add("happiness")["duration"] == pytest.approx(0.4)
    assert ex.scrubber.range_start is None  # cleared after adding, on both
    ex2 = session.emonb.explore()
    assert ex2.annotator is None and isinstance(ex2.scrubber, Scrubber)
    assert isinstance(ex2.au_inspector, AUInspector)
    ex3 = explore(xr.DataTree.from_dict({"video": session["video"].to_dataset()}))
    assert ex3.au_inspector is None


def test_scrubber_reads_ahead_after_each_frame_and_stays_bounded(session):
    import time as _time

    s = Scrubber(session, prefetch=5, browser_cache=0)  # a front-end without a cache: the kernel reads ahead
    with s._reader._lock:
        s._reader._cache.clear()   # readers are shared per file: start from an empty cache
    sent = []
    s.send = lambda msg, buffers=None: sent.append(msg)
    s.send_frame(TIMES[1])
    deadline = _time.time() + 10
    while _time.time() < deadline and not all(i in s._reader._cache for i in range(2, 7)):
        _time.sleep(0.02)
    assert all(i in s._reader._cache for i in range(2, 7))   # the next 5 frames are decoded
    assert len(s._reader._cache) <= s._reader.cache_size
    t0 = _time.perf_counter()
    s.send_frame(TIMES[6])                                     # a cache hit: encoding only
    assert sent[-1]["frame_time"] == TIMES[6] and (_time.perf_counter() - t0) < 1.0
    off = Scrubber(session, prefetch=0, browser_cache=0)
    off.send = lambda msg, buffers=None: None
    off.send_frame(TIMES[1])
    assert off._prefetch_thread is None


def _collect(s):
    sent = []
    s.send = lambda msg, buffers=None: sent.append((msg, list(buffers or [])))
    return sent


def _wait_for(cond, timeout=10.0):
    import time as _time

    deadline = _time.time() + timeout
    while _time.time() < deadline and not cond():
        _time.sleep(0.02)
    return cond()


def test_scrubber_sends_frame_times_and_raw_frames(session):
    s = Scrubber(session)
    sent = _collect(s)
    s._on_msg(s, {"type": "times"}, [])
    msg, (buf,) = sent[-1]
    assert msg == {"type": "times", "n": TIMES.size}
    np.testing.assert_array_equal(np.frombuffer(buf, "<f8"), s._times)
    np.testing.assert_allclose(s._times, TIMES, atol=1e-9)
    # raw RGB: width x height x 3 bytes, the decoded frame itself (no JPEG loss)
    s._on_msg(s, {"type": "frame", "t": 0.65, "id": 3, "raw": True}, [])
    msg, (buf,) = sent[-1]
    assert msg["format"] == "rgb" and msg["position"] == 5 and msg["id"] == 3
    rgb = np.frombuffer(buf, np.uint8).reshape(s.height, s.width, 3)
    np.testing.assert_array_equal(rgb, s._reader.frame(5))
    s._on_msg(s, {"type": "frame", "t": 0.65, "id": 4}, [])
    assert sent[-1][0]["format"] == "jpeg" and _gray(sent[-1][1][0]) == pytest.approx(LEVELS[5], abs=6)
    with pytest.raises(Exception, match="frame_format"):
        Scrubber(session, frame_format="png")


def test_scrubber_sends_frames_ahead_to_the_browser_cache(session):
    s = Scrubber(session)
    sent = _collect(s)
    # junk, duplicates and positions outside the video are dropped; order (most wanted first) is kept
    queued = s.send_ahead([7, 7, "x", -1, 99, 2, 3, 4], gen=5)
    assert queued == [7, 2, 3, 4]
    assert _wait_for(lambda: sum(len(m["frames"]) for m, _ in sent if m["type"] == "ahead") == 4)
    ahead = [(m, b) for m, b in sent if m["type"] == "ahead"]
    assert len(ahead[0][0]["frames"]) == 1 and ahead[0][0]["frames"][0]["position"] == 7  # the first alone
    for msg, bufs in ahead:
        assert msg["gen"] == 5 and len(bufs) == len(msg["frames"])
        for f, jpeg in zip(msg["frames"], bufs):
            assert f["frame_time"] == TIMES[f["position"]]
            assert _gray(jpeg) == pytest.approx(LEVELS[f["position"]], abs=6)
            assert f["overlay"]["faces"] == ([] if f["position"] == 3 else f["overlay"]["faces"])
    assert s.n_ahead == 4
    assert len(s.send_ahead(range(200))) == 10  # capped by the video (and at MAX_AHEAD)


def test_scrubber_predicts_a_steady_drag(session):
    s = Scrubber(session)
    s._moves = [0, 3, 6]
    assert s.predicted_position() == 9
    s._moves = [9, 6, 3]
    assert s.predicted_position() == 0
    for moves in ([0, 1, 2], [0, 3, 1], [0, 3, 9], [0, 4, 8]):  # steps, back and forth, speeding up, past the end
        s._moves = list(moves)
        assert s.predicted_position() is None, moves
    # a frame request during a steady drag announces and sends where the next move lands
    s2 = Scrubber(session)
    sent = _collect(s2)
    for t in (TIMES[0], TIMES[2]):
        s2.send_frame(t)
    frames = lambda: [m for m, _ in sent if m["type"] == "frame"]
    assert frames()[-1]["ahead"] == []
    s2.send_frame(TIMES[4])
    assert frames()[-1]["ahead"] == [6, 7, 5]
    assert _wait_for(lambda: {f["position"] for m, _ in sent if m["type"] == "ahead" for f in m["frames"]} == {5, 6, 7})
    off = Scrubber(session, browser_cache=0)
    sent = _collect(off)
    for t in (TIMES[0], TIMES[2], TIMES[4]):
        off.send_frame(t)
    assert frames()[-1]["ahead"] == []  # no browser cache: nothing is sent unasked


def test_review_queue_points_at_the_few_uncertain_or_disagreeing_moments(session):
    # 20 s at 10 fps, the model sure and agreeing with the FACS reading, except 0.8 s of doubt at
    # 5 s and 0.5 s of disagreement at 12 s: the queue is those two moments, not every second
    t = np.arange(0, 20, 0.1)
    emo = np.full((t.size, 1, len(EMOTIONS)), 0.01)
    emo[:, 0, EMOTIONS.index("happiness")] = 0.94
    facs = emo.copy()
    doubt = (t >= 5.0) & (t < 5.8)
    emo[doubt, 0, :] = 1 / len(EMOTIONS)
    clash = (t >= 12.0) & (t < 12.5)
    facs[clash, 0, :] = 0.01
    facs[clash, 0, EMOTIONS.index("anger")] = 0.94
    face = xr.Dataset({"face_emotion": (("time", "face", "emotion"), emo),
                       "face_emotion_facs": (("time", "face", "emotion"), facs)},
                      coords={"time": t, "face": [0], "emotion": list(EMOTIONS)})
    q = review_queue(xr.DataTree.from_dict({"face": face}))
    assert [(d["onset"], d["offset"]) for d in q] == [(5.0, 5.8), (12.0, 12.5)]
    assert "unsure" in q[0]["reason"] and "disagree" in q[1]["reason"]
    assert q[0]["score"] == pytest.approx(1.0, abs=1e-3)
    # a session where the model is sure and agrees everywhere: nothing to look at
    calm_face = xr.Dataset({"face_emotion": (("time", "face", "emotion"), np.tile(emo[0], (t.size, 1, 1))),
                            "face_emotion_facs": (("time", "face", "emotion"), np.tile(emo[0], (t.size, 1, 1)))},
                           coords=face.coords)
    assert review_queue(xr.DataTree.from_dict({"face": calm_face})) == []
    # the small session: disagreement all along, one segment at most, ranked
    q = review_queue(session)
    assert len(q) <= 2 and [d["score"] for d in q] == sorted((d["score"] for d in q), reverse=True)


def test_spots_and_annotations_appear_on_the_timeline_and_in_the_queue(session):
    from emonb.widgets.timeline import timeline_tracks

    spots = xr.Dataset({"onset": ("spot", [0.2, 0.9]), "offset": ("spot", [0.5, 1.3]),
                        "kind": ("spot", np.array(["micro", "macro"], dtype=object)),
                        "regions": ("spot", np.array(["mouth", "brows,eyes"], dtype=object)),
                        "strength": ("spot", [2.0, 4.0])}, attrs={"method": "toy-spotter"})
    ann = xr.Dataset({"onset": ("annotation", [0.1]), "duration": ("annotation", [0.3]),
                      "label": ("annotation", np.array(["happiness"], dtype=object)),
                      "reviewer": ("annotation", np.array(["dr_lee"], dtype=object))})
    nodes = {n: session[n].to_dataset() for n in session.children}
    tree = xr.DataTree.from_dict({**nodes, "spots": spots, "annotations": ann})
    tracks = timeline_tracks(tree, start=0.0, end=1.5)
    iv = {t["name"]: t for t in tracks if t.get("kind") == "intervals"}
    assert [(d["onset"], d["offset"], d["label"]) for d in iv["spotted expressions"]["intervals"]] == \
        [(0.2, 0.5, "micro"), (0.9, 1.3, "macro")]
    assert [(d["onset"], d["offset"], d["label"]) for d in iv["annotations · dr_lee"]["intervals"]] == \
        [(0.1, 0.4, "happiness")]
    assert iv["annotations · dr_lee"]["tier"] == "dr_lee"
    assert iv["spotted expressions"]["model"] == "toy-spotter"
    assert [t["onset"] for t in timeline_tracks(tree, start=0.6, end=1.5)[-2]["intervals"]] == [0.9]
    q = review_queue(tree)
    spotted = [d for d in q if d["reason"].startswith("spotted")]
    assert [(d["onset"], d["score"]) for d in spotted] == [(0.9, 1.0), (0.2, 0.875)]
    assert "brows,eyes" in spotted[0]["reason"]
    assert [d["score"] for d in q] == sorted((d["score"] for d in q), reverse=True)
    tree_no_face = xr.DataTree.from_dict({"spots": spots})
    assert len(review_queue(tree_no_face)) == 2


def test_front_end_sources_ship_with_the_widgets():
    from emonb.widgets._assets import asset_dir

    for name in ("scrubber.js", "annotator.js", "scrubber.css", "annotator.css"):
        assert (asset_dir() / name).stat().st_size > 100
    assert "as default" in Scrubber._esm.default_value  # the esbuild bundle (widgets/src)
    assert "model.send" in Annotator._esm.default_value
    # the timelines' Vega and Vega-Lite ship too (with their licenses); no widget loads from a CDN
    vendor = asset_dir() / "vendor"
    for name in ("vega.min.js", "vega-lite.min.js", "LICENSE-vega", "LICENSE-vega-lite"):
        assert (vendor / name).stat().st_size > 1000
    assert sum(p.stat().st_size for p in vendor.iterdir()) < 2_000_000
    for name in ("scrubber.js", "annotator.js", "au_inspector.js"):
        src = (asset_dir() / name).read_text()
        assert "esm.sh" not in src and "cdn" not in src.lower() and "import(" not in src


def test_review_and_emonb_imports_stay_light():
    code = ("import sys, emonb, emonb.review; import emonb as eb; eb.review.AnnotationStore; "
            "print([m for m in ('anywidget', 'ipywidgets') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_scrubber_timelines(session):
    s = Scrubber(session)
    names = [tr["name"] for tr in s.timelines]
    assert names[0] == "face · emotion"
    emo = s.timelines[0]
    assert [x["label"] for x in emo["series"]] == list(EMOTIONS) and emo["range"] == [0.0, 1.0]
    hap = np.array([np.nan if v is None else v for v in emo["series"][EMOTIONS.index("happiness")]["values"]])
    assert hap.size == 600 and np.isnan(hap).any()  # gaps between frames stay gaps (null), never 0
    assert np.nanmin(hap) == pytest.approx(0.3, abs=0.01) and np.nanmax(hap) == pytest.approx(0.9, abs=0.01)
    json.dumps(s.timelines)
    # a session without video: timelines only
    s2 = Scrubber(xr.DataTree.from_dict({"face": session["face"].to_dataset()}))
    assert not s2.has_video and s2.timelines and s2.timelines[0]["end"] == pytest.approx(1.4)
    assert Scrubber(session, timelines=False).timelines == []


def test_au_inspector_follows_current_time(session):
    w = AUInspector(session)
    names = {a["id"]: a["name"] for a in w.aus}
    assert names["AU12"] == "lip corner puller" and w.threshold == 0.5
    w.current_time = 0.1
    assert w.active() == [] and w.values[AUS.index("AU12")] == pytest.approx(0.1)
    w.current_time = 1.0
    assert w.active() == ["AU06", "AU12"]
    assert w.model_top == {"label": "happiness", "probability": pytest.approx(0.7667, abs=1e-3)}
    assert w.emfacs_top["label"] == "surprise"  # disagreement is visible
    w.current_time = 0.3  # no face in this frame: nulls, never 0
    assert all(v is None for v in w.values) and w.model_top is None
    w.current_time = 0.5  # between frames 0.4 and 0.6: nearest within one frame interval
    assert w.values[0] is not None
    w.selected_au = "AU06"
    c = np.array([np.nan if v is None else v for v in w.course])
    assert len(w.course) == 300 and np.nanmax(c) == pytest.approx(0.7) and np.nanmin(c) == pytest.approx(0.1)
    assert len(w.heatmap) == len(AUS) and len(w.heatmap[0]) == 300
    json.dumps({"h": w.heatmap, "v": w.values})
    empty = AUInspector(xr.DataTree.from_dict({"video": session["video"].to_dataset()}))
    assert "no action units" in empty.message and empty.aus == []


def test_annotator_on_a_corrupt_store_keeps_what_is_typed(session, tmp_path):
    path = tmp_path / "broken.sqlite"
    path.write_bytes(b"garbage, not sqlite" * 200)
    a = Annotator(session, store=path, reviewer="dr_lee")  # the widget still opens, with a clear message
    assert "corrupt" in a.error
    a.add("anger", onset=1.0, offset=2.0, note="typed while the file was broken")
    assert a.n_pending == 1 and "not lost" in a.error
    line = json.loads((tmp_path / "broken.sqlite.pending.jsonl").read_text().splitlines()[0])
    assert line["label"] == "anger" and line["note"] == "typed while the file was broken"
    path.rename(tmp_path / "broken.sqlite.bad")  # the user moves the broken file aside
    assert a.retry_pending() == 0 and a.error == ""
    a.refresh()
    assert [r["label"] for r in a.annotations] == ["anger"]
    rows = AnnotationStore(path).list(session="s01")
    assert [(r["label"], r["note"]) for r in rows] == [("anger", "typed while the file was broken")]


def _long_session(seconds: float) -> xr.DataTree:
    """Face emotions at 30 fps, valence, heart rate at 4 Hz, spotted expressions: ``seconds`` long."""
    t = np.arange(0, seconds, 1 / 30)
    emo = np.random.default_rng(1).dirichlet(np.ones(len(EMOTIONS)), size=t.size)[:, None, :]
    face = xr.Dataset({"face_emotion": (("time", "face", "emotion"), emo, {"model": "toy-expr"}),
                       "face_valence": (("time", "face"), np.sin(t / 7)[:, None])},
                      coords={"time": t, "face": [0], "emotion": list(EMOTIONS)})
    pt = np.arange(0, seconds, 0.25)
    physio = xr.Dataset({"ecg_rate": ("time", 70 + 5 * np.sin(pt / 9), {"units": "bpm"}),
                         "eda_tonic": ("time", 2 + pt / seconds, {"units": "uS"})}, coords={"time": pt})
    spots = xr.Dataset({"onset": ("spot", [1.0, seconds / 2]), "offset": ("spot", [1.4, seconds / 2 + 2]),
                        "kind": ("spot", np.array(["micro", "macro"], dtype=object))})
    return xr.DataTree.from_dict({"face": face, "physio_features": physio, "spots": spots})


def test_timeline_spec_is_valid_vega_lite_with_cursor_and_tracks():
    import altair as alt

    from emonb.widgets.timeline import PARAMS, timeline_chart, timeline_spec, timeline_tracks

    tree = _long_session(60.0)
    tracks = timeline_tracks(tree, start=0.0, end=60.0)
    spec = timeline_spec(tracks, start=0.0, end=60.0)
    assert spec["$schema"] == f"https://vega.github.io/schema/vega-lite/{alt.SCHEMA_VERSION}.json"
    alt.VConcatChart.from_dict(spec, validate=True)  # valid against Altair's Vega-Lite schema
    json.dumps(spec, allow_nan=False)
    # one row per track, titled, all on the same time domain
    titles = [row["title"]["text"] for row in spec["vconcat"]]
    # short titles with units; the model strings go into each row's tooltip
    assert titles == ["face · emotion", "face · valence, arousal", "heart rate (bpm)", "EDA, tonic (uS)",
                      "spotted expressions"]
    assert spec["usermeta"]["emonb"]["rows"][0]["tooltip"] == "face · emotion: toy-expr"
    for row in spec["vconcat"]:
        xs = [layer["encoding"]["x"] for layer in row["layer"]]
        # one zoomable time axis: the view_start..view_end parameters
        assert all(x.get("scale", {}).get("domain", {"expr": "[view_start, view_end]"}) ==
                   {"expr": "[view_start, view_end]"} for x in xs)
        marks = [layer["mark"]["type"] for layer in row["layer"]]
        # every row: the cursor rule on the current_time param, the range band on range_start/end
        assert marks[-2:] == ["rect", "rule"]
        assert {"calculate": "current_time", "as": "t"} in row["layer"][-1]["transform"]
    assert [p["name"] for p in spec["params"]] == list(PARAMS) == ["current_time", "range_start", "range_end",
                                                                    "view_start", "view_end"]
    meta = spec["usermeta"]["emonb"]
    assert (meta["start"], meta["end"], meta["params"], meta["tiers"]) == (0.0, 60.0, list(PARAMS), {})
    assert [row["layer"][0]["mark"]["type"] for row in spec["vconcat"]] == ["line"] * 4 + ["rect"]
    # the data: each series downsampled to the tracks' 600 bins, intervals as they are
    emo = spec["datasets"][spec["vconcat"][0]["layer"][0]["data"]["name"]][0]
    assert set(emo) == set(EMOTIONS) and all(len(v) == 600 for v in emo.values())
    spots = spec["datasets"][spec["vconcat"][4]["layer"][0]["data"]["name"]]
    assert [(d["onset"], d["offset"], d["label"]) for d in spots] == [(1.0, 1.4, "micro"), (30.0, 32.0, "macro")]
    # a sparse series (heart rate at 4 Hz in 0.1 s bins) is drawn as a line, not dots
    hr = spec["datasets"][spec["vconcat"][2]["layer"][0]["data"]["name"]][0]["ecg_rate"]
    assert None not in hr[:590]
    # the chart is an ordinary Altair chart too, with its data
    chart = timeline_chart(tracks, start=0.0, end=60.0)
    assert set(chart.to_dict()["datasets"]) >= {"emonb_track_0", "emonb_track_4"}
    assert timeline_spec([], start=0.0, end=1.0) == {}


def test_timeline_spec_compiles_to_vega_with_the_cursor_signal():
    vlc = pytest.importorskip("vl_convert")
    from emonb.widgets.timeline import VEGA_VERSIONS, timeline_spec, timeline_tracks

    tree = _long_session(20.0)
    spec = timeline_spec(timeline_tracks(tree, start=0.0, end=20.0), start=0.0, end=20.0)
    vl = ".".join(VEGA_VERSIONS["vega-lite"].split(".")[:2])
    vg = vlc.vegalite_to_vega(spec, vl_version=vl if vl in vlc.get_vegalite_versions() else None)
    assert {"current_time", "range_start", "range_end"} <= {s["name"] for s in vg["signals"]}
    assert [m["name"] for m in vg["marks"]] == [f"concat_{i}_group" for i in range(5)]
    assert vg["layout"]["bounds"] == "flush"  # the front-end maps pointer -> time on the first row


def test_timeline_spec_stays_small_for_a_long_session():
    from emonb.widgets.timeline import timeline_spec, timeline_tracks

    sizes = {}
    for seconds in (60.0, 3600.0):
        tree = _long_session(seconds)
        spec = timeline_spec(timeline_tracks(tree, start=0.0, end=seconds), start=0.0, end=seconds)
        sizes[seconds] = len(json.dumps(spec))
    assert sizes[3600.0] < 100_000  # tens of kilobytes, like the 1-minute session
    assert sizes[3600.0] < 1.2 * sizes[60.0]


def test_scrubber_sends_the_vendored_vega_once_asked(session):
    import gzip

    s = Scrubber(session)
    assert s.timeline_spec["vconcat"] and s.timeline_spec["params"][0] == {"name": "current_time", "value": 0.0}
    assert "timelines" not in s.keys  # the tracks stay in Python; the front-end gets the spec
    sent = []
    s.send = lambda content, buffers=None: sent.append((content, buffers))
    s._on_msg(s, {"type": "vega", "gzip": True}, [])
    (msg, buffers), = sent
    assert msg["type"] == "vega" and msg["encoding"] == "gzip" and msg["versions"]["vega"].startswith("6.")
    vega, vl = (gzip.decompress(b).decode() for b in buffers)
    assert 't.version="6.4.0"' in vega and "sourceMappingURL" not in vl and "vegaLite" in vl
    s._on_msg(s, {"type": "vega", "gzip": False}, [])
    assert sent[-1][0]["encoding"] == "identity" and bytes(sent[-1][1][0]).decode() == vega


# ---------------------------------------------------------------- the reviewer's workstation (issue 18)
def _two_people(session):
    """The small session with two faces in turn: face 0 in frames 0-4, face 1 in frames 5-9, the face
    results on every other video frame (an analysis stride of 2)."""
    face = session["face"].to_dataset()
    t = TIMES[::2]
    n = t.size
    box = np.full((n, 2, 4), np.nan)
    box[:3, 0] = [10, 8, 40, 38]
    box[3:, 1] = [20, 10, 50, 40]
    au = np.full((n, 2, len(AUS)), np.nan)
    au[:3, 0] = 0.1
    au[3:, 1] = 0.2
    au[3:, 1, AUS.index("AU12")] = 0.9
    emo = np.full((n, 2, len(EMOTIONS)), np.nan)
    emo[:3, 0] = 1 / 7
    emo[3:, 1] = 0.02
    emo[3:, 1, EMOTIONS.index("fear")] = 0.88
    f = xr.Dataset({"face_box": (("time", "face", "box_coord"), box),
                    "face_au": (("time", "face", "au"), au),
                    "face_emotion": (("time", "face", "emotion"), emo, {"model": "toy-expr"}),
                    "face_score": (("time", "face"), np.where(np.isfinite(box[..., 0]), 0.9, np.nan))},
                   coords={"time": t, "face": [0, 1], "au": list(AUS), "emotion": list(EMOTIONS),
                           "box_coord": face["box_coord"].values})
    return xr.DataTree.from_dict({"video": session["video"].to_dataset(), "face": f},
                                 name=None), f


def test_overlay_inspector_and_timelines_read_the_same_analysed_frame_of_the_selected_face(session):
    tree, f = _two_people(session)
    ex = explore(tree)
    s, w = ex.scrubber, ex.au_inspector
    # face 1 is on screen at 1.25 s: auto shows it, never "no face" because face 0 is gone
    for t in (0.0, 0.25, 0.45, 0.65, 0.9, 1.25):
        s.current_time = t
        ov = s.overlay_at(s._times[s.frame_position(t)])
        assert ov["analysed_time"] == w.analysed_time  # one analysed frame for overlay and inspector
        sel = [d for d in ov["faces"] if d["selected"]]
        assert len(sel) == 1 and w.shown == f"face {sel[0]['key']}"
    s.current_time = 1.25
    assert w.shown == "face 1" and w.model_top["label"] == "fear" and "AU12" in w.active()
    assert w.in_view == ["face 1"]
    # the analysed frame at 0.8 s covers the frame at 1.0 s too (stride 2), not the one at 1.2 s... the
    # frame at 1.25 s is the video frame at 1.2 s, analysed itself
    assert w.analysed_time == pytest.approx(1.2)
    # selecting face 0 explicitly: the inspector says it is not in view (and who is), the overlay
    # still draws face 1, unselected
    ex.face = "0"
    assert w.face == "0" and w.shown == "" and w.values[0] is None and w.in_view == ["face 1"]
    assert [d["selected"] for d in s.overlay_at(1.2)["faces"]] == [False]
    # the face timeline follows the selection; auto fills both turns
    emo0 = next(tr for tr in s.timelines if tr["name"] == "face · emotion")
    fear = np.array([np.nan if v is None else v for v in emo0["series"][EMOTIONS.index("fear")]["values"]])
    assert np.nanmax(fear) < 0.2 and np.isfinite(fear[:100]).any()  # face 0 is never afraid
    ex.face = "auto"
    emo = next(tr for tr in s.timelines if tr["name"] == "face · emotion")
    fear = np.array([np.nan if v is None else v for v in emo["series"][EMOTIONS.index("fear")]["values"]])
    assert np.nanmax(fear) == pytest.approx(0.88)
    assert emo["confidence"] is not None  # face_score shading
    opts = s.face_options
    assert opts[0]["value"] == "auto" and {o["value"] for o in opts[1:]} == {"0", "1"}
    ex.face = "nobody"
    assert s.face == "auto"


def test_face_selection_uses_subjects_when_the_face_node_has_them(session):
    tree, f = _two_people(session)
    f = f.assign_coords(subject=("face", ["ana", "ben"]))
    f["face_subject"] = (("time", "face"), np.where(np.isfinite(f["face_box"].values[..., 0]),
                                                     np.array(["ana", "ben"])[None, :], ""))
    f.attrs["main_subject"] = "ben"
    from emonb.widgets._faces import FaceView

    v = FaceView(f, TIMES)
    assert v.keys == ["ben", "ana"] and v.options()[1]["label"].startswith("subject ben")
    w = AUInspector(f, video_times=TIMES, face="ana")
    w.current_time = 0.2
    assert w.shown == "subject ana"
    w.current_time = 1.3
    assert w.shown == "" and w.in_view == ["subject ben"]


def test_timeline_lines_break_at_gaps_and_stay_lines_where_only_sparse():
    from emonb.widgets.timeline import _series

    t = np.arange(0, 10, 0.25)  # 4 Hz, in 0.05 s bins: 4 empty bins between samples
    v = np.sin(t)
    v[(t > 4) & (t < 6)] = np.nan  # 2 s missing
    grid = 0.025 + np.arange(200) * 0.05
    out = _series(xr.DataArray(v, dims="time", coords={"time": t}), grid, 0.05)
    inside = (grid > 4.1) & (grid < 5.9)
    assert np.isnan(out[inside]).all()  # a real gap stays a gap: the line breaks
    assert np.isfinite(out[(grid > 0.3) & (grid < 3.9)]).all()  # sparse but present: a line


def test_annotator_needs_both_ends_snaps_to_frames_and_undoes(session, tmp_path):
    a = Annotator(session, store=tmp_path / "r.sqlite", reviewer="dr_lee")
    assert a.store_path == str((tmp_path / "r.sqlite").resolve())
    a.current_time = 0.25
    a.mark_in()
    with pytest.raises(eb.errors.EmonbValueError, match="both ends"):  # no silent zero-length segment
        a.add("fear")
    a._on_msg(a, {"type": "add", "label": "fear", "onset": 0.2, "offset": None}, [])
    assert "both ends" in a.error and a.annotations == []  # the form's message says so
    a.mark_out()  # out on the same frame: the segment covers that one frame
    assert (a.range_start, a.range_end) == (0.2, 0.3)
    row = a.add("fear")
    assert row["intensity"] is None and row["confidence"] is None  # not rated, not a default
    with pytest.raises(eb.errors.EmonbValueError, match="out after its in"):
        a.add("fear", onset=0.5, offset=0.5)
    a.update(row["id"], label="anger", intensity=0.4)
    a.delete(row["id"])
    assert a.annotations == [] and [d["id"] for d in a.deleted] == [row["id"]]
    assert a.undo_label == "delete anger"
    a.undo()
    assert [r["label"] for r in a.annotations] == ["anger"] and a.deleted == []
    a.undo()
    assert a.annotations[0]["label"] == "fear" and a.annotations[0]["intensity"] is None
    a.undo()
    assert a.annotations == [] and a.undo_label == "" and a.redo_label == "add fear"
    a.redo()
    a.redo()
    assert [r["label"] for r in a.annotations] == ["anger"]
    history = AnnotationStore(tmp_path / "r.sqlite").history()
    assert list(history["action"]) == ["insert", "update", "delete", "restore", "update", "delete",
                                       "restore", "update"]
    # restore a deleted row from the list
    a.delete(row["id"])
    a._on_msg(a, {"type": "restore", "id": row["id"]}, [])
    assert len(a.annotations) == 1
    # exports go beside the store under fresh names, never over a file
    (tmp_path / "r.s01.csv").write_text("mine")
    p = a.export("csv")
    assert p.name == "r.s01-2.csv" and (tmp_path / "r.s01.csv").read_text() == "mine"
    assert "anger" in p.read_text() and a.exported == str(p)
    assert a.export("eaf").suffix == ".eaf" and a.export("bids").name.endswith("_events.tsv")


def test_explore_shows_annotations_as_live_tiers(session, tmp_path):
    ex = explore(session, store=tmp_path / "t.sqlite", reviewer="dr_lee")
    s, a = ex.scrubber, ex.annotator
    assert [tr["tier"] for tr in s.tiers] == ["dr_lee"] and s.tiers[0]["intervals"] == []
    meta = s.timeline_spec["usermeta"]["emonb"]
    assert meta["tiers"] == {"dr_lee": "emonb_tier_0"}
    spec_before = s.timeline_spec
    row = a.add("happiness", onset=0.2, offset=0.6)
    assert [(d["onset"], d["label"], d["id"]) for d in s.tiers[0]["intervals"]] == [(0.2, "happiness", row["id"])]
    assert s.timeline_spec is spec_before  # updated in place by the front-end, no new chart
    a.delete(row["id"])
    assert s.tiers[0]["intervals"] == []
    # another reviewer's rows in the same store: a tier of their own (the chart is built again)
    AnnotationStore(tmp_path / "t.sqlite").add(0.4, 0.8, label="fear", session="s01", reviewer="dr_kim")
    a.refresh()
    assert [tr["tier"] for tr in s.tiers] == ["dr_lee", "dr_kim"]
    assert set(s.timeline_spec["usermeta"]["emonb"]["tiers"]) == {"dr_lee", "dr_kim"}


def test_scrubber_sends_the_sound_and_proxy_frames_first(session, tmp_path, monkeypatch):
    import wave

    from emonb.widgets.proxy import VideoProxy

    monkeypatch.setenv("EMONB_CACHE_DIR", str(tmp_path / "cache"))
    sr = 8000
    tt = 0.5 + np.arange(sr) / sr
    audio = xr.Dataset({"audio": ("time", (0.5 * np.sin(2 * np.pi * 440 * tt)).astype(np.float32))},
                       coords={"time": tt}, attrs={"sampling_rate": float(sr), "t0": 0.5})
    tree = xr.DataTree.from_dict({**{n: session[n].to_dataset() for n in session.children}, "audio": audio})
    s = Scrubber(tree)
    assert s.has_audio and s.audio_t0 == 0.5
    sent = []
    s.send = lambda msg, buffers=None: sent.append((msg, buffers))
    s._on_msg(s, {"type": "audio"}, [])
    msg, bufs = sent[-1]
    assert msg["t0"] == 0.5 and msg["rate"] == sr and msg["duration"] == pytest.approx(1.0)
    with wave.open(io.BytesIO(bufs[0])) as w:
        assert (w.getframerate(), w.getnframes(), w.getnchannels()) == (sr, sr, 1)
    assert any(tr["name"] == "sound" for tr in s.timelines)
    # the proxy: every frame as a small JPEG; a jump gets the proxy frame first, then the full one
    s._proxy.build_in_background().join(30)
    assert s._proxy.ready and s._proxy.size == (64, 48)  # 256 px wide at most, never larger than the video
    assert s._proxy.save() == s._proxy.cache_path() and str(tmp_path / "cache") in str(s._proxy.cache_path())
    sent.clear()
    s._reader._cache.clear()  # frame 5 must be decoded from its keyframe: a jump worth a proxy
    s._reader._next_index = None
    s._on_msg(s, {"type": "frame", "t": 0.65, "id": 7, "proxy": True}, [])
    assert [m["type"] for m, _ in sent] == ["proxy"]  # at once; the full frame from the background thread
    import time

    deadline = time.time() + 10
    while len(sent) < 2 and time.time() < deadline:
        time.sleep(0.01)
    kinds = [m["type"] for m, _ in sent][:2]
    assert kinds == ["proxy", "frame"] and sent[0][0]["position"] == sent[1][0]["position"] == 5
    # a frame that is cheap (decoded already) comes at once, without a proxy
    sent.clear()
    s._on_msg(s, {"type": "frame", "t": 0.65, "id": 8, "proxy": True}, [])
    assert [m["type"] for m, _ in sent] == ["frame"]
    from PIL import Image

    small = Image.open(io.BytesIO(sent[0][1][0]))
    assert small.size == s._proxy.size
    assert abs(np.asarray(small.convert("L"), float)[20:, 20:].mean() - LEVELS[5]) < 12
    # cached on disk (emonb's cache folder), read back by a new proxy of the same file
    again = VideoProxy(s._proxy.path, s._proxy.n_frames)
    assert again.load() and again.jpeg(5) == s._proxy.jpeg(5)
    # a file there that is not this video's proxy is ignored
    bad = tmp_path / "cache" / "other.npz"
    bad.write_bytes(b"not a proxy")
    assert not VideoProxy(s._proxy.path, s._proxy.n_frames).load(bad)
