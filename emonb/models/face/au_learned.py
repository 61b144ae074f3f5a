"""Runtime of the AU mapping fitted to OpenFace 2 (``emonb-au-openface-fit``).

The fitted parameters are JSON (``emonb/models/weights/emonb_au_openface.json``, written by
``scripts/fit_face_aus.py``). AUs the fit did not improve keep the hand rule of
:data:`~emonb.models.face.aus.AU_MAPPING`. Two ways to apply it:

- :meth:`LearnedAUs.static`: each face alone (stills, short tracks);
- :meth:`LearnedAUs.dynamic`: inputs relative to the track's own median over the video (the
  person's neutral, as OpenFace's dynamic models calibrate), for tracks of at least
  :data:`MIN_BASELINE_FRAMES` analysed frames.

Output scale: OpenFace intensity (0-5) / 3, clipped to [0, 1]: 1 is FACS intensity C ("marked")
or more, the default presence threshold 0.5 is intensity 1.5.
"""

from __future__ import annotations

import json

import numpy as np

from .au_fit import apply_fit

__all__ = ["LearnedAUs", "MIN_BASELINE_FRAMES", "build_learned_aus", "track_segments"]

#: A track needs this many analysed frames for a per-person baseline (dynamic AUs).
MIN_BASELINE_FRAMES = 24


class LearnedAUs:
    """Fitted per-AU functions on :func:`~emonb.models.face.au_features.au_features` inputs.

    Parameters
    ----------
    spec : ModelSpec
        The model's spec (weights = the JSON file, with its SHA-256).
    """

    def __init__(self, spec, *, device: str = "cpu"):
        self.spec = spec
        self.device = "cpu"
        self.params_: dict | None = None

    def load(self) -> "LearnedAUs":
        if self.params_ is None:
            path = self.spec.check_weights()
            card = json.loads(path.read_text())
            self.params_ = dict(card["aus"])
            self.card_ = card
        return self

    @property
    def aus(self) -> tuple[str, ...]:
        return tuple(self.load().params_)

    def _apply(self, X: np.ndarray, kind: str) -> np.ndarray:
        X = np.asarray(X, np.float64)
        out = np.full((X.shape[0], len(self.aus)), np.nan, np.float32)
        for j, au in enumerate(self.aus):
            out[:, j] = np.clip(apply_fit(self.params_[au][kind], X), 0.0, 1.0)
        return out

    def static(self, X: np.ndarray) -> np.ndarray:
        """AU intensities (N, len(aus)) of faces judged alone, from features (N, K)."""
        return self._apply(X, "static")

    def dynamic(self, X: np.ndarray) -> np.ndarray:
        """AU intensities (N, len(aus)) of one track's frames, relative to the track's median."""
        X = np.asarray(X, np.float64)
        return self._apply(X - np.nanmedian(X, axis=0), "dynamic")

    def describe(self) -> dict:
        """Per AU: inputs, weights, and the measured agreement with OpenFace (from the card)."""
        return {au: {"inputs": p["dynamic"]["inputs"], "cv_r": p.get("cv_r"), "rule_r": p.get("rule_r")}
                for au, p in self.load().params_.items()}


def build_learned_aus(spec, *, device: str = "auto", **params) -> LearnedAUs:
    return LearnedAUs(spec, device=device, **params)


def track_segments(present: np.ndarray, times: np.ndarray, *, max_gap: float) -> list[np.ndarray]:
    """Row indices of each run of ``present`` frames, split where the face is gone > ``max_gap`` s.

    A face slot can be reused by another person after its face was lost (the tracker frees it),
    so a baseline is only taken within one run.
    """
    rows = np.flatnonzero(present)
    if rows.size == 0:
        return []
    gaps = np.diff(np.asarray(times, float)[rows])
    cuts = np.flatnonzero(~(gaps <= max_gap)) + 1
    return np.split(rows, cuts)


def _fmt_r(x) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def describe_mapping(mapping=None, *, clip: str = "single_face.mp4") -> str:
    """Markdown table: how each AU is computed now, and its agreement with OpenFace 2.

    Parameters
    ----------
    mapping : mapping, optional
        Your own hand rules (:data:`~emonb.models.face.aus.AU_MAPPING` format): the table of those
        rules alone, as :func:`analyze_face` uses them when given ``au_mapping``.
    clip : str
        Held-out clip whose agreement is shown (``"single_face.mp4"`` or ``"face_noface.mov"``;
        both show the person left out of the fit). ``r`` is Pearson's r per AU against OpenFace's
        dynamic model over the clip's frames; "n/a" where OpenFace's value is constant there.
    """
    from .aus import AU_MAPPING
    from .aus import describe_mapping as describe_rules

    if mapping is not None:
        return describe_rules(mapping)
    from .. import get_model

    fit = LearnedAUs(get_model("emonb-au-openface-fit")).load()
    held = fit.card_.get("held_out_r", {})
    from ...schema import AU_NAMES

    rows = [f"AU intensities from MediaPipe blendshapes and mesh geometry. Fitted: a signed non-negative ridge per "
            f"AU fitted to OpenFace 2 ({fit.card_['training']['video']} and {fit.card_['training']['still_faces']} "
            f"faces in stills), relative to the track's median in video. Rule: the hand-set mapping "
            f"(eb.face.AU_MAPPING). r: agreement with OpenFace 2 (dynamic) on the held-out person's `{clip}`.",
            "", "| AU | name | computed by | inputs | r emonb | r rule |", "|---|---|---|---|---|---|"]
    for au, m in AU_MAPPING.items():
        h = held.get(f"{clip}:dynamic:{au}", {})
        if au in fit.params_:
            how, inputs = "fitted", ", ".join(
                ("-" if s < 0 else "") + n
                for n, s, w in zip(fit.params_[au]["dynamic"]["inputs"], fit.params_[au]["dynamic"]["signs"],
                                   fit.params_[au]["dynamic"]["weights"]) if w > 0)
        else:
            how, inputs = "rule", f"{m['combine']}({', '.join(m['inputs'])}) from {m['lo']:.2f} to {m['hi']:.2f}"
        r_new, r_rule = (_fmt_r(h.get("emonb")), _fmt_r(h.get("rule"))) if h else ("not in OpenFace", "")
        rows.append(f"| {au} | {AU_NAMES.get(au, '')} | {how} | {inputs} | {r_new} | {r_rule} |")
    return "\n".join(rows)
