"""Physiological recordings: CSV/TSV, OpenSignals/BITalino text, EDF/BDF, BIOPAC .acq and WFDB.

Every reader returns one :class:`xarray.Dataset` with a regular ``time`` axis in seconds and one
variable per channel, named by its type (``ecg``, ``eda``, ``rsp``, ``ppg``, ``emg``; marker channels
such as ``photosensor`` keep their name with ``channel_type="event"``). Channel types are guessed
from the channel names and can be overridden with ``channels={"Column name": "ecg"}``.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import xarray as xr

from .._checks import check_file, check_positive
from ..errors import EmonbFileError, EmonbFormatError, EmonbValueError, EmonbWarning
from ..schema import CHANNEL_TYPES, DEFAULT_UNITS
from . import Reader, find_reader

__all__ = ["load_physio", "guess_channel_type", "PHYSIO_EXTENSIONS"]

PHYSIO_EXTENSIONS = (".csv", ".tsv", ".txt", ".edf", ".bdf", ".acq", ".hea", ".dat")
_TIME_NAMES = ("time", "t", "timestamp", "times", "seconds", "sec", "secs", "time_s", "time_sec",
               "time_ms", "ms", "timestamp_ms", "elapsed")


# -- channel types ---------------------------------------------------------------------------------
def _tokens(name: str) -> list[str]:
    return [t for t in re.split(r"[^a-z0-9]+", str(name).lower()) if t]


def guess_channel_type(name: str) -> str:
    """Guess a channel's type from its name.

    Returns one of the keys of :data:`emonb.schema.CHANNEL_TYPES` (``ecg``, ``ppg``, ``eda``, ``rsp``,
    ``emg``, ``event``, ``temp``, ``acc``) or ``"other"``.

    >>> guess_channel_type("ECG lead II"), guess_channel_type("GSR"), guess_channel_type("Photosensor")
    ('ecg', 'eda', 'event')
    """
    toks = _tokens(name)
    low = str(name).lower()
    for ctype, frags in CHANNEL_TYPES.items():
        for frag in frags:
            if " " in frag:
                if frag in low:
                    return ctype
                continue
            for tok in toks:
                if tok == frag or (len(frag) >= 3 and tok.startswith(frag)):
                    return ctype
    # tokens glued to digits or letters: "ECG1", "EDA_raw" are handled above; "ecgraw" here
    for ctype, frags in CHANNEL_TYPES.items():
        if any(len(f) >= 3 and low.startswith(f) for f in frags):
            return ctype
    return "other"


def _safe_name(name: str) -> str:
    s = re.sub(r"[^0-9a-zA-Z]+", "_", str(name).strip()).strip("_").lower()
    if not s:
        s = "channel"
    if s[0].isdigit():
        s = "ch_" + s
    return s


def _assign_names(path, columns: Sequence[str], channels) -> list[tuple[str, str, str]]:
    """(original name, variable name, channel type) for each kept column."""
    if channels is None:
        chosen = {c: None for c in columns}
    elif isinstance(channels, Mapping):
        missing = [c for c in channels if c not in columns]
        if missing:
            raise EmonbValueError(
                f"{path}: channel(s) {missing} not found; the file has {list(columns)}"
            )
        chosen = {c: channels.get(c) for c in columns}
    else:
        chosen_list = [channels] if isinstance(channels, str) else list(channels)
        missing = [c for c in chosen_list if c not in columns]
        if missing:
            raise EmonbValueError(
                f"{path}: channel(s) {missing} not found; the file has {list(columns)}"
            )
        chosen = {c: None for c in chosen_list}
    out, used = [], set()
    for orig, override in chosen.items():
        if override is not None and (override in CHANNEL_TYPES or override == "other"):
            ctype = override
            base = ctype if ctype not in ("event", "other", "temp", "acc") else _safe_name(orig)
        elif override is not None:  # a new variable name; its type is guessed from it
            ctype = guess_channel_type(override)
            base = _safe_name(override)
        else:
            ctype = guess_channel_type(orig)
            base = ctype if ctype not in ("event", "other", "temp", "acc") else _safe_name(orig)
        name, k = base, 2
        while name in used:
            name, k = f"{base}_{k}", k + 1
        used.add(name)
        out.append((orig, name, ctype))
    return out


# -- shared constructor ----------------------------------------------------------------------------
def _build(path: Path, data: Mapping[str, np.ndarray], sampling_rate: float, *, channels=None,
           units: Mapping[str, str] | None = None, t0: float = 0.0, fmt: str, extra_attrs=None,
           time_start: float = 0.0) -> xr.Dataset:
    cols = list(data)
    if not cols:
        raise EmonbFileError(path, "has no signal channels")
    n = len(next(iter(data.values())))
    if n == 0:
        raise EmonbFileError(path, "contains no samples (empty recording)")
    units = dict(units or {})
    names = _assign_names(path, cols, channels)
    time = float(t0) + float(time_start) + np.arange(n, dtype=np.float64) / sampling_rate
    variables, flags = {}, []
    for orig, name, ctype in names:
        x = np.asarray(data[orig], dtype=np.float64)
        attrs = {"channel_type": ctype, "original_name": str(orig),
                 "units": units.get(orig) or DEFAULT_UNITS.get(ctype, "a.u."),
                 # "guessed": the file did not say; the channel type's usual unit is assumed
                 "units_source": "file" if units.get(orig) else "guessed"}
        nan_frac = float(np.mean(~np.isfinite(x)))
        if nan_frac > 0:
            attrs["nan_fraction"] = nan_frac
            flags.append(f"{name}:nan={nan_frac:.3f}")
            x = np.where(np.isfinite(x), x, np.nan)
        if np.isfinite(x).any() and np.nanstd(x) == 0:
            attrs["flat"] = 1
            flags.append(f"{name}:flat")
        variables[name] = ("time", x, attrs)
    attrs = {"modality": "physio", "path": str(path.resolve()), "format": fmt,
             "sampling_rate": float(sampling_rate), "t0": float(t0), "duration": n / sampling_rate,
             "flags": ";".join(flags)}
    attrs.update(extra_attrs or {})
    return xr.Dataset(variables, coords={"time": ("time", time, {"units": "s"})}, attrs=attrs)


def _rate_from_name(path: Path) -> float | None:
    m = re.search(r"(\d+(?:\.\d+)?)\s*(k?)hz", path.stem.lower())
    if not m:
        return None
    rate = float(m.group(1)) * (1000.0 if m.group(2) else 1.0)
    return rate if rate > 0 else None


# -- CSV / TSV ---------------------------------------------------------------------------------------
def _read_table(path: Path):
    import pandas as pd

    with open(path, "r", errors="replace") as fh:
        head = [fh.readline() for _ in range(5)]
    first = next((h for h in head if h.strip() and not h.startswith("#")), "")
    if not first:
        raise EmonbFileError(path, "is empty or holds only comments")
    sep = "\t" if first.count("\t") > max(first.count(","), first.count(";")) else (
        ";" if first.count(";") > first.count(",") else ",")
    try:
        df = pd.read_csv(path, sep=sep, comment="#", low_memory=False)
    except pd.errors.EmptyDataError:
        raise EmonbFileError(path, "is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise EmonbFormatError(path, f"cannot be parsed as a table: {exc}") from None
    # a header of numbers means the file has no header row
    if all(_is_number(c) for c in df.columns):
        df = pd.read_csv(path, sep=sep, comment="#", header=None, low_memory=False)
        df.columns = [f"ch{i}" for i in range(df.shape[1])]
    return df


def _is_number(s) -> bool:
    try:
        float(s)
        return True
    except (TypeError, ValueError):
        return False


def _find_time_column(df):
    for c in df.columns:
        key = _safe_name(c)
        if key in _TIME_NAMES or key.startswith("time_") or key in ("t_s",):
            return c
    return None


_SECONDS_TOKENS = ("s", "sec", "secs", "second", "seconds")
_TIME_UNITS = {"ms": 1e-3, "msec": 1e-3, "millis": 1e-3, "milliseconds": 1e-3, "us": 1e-6, "usec": 1e-6,
               "microseconds": 1e-6}


def _time_unit(path, tcol, step, sampling_rate) -> tuple[float, str]:
    """Seconds per unit of a time column, and a note on how the unit was decided.

    A unit in the column name wins (``time_ms``, ``timestamp_us``, ``time_s``). A bare name
    (``time``, ``timestamp``) is taken as seconds unless that gives a rate below 1 Hz (no
    physiological recorder samples that slowly) while milliseconds (or microseconds) give a
    plausible one; the conversion is then announced with a warning. With ``sampling_rate`` given,
    the unit that matches it is used.
    """
    toks = _tokens(tcol)
    for tok in toks:
        if tok in _TIME_UNITS:
            return _TIME_UNITS[tok], f"{tok} (from the column name)"
    if _safe_name(tcol).endswith("_ms"):
        return 1e-3, "ms (from the column name)"
    if any(tok in _SECONDS_TOKENS for tok in toks) or _safe_name(tcol) in ("time_sec", "t_s"):
        return 1.0, "s (from the column name)"
    if sampling_rate is not None:
        given = check_positive("sampling_rate", sampling_rate)
        for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
            if abs(1.0 / (step * scale) - given) <= 0.01 * given:
                if scale != 1.0:
                    warnings.warn(f"{path}: time column {tcol!r} read as {unit}: that matches "
                                  f"sampling_rate={given:g} Hz", EmonbWarning, stacklevel=4)
                return scale, f"{unit} (matches the given sampling_rate)"
        return 1.0, "s (assumed)"
    if 1.0 / step >= 1.0:
        return 1.0, "s (assumed)"
    for scale, unit in ((1e-3, "ms"), (1e-6, "us")):
        rate = 1.0 / (step * scale)
        if 1.0 <= rate <= 1e5:
            warnings.warn(f"{path}: time column {tcol!r} read as {unit}, not seconds: in seconds its "
                          f"steps of {step:g} would mean {1.0 / step:.3g} Hz, too slow for a physiological "
                          f"recording; in {unit} they are {rate:.4g} Hz (name the column "
                          f"'time_s' to keep seconds)", EmonbWarning, stacklevel=4)
            return scale, f"{unit} (detected: seconds would give {1.0 / step:.3g} Hz)"
    raise EmonbFileError(path, f"time column {tcol!r} has steps of {step:g}: {1.0 / step:.3g} Hz in seconds, "
                               "implausibly slow, and no other unit fits; name the unit in the column "
                               "(time_s, time_ms) or pass sampling_rate=")


def load_csv(path, *, sampling_rate=None, channels=None, time_column=None, t0=0.0, units=None):
    """CSV/TSV with a header row: a time column or a given rate.

    The time column is in seconds unless its name says otherwise (``time_ms``, ``timestamp_us``);
    a bare ``time``/``timestamp`` column whose steps would mean less than 1 Hz in seconds is read
    as milliseconds (or microseconds) with a warning; ``attrs["time_unit"]`` records the decision.
    """
    import pandas as pd

    p = Path(path)
    df = _read_table(p)
    if df.shape[0] == 0:
        raise EmonbFileError(p, "contains no samples (header only)")
    tcol = time_column if time_column is not None else _find_time_column(df)
    if time_column is not None and time_column not in df.columns:
        raise EmonbValueError(f"{p}: time column {time_column!r} not found; columns are {list(df.columns)}")
    extra = {}
    time_start = 0.0
    if tcol is not None:
        t = pd.to_numeric(df[tcol], errors="coerce").to_numpy(dtype=np.float64)
        df = df.drop(columns=[tcol])
        good = np.isfinite(t)
        if good.sum() < 2:
            raise EmonbFileError(p, f"time column {tcol!r} has fewer than two numeric values")
        d = np.diff(t[good])
        if np.any(d <= 0):
            raise EmonbFileError(p, f"time column {tcol!r} is not strictly increasing")
        scale, unit_note = _time_unit(p, tcol, float(np.median(d)), sampling_rate)
        if scale != 1.0:
            t = t * scale
            d = d * scale
        extra["time_unit"] = unit_note
        dt = float(np.median(d))
        span = float(t[good][-1] - t[good][0])
        # the mean rate over the whole recording, rounded to a micro-hertz so 100 Hz reads as 100
        irregular = float(np.max(np.abs(d - dt)) / dt)
        rate_from_time = float(np.round((good.sum() - 1) / span, 6)) if irregular <= 0.05 else 1.0 / dt
        if sampling_rate is not None and abs(check_positive("sampling_rate", sampling_rate) - rate_from_time) > 0.01 * rate_from_time:
            warnings.warn(f"{p}: sampling_rate={sampling_rate} disagrees with the time column "
                          f"({rate_from_time:.4g} Hz); using the time column", EmonbWarning, stacklevel=3)
        sampling_rate = rate_from_time
        time_start = float(t[good][0])
        extra["sampling_rate_source"] = f"time column {tcol!r}"
        if irregular > 0.05:
            # resample onto a regular grid at the median rate; linear interpolation, gaps > 2 dt stay NaN
            grid = np.arange(t[good][0], t[good][-1] + dt / 2, dt)
            new = {}
            for c in df.columns:
                y = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=np.float64)[good]
                ok = np.isfinite(y)
                yi = np.interp(grid, t[good][ok], y[ok]) if ok.sum() >= 2 else np.full(grid.size, np.nan)
                idx = np.searchsorted(t[good], grid)
                lo = t[good][np.clip(idx - 1, 0, good.sum() - 1)]
                hi = t[good][np.clip(idx, 0, good.sum() - 1)]
                yi[(hi - lo) > 2 * dt] = np.nan
                new[c] = yi
            df = pd.DataFrame(new)
            extra["resampled_from_irregular_time"] = 1
            extra["timing_jitter"] = irregular
    elif sampling_rate is None:
        guessed = _rate_from_name(p)
        if guessed is None:
            raise EmonbValueError(
                f"{p}: no time column and no sampling rate; pass sampling_rate=... (Hz) or add a "
                f"'time' column in seconds (columns are {list(df.columns)})"
            )
        sampling_rate = guessed
        extra["sampling_rate_source"] = "file name"
        warnings.warn(f"{p}: no time column; sampling rate {guessed:g} Hz taken from the file name",
                      EmonbWarning, stacklevel=3)
    else:
        extra["sampling_rate_source"] = "given"
    rate = check_positive("sampling_rate", sampling_rate)
    data = {}
    for c in df.columns:
        col = pd.to_numeric(df[c], errors="coerce")
        if col.notna().sum() == 0 and df[c].notna().any():
            continue  # a text column (labels, comments): not a signal
        data[str(c)] = col.to_numpy(dtype=np.float64)
    return _build(p, data, rate, channels=channels, units=units, t0=t0, fmt="csv",
                  extra_attrs=extra, time_start=time_start)


# -- OpenSignals / BITalino text --------------------------------------------------------------------
# BITalino sensor transfer functions (datasheets, PLUX): raw ADC value -> physical unit.
_VCC = 3.3
_BITALINO = {
    "ecg": ("mV", lambda a, n: (a / 2 ** n - 0.5) * _VCC / 1100.0 * 1000.0),
    "emg": ("mV", lambda a, n: (a / 2 ** n - 0.5) * _VCC / 1009.0 * 1000.0),
    "eda": ("uS", lambda a, n: (a / 2 ** n) * _VCC / 0.132),
    "rsp": ("%", lambda a, n: (a / 2 ** n - 0.5) * 100.0),
}


def _sniff_opensignals(path: Path) -> bool:
    with open(path, "r", errors="replace") as fh:
        first = fh.readline()
    return first.startswith("#") and ("Simple Text Format" in first or "OpenSignals" in first)


def load_opensignals(path, *, sampling_rate=None, channels=None, t0=0.0, convert=True, units=None):
    """OpenSignals (r)evolution / BITalino text files (Simple Text Format or the JSON header format).

    Raw ADC values of ECG, EMG, EDA and respiration channels are converted to mV, mV, uS and % with
    the BITalino transfer functions (``convert=False`` keeps raw values).
    """
    import json

    p = Path(path)
    header = {}
    json_header = None
    with open(p, "r", errors="replace") as fh:
        for line in fh:
            if not line.startswith("#"):
                break
            body = line[1:].strip()
            if body.startswith("{"):
                try:
                    json_header = json.loads(body)
                except json.JSONDecodeError:
                    pass
            elif ":=" in body:
                k, _, v = body.partition(":=")
                header[k.strip().lower()] = v.strip()
    try:
        arr = np.loadtxt(p, comments="#", ndmin=2, dtype=np.float64)
    except ValueError as exc:
        raise EmonbFormatError(p, f"OpenSignals data rows cannot be parsed: {exc}") from None
    if arr.size == 0:
        raise EmonbFileError(p, "contains no samples (empty recording)")
    labels, resolution, file_units = None, None, {}
    rate = None
    if json_header:
        dev = next(iter(json_header.values()))
        rate = dev.get("sampling rate")
        cols = dev.get("column", [])
        sensors = dev.get("sensor", [])
        res = dev.get("resolution", [])
        lab = dev.get("label", [])
        # analog channels are the last len(lab) columns
        labels = [f"{s}" if s else lab_i for s, lab_i in zip(sensors, lab)] if sensors else lab
        first = len(cols) - len(lab) if cols else arr.shape[1] - len(lab)
        keep = list(range(first, first + len(lab)))
        arr = arr[:, keep]
        resolution = res[0] if res else None
    else:
        if "sampling rate (hz)" in header:
            rate = float(header["sampling rate (hz)"])
        if "labels" in header:
            labels = [s.strip() for s in re.split(r"[\t,]+", header["labels"]) if s.strip()]
        if "resolution" in header:
            try:
                resolution = int(float(header["resolution"]))
            except ValueError:
                resolution = None
        if "units" in header:
            file_units = [u.strip() for u in re.split(r"[\t,]+", header["units"]) if u.strip()]
    if sampling_rate is not None:
        rate = sampling_rate
    if rate is None:
        raise EmonbValueError(f"{p}: the header gives no sampling rate; pass sampling_rate=...")
    if not labels or len(labels) != arr.shape[1]:
        labels = [f"A{i + 1}" for i in range(arr.shape[1])] if not labels or len(labels) < arr.shape[1] \
            else labels[: arr.shape[1]]
    data, unit_map = {}, {}
    for i, lab in enumerate(labels):
        x = arr[:, i]
        ctype = guess_channel_type(lab)
        if isinstance(file_units, list) and i < len(file_units):
            unit_map[lab] = file_units[i]
        if convert and resolution and ctype in _BITALINO and lab not in unit_map:
            u, fn = _BITALINO[ctype]
            x = fn(x, resolution)
            unit_map[lab] = u
        elif lab not in unit_map:
            unit_map[lab] = "ADC" if resolution else DEFAULT_UNITS.get(ctype, "a.u.")
        data[lab] = x
    unit_map.update(units or {})
    return _build(p, data, check_positive("sampling_rate", rate), channels=channels, units=unit_map,
                  t0=t0, fmt="opensignals",
                  extra_attrs={"resolution_bits": resolution or 0, "converted": int(bool(convert and resolution))})


# -- EDF / BDF ---------------------------------------------------------------------------------------
def _common_rate(path, signals: dict[str, np.ndarray], rates: dict[str, float]):
    """Put channels with different rates on the fastest channel's grid (linear interpolation)."""
    top = max(rates.values())
    n = max(int(round(len(x) / rates[k] * top)) for k, x in signals.items())
    t = np.arange(n) / top
    out = {}
    for k, x in signals.items():
        if abs(rates[k] - top) < 1e-9:
            y = np.full(n, np.nan)
            y[: len(x)] = x[:n]
        else:
            tk = np.arange(len(x)) / rates[k]
            y = np.interp(t, tk, x, left=np.nan, right=np.nan)
        out[k] = y
    return out, top


