"""Saving fitted fusion methods in a format that cannot run code when it is read.

A saved fusion model is **one ``.npz`` file** (a zip of ``.npy`` arrays, read back with
``numpy.load(..., allow_pickle=False)``):

* ``__emonb_fusion__`` -- a 0-d text array holding JSON: the format name and version, the method
  name, the constructor parameters and the learned state, with every array replaced by a reference
  ``{"$array": "a3"}`` to one of the other members;
* ``a0``, ``a1``, ... -- the arrays (numeric, boolean or text; never object arrays).

What the JSON may hold is closed: numbers, text, ``null``, lists, tuples, dicts, numpy dtypes, array
references, scikit-learn estimators of the classes in :data:`SKLEARN_CLASSES` (their constructor
parameters plus their fitted attributes, ``coef_``, ``intercept_``, ``classes_``, scaler ``mean_`` /
``scale_`` ..., rebuilt on load by calling the class and setting the attributes) and, for attention
fusion, a torch state dict stored as plain float arrays (the network is rebuilt from its
configuration and ``load_state_dict(strict=True)`` fills it). Nothing in the file names code to
import or call except the registered fusion method and those scikit-learn classes, so a file from
anywhere can be opened safely.

Pickle (joblib) files, the format emonb used before, run code while they load: they are refused
unless the caller passes ``trusted=True`` (then read with joblib, with a warning).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np

from ..errors import EmonbFileError, EmonbValueError, EmonbWarning

FORMAT = "emonb-fusion"
FORMAT_VERSION = 1
HEADER = "__emonb_fusion__"
#: upper bound of the decompressed size of a model file (fusion models are kilobytes to megabytes)
MAX_BYTES = 512 * 1024 * 1024
#: deepest nesting of the JSON state that is accepted
MAX_DEPTH = 64

#: scikit-learn estimators that can be stored: class name -> public module
SKLEARN_CLASSES: dict[str, str] = {
    "Pipeline": "sklearn.pipeline",
    "SimpleImputer": "sklearn.impute",
    "MissingIndicator": "sklearn.impute",
    "StandardScaler": "sklearn.preprocessing",
    "MinMaxScaler": "sklearn.preprocessing",
    "MaxAbsScaler": "sklearn.preprocessing",
    "RobustScaler": "sklearn.preprocessing",
    "LogisticRegression": "sklearn.linear_model",
    "Ridge": "sklearn.linear_model",
    "LinearRegression": "sklearn.linear_model",
    "Lasso": "sklearn.linear_model",
    "ElasticNet": "sklearn.linear_model",
    "GaussianNB": "sklearn.naive_bayes",
    "LinearDiscriminantAnalysis": "sklearn.discriminant_analysis",
}

_ATTR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PICKLE_MAGICS = (b"\x80",)  # pickle protocol 2+ (joblib.dump without compression)
_COMPRESSED_MAGICS = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"\x5d\x00\x00", b"\x04\x22\x4d\x18", b"ZF", b"x\x9c",
                      b"x\x01", b"x\xda")


class Unsupported(EmonbValueError):
    """A value that the safe format cannot hold (raised while encoding, before anything is written)."""


class BadFile(Exception):
    """The file's content does not follow the format (turned into an EmonbFileError by the reader)."""


