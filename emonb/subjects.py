"""Subjects: the people behind the face tracks of a face analysis.

``analyze_face`` gives every face a slot on the ``face`` dimension that the tracker keeps while the
face stays in view; a slot that has been empty for longer than the tracker's timeout is reused by
the next face that appears, and a person who leaves and comes back gets a fresh slot or another
person's old one. This module turns slots into *subjects*:

1. **Tracks.** Each slot is cut into tracks where it stays empty for longer than the tracker's
   timeout (``attrs["track_timeout"]``).
2. **Appearance.** Where the video can be read (the ``path`` of the face node, or a
   video node given as ``video``), a few frames of every track are decoded and the face box (skin)
   and the head region around it (hair) are summarised as hue-saturation histograms. Along each
   track the face is also looked at every second or so, and a track is cut where the person
   changes without a gap (a cut to someone else at the same place in the frame).
3. **Joining.** Two tracks join into one subject only when they never share an analysed frame
   (two faces on screen at once are two people) and both their histograms agree
   (Bhattacharyya distance below ``threshold`` for every pair of members: complete linkage).
   Without a readable video nothing is joined: each track is a subject of its own. Mesh geometry is
   not used: MediaPipe's mesh is regularised towards one canonical face, and on real video the same
   person across a cut differed more than two different people did.
4. **The user's word wins.** ``names`` (face id -> name), or names stored earlier with
   :meth:`tree.emonb.name_subject <emonb.accessor.EmonbTreeAccessor.name_subject>`, put every
   track of that face id into the subject of that name; differently named tracks never join.

The result is the face dataset with a per-frame variable ``face_subject(time, face)`` (``""``
where the slot is empty), a coordinate ``subject(face)`` (the subject of most of a slot's frames),
``attrs["main_subject"]`` (most screen time) and ``attrs["subject_method"]``.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import xarray as xr

from .errors import EmonbValueError, EmonbWarning

__all__ = ["assign_subjects", "subject_track", "subject_table", "subject_names", "subjects_of",
           "subject_summary", "subject_shares", "METHOD_VERSION"]

METHOD_VERSION = 2
#: frames decoded per track for its appearance signature
SIGNATURE_FRAMES = 8
#: largest Bhattacharyya distance between two tracks' histograms for them to be one person
THRESHOLD = 0.3
#: seconds between looks along a track for a change of person (at most CHANGE_SAMPLES looks a track)
CHANGE_STEP_S = 1.0
CHANGE_SAMPLES = 60
_NAMES_ATTR = "subject_names"


# -- tracks ---------------------------------------------------------------------------------------
def _check_face(face) -> xr.Dataset:
    if isinstance(face, xr.DataTree):
        if "face" not in face.children:
            raise EmonbValueError(f"this session has no face node; it has {list(face.children)}")
        face = face["face"].to_dataset()
    if not isinstance(face, xr.Dataset) or "face_box" not in face or "time" not in face.dims:
        raise EmonbValueError("subjects need the result of analyze_face (a Dataset with face_box(time, face, "
                              "box_coord)); got " + (f"variables {list(face.data_vars)}" if isinstance(face, xr.Dataset)
                                                    else type(face).__name__))
    return face


def _presence(face: xr.Dataset) -> np.ndarray:
    """(time, face) bool: a face in that slot at that analysed frame."""
    box = face["face_box"].transpose("time", "face", ...).values
    return np.isfinite(box.reshape(box.shape[0], box.shape[1], -1)).all(axis=-1)


def _durations(face: xr.Dataset) -> np.ndarray:
    """Seconds each analysed frame stands for: the step to the next frame (the median step for the
    last one; one over ``sampling_rate`` for a single frame, 0 when that is unknown too)."""
    t = face["time"].values.astype(float)
    if t.size < 2:
        rate = float(face.attrs.get("sampling_rate", 0) or 0)
        return np.full(t.size, 1.0 / rate if rate > 0 else 0.0)
    step = np.diff(t)
    return np.append(step, np.median(step))


def _tracks(face: xr.Dataset, present: np.ndarray) -> list[dict]:
    """Each slot cut at gaps longer than the tracker timeout: ``[{"face": id, "rows": int array}, ...]``."""
    t = face["time"].values.astype(float)
    timeout = float(face.attrs.get("track_timeout", 1.0) or 1.0)
    out = []
    for j, fid in enumerate(face["face"].values.tolist()):
        rows = np.flatnonzero(present[:, j])
        if rows.size == 0:
            continue
        # a gap: analysed frames without the face in between, spanning more than the timeout (two
        # consecutive analysed frames with the face are one track however far apart a stride puts them)
        cuts = np.flatnonzero((np.diff(rows) > 1) & (np.diff(t[rows]) > timeout)) + 1
        for part in np.split(rows, cuts):
            out.append({"face": fid, "slot": j, "rows": part})
    return out


# -- appearance -----------------------------------------------------------------------------------
def _histograms(img: np.ndarray, box) -> list[np.ndarray]:
    """Hue-saturation histograms (18 x 8, sum 1) of the face box and of the head region around it."""
    import cv2

    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = x1 - x0, y1 - y0
    H, W = img.shape[:2]
    out = []
    for mx, mt, mb in ((0.0, 0.0, 0.0), (0.35, 0.45, 0.1)):
        a, b = int(max(0, x0 - mx * w)), int(min(W, x1 + mx * w))
        c, d = int(max(0, y0 - mt * h)), int(min(H, y1 + mb * h))
        if b - a < 2 or d - c < 2:
            return []
        hsv = cv2.cvtColor(np.ascontiguousarray(img[c:d, a:b]), cv2.COLOR_RGB2HSV)
        hist = cv2.calcHist([hsv], [0, 1], None, [18, 8], [0, 180, 0, 256]).ravel().astype(float)
        out.append(hist / max(hist.sum(), 1.0))
    return out


def _reader(face: xr.Dataset, video):
    """A video reader for the frames behind ``face``, or ``(None, why)``."""
    from .io.video import video_reader

    src = video if video is not None else face.attrs.get("path")
    if isinstance(src, xr.DataTree):
        src = src.to_dataset()
    if src is None or (isinstance(src, str) and not src):
        return None, "no video to read (the face node has no path)"
    try:
        return video_reader(src), ""
    except Exception as exc:  # a moved or unreadable file: no signature, no joining
        return None, f"the video could not be read ({type(exc).__name__}: {exc})"


class _Looks:
    """Colour histograms of the face in (row, slot), decoded on demand and cached."""

    def __init__(self, face: xr.Dataset, reader):
        self.reader = reader
        self.box = face["face_box"].transpose("time", "face", "box_coord").values
        self.index = face["frame_index"].values
        self.cache: dict = {}

    def __call__(self, row: int, slot: int):
        key = (int(row), int(slot))
        if key not in self.cache:
            try:
                img = np.asarray(self.reader.frame(int(self.index[row])))
                self.cache[key] = _histograms(img, self.box[row, slot]) or None
            except Exception:  # a frame that does not decode is left out
                self.cache[key] = None
        return self.cache[key]


def _pair(x, y) -> float:
    return max(np.sqrt(max(0.0, 1.0 - float(np.sum(np.sqrt(p * q))))) for p, q in zip(x, y))


def _split_changes(face: xr.Dataset, tracks: list[dict], looks: _Looks, threshold: float) -> tuple[list, int]:
    """Cut tracks where the person changes without a gap (a cut to someone else at the same place).

    Along each track the face is looked at every :data:`CHANGE_STEP_S` seconds (at most
    :data:`CHANGE_SAMPLES` times); a change is where two consecutive looks differ by more than
    ``threshold`` and the difference persists one look further on both sides (not a blink or a
    blur). The cut is found by bisection between those two looks. Cutting too often is
    harmless: the joining step puts together again what looks the same.
    """
    t = face["time"].values.astype(float)
    out, n_changes = [], 0
    for tr in tracks:
        rows = tr["rows"]
        span = t[rows[-1]] - t[rows[0]]
        if rows.size < 4 or span < 2 * CHANGE_STEP_S:
            out.append(tr)
            continue
        step = max(CHANGE_STEP_S, span / CHANGE_SAMPLES)
        want = np.arange(t[rows[0]], t[rows[-1]] + 1e-9, step)
        pos = np.unique(np.clip(np.searchsorted(t[rows], want), 0, rows.size - 1))
        seen = [(p, looks(rows[p], tr["slot"])) for p in pos]
        seen = [(p, h) for p, h in seen if h is not None]
        cuts = []
        for k in range(len(seen) - 1):
            d = _pair(seen[k][1], seen[k + 1][1])
            if d <= threshold:
                continue
            if k > 0 and _pair(seen[k - 1][1], seen[k + 1][1]) <= threshold:
                continue
            if k + 2 < len(seen) and _pair(seen[k][1], seen[k + 2][1]) <= threshold:
                continue
            # bisect between the two looks: the cut goes after the last frame that looks like the first
            (lo, before), (hi, after) = seen[k], seen[k + 1]
            while hi - lo > 1:
                mid = (lo + hi) // 2
                h = looks(rows[mid], tr["slot"])
                if h is None:
                    break
                if _pair(h, before) <= _pair(h, after):
                    lo = mid
                else:
                    hi = mid
            cuts.append(hi)
        for part in np.split(rows, cuts):
            out.append({"face": tr["face"], "slot": tr["slot"], "rows": part})
        n_changes += len(cuts)
    return out, n_changes


def _signatures(face: xr.Dataset, tracks: list[dict], video, threshold: float) -> tuple[list, list, str, int]:
    """Tracks (cut where the person changes), per track a list of per-frame histogram pairs (or
    ``None``), a note on what was not possible, and the number of within-track changes."""
    if "frame_index" not in face.coords:
        return tracks, [None] * len(tracks), "no frame_index coordinate, so no frames to compare", 0
    reader, why = _reader(face, video)
    if reader is None:
        return tracks, [None] * len(tracks), why, 0
    looks = _Looks(face, reader)
    tracks, n_changes = _split_changes(face, tracks, looks, threshold)
    sigs = []
    for tr in tracks:
        rows = tr["rows"]
        pick = rows[np.unique(np.linspace(0, rows.size - 1, min(SIGNATURE_FRAMES, rows.size)).round().astype(int))]
        per = [h for h in (looks(i, tr["slot"]) for i in pick) if h is not None]
        sigs.append(per or None)
    return tracks, sigs, "", n_changes


def _distance(a: list, b: list) -> float:
    """Median over frame pairs of the larger of the two regions' Bhattacharyya distances."""
    return float(np.median([_pair(x, y) for x in a for y in b]))


