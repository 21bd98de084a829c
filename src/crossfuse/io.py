"""Image I/O, colour conversion, pair discovery, atomic writing and CSV text: the one owner of each of these jobs.

Conventions (written once, used everywhere):

* Images enter and leave the API as NumPy arrays: ``(H, W)`` for one channel, ``(H, W, 3)`` in **RGB** order for
  colour, dtype ``uint8``/``uint16`` as stored, or float32 for float TIFFs (taken on the 0-255 scale).
* **Colour rule**: a file holding 3 identical channels (gray saved as RGB, as TNO and LLVIP IR are) is returned as
  one channel, so a visible image stored that way is fused and written as gray; true colour stays colour.
* A file that decodes only partly (truncated or corrupt JPEG data) is an error, not a half-grey image.
* **16 -> 8 bit** (:func:`to_uint8`): ``round(v / 257)``; float is taken as 0-255, rounded and clipped.
* **Luma** (:func:`luma`): BT.601 ``Y = 0.299 R + 0.587 G + 0.114 B`` in float32, exactly the Y of OpenCV's
  ``COLOR_RGB2YCrCb``; :func:`rgb_to_ycrcb` / :func:`ycrcb_to_rgb` are OpenCV's full-range YCrCb
  (``Cr = (R - Y) * 0.713 + d``, ``Cb = (B - Y) * 0.564 + d``, ``d = 128`` on the 0-255 scale, ``0.5`` on 0-1).
* The *metrics'* gray (:func:`rgb_to_gray`) is the references' own convention, kept apart on purpose: OpenCV
  ``BGR2GRAY`` on float32 values, then ``np.round`` (CDDFuse ``test_IVF.py``); it differs from :func:`luma` by
  float rounding at a few ties.
* Writing rounds and clips (never truncates), refuses NaN/inf and pixel types it cannot read back, creates
  folders, writes atomically (temporary file + rename; the file gets mode ``0666 & ~umask`` like any new file) and
  refuses to overwrite an existing file unless ``overwrite=True`` (the CLI's ``--overwrite``).
* CSV files (:func:`csv_text`): a header line, ``\n`` line ends, floats as ``repr`` (they read back exactly),
  empty cells for missing values, quoting where a name needs it.
* A paired folder is ``ROOT/ir`` + ``ROOT/vi`` matched by file stem (:func:`paired_folder`); broken symbolic links
  among the images are reported by name like unpaired files.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import secrets
import signal
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from crossfuse.errors import CrossfuseError, InputError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
_SIXTEEN_BIT_EXTENSIONS = (".png", ".tif", ".tiff")


class ImageError(InputError):
    """A problem with one image file (or array to write); the message names the file."""


class PairingError(InputError):
    """Folders whose files do not pair up; the message names the files."""


class OutputError(CrossfuseError, OSError):
    """An output that cannot be written (folder not writable, a file where a folder is needed); names the path."""


class OutputExistsError(OutputError, FileExistsError):
    """An output file that exists and may not be replaced (no ``overwrite=True`` / ``--overwrite``)."""


# --------------------------------------------------------------------------------------------------- reading


def read_image(path: str | os.PathLike, *, keep_channels: bool = False) -> np.ndarray:
    """Read an image file as stored: uint8 or uint16 (float32 for float TIFFs), ``(H, W)`` or ``(H, W, 3)`` RGB.

    Alpha is dropped. Unless ``keep_channels`` is set, a 3-channel file whose channels are identical is returned
    as ``(H, W)``. Raises :class:`ImageError` naming the file for a missing, unreadable, partly decodable
    (truncated or corrupt JPEG) or unsupported file.
    """
    p = Path(path)
    if not p.is_file():
        raise ImageError(f"{p}: no such file" + (" (broken symbolic link)" if p.is_symlink() else ""))
    data = np.fromfile(str(p), dtype=np.uint8)
    if data.size == 0:
        raise ImageError(f"{p}: empty file")
    if data[:3].tobytes() == b"\xff\xd8\xff":
        _check_jpeg(p, data)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageError(f"{p}: not a readable image (corrupt or unsupported format)")
    if img.dtype == np.float64:
        img = img.astype(np.float32)
    if img.dtype not in (np.uint8, np.uint16, np.float32):
        raise ImageError(f"{p}: unsupported pixel type {img.dtype} (expected 8- or 16-bit, or float TIFF)")
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


def _check_jpeg(p: Path, data: np.ndarray) -> None:
    """Refuse a JPEG whose entropy-coded data is truncated or corrupt. OpenCV's decoder only prints libjpeg's
    warning and fills the rest with grey; simplejpeg's strict mode raises on any libjpeg warning. Decoding at
    1/8 scale still runs the whole Huffman decode, so the check costs ~1 ms per megapixel."""
    import simplejpeg

    try:
        simplejpeg.decode_jpeg(data.tobytes(), colorspace="GRAY", fastdct=True, fastupsample=True, min_height=1,
                               min_width=1, strict=True)
    except ValueError as exc:
        reason = str(exc).strip().rstrip(".") or "undecodable data"
        raise ImageError(f"{p}: corrupt or truncated JPEG ({reason})") from None


def read_pair(ir_path: str | os.PathLike, vi_path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read an IR/visible pair of files; :class:`ImageError` names the file for unreadable or mismatched ones."""
    ir, vi = read_image(ir_path), read_image(vi_path)
    check_same_size({"ir": (Path(ir_path), ir), "vi": (Path(vi_path), vi)})
    return ir, vi


