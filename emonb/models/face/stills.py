"""Face analysis of still images (:func:`predict_face_images`), and of images that are face crops."""

from __future__ import annotations

import os
import warnings

import numpy as np
import xarray as xr

from ..._checks import check_option, check_positive
from ...errors import EmonbValueError, EmonbWarning
from .dataset import _build_dataset
from .mesh import N_LANDMARKS, MeshResult, boxes_from_landmarks
from .pipeline import BLUR_THRESHOLD, QUALITY_CROP, FacePipeline, _Faces, _pipeline
from .source import _read_image, _to_rgb
from .store import _Store

__all__ = ["predict_face_images"]


def _square(gray: np.ndarray, size: int) -> np.ndarray:
    """``gray`` at ``size`` x ``size``: unchanged when it already is, else area (down) or cubic (up)."""
    import cv2

    h, w = gray.shape[:2]
    if (h, w) == (size, size):
        return np.ascontiguousarray(gray)
    interp = cv2.INTER_AREA if min(h, w) > size else cv2.INTER_CUBIC
    return cv2.resize(gray, (size, size), interpolation=interp)


def _full_frame_faces(pipe: FacePipeline, rgb: np.ndarray) -> tuple[_Faces, np.ndarray]:
    """A frame that *is* the face: expression on the whole crop; mesh tried on a padded copy."""
    import cv2

    h, w = rgb.shape[:2]
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    crop = _square(gray, pipe.expression_size)[None]  # the image itself when it is at the model's size
    quality = _square(gray, QUALITY_CROP)[None]
    # The detector needs context around a tight crop: pad by half the size, upscale to >= 256 px.
    pad = int(round(0.5 * max(h, w)))
    padded = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
    up = max(1.0, 384.0 / max(padded.shape[:2]))
    big = cv2.resize(padded, None, fx=up, fy=up, interpolation=cv2.INTER_CUBIC) if up > 1 else padded
    res = pipe.mesh.detect(big)
    if res.n_faces:
        res = res.take([0])
        res.landmarks[..., :2] = res.landmarks[..., :2] / up - pad
        res.landmarks[..., 2] /= up
    else:
        res = MeshResult(np.full((1, N_LANDMARKS, 3), np.nan, np.float32), np.full((1, 52), np.nan, np.float32),
                         np.full((1, 4, 4), np.nan, np.float32))
    from .expression import crop_sharpness

    faces = _Faces(box=np.array([[0, 0, w, h]], np.float32), score=np.ones(1, np.float32),
                   landmarks=res.landmarks, blendshape=res.blendshapes, pose=None, au=None, emotion=None,
                   sharpness=crop_sharpness(quality), outside=np.zeros(1, np.float32),
                   matrices=res.matrices)
    return faces, crop


def predict_face_images(images, *, faces: str = "detect", model=None, device: str = "auto",
                        max_faces: int = 8, tiles: bool | str = "auto", flip: bool = False,
                        au_threshold: float = 0.5, blur_threshold: float = BLUR_THRESHOLD,
                        detector_score: bool = True, batch_size: int = 64, au_mapping=None,
                        progress: bool = True) -> xr.Dataset:
    """Face analysis of still images.

    Parameters
    ----------
    images : path, list of paths/arrays, or ndarray
        One image path, a list of paths or arrays, or a stack ``(N, H, W)`` / ``(N, H, W, 3)``.
        Gray, RGBA and 16-bit images are converted.
    faces : {"detect", "full"}
        ``"full"``: each image is a face crop (as in FER2013/CK+, down to 48x48 gray): no
        detection; the box is the whole image and ``face_score`` is 1. The mesh (and so AUs and
        pose) is attempted on a padded copy and is NaN where it fails.
    tiles : {"auto", True, False}
        Also detect on overlapping tiles, for faces smaller than about 1/8 of the image
        (``"auto"``: for images larger than 400 pixels on their longer side).
    max_faces : int
        Most faces per image.

    Other parameters are as in :func:`analyze_face`.

    Returns
    -------
    xarray.Dataset
        As :func:`analyze_face` with dimension ``image`` instead of ``time``, and a ``path``
        coordinate where paths were given. Faces are ordered left to right.
    """
    check_option("faces", faces, ("detect", "full"))
    check_option("tiles", tiles, ("auto", True, False))
    max_faces = int(check_positive("max_faces", max_faces))
    if isinstance(images, (str, os.PathLike)):
        items = [images]
    elif isinstance(images, np.ndarray):
        a = images
        if a.ndim == 2 or (a.ndim == 3 and a.shape[-1] in (3, 4)):  # one gray or colour image
            items = [a]
        elif a.ndim in (3, 4):
            items = list(a)
        else:
            raise EmonbValueError(f"expected an image or a stack of images, got an array of shape {a.shape}")
    else:
        items = list(images)
    if not items:
        raise EmonbValueError("predict_face_images: no images given")
    pipe = _pipeline(model, device, max_faces=max_faces, flip=flip, detector_score=detector_score,
                     batch_size=batch_size, au_mapping=au_mapping)
    store = _Store(len(pipe.aus), max_faces, capacity=len(items))
    paths = []
    faces_list, crops_list = [], []
    from tqdm.auto import tqdm

    for k, item in enumerate(tqdm(items, desc="images", disable=not progress or len(items) < 2, leave=False)):
        if isinstance(item, (str, os.PathLike)):
            rgb = _read_image(item)
            paths.append(str(item))
        else:
            rgb = _to_rgb(item)
            paths.append("")
        if faces == "full":
            f, c = _full_frame_faces(pipe, rgb)
        else:
            h, w = rgb.shape[:2]
            if min(h, w) < 16:
                warnings.warn(f"image {k} is only {w}x{h} pixels: too small to find a face "
                              "(use faces='full' for face crops)", EmonbWarning, stacklevel=2)
                res = MeshResult.empty()
            else:
                use_tiles = tiles is True or (tiles == "auto" and max(h, w) > 400)
                res = pipe.mesh.detect_tiled(rgb) if use_tiles else pipe.mesh.detect(rgb)
                if not use_tiles and res.n_faces > 1:
                    b = boxes_from_landmarks(res.landmarks)
                    res = res.take(np.argsort(b[:, 0], kind="stable"))
            f, c = pipe.frame_faces(rgb, res)
        faces_list.append(f)
        crops_list.append(c)
        # flush in batches to keep memory bounded
        if len(faces_list) >= batch_size:
            pipe.finish_chunk(faces_list, crops_list)
            for f2 in faces_list:
                store.add(np.nan, store.n, f2, np.arange(min(f2.n, max_faces)))
            faces_list, crops_list = [], []
    pipe.finish_chunk(faces_list, crops_list)
    for f2 in faces_list:
        store.add(np.nan, store.n, f2, np.arange(min(f2.n, max_faces)))
    attrs = {**pipe.provenance(), "modality": "face", "faces": faces, "max_faces": max_faces,
             "tiles": str(tiles), "flip": int(flip), "au_threshold": float(au_threshold),
             "blur_threshold": float(blur_threshold), "detector_score": int(detector_score)}
    extra = {"path": ("image", paths)} if any(paths) else {}
    return _build_dataset(store, pipe, dim="image", coord_values=np.arange(store.n), au_threshold=au_threshold,
                          blur_threshold=blur_threshold, extra_coords=extra, attrs=attrs)
