"""Training data: paired IR/VIS folders read once into memory, random patches drawn on the fly.

* :func:`load_pairs` reads ``FOLDER/ir`` and ``FOLDER/vi`` (:func:`crossfuse.io.paired_folder`) as uint8
  arrays: each image as one channel, colour as its BT.601 luma Y (:func:`crossfuse.io.luma_u8`; gray as it is).
* :func:`make_split` builds the train / val / test stem lists: ``test`` = the stems of an exclusion list (for
  RoadScene: ``cddfuse_test50.txt``, the 50-pair test list), ``val`` = ``val_count`` stems held out of the
  remaining ones (a seeded, sorted draw - never trained on), ``train`` = the rest. TNO is never a training set.
* :func:`load_external` reads the aligned external patches ``crossfuse align`` writes (``patches.npz`` with
  ``vis_y`` and ``ir``, ``(N, P, P)`` uint8).
* :class:`PatchDataset` yields ``(ir, vis_y)`` float tensors ``(1, P, P)`` in [0, 1]. Item ``i`` of epoch ``e`` is
  drawn from ``numpy.random.default_rng([seed, e, i])``, so a run is reproducible and resumable regardless of
  the number of loader workers or processes. A fraction ``external_ratio`` of items comes from the external
  patches; the rest are random ``P x P`` windows of the target images (an image is picked with probability
  proportional to its number of valid windows), horizontally flipped with probability 1/2 when ``flip``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from crossfuse.io import luma_u8, paired_folder, read_pair, read_stem_list


@dataclass
class Pairs:
    """Registered pairs in memory: ``ir[i]`` and ``vis_y[i]`` are ``(H, W)`` uint8 arrays of pair ``stems[i]``."""

    stems: list[str] = field(default_factory=list)
    ir: list[np.ndarray] = field(default_factory=list)
    vis_y: list[np.ndarray] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.stems)


def load_pairs(folder: str | os.PathLike, stems: list[str] | None = None) -> Pairs:
    """Read the pairs of ``folder/ir`` and ``folder/vi`` (all, or only ``stems``, in that order) into memory.

    The folder is read by :func:`crossfuse.io.paired_folder` (unpaired files are skipped with a warning); both
    images become one uint8 channel by :func:`crossfuse.io.luma_u8` (16-bit / 257, colour -> BT.601 luma)."""
    folder_pairs = paired_folder(folder, include=stems, skip_unpaired=True)
    files_of = dict(folder_pairs.items)
    pairs = Pairs()
    for stem in (folder_pairs.stems if stems is None else stems):
        ir, vi = read_pair(files_of[stem]["ir"], files_of[stem]["vi"])
        pairs.stems.append(stem)
        pairs.ir.append(luma_u8(ir))
        pairs.vis_y.append(luma_u8(vi))
    return pairs


@dataclass(frozen=True)
class Split:
    train: list[str]
    val: list[str]
    test: list[str]


def make_split(folder: str | os.PathLike, exclude_list: str | os.PathLike | None = None, val_count: int = 0,
               seed: int = 0) -> Split:
    """Train / val / test stems of a paired folder (see the module docstring)."""
    stems = paired_folder(folder, skip_unpaired=True).stems
    test = read_stem_list(exclude_list) if exclude_list else []
    unknown = sorted(set(test) - set(stems))
    if unknown:
        raise ValueError(f"{exclude_list}: lists stems not in {folder}: {', '.join(unknown[:5])}")
    rest = [s for s in stems if s not in set(test)]
    if not 0 <= val_count < len(rest):
        raise ValueError(f"val_count={val_count} must be in [0, {len(rest) - 1}] for {folder}")
    rng = np.random.default_rng(seed)
    val = sorted(rng.choice(rest, size=val_count, replace=False).tolist()) if val_count else []
    train = [s for s in rest if s not in set(val)]
    return Split(train=train, val=val, test=test)


def load_external(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """``(vis_y, ir)`` uint8 arrays ``(N, P, P)`` from a ``crossfuse align`` ``patches.npz``."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: aligned external patches not found (run `crossfuse align ... --out DIR`)")
    with np.load(p, allow_pickle=False) as z:
        for key in ("vis_y", "ir"):
            if key not in z:
                raise ValueError(f"{p}: missing array {key!r} (has: {', '.join(z.files)})")
        vis, ir = z["vis_y"], z["ir"]
    if vis.ndim != 3 or vis.shape != ir.shape or vis.dtype != np.uint8 or ir.dtype != np.uint8:
        raise ValueError(f"{p}: vis_y {vis.shape} {vis.dtype} and ir {ir.shape} {ir.dtype} must be equal-shaped "
                         "(N, P, P) uint8 arrays")
    return vis, ir


class PatchDataset(Dataset):
    """Random training patches from in-memory pairs plus optional external patches (see module docstring).

    ``length`` items per epoch; call :meth:`set_epoch` before each epoch to draw new patches.
    """

    def __init__(self, pairs: Pairs, patch: int = 64, length: int = 1000, seed: int = 0, flip: bool = True,
                 external: tuple[np.ndarray, np.ndarray] | None = None, external_ratio: float = 0.0) -> None:
        if len(pairs) == 0:
            raise ValueError("PatchDataset needs at least one training pair")
        small = [s for s, a in zip(pairs.stems, pairs.ir) if min(a.shape) < patch]
        if small:
            raise ValueError(f"patch {patch} is larger than pair(s) {', '.join(small[:5])}")
        if not 0.0 <= external_ratio <= 1.0:
            raise ValueError(f"external_ratio must be in [0, 1], got {external_ratio}")
        if external_ratio > 0 and external is None:
            raise ValueError("external_ratio > 0 but no external patches were given")
        if external is not None and external[0].shape[1:] != (patch, patch):
            raise ValueError(f"external patches are {external[0].shape[1:]}, the training patch is {patch}x{patch}")
        self.pairs, self.patch, self.length, self.seed, self.flip = pairs, patch, int(length), int(seed), flip
        self.external, self.external_ratio = external, float(external_ratio)
        counts = np.array([(a.shape[0] - patch + 1) * (a.shape[1] - patch + 1) for a in pairs.ir], dtype=np.float64)
        self.weights = counts / counts.sum()
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, int(i)])
        p = self.patch
        if self.external is not None and rng.random() < self.external_ratio:
            k = int(rng.integers(len(self.external[0])))
            vis, ir = self.external[0][k], self.external[1][k]
        else:
            j = int(rng.choice(len(self.weights), p=self.weights))
            h, w = self.pairs.ir[j].shape
            top, left = int(rng.integers(h - p + 1)), int(rng.integers(w - p + 1))
            window = (slice(top, top + p), slice(left, left + p))
            ir, vis = self.pairs.ir[j][window], self.pairs.vis_y[j][window]
        if self.flip and rng.random() < 0.5:
            ir, vis = ir[:, ::-1], vis[:, ::-1]
        to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32) / 255.0)[None]  # noqa: E731
        return to_t(ir), to_t(vis)


__all__ = ["Pairs", "Split", "PatchDataset", "load_pairs", "make_split", "load_external"]
