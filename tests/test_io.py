"""Image I/O and colour: OpenCV conventions reproduced, bad files named, nothing overwritten silently."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from crossfuse import io
from tests.conftest import require_data

RNG = np.random.default_rng(0)


def _rgb(h: int = 23, w: int = 31) -> np.ndarray:
    return RNG.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif"])
def test_rgb_round_trip_lossless(tmp_path: Path, ext: str) -> None:
    img = _rgb()
    p = io.write_image(tmp_path / f"a{ext}", img)
    back = io.read_image(p)
    assert back.dtype == np.uint8 and back.shape == img.shape
    np.testing.assert_array_equal(back, img)


def test_gray_stored_as_three_channels_reads_as_one(tmp_path: Path) -> None:
    g = RNG.integers(0, 256, size=(10, 12), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "g.png"), np.dstack([g, g, g]))
    out = io.read_image(tmp_path / "g.png")
    assert out.shape == (10, 12)
    np.testing.assert_array_equal(out, g)
    assert io.read_image(tmp_path / "g.png", keep_channels=True).shape == (10, 12, 3)


def test_alpha_dropped_and_channel_order_rgb(tmp_path: Path) -> None:
    bgra = np.zeros((4, 5, 4), np.uint8)
    bgra[..., 0] = 10  # B
    bgra[..., 2] = 200  # R
    bgra[..., 3] = 255
    cv2.imwrite(str(tmp_path / "x.png"), bgra)
    rgb = io.read_image(tmp_path / "x.png")
    assert rgb.shape == (4, 5, 3)
    assert rgb[0, 0].tolist() == [200, 0, 10]


def test_sixteen_bit_round_trip(tmp_path: Path) -> None:
    img = RNG.integers(0, 65536, size=(9, 7), dtype=np.uint16)
    io.write_image(tmp_path / "t.png", img)
    back = io.read_image(tmp_path / "t.png")
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, img)
    with pytest.raises(io.ImageError, match="16-bit output needs"):
        io.write_image(tmp_path / "t.jpg", img)


def test_float_write_rounds_and_clips(tmp_path: Path) -> None:
    f = np.array([[-3.0, 0.49, 0.5, 1.5, 254.6, 300.0]])
    io.write_image(tmp_path / "f.png", f)
    back = io.read_image(tmp_path / "f.png")
    # np.round is round-half-to-even: 0.5 -> 0, 1.5 -> 2; never truncation (254.6 -> 255)
    assert back.tolist() == [[0, 0, 0, 2, 255, 255]]
    io.write_image(tmp_path / "f16.png", f, bit_depth=16)
    assert io.read_image(tmp_path / "f16.png").dtype == np.uint16


def test_never_overwrites_unless_asked(tmp_path: Path) -> None:
    p = io.write_image(tmp_path / "sub" / "dir" / "a.png", np.zeros((3, 3), np.uint8))
    with pytest.raises(FileExistsError, match="a.png"):
        io.write_image(p, np.ones((3, 3), np.uint8))
    assert io.read_image(p).max() == 0
    io.write_image(p, np.ones((3, 3), np.uint8), overwrite=True)
    assert io.read_image(p).max() == 1
    assert not list(p.parent.glob("*.part"))


@pytest.mark.parametrize("content,match", [(b"", "empty file"), (b"not an image at all", "not a readable image")])
def test_bad_files_are_named(tmp_path: Path, content: bytes, match: str) -> None:
    p = tmp_path / "bad.png"
    p.write_bytes(content)
    with pytest.raises(io.ImageError, match=match) as err:
        io.read_image(p)
    assert "bad.png" in str(err.value)
    with pytest.raises(io.ImageError, match="no such file"):
        io.read_image(tmp_path / "missing.png")


def test_ycrcb_matches_opencv_uint8() -> None:
    img = _rgb(64, 64)
    ours = io.rgb_to_ycrcb(img)
    ref = cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    assert np.abs(np.round(ours) - ref).max() <= 1.0
    assert np.mean(np.abs(ours - ref)) < 0.3


def test_ycrcb_matches_opencv_float01_and_inverts() -> None:
    img = _rgb(32, 32).astype(np.float32) / 255
    ours = io.rgb_to_ycrcb(img, scale=1.0)
    ref = cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb)
    np.testing.assert_allclose(ours, ref, atol=1e-6)
    back = io.ycrcb_to_rgb(ours, scale=1.0)
    np.testing.assert_allclose(back, img, atol=2e-3)
    np.testing.assert_allclose(back, cv2.cvtColor(ref, cv2.COLOR_YCrCb2RGB), atol=1e-5)


def test_gray_is_bgr2gray_plus_round() -> None:
    img = _rgb(16, 16)
    ref = np.round(cv2.cvtColor(img[:, :, ::-1].astype(np.float32), cv2.COLOR_BGR2GRAY))
    np.testing.assert_array_equal(io.rgb_to_gray(img), ref)
    # a gray pixel stays itself
    g = np.full((2, 2, 3), 77, np.uint8)
    assert np.all(io.rgb_to_gray(g) == 77)


def test_pairing_by_stem_reports_missing_partner(tmp_path: Path) -> None:
    for sub, names in {"ir": ["a.png", "b.png", "c.bmp"], "vi": ["a.jpg", "c.png", "d.png"]}.items():
        for n in names:
            io.write_image(tmp_path / sub / n, np.zeros((4, 4), np.uint8))
    m = io.match_folders({"ir": tmp_path / "ir", "vi": tmp_path / "vi"})
    assert [s for s, _ in m.items] == ["a", "c"]
    assert any("b: no vi partner" in p and "ir/b.png" in p for p in m.problems)
    assert any("d: no ir partner" in p for p in m.problems)
    with pytest.raises(io.PairingError, match="unpaired files"):
        io.match_folders({"ir": tmp_path / "ir", "vi": tmp_path / "vi"}, strict=True)
    with pytest.raises(io.PairingError, match="not a folder"):
        io.match_folders({"ir": tmp_path / "nope", "vi": tmp_path / "vi"})


def test_size_mismatch_names_files_and_sizes(tmp_path: Path) -> None:
    a, b = np.zeros((4, 6)), np.zeros((5, 6))
    with pytest.raises(io.ImageError, match=r"ir.png is 6x4.*vi.png is 6x5"):
        io.check_same_size({"ir": (Path("ir.png"), a), "vi": (Path("vi.png"), b)})
    io.check_same_size({"ir": (Path("ir.png"), a), "vi": (Path("vi.png"), a)})


def test_real_datasets_read_as_documented() -> None:
    root = require_data()
    tno = io.match_folders({"ir": root / "TNO" / "ir", "vi": root / "TNO" / "vi"}, strict=True)
    assert len(tno.items) == 42
    stem, files = tno.items[0]
    ir, vi = io.read_image(files["ir"]), io.read_image(files["vi"])
    assert ir.ndim == 2 and vi.ndim == 2 and ir.shape == vi.shape  # TNO is gray stored as 3 channels
    rs = io.match_folders({"ir": root / "RoadScene" / "ir", "vi": root / "RoadScene" / "vi"}, strict=True)
    assert len(rs.items) == 221
    _, files = rs.items[0]
    assert io.read_image(files["vi"]).ndim == 3 and io.read_image(files["ir"]).ndim == 2


def _naive_read(path: Path) -> np.ndarray:
    """The documented semantics, spelled out slowly in NumPy: RGB order, alpha dropped, equal channels -> 2-D."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img.ndim == 3:
        img = img[:, :, :3][:, :, ::-1]
        if np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 0], img[..., 2]):
            img = img[..., 0]
    return np.ascontiguousarray(img)