# -- joining --------------------------------------------------------------------------------------
def _overlap(rows_a: set, rows_b: set) -> bool:
    return not rows_a.isdisjoint(rows_b)


def _join(tracks: list[dict], sigs: list, names: dict, threshold: float) -> list[int]:
    """Cluster label per track (complete linkage over appearance, never across overlap or names)."""
    n = len(tracks)
    label = list(range(n))
    cname: dict[int, str | None] = {i: names.get(tracks[i]["face"]) for i in range(n)}
    rows = {i: set(tracks[i]["rows"].tolist()) for i in range(n)}
    members = {i: [i] for i in range(n)}
    # the user's names first: every track of a named face id is in that name's cluster
    by_name: dict[str, int] = {}
    for i in range(n):
        nm = cname[i]
        if nm is None:
            continue
        if nm in by_name:
            c = by_name[nm]
            if _overlap(rows[c], rows[i]):
                warnings.warn(f"the subject {nm!r} was given to faces that are on screen at the same time "
                              f"(face {tracks[i]['face']}); kept as the user said", EmonbWarning, stacklevel=4)
            members[c] += members.pop(i)
            rows[c] |= rows.pop(i)
            for m in members[c]:
                label[m] = c
        else:
            by_name[nm] = i
    dist = {}
    for i in range(n):
        for j in range(i + 1, n):
            if sigs[i] is not None and sigs[j] is not None:
                dist[i, j] = dist[j, i] = _distance(sigs[i], sigs[j])
    while True:
        best = None
        clusters = sorted(members)
        for a_i, a in enumerate(clusters):
            for b in clusters[a_i + 1:]:
                if cname.get(a) is not None and cname.get(b) is not None:
                    continue  # two names: the user said they differ
                if _overlap(rows[a], rows[b]):
                    continue
                pair = [dist.get((x, y)) for x in members[a] for y in members[b]]
                if not pair or any(p is None for p in pair):
                    continue
                d = max(pair)
                if d < threshold and (best is None or d < best[0]):
                    best = (d, a, b)
        if best is None:
            break
        _, a, b = best
        if cname.get(a) is None:
            a, b = b, a  # keep the named one as the cluster's key
        members[a] += members.pop(b)
        rows[a] |= rows.pop(b)
        for m in members[a]:
            label[m] = a
    return label