# -- encoding -----------------------------------------------------------------------------------------
class _Encoder:
    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}

    def array(self, a: np.ndarray, where: str):
        a = np.asarray(a)
        if a.dtype.hasobject:
            raise Unsupported(f"{where} is an array of Python objects ({a.dtype}), which the safe format "
                              "cannot store")
        key = f"a{len(self.arrays)}"
        self.arrays[key] = np.ascontiguousarray(a) if a.ndim else a
        return {"$array": key}

    def __call__(self, v, where: str):
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, (int, float)) and not isinstance(v, (np.generic,)):
            return v
        if isinstance(v, (np.generic, np.ndarray)):
            return self.array(np.asarray(v), where)
        if isinstance(v, np.dtype):
            if v.fields is not None or v.hasobject:
                raise Unsupported(f"{where} is a structured dtype, which the safe format cannot store")
            return {"$dtype": v.str}
        if isinstance(v, list):
            return [self(x, f"{where}[{i}]") for i, x in enumerate(v)]
        if isinstance(v, tuple):
            return {"$tuple": [self(x, f"{where}[{i}]") for i, x in enumerate(v)]}
        if isinstance(v, dict):
            return {"$dict": [[self(k, f"{where} key"), self(x, f"{where}[{k!r}]")] for k, x in v.items()]}
        if _is_sklearn(v):
            return self.sklearn(v, where)
        raise Unsupported(f"{where} holds a {type(v).__module__}.{type(v).__qualname__}, which the safe "
                          "format cannot store")

    def sklearn(self, est, where: str):
        cls = type(est)
        name = cls.__name__
        module = SKLEARN_CLASSES.get(name)
        if module is None or getattr(importlib.import_module(module), name, None) is not cls:
            raise Unsupported(
                f"{where} is a scikit-learn {name}, which emonb cannot store without pickle; the safe "
                f"format holds these estimators: {', '.join(sorted(SKLEARN_CLASSES))}")
        params = est.get_params(deep=False)
        attrs = {k: v for k, v in vars(est).items() if k not in params}
        return {"$sklearn": name,
                "params": {k: self(v, f"{where}.{k}") for k, v in params.items()},
                "attrs": {k: self(v, f"{where}.{k}") for k, v in attrs.items()}}


def _is_sklearn(v) -> bool:
    if "sklearn" not in sys.modules:
        return False
    from sklearn.base import BaseEstimator

    return isinstance(v, BaseEstimator)


# -- decoding ------------------------------------------------------------------------------------------
class _Decoder:
    def __init__(self, arrays):
        self.arrays = arrays
        self.sklearn_used = False

    def __call__(self, v, depth: int = 0):
        if depth > MAX_DEPTH:
            raise BadFile(f"the saved state is nested deeper than {MAX_DEPTH} levels")
        if v is None or isinstance(v, (bool, str, int, float)):
            return v
        if isinstance(v, list):
            return [self(x, depth + 1) for x in v]
        if not isinstance(v, dict) or len(v) not in (1, 3):
            raise BadFile(f"unexpected value in the saved state: {str(v)[:80]}")
        if len(v) == 1:
            (tag, body), = v.items()
            if tag == "$array":
                if not isinstance(body, str) or body not in self.arrays:
                    raise BadFile(f"the saved state refers to a missing array {body!r}")
                a = self.arrays[body]
                return a[()] if a.ndim == 0 else a
            if tag == "$tuple" and isinstance(body, list):
                return tuple(self(x, depth + 1) for x in body)
            if tag == "$dict" and isinstance(body, list):
                out = {}
                for pair in body:
                    if not (isinstance(pair, list) and len(pair) == 2):
                        raise BadFile("a saved dict entry is not a key/value pair")
                    k = self(pair[0], depth + 1)
                    try:
                        out[k] = self(pair[1], depth + 1)
                    except TypeError:
                        raise BadFile(f"a saved dict has an unhashable key {k!r}") from None
                return out
            if tag == "$dtype" and isinstance(body, str) and re.fullmatch(r"[<>|=]?[biufcUSMm]\d*(\[\w+\])?", body):
                try:
                    return np.dtype(body)
                except TypeError:
                    raise BadFile(f"unknown dtype {body!r}") from None
            raise BadFile(f"unexpected tag {tag!r} in the saved state")
        return self.sklearn(v, depth)

    def sklearn(self, v: dict, depth: int):
        name = v.get("$sklearn")
        if not isinstance(name, str) or name not in SKLEARN_CLASSES:
            raise BadFile(f"the saved state names an estimator {str(name)[:60]!r} that is not one of the "
                          f"scikit-learn classes emonb stores ({', '.join(sorted(SKLEARN_CLASSES))})")
        params, attrs = v.get("params"), v.get("attrs")
        if not (isinstance(params, dict) and isinstance(attrs, dict)):
            raise BadFile(f"the saved {name} has no params/attrs")
        from .._checks import require

        require("sklearn", extra="fusion", purpose="loading an early-fusion model")
        cls = getattr(importlib.import_module(SKLEARN_CLASSES[name]), name)
        kwargs = {str(k): self(x, depth + 1) for k, x in params.items()}
        try:
            est = cls(**kwargs)
        except TypeError as exc:
            raise BadFile(f"the saved {name} parameters do not fit this scikit-learn: {exc}") from None
        for k, x in attrs.items():
            if not isinstance(k, str) or not _ATTR.match(k) or k.startswith("__"):
                raise BadFile(f"the saved {name} has an invalid attribute name {str(k)[:60]!r}")
            setattr(est, k, self(x, depth + 1))
        self.sklearn_used = True
        return est


