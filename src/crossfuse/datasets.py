"""Dataset recipes: manifests of the standard IVIF test sets, ``verify`` a local copy, ``prepare`` a release layout.

A manifest (``crossfuse/manifests/<NAME>.json``, made by ``benchmarks/make_dataset_manifests.py`` from the provenance
in ``../shared/data``) lists, per pair, the file name, width x height and two hashes per modality:

* ``sha256``: of the file bytes as the source repository ships them;
* ``pixels``: :func:`pixel_sha256` of the array :func:`crossfuse.io.read_image` returns for it (3 identical channels
  read as one channel). A copy re-encoded losslessly by ``prepare`` (3-channel gray IR -> 1-channel PNG) keeps these
  pixels, so ``verify`` accepts it as "same pixels" while an edited file fails both hashes. For JPEG sources the
  pixel hash depends on the JPEG decoder (OpenCV's bundled libjpeg-turbo made the shipped hashes).

A manifest marked ``partial`` lists only the pairs whose provenance is known (e.g. 12 of the MSRS train split);
``verify`` then checks exactly those and reports the folder's other images as extra, which is not a failure.
A manifest without a file list (M3FD) documents the source only; ``verify`` says so and fails.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from crossfuse import io as cio
from crossfuse.errors import InputError, UnknownNameError
from crossfuse.io import file_sha256  # re-exported: part of this module's API

MANIFEST_DIR = Path(__file__).resolve().parent / "manifests"
# The registry: shipped manifests, in listing order.
DATASETS = ("TNO", "RoadScene", "MSRS", "LLVIP", "M3FD")
# Folder names releases use for each modality (compared case-insensitively) when no layout is given.
IR_ALIASES = ("ir", "inf", "infrared", "lwir", "thermal", "cropinfrared")
VI_ALIASES = ("vi", "vis", "visible", "rgb", "crop_lr_visible")
MODALITIES = ("ir", "vi")


def get_manifest(name: str) -> dict[str, Any]:
    """The shipped manifest of ``name`` (case-insensitive); :class:`UnknownNameError` lists the valid names."""
    canon = {n.lower(): n for n in DATASETS}.get(name.lower())
    if canon is None:
        raise UnknownNameError(f"unknown dataset {name!r}; valid datasets: {', '.join(DATASETS)}")
    return json.loads((MANIFEST_DIR / f"{canon}.json").read_text(encoding="utf-8"))


def pixel_sha256(img: np.ndarray) -> str:
    """Hash of an image's content: dtype, shape and pixel bytes (so 8- and 16-bit or gray and RGB never collide)."""
    a = np.ascontiguousarray(img)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return h.hexdigest()


def split_names(manifest: dict[str, Any], split: str | None) -> dict[str, str]:
    """Manifest name -> stem expected on disk, for the whole file list or one split of it."""
    files = [Path(f["name"]).stem for f in manifest.get("files", [])]
    if split is None:
        return {s: s for s in files}
    splits = manifest.get("splits", {})
    if split not in splits:
        raise UnknownNameError(f"{manifest['name']} has no split {split!r}; splits: {', '.join(splits) or 'none'}")
    renamed = splits[split].get("source_names", {})
    return {s: renamed.get(s, s) for s in splits[split]["names"]}


# --------------------------------------------------------------------------------------------------- verify


@dataclass
class Check:
    pair: str
    modality: str
    ok: bool
    detail: str  # "file sha256", "same pixels (re-encoded)", or what is wrong


@dataclass
class VerifyReport:
    dataset: str
    folder: Path
    checks: list[Check] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)  # images in the folder the manifest does not list
    note: str = ""

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    @property
    def ok(self) -> bool:
        return bool(self.checks) and not self.failures


def check_file(path: Path | None, entry: dict[str, Any], size: tuple[int, int]) -> tuple[bool, str]:
    """Compare one file with its manifest entry: file hash first, then size and pixel hash."""
    if path is None:
        return False, "missing"
    if file_sha256(path) == entry["sha256"]:
        return True, "file sha256"
    try:
        img = cio.read_image(path)
    except cio.ImageError as exc:
        return False, f"unreadable: {exc}"
    if (img.shape[1], img.shape[0]) != size:
        return False, f"size {img.shape[1]}x{img.shape[0]}, expected {size[0]}x{size[1]}"
    if pixel_sha256(img) == entry["pixels"]:
        return True, "same pixels (re-encoded)"
    return False, "content differs from the manifest (file and pixel sha256)"


def verify(name: str, folder: str | os.PathLike, split: str | None = None) -> VerifyReport:
    """Check ``folder/ir`` and ``folder/vi`` against the manifest of ``name`` (files matched by stem)."""
    manifest = get_manifest(name)
    report = VerifyReport(manifest["name"], Path(folder))
    if not manifest.get("files"):
        report.note = f"{manifest['name']}: the manifest has no file list (no verified copy was available); " \
                      "see `crossfuse data list` for its source"
        return report
    on_disk = {m: cio.list_images(Path(folder) / m) for m in MODALITIES}
    wanted = split_names(manifest, split)
    entries = {Path(f["name"]).stem: f for f in manifest["files"]}
    for stem, disk_stem in wanted.items():
        entry = entries[stem]
        for m in MODALITIES:
            ok, detail = check_file(on_disk[m].get(disk_stem), entry[m], (entry["width"], entry["height"]))
            report.checks.append(Check(disk_stem, m, ok, detail))
    expected = set(wanted.values())
    report.extra = sorted(f"{m}/{p.name}" for m in MODALITIES for s, p in on_disk[m].items() if s not in expected)
    if manifest.get("partial"):
        report.note = f"{manifest['name']}: partial manifest ({manifest['counts']['listed']} pairs of known " \
                      "provenance); other images are reported as extra, not checked"
    return report


