"""Fusion on generated sessions with known ground truth (emonb.fusion.simulate)."""

from __future__ import annotations

import json
import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import emonb as eb
from emonb.errors import EmonbValueError, EmonbWarning
from emonb.fusion import FusionMethod, Prediction, build_grid, labels_on_grid
from emonb.fusion.simulate import simulate_session
from emonb.schema import EMOTIONS

FAST_ATTENTION = {"epochs": 30}


@pytest.fixture(scope="module")
def complementary():
    return [simulate_session(40, seed=20 + i, subject=f"s{i}") for i in range(3)]


@pytest.fixture(scope="module")
def noisy_voice():
    return [simulate_session(40, seed=20 + i, subject=f"s{i}", face="good", voice="noise",
                             strength=1.5, noise=1.0) for i in range(3)]


def _rebuild(tree, *, drop=None, replace=None):
    nodes = {k: tree[k].to_dataset() for k in tree.children if k != drop}
    nodes.update(replace or {})
    out = xr.DataTree.from_dict(nodes)
    out.attrs = dict(tree.attrs)
    return out


# -- output contract ------------------------------------------------------------------------------
def test_late_fuse_output_contract(complementary):
    fused = eb.fuse(complementary[0], method="late", rate=10)
    assert fused["fused_emotion"].dims == ("time", "emotion")
    assert list(fused["emotion"].values) == list(EMOTIONS)
    assert list(fused["modality"].values) == ["face", "voice", "physio", "text"]
    assert fused.sizes["time"] == 400  # 0 .. 39.93 s (last face frame) at 10 Hz
    np.testing.assert_allclose(np.diff(fused["time"].values), 0.1, atol=1e-9)
    p = fused["fused_emotion"].values
    ok = np.isfinite(p).all(axis=1)
    assert ok.mean() > 0.95
    np.testing.assert_allclose(p[ok].sum(axis=1), 1, atol=1e-5)
    w = fused["modality_weight"].values
    np.testing.assert_allclose(w[ok].sum(axis=1), 1, atol=1e-5)
    assert np.all(w[ok] >= 0)
    for v in ("fused_valence", "fused_arousal", "fused_confidence"):
        x = fused[v].values[ok]
        assert np.isfinite(x).all() and x.min() >= -1 and x.max() <= 1
    assert fused.attrs["method"] == "late"
    assert fused.attrs["modalities_present"] == "face,voice,physio,text"
    assert json.loads(fused.attrs["parameters"])["ensemble"] == "mean"
    assert fused.attrs["model_license"] == "MIT"


def test_most_confident_face_is_used():
    t = np.arange(0, 5, 0.1)
    P = np.zeros((t.size, 2, 7))
    P[:, 0, EMOTIONS.index("sadness")] = 1  # face 0: low score, sad
    P[:, 1, EMOTIONS.index("happiness")] = 1  # face 1: high score, happy
    score = np.tile([0.2, 0.95], (t.size, 1))
    face = xr.Dataset({"face_emotion": (("time", "face", "emotion"), P),
                       "face_score": (("time", "face"), score)},
                      coords={"time": t, "face": [0, 1], "emotion": list(EMOTIONS)})
    fused = eb.fuse(xr.DataTree.from_dict({"face": face}), rate=5)
    top = fused["fused_emotion"].argmax("emotion").values
    assert set(np.asarray(EMOTIONS)[top]) == {"happiness"}
    assert fused.attrs["modalities_absent"] == "voice,physio,text"


def test_missing_and_all_nan_modality_lower_weight_only(complementary):
    tree = complementary[0]
    voice = tree["voice"].to_dataset()
    nan_voice = voice.copy(deep=True)
    for v in nan_voice.data_vars:
        nan_voice[v] = nan_voice[v] * np.nan
    for t in (_rebuild(tree, drop="voice"), _rebuild(tree, replace={"voice": nan_voice})):
        fused = eb.fuse(t, rate=10)
        assert np.all(np.nan_to_num(fused["modality_weight"].sel(modality="voice").values) == 0)
        assert "voice" in fused.attrs["modalities_absent"]
        p = fused["fused_emotion"].values
        face_ok = np.isfinite(p).all(axis=1)
        assert face_ok.mean() > 0.7  # face is there most of the time
    # steps with no face, no voice: emotion NaN but arousal/valence from physio/text remain
    only_physio = eb.fuse(_rebuild(tree, drop="voice"), modalities=["physio"], rate=4)
    assert np.isnan(only_physio["fused_emotion"].values).all()
    assert np.isfinite(only_physio["fused_arousal"].values).mean() > 0.9
    assert np.isnan(only_physio["fused_valence"].values).all()


