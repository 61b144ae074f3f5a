import numpy as np
import pytest

import emonb as eb
from emonb.io.video import VideoReader, read_image
from conftest import write_video


def _center(frame):
    h, w = frame.shape[:2]
    return float(frame[h // 2 - 2:h // 2 + 2, w // 2 - 2:w // 2 + 2].mean())


def test_constant_rate_times_and_lazy_frames(tmp_path):
    vals = np.linspace(10, 240, 30)
    p = write_video(tmp_path / "cfr.mp4", n=30, fps=30, values=vals)
    v = eb.load_video(p)
    assert v.sizes["time"] == 30
    np.testing.assert_allclose(v["time"].values, np.arange(30) / 30, atol=1e-3)
    assert v.attrs["fps"] == pytest.approx(30, rel=1e-3)
    assert v.attrs["variable_frame_rate"] == 0
    # frames decode on access only, and the right frame comes back
    for i in (0, 7, 29, 3):
        assert _center(v["frames"][i].values) == pytest.approx(vals[i], abs=3)
    assert _center(v.emonb.frame_at(0.5)) == pytest.approx(vals[15], abs=3)


def test_variable_frame_rate_uses_pts(tmp_path):
    dts = [1 / 30] * 10 + [1 / 10] * 5 + [1 / 60] * 10
    t = np.round(np.concatenate([[0], np.cumsum(dts)]), 3)
    vals = np.linspace(10, 240, t.size)
    p = write_video(tmp_path / "vfr.mp4", times=t, values=vals)
    v = eb.load_video(p)
    np.testing.assert_allclose(v["time"].values, t, atol=1e-6)
    assert v.attrs["variable_frame_rate"] == 1
    # frame_at(t) is the frame on screen at t: inside the slow part, 0.05 s after frame 11
    r = v.emonb.reader()
    assert r.index_at(t[11] + 0.05) == 11
    assert _center(v.emonb.frame_at(t[11] + 0.05)) == pytest.approx(vals[11], abs=3)
    # index / fps would put frame 15 more than 0.1 s away from where it really is
    assert abs(t[15] - 15 / v.attrs["nominal_fps"]) > 0.1
    assert float(v["time"][15]) == pytest.approx(t[15], abs=1e-6)


def test_rotation_metadata_is_applied(tmp_path):
    p = write_video(tmp_path / "rot.mp4", n=3, size=(64, 48), rotation=90)
    v = eb.load_video(p)
    assert (v.attrs["width"], v.attrs["height"], v.attrs["rotation"]) == (48, 64, 90)
    f = v["frames"][0].values
    assert f.shape == (64, 48, 3)
    # the white square stored top-left is shown bottom-left after a 90 degree CCW display rotation
    assert f[-4:, :4].mean() > 240 and f[:4, :4].mean() < 100


def test_chunked_iteration_stride_and_range(tmp_path):
    p = write_video(tmp_path / "c.mp4", n=40, fps=20)
    r = VideoReader(p)
    chunks = list(r.iter_chunks(8, stride=3))
    idx = np.concatenate([c[1] for c in chunks])
    np.testing.assert_array_equal(idx, np.arange(0, 40, 3))
    assert all(c[2].shape[1:] == (48, 64, 3) for c in chunks)
    part = np.concatenate([c[1] for c in r.iter_chunks(5, start=0.5, end=1.0)])
    np.testing.assert_array_equal(part, np.arange(10, 21))
    small = next(r.iter_chunks(4, size=(32, 24)))[2]
    assert small.shape == (4, 24, 32, 3)


def test_random_access_back_and_forth(tmp_path):
    vals = np.linspace(10, 240, 60)
    p = write_video(tmp_path / "ra.mp4", n=60, values=vals)
    r = VideoReader(p, cache_size=4)
    for i in (50, 2, 30, 31, 59, 0):
        assert _center(r.frame(i)) == pytest.approx(vals[i], abs=3)


def test_still_images_gray_rgba_16bit(tmp_path):
    from PIL import Image

    gray = (np.arange(48 * 64).reshape(48, 64) % 256).astype(np.uint8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    rgba = np.zeros((10, 12, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 255
    rgba[0, 0, 3] = 0  # transparent pixel composited on white
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    deep = (np.arange(20 * 30).reshape(20, 30) * 100).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "d16.png")
    Image.fromarray(np.dstack([gray] * 3)).save(tmp_path / "c.jpg", quality=95)

    g = read_image(tmp_path / "g.png")
    assert g.shape == (48, 64, 3) and g.dtype == np.uint8
    np.testing.assert_array_equal(g[..., 0], gray)
    a = read_image(tmp_path / "a.png")
    assert a.shape == (10, 12, 3) and tuple(a[1, 1]) == (200, 0, 0) and tuple(a[0, 0]) == (255, 255, 255)
    d = read_image(tmp_path / "d16.png")
    assert d.dtype == np.uint8 and d[0, 0, 0] == 0 and d.max() == round(59900 / 65535 * 255)
    v = eb.load_video(tmp_path / "c.jpg")
    assert v.sizes["time"] == 1 and v["frames"].shape == (1, 48, 64, 3)
    assert v.attrs["still_image"] == 1


def test_bad_video_inputs(tmp_path):
    with pytest.raises(eb.EmonbFileError, match="not found"):
        eb.load_video(tmp_path / "missing.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(eb.EmonbFileError, match="empty"):
        eb.load_video(tmp_path / "empty.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"this is not a video" * 100)
    with pytest.raises(eb.EmonbFormatError, match="junk.mp4"):
        eb.load_video(tmp_path / "junk.mp4")
    (tmp_path / "junk.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(eb.EmonbFileError, match="junk.png"):
        eb.load_video(tmp_path / "junk.png")


def test_truncated_video_keeps_what_is_there(tmp_path):
    p = write_video(tmp_path / "full.mkv", n=60, size=(64, 48))
    data = p.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    v = eb.load_video(cut)
    assert 0 < v.sizes["time"] < 60
    n = sum(len(c[1]) for c in v.emonb.reader().iter_chunks(16))
    assert n >= v.sizes["time"] - 2  # every complete frame decodes; no crash at the cut


@pytest.mark.realdata
def test_real_clips(shared_data):
    v = eb.load_video(shared_data / "video" / "single_face.mp4")
    assert v.sizes["time"] == 72 and v.attrs["width"] == 640 and v.attrs["height"] == 360
    assert v.attrs["fps"] == pytest.approx(30, rel=1e-3)
    p = eb.load_video(shared_data / "video" / "WolfgangLanger_Pexels.mp4")
    assert p.sizes["time"] == 472 and p.attrs["fps"] == pytest.approx(23.976, rel=1e-3)
    assert p.emonb.frame_at(10.0).shape == (360, 640, 3)
    m = eb.load_video(shared_data / "video" / "face_noface.mov")
    assert (m.attrs["width"], m.attrs["height"]) == (960, 540)
    img = eb.load_video(shared_data / "video" / "multi_face.jpg")
    assert img.sizes["time"] == 1
