"""Remote photoplethysmography: pulse and heart rate from the skin colour of the tracked face.

>>> pulse = eb.physio.rppg("face.mp4")                     # doctest: +SKIP
>>> pulse = eb.physio.rppg(tree)                           # uses tree["face"] when present
>>> pulse.rppg_rate.plot()                                 # doctest: +SKIP

The face comes from :func:`emonb.analyze_face` (its 478-point mesh, or its boxes): pass a
precomputed result as ``face=`` to avoid running it again.
"""

from __future__ import annotations

import numpy as np

from ..._checks import check_option, check_positive, require
from ...errors import EmonbValueError
from ._common import interp_events, quiet, to_attr, warn

__all__ = ["rppg", "pos_pulse", "chrom_pulse", "pulse_rate_windows", "REGIONS", "RPPG_QUALITY_THRESHOLD"]

#: MediaPipe face-mesh vertices outlining each skin region (the convex hull is used).
REGIONS: dict[str, tuple[int, ...]] = {
    "forehead": (107, 66, 69, 109, 10, 338, 299, 296, 336, 9, 151, 108, 337),
    "left_cheek": (118, 119, 100, 126, 209, 49, 129, 203, 205, 50, 117),
    "right_cheek": (347, 348, 329, 355, 429, 279, 358, 423, 425, 280, 346),
}
#: Fallback regions as fractions of the face box (x0, y0, x1, y1) when no mesh is available.
BOX_REGIONS: dict[str, tuple[float, float, float, float]] = {
    "forehead": (0.30, 0.06, 0.70, 0.22),
    "left_cheek": (0.15, 0.50, 0.38, 0.70),
    "right_cheek": (0.62, 0.50, 0.85, 0.70),
}
#: Windows whose spectral quality is below this get no heart rate (NaN).
RPPG_QUALITY_THRESHOLD = 0.3
#: Pulse band (Hz): 42-240 bpm.
BAND = (0.7, 4.0)


def pos_pulse(rgb: np.ndarray, fs: float, *, window: float = 1.6) -> np.ndarray:
    """Plane-orthogonal-to-skin pulse (Wang, den Brinker, Stuijk & de Haan 2017, IEEE TBME 64(7)).

    Parameters
    ----------
    rgb : ndarray (n, 3)
        Mean skin colour per frame (uniformly sampled, no NaN).
    fs : float
        Frame rate, Hz.
    window : float
        Overlap-add window, seconds (1.6 s in the paper).

    Returns
    -------
    ndarray (n,) pulse signal, arbitrary units.
    """
    n = len(rgb)
    l = max(int(round(window * fs)), 2)
    h = np.zeros(n)
    proj = np.array([[0.0, 1.0, -1.0], [-2.0, 1.0, 1.0]])
    for m in range(0, n - l + 1):
        c = rgb[m: m + l]
        mu = c.mean(axis=0)
        if np.any(mu <= 0):
            continue
        s = (c / mu) @ proj.T
        sd = s.std(axis=0)
        if sd[1] == 0:
            continue
        p = s[:, 0] + sd[0] / sd[1] * s[:, 1]
        h[m: m + l] += p - p.mean()
    return h


def chrom_pulse(rgb: np.ndarray, fs: float, *, window: float = 1.6) -> np.ndarray:
    """Chrominance pulse (de Haan & Jeanne 2013, IEEE TBME 60(10)), overlap-added with Hann windows."""
    from scipy.signal import butter, sosfiltfilt

    n = len(rgb)
    l = max(int(round(window * fs)), 4)
    l += l % 2
    sos = butter(3, BAND, "bandpass", fs=fs, output="sos")
    h = np.zeros(n)
    hann = np.hanning(l)
    step = l // 2
    for m in range(0, max(n - l, 0) + 1, step):
        c = rgb[m: m + l]
        mu = c.mean(axis=0)
        if np.any(mu <= 0) or len(c) < l:
            continue
        cn = c / mu
        x = 3 * cn[:, 0] - 2 * cn[:, 1]
        y = 1.5 * cn[:, 0] + cn[:, 1] - 1.5 * cn[:, 2]
        if l > 3 * 7:
            x, y = sosfiltfilt(sos, x), sosfiltfilt(sos, y)
        sy = y.std()
        if sy == 0:
            continue
        s = x - x.std() / sy * y
        h[m: m + l] += hann * (s - s.mean())
    return h