def test_no_modalities_is_an_error_and_no_overlap_warns():
    with pytest.raises(EmonbValueError, match="no modality results"):
        eb.fuse(xr.DataTree.from_dict({"video": xr.Dataset({"x": ("time", [1.0, 2.0])},
                                                            coords={"time": [0.0, 1.0]})}))
    t1, t2 = np.arange(0, 5, 0.1), np.arange(10, 15, 0.1)
    p = np.full((t1.size, 7), 1 / 7)
    tree = xr.DataTree.from_dict({
        "face": xr.Dataset({"face_emotion": (("time", "emotion"), p)},
                           coords={"time": t1, "emotion": list(EMOTIONS)}),
        "voice": xr.Dataset({"voice_emotion": (("time", "emotion"), p)},
                            coords={"time": t2, "emotion": list(EMOTIONS)})})
    with pytest.warns(EmonbWarning, match="do not overlap"):
        fused = eb.fuse(tree, rate=2)
    w = fused["modality_weight"].to_pandas()
    assert (w.loc[0:4.9, "face"] == 1).all() and (w.loc[10:14.9, "voice"] == 1).all()
    assert fused["fused_emotion"].sel(time=slice(6, 9)).isnull().all()


def test_ensembles_and_weights(complementary):
    tree = complementary[0]
    mx = eb.fuse(tree, ensemble="max")
    w = mx["modality_weight"].values
    ok = np.isfinite(w).all(axis=1)
    # "max": one modality per output (emotion, valence, arousal), so shares are multiples of 1/6
    assert np.allclose(np.round(w[ok] * 6), w[ok] * 6, atol=1e-4)
    assert ((w[ok] > 0).sum(axis=1) <= 3).all()
    poe = eb.fuse(tree, ensemble="product")
    p = poe["fused_emotion"].values
    ok = np.isfinite(p).all(axis=1)
    np.testing.assert_allclose(p[ok].sum(axis=1), 1, atol=1e-5)
    face_only = eb.fuse(tree, weights={"voice": 0.0, "physio": 0.0, "text": 0.0})
    fw = face_only["modality_weight"].sel(modality="face").values
    assert np.nanmin(fw) == 1.0
    # the result records the weights it was made with, defaults filled in
    assert json.loads(face_only.attrs["weights"])["emotion"] == {"face": 1.0, "voice": 0.0, "physio": 0.0, "text": 0.0}
    assert json.loads(mx.attrs["weights"])["arousal"] == eb.fusion.DEFAULT_WEIGHTS
    with pytest.raises(EmonbValueError, match="ensemble"):
        eb.fuse(tree, ensemble="vote")
    with pytest.raises(EmonbValueError, match="unknown modalities"):
        eb.fuse(tree, weights={"eeg": 1.0})


def test_text_segments_give_valence():
    text = xr.Dataset({"text_valence": ("segment", [0.8, -0.6]), "start": ("segment", [0.0, 3.0]),
                       "end": ("segment", [2.0, 5.0])})
    fused = eb.fuse(xr.DataTree.from_dict({"text": text}), rate=10)
    v = fused["fused_valence"].to_pandas()
    assert np.allclose(v.loc[0.2:1.8], 0.8) and np.allclose(v.loc[3.2:4.8], -0.6)
    assert v.loc[2.2:2.8].isna().all()  # between segments: nothing said


# -- learned fusion, persistence --------------------------------------------------------------
ROUND_TRIPS = [("late", None), ("early", None), ("early", {"regressor": False}), ("attention", FAST_ATTENTION)]


