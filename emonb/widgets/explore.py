"""``explore(tree)``: the reviewer's workstation: scrubber, AU inspector and annotator, linked.

Laid out as one grid (``.emonb-explorer``, CSS in ``widgets/scrubber.css``): the video and the AU /
expression panel side by side, the timelines full width below them, the annotation form and table
beneath. The widgets place their own parts in the grid's areas; keyboard shortcuts work wherever the
focus is inside it (``?`` shows them).
"""

from __future__ import annotations

import ipywidgets
import traitlets

from .annotator import Annotator
from .au_inspector import AUInspector
from .scrubber import Scrubber


class Explorer(ipywidgets.GridBox):
    """The linked widgets: ``.scrubber``, ``.au_inspector`` (None without action units) and
    ``.annotator`` (None without a store), on one grid.

    They share ``current_time``, the selected face or subject (``face``), the marked range, and the
    annotations, which the timelines show as one live tier per reviewer."""

    def __init__(self, scrubber: Scrubber, annotator: Annotator | None = None,
                 au_inspector: AUInspector | None = None):
        children = [scrubber] + [w for w in (au_inspector, annotator) if w is not None]
        super().__init__(children=children)
        self.add_class("emonb-explorer")
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
            if scrubber._times.size:
                annotator.frame_times = scrubber._times.copy()
            # the annotations as live tiers on the timelines, this reviewer's tier first
            scrubber.reviewers = [annotator.reviewer]
            scrubber.set_annotations(annotator.annotations)
            annotator.observe(self._on_annotations, "annotations")
        if au_inspector is not None:
            self._links.append(traitlets.link((scrubber, "face"), (au_inspector, "face")))

    def _on_annotations(self, change):
        self.scrubber.set_annotations(change["new"])

    @property
    def face(self) -> str:
        """The face or subject shown (``"auto"``: whoever is in view)."""
        return self.scrubber.face

    @face.setter
    def face(self, value: str):
        self.scrubber.face = str(value)

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
        if self.annotator is not None:
            self.annotator.unobserve(self._on_annotations, "annotations")


def explore(tree, *, store=None, reviewer: str | None = None, scheme="basic7", face: str = "auto",
            **scrubber_options) -> Explorer:
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
    face : str
        The face or subject shown first: ``"auto"`` (whoever is in view, the main subject first), a
        subject name (when the face node has subjects, :func:`emonb.subjects.assign_subjects`) or a
        face id.
    """
    scrubber = Scrubber(tree, **scrubber_options)
    scrubber.face = str(face)
    inspector = None
    if "face" in getattr(tree, "children", {}) and "face_au" in tree["face"].data_vars:
        inspector = AUInspector(tree, video_times=scrubber._times if scrubber._times.size else None)
    annotator = None
    if store is not None:
        annotator = Annotator(tree, store=store, reviewer=reviewer, scheme=scheme)
    return Explorer(scrubber, annotator, inspector)