# -- files ---------------------------------------------------------------------------------------------
def _libraries() -> dict[str, str]:
    out = {}
    for mod in ("sklearn", "torch"):
        if mod in sys.modules:
            out[mod] = str(getattr(sys.modules[mod], "__version__", "?"))
    return out


def write(method, path, *, overwrite: bool = False) -> Path:
    """Write ``method`` (a FusionMethod) to ``path`` in the safe format (atomically)."""
    from .._version import __version__

    p = Path(os.fspath(path)).expanduser()
    if p.is_dir():
        raise EmonbFileError(p, "is a folder; give a file name for the fusion model (for example model.npz)")
    if p.exists() and not overwrite:
        raise EmonbFileError(p, "already exists", "pass overwrite=True to replace it")
    params, state = method._to_saved()
    enc = _Encoder()
    try:
        header = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "emonb_version": __version__,
            "method": method.name, "class": f"{type(method).__module__}.{type(method).__qualname__}",
            "params": {k: enc(v, f"parameter {k!r}") for k, v in params.items()},
            "state": {k: enc(v, f"state {k!r}") for k, v in state.items()},
        }
    except Unsupported as exc:
        raise EmonbValueError(f"cannot save the {method.name!r} fusion method to {p}: {exc}") from None
    header["libraries"] = _libraries()
    text = json.dumps(header, allow_nan=True)
    members = {HEADER: np.array(text), **enc.arrays}
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **members)
        os.replace(tmp, p)
    finally:
        tmp.unlink(missing_ok=True)
    return p


def _kind(p: Path) -> str:
    with open(p, "rb") as f:
        head = f.read(8)
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head.startswith(_PICKLE_MAGICS) or head.startswith(_COMPRESSED_MAGICS):
        return "pickle"
    return "other"


def _check_members(p: Path) -> None:
    """Every member a ``.npy`` array of a plain dtype, all of them together under :data:`MAX_BYTES`."""
    total = 0
    try:
        with zipfile.ZipFile(p) as z:
            infos = z.infolist()
            if not infos or len(infos) > 10_000:
                raise BadFile(f"holds {len(infos)} members")
            for info in infos:
                if not info.filename.endswith(".npy") or "/" in info.filename or "\\" in info.filename:
                    raise BadFile(f"holds {info.filename!r}, which is not an array of a saved fusion model")
                with z.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                    elif version in ((2, 0), (3, 0)):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                    else:  # pragma: no cover - numpy refuses unknown versions in read_magic already
                        raise BadFile(f"{info.filename}: unknown .npy version {version}")
                if dtype.hasobject:
                    raise BadFile(f"{info.filename} is an array of Python objects, which a fusion model "
                                  "never holds (object arrays need pickle)")
                total += int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                if total > MAX_BYTES:
                    raise BadFile(f"its arrays would take more than {MAX_BYTES >> 20} MiB")
    except zipfile.BadZipFile as exc:
        raise BadFile(f"is a damaged zip file ({exc})") from None
    except ValueError as exc:  # numpy's header parser
        raise BadFile(f"holds a damaged array ({exc})") from None