def _build_multirate(p, sig, rates, unit_map, *, units, channels, t0, fmt):
    """Channels recorded at different rates -> one node on the fastest channel's grid."""
    data, rate = _common_rate(p, sig, rates)
    unit_map = {k: v for k, v in unit_map.items() if v}
    unit_map.update(units or {})
    return _build(p, data, rate, channels=channels, units=unit_map, t0=t0, fmt=fmt,
                  extra_attrs={"channel_rates": ",".join(f"{k}={v:g}" for k, v in rates.items())})


def load_edf(path, *, sampling_rate=None, channels=None, t0=0.0, units=None):
    """EDF/EDF+/BDF files through pyedflib (physical units from the header)."""
    from .._checks import require

    pyedflib = require("pyedflib", extra="physio", purpose="EDF/BDF files")
    p = Path(path)
    try:
        f = pyedflib.EdfReader(str(p))
    except OSError as exc:
        raise EmonbFormatError(p, f"not a readable EDF/BDF file: {exc}") from None
    try:
        labels = f.getSignalLabels()
        sig, rates, unit_map = {}, {}, {}
        for i, lab in enumerate(labels):
            key = lab if lab not in sig else f"{lab}_{i}"
            sig[key] = f.readSignal(i)
            rates[key] = float(f.getSampleFrequency(i))
            unit_map[key] = f.getPhysicalDimension(i) or None
        ann = f.readAnnotations()
    finally:
        f.close()
    ds = _build_multirate(p, sig, rates, unit_map, units=units, channels=channels, t0=t0, fmt="edf")
    if len(ann[0]):
        ds = ds.assign(events_onset=("event", np.asarray(ann[0], float) + float(t0), {"units": "s"}),
                       events_duration=("event", np.asarray(ann[1], float), {"units": "s"}),
                       events_label=("event", np.asarray(ann[2]).astype(str)))
    return ds