def subject_names(face: xr.Dataset) -> dict:
    """The user's names stored on a face node: ``{face id: name}``."""
    raw = face.attrs.get(_NAMES_ATTR, "") or "{}"
    try:
        doc = json.loads(raw)
    except (TypeError, ValueError):
        raise EmonbValueError(f"the face node's attrs[{_NAMES_ATTR!r}] is not the JSON emonb writes: "
                              f"{str(raw)[:80]!r}") from None
    return {int(k): str(v) for k, v in doc.items()} if isinstance(doc, dict) else {}


def _check_names(names, ids) -> dict:
    if names is None:
        return {}
    if not isinstance(names, dict):
        raise EmonbValueError(f"names must be a dict {{face id: name}}, got {type(names).__name__}")
    out = {}
    for k, v in names.items():
        try:
            k = int(k)
        except (TypeError, ValueError):
            raise EmonbValueError(f"names: face ids are integers, got {k!r}") from None
        if k not in ids:
            raise EmonbValueError(f"names: there is no face {k} in this analysis; face ids are {sorted(ids)}")
        if not isinstance(v, str) or not v.strip():
            raise EmonbValueError(f"names: the name of face {k} must be a non-empty string, got {v!r}")
        out[k] = v.strip()
    return out


def assign_subjects(face: xr.Dataset, *, names: dict | None = None, video=None,
                    threshold: float = THRESHOLD) -> xr.Dataset:
    """Join face tracks into subjects (people) and label them.

    Parameters
    ----------
    face : xarray.Dataset
        The result of :func:`emonb.analyze_face` on a video (dims ``time``, ``face``).
    names : dict, optional
        ``{face id: name}``: the user's word on who a face is. It wins over the automatic joining
        and is stored (merged with names stored earlier) in ``attrs["subject_names"]``.
    video : str, path or xarray.Dataset, optional
        The video to take appearance signatures from (default: the face node's ``path``).
    threshold : float
        Largest Bhattacharyya distance (0-1) between two tracks' colour histograms for them to join.

    Returns
    -------
    xarray.Dataset
        A copy of ``face`` with ``face_subject(time, face)`` (str, ``""`` where the slot is empty),
        the coordinate ``subject(face)``, ``attrs["main_subject"]`` (the subject with the most
        screen time, ``""`` when no face was found) and ``attrs["subject_method"]``. Automatic
        subjects are called ``S1``, ``S2``, ... in order of first appearance.
    """
    face = _check_face(face)
    if not 0 < float(threshold) <= 1:
        raise EmonbValueError(f"threshold must be in (0, 1], got {threshold!r}")
    ids = face["face"].values.tolist()
    stored = subject_names(face)
    given = _check_names(names, set(ids))
    stored.update(given)
    present = _presence(face)
    tracks = _tracks(face, present)
    tracks, sigs, why, n_changes = _signatures(face, tracks, video, float(threshold)) if tracks \
        else (tracks, [], "", 0)
    label = _join(tracks, sigs, stored, float(threshold))
    t = face["time"].values.astype(float)
    # name the clusters: the user's names, then S1, S2, ... by first appearance
    first = {}
    for i, tr in enumerate(tracks):
        first[label[i]] = min(first.get(label[i], np.inf), t[tr["rows"][0]])
    taken = set(stored.values())
    cname, k = {}, 0
    for c in sorted(first, key=lambda c: first[c]):
        nm = next((stored[tracks[i]["face"]] for i in range(len(tracks)) if label[i] == c
                   and tracks[i]["face"] in stored), None)
        if nm is None:
            k += 1
            while f"S{k}" in taken:
                k += 1
            nm = f"S{k}"
        cname[c] = nm
    per = np.full(present.shape, "", dtype=object)
    for i, tr in enumerate(tracks):
        per[tr["rows"], tr["slot"]] = cname[label[i]]
    width = max([len(s) for s in cname.values()] + [1])
    per = per.astype(f"<U{width}")
    dur = _durations(face)
    screen = {nm: float(dur[(per == nm).any(axis=1)].sum()) for nm in cname.values()}
    main = max(screen, key=lambda s: (screen[s], -first[[c for c, v in cname.items() if v == s][0]])) if screen else ""
    slot_subject = []
    for j in range(present.shape[1]):
        col = per[:, j][per[:, j] != ""]
        if col.size:
            vals, counts = np.unique(col, return_counts=True)
            slot_subject.append(str(vals[np.argmax(counts)]))
        else:
            slot_subject.append("")
    n_joined = len(tracks) - len(set(label))
    if len(tracks) <= 1 and not why:
        method = "one face track, the same person throughout: one subject"
    elif len(tracks) <= 1:
        method = "one face track: one subject"
    elif why:
        method = f"no appearance signature ({why}): tracks joined only by the user's names"
    else:
        method = (f"tracks (slots cut at gaps > track_timeout) joined where they never share a frame and "
                  f"their face and head colour histograms agree (Bhattacharyya < {float(threshold):g}, complete "
                  f"linkage over {SIGNATURE_FRAMES} frames per track); the user's names win")
    changes = f", {n_changes} change(s) of person within a track" if n_changes else ""
    method += f"; {len(tracks)} track(s){changes}, {n_joined} join(s); subjects v{METHOD_VERSION}"
    out = face.copy()
    out["face_subject"] = (("time", "face"), per, {
        "long_name": "subject (person) of the face in this slot; empty where the slot is empty"})
    out = out.assign_coords(subject=("face", np.asarray(slot_subject, dtype=f"<U{max(width, 1)}")))
    out.attrs["main_subject"] = main
    out.attrs["subject_method"] = method
    out.attrs[_NAMES_ATTR] = json.dumps({str(k): v for k, v in sorted(stored.items())})
    return out