def channels_equal(img: np.ndarray) -> bool:
    """True if the three channels of an ``(H, W, 3)`` array are identical (gray stored as colour)."""
    if img.dtype in (np.uint8, np.uint16, np.float32):  # OpenCV: several times faster than NumPy on large frames
        b, g, r = cv2.split(np.ascontiguousarray(img))
        return cv2.countNonZero(cv2.absdiff(b, g)) == 0 and cv2.countNonZero(cv2.absdiff(b, r)) == 0
    return bool(np.array_equal(img[:, :, 0], img[:, :, 1]) and np.array_equal(img[:, :, 0], img[:, :, 2]))


def to_float255(img: np.ndarray) -> np.ndarray:
    """Any stored image as float64 on the 0-255 scale (uint16 is divided by 257, float is taken as 0-255)."""
    if img.dtype == np.uint8:
        return img.astype(np.float64)
    if img.dtype == np.uint16:
        return img.astype(np.float64) / 257.0
    return img.astype(np.float64)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Any stored image as uint8: 8-bit as is, 16-bit ``round(v / 257)``, float (0-255) rounded and clipped."""
    img = np.asarray(img)
    return img if img.dtype == np.uint8 else quantize(to_float255(img))


# --------------------------------------------------------------------------------------------------- colour


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of ``(..., 3)`` RGB values as float32, in the input's units (the Y of :func:`rgb_to_ycrcb`)."""
    x = np.asarray(rgb, dtype=np.float32)
    return np.float32(0.299) * x[..., 0] + np.float32(0.587) * x[..., 1] + np.float32(0.114) * x[..., 2]


