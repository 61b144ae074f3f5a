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