# --------------------------------------------------------------------------------------------------- prepare


@dataclass
class PrepareReport:
    ir_dir: Path
    vi_dir: Path
    written: dict[str, int] = field(default_factory=lambda: {"copied": 0, "converted": 0})
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _children(d: Path) -> dict[str, Path]:
    return {c.name.lower(): c for c in sorted(d.iterdir()) if c.is_dir()} if d.is_dir() else {}


def find_layout(src: Path, manifest: dict[str, Any]) -> tuple[Path, Path]:
    """The (ir, vi) folders of a release: the manifest's known layouts first, then alias names in SRC or one level
    down. Several candidates -> :class:`InputError` listing them (pass ``--ir``/``--vi``)."""
    if not src.is_dir():
        raise InputError(f"{src}: not a folder")
    for layout in manifest.get("layouts", []):
        ir, vi = src / layout["ir"], src / layout["vi"]
        if ir.is_dir() and vi.is_dir():
            return ir, vi
    found = []
    for parent in [src, *_children(src).values()]:
        kids = _children(parent)
        irs = [kids[a] for a in IR_ALIASES if a in kids]
        vis = [kids[a] for a in VI_ALIASES if a in kids]
        if len(irs) == 1 and len(vis) == 1:
            found.append((irs[0], vis[0]))
    if len(found) != 1:
        what = "no infrared/visible folder pair" if not found else \
            "several folder pairs: " + "; ".join(f"{a.relative_to(src)} + {b.relative_to(src)}" for a, b in found)
        raise InputError(f"{src}: {what} found (folder names tried: {', '.join(IR_ALIASES)} / "
                         f"{', '.join(VI_ALIASES)}); pass --ir and --vi")
    return found[0]


def normalise(img: np.ndarray, modality: str, bit_depth: str) -> tuple[np.ndarray, list[str]]:
    """What ``prepare`` stores: IR as one channel (identical channels kept, other colour IR -> BT.601 luma),
    16-bit kept (``bit_depth="keep"``) or scaled to 8-bit (``"8"``: value / 257, rounded). Returns notes."""
    notes = []
    if modality == "ir" and img.ndim == 3:
        if cio.channels_equal(img):
            img = np.ascontiguousarray(img[:, :, 0])
            notes.append("3-channel gray IR -> 1 channel")
        else:
            img = cio.quantize(cio.luma(cio.to_float255(img)), 16 if img.dtype == np.uint16 else 8)
            notes.append("colour IR -> BT.601 luma")
    if img.dtype == np.uint16 and bit_depth == "8":
        img = cio.to_uint8(img)
        notes.append("16-bit -> 8-bit (value / 257)")
    return img, notes


def prepare_file(src: Path, dst_dir: Path, out_stem: str, modality: str, bit_depth: str,
                 overwrite: bool) -> tuple[str, list[str]]:
    """Write one file into ``dst_dir``: a byte copy when already normal, else a lossless PNG. Returns the kind."""
    stored = cio.read_image(src, keep_channels=True)
    img, notes = normalise(stored, modality, bit_depth)
    if img is stored:  # nothing to change: keep the original bytes (and so its file sha256)
        cio.write_bytes_atomic(dst_dir / f"{out_stem}{src.suffix}", src.read_bytes(), overwrite=overwrite)
        return "copied", notes
    cio.write_image(dst_dir / f"{out_stem}.png", img, overwrite=overwrite)
    return "converted", notes


def prepare(name: str, src: str | os.PathLike, dst: str | os.PathLike, *, ir: str | os.PathLike | None = None,
            vi: str | os.PathLike | None = None, split: str | None = None, bit_depth: str = "keep",
            overwrite: bool = False) -> PrepareReport:
    """Normalise a release folder into ``dst/ir`` + ``dst/vi`` (pairs matched by stem; failures reported, the
    rest still written). With ``split`` only that split's pairs, renamed to the manifest's names."""
    if bit_depth not in ("keep", "8"):
        raise InputError(f"bit depth must be 'keep' or '8', got {bit_depth!r}")
    manifest = get_manifest(name)
    src = Path(src)
    if ir is not None or vi is not None:
        if ir is None or vi is None:
            raise InputError("pass both --ir and --vi, or neither")
        ir_dir, vi_dir = src / ir, src / vi
    else:
        ir_dir, vi_dir = find_layout(src, manifest)
    report = PrepareReport(ir_dir, vi_dir)
    matched = cio.match_folders({"ir": ir_dir, "vi": vi_dir})
    report.problems.extend(matched.problems)
    items = dict(matched.items)
    todo = {s: s for s in items} if split is None else {v: k for k, v in split_names(manifest, split).items()}
    seen: dict[str, int] = {}
    for stem, out_stem in todo.items():
        if stem not in items:
            report.problems.append(f"{stem}: listed in split {split!r} but not found in {ir_dir} / {vi_dir}")
            continue
        for m in MODALITIES:
            try:
                kind, notes = prepare_file(items[stem][m], Path(dst) / m, out_stem, m, bit_depth, overwrite)
            except (cio.ImageError, FileExistsError, OSError) as exc:
                report.problems.append(str(exc))
                continue
            report.written[kind] += 1
            for n in notes:
                seen[n] = seen.get(n, 0) + 1
    report.notes = [f"{n}: {k} file(s)" for n, k in seen.items()]
    return report


__all__ = ["DATASETS", "get_manifest", "file_sha256", "pixel_sha256", "split_names", "verify", "VerifyReport",
           "Check", "find_layout", "normalise", "prepare", "PrepareReport"]
