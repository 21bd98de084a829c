"""Patch extraction from paired IR/VIS folders, vectorised (CrossFuse Top-K alignment, step 1).

A dataset folder holds ``ir/`` and ``vi/`` with files paired by stem (:func:`crossfuse.io.paired_folder`). Patches
are ``patch`` x ``patch`` windows on the grid ``y in range(0, H - patch + 1, stride)``, ``x`` likewise (whole
patches only), cut at the same places in the visible and the infrared frame, in the order of the reference
CrossFuse script (``top_k_alignment.py``, ``crop_images``): images by stem (sorted; the reference used the
arbitrary ``os.listdir`` order), then ``y``, then ``x``.

Per-patch statistics come from integral images (exact integer sums), pixels of chosen patches from strided views
(:func:`numpy.lib.stride_tricks.sliding_window_view`); nothing loops over patches in Python.

Conventions: visible images are RGB uint8 ``(H, W, 3)`` (16-bit files are rounded to 8 bits; a gray visible file is
replicated to three channels and flagged ``gray``); IR is uint8 ``(H, W)`` (a colour IR file is converted with
:func:`crossfuse.io.luma_u8`).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from crossfuse.io import check_same_size, luma_u8, paired_folder, read_image, to_uint8


@dataclass
class PairedImage:
    """One visible/IR pair of a dataset. The IR frame is read on first use (:meth:`load_ir`) unless the dataset
    was loaded with ``lazy_ir=False``: alignment needs the target's visible images only, and the external IR
    frames of the images that give selected patches."""

    dataset: str
    stem: str
    vis: np.ndarray  # (H, W, 3) uint8 RGB
    vis_path: Path
    ir_path: Path
    gray: bool = False  # the visible file had no colour
    ir: np.ndarray | None = None  # (H, W) uint8 once read

    def load_ir(self) -> np.ndarray:
        """The IR frame as uint8 ``(H, W)`` (read, converted and size-checked once)."""
        if self.ir is None:
            ir = read_image(self.ir_path)
            check_same_size({"vi": (self.vis_path, self.vis), "ir": (self.ir_path, ir)})
            self.ir = luma_u8(ir)
        return self.ir


@dataclass
class PairedDataset:
    name: str
    folder: Path
    images: list[PairedImage] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # unpaired files that were skipped (with a warning)


def _load_pair(dataset: str, stem: str, files: dict[str, Path], lazy_ir: bool) -> PairedImage:
    vis = read_image(files["vi"])
    gray = vis.ndim == 2
    vis = to_uint8(vis)
    if gray:
        vis = np.repeat(vis[:, :, None], 3, axis=2)
    pair = PairedImage(dataset, stem, vis, files["vi"], files["ir"], gray)
    if not lazy_ir:
        pair.load_ir()
    return pair


def load_pairs(folder: str | os.PathLike, *, name: str | None = None, include: list[str] | None = None,
               exclude: list[str] | None = None, skip_unpaired: bool = False,
               lazy_ir: bool = False) -> PairedDataset:
    """Load every pair of ``folder/ir`` and ``folder/vi`` (sorted by stem) found by
    :func:`crossfuse.io.paired_folder`, which owns the split (``include`` / ``exclude``), unpaired files
    (``skip_unpaired``) and the folder errors. With ``lazy_ir`` the IR files are read (and size-checked) only when
    used. Unreadable or mis-sized files raise :class:`crossfuse.io.ImageError`.
    """
    pf = paired_folder(folder, include=include, exclude=exclude, skip_unpaired=skip_unpaired)
    ds = PairedDataset(name or pf.root.resolve().name, pf.root, skipped=pf.skipped)
    items = pf.items
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:  # decoders release the GIL
        ds.images = list(pool.map(lambda item: _load_pair(ds.name, *item, lazy_ir), items))
    return ds


# ------------------------------------------------------------------------------------------------ grid


def grid_starts(size: int, patch: int, stride: int) -> np.ndarray:
    """Start offsets of whole patches along one axis: ``range(0, size - patch + 1, stride)``."""
    return np.arange(0, size - patch + 1, stride, dtype=np.int64)


def check_patch_fits(images: list[PairedImage], patch: int) -> None:
    for im in images:
        h, w = im.vis.shape[:2]
        if patch > h or patch > w:
            raise ValueError(f"{im.vis_path}: patch {patch}x{patch} is larger than the image ({w}x{h}, W x H)")


def integral(img: np.ndarray, squares: bool = False) -> np.ndarray:
    """Zero-padded integral image ``S[y, x] = img[:y, :x].sum()`` per channel (of ``img**2`` when ``squares``), by
    OpenCV ``cv2.integral`` / ``integral2``: int32 when it cannot overflow, else float64, which holds these integer
    sums exactly; :func:`window_sums` turns them into exact int64."""
    if squares:
        _, sq = cv2.integral2(img, sdepth=cv2.CV_64F, sqdepth=cv2.CV_64F)
        return sq
    depth = cv2.CV_32S if img.shape[0] * img.shape[1] * 255 < 2**31 else cv2.CV_64F
    return cv2.integral(img, sdepth=depth)


def window_sums(s: np.ndarray, ys: np.ndarray, xs: np.ndarray, patch: int) -> np.ndarray:
    """Sums over the windows at the grid ``ys`` x ``xs`` from an integral image: ``(len(ys) * len(xs), ...)``,
    y-major."""
    y0, x0 = ys[:, None], xs[None, :]
    y1, x1 = y0 + patch, x0 + patch

    def g(yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        return s[yy, xx].astype(np.int64)

    out = g(y1, x1) - g(y0, x1) - g(y1, x0) + g(y0, x0)
    return out.reshape((-1,) + s.shape[2:])


@dataclass
class Candidates:
    """All grid patches of some datasets: where they are and their per-channel statistics (RGB order).

    ``sums`` / ``sq_sums`` are exact integer sums of pixel values / squares per channel, ``(N, 3)`` int64.
    """

    images: list[PairedImage]
    patch: int
    stride: int
    image_index: np.ndarray  # (N,) index into images
    y: np.ndarray  # (N,)
    x: np.ndarray  # (N,)
    sums: np.ndarray
    sq_sums: np.ndarray | None = None  # only with extract_candidates(..., squares=True)

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def means(self) -> np.ndarray:
        """Per-patch channel means, float64, exactly ``sum / patch**2`` (as ``np.mean`` of the uint8 patch)."""
        return self.sums / float(self.patch * self.patch)

    @property
    def stds(self) -> np.ndarray:
        """Per-patch channel standard deviations (population), float64."""
        if self.sq_sums is None:
            raise ValueError("standard deviations need extract_candidates(..., squares=True)")
        n = self.patch * self.patch
        var = (self.sq_sums * n - self.sums.astype(np.int64) ** 2) / float(n * n)
        return np.sqrt(np.maximum(var, 0.0))

    def ids(self, index: np.ndarray | None = None) -> list[str]:
        """Patch ids ``"<dataset>/<stem>:<x>:<y>"``."""
        idx = np.arange(len(self)) if index is None else np.asarray(index)
        return [f"{self.images[i].dataset}/{self.images[i].stem}:{x}:{y}"
                for i, x, y in zip(self.image_index[idx].tolist(), self.x[idx].tolist(), self.y[idx].tolist())]

    def dataset_of(self) -> np.ndarray:
        names = np.array([im.dataset for im in self.images] or [""], dtype=object)
        return names[self.image_index]

    def pixels(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Visible ``(n, P, P, 3)`` and IR ``(n, P, P)`` uint8 pixels of the patches ``index`` (in that order)."""
        index = np.asarray(index, dtype=np.int64)
        p = self.patch
        vis = np.empty((len(index), p, p, 3), dtype=np.uint8)
        ir = np.empty((len(index), p, p), dtype=np.uint8)
        order = np.argsort(self.image_index[index], kind="stable")
        img_ids = self.image_index[index][order]
        bounds = np.flatnonzero(np.diff(img_ids)) + 1
        for group in np.split(order, bounds):
            if group.size == 0:
                continue
            im = self.images[int(self.image_index[index[group[0]]])]
            ys, xs = self.y[index[group]], self.x[index[group]]
            vv = sliding_window_view(im.vis, (p, p), axis=(0, 1))  # (H-p+1, W-p+1, 3, p, p)
            vis[group] = vv[ys, xs].transpose(0, 2, 3, 1)
            ir[group] = sliding_window_view(im.load_ir(), (p, p))[ys, xs]
        return vis, ir