def luma_u8(img: np.ndarray) -> np.ndarray:
    """A stored image as one uint8 channel: gray ``(H, W)`` via :func:`to_uint8`; colour ``(..., 3)`` as its
    :func:`luma` of the 8-bit values, rounded."""
    u8 = to_uint8(img)
    return u8 if u8.ndim == 2 else quantize(luma(u8))


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """The metrics' gray: OpenCV ``BGR2GRAY`` on float32 values followed by ``np.round`` (float64, 0-255), as the
    reference evaluators read images. A 2-D input is returned rounded, as float64.
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
    y = luma(x)
    cr = (x[..., 0] - y) * np.float32(0.713) + d
    cb = (x[..., 2] - y) * np.float32(0.564) + d
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
    if bit_depth == 8:  # float32 is rounded as it is: the same result as in float64 (exact), half the memory
        a = np.asarray(img)
        r = np.round(a if a.dtype == np.float32 else np.asarray(a, dtype=np.float64))  # a new array: clipped in place
        return np.clip(r, 0, 255, out=r).astype(np.uint8)
    if bit_depth == 16:
        return np.clip(np.round(np.asarray(img, dtype=np.float64) * 257.0), 0, 65535).astype(np.uint16)
    raise ValueError(f"bit_depth must be 8 or 16, got {bit_depth}")


# --------------------------------------------------------------------------------------------------- writing


def check_overwrite(path: str | os.PathLike, overwrite: bool) -> Path:
    """The overwrite rule of every output: an existing ``path`` raises :class:`OutputExistsError` unless
    ``overwrite``; a folder where a file is expected is always refused."""
    p = Path(path)
    if p.is_dir():
        raise OutputError(f"{p}: is a folder, not a file")
    if (p.exists() or p.is_symlink()) and not overwrite:
        raise OutputExistsError(f"{p}: already exists (--overwrite replaces it)")
    return p


def ensure_folder(folder: str | os.PathLike) -> Path:
    """Create ``folder`` (and parents) and check that files can be created in it; errors name the folder."""
    d = Path(folder)
    if d.exists() and not d.is_dir():
        raise OutputError(f"{d}: exists and is not a folder")
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{d}: cannot create the folder ({exc.strerror or exc})") from None
    if not os.access(d, os.W_OK | os.X_OK):
        raise OutputError(f"{d}: folder is not writable (permission denied)")
    return d


def temp_beside(path: str | os.PathLike, suffix: str = ".part", *, folder: bool = False) -> Path:
    """Create an empty hidden temporary file (a folder with ``folder=True``) next to ``path``; return its name.

    It is created with mode ``0666`` (folder ``0777``) so the umask applies as for any new file
    (``tempfile.mkstemp`` / ``mkdtemp`` give 0600 / 0700, which the final output then kept). Errors name
    ``path``, not the temporary file."""
    p = Path(path)
    ensure_folder(p.parent)
    for _ in range(100):
        tmp = p.with_name(f".{p.name}.{secrets.token_hex(4)}{suffix}")
        try:
            if folder:
                os.mkdir(tmp, 0o777)
            else:
                os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputError(f"{p}: cannot write ({exc.strerror or exc})") from None
    raise OutputError(f"{p}: cannot create a temporary file beside it")


def commit_temp(tmp: Path, path: str | os.PathLike) -> Path:
    """Rename a finished temporary file into place (atomic on one file system); errors name ``path``."""
    p = Path(path)
    try:
        os.replace(tmp, p)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"{p}: cannot write ({exc.strerror or exc})") from None
    return p


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within this block (main thread only) SIGTERM raises :class:`SystemExit` (status 143) instead of killing the
    process outright, so ``except``/``finally`` clauses remove temporary outputs as for Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes (hex): shipped weights and dataset manifests are checked with it."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def write_bytes_atomic(path: str | os.PathLike, data: bytes | str, *, overwrite: bool = False) -> Path:
    """Write ``data`` (bytes, or text as UTF-8) to ``path`` through a temporary file in the same folder and a
    rename, so an interrupted write never leaves a half file. Folders are created; an existing file is replaced
    only with ``overwrite=True`` (otherwise :class:`OutputExistsError`, a ``FileExistsError``)."""
    p = check_overwrite(path, overwrite)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    tmp = temp_beside(p)
    try:
        with open(tmp, "wb") as fh:
            fh.write(payload)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputError(f"{p}: cannot write ({exc.strerror or exc})") from None
        raise
    return commit_temp(tmp, p)


def csv_text(rows: Iterable[Mapping[str, object]], columns: Sequence[str] | None = None) -> str:
    """CSV text of ``rows``: the header ``columns`` (default: every row's keys, in the order first seen), then one
    line per row. A missing cell is empty, a float (Python or NumPy) is written as ``repr(float(v))``, anything else
    as ``str(v)``; the csv module quotes a cell holding a comma, quote or line break."""
    rows = list(rows)
    if columns is None:
        columns = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_csv_cell(r.get(c, "")) for c in columns])
    return buf.getvalue()


def _csv_cell(v: object) -> str:
    return repr(float(v)) if isinstance(v, (float, np.floating)) else str(v)


def _encodable(p: Path, img: np.ndarray, bit_depth: int | None) -> np.ndarray:
    """``img`` as an array OpenCV writes and :func:`read_image` reads back the same (uint8/uint16, BGR order)."""
    arr = np.asarray(img)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4))) or arr.size == 0:
        raise ImageError(f"{p}: cannot write an array of shape {arr.shape} (expected (H, W), (H, W, 3) RGB or "
                         "(H, W, 4) RGBA)")
    if arr.dtype.kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        if bad:
            raise ImageError(f"{p}: image contains {bad} NaN or infinite values")
        arr = quantize(arr, bit_depth or 8)
    elif arr.dtype not in (np.uint8, np.uint16):
        raise ImageError(f"{p}: cannot write pixel type {arr.dtype} (use uint8, uint16, or float on the 0-255 "
                         "scale)")
    elif bit_depth is not None and arr.dtype != (np.uint8 if bit_depth == 8 else np.uint16):
        arr = quantize(to_float255(arr), bit_depth)
    wide = p.suffix.lower() in _SIXTEEN_BIT_EXTENSIONS
    if arr.dtype == np.uint16 and not wide:
        raise ImageError(f"{p}: 16-bit output needs a .png or .tif file name")
    if arr.ndim == 3 and arr.shape[2] == 4:
        if not wide:
            raise ImageError(f"{p}: an RGBA image needs a .png or .tif file name (this format has no alpha)")
        return cv2.cvtColor(arr, cv2.COLOR_RGBA2BGRA)
    return cv2.cvtColor(arr, cv2.COLOR_RGB2BGR) if arr.ndim == 3 else arr


def write_image(path: str | os.PathLike, img: np.ndarray, *, bit_depth: int | None = None,
                overwrite: bool = False) -> Path:
    """Write ``img`` (gray, RGB or RGBA) atomically; folders are created.

    uint8/uint16 arrays are written as they are; float arrays are taken as 0-255 and quantised to ``bit_depth``
    (default 8) by :func:`quantize`; NaN/inf and other pixel types are refused (:class:`ImageError`). 16-bit and
    RGBA output need PNG or TIFF. Raises :class:`OutputExistsError` if the file exists and ``overwrite`` is false.
    """
    p = check_overwrite(path, overwrite)
    arr = _encodable(p, img, bit_depth)
    ok, buf = cv2.imencode(p.suffix or ".png", arr)
    if not ok:
        raise ImageError(f"{p}: could not encode image of shape {arr.shape} as {p.suffix}")
    return write_bytes_atomic(p, buf.tobytes(), overwrite=True)


# --------------------------------------------------------------------------------------------------- pairing


@dataclass
class Matched:
    """Files matched by stem across named folders, and what could not be matched."""

    items: list[tuple[str, dict[str, Path]]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _is_image_name(f: Path) -> bool:
    return f.suffix.lower() in IMAGE_EXTENSIONS and not f.name.startswith(".")


def list_images(folder: str | os.PathLike) -> dict[str, Path]:
    """Image files of a folder keyed by stem. Raises :class:`PairingError` for a missing folder or two files that
    share a stem (``a.png`` and ``a.jpg``). Broken links are left out here: :func:`broken_links` names them."""
    d = Path(folder)
    if not d.is_dir():
        raise PairingError(f"{d}: not a folder")
    out: dict[str, Path] = {}
    for f in sorted(d.iterdir()):
        if _is_image_name(f) and f.is_file():
            if f.stem in out:
                raise PairingError(f"{d}: two images share the stem {f.stem!r}: {out[f.stem].name}, {f.name}")
            out[f.stem] = f
    return out


def broken_links(folder: str | os.PathLike) -> list[Path]:
    """Image-named symbolic links of ``folder`` that lead nowhere (dangling or looping), sorted."""
    return [f for f in sorted(Path(folder).iterdir()) if _is_image_name(f) and f.is_symlink() and not f.is_file()]


def match_folders(folders: dict[str, str | os.PathLike], *, strict: bool = False) -> Matched:
    """Match image files by stem across folders (extensions may differ), e.g. ``{"ir": ..., "vi": ...}``.

    Stems missing from some folder are reported in ``problems`` ("<stem>: no vi partner for ir/<file>"), as are
    broken symbolic links ("<stem>: ir/<file> is a broken symbolic link ..."); with ``strict`` they are raised as
    one :class:`PairingError`. Items are sorted by stem.
    """
    listed = {name: list_images(path) for name, path in folders.items()}
    stems = sorted(set().union(*[set(v) for v in listed.values()]))
    result = Matched()
    for name, path in folders.items():
        for link in broken_links(path):
            result.problems.append(f"{link.stem}: {name}/{link.name} is a broken symbolic link (dangling or "
                                   "looping)")
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


@dataclass
class PairedFolder:
    """The pairs of a dataset folder ``root`` (``root/ir`` + ``root/vi``): ``(stem, {"ir": path, "vi": path})``
    sorted by stem, and the problems skipped with ``skip_unpaired``."""

    root: Path
    items: list[tuple[str, dict[str, Path]]]
    skipped: list[str] = field(default_factory=list)

    @property
    def stems(self) -> list[str]:
        return [stem for stem, _ in self.items]


def paired_folder(folder: str | os.PathLike, *, include: list[str] | None = None, exclude: list[str] | None = None,
                  skip_unpaired: bool = False) -> PairedFolder:
    """The one reader of "a folder with ir/ and vi/": pairs matched by stem, filtered by a split.

    ``include`` keeps only those stems, ``exclude`` drops stems; a listed stem without a pair is an error.
    Unpaired files and broken links are a :class:`PairingError` naming them, or skipped with a warning when
    ``skip_unpaired``. A missing folder or sub-folder raises :class:`FileNotFoundError`.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset folder not found")
    for sub in ("ir", "vi"):
        if not (root / sub).is_dir():
            raise FileNotFoundError(f"{root}: no {sub}/ sub-folder (a dataset folder needs ir/ and vi/)")
    try:
        matched = match_folders({"ir": root / "ir", "vi": root / "vi"})
    except PairingError as exc:
        raise PairingError(f"{root}: {exc}") from None
    out = PairedFolder(root, matched.items)
    if matched.problems:
        if not skip_unpaired:
            raise PairingError(f"{root}: unpaired files: " + "; ".join(matched.problems)
                               + " (--skip-unpaired skips them)")
        import warnings

        warnings.warn(f"{root}: skipping unpaired files: " + "; ".join(matched.problems), stacklevel=2)
        out.skipped = list(matched.problems)
    have = set(out.stems)
    for listed, what in ((include, "split manifest"), (exclude, "exclude list")):
        missing = sorted(set(listed or ()) - have)
        if missing:
            raise PairingError(f"{root}: {what} names images without an ir/vi pair: {', '.join(missing[:10])}"
                               + (f" (+{len(missing) - 10} more)" if len(missing) > 10 else ""))
    keep, drop = set(include if include is not None else have), set(exclude or ())
    out.items = [it for it in out.items if it[0] in keep and it[0] not in drop]
    if not out.items:
        raise PairingError(f"{root}: no image pairs (after applying the split)")
    return out


def read_stem_list(path: str | os.PathLike) -> list[str]:
    """A list of image names: one image name per line (extension optional); blank lines and ``#`` comments ignored."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: list of image names not found")
    stems = []
    for line in p.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            stems.append(line[: -len(Path(line).suffix)] if Path(line).suffix.lower() in IMAGE_EXTENSIONS else line)
    if not stems:
        raise InputError(f"{p}: the list names no images")
    return stems


def check_same_size(arrays: dict[str, tuple[Path, np.ndarray]]) -> None:
    """Raise :class:`ImageError` naming every file and its size unless all arrays share height and width."""
    sizes = {name: a.shape[:2] for name, (_, a) in arrays.items()}
    if len(set(sizes.values())) > 1:
        desc = ", ".join(f"{p} is {a.shape[1]}x{a.shape[0]}" for _, (p, a) in arrays.items())
        raise ImageError(f"size mismatch: {desc} (W x H)")
