"""The committed front-end bundles (``widgets/<entry>.js``) are up to date with ``widgets/src``.

Rebuilds every entry with esbuild into a temporary folder and compares byte for byte; skips (with
the reason) where esbuild is not installed (``npm install --prefix .esbuild esbuild@0.25.12``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from emonb.widgets import _build

WIDGETS = Path(__file__).resolve().parents[1] / "widgets"


def test_every_entry_has_a_committed_bundle_and_sources():
    for name in _build.ENTRIES:
        assert (WIDGETS / "src" / f"{name}.js").is_file()
        bundle = (WIDGETS / f"{name}.js").read_text(encoding="utf-8")
        assert bundle.startswith(_build.BANNER) and "as default" in bundle and "\nimport " not in bundle


def test_bundles_are_up_to_date_with_their_sources(tmp_path):
    exe = _build.find_esbuild()
    if exe is None:
        pytest.skip("esbuild is not installed (npm install --prefix .esbuild esbuild@%s)" % _build.ESBUILD_VERSION)
    if _build.esbuild_version(exe) != _build.ESBUILD_VERSION:
        pytest.skip(f"esbuild {_build.esbuild_version(exe)} here; the bundles are made with {_build.ESBUILD_VERSION}")
    for out in _build.build(tmp_path, exe=exe):
        committed = WIDGETS / out.name
        assert out.read_bytes() == committed.read_bytes(), \
            f"widgets/{out.name} is out of date with widgets/src: run python -m emonb.widgets._build"
