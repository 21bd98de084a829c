"""Scoring of a robustness run (:mod:`crossfuse.robust`): one fused file against its CLEAN pair (a worker), the
noise estimate shown beside the noise-inflated metrics, and the append-only per-image cache that makes a run
resumable (per-rank files under torchrun, folded into ``cache.jsonl`` by rank 0)."""

from __future__ import annotations

import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from crossfuse import io as cio
from crossfuse.robust_plan import NOISE


def noise_sigma(img: np.ndarray) -> float:
    """Immerkaer's fast noise estimate (CVIU 1996): sigma of white Gaussian noise from a Laplacian-difference
    filter, on the 0-255 scale. Shown beside EN/SD/SF/AG, which noise inflates."""
    x = np.asarray(img, dtype=np.float64)
    h, w = x.shape
    if h < 3 or w < 3:
        return float("nan")
    k = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float64)
    import cv2

    r = cv2.filter2D(x, -1, k, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2.0) * np.abs(r).sum() / (6.0 * (w - 2) * (h - 2)))


def score_item(item: tuple[str, Path, Path, Path, str, list[str]]) -> tuple[str, dict[str, float] | None, str]:
    """Worker: score one fused file against its clean pair; an error becomes a reason naming the files."""
    from crossfuse.metrics import compute_metrics
    from crossfuse.metrics.cddfuse import to_gray_cddfuse

    key, ir_p, vi_p, fused_p, profile, names = item
    try:
        arrays = {role: (p, cio.read_image(p, keep_channels=True)) for role, p in
                  (("ir", ir_p), ("vi", vi_p), ("fused", fused_p))}
        cio.check_same_size(arrays)
        vals = compute_metrics(arrays["ir"][1], arrays["vi"][1], arrays["fused"][1], profile, names)
        vals[NOISE] = noise_sigma(to_gray_cddfuse(arrays["fused"][1]))
        return key, vals, ""
    except (ValueError, OSError) as exc:
        return key, None, str(exc)


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)


def cache_key(method: str, cond: str, stem: str, fused: Path, profile: str) -> str:
    """Identifies one score: a changed fused file (size or mtime) or another profile is scored again."""
    st = fused.stat()
    return f"{method}|{cond}|{stem}|{profile}|{st.st_size}|{st.st_mtime_ns}"


def rank_caches(path: Path) -> list[Path]:
    """The per-rank cache files (``cache.rank<R>.jsonl`` beside ``path``) of a sharded run not yet folded in."""
    return sorted(path.parent.glob(f"{path.stem}.rank*{path.suffix}"))


def _read_cache(path: Path) -> dict[str, dict[str, float]]:
    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        try:
            rec = json.loads(line)
            out[rec["key"]] = rec["values"]
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # a line cut by an interrupted run
    return out


def load_cache(path: Path) -> dict[str, dict[str, float]]:
    """Cached values by key: ``path`` and any per-rank files an interrupted sharded run left beside it."""
    out: dict[str, dict[str, float]] = {}
    for f in [*rank_caches(path), path]:
        out.update(_read_cache(f))
    return out


def _append(path: Path):
    """``path`` opened for appending, a line cut by an interrupted run first ended so the next record stays whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "a+b")
    if fh.tell() > 0:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) != b"\n":
            fh.write(b"\n")
    fh.close()
    return open(path, "a", encoding="utf-8")


def fold_cache(path: Path) -> None:
    """Append to ``path`` the entries of the per-rank cache files that it lacks, then remove those files. Run by the
    one process left writing (rank 0 after every rank has finished), so no two processes append to one file."""
    extra = rank_caches(path)
    if not extra:
        return
    have = _read_cache(path)
    with _append(path) as fh:
        for f in extra:
            for key, vals in _read_cache(f).items():
                if key not in have:
                    have[key] = vals
                    fh.write(json.dumps({"key": key, "values": vals}) + "\n")
    for f in extra:
        f.unlink()


def score_all(work: list[tuple[str, Path, Path, Path, str, list[str]]], cache_path: Path, jobs: int = 1,
              progress: bool = True, log: Path | None = None) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """Score the work items not in the cache (``jobs`` processes), appending each new row to ``log`` (default the
    cache itself; a sharded run gives each rank its own) as it arrives so an interrupted run resumes. Returns
    values by key and the failures' reasons by key."""
    from tqdm import tqdm

    cached = load_cache(cache_path)
    todo = [w for w in work if w[0] not in cached]
    failures: dict[str, str] = {}
    with _append(log or cache_path) as fh, \
            tqdm(total=len(todo), desc="score", unit="img", disable=not progress or not todo) as bar:
        def take(key: str, vals: dict[str, float] | None, reason: str) -> None:
            if vals is None:
                what = key.rsplit("|", 3)[0].replace("|", " ", 1).replace("|", "/")
                failures[key] = f"{what}: not scored: {reason}"
            else:
                cached[key] = vals
                fh.write(json.dumps({"key": key, "values": vals}) + "\n")
                fh.flush()
            bar.update()

        if jobs <= 1 or len(todo) <= 1:
            for w in todo:
                take(*score_item(w))
        else:
            ctx = multiprocessing.get_context("spawn")  # forking a process with OpenCV/BLAS threads can deadlock
            with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init_worker) as pool:
                for res in pool.map(score_item, todo, chunksize=max(1, len(todo) // (16 * jobs))):
                    take(*res)
    return cached, failures