@pytest.mark.parametrize("method,params", ROUND_TRIPS)
def test_train_save_load_roundtrip(complementary, tmp_path, method, params):
    fuser = eb.fusion.train(complementary[:2], method=method, params=params)
    assert fuser.rate_ == 10.0 and fuser.subjects_ == ["s0", "s1"]
    a = eb.fuse(complementary[2], model=fuser)
    path = fuser.save(tmp_path / "f.npz")
    assert path == tmp_path / "f.npz" and zipfile.is_zipfile(path)
    b = eb.fuse(complementary[2], method=method, model=path)
    xr.testing.assert_identical(a, b)  # the same predictions, to the bit
    back = eb.fusion.load(path)
    assert type(back) is type(fuser) and back.params() == fuser.params()
    assert sorted(k for k in vars(back) if k.endswith("_")) == sorted(k for k in vars(fuser) if k.endswith("_"))
    assert a.attrs["method"] == method
    w = a["modality_weight"].values
    ok = np.isfinite(w).all(axis=1)
    np.testing.assert_allclose(w[ok].sum(axis=1), 1, atol=1e-5)
    if method == "attention":
        assert a.attrs["device"] in ("cpu", "cuda")
    # a session without voice still fuses (voice masked out / imputed)
    c = eb.fuse(_rebuild(complementary[2], drop="voice"), model=back)
    assert np.isfinite(c["fused_emotion"].values).all(axis=1).mean() > 0.7
    assert np.nan_to_num(c["modality_weight"].sel(modality="voice").values).max() == 0


def test_unfitted_and_parametrised_methods_round_trip(complementary, tmp_path):
    late = eb.fusion.LateFusion(weights={"face": 0.3, "voice": 2.0}, ensemble="product")
    late.save(tmp_path / "late.npz")
    back = eb.fusion.load(tmp_path / "late.npz")
    assert back.params() == late.params() and not back.is_fitted
    xr.testing.assert_identical(eb.fuse(complementary[0], model=late), eb.fuse(complementary[0], model=back))


def test_saved_model_is_plain_arrays_and_json(complementary, tmp_path):
    """The file is an .npz that numpy reads without pickle; its header is JSON."""
    fuser = eb.fusion.train(complementary[:2], method="early")
    path = fuser.save(tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    assert all(a.dtype.kind in "biufU" for a in arrays.values())
    header = json.loads(str(arrays["__emonb_fusion__"][()]))
    assert header["format"] == "emonb-fusion" and header["method"] == "early"
    text = json.dumps(header)
    assert "LogisticRegression" in text and "StandardScaler" in text and "SimpleImputer" in text
    # the fitted coefficients are in there as arrays
    coef = fuser.estimator_[-1].coef_
    assert any(a.shape == coef.shape and np.array_equal(a, coef) for a in arrays.values())


def test_save_refuses_to_overwrite_and_names_what_it_cannot_store(complementary, tmp_path):
    fuser = eb.fusion.train(complementary[:2], method="late")
    fuser.save(tmp_path / "m.npz")
    with pytest.raises(eb.EmonbFileError, match="m.npz.*already exists.*overwrite=True"):
        fuser.save(tmp_path / "m.npz")
    fuser.save(tmp_path / "m.npz", overwrite=True)
    with pytest.raises(eb.EmonbFileError, match="folder"):
        fuser.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]  # no temporary file left


@pytest.mark.parametrize("estimator,regressor", [
    ("GaussianNB", "LinearRegression"),
    ("LinearDiscriminantAnalysis", "Lasso"),
    ("LogisticRegression", "ElasticNet"),
])
def test_supported_sklearn_estimators_round_trip(complementary, tmp_path, estimator, regressor):
    import sklearn.discriminant_analysis as da
    import sklearn.linear_model as lm
    import sklearn.naive_bayes as nb
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler

    classes = {"GaussianNB": nb.GaussianNB, "LinearDiscriminantAnalysis": da.LinearDiscriminantAnalysis,
               "LogisticRegression": lm.LogisticRegression}
    est = make_pipeline(SimpleImputer(), MinMaxScaler(), classes[estimator]())
    reg = make_pipeline(SimpleImputer(add_indicator=True), RobustScaler(), MaxAbsScaler(),
                        getattr(lm, regressor)(**({} if regressor == "LinearRegression" else {"alpha": 0.01})))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence / collinearity warnings of the tiny models
        fuser = eb.fusion.train(complementary[:2], method="early", params={"estimator": est, "regressor": reg})
        a = eb.fuse(complementary[2], model=fuser)
        b = eb.fuse(complementary[2], model=fuser.save(tmp_path / "m.npz"))
    xr.testing.assert_identical(a, b)


def test_untrained_learned_fusion_is_a_clear_error(complementary, tmp_path):
    with pytest.raises(EmonbValueError, match="must be trained"):
        eb.fuse(complementary[0], method="early")
    bad = tmp_path / "x.joblib"
    bad.write_text("not a model")
    with pytest.raises(eb.EmonbFileError, match="x.joblib.*not a saved emonb fusion model"):
        eb.fuse(complementary[0], model=bad)


