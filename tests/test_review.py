"""AnnotationStore (SQLite, history, concurrency, formats) and agreement statistics."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import emonb as eb
from emonb.errors import EmonbFileError, EmonbValueError
from emonb.review import AnnotationStore, agreement, cohen_kappa, krippendorff_alpha


@pytest.fixture
def store(tmp_path):
    return AnnotationStore(tmp_path / "reviews.sqlite", session="s01", reviewer="dr_lee")


# ---------------------------------------------------------------- store basics

def test_add_get_list_and_wal(store):
    a = store.add(1.0, 2.5, label="happiness", intensity=0.6, confidence=0.9, note="big smile")
    assert a["duration"] == pytest.approx(1.5)
    got = store.get(a["id"])
    assert got["label"] == "happiness" and got["reviewer"] == "dr_lee" and got["session"] == "s01"
    assert got["intensity"] == 0.6 and got["note"] == "big smile" and got["version"] == 1
    store.add(0.2, duration=0.3, label="AU12", scheme="facs", reviewer="rater2")
    rows = store.list()
    assert [r["onset"] for r in rows] == [0.2, 1.0]  # sorted by onset
    con = sqlite3.connect(store.path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "1"
    df = store.to_dataframe()
    assert list(df["offset"]) == [0.5, 2.5]
    assert np.isnan(df.loc[df["reviewer"] == "rater2", "intensity"]).all()  # missing = NaN


def test_bad_annotations_are_refused(store):
    with pytest.raises(EmonbValueError, match="not in coding scheme"):
        store.add(0, 1, label="joy")
    with pytest.raises(EmonbValueError, match="before onset"):
        store.add(2, 1, label="anger")
    with pytest.raises(EmonbValueError, match="intensity"):
        store.add(0, 1, label="anger", intensity=3)
    with pytest.raises(EmonbValueError, match="reviewer"):
        AnnotationStore(store.path, session="s01").add(0, 1, label="anger")
    assert len(store) == 0
    assert store.history().empty  # refused changes leave no trace


def test_user_defined_scheme_persists(store):
    store.define_scheme("engagement", ["engaged", "bored", "confused"])
    store.add(0, 1, label="bored", scheme="engagement")
    other = AnnotationStore(store.path, session="s01", reviewer="x")
    assert other.scheme_labels("engagement") == ("engaged", "bored", "confused")
    with pytest.raises(EmonbValueError, match="not in coding scheme"):
        other.add(0, 1, label="happy", scheme="engagement")
    with pytest.raises(EmonbValueError, match="other labels"):
        other.define_scheme("engagement", ["a", "b"])


def test_update_delete_history_keeps_everything(store):
    a = store.add(1.0, 2.0, label="anger")
    b = store.update(a["id"], label="disgust", offset=3.0, note="changed my mind")
    assert b["label"] == "disgust" and b["duration"] == 2.0 and b["version"] == 2
    with pytest.raises(EmonbValueError, match="changed by someone else"):
        store.update(a["id"], expected_version=1, label="fear")
    store.delete(a["id"])
    assert store.list() == [] and store.get(a["id"])["deleted"] == 1
    store.restore(a["id"])
    assert len(store.list()) == 1
    h = store.history(a["id"])
    assert list(h["action"]) == ["insert", "update", "delete", "restore"]
    assert h.iloc[0]["before"] is None and h.iloc[0]["after"]["label"] == "anger"
    assert h.iloc[1]["before"]["label"] == "anger" and h.iloc[1]["after"]["label"] == "disgust"
    assert h.iloc[2]["after"]["deleted"] == 1
    # the history and the rows cannot be rewritten or removed, even with raw SQL
    con = sqlite3.connect(store.path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("UPDATE history SET action='x'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("DELETE FROM history")
    with pytest.raises(sqlite3.DatabaseError, match="never removed"):
        con.execute("DELETE FROM annotations")


def _writer(path, reviewer, n, queue):
    try:
        s = AnnotationStore(path, session="s01", reviewer=reviewer, timeout=60)
        ids = []
        for i in range(n):
            a = s.add(i * 0.1, duration=0.05, label="happiness" if i % 2 else "sadness", intensity=0.5)
            ids.append(a["id"])
            if i % 5 == 0:
                s.update(a["id"], note=f"edit {i}")
            if i % 7 == 0:
                s.delete(a["id"])
        queue.put((reviewer, ids))
    except Exception as e:  # pragma: no cover - reported to the parent
        queue.put((reviewer, repr(e)))


def test_two_processes_write_concurrently(tmp_path):
    path = tmp_path / "shared.sqlite"
    AnnotationStore(path)  # create the schema first, as a notebook would
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    n = 150
    procs = [ctx.Process(target=_writer, args=(path, r, n, q)) for r in ("a", "b")]
    for p in procs:
        p.start()
    results = dict(q.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert all(isinstance(v, list) for v in results.values()), results
    store = AnnotationStore(path)
    rows = store.list(include_deleted=True)
    assert len(rows) == 2 * n
    assert {r["id"] for r in rows} == set(results["a"]) | set(results["b"])
    n_upd = len(range(0, n, 5))
    n_del = len(range(0, n, 7))
    h = store.history()
    assert len(h) == 2 * (n + n_upd + n_del)
    assert (h["action"] == "insert").sum() == 2 * n
    assert (h["action"] == "update").sum() == 2 * n_upd
    assert (h["action"] == "delete").sum() == 2 * n_del
    assert len(store.list()) == 2 * (n - n_del)
    assert h["seq"].is_monotonic_increasing and h["seq"].is_unique


def test_locked_readonly_corrupt_and_newer_files(tmp_path):
    bad = tmp_path / "corrupt.sqlite"
    bad.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(EmonbFileError, match="corrupt"):
        AnnotationStore(bad)
    newer = tmp_path / "newer.sqlite"
    s = AnnotationStore(newer)
    con = sqlite3.connect(newer)
    con.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    con.commit()
    con.close()
    with pytest.raises(EmonbFileError, match="newer"):
        AnnotationStore(newer)
    # locked: another connection holds the write lock
    path = tmp_path / "locked.sqlite"
    s = AnnotationStore(path, session="s", reviewer="r", timeout=0.2)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("BEGIN IMMEDIATE")
    with pytest.raises(EmonbFileError, match="locked"):
        s.add(0, 1, label="fear")
    con.execute("ROLLBACK")
    s.add(0, 1, label="fear")
    ro = AnnotationStore(path, readonly=True)
    assert len(ro.list()) == 1
    with pytest.raises(EmonbFileError, match="read-only"):
        ro.add(0, 1, label="fear", session="s", reviewer="r")


# ---------------------------------------------------------------- formats

def _fill(store):
    store.add(0.5, 1.25, label="happiness", intensity=0.7, note="tab\tand, comma")
    store.add(2.0, 3.0, label="surprise", reviewer="rater2", confidence=0.4)
    store.add(2.5, duration=0.0, label="neutral", reviewer="rater2")


def test_export_csv_and_import_roundtrip(store, tmp_path):
    _fill(store)
    p = store.export(tmp_path / "ann.csv")
    df = pd.read_csv(p)
    assert len(df) == 3 and set(df["label"]) == {"happiness", "surprise", "neutral"}
    other = AnnotationStore(tmp_path / "other.sqlite")
    added = other.import_file(p)
    assert len(added) == 3
    a, b = store.to_dataframe(), other.to_dataframe(session="s01")
    cols = ["id", "onset", "duration", "label", "reviewer", "intensity", "confidence", "note"]
    pd.testing.assert_frame_equal(a[cols].reset_index(drop=True), b[cols].reset_index(drop=True))
    assert other.import_file(p) == []  # importing twice adds nothing
    assert set(other.history()["action"]) == {"import"}


def test_export_bids_events(store, tmp_path):
    _fill(store)
    p = store.export(tmp_path / "sub-01_task-x_events.tsv")
    df = pd.read_csv(p, sep="\t", keep_default_na=False)
    assert list(df.columns[:3]) == ["onset", "duration", "trial_type"]
    assert list(df["onset"]) == [0.5, 2.0, 2.5]
    assert df.loc[0, "confidence"] == "n/a" and df.loc[1, "intensity"] == "n/a"
    assert (tmp_path / "sub-01_task-x_events.json").exists()
    other = AnnotationStore(tmp_path / "o.sqlite", reviewer="import")
    assert len(other.import_file(p)) == 3
    assert sorted(other.to_dataframe()["label"]) == ["happiness", "neutral", "surprise"]


def test_export_elan_valid_and_reimport(store, tmp_path):
    _fill(store)
    p = store.export(tmp_path / "s01.eaf")
    root = ET.parse(p).getroot()
    assert root.tag == "ANNOTATION_DOCUMENT" and root.find("HEADER").get("TIME_UNITS") == "milliseconds"
    slots = {ts.get("TIME_SLOT_ID"): int(ts.get("TIME_VALUE")) for ts in root.iter("TIME_SLOT")}
    assert sorted(slots.values()) == [500, 1250, 2000, 2500, 3000]
    tiers = {t.get("TIER_ID"): t for t in root.findall("TIER")}
    assert set(tiers) == {"dr_lee", "rater2"}
    ids = [a.get("ANNOTATION_ID") for a in root.iter("ALIGNABLE_ANNOTATION")]
    assert len(ids) == len(set(ids)) == 3
    # every referenced slot exists; LINGUISTIC_TYPE referenced by tiers is declared
    for a in root.iter("ALIGNABLE_ANNOTATION"):
        assert a.get("TIME_SLOT_REF1") in slots and a.get("TIME_SLOT_REF2") in slots
    assert {lt.get("LINGUISTIC_TYPE_ID") for lt in root.iter("LINGUISTIC_TYPE")} == \
        {t.get("LINGUISTIC_TYPE_REF") for t in tiers.values()}
    other = AnnotationStore(tmp_path / "e.sqlite")
    other.import_file(p)
    df = other.to_dataframe(session="s01")
    assert sorted(zip(df["reviewer"], df["label"], df["onset"], df["offset"])) == [
        ("dr_lee", "happiness", 0.5, 1.25), ("rater2", "neutral", 2.5, 2.5), ("rater2", "surprise", 2.0, 3.0)]
    store.add(0, 1, label="fear", session="s02")
    with pytest.raises(EmonbValueError, match="one session"):
        AnnotationStore(store.path).export(tmp_path / "all.eaf")
    with pytest.raises(EmonbValueError, match="suffix"):
        store.export(tmp_path / "x.txt")


def test_to_dataset_node(store):
    _fill(store)
    ds = store.to_dataset()
    assert ds.sizes["annotation"] == 3
    assert ds["onset"].attrs["units"] == "s"
    assert list(ds["label"].values) == ["happiness", "surprise", "neutral"]
    assert np.isnan(ds["intensity"].values[1])
    tree = xr.DataTree.from_dict({"annotations": ds})
    assert "annotations" in tree.children
    assert eb.review.AnnotationStore is AnnotationStore


# ---------------------------------------------------------------- statistics

def test_cohen_kappa_hand_computed():
    # 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> p_o = .7, p_e = .5*.6 + .5*.4 = .5, kappa = .4
    a = ["y"] * 25 + ["n"] * 25
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    assert np.isnan(cohen_kappa([1, 1], [1, 1]))
    assert cohen_kappa(["y", None, "n"], ["y", "n", "n"]) == pytest.approx(1.0)  # missing pair dropped


def test_krippendorff_alpha_reference_example():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability", nominal example: alpha = 0.743
    N = None
    data = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
        [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N],
    ]
    assert krippendorff_alpha(data) == pytest.approx(0.743, abs=5e-4)


def test_krippendorff_alpha_small_hand_example():
    # 2 raters, 4 units: (a,a) (a,b) (b,b) (b,b). Coincidences: o_aa=2, o_ab=o_ba=1, o_bb=4; n_a=3, n_b=5,
    # n=8. D_o = 2/8... alpha = 1 - (n-1) * (o_ab + o_ba) / (n_a n_b + n_b n_a) = 1 - 7*2/30 = 0.5333
    assert krippendorff_alpha([["a", "a", "b", "b"], ["a", "b", "b", "b"]]) == pytest.approx(1 - 14 / 30)
    assert np.isnan(krippendorff_alpha([["a", "a"], ["a", "a"]]))


def test_agreement_on_time_grid(store):
    # A: happiness [0, 10); B: happiness [0, 8); span [0, 20) at 10 Hz -> 200 points
    # a1b1 = 80, a1b0 = 20, a0b0 = 100 -> p_o = .9, p_e = .5*.4 + .5*.6 = .5, kappa = .8
    store.add(0, 10, label="happiness", reviewer="A")
    store.add(0, 8, label="happiness", reviewer="B")
    res = agreement(store, session="s01", start=0, end=20, rate=10)
    row = res[(res["comparison"] == "reviewers") & (res["label"] == "happiness")].iloc[0]
    assert row["n_units"] == 200 and row["observed"] == pytest.approx(0.9)
    assert row["kappa"] == pytest.approx(0.8)
    # alpha for the same 2x200 binary data, by the coincidence formula: n_1 = 180, n_0 = 220, n = 400,
    # o_01 + o_10 = 40 -> alpha = 1 - 399 * 40 / (2 * 180 * 220)
    assert row["alpha"] == pytest.approx(1 - 399 * 40 / (2 * 180 * 220))
    # a third reviewer: kappa undefined, alpha defined
    store.add(0, 10, label="happiness", reviewer="C")
    res3 = agreement(store, start=0, end=20)
    r3 = res3[res3["label"] == "happiness"].iloc[0]
    assert r3["n_raters"] == 3 and np.isnan(r3["kappa"]) and 0.8 < r3["alpha"] < 1


def test_model_vs_human_agreement(store):
    store.add(0, 5, label="happiness", reviewer="A")
    store.add(5, 10, label="sadness", reviewer="A")
    t = np.arange(0, 10, 1 / 30)
    emotions = list(eb.schema.EMOTIONS)
    p = np.full((t.size, 1, len(emotions)), 0.01)
    p[t < 6, 0, emotions.index("happiness")] = 0.9   # model says happy until 6 s: 1 s of disagreement
    p[t >= 6, 0, emotions.index("sadness")] = 0.9
    model = xr.Dataset({"face_emotion": (("time", "face", "emotion"), p, {"model": "toy"})},
                       coords={"time": t, "face": [0], "emotion": emotions})
    res = agreement(store, model=model)
    overall = res[(res["comparison"] == "toy vs A") & (res["label"] == "overall")].iloc[0]
    assert overall["n_units"] == 100
    assert overall["observed"] == pytest.approx(0.9)
    # 2x2 table happiness/sadness: 50/0 over 10/40 -> p_o=.9, p_e = .6*.5 + .4*.5 = .5, kappa = .8
    assert overall["kappa"] == pytest.approx(0.8)
    hap = res[(res["comparison"] == "toy vs A") & (res["label"] == "happiness")].iloc[0]
    assert hap["kappa"] == pytest.approx(0.8)


def test_annotations_node_saved_with_the_session(store, tmp_path):
    _fill(store)
    tree = xr.DataTree.from_dict({"annotations": store.to_dataset()})
    tree.attrs["session_id"] = "s01"
    path = eb.save_session(tree, tmp_path / "s.zarr")
    back = eb.open_session(path, load=True)["annotations"].to_dataset()
    assert list(back["label"].values) == ["happiness", "surprise", "neutral"]
    assert list(back["annotation"].values) == list(store.to_dataset()["annotation"].values)
    np.testing.assert_allclose(back["onset"].values, [0.5, 2.0, 2.5])


def test_segment_agreement_by_overlap(store):
    from emonb.review import segment_agreement

    store.add(0, 2, label="happiness", reviewer="A")
    store.add(5, 6, label="happiness", reviewer="A")
    store.add(10, 11, label="anger", reviewer="A")
    store.add(0.5, 2, label="happiness", reviewer="B")   # IoU 1.5/2 = .75: match
    store.add(5.8, 7, label="happiness", reviewer="B")   # IoU .2/2 = .1: no match
    res = segment_agreement(store, min_overlap=0.5).set_index("label")
    assert res.loc["happiness", "matched"] == 1
    assert res.loc["happiness", "agreement"] == pytest.approx(2 * 1 / 4)
    assert res.loc["happiness", "mean_iou"] == pytest.approx(0.75)
    assert res.loc["anger", "matched"] == 0 and res.loc["anger", "n_b"] == 0
