import json
import subprocess
import sys

HEAVY = ["torch", "mediapipe", "onnxruntime", "ipywidgets", "av", "cv2", "librosa", "neurokit2", "anywidget"]


def _loaded_after(code: str) -> list[str]:
    prog = f"import sys, json\n{code}\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_emonb_loads_no_heavy_dependency():
    assert _loaded_after("import emonb") == []


def test_listing_public_names_and_models_stays_light():
    loaded = _loaded_after("import emonb as eb\nnames = dir(eb)\neb.models.list_models()")
    for m in ("torch", "mediapipe", "onnxruntime", "ipywidgets", "cv2"):
        assert m not in loaded


def test_public_names_resolve():
    import emonb as eb

    for name in ("load_video", "load_audio", "load_physio", "load_session", "sample_session", "align",
                 "save_session", "open_session", "estimate_offset"):
        assert callable(getattr(eb, name))
    assert "load_video" in dir(eb)


def test_public_functions_survive_submodule_imports():
    # importing a submodule sets it as a package attribute; no public function may share a
    # submodule's name, or `eb.<name>` would turn into the module
    prog = ("import emonb as eb, emonb.alignment, emonb.session, emonb.analysis, emonb.fusion, emonb.sync\n"
            "assert callable(eb.align) and callable(eb.load_session) and callable(eb.analyze)\n"
            "assert callable(eb.fuse) and callable(eb.estimate_offset)\n")
    subprocess.run([sys.executable, "-c", prog], check=True)