def pulse_rate_windows(pulse: np.ndarray, fs: float, *, window: float, step: float, band=BAND):
    """Heart rate (bpm) and spectral quality (0..1) of the pulse in sliding windows.

    Quality is the share of the pulse-band power that lies within 0.1 Hz of the spectral peak
    and of its second harmonic (after de Haan & Jeanne 2013's SNR); a flat noise spectrum scores
    about 0.15-0.25, a clean pulse above 0.5.

    Returns
    -------
    centres (s from the first sample), rate (bpm), quality
    """
    n = len(pulse)
    l = int(round(window * fs))
    hop = max(int(round(step * fs)), 1)
    starts = np.arange(0, max(n - l, 0) + 1, hop) if n >= l else np.zeros(0, int)
    nfft = max(int(2 ** np.ceil(np.log2(l * 8))), 256) if l else 256
    f = np.fft.rfftfreq(nfft, 1 / fs)
    inb = (f >= band[0]) & (f <= band[1])
    rate = np.full(len(starts), np.nan)
    qual = np.zeros(len(starts))
    win = np.hanning(l) if l else None
    for i, a in enumerate(starts):
        seg = pulse[a: a + l]
        if not np.isfinite(seg).all() or seg.std() == 0:
            continue
        p = np.abs(np.fft.rfft((seg - seg.mean()) * win, nfft)) ** 2
        pb = p[inb]
        if pb.sum() <= 0:
            continue
        fpk = f[inb][np.argmax(pb)]
        near = (np.abs(f - fpk) <= 0.1) | (np.abs(f - 2 * fpk) <= 0.1)
        qual[i] = p[inb & near].sum() / pb.sum()
        rate[i] = 60.0 * fpk
    centres = (starts + l / 2) / fs
    return centres, rate, qual


def _region_masks(shape, pts_xy: np.ndarray | None, box: np.ndarray | None, regions):
    """Boolean masks (one per region) for a frame of ``shape``; None where not computable."""
    import cv2

    h, w = shape[:2]
    out = []
    for reg in regions:
        mask = np.zeros((h, w), np.uint8)
        if pts_xy is not None:
            p = pts_xy[list(REGIONS[reg])]
            if not np.isfinite(p).all():
                out.append(None)
                continue
            hull = cv2.convexHull(np.round(p).astype(np.int32))
            cv2.fillConvexPoly(mask, hull, 1)
        elif box is not None and np.isfinite(box).all():
            x0, y0, x1, y1 = box
            fx0, fy0, fx1, fy1 = BOX_REGIONS[reg]
            bw, bh = x1 - x0, y1 - y0
            xa, xb = int(round(x0 + fx0 * bw)), int(round(x0 + fx1 * bw))
            ya, yb = int(round(y0 + fy0 * bh)), int(round(y0 + fy1 * bh))
            mask[max(ya, 0): max(yb, 0), max(xa, 0): max(xb, 0)] = 1
        else:
            out.append(None)
            continue
        out.append(mask.astype(bool) if mask.any() else None)
    return out


def _face_lookup(face, face_index: int):
    """times (session clock), landmarks (t, 478, 2) or None, boxes (t, 4) or None."""
    if face is None:
        return None
    if "time" not in face.coords:
        raise EmonbValueError("the face result has no 'time' coordinate")
    ft = np.asarray(face["time"].values, float)
    lm = box = None
    if "face_landmarks" in face:
        da = face["face_landmarks"]
        if "face" in da.dims:
            if face.sizes["face"] <= face_index:
                raise EmonbValueError(f"face_index={face_index} but the face result has "
                                      f"{face.sizes['face']} face(s)")
            da = da.isel(face=face_index)
        if "coord" in da.dims:
            da = da.sel(coord=["x", "y"]) if "x" in list(da["coord"].values) else da.isel(coord=[0, 1])
        lm = np.asarray(da.transpose("time", ...).values, float)
    if "face_box" in face:
        da = face["face_box"]
        if "face" in da.dims:
            da = da.isel(face=min(face_index, face.sizes["face"] - 1))
        box = np.asarray(da.transpose("time", ...).values, float)
    if lm is None and box is None:
        raise EmonbValueError("the face result has neither face_landmarks nor face_box")
    return ft, lm, box


