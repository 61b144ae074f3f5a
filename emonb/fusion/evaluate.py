"""Cross-validated evaluation of fusion methods: accuracy, macro-F1, recall, CCC, confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import EmonbValueError
from ..schema import EMOTIONS

CV_OPTIONS = ("leave-one-subject-out", "leave-one-session-out", None)


def ccc(a, b) -> float:
    """Lin's concordance correlation coefficient of two 1-D arrays (NaN pairs dropped)."""
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if a.size < 2:
        return float("nan")
    ma, mb = a.mean(), b.mean()
    cov = np.mean((a - ma) * (b - mb))
    den = a.var() + b.var() + (ma - mb) ** 2
    return float(2 * cov / den) if den > 0 else float("nan")


@dataclass
class EvaluationReport:
    """Metrics of one fusion method on held-out annotated steps.

    Attributes
    ----------
    accuracy, macro_f1 : float
        Over the annotated steps where the fusion produced an output (macro-F1 over the classes
        present in the annotations).
    per_class_recall : pandas.Series
        Recall per emotion present in the annotations.
    ccc_valence, ccc_arousal : float
        Concordance correlation with the annotated (or label-implied) valence and arousal.
    confusion : pandas.DataFrame
        Counts, rows = annotated emotion, columns = predicted emotion.
    coverage : float
        Share of annotated steps that had any modality (and hence a prediction).
    """

    method: str
    cv: str | None
    accuracy: float
    macro_f1: float
    per_class_recall: object
    ccc_valence: float
    ccc_arousal: float
    confusion: object
    n_steps: int
    coverage: float
    folds: int = 1
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"method": self.method, "cv": self.cv, "accuracy": self.accuracy, "macro_f1": self.macro_f1,
                "ccc_valence": self.ccc_valence, "ccc_arousal": self.ccc_arousal, "n_steps": self.n_steps,
                "coverage": self.coverage, "folds": self.folds,
                "per_class_recall": {k: float(v) for k, v in self.per_class_recall.items()}}

    @property
    def covered(self) -> np.ndarray:
        """Per step (all sessions concatenated): True where the method produced an output."""
        return np.isfinite(self.extra["proba"]).all(axis=1)

    def subset(self, mask) -> "EvaluationReport":
        """The same metrics on a subset of the steps (for example where another method had output)."""
        mask = np.asarray(mask, bool)
        a = self.extra
        if mask.shape != a["y_true"].shape:
            raise EmonbValueError(f"mask has {mask.size} steps, this report {a['y_true'].size}")
        keys = ("y_true", "proba", "val_true", "val_pred", "aro_true", "aro_pred")
        return metrics(*[a[k][mask] for k in keys], method=self.method, cv=self.cv, folds=self.folds)

    def chart(self, *, normalize: bool = True):
        """Altair confusion-matrix heat map (see :func:`confusion_chart`)."""
        return confusion_chart(self, normalize=normalize)

    def __repr__(self) -> str:
        return (f"EvaluationReport(method={self.method!r}, cv={self.cv!r}, accuracy={self.accuracy:.3f}, "
                f"macro_f1={self.macro_f1:.3f}, ccc_valence={self.ccc_valence:.3f}, "
                f"ccc_arousal={self.ccc_arousal:.3f}, n_steps={self.n_steps}, coverage={self.coverage:.2f})")


def metrics(y_true, proba, val_true=None, val_pred=None, aro_true=None, aro_pred=None, *,
            method: str = "", cv=None, folds: int = 1) -> EvaluationReport:
    """Metrics from per-step truths (emotion index, -1 = unlabelled) and predicted probabilities."""
    import pandas as pd

    y_true = np.asarray(y_true, int)
    proba = np.asarray(proba, float)
    lab = y_true >= 0
    have = lab & np.isfinite(proba).all(axis=1)
    yt = y_true[have]
    yp = np.argmax(proba[have], axis=1) if have.any() else np.zeros(0, int)
    present = np.unique(y_true[lab])
    cm = np.zeros((len(EMOTIONS), len(EMOTIONS)), int)
    np.add.at(cm, (yt, yp), 1)
    recall, f1 = {}, []
    for c in present:
        tp = cm[c, c]
        r = tp / cm[c].sum() if cm[c].sum() else 0.0
        p = tp / cm[:, c].sum() if cm[:, c].sum() else 0.0
        recall[EMOTIONS[c]] = float(r)
        f1.append(2 * p * r / (p + r) if p + r else 0.0)
    keep = [EMOTIONS[c] for c in present]
    conf = pd.DataFrame(cm, index=pd.Index(EMOTIONS, name="annotated"),
                        columns=pd.Index(EMOTIONS, name="predicted")).loc[keep]
    return EvaluationReport(
        method=method, cv=cv, accuracy=float(np.mean(yt == yp)) if yt.size else float("nan"),
        macro_f1=float(np.mean(f1)) if f1 else float("nan"),
        per_class_recall=pd.Series(recall, name="recall"),
        ccc_valence=ccc(val_true, val_pred) if val_true is not None else float("nan"),
        ccc_arousal=ccc(aro_true, aro_pred) if aro_true is not None else float("nan"),
        confusion=conf, n_steps=int(lab.sum()), coverage=float(have.sum() / max(lab.sum(), 1)),
        folds=folds,
        extra={"y_true": y_true, "proba": proba,
               **{k: (np.full(y_true.size, np.nan) if v is None else np.asarray(v, float))
                  for k, v in (("val_true", val_true), ("val_pred", val_pred), ("aro_true", aro_true),
                               ("aro_pred", aro_pred))}},
    )