def subjects_of(face: xr.Dataset) -> xr.Dataset:
    """``face`` with subjects: as it is when it has them, else :func:`assign_subjects` on it."""
    face = _check_face(face)
    if "face_subject" in face and "subject" in face.coords:
        return face
    return assign_subjects(face)


def _subject_index(face: xr.Dataset, subject: str) -> np.ndarray:
    """Per analysed frame, the slot position holding ``subject`` (-1 where it is not in view)."""
    per = face["face_subject"].transpose("time", "face").values.astype(str)
    hit = per == str(subject)
    idx = np.where(hit.any(axis=1), hit.argmax(axis=1), -1)
    return idx


def subject_track(face: xr.Dataset, subject: str) -> xr.Dataset:
    """One subject's data over ``time``, without the ``face`` dimension.

    Parameters
    ----------
    face : xarray.Dataset
        A face analysis (subjects are assigned first when it has none).
    subject : str
        A subject name (``subject_table(face)["subject"]``).

    Returns
    -------
    xarray.Dataset
        Every variable with a ``face`` dim taken from the slot that holds the subject at each
        time (tracks merged), NaN where the subject is not in view; ``face_id(time)`` says which
        slot it came from (NaN there). Variables without a ``face`` dim (``face_count``) are kept.
    """
    face = subjects_of(face)
    known = sorted(set(face["face_subject"].values.astype(str).ravel()) - {""})
    if str(subject) not in known:
        raise EmonbValueError(f"no subject {subject!r} in this face analysis; its subjects are {known}")
    idx = _subject_index(face, subject)
    there = idx >= 0
    sel = xr.DataArray(np.maximum(idx, 0), dims="time")
    mask = xr.DataArray(there, dims="time")
    out = {}
    for name, da in face.data_vars.items():
        if name == "face_subject":
            continue
        if "face" in da.dims:
            v = da.isel(face=sel)
            v = v.where(mask) if v.dtype.kind == "f" else v.astype("float32").where(mask)
            out[name] = v.drop_vars([c for c in ("face", "subject") if c in v.coords])
        else:
            out[name] = da
    ids = face["face"].values
    out["face_id"] = xr.DataArray(np.where(there, ids[np.maximum(idx, 0)], np.nan), dims="time",
                                  attrs={"long_name": "face slot the subject was in (NaN: not in view)", "units": "1"})
    ds = xr.Dataset(out, coords={c: v for c, v in face.coords.items() if "face" not in v.dims})
    ds.attrs = {k: v for k, v in face.attrs.items()}
    ds.attrs["subject"] = str(subject)
    return ds