def test_reader_equals_naive_semantics_on_real_files() -> None:
    data = require_data()
    checked = 0
    for name in ("RoadScene", "LLVIP", "MSRS", "TNO"):
        for sub in ("vi", "ir"):
            for f in sorted((data / name / sub).iterdir())[:3]:
                a, b = io.read_image(f), _naive_read(f)
                assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b), f
                checked += 1
    assert checked == 24


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64, np.int32])
def test_channels_equal_every_dtype(dtype) -> None:
    g = RNG.integers(0, 200, size=(7, 9)).astype(dtype)
    assert io.channels_equal(np.dstack([g, g, g]))
    h = g.copy()
    h[3, 4] += 1
    assert not io.channels_equal(np.dstack([g, g, h]))
    assert not io.channels_equal(np.dstack([g, h, g]))


# --------------------------------------------------------------------------------------------------- bad input


def _flip_bytes(src: Path, dst: Path, positions: list[float]) -> Path:
    data = bytearray(src.read_bytes())
    for frac in positions:  # inside the entropy-coded data, well past the headers
        data[int(len(data) * frac)] ^= 0xFF
    dst.write_bytes(bytes(data))
    return dst


def test_corrupt_and_truncated_jpeg_are_refused_by_name(tmp_path: Path) -> None:
    src = require_data("LLVIP", "vi", "010001.jpg")
    assert io.read_image(src).shape == (1024, 1280, 3)  # the clean file reads
    bad = _flip_bytes(src, tmp_path / "flipped.jpg", [0.1])
    # OpenCV alone decodes it with half the pixels wrong (grey from the damage on): the damage is silent there
    decoded = cv2.imdecode(np.fromfile(str(bad), np.uint8), cv2.IMREAD_UNCHANGED)
    clean = cv2.imdecode(np.fromfile(str(src), np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded is not None and np.mean(np.abs(decoded.astype(int) - clean.astype(int)) > 20) > 0.3
    with pytest.raises(io.ImageError, match=r"flipped\.jpg: corrupt or truncated JPEG"):
        io.read_image(bad)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    with pytest.raises(io.ImageError, match=r"cut\.jpg: corrupt or truncated JPEG"):
        io.read_image(cut)


def test_errors_are_project_errors_and_value_errors() -> None:
    from crossfuse.errors import CrossfuseError, InputError

    for cls in (io.ImageError, io.PairingError):
        assert issubclass(cls, InputError) and issubclass(cls, CrossfuseError) and issubclass(cls, ValueError)
    assert issubclass(io.OutputExistsError, FileExistsError) and issubclass(io.OutputExistsError, CrossfuseError)


def test_rgba_write_keeps_channels_and_alpha_needs_png(tmp_path: Path) -> None:
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[...] = [200, 100, 50, 255]
    io.write_image(tmp_path / "a.png", rgba)
    assert io.read_image(tmp_path / "a.png")[0, 0].tolist() == [200, 100, 50]
    bgra = cv2.imread(str(tmp_path / "a.png"), cv2.IMREAD_UNCHANGED)
    assert bgra[0, 0].tolist() == [50, 100, 200, 255]  # alpha written, not dropped into a colour channel
    with pytest.raises(io.ImageError, match=r"a\.jpg: an RGBA image needs a \.png or \.tif"):
        io.write_image(tmp_path / "a.jpg", rgba)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_pixels_are_refused_at_write(tmp_path: Path, bad: float) -> None:
    img = np.full((3, 4), 100.0)
    img[1, 2] = bad
    with pytest.raises(io.ImageError, match=r"n\.png: image contains 1 NaN or infinite values"):
        io.write_image(tmp_path / "n.png", img)
    assert not list(tmp_path.iterdir())  # nothing written, no temporary file


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.uint32, np.int64, np.bool_])
def test_pixel_types_read_image_refuses_are_refused_at_write(tmp_path: Path, dtype) -> None:
    with pytest.raises(io.ImageError, match=f"cannot write pixel type {np.dtype(dtype)}"):
        io.write_image(tmp_path / "i.png", np.ones((3, 4), dtype))
    assert not list(tmp_path.iterdir())


