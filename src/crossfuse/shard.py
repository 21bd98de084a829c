"""Sharded runs under ``torchrun``: split a batch by rank, gather the results on rank 0 (``docs/sharding.md``).

``torchrun --nproc_per_node N crossfuse ...`` (or several nodes with ``--nnodes``/``--rdzv-endpoint``) starts N
copies of the command with ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` set. Every copy plans the
same sorted job list and takes every ``WORLD_SIZE``-th job from its ``RANK`` (:func:`take`); the results are
gathered over a gloo process group (CPU, works across nodes) and merged on rank 0, which alone prints and writes
the merged CSV / JSON / report. Without ``WORLD_SIZE`` (or with 1) nothing changes: no process group is made.

Fused images are written by the rank that made them, each to its own file in the one output folder, so on several
nodes ``--out`` must be a shared file system; the files are byte-identical to a one-process run because every
pair goes through the same :class:`crossfuse.infer.Fuser` path.
"""

from __future__ import annotations

import dataclasses
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator, Sequence, TypeVar

from crossfuse.errors import InputError

T = TypeVar("T")


def _env_int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InputError(f"environment variable {name}={raw!r} is not an integer") from None


@dataclass(frozen=True)
class Shard:
    rank: int = 0
    world: int = 1

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Shard":
        """This process's rank and the world size from torchrun's ``RANK`` / ``WORLD_SIZE`` (default 0 of 1)."""
        e = dict(os.environ if env is None else env)
        world, rank = _env_int(e, "WORLD_SIZE", 1), _env_int(e, "RANK", 0)
        if world < 1 or not 0 <= rank < world:
            raise InputError(f"RANK={rank} / WORLD_SIZE={world}: need 0 <= RANK < WORLD_SIZE")
        return cls(rank, world)

    @property
    def active(self) -> bool:
        return self.world > 1

    def take(self, items: Sequence[T]) -> list[T]:
        """This rank's jobs: every ``world``-th item starting at ``rank`` (items in the same order on every rank)."""
        return list(items[self.rank::self.world])

    @contextmanager
    def session(self) -> Iterator[None]:
        """Hold one gloo process group (torchrun's ``MASTER_ADDR``/``MASTER_PORT``) for several :meth:`gather` calls,
        e.g. one per dataset; nothing in a one-process run or when a group exists already."""
        if not self.active:
            yield
            return
        import torch.distributed as dist

        made = not dist.is_initialized()
        if made:
            dist.init_process_group("gloo", rank=self.rank, world_size=self.world)
        try:
            yield
        finally:
            if made:
                dist.destroy_process_group()

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj`` on rank 0 (in rank order), ``None`` on the others; ``[obj]`` in a one-process run.

        Outside a :meth:`session` it joins the process group for this one exchange and leaves it."""
        if not self.active:
            return [obj]
        import torch.distributed as dist

        with self.session():
            out: list[Any] | None = [None] * self.world if self.rank == 0 else None
            dist.gather_object(obj, out, dst=0)
            return out

    def merged(self, obj: Any, merge: Any = None) -> Any:
        """Gather ``obj`` from every rank and merge it on rank 0 (``merge(parts)``, default :func:`merge_fields`);
        ``None`` on the other ranks, ``obj`` itself in a one-process run."""
        if not self.active:
            return obj
        parts = self.gather(obj)
        return None if parts is None else (merge or merge_fields)(parts)


def _unique(items: list[T]) -> list[T]:
    return list(dict.fromkeys(items))


def merge_eval(parts: list[Any]) -> Any:
    """One :class:`~crossfuse.metrics.EvalResult` from the ranks' results: rows in stem order (as one process
    scores them), skipped triplets once each (pairing problems are found by every rank), sorted."""
    rows = sorted((r for p in parts for r in p.rows), key=lambda r: r[0])
    skipped = sorted(_unique([s for p in parts for s in p.skipped]))
    return dataclasses.replace(parts[0], rows=rows, skipped=skipped)


def merge_lists(parts: list[list[T]]) -> list[T]:
    """Lists of names (or (name, reason) pairs) from every rank: each once, sorted."""
    return sorted(_unique([x for p in parts for x in p]))


def merge_keyed(parts: list[list[tuple[Any, T]]]) -> list[tuple[Any, T]]:
    """``(key, item)`` lists from every rank as one list in key order: with each job on one rank only, the order
    one process makes when it sorts by the same key."""
    return sorted((kv for p in parts for kv in p), key=lambda kv: kv[0])


def merge_fields(parts: list[Any]) -> Any:
    """A dataclass whose fields are all lists (e.g. the fuse summary), merged field by field (:func:`merge_lists`)."""
    return dataclasses.replace(parts[0], **{f.name: merge_lists([getattr(p, f.name) for p in parts])
                                            for f in dataclasses.fields(parts[0])})


__all__ = ["Shard", "merge_eval", "merge_keyed", "merge_lists", "merge_fields"]