def subject_table(face) -> pd.DataFrame:
    """One row per subject: face ids, screen time, share of analysed frames, first and last seen.

    Columns ``subject``, ``faces`` (the face ids, e.g. ``"0, 2"``), ``screen_time_s``, ``share``
    (0-1 of analysed frames), ``first_seen_s``, ``last_seen_s`` and ``main`` (bool), in order of
    first appearance. Empty (with those columns) when no face was found.
    """
    face = subjects_of(face)
    cols = ["subject", "faces", "screen_time_s", "share", "first_seen_s", "last_seen_s", "main"]
    per = face["face_subject"].transpose("time", "face").values.astype(str)
    t = face["time"].values.astype(float)
    dur = _durations(face)
    ids = face["face"].values
    rows = []
    for s in sorted(set(per.ravel()) - {""}):
        hit = per == s
        when = hit.any(axis=1)
        rows.append({"subject": s, "faces": ", ".join(str(int(i)) for i in ids[hit.any(axis=0)]),
                     "screen_time_s": round(float(dur[when].sum()), 3), "share": float(when.mean()),
                     "first_seen_s": float(t[when][0]), "last_seen_s": float(t[when][-1]),
                     "main": s == face.attrs.get("main_subject")})
    df = pd.DataFrame(rows, columns=cols)
    return df.sort_values("first_seen_s", kind="stable").reset_index(drop=True)


