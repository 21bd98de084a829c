"""Image I/O, colour conversion and pair discovery.

Conventions (written once, used everywhere):

* Images enter and leave the API as NumPy arrays: ``(H, W)`` for one channel, ``(H, W, 3)`` in **RGB** order for
  colour, dtype ``uint8``/``uint16`` as stored (float arrays are accepted where noted).
* A file holding 3 identical channels (gray saved as RGB, as TNO and LLVIP IR are) is returned as one channel.
* Colour conversion is BT.601 full range exactly as OpenCV's ``COLOR_RGB2YCrCb`` / ``COLOR_YCrCb2RGB``:
  ``Y = 0.299 R + 0.587 G + 0.114 B``, ``Cr = (R - Y) * 0.713 + d``, ``Cb = (B - Y) * 0.564 + d`` with ``d = 128``
  on the 0-255 scale (``0.5`` on the 0-1 scale).
* Gray conversion for evaluation is the references' convention: OpenCV ``BGR2GRAY`` on float32 values, then
  ``np.round`` (CDDFuse ``test_IVF.py``: ``cv2.imread`` -> float32 -> ``COLOR_BGR2GRAY`` -> round).
* Writing rounds and clips (never truncates), creates folders, writes atomically (temporary file + rename) and
  refuses to overwrite an existing file unless ``overwrite=True``.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


class ImageError(ValueError):
    """A problem with one image file; the message names the file."""


class PairingError(ValueError):
    """Folders whose files do not pair up; the message names the files."""


# --------------------------------------------------------------------------------------------------- reading


def read_image(path: str | os.PathLike, *, keep_channels: bool = False) -> np.ndarray:
    """Read an image file as stored: uint8 or uint16, ``(H, W)`` or ``(H, W, 3)`` RGB.

    Alpha is dropped. Unless ``keep_channels`` is set, a 3-channel file whose channels are identical is returned
    as ``(H, W)``. Raises :class:`ImageError` naming the file for a missing, unreadable or unsupported file.
    """
    p = Path(path)
    if not p.is_file():
        raise ImageError(f"{p}: no such file")
    data = np.fromfile(str(p), dtype=np.uint8)
    if data.size == 0:
        raise ImageError(f"{p}: empty file")
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageError(f"{p}: not a readable image (corrupt or unsupported format)")
    if img.dtype not in (np.uint8, np.uint16):
        if img.dtype == np.float32 and img.ndim == 2:  # 32-bit float TIFF (radiometric exports)
            return img
        raise ImageError(f"{p}: unsupported pixel type {img.dtype} (expected 8- or 16-bit)")
    if img.ndim == 3:
        if img.shape[2] == 1:
            return np.ascontiguousarray(img[:, :, 0])
        if img.shape[2] == 4:
            img = np.ascontiguousarray(img[:, :, :3])
        elif img.shape[2] != 3:
            raise ImageError(f"{p}: unsupported channel count {img.shape[2]} (expected 1, 3 or 4)")
        if not keep_channels and channels_equal(img):
            return np.ascontiguousarray(img[:, :, 0])
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)  # several times faster than a NumPy [..., ::-1] copy
    return img


def channels_equal(img: np.ndarray) -> bool:
    """True if the three channels of an ``(H, W, 3)`` array are identical (gray stored as colour)."""
    if img.dtype in (np.uint8, np.uint16, np.float32):  # OpenCV: several times faster than NumPy on large frames
        b, g, r = cv2.split(np.ascontiguousarray(img))
        return cv2.countNonZero(cv2.absdiff(b, g)) == 0 and cv2.countNonZero(cv2.absdiff(b, r)) == 0
    return bool(np.array_equal(img[:, :, 0], img[:, :, 1]) and np.array_equal(img[:, :, 0], img[:, :, 2]))


def is_color(img: np.ndarray) -> bool:
    return img.ndim == 3 and img.shape[2] == 3


def to_float255(img: np.ndarray) -> np.ndarray:
    """Any stored image as float64 on the 0-255 scale (uint16 is divided by 257, float is taken as 0-255)."""
    if img.dtype == np.uint8:
        return img.astype(np.float64)
    if img.dtype == np.uint16:
        return img.astype(np.float64) / 257.0
    return img.astype(np.float64)


# --------------------------------------------------------------------------------------------------- colour


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """OpenCV ``BGR2GRAY`` on float32 values followed by ``np.round``: the references' gray (float64, 0-255).

    A 2-D input is returned rounded, as float64.
    """
    if rgb.ndim == 2:
        return np.round(rgb.astype(np.float32)).astype(np.float64)
    bgr = np.ascontiguousarray(rgb[:, :, ::-1]).astype(np.float32)
    return np.round(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)).astype(np.float64)


def rgb_to_ycrcb(rgb: np.ndarray, scale: float = 255.0) -> np.ndarray:
    """RGB -> YCrCb with OpenCV's ``COLOR_RGB2YCrCb`` coefficients, in float32.

    ``scale`` is the value range of the input (255 for 0-255 data, 1 for 0-1 data); the chroma offset is
    ``scale / 2`` rounded up as OpenCV does for 8-bit data (128 on the 0-255 scale, 0.5 on the 0-1 scale).
    (OpenCV's own float path always uses 0.5, which is wrong for 0-255 floats; this function does not.)
    Returns ``(H, W, 3)`` with channels ``Y, Cr, Cb``.
    """
    x = np.asarray(rgb, dtype=np.float32)
    if x.ndim != 3 or x.shape[2] != 3:
        raise ValueError(f"rgb_to_ycrcb needs an (H, W, 3) RGB array, got shape {x.shape}")
    d = np.float32(128.0 if scale > 1 else 0.5)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    y = np.float32(0.299) * r + np.float32(0.587) * g + np.float32(0.114) * b
    cr = (r - y) * np.float32(0.713) + d
    cb = (b - y) * np.float32(0.564) + d
    return np.stack([y, cr, cb], axis=-1)


def ycrcb_to_rgb(ycrcb: np.ndarray, scale: float = 255.0) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycrcb` (OpenCV ``COLOR_YCrCb2RGB`` coefficients), float32, not clipped."""
    x = np.asarray(ycrcb, dtype=np.float32)
    d = np.float32(128.0 if scale > 1 else 0.5)
    y, cr, cb = x[..., 0], x[..., 1] - d, x[..., 2] - d
    r = y + np.float32(1.403) * cr
    g = y - np.float32(0.714) * cr - np.float32(0.344) * cb
    b = y + np.float32(1.773) * cb
    return np.stack([r, g, b], axis=-1)


def quantize(img: np.ndarray, bit_depth: int = 8) -> np.ndarray:
    """Float image on the 0-255 scale -> uint8 (``bit_depth=8``) or uint16 (0-65535), rounded and clipped."""
    if bit_depth == 8:
        return np.clip(np.round(np.asarray(img, dtype=np.float64)), 0, 255).astype(np.uint8)
    if bit_depth == 16:
        return np.clip(np.round(np.asarray(img, dtype=np.float64) * 257.0), 0, 65535).astype(np.uint16)
    raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")


def write_image(path: str | os.PathLike, img: np.ndarray, *, bit_depth: int | None = None,
                overwrite: bool = False) -> Path:
    """Write ``img`` (RGB or gray) atomically; folders are created.

    uint8/uint16 arrays are written as they are; float arrays are taken as 0-255 and quantised to ``bit_depth``
    (default 8) by :func:`quantize`. 16-bit output needs PNG or TIFF. Raises :class:`FileExistsError` if the file
    exists and ``overwrite`` is false.
    """
    p = Path(path)
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p}: exists (pass overwrite=True / --overwrite to replace it)")
    arr = np.asarray(img)
    if arr.dtype.kind == "f" or bit_depth is not None and arr.dtype != (np.uint8 if bit_depth == 8 else np.uint16):
        arr = quantize(to_float255(arr) if arr.dtype.kind != "f" else arr, bit_depth or 8)
    if arr.dtype == np.uint16 and p.suffix.lower() not in (".png", ".tif", ".tiff"):
        raise ImageError(f"{p}: 16-bit output needs a .png or .tif file name")
    if arr.ndim == 3:
        arr = np.ascontiguousarray(arr[:, :, ::-1])  # RGB -> BGR for OpenCV
    ok, buf = cv2.imencode(p.suffix or ".png", arr)
    if not ok:
        raise ImageError(f"{p}: could not encode image of shape {arr.shape} as {p.suffix}")
    return write_bytes_atomic(p, buf.tobytes(), overwrite=True)