def rppg(src, *, face=None, method: str = "pos", window: float = 10.0, step: float = 1.0,
         regions=("forehead", "left_cheek", "right_cheek"), face_index: int = 0,
         start: float | None = None, end: float | None = None,
         quality_threshold: float = RPPG_QUALITY_THRESHOLD, progress: bool = True):
    """Pulse and heart rate from the face video (remote photoplethysmography).

    The mean colour of skin regions (forehead and cheeks, outlined by the face mesh of
    :func:`emonb.analyze_face`, or box fractions when only ``face_box`` is known) is tracked over
    frames, resampled to a uniform rate, turned into a pulse signal with POS (Wang et al. 2017)
    or CHROM (de Haan & Jeanne 2013), and the heart rate is the spectral peak (0.7-4 Hz) in
    sliding windows.

    Parameters
    ----------
    src : path, xarray.Dataset or xarray.DataTree
        A video file, a video node (``eb.load_video``) or a session tree with a ``video`` node.
    face : xarray.Dataset, optional
        Output of :func:`emonb.analyze_face` for this video (``face_landmarks(time, face,
        landmark, coord)`` in pixels and/or ``face_box``). Default: the tree's ``face`` node,
        else ``analyze_face`` is run on the video.
    method : {"pos", "chrom"}
    window, step : float
        Heart-rate window and step, seconds (defaults 10 and 1).
    regions : sequence of {"forehead", "left_cheek", "right_cheek"}
    face_index : int
        Which face (along the ``face`` dimension) to use.
    start, end : float, optional
        Time range on the video's own clock (s).
    quality_threshold : float
        Windows with spectral quality below this get NaN heart rate (default 0.3).
    progress : bool
        Show a progress bar while decoding.

    Returns
    -------
    xarray.Dataset
        On ``time`` (frame times, session clock): ``rppg_pulse`` (a.u., band-passed pulse),
        ``rppg_rate`` (bpm, from the window centred nearest each frame), ``rppg_quality``
        (0-1, see :func:`pulse_rate_windows`), ``rppg_rgb(time, region, channel)`` (mean colour,
        0-255, NaN where the region is not visible). Provenance attrs as for every result node.
    """
    import xarray as xr
    from scipy.signal import butter, sosfiltfilt
    from tqdm.auto import tqdm

    check_option("method", method, ("pos", "chrom"))
    window = check_positive("window", window)
    step = check_positive("step", step)
    regions = tuple(regions)
    for r in regions:
        check_option("region", r, tuple(REGIONS))
    require("cv2", extra="face", purpose="face-region masks for rPPG")
    from ...io.video import video_reader

    # video node / reader
    if isinstance(src, xr.DataTree):
        if "video" not in src.children:
            raise EmonbValueError("the session has no 'video' node for rPPG")
        vnode = src["video"].to_dataset()
        if face is None and "face" in src.children:
            face = src["face"].to_dataset()
    elif isinstance(src, xr.Dataset):
        vnode = src
    else:
        from ...io.video import load_video

        vnode = load_video(src, frames=False)
    t0 = float(vnode.attrs.get("t0", 0.0) or 0.0)
    reader = video_reader(vnode)
    if face is None:
        from ..face.analyze import analyze_face

        face = analyze_face(vnode, start=start, end=end, progress=progress)
    ft, lm, box = _face_lookup(face, face_index)

    times, rgb = [], []
    nreg = len(regions)
    total = reader.n_frames
    with tqdm(total=total, desc="rppg", disable=not progress) as bar:
        for tt, _, frames in reader.iter_chunks(64, start=start, end=end):
            for t, fr in zip(tt, frames):
                ts = t + t0
                vals = np.full((nreg, 3), np.nan)
                if len(ft):
                    j = int(np.argmin(np.abs(ft - ts)))
                    if abs(ft[j] - ts) <= 0.75 / max(reader.fps, 1.0):
                        pts = lm[j] if lm is not None else None
                        if pts is not None and not np.isfinite(pts[list(REGIONS[regions[0]])]).all():
                            pts = None
                        bx = box[j] if box is not None else None
                        for k, m in enumerate(_region_masks(fr.shape, pts, bx, regions)):
                            if m is not None and m.sum() >= 20:
                                vals[k] = fr[m].mean(axis=0)
                times.append(ts)
                rgb.append(vals)
            bar.update(len(tt))
    if not times:
        raise EmonbValueError("no frame could be decoded from the video")
    times = np.asarray(times)
    rgb = np.asarray(rgb)  # (n, region, 3)
    # combine regions: mean over visible regions, then a uniform grid at the video rate
    with quiet():
        comb = np.nanmean(rgb, axis=1)
    ok = np.isfinite(comb).all(axis=1)
    fs = float(reader.fps) if reader.fps else 1.0 / np.median(np.diff(times))
    pulse_t = np.full(len(times), np.nan)
    cen_t, rate_c, qual_c = np.zeros(0), np.zeros(0), np.zeros(0)
    if ok.sum() >= int(window * fs):
        grid = np.arange(times[ok][0], times[ok][-1] + 0.5 / fs, 1.0 / fs)
        u = np.stack([np.interp(grid, times[ok], comb[ok, c]) for c in range(3)], axis=1)
        with quiet():
            h = pos_pulse(u, fs) if method == "pos" else chrom_pulse(u, fs)
            if len(h) > 30:
                h = sosfiltfilt(butter(3, BAND, "bandpass", fs=fs, output="sos"), h)
        # gaps (no face) longer than a second invalidate the pulse there
        gap_ok = interp_events(times[ok], np.ones(ok.sum()), grid, max_gap=1.0)
        h = np.where(np.isfinite(gap_ok), h, np.nan)
        c, rate_c, qual_c = pulse_rate_windows(np.nan_to_num(h), fs, window=window, step=step)
        # a window that spans missing face frames is not trusted
        for i, cc in enumerate(c):
            seg = gap_ok[max(int((cc - window / 2) * fs), 0): int((cc + window / 2) * fs)]
            if not np.isfinite(seg).all():
                rate_c[i], qual_c[i] = np.nan, 0.0
        cen_t = grid[0] + c
        pulse_t = np.interp(times, grid, np.nan_to_num(h))
        pulse_t[~np.isfinite(np.interp(times, grid, gap_ok))] = np.nan
        pulse_t[~ok] = np.nan
    else:
        warn(f"rppg: only {ok.sum()} frames with a visible face; a {window:g}-s window needs "
             f"{int(window * fs)}: no heart rate")
    rate_c = np.where(qual_c >= quality_threshold, rate_c, np.nan)
    rate = np.full(len(times), np.nan)
    qual = np.zeros(len(times))
    if len(cen_t):
        k = np.clip(np.round((times - cen_t[0]) / step).astype(int), 0, len(cen_t) - 1)
        near = np.ones(len(times), bool)  # each frame: the window centred nearest to it
        rate[near] = rate_c[k[near]]
        qual[near] = qual_c[k[near]]
        rate[~ok] = np.nan  # no face on this frame: no heart rate for it
        qual[~ok] = 0.0
    ref = {"pos": "Wang, den Brinker, Stuijk & de Haan (2017) Algorithmic principles of remote PPG. "
                  "IEEE TBME 64(7):1479-1491",
           "chrom": "de Haan & Jeanne (2013) Robust pulse rate from chrominance-based rPPG. "
                    "IEEE TBME 60(10):2878-2886"}[method]
    ds = xr.Dataset(
        {"rppg_pulse": ("time", pulse_t.astype(np.float32), {"units": "a.u.", "long_name": "rPPG pulse",
                                                              "source": f"emonb {method.upper()}, 0.7-4 Hz"}),
         "rppg_rate": ("time", rate.astype(np.float32), {"units": "bpm", "long_name": "heart rate from face video",
                                                          "window_s": window, "step_s": step,
                                                          "threshold": quality_threshold}),
         "rppg_quality": ("time", qual.astype(np.float32), {
             "units": "1", "long_name": "rPPG spectral quality (0..1)",
             "meaning": "share of 0.7-4 Hz power within 0.1 Hz of the peak and its harmonic",
             "threshold": quality_threshold}),
         "rppg_rgb": (("time", "region", "channel"), rgb.astype(np.float32),
                      {"units": "8-bit level", "long_name": "mean skin colour per region"})},
        coords={"time": ("time", times, {"units": "s"}), "region": list(regions), "channel": ["R", "G", "B"]})
    ds.attrs.update({
        "model": f"rppg-{method}", "model_version": "1", "model_license": "MIT (emonb implementation)",
        "device": "cpu", "citation": ref,
        "parameters": to_attr({"method": method, "window": window, "step": step, "regions": list(regions),
                               "face_index": face_index, "quality_threshold": quality_threshold,
                               "start": start, "end": end}),
        "face_model": str(face.attrs.get("model", "unknown")),
        "roi": "face mesh" if lm is not None else "face box",
        "sampling_rate": fs, "t0": t0,
    })
    return ds