def evaluate(trees, *, method="late", labels="annotations", cv="leave-one-subject-out",
             rate: float = 10.0, modalities=None, params: dict | None = None, groups: str = "subject",
             label_map: dict | None = None) -> EvaluationReport:
    """Cross-validate a fusion method on annotated sessions.

    Parameters
    ----------
    trees : list of DataTree
        Sessions with modality results and annotations.
    method : str or FusionMethod
        A registered name (trained afresh in each fold), or a fitted instance (with ``cv=None``).
    labels : see :func:`emonb.fusion.train`
    cv : {"leave-one-subject-out", "leave-one-session-out", None}
        Held-out unit. ``None`` trains nothing: the method is applied as given (late fusion with
        its default weights, or a fitted instance) to every session.
    groups : str
        Root attribute naming the subject (sessions without it count as their own subject).

    Returns
    -------
    EvaluationReport
    """
    from . import _as_list, _labels_list, _make
    from ._grid import build_grid, labels_on_grid
    from .base import FusionMethod

    if cv not in CV_OPTIONS:
        raise EmonbValueError(f"invalid value for cv: {cv!r}; expected one of {CV_OPTIONS}")
    trees = _as_list(trees)
    probe = _make(method, params) if not isinstance(method, FusionMethod) else method
    grids = [build_grid(t, rate=rate, modalities=modalities, with_features=probe.needs_features)
             for t in trees]
    targets = [labels_on_grid(t, g, lab, label_map=label_map)
               for t, g, lab in zip(trees, grids, _labels_list(labels, len(trees)))]
    if cv is None:
        if probe.trainable and not probe.is_fitted:
            raise EmonbValueError(f"cv=None needs a fitted {probe.name!r} method (or use cross-validation)")
        folds = [(list(range(len(trees))), None)]
    else:
        if cv == "leave-one-subject-out":
            keys = [str(getattr(t, "attrs", {}).get(groups, "") or f"session{i}") for i, t in enumerate(trees)]
        else:
            keys = [str(i) for i in range(len(trees))]
        uniq = list(dict.fromkeys(keys))
        if len(uniq) < 2:
            raise EmonbValueError(f"{cv} needs sessions from at least two {'subjects' if 'subject' in cv else 'sessions'}")
        folds = [([i for i, k in enumerate(keys) if k == u], [i for i, k in enumerate(keys) if k != u])
                 for u in uniq]
    ys, ps, vt, vp, at, ap = [], [], [], [], [], []
    for test, train_idx in folds:
        fm = probe if train_idx is None else (_make(method, params) if not isinstance(method, FusionMethod)
                                              else type(method)(**method.params()))
        if train_idx is not None and (fm.trainable or hasattr(fm, "fit")):
            fm.fit([grids[i] for i in train_idx], [targets[i] for i in train_idx])
        for i in test:
            pred = fm.predict(grids[i])
            y, val, aro = targets[i]
            ys.append(y); ps.append(pred.emotion)
            vt.append(val); vp.append(pred.valence); at.append(aro); ap.append(pred.arousal)
    cat = np.concatenate
    return metrics(cat(ys), cat(ps), cat(vt), cat(vp), cat(at), cat(ap), method=probe.name, cv=cv,
                   folds=len(folds))


def confusion_chart(report, *, normalize: bool = True, title: str | None = None):
    """Altair heat map of a confusion matrix (rows: annotated, columns: predicted).

    Parameters
    ----------
    report : EvaluationReport or pandas.DataFrame
        A report, or a confusion DataFrame (annotated x predicted counts).
    normalize : bool
        Colour by row share (recall) instead of counts; counts are shown in the tooltip.
    """
    import altair as alt
    import pandas as pd

    cm = report.confusion if isinstance(report, EvaluationReport) else report
    if not isinstance(cm, pd.DataFrame):
        raise EmonbValueError("confusion_chart needs an EvaluationReport or a confusion DataFrame")
    long = cm.rename_axis(index="annotated", columns="predicted").stack().rename("count").reset_index()
    totals = long.groupby("annotated")["count"].transform("sum").replace(0, np.nan)
    long["share"] = (long["count"] / totals).fillna(0.0)
    value = "share" if normalize else "count"
    base = alt.Chart(long).encode(
        x=alt.X("predicted:N", sort=list(cm.columns), title="predicted"),
        y=alt.Y("annotated:N", sort=list(cm.index), title="annotated"),
    )
    rect = base.mark_rect().encode(
        color=alt.Color(f"{value}:Q", scale=alt.Scale(scheme="blues")),
        tooltip=["annotated", "predicted", "count", alt.Tooltip("share:Q", format=".2f")],
    )
    text = base.mark_text(fontSize=10).encode(
        text=alt.Text(f"{value}:Q", format=".2f" if normalize else "d"),
        color=alt.condition(alt.datum[value] > (0.5 if normalize else long["count"].max() / 2),
                            alt.value("white"), alt.value("black")),
    )
    name = report.method if isinstance(report, EvaluationReport) else ""
    return (rect + text).properties(title=title or f"confusion matrix {name}".strip(), width=260, height=220)