# -- BIOPAC AcqKnowledge ---------------------------------------------------------------------------
def load_acq(path, *, sampling_rate=None, channels=None, t0=0.0, units=None):
    """BIOPAC AcqKnowledge ``.acq`` files through bioread (channel names and units from the file)."""
    from .._checks import require

    bioread = require("bioread", extra="physio", purpose="BIOPAC .acq files")
    p = Path(path)
    try:
        acq = bioread.read_file(str(p))
    except Exception as exc:
        raise EmonbFormatError(p, f"not a readable AcqKnowledge file: {exc}") from None
    sig, rates, unit_map = {}, {}, {}
    for ch in acq.channels:
        key = ch.name if ch.name not in sig else f"{ch.name}_{len(sig)}"
        sig[key] = np.asarray(ch.data, dtype=np.float64)
        rates[key] = float(ch.samples_per_second)
        unit_map[key] = ch.units or None
    if not sig:
        raise EmonbFileError(p, "has no channels")
    return _build_multirate(p, sig, rates, unit_map, units=units, channels=channels, t0=t0, fmt="acq")


# -- WFDB ------------------------------------------------------------------------------------------
def load_wfdb(path, *, sampling_rate=None, channels=None, t0=0.0, units=None):
    """PhysioNet WFDB records (give the ``.hea`` or ``.dat`` file)."""
    from .._checks import require

    wfdb = require("wfdb", extra="physio", purpose="WFDB records")
    p = Path(path)
    record = str(p.with_suffix(""))
    if not Path(record + ".hea").exists():
        raise EmonbFileError(p, "WFDB header (.hea) not found next to it")
    try:
        rec = wfdb.rdrecord(record)
    except Exception as exc:
        raise EmonbFormatError(p, f"not a readable WFDB record: {exc}") from None
    sig = rec.p_signal if rec.p_signal is not None else rec.d_signal
    data = {name: sig[:, i] for i, name in enumerate(rec.sig_name)}
    unit_map = dict(zip(rec.sig_name, rec.units or []))
    unit_map.update(units or {})
    return _build(p, data, float(rec.fs), channels=channels, units=unit_map, t0=t0, fmt="wfdb")


