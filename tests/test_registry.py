from importlib import metadata

import numpy as np
import pytest
import xarray as xr

import emonb as eb
from emonb.io import READERS, Reader, register_reader
from emonb.registry import Registry


def test_builtin_readers_are_registered_like_plugins():
    names = READERS.names()
    for n in ("video", "image", "audio", "physio_csv", "physio_opensignals", "physio_edf", "physio_acq",
              "physio_wfdb", "transcript"):
        assert n in names
    # the same objects are declared in the package's entry points
    eps = {ep.name for ep in metadata.entry_points(group="emonb.readers")}
    assert {"video", "audio", "physio_csv", "transcript"} <= eps


def test_a_registered_reader_is_used_for_its_files(tmp_path):
    def load_beat(path, *, sampling_rate=None, channels=None, t0=0.0, units=None):
        x = np.array([float(v) for v in open(path).read().split()])
        return xr.Dataset({"ecg": ("time", x, {"channel_type": "ecg", "units": "mV"})},
                          coords={"time": t0 + np.arange(x.size) / 50.0}, attrs={"sampling_rate": 50.0})

    register_reader(Reader("beat", "physio", (".beat",), load_beat), overwrite=True)
    try:
        (tmp_path / "r.beat").write_text("1 2 3 4")
        d = eb.load_physio(tmp_path / "r.beat")
        assert d.sizes["time"] == 4 and d.attrs["sampling_rate"] == 50
    finally:
        READERS.unregister("beat")


def test_broken_plugin_is_skipped_with_a_warning(monkeypatch):
    ep = metadata.EntryPoint(name="broken", value="emonb_no_such_module:reader", group="emonb.testgroup")
    real = metadata.entry_points

    def fake_entry_points(**kw):
        return [ep] if kw.get("group") == "emonb.testgroup" else real(**kw)

    monkeypatch.setattr(metadata, "entry_points", fake_entry_points)
    reg = Registry("emonb.testgroup", "reader")
    with pytest.warns(eb.EmonbWarning, match="broken"):
        assert reg.names() == []
    assert "broken" in reg.unavailable()
    with pytest.raises(eb.EmonbValueError, match="unavailable"):
        reg.get("broken")


def test_duplicate_names_need_overwrite():
    reg = Registry("emonb.none", "thing")

    class T:
        name = "x"

    reg.register(T())
    with pytest.raises(eb.EmonbValueError, match="already registered"):
        reg.register(T())