def test_float_tiff_colour_and_gray_are_read(tmp_path: Path) -> None:
    rgb = RNG.uniform(0, 255, size=(6, 7, 3)).astype(np.float32)
    cv2.imwrite(str(tmp_path / "c.tif"), np.ascontiguousarray(rgb[:, :, ::-1]))
    back = io.read_image(tmp_path / "c.tif")
    assert back.dtype == np.float32 and back.shape == (6, 7, 3)
    np.testing.assert_array_equal(back, rgb)  # RGB order, values as stored
    cv2.imwrite(str(tmp_path / "g.tif"), np.dstack([rgb[:, :, 0]] * 3))
    assert io.read_image(tmp_path / "g.tif").shape == (6, 7)  # equal channels: gray, as for integer files


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_outputs_get_mode_from_umask(tmp_path: Path, mask: int) -> None:
    old = os.umask(mask)
    try:
        img = io.write_image(tmp_path / "m.png", np.zeros((3, 3), np.uint8))
        txt = io.write_bytes_atomic(tmp_path / "sub" / "m.txt", "x")
        folder = io.temp_beside(tmp_path / "d", folder=True)
    finally:
        os.umask(old)
    assert _mode(img) == _mode(txt) == 0o666 & ~mask  # not 0600 as tempfile.mkstemp made them
    assert _mode(folder) == 0o777 & ~mask