def _sniff_wfdb_dat(path: Path) -> bool:
    return path.with_suffix(".hea").exists()


def _sniff_table_txt(path: Path) -> bool:
    return not _sniff_opensignals(path)


# -- public ----------------------------------------------------------------------------------------
def load_physio(path, sampling_rate: float | None = None, *, channels=None, t0: float = 0.0,
                units: Mapping[str, str] | None = None, format: str | None = None) -> xr.Dataset:
    """Load a physiological recording as a session node.

    Parameters
    ----------
    path : str or Path
        CSV/TSV (a time column in seconds, or ``sampling_rate``), OpenSignals/BITalino ``.txt``,
        EDF/BDF, BIOPAC ``.acq`` or WFDB (``.hea``).
    sampling_rate : float, optional
        In Hz. Needed for tables without a time column (a rate in the file name such as
        ``_100hz`` is used with a warning when none is given).
    channels : dict or list, optional
        ``{"column": "ecg"}`` to set channel types (or new names); a list keeps only those columns.
        Unknown names raise an error that lists the file's channels.
    t0 : float
        Offset on the session clock in seconds.
    units : dict, optional
        ``{"column": "mV"}`` overrides units.
    format : {"csv", "opensignals", "edf", "acq", "wfdb"}, optional
        Skip format detection.

    Returns
    -------
    xarray.Dataset
        One float64 variable per channel on ``time`` (seconds); variable attrs ``channel_type``,
        ``units``, ``original_name`` (and ``nan_fraction``/``flat`` when flagged); dataset attrs
        ``sampling_rate``, ``path``, ``format``, ``t0``, ``duration``, ``flags``.
    """
    p = check_file(path, what="physio file")
    if format is not None:
        reader = {r.name.replace("physio_", ""): r for r in READERS}.get(format)
        if reader is None:
            raise EmonbValueError(f"unknown physio format {format!r}; expected one of "
                                  f"{[r.name.replace('physio_', '') for r in READERS]}")
    else:
        reader = find_reader(p, "physio")
    opts = {"sampling_rate": sampling_rate, "channels": channels, "t0": t0, "units": units}
    return reader(p, **opts)


CSV_READER = Reader("physio_csv", "physio", (".csv", ".tsv", ".txt"), load_csv, sniff=_sniff_table_txt,
                    description="CSV/TSV tables with a time column or a sampling rate")
OPENSIGNALS_READER = Reader("physio_opensignals", "physio", (".txt",), load_opensignals,
                            sniff=_sniff_opensignals, priority=10,
                            description="OpenSignals / BITalino text (Simple Text Format, JSON header)")
EDF_READER = Reader("physio_edf", "physio", (".edf", ".bdf"), load_edf, description="EDF/EDF+/BDF")
ACQ_READER = Reader("physio_acq", "physio", (".acq",), load_acq, description="BIOPAC AcqKnowledge")
WFDB_READER = Reader("physio_wfdb", "physio", (".hea", ".dat"), load_wfdb, sniff=_sniff_wfdb_dat,
                     description="PhysioNet WFDB records")
READERS = [CSV_READER, OPENSIGNALS_READER, EDF_READER, ACQ_READER, WFDB_READER]