def write_bytes_atomic(path: str | os.PathLike, data: bytes | str, *, overwrite: bool = False) -> Path:
    """Write ``data`` (bytes, or text as UTF-8) to ``path`` through a temporary file in the same folder and
    ``os.replace``, so an interrupted write never leaves a half file. Folders are created; an existing file is
    replaced only with ``overwrite=True`` (otherwise :class:`FileExistsError`)."""
    p = Path(path)
    if p.exists() and not overwrite:
        raise FileExistsError(f"{p}: exists (pass overwrite=True / --overwrite to replace it)")
    payload = data.encode("utf-8") if isinstance(data, str) else data
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".part", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


# --------------------------------------------------------------------------------------------------- pairing


@dataclass
class Matched:
    """Files matched by stem across named folders, and what could not be matched."""

    items: list[tuple[str, dict[str, Path]]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def list_images(folder: str | os.PathLike) -> dict[str, Path]:
    """Image files of a folder keyed by stem. Raises :class:`PairingError` for a missing folder or two files that
    share a stem (``a.png`` and ``a.jpg``)."""
    d = Path(folder)
    if not d.is_dir():
        raise PairingError(f"{d}: not a folder")
    out: dict[str, Path] = {}
    for f in sorted(d.iterdir()):
        if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS and not f.name.startswith("."):
            if f.stem in out:
                raise PairingError(f"{d}: two images share the stem {f.stem!r}: {out[f.stem].name}, {f.name}")
            out[f.stem] = f
    return out


def match_folders(folders: dict[str, str | os.PathLike], *, strict: bool = False) -> Matched:
    """Match image files by stem across folders (extensions may differ), e.g. ``{"ir": ..., "vi": ...}``.

    Stems missing from some folder are reported in ``problems`` ("<stem>: no vi partner (ir/<file>)"), or raised
    as one :class:`PairingError` when ``strict``. Items are sorted by stem.
    """
    listed = {name: list_images(path) for name, path in folders.items()}
    stems = sorted(set().union(*[set(v) for v in listed.values()]))
    result = Matched()
    for stem in stems:
        have = {name: files[stem] for name, files in listed.items() if stem in files}
        if len(have) == len(listed):
            result.items.append((stem, have))
        else:
            missing = [n for n in listed if n not in have]
            present = ", ".join(f"{n}/{p.name}" for n, p in have.items())
            result.problems.append(f"{stem}: no {'/'.join(missing)} partner for {present}")
    if strict and result.problems:
        raise PairingError("unpaired files: " + "; ".join(result.problems))
    if not result.items and not result.problems:
        raise PairingError("no images found in " + ", ".join(str(Path(p)) for p in folders.values()))
    return result


def read_stem_list(path: str | os.PathLike) -> list[str]:
    """A list of image names: one image name per line (extension optional); blank lines and ``#`` comments ignored."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: split manifest not found")
    stems = []
    for line in p.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            stems.append(line[: -len(Path(line).suffix)] if Path(line).suffix.lower() in IMAGE_EXTENSIONS else line)
    if not stems:
        raise ValueError(f"{p}: split manifest lists no images")
    return stems


def check_same_size(arrays: dict[str, tuple[Path, np.ndarray]]) -> None:
    """Raise :class:`ImageError` naming every file and its size unless all arrays share height and width."""
    sizes = {name: a.shape[:2] for name, (_, a) in arrays.items()}
    if len(set(sizes.values())) > 1:
        desc = ", ".join(f"{p} is {a.shape[1]}x{a.shape[0]}" for _, (p, a) in arrays.items())
        raise ImageError(f"size mismatch: {desc} (W x H)")
