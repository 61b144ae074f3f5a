"""Multimodal fusion: late (confidence-weighted), early (scikit-learn) and attention (torch).

>>> import emonb as eb
>>> tree = eb.analyze(eb.sample_session())                          # doctest: +SKIP
>>> fused = eb.fuse(tree, method="late", rate=10)                    # doctest: +SKIP
>>> fuser = eb.fusion.train(trees, method="attention")               # doctest: +SKIP
>>> fused = eb.fuse(tree, method="attention", model=fuser)           # doctest: +SKIP
>>> report = eb.fusion.evaluate(trees, method="early", cv="leave-one-subject-out")  # doctest: +SKIP

Every modality result is resampled onto one grid with a per-step confidence
(:func:`emonb.fusion.build_grid`): face (``face_emotion``, ``face_valence``, ``face_arousal``,
confidence ``face_score``, the most confident face per step), voice (``voice_emotion``,
``voice_valence``, ``voice_arousal``, confidence ``voice_confidence`` or ``voice_activity``), physio
(``physio_arousal``, confidence ``physio_arousal_confidence``; arousal only) and text (valence only).
Fusion methods live in a registry (entry-point group ``emonb.fusion``); built-ins: ``late``,
``early``, ``attention``.

A fitted method is saved with ``fuser.save("model.npz")`` and read back with
``eb.fusion.load("model.npz")``: one ``.npz`` file holding the configuration as JSON and the learned
arrays (scikit-learn coefficients and scaler statistics, the torch state dict as float arrays),
read with ``allow_pickle=False`` so that opening a model file can never run code. Pickle (joblib)
files are refused unless ``trusted=True`` is passed to :func:`load`.
"""

from __future__ import annotations

from .._lazy import lazy_attributes
from ..errors import EmonbValueError
from ..registry import Registry
from ._grid import MODALITIES, FusionGrid, ModalityData, build_grid, labels_on_grid
from .base import DEFAULT_WEIGHTS, FusionMethod, Prediction, load, to_dataset
from .evaluate import EvaluationReport, confusion_chart, evaluate, metrics
from .late import LateFusion

__all__ = [
    "fuse", "train", "evaluate", "metrics", "load", "build_grid", "labels_on_grid", "confusion_chart",
    "FUSION_REGISTRY", "register_fusion", "get_fusion", "list_fusions", "FusionMethod", "FusionGrid",
    "ModalityData", "Prediction", "LateFusion", "EarlyFusion", "AttentionFusion", "EvaluationReport",
    "DEFAULT_WEIGHTS", "MODALITIES",
]


# the learned methods import sklearn/torch only when used
__getattr__, _ = lazy_attributes("emonb.fusion", {
    "EarlyFusion": ("emonb.fusion.early", "EarlyFusion"),
    "AttentionFusion": ("emonb.fusion.attention", "AttentionFusion"),
}, globals())


def _validate(obj) -> None:
    if not (isinstance(obj, type) and issubclass(obj, FusionMethod)):
        raise EmonbValueError(
            f"a fusion plugin must be a subclass of emonb.fusion.FusionMethod, got {obj!r}")


def _builtins(reg: Registry) -> None:
    from .attention import AttentionFusion
    from .early import EarlyFusion

    for cls in (LateFusion, EarlyFusion, AttentionFusion):
        reg.register(cls)


#: Fusion methods by name (classes); plugins register through the ``emonb.fusion`` entry-point group.
FUSION_REGISTRY: Registry[type] = Registry("emonb.fusion", "fusion method", validate=_validate,
                                           builtins=_builtins)


def register_fusion(cls: type, *, name: str | None = None, overwrite: bool = False) -> type:
    """Register a :class:`FusionMethod` subclass so ``eb.fuse(tree, method=name)`` finds it."""
    return FUSION_REGISTRY.register(cls, name=name, overwrite=overwrite)


def get_fusion(name: str) -> type:
    """The fusion-method class registered under ``name``."""
    return FUSION_REGISTRY.get(name)


def list_fusions() -> list[str]:
    """Names of the registered fusion methods."""
    return FUSION_REGISTRY.names()


def _make(method, params: dict | None) -> FusionMethod:
    if isinstance(method, FusionMethod):
        if params:
            raise EmonbValueError("pass params= with a method name, not with a fusion-method instance")
        return method
    if isinstance(method, type) and issubclass(method, FusionMethod):
        return method(**(params or {}))
    if not isinstance(method, str):
        raise EmonbValueError(f"method must be a fusion method name or instance, got {type(method).__name__}")
    cls = get_fusion(method)
    try:
        return cls(**(params or {}))
    except TypeError as exc:
        raise EmonbValueError(f"bad parameters for fusion method {method!r}: {exc}") from None