def test_unwritable_output_names_the_output_not_the_temp_file(tmp_path: Path, monkeypatch) -> None:
    def refuse(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(io.os, "open", refuse)
    with pytest.raises(io.OutputError, match=r"out\.png: cannot write \(Permission denied\)") as err:
        io.write_image(tmp_path / "out.png", np.zeros((3, 3), np.uint8))
    assert ".part" not in str(err.value)
    monkeypatch.undo()
    (tmp_path / "file").write_text("x")
    with pytest.raises(io.OutputError, match="file: exists and is not a folder"):
        io.write_image(tmp_path / "file" / "out.png", np.zeros((3, 3), np.uint8))
    with pytest.raises(io.OutputExistsError, match=r"file: already exists \(--overwrite replaces it\)"):
        io.write_bytes_atomic(tmp_path / "file", "y")


def test_broken_symlinks_are_reported_by_name(tmp_path: Path) -> None:
    for sub in ("ir", "vi"):
        io.write_image(tmp_path / sub / "a.png", np.zeros((4, 4), np.uint8))
    os.symlink(tmp_path / "nowhere.png", tmp_path / "ir" / "dangling.png")
    os.symlink("loop.png", tmp_path / "vi" / "loop.png")  # points at itself
    m = io.match_folders({"ir": tmp_path / "ir", "vi": tmp_path / "vi"})
    assert [s for s, _ in m.items] == ["a"]
    assert "dangling: ir/dangling.png is a broken symbolic link (dangling or looping)" in m.problems
    assert "loop: vi/loop.png is a broken symbolic link (dangling or looping)" in m.problems
    with pytest.raises(io.PairingError, match="dangling.png is a broken symbolic link"):
        io.paired_folder(tmp_path)
    with pytest.raises(io.ImageError, match=r"dangling\.png: no such file \(broken symbolic link\)"):
        io.read_image(tmp_path / "ir" / "dangling.png")


def test_one_sixteen_to_eight_and_one_luma() -> None:
    u16 = np.array([[0, 128, 129, 257, 65535]], np.uint16)
    assert io.to_uint8(u16).tolist() == [[0, 0, 1, 1, 255]]  # round(v / 257), half to even
    assert io.to_uint8(np.array([[-2.0, 0.5, 254.6, 300.0]])).tolist() == [[0, 0, 255, 255]]
    img = _rgb(40, 40)
    ref = cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb)[..., 0].astype(np.float32)
    assert np.abs(io.luma(img) - ref).max() <= 0.51  # OpenCV's fixed-point path rounds the same Y
    assert np.array_equal(io.luma_u8(img), io.quantize(io.rgb_to_ycrcb(img)[..., 0]))
    assert np.array_equal(io.luma_u8(img[..., 0]), img[..., 0])  # gray passes through


def test_csv_text_reads_back_exactly_and_quotes_names():
    import csv as _csv
    import io as _io

    from crossfuse.io import csv_text

    rows = [{"pair": "a,b", "MI": 0.1, "n": 3}, {"pair": 'say "hi"', "SSIM": np.float32(0.7), "MI": float("nan")}]
    text = csv_text(rows)
    assert text.splitlines()[0] == "pair,MI,n,SSIM"  # the union of the keys, in the order first seen
    assert text.endswith("\n") and "\r" not in text
    back = list(_csv.DictReader(_io.StringIO(text)))
    assert [r["pair"] for r in back] == ["a,b", 'say "hi"']  # a name with a comma or a quote stays one cell
    assert float(back[0]["MI"]) == 0.1 and back[0]["SSIM"] == "" and back[1]["n"] == ""
    assert float(back[1]["SSIM"]) == float(np.float32(0.7))  # a float32 is written exactly, not rounded to 0.7
    assert back[1]["MI"] == "nan"
    assert csv_text(rows, ["n", "pair"]).splitlines() == ["n,pair", '3,"a,b"', ',"say ""hi"""']