def subject_summary(face, *, detail: bool = True) -> list[str]:
    """Plain-text lines, one per subject: ``"subject S1: in view 62% of 96 analysed frames (face 0), ..."``.

    With ``detail`` each line also gives the subject's highest mean expression probability and
    mean valence and arousal. ``["no face in any of N analysed frames"]`` when there is none.
    """
    face = subjects_of(face)
    table = subject_table(face)
    n = face.sizes["time"]
    if table.empty:
        return [f"no face in any of {n} analysed frames"]
    lines = []
    for row in table.itertuples():
        ids = row.faces.split(", ")
        text = (f"subject {row.subject}{' (main)' if row.main and len(table) > 1 else ''}: in view "
                f"{100 * row.share:.0f}% of {n} analysed frames ({'face' if len(ids) == 1 else 'faces'} "
                f"{row.faces}; {row.first_seen_s:.1f}-{row.last_seen_s:.1f} s)")
        if detail:
            tr = subject_track(face, row.subject)
            if "face_emotion" in tr and np.isfinite(tr["face_emotion"].values).any():
                em = tr["face_emotion"].mean("time", skipna=True)
                top = int(em.argmax(dim="emotion"))
                text += f", highest mean expression {em.emotion.values[top]} {float(em.max()):.2f}"
            for v in ("face_valence", "face_arousal"):
                if v in tr and np.isfinite(tr[v].values).any():
                    text += f", {v.split('_')[1]} {float(tr[v].mean()):+.2f}"
        lines.append(text)
    return lines


def subject_shares(face) -> str:
    """One line for tables: ``"S1 62%; S2 38%"`` (empty when no face was found)."""
    table = subject_table(face)
    return "; ".join(f"{r.subject} {100 * r.share:.0f}%" for r in table.itertuples())
