"""Time and peak memory of eb.analyze_physio on ECG + EDA + RSP, beside NeuroKit2's bio_process.

Usage::

    python benchmarks/physio_speed.py              # one hour at 1000 Hz
    python benchmarks/physio_speed.py --minutes 10 --fs 500

Each measurement runs in a fresh subprocess so its peak resident memory (ru_maxrss) is its own;
the baseline memory of a bare ``import neurokit2, emonb`` process is printed for reference.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def make_signals(minutes: float, fs: int):
    import numpy as np
    import neurokit2 as nk

    seg = 60
    ecg = nk.ecg_simulate(duration=seg, sampling_rate=fs, heart_rate=70, random_state=0)
    eda = nk.eda_simulate(duration=seg, sampling_rate=fs, scr_number=5, random_state=0)
    rsp = nk.rsp_simulate(duration=seg, sampling_rate=fs, respiratory_rate=15, random_state=0)
    reps = int(np.ceil(minutes))
    n = int(minutes * 60 * fs)
    rng = np.random.default_rng(0)
    out = {}
    for name, x, sd in (("ecg", ecg, 0.02), ("eda", eda, 0.005), ("rsp", rsp, 0.01)):
        y = np.tile(x, reps)[:n]
        out[name] = y + rng.normal(0, sd, n)
    return out


def worker(kind: str, minutes: float, fs: int) -> dict:
    import numpy as np
    import xarray as xr
    import neurokit2 as nk
    import emonb as eb

    sig = make_signals(minutes, fs)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    if kind == "emonb":
        n = len(sig["ecg"])
        ds = xr.Dataset({k: ("time", v) for k, v in sig.items()}, coords={"time": np.arange(n) / fs})
        ds.attrs["sampling_rate"] = float(fs)
        ds["eda"].attrs["units"] = "uS"
        res = eb.analyze_physio(ds, progress=False)
        size = res.nbytes
    elif kind == "emonb_100hz":
        n = len(sig["ecg"])
        ds = xr.Dataset({k: ("time", v) for k, v in sig.items()}, coords={"time": np.arange(n) / fs})
        ds.attrs["sampling_rate"] = float(fs)
        ds["eda"].attrs["units"] = "uS"
        res = eb.analyze_physio(ds, progress=False, rate=100)
        size = res.nbytes
    else:
        df, _ = nk.bio_process(ecg=sig["ecg"], eda=sig["eda"], rsp=sig["rsp"], sampling_rate=fs)
        size = int(df.memory_usage(deep=True).sum())
    el = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": el, "peak_rss_mb": peak / 1024, "rss_before_mb": base / 1024, "result_mb": size / 2**20}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--fs", type=int, default=1000)
    ap.add_argument("--worker", choices=["emonb", "emonb_100hz", "neurokit"], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        print(json.dumps(worker(a.worker, a.minutes, a.fs)))
        return
    dur = a.minutes * 60
    print(f"ECG + EDA + RSP, {a.minutes:g} min at {a.fs} Hz ({int(dur * a.fs):,} samples per channel)")
    res = {}
    for kind in ("emonb", "emonb_100hz", "neurokit"):
        out = subprocess.run([sys.executable, __file__, "--worker", kind, "--minutes", str(a.minutes),
                              "--fs", str(a.fs)], capture_output=True, text=True)
        if out.returncode:
            print(f"{kind}: failed\n{out.stderr[-2000:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        res[kind] = r
        label = {"emonb": "eb.analyze_physio", "emonb_100hz": "eb.analyze_physio(rate=100)",
                 "neurokit": "neurokit2.bio_process"}[kind]
        print(f"{label:30s} {r['seconds']:7.1f} s  real-time factor {dur / r['seconds']:7.0f}x  "
              f"peak RSS {r['peak_rss_mb']:7.0f} MB (signals loaded: {r['rss_before_mb']:.0f} MB)  "
              f"result {r['result_mb']:.0f} MB")
    if "emonb" in res and "neurokit" in res:
        print(f"wrapping cost: analyze_physio / bio_process time = "
              f"{res['emonb']['seconds'] / res['neurokit']['seconds']:.2f}")


if __name__ == "__main__":
    main()