def extract_candidates(images: list[PairedImage], patch: int, stride: int, squares: bool = False) -> Candidates:
    """Grid patch positions and channel sums (and sums of squares if ``squares``) of every image (order: images as
    given, then y, then x)."""
    if patch < 1 or stride < 1:
        raise ValueError(f"patch and stride must be positive integers, got patch={patch}, stride={stride}")
    check_patch_fits(images, patch)
    idx, ys_all, xs_all, sums, sqs = [], [], [], [], []
    for i, im in enumerate(images):
        h, w = im.vis.shape[:2]
        ys, xs = grid_starts(h, patch, stride), grid_starts(w, patch, stride)
        sums.append(window_sums(integral(im.vis), ys, xs, patch))
        if squares:
            sqs.append(window_sums(integral(im.vis, squares=True), ys, xs, patch))
        gy, gx = np.meshgrid(ys, xs, indexing="ij")
        ys_all.append(gy.ravel())
        xs_all.append(gx.ravel())
        idx.append(np.full(gy.size, i, dtype=np.int64))

    def cat(a: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray:
        return np.concatenate(a) if a else np.zeros(shape, dtype=np.int64)

    return Candidates(images, patch, stride, cat(idx, (0,)), cat(ys_all, (0,)), cat(xs_all, (0,)),
                      cat(sums, (0, 3)), cat(sqs, (0, 3)) if squares else None)


def channel_histograms(cands: Candidates, bins: int = 32) -> np.ndarray:
    """Per-patch, per-channel normalised histograms ``(N, 3, bins)`` (bins of equal width over 0-255), computed one
    image at a time with ``np.bincount`` over the strided patch view."""
    if not 1 <= bins <= 256 or 256 % bins:
        raise ValueError(f"histogram bins must divide 256, got {bins}")
    shift = int(np.log2(256 // bins))
    p = cands.patch
    out = np.zeros((len(cands), 3, bins), dtype=np.float64)
    for i, im in enumerate(cands.images):
        sel = np.flatnonzero(cands.image_index == i)
        if sel.size == 0:
            continue
        view = sliding_window_view(im.vis >> shift, (p, p), axis=(0, 1))[cands.y[sel], cands.x[sel]]  # (n,3,p,p)
        code = (np.arange(sel.size * 3, dtype=np.int64).reshape(sel.size, 3, 1, 1) * bins + view).ravel()
        counts = np.bincount(code, minlength=sel.size * 3 * bins).reshape(sel.size, 3, bins)
        out[sel] = counts / float(p * p)
    return out


def coverage_histogram(cands: Candidates) -> np.ndarray:
    """``(3, 256)`` counts of the visible pixel values of *all* grid patches, a pixel counted once per patch that
    covers it - without cutting the patches: the coverage of a grid is separable (rows x columns), so each image
    needs one masked ``cv2.calcHist`` per pair of row/column coverage levels (one when ``stride >= patch``)."""
    p, s = cands.patch, cands.stride
    total = np.zeros((3, 256), dtype=np.int64)
    for im in cands.images:
        h, w = im.vis.shape[:2]
        cov = []
        for size in (h, w):
            c = np.zeros(size + 1, dtype=np.int64)
            starts = grid_starts(size, p, s)
            np.add.at(c, starts, 1)
            np.add.at(c, starts + p, -1)
            cov.append(np.cumsum(c[:-1]))
        for a in np.unique(cov[0][cov[0] > 0]):
            rows = (cov[0] == a).astype(np.uint8)
            for b in np.unique(cov[1][cov[1] > 0]):
                mask = np.outer(rows, (cov[1] == b).astype(np.uint8))
                for ch in range(3):
                    hist = cv2.calcHist([im.vis], [ch], mask, [256], [0, 256]).ravel().astype(np.int64)
                    total[ch] += int(a) * int(b) * hist
    return total
