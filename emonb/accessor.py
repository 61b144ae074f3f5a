"""The ``.emonb`` accessor on Datasets and DataTrees: notebook conveniences without subclasses."""

from __future__ import annotations

import xarray as xr

from .errors import EmonbValueError


@xr.register_dataset_accessor("emonb")
class EmonbDatasetAccessor:
    """``ds.emonb``: frame access for video nodes, summaries, widgets."""

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    def frame_at(self, t: float):
        """RGB uint8 frame on screen at session time ``t`` (video nodes)."""
        from .io.video import video_reader

        ds = self._ds
        if "frames" in ds and ds.attrs.get("still_image"):
            return ds["frames"].values[0]
        reader = video_reader(ds)
        return reader.frame_at(float(t) - float(ds.attrs.get("t0", 0.0)))

    def reader(self):
        """The :class:`emonb.io.video.VideoReader` behind a video node."""
        from .io.video import video_reader

        return video_reader(self._ds)

    def summary(self) -> dict:
        """Duration, rate, offset and variables of this node."""
        from .session import node_summary

        return node_summary(self._ds)

    def scrub(self, **options):
        """A frame scrubber widget on this node (needs the ``notebook`` extra)."""
        from .widgets import Scrubber

        return Scrubber(self._ds, **options)


@xr.register_datatree_accessor("emonb")
class EmonbTreeAccessor:
    """``tree.emonb``: session-level conveniences."""

    def __init__(self, tree: xr.DataTree):
        self._tree = tree

    def summary(self):
        """A table of the session's nodes: modality, duration, rate, offset, variables; the face
        row's ``subjects`` gives each subject's share of the analysed frames (``"S1 62%; S2 38%"``)."""
        from .session import summarize

        df = summarize(self._tree)
        if "face" in self._tree.children and "face" in df.index:
            face = self._tree["face"].to_dataset()
            if "face_box" in face and "time" in face.dims:
                from .subjects import subject_shares

                df = df.copy()
                df["subjects"] = ""
                df.loc["face", "subjects"] = subject_shares(face) or "no face found"
        return df

    def align(self, rate: float, **options) -> xr.Dataset:
        from .alignment import align

        return align(self._tree, rate=rate, **options)

    def node(self, name: str) -> xr.Dataset:
        if name not in self._tree.children:
            raise EmonbValueError(f"this session has no {name!r} node; it has {list(self._tree.children)}")
        return self._tree[name].to_dataset()

    def subjects(self):
        """The people in view: one row per subject (face ids, screen time, share, first/last seen).

        See :func:`emonb.subjects.subject_table`; subjects are assigned on the fly (not stored)
        when the face node has none yet.
        """
        from .subjects import subject_table

        return subject_table(self.node("face"))

    def name_subject(self, *, face: int, subject: str):
        """Say who face ``face`` is: its tracks become the subject ``subject`` (the user's word wins).

        The tree's ``face`` node is replaced in place by one with the subjects assigned again and
        the name stored in ``attrs["subject_names"]``, so it persists with ``save_session``.
        Returns the new subject table.
        """
        from .subjects import assign_subjects, subject_table

        video = self._tree["video"].to_dataset() if "video" in self._tree.children else None
        ds = assign_subjects(self.node("face"), names={face: subject},
                             video=video if video is not None and video.attrs.get("path") else None)
        self._tree["face"] = ds
        return subject_table(ds)

    def explore(self, **options):
        """Scrubber, AU inspector, timelines and annotator, linked (needs the ``notebook`` extra)."""
        from .widgets import explore

        return explore(self._tree, **options)