def test_early_fusion_accepts_any_estimator(complementary, tmp_path):
    from sklearn.ensemble import HistGradientBoostingClassifier

    fuser = eb.fusion.train(complementary[:2], method="early",
                            params={"estimator": HistGradientBoostingClassifier(max_iter=30),
                                    "regressor": False})
    out = eb.fuse(complementary[2], model=fuser)
    assert np.isfinite(out["fused_arousal"].values).mean() > 0.9
    # an estimator the safe format does not know is refused on save, with what it can store
    with pytest.raises(EmonbValueError, match="HistGradientBoostingClassifier.*without pickle.*LogisticRegression"):
        fuser.save(tmp_path / "hgb.npz")
    assert not (tmp_path / "hgb.npz").exists()


# -- model files that are not what they claim: nothing runs, clear errors ---------------------------
class _Payload:
    """Unpickling this creates the marker file: what a malicious 'fusion model' would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def _plant_pickle(tmp_path, name="evil.joblib"):
    import joblib

    marker = tmp_path / "PWNED"
    path = tmp_path / name
    joblib.dump(_Payload(marker), path)
    return path, marker


def test_a_pickle_model_file_is_refused_and_its_payload_never_runs(complementary, tmp_path):
    from emonb.report import sections as rs

    path, marker = _plant_pickle(tmp_path)
    with pytest.raises(eb.EmonbFileError, match=r"evil\.joblib.*pickle.*run any code.*trusted=True"):
        eb.fusion.load(path)
    with pytest.raises(eb.EmonbFileError, match=r"evil\.joblib.*pickle"):
        eb.fuse(complementary[0], model=path)
    with pytest.raises(eb.EmonbFileError, match=r"evil\.joblib.*pickle"):
        eb.fuse(complementary[0], model=str(path), method="early")
    with pytest.raises(eb.EmonbFileError, match=r"evil\.joblib.*pickle"):  # the report's fusion path
        rs.prepare_session(complementary[0], modalities=[], fusion=str(path))
    # whatever the name: a pickle saved as .npz is still a pickle
    renamed = tmp_path / "model.npz"
    renamed.write_bytes(path.read_bytes())
    with pytest.raises(eb.EmonbFileError, match=r"model\.npz.*pickle"):
        eb.fusion.load(renamed)
    assert not marker.exists()
    # the payload is real: loading it as trusted runs it (and the result is no fusion method)
    with pytest.warns(EmonbWarning, match="trusted=True"):
        with pytest.raises(eb.EmonbFileError, match="not an emonb fusion method"):
            eb.fusion.load(path, trusted=True)
    assert marker.read_text() == "pwned"


def test_an_old_joblib_model_loads_only_when_trusted(complementary, tmp_path):
    import joblib

    fuser = eb.fusion.train(complementary[:2], method="early")
    joblib.dump(fuser, tmp_path / "old.joblib")
    with pytest.raises(eb.EmonbFileError, match="old.joblib.*pickle"):
        eb.fusion.load(tmp_path / "old.joblib")
    with pytest.warns(EmonbWarning, match="old.joblib.*pickle"):
        old = eb.fusion.load(tmp_path / "old.joblib", trusted=True)
    new = eb.fusion.load(old.save(tmp_path / "new.npz"))  # converted to the safe format
    xr.testing.assert_identical(eb.fuse(complementary[2], model=old), eb.fuse(complementary[2], model=new))


def _write_npz(path, header, **arrays):
    with open(path, "wb") as f:
        np.savez(f, __emonb_fusion__=np.array(json.dumps(header)), **arrays)
    return path


@pytest.mark.parametrize("case, match", [
    ("object_array", "objects"),
    ("no_header", "no '__emonb_fusion__'"),
    ("other_format", "wrong format name"),
    ("newer_format", "format version 99"),
    ("unknown_method", "'no-such-method', which is not installed"),
    ("foreign_class", "'system'.*not one of the scikit-learn classes"),
    ("bad_attribute", "invalid attribute name '__class__'"),
    ("private_state", "not fitted attributes"),
    ("missing_array", "missing array 'a9'"),
    ("bad_tag", "unexpected tag '\\$call'"),
    ("net_mismatch", "does not match its configuration"),
    ("wrong_estimator", "StandardScaler\\) has no predict_proba"),
    ("huge_array", "more than 512 MiB"),
    ("not_npy_member", "not an array"),
])
def test_forged_model_files_are_refused(tmp_path, case, match):
    base = {"format": "emonb-fusion", "format_version": 1, "method": "late", "params": {}, "state": {}}
    p = tmp_path / f"{case}.npz"
    if case == "object_array":
        with open(p, "wb") as f:
            np.savez(f, __emonb_fusion__=np.array(json.dumps(base)), a0=np.array([{"x": 1}], dtype=object))
    elif case == "no_header":
        with open(p, "wb") as f:
            np.savez(f, a0=np.zeros(3))
    elif case == "huge_array":
        import io

        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": (1 << 40,)})
        with zipfile.ZipFile(p, "w") as z:
            z.writestr("a0.npy", buf.getvalue())
            z.writestr("__emonb_fusion__.npy", b"")
    elif case == "not_npy_member":
        with zipfile.ZipFile(p, "w") as z:
            z.writestr("payload.pkl", b"\x80\x04.")
    else:
        h = dict(base)
        arrays = {}
        if case == "other_format":
            h["format"] = "something-else"
        elif case == "newer_format":
            h["format_version"] = 99
        elif case == "unknown_method":
            h["method"] = "no-such-method"
        elif case == "foreign_class":
            h["method"] = "early"
            h["state"] = {"estimator_": {"$sklearn": "system", "params": {}, "attrs": {}}}
        elif case == "bad_attribute":
            h["method"] = "early"
            h["state"] = {"estimator_": {"$sklearn": "StandardScaler", "params": {}, "attrs": {"__class__": 1}}}
        elif case == "private_state":
            h["state"] = {"_cache": 1}
        elif case == "missing_array":
            h["state"] = {"weights_": {"$array": "a9"}}
        elif case == "bad_tag":
            h["state"] = {"weights_": {"$call": "os.system"}}
        elif case == "wrong_estimator":
            h["method"] = "early"
            h["state"] = {"estimator_": {"$sklearn": "StandardScaler", "params": {}, "attrs": {}}}
        elif case == "net_mismatch":
            h["method"] = "attention"
            h["state"] = {"net_dims_": [5, 3], "net_": {"$dict": [["score.weight", {"$array": "a0"}]]}}
            arrays["a0"] = np.zeros((1, 32), np.float32)
        _write_npz(p, h, **arrays)
    with pytest.raises(eb.EmonbFileError, match=f"{case}.npz.*{match}"):
        eb.fusion.load(p)


# -- labels --------------------------------------------------------------------------------------
def test_labels_from_dataframe_and_bad_labels(complementary):
    tree = complementary[0]
    grid = build_grid(tree, rate=10, with_features=False)
    df = pd.DataFrame({"onset": [0.0, 10.0], "duration": [10.0, 5.0], "label": ["happy", "angry"]})
    y, val, aro = labels_on_grid(tree, grid, df)
    assert set(y[:100]) == {EMOTIONS.index("happiness")}
    assert set(y[100:150]) == {EMOTIONS.index("anger")} and set(y[150:]) == {-1}
    assert np.isnan(val[150:]).all()
    bad = df.assign(label=["happy", "bored"])
    with pytest.raises(EmonbValueError, match="bored"):
        labels_on_grid(tree, grid, bad)
    y2, _, _ = labels_on_grid(tree, grid, bad, label_map={"bored": "neutral"})
    assert set(y2[100:150]) == {EMOTIONS.index("neutral")}
    one = pd.DataFrame({"onset": [0.0], "duration": [40.0], "label": ["happiness"]})
    for method in ("early", "attention"):
        with pytest.raises(EmonbValueError, match="one class only"):
            eb.fusion.train([tree], labels=one, method=method)
    with pytest.raises(EmonbValueError, match="onset, duration and label"):
        eb.fusion.train([tree], labels=pd.DataFrame({"t": [1]}), method="early")


# -- the ground-truth benchmark: complementary and pure-noise modalities ---------------------------
def _singles(trees):
    singles = {m: eb.fusion.evaluate(trees, method="late", modalities=[m], cv=None)
               for m in ("face", "voice")}
    best = max(singles, key=lambda m: singles[m].accuracy)
    return singles, best


@pytest.mark.parametrize("method,params", [("late", None), ("early", None), ("attention", FAST_ATTENTION)])
def test_fusion_beats_best_single_modality_when_complementary(complementary, method, params):
    singles, best = _singles(complementary)
    rep = eb.fusion.evaluate(complementary, method=method, params=params, cv="leave-one-subject-out")
    on_best = rep.subset(singles[best].covered)
    assert rep.folds == 3 and rep.coverage > 0.95
    # each modality is blind within one group of classes: alone they reach ~0.7, fused > 0.85
    assert max(s.accuracy for s in singles.values()) < 0.8
    assert on_best.accuracy > singles[best].accuracy + 0.1
    assert on_best.macro_f1 > singles[best].macro_f1 + 0.1
    assert rep.ccc_arousal > 0.7 and rep.ccc_valence > 0.6


@pytest.mark.parametrize("method,params", [("late", None), ("early", None), ("attention", FAST_ATTENTION)])
def test_fusion_not_hurt_by_a_pure_noise_modality(noisy_voice, method, params):
    singles, best = _singles(noisy_voice)
    assert best == "face" and singles["voice"].accuracy < 0.3
    rep = eb.fusion.evaluate(noisy_voice, method=method, params=params, cv="leave-one-subject-out")
    on_best = rep.subset(singles[best].covered)
    assert on_best.accuracy >= singles[best].accuracy - 0.03
    assert on_best.macro_f1 >= singles[best].macro_f1 - 0.03


def test_late_default_weights_are_hurt_by_noise_but_learned_weights_are_not(noisy_voice):
    singles, best = _singles(noisy_voice)
    untrained = eb.fusion.evaluate(noisy_voice, method="late", cv=None).subset(singles[best].covered)
    fitted = eb.fusion.train(noisy_voice, method="late")
    assert fitted.weights_["emotion"]["voice"] < 0.05 < fitted.weights_["emotion"]["face"]
    assert untrained.accuracy < singles[best].accuracy - 0.1  # why learned weights exist


def test_report_metrics_and_chart(complementary):
    rep = eb.fusion.evaluate(complementary, method="late", cv="leave-one-session-out")
    assert rep.per_class_recall.index.isin(EMOTIONS).all()
    assert rep.confusion.values.sum() == round(rep.n_steps * rep.coverage)
    d = rep.to_dict()
    assert 0 <= d["accuracy"] <= 1 and set(d["per_class_recall"]) <= set(EMOTIONS)
    spec = rep.chart().to_dict()
    assert spec["layer"][0]["mark"]["type"] == "rect"
    with pytest.raises(EmonbValueError, match="at least two"):
        eb.fusion.evaluate(complementary[:1], method="late")
    with pytest.raises(EmonbValueError, match="cv"):
        eb.fusion.evaluate(complementary, cv="kfold")


def test_ccc():
    from emonb.fusion.evaluate import ccc

    a = np.linspace(-1, 1, 50)
    assert ccc(a, a) == pytest.approx(1.0)
    assert ccc(a, a + 0.5) < 0.9  # a bias lowers concordance, unlike correlation
    assert ccc(a, -a) == pytest.approx(-1.0)


# -- registry ------------------------------------------------------------------------------------
def test_registry_and_plugins(complementary, tmp_path):
    assert {"late", "early", "attention"} <= set(eb.fusion.list_fusions())

    class Uniform(FusionMethod):
        name = "uniform-test"

        def predict(self, grid):
            T = grid.time.size
            w = np.zeros((T, 4))
            w[:, 0] = 1
            return Prediction(np.full((T, 7), 1 / 7), np.zeros(T), np.zeros(T), w, np.zeros(T))

    eb.fusion.register_fusion(Uniform)
    try:
        out = eb.fuse(complementary[0], method="uniform-test")
        assert out.attrs["method"] == "uniform-test"
        np.testing.assert_allclose(out["fused_emotion"].values, 1 / 7, atol=1e-6)
        u = Uniform()
        u.level_ = np.arange(3.0)  # plain learned state of a plugin saves with the default hooks
        back = eb.fusion.load(u.save(tmp_path / "u.npz"))
        assert type(back) is Uniform and np.array_equal(back.level_, u.level_)
    finally:
        eb.fusion.FUSION_REGISTRY.unregister("uniform-test")
    with pytest.raises(eb.EmonbFileError, match="u.npz.*'uniform-test', which is not installed"):
        eb.fusion.load(tmp_path / "u.npz")
    with pytest.raises(EmonbValueError, match="FusionMethod"):
        eb.fusion.register_fusion(object, name="bad")
    with pytest.raises(EmonbValueError, match="unknown fusion method"):
        eb.fuse(complementary[0], method="nope")


def test_import_is_light():
    import subprocess
    import sys

    code = ("import sys, emonb as eb; eb.fusion; eb.fusion.list_fusions(); "
            "print([m for m in ('torch', 'sklearn', 'altair') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
