"""``explore(tree)``: the scrubber and the annotator, linked on ``current_time``."""

from __future__ import annotations

import ipywidgets
import traitlets

from .annotator import Annotator
from .au_inspector import AUInspector
from .scrubber import Scrubber


class Explorer(ipywidgets.VBox):
    """A column of linked widgets: ``.scrubber``, ``.au_inspector`` (None without action units) and
    ``.annotator`` (None without a store)."""

    def __init__(self, scrubber: Scrubber, annotator: Annotator | None = None,
                 au_inspector: AUInspector | None = None):
        children = [scrubber] + [w for w in (au_inspector, annotator) if w is not None]
        super().__init__(children=children)
        self.scrubber = scrubber
        self.annotator = annotator
        self.au_inspector = au_inspector
        self._links = []
        # linked in Python, so it works in any front-end and from code: moving one moves the others
        for other in (annotator, au_inspector):
            if other is not None:
                self._links.append(traitlets.link((scrubber, "current_time"), (other, "current_time")))
        if annotator is not None:
            # a range selected on a timeline (shift-drag) is the annotator's in/out range
            for name in ("range_start", "range_end"):
                self._links.append(traitlets.link((scrubber, name), (annotator, name)))
            if scrubber.duration and not annotator.duration:
                annotator.duration = scrubber.start + scrubber.duration

    @property
    def current_time(self) -> float:
        return self.scrubber.current_time

    @current_time.setter
    def current_time(self, value: float):
        self.scrubber.current_time = float(value)

    def unlink(self):
        for link in self._links:
            link.unlink()
        self._links = []


def explore(tree, *, store=None, reviewer: str | None = None, scheme="basic7", **scrubber_options) -> Explorer:
    """Scrubber, AU inspector (when the session has action units) and Annotator (when ``store`` and
    ``reviewer`` are given) on one session, linked on ``current_time``.

    Parameters
    ----------
    tree : xarray.DataTree
        A session (``eb.sample_session()``, ``eb.analyze(...)``).
    store : str, path or AnnotationStore, optional
        Where annotations go; without it no annotator is shown.
    reviewer : str, optional
        Reviewer id (needed with ``store``).
    scheme : {"basic7", "facs"} or list of str
    """
    scrubber = Scrubber(tree, **scrubber_options)
    inspector = None
    if "face" in getattr(tree, "children", {}) and "face_au" in tree["face"].data_vars:
        inspector = AUInspector(tree)
    annotator = None
    if store is not None:
        annotator = Annotator(tree, store=store, reviewer=reviewer, scheme=scheme)
    return Explorer(scrubber, annotator, inspector)