def fuse(tree, method="late", *, rate: float | None = None, model=None, modalities=None,
         weights: dict | None = None, ensemble: str = "mean", params: dict | None = None,
         start: float | None = None, end: float | None = None):
    """Fuse the modality results of a session into one emotion estimate per grid step.

    Parameters
    ----------
    tree : xarray.DataTree
        A session with result nodes (``face``, ``voice``, ``physio_features``, ``text``), as
        filled by ``eb.analyze``.
    method : str or FusionMethod
        ``"late"`` (default, needs no training), ``"early"`` or ``"attention"`` (need ``model``, a
        method fitted by :func:`train`), any registered name, or a fusion-method instance.
    rate : float, optional
        Grid rate in Hz (default: the rate the model was trained at, else 10).
    model : FusionMethod or path, optional
        A fitted method, or a file saved with ``model.save(path)`` (read with :func:`load`, which
        refuses pickle files: load an old joblib file you trust with
        ``eb.fusion.load(path, trusted=True)`` and pass the object).
    modalities : sequence of str, optional
        Use only these of ``("face", "voice", "physio", "text")``.
    weights : dict, optional
        Late fusion: per-modality weights (default :data:`DEFAULT_WEIGHTS`).
    ensemble : {"mean", "product", "max"}
        Late fusion: weighted mean, product of experts, or the most confident modality.
    params : dict, optional
        Constructor parameters of another method.
    start, end : float, optional
        Grid span in session seconds.

    Returns
    -------
    xarray.Dataset
        ``fused_emotion(time, emotion)`` probabilities over :data:`~emonb.schema.EMOTIONS`,
        ``fused_valence(time)`` and ``fused_arousal(time)`` in -1..1,
        ``modality_weight(time, modality)`` (each modality's share, rows sum to 1) and
        ``fused_confidence(time)`` in 0..1; NaN where no modality
        has evidence. attrs: ``method``, ``weights`` (JSON), ``modalities_present``,
        ``modalities_absent``, ``rate`` and provenance. A missing or all-NaN modality only lowers
        its weight (to 0).
    """
    if model is not None:
        if not isinstance(model, FusionMethod):
            model = load(model)
        if isinstance(method, str) and method not in ("late", model.name) and method != type(model).name:
            raise EmonbValueError(f"model is a {model.name!r} fusion, but method={method!r}")
        fm = model
    else:
        if method == "late" or method is LateFusion:
            fm = LateFusion(weights=weights, ensemble=ensemble)
        else:
            fm = _make(method, params)
        if fm.trainable and not fm.is_fitted:
            raise EmonbValueError(
                f"fusion method {fm.name!r} must be trained first: "
                f"fuser = eb.fusion.train(trees, method={fm.name!r}); eb.fuse(tree, model=fuser)")
    if rate is None:
        rate = getattr(fm, "rate_", None) or 10.0
    grid = build_grid(tree, rate=rate, modalities=modalities, start=start, end=end,
                      with_features=fm.needs_features)
    return to_dataset(grid, fm.predict(grid), fm)


def _as_list(trees):
    import xarray as xr

    if isinstance(trees, (xr.DataTree, dict)):
        return [trees]
    trees = list(trees)
    if not trees:
        raise EmonbValueError("no sessions given")
    return trees


def _labels_list(labels, n):
    if isinstance(labels, (list, tuple)):
        if len(labels) != n:
            raise EmonbValueError(f"{len(labels)} label sets for {n} sessions")
        return list(labels)
    return [labels] * n


def train(trees, *, labels="annotations", method="attention", rate: float = 10.0, modalities=None,
          groups: str | None = "subject", params: dict | None = None, label_map: dict | None = None):
    """Fit a fusion method on annotated sessions.

    Parameters
    ----------
    trees : DataTree or list of DataTree
        Sessions with modality results.
    labels : "annotations", DataFrame, AnnotationStore, or a list of them (one per session)
        Reviewer labels with ``onset`` (s), ``duration`` (s) and ``label`` (an emotion name),
        optionally ``valence``/``arousal``; ``"annotations"`` reads each session's node.
    method : str or FusionMethod
        ``"late"`` (learns per-modality reliability weights), ``"early"``, ``"attention"``.
    rate : float
        Grid rate in Hz (one training example per step).
    groups : str, optional
        Root attribute naming the subject; recorded on the model (``subjects_``) so evaluation can
        hold whole subjects out.
    params : dict, optional
        Constructor parameters of the method.
    label_map : dict, optional
        Extra label -> emotion mapping for labels outside the vocabulary.

    Returns
    -------
    FusionMethod
        Fitted; pass it to :func:`fuse` as ``model=``, save it with ``.save("model.npz")`` (one
        ``.npz`` file of JSON and arrays, no pickle) and read it back with :func:`load`.
    """
    trees = _as_list(trees)
    fm = _make(method, params)
    grids = [build_grid(t, rate=rate, modalities=modalities, with_features=fm.needs_features) for t in trees]
    targets = [labels_on_grid(t, g, lab, label_map=label_map)
               for t, g, lab in zip(trees, grids, _labels_list(labels, len(trees)))]
    fm.fit(grids, targets)
    fm.rate_ = float(rate)
    if groups:
        fm.subjects_ = sorted({str(getattr(t, "attrs", {}).get(groups, "")) for t in trees})
    return fm