def read(p: Path, *, trusted: bool = False):
    """Read a fusion method from ``p`` (an existing file); errors name the file."""
    from ..errors import EmonbDependencyError, EmonbError
    from .base import FusionMethod

    kind = _kind(p)
    if kind != "zip":
        if trusted:
            return _read_trusted_pickle(p)
        if kind == "pickle":
            raise EmonbFileError(
                p, "is a pickle (joblib) file, and loading a pickle can run any code it contains, so emonb "
                "does not open it",
                "if you made this file yourself or otherwise trust it: "
                "m = eb.fusion.load(path, trusted=True); m.save('model.npz', overwrite=True) converts it "
                "to the safe format")
        raise EmonbFileError(p, "is not a saved emonb fusion model (expected the .npz file written by "
                                "FusionMethod.save)")
    try:
        _check_members(p)
        with np.load(p, allow_pickle=False) as z:
            if HEADER not in z.files:
                raise BadFile("is an .npz file but not a saved emonb fusion model "
                              f"(it has no {HEADER!r} member)")
            arrays = {k: z[k] for k in z.files}
        head = arrays.pop(HEADER)
        if head.ndim != 0 or head.dtype.kind != "U":
            raise BadFile(f"its {HEADER!r} member is not text")
        try:
            header = json.loads(str(head[()]))
        except ValueError as exc:
            raise BadFile(f"its header is not valid JSON ({exc})") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise BadFile("is not a saved emonb fusion model (wrong format name)")
        if not isinstance(header.get("format_version"), int) or header["format_version"] > FORMAT_VERSION:
            raise BadFile(f"was written in format version {header.get('format_version')!r}; this emonb reads "
                          f"versions up to {FORMAT_VERSION} (upgrade emonb)")
        name = header.get("method")
        if not isinstance(name, str):
            raise BadFile("names no fusion method")
        from . import get_fusion

        try:
            cls = get_fusion(name)
        except EmonbValueError as exc:
            raise BadFile(f"was saved by fusion method {name!r}, which is not installed here ({exc})") from None
        params, state = header.get("params"), header.get("state")
        if not (isinstance(params, dict) and isinstance(state, dict)):
            raise BadFile("has no params/state")
        dec = _Decoder(arrays)
        params = {str(k): dec(v) for k, v in params.items()}
        state = {str(k): dec(v) for k, v in state.items()}
        bad = [k for k in state if not (_ATTR.match(k) and k.endswith("_") and not k.startswith("_"))]
        if bad:
            raise BadFile(f"holds state names that are not fitted attributes: {bad[:5]}")
        _version_warning(p, header.get("libraries"), dec.sklearn_used)
        obj = cls._from_saved(params, state)
    except BadFile as exc:
        raise EmonbFileError(p, str(exc)) from None
    except EmonbError as exc:
        if isinstance(exc, EmonbDependencyError) or (isinstance(exc, EmonbFileError) and exc.path):
            raise
        raise EmonbFileError(p, f"the saved fusion model does not load: {exc}") from None
    except (ValueError, TypeError, KeyError, RuntimeError, OSError, EOFError) as exc:
        raise EmonbFileError(p, f"the saved fusion model does not load ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, FusionMethod):  # pragma: no cover - _from_saved of a FusionMethod class
        raise EmonbFileError(p, f"holds a {type(obj).__name__}, not an emonb fusion method")
    return obj


def _version_warning(p: Path, libraries, sklearn_used: bool) -> None:
    if not (sklearn_used and isinstance(libraries, dict) and isinstance(libraries.get("sklearn"), str)):
        return
    import sklearn

    if libraries["sklearn"] != sklearn.__version__:
        warnings.warn(f"{p}: the fusion model was saved with scikit-learn {libraries['sklearn']}, this is "
                      f"{sklearn.__version__}; its predictions may differ (retrain to be sure)",
                      EmonbWarning, stacklevel=4)


def _read_trusted_pickle(p: Path):
    from .base import FusionMethod

    warnings.warn(f"{p}: loading a pickle (joblib) fusion model because trusted=True; a pickle can run any "
                  "code it contains. Convert it with model.save('model.npz') and load that instead",
                  EmonbWarning, stacklevel=4)
    import joblib

    try:
        obj = joblib.load(p)
    except Exception as exc:
        raise EmonbFileError(p, f"not a saved emonb fusion model ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, FusionMethod):
        raise EmonbFileError(p, f"holds a {type(obj).__name__}, not an emonb fusion method")
    return obj

