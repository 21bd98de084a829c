"""One trainer for both phases of CrossFuse-style training, driven by a config (:mod:`crossfuse.config`).

Schedule (``../shared/docs/METHOD.md`` section 4, bugs fixed): ``schedule.phase1_epochs`` epochs of reconstruction
(``[phase1.losses]``, networks with ``supports_phase1`` only) then ``schedule.phase2_epochs`` epochs of fusion
(``[phase2.losses]``). Adam; the learning rate is multiplied by ``lr_gamma`` every ``lr_step`` epochs, never below
``lr_min``; gradients clipped to norm ``clip_grad``. Self-supervised terms (``scheduled`` in
:data:`crossfuse.losses.LOSSES`) are weighted ``w * (1 + cos(pi * e / E_II)) / 2`` with ``e`` counted from the start
of phase II (the reference code used the global epoch).

Each epoch: train on ``patches_per_epoch`` random patches; validate on the held-out pairs at full resolution with
:mod:`crossfuse.metrics` (``validation.profile``), score = mean over the metrics of ``model / max-fusion`` (the
pixel-wise max of the sources scored on the same pairs, computed once), each ratio capped at 1.2;
write ``last.pt`` (and ``best.pt`` when the score improves), ``log.csv``, ``loss.png``; the resolved config
(``config.toml``) and the environment (``env.json``) are written once beside them.

Checkpoints hold only tensors and plain Python values (the NumPy RNG state as a tensor and ints), so they load with
``torch.load(..., weights_only=True)`` (:func:`crossfuse.models.read_checkpoint`); validation fuses through the
same :class:`crossfuse.infer.Fuser` path as ``crossfuse fuse --gray`` (8-bit fused Y).

With ``schedule.ema = d > 0`` an exponential moving average of the weights (``torch.optim.swa_utils.AveragedModel``,
decay ``d`` per step) is what validation scores and what ``model`` in the checkpoints holds (so export, inference and
every benchmark use it); the raw weights Adam trains are kept beside it for resume.

Resume (``resume=``) restores model, optimizer, scheduler, epoch, step, RNG states and the history; because every
patch and every augmentation draw is seeded by (seed, epoch, index/step), a resumed run continues exactly as an
uninterrupted one would. Under ``torchrun`` (``WORLD_SIZE > 1``) the model is wrapped in DistributedDataParallel
(gloo on CPU, nccl on CUDA), patches are split by a DistributedSampler and only rank 0 validates and writes.
"""

from __future__ import annotations

import io
import json
import math
import os
import platform
import random
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from crossfuse import config as cfgmod
from crossfuse import data as datamod
from crossfuse import losses as lossmod
from crossfuse.augment import cosine_weight
from crossfuse.errors import CheckpointError
from crossfuse.io import csv_text, write_bytes_atomic
from crossfuse.metrics import compute_metrics
from crossfuse.models import pt_bytes, read_checkpoint
from crossfuse.nets import build
from crossfuse.veil import lift_veil_batch

MASK64 = (1 << 63) - 1


# ------------------------------------------------------------------------------------------------ helpers


def validate(net: torch.nn.Module, pairs: datamod.Pairs, vcfg: dict, device, reference: dict | None = None
             ) -> tuple[dict[str, float], dict[str, float]]:
    """Mean metrics of ``net`` over ``pairs`` and the per-metric reference (max fusion) used for the score.

    Each pair is fused by :class:`crossfuse.infer.Fuser` exactly as ``crossfuse fuse --gray`` does (8-bit Y)."""
    from crossfuse.infer import Fuser

    names = list(vcfg["metrics"])
    fn = lambda ir, vi, f: compute_metrics(ir, vi, f, profile=vcfg["profile"], metrics=names)  # noqa: E731
    was_training = net.training
    sums: dict[str, float] = {}
    ref_sums: dict[str, float] = {}
    try:
        fuser = Fuser(net, device=str(device))
        for ir, vi in zip(pairs.ir, pairs.vis_y):
            for k, v in fn(ir, vi, fuser.fuse(ir, vi, gray=True, dtype=np.uint8)).items():
                sums[k] = sums.get(k, 0.0) + float(v)
            if reference is None:
                for k, v in fn(ir, vi, np.maximum(ir, vi)).items():
                    ref_sums[k] = ref_sums.get(k, 0.0) + float(v)
    finally:
        net.train(was_training)
    n = max(len(pairs), 1)
    means = {k: v / n for k, v in sums.items()}
    ref = reference if reference is not None else {k: v / n for k, v in ref_sums.items()}
    return means, ref


def score(means: dict[str, float], ref: dict[str, float], cap: float = 1.2) -> float:
    """Mean over metrics of ``min(value / reference, cap)`` (all cddfuse metrics are higher-is-better).

    The cap keeps a degenerate output (noise: huge SD and SF, near-zero MI, VIF, SSIM) from outscoring a real
    fusion; within it, beating max-fusion on a metric counts, by a bounded amount."""
    vals = [min(means[k] / ref[k], cap) if math.isfinite(means[k]) else 0.0
            for k in means if k in ref and abs(ref[k]) > 1e-12]
    return float(np.mean(vals)) if vals else float("nan")


def environment(device: torch.device, world: int) -> dict[str, Any]:
    env = {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__,
           "platform": platform.platform(), "host": socket.gethostname(), "device": str(device),
           "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(), "world_size": world}
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def plot_history(history: list[dict], path: Path) -> None:
    """Loss terms and the validation score per epoch, as a PNG (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ep = [h["epoch"] for h in history]
    keys = sorted({k for h in history for k in h if k.startswith("loss")})
    for k in keys:
        ax1.plot(ep, [h.get(k, np.nan) for h in history], label=k)
    ax1.set_yscale("log")
    ax1.set_xlabel("epoch")
    ax1.legend(fontsize=7)
    ax1.set_title("training loss (mean per epoch)")
    ax2.plot(ep, [h.get("val_score", np.nan) for h in history], marker="o")
    ax2.set_xlabel("epoch")
    ax2.set_title("validation score (mean of metric / max-fusion)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue(), overwrite=True)


def plain(obj: Any) -> Any:
    """NumPy scalars/arrays inside dicts, lists and tuples -> Python numbers/lists (for the safe loader)."""
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(plain(v) for v in obj)
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj


def _rng_state() -> dict[str, Any]:
    """RNG states in forms ``torch.load(weights_only=True)`` accepts (no NumPy arrays)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(), "python": random.getstate(),
            "numpy": {"kind": str(kind), "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}}


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    if isinstance(n, dict):
        n = (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    np.random.set_state(n)  # a tuple: checkpoints of older versions
    random.setstate(state["python"])


def lr_factor(epoch: int, sch: dict) -> float:
    """Step decay ``gamma ** (epoch // step)`` with the floor ``lr_min / lr``."""
    f = sch["lr_gamma"] ** (epoch // sch["lr_step"]) if sch["lr_step"] > 0 else 1.0
    return max(f, sch["lr_min"] / sch["lr"])


def _write_csv(history: list[dict], path: Path) -> None:
    write_bytes_atomic(path, csv_text(history), overwrite=True)


class _TrainForward(torch.nn.Module):
    """DDP runs its gradient-sync hooks only through the wrapped module's ``forward``: route ``forward_train``
    (``phase`` given) and the plain forward (losses that fuse extra views) through this one."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, ir: torch.Tensor, vis: torch.Tensor, phase: int | None = None) -> Any:
        return self.net(ir, vis) if phase is None else self.net.forward_train(ir, vis, phase)


# ------------------------------------------------------------------------------------------------ trainer steps


@dataclass
class Data:
    train: datamod.Pairs
    val: datamod.Pairs
    external: tuple[np.ndarray, np.ndarray] | None
    dataset: datamod.PatchDataset
    sampler: DistributedSampler | None
    loader: DataLoader


@dataclass
class State:
    """What a checkpoint restores besides the weights and the optimizer."""

    epoch: int = 0
    step: int = 0
    best: float = -math.inf
    history: list[dict] = field(default_factory=list)
    reference: dict[str, float] | None = None


@dataclass
class Run:
    cfg: dict
    rank: int
    world: int
    device: torch.device
    out: Path
    data: Data
    net: torch.nn.Module
    model: torch.nn.Module  # what the loss calls: the network, or its DDP wrapper
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    progress: bool = True
    ema: AveragedModel | None = None  # schedule.ema > 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def kept(self) -> torch.nn.Module:
        """The weights that are validated and saved as ``model``: the moving average if there is one."""
        return self.net if self.ema is None else self.ema.module


def _setup_dist(cfg: dict) -> tuple[int, int, torch.device, bool]:
    """This process's rank, the world size, its device, and whether it made the process group (and so leaves it)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    want = str(cfg["device"])
    if want.startswith("cuda") and not torch.cuda.is_available():
        raise cfgmod.ConfigError(f"{cfg.get('_source')}: device {want!r} but CUDA is not available")
    device = torch.device(f"cuda:{local}" if want.startswith("cuda") and world > 1 else want)
    made = world > 1 and not dist.is_initialized()
    if made:
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if cfg["threads"] and device.type == "cpu":
        torch.set_num_threads(int(cfg["threads"]))
    return rank, world, device, made


def _out_folder(cfg: dict, out_dir: str | os.PathLike | None, resume: str | os.PathLike | None) -> Path:
    """The output folder (not created yet: nothing is written before the data and the model are ready)."""
    out = Path(out_dir or cfg["output"]["dir"] or Path("runs") / cfg["name"])
    if resume is None and (out / "last.pt").exists():
        raise FileExistsError(f"{out / 'last.pt'} exists; pass --resume {out / 'last.pt'} or another --out")
    return out


def _load_data(cfg: dict, world: int, rank: int) -> Data:
    d, seed = cfg["data"], int(cfg["seed"])
    target = cfgmod.data_path(cfg, d["target"])
    split = datamod.make_split(target, cfgmod.data_path(cfg, d["exclude_list"]) if d["exclude_list"] else None,
                               int(d["val_count"]), seed)
    train_pairs = datamod.load_pairs(target, split.train)
    val_pairs = datamod.load_pairs(target, split.val[: int(d["val_max_pairs"])])
    external = None
    if d["external"]:
        parts = [datamod.load_external(p) for p in d["external"]]
        external = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    ds = datamod.PatchDataset(train_pairs, d["patch"], d["patches_per_epoch"], seed, d["flip"], external,
                              float(d["external_ratio"]))
    sampler = DistributedSampler(ds, world, rank, shuffle=False, drop_last=True) if world > 1 else None
    loader = DataLoader(ds, batch_size=d["batch_size"], shuffle=False, sampler=sampler, drop_last=True,
                        num_workers=int(d["workers"]), persistent_workers=False)
    return Data(train_pairs, val_pairs, external, ds, sampler, loader)


def _build_model(cfg: dict, device: torch.device, world: int) -> tuple[torch.nn.Module, torch.nn.Module,
                                                                       torch.optim.Optimizer, Any]:
    torch.manual_seed(int(cfg["seed"]))
    net = build(cfg["model"]["name"], **cfg["model"]["config"]).to(device)
    model = torch.nn.parallel.DistributedDataParallel(_TrainForward(net)) if world > 1 else net
    sch = cfg["schedule"]
    opt = torch.optim.Adam(net.parameters(), lr=sch["lr"], weight_decay=sch["weight_decay"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: lr_factor(e, sch))
    return net, model, opt, sched


def _resume(path: str | os.PathLike, run: Run) -> State:
    """Restore a training checkpoint (read with the safe loader) into ``run``; returns the saved progress."""
    blob = read_checkpoint(path)
    if blob["kind"] != "checkpoint" or not {"optimizer", "scheduler", "rng"} <= set(blob["checkpoint"]):
        raise CheckpointError(f"{path}: not a training checkpoint (last.pt / best.pt of crossfuse train)")
    ck = blob["checkpoint"]
    try:
        run.net.load_state_dict(ck["model"])
        run.opt.load_state_dict(ck["optimizer"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path}: does not fit the config's network/optimizer ({str(exc)[:160]})") from None
    if ("train_model" in ck) != (run.ema is not None):
        raise CheckpointError(f"{path}: schedule.ema is {'off' if run.ema is None else 'on'} in the config but "
                              f"{'on' if 'train_model' in ck else 'off'} in the checkpoint")
    if run.ema is not None:  # "model" is the average, "train_model" the weights Adam trains
        run.net.load_state_dict(ck["train_model"])
        run.ema.module.load_state_dict(ck["model"])
        run.ema.n_averaged.fill_(int(ck["ema_n"]))
    run.sched.load_state_dict(ck["scheduler"])
    _set_rng_state(ck["rng"])
    return State(ck["epoch"], ck["step"], ck["best_score"], list(ck["history"]), ck.get("val_reference"))


def _write_run_info(run: Run) -> None:
    """The resolved config and the environment, written once beside the checkpoints."""
    run.out.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(run.out / "config.toml", cfgmod.to_toml(run.cfg), overwrite=True)
    env = environment(run.device, run.world)
    d = run.data
    env.update(train_pairs=len(d.train), val_pairs=len(d.val), val_stems=d.val.stems,
               external_patches=0 if d.external is None else len(d.external[0]),
               parameters=sum(p.numel() for p in run.net.parameters()))
    write_bytes_atomic(run.out / "env.json", json.dumps(env, indent=2) + "\n", overwrite=True)


def _phases(cfg: dict) -> tuple[int, int]:
    return int(cfg["schedule"]["phase1_epochs"]), int(cfg["schedule"]["phase2_epochs"])


def _train_epoch(run: Run, epoch: int, state: State) -> dict[str, Any]:
    """One epoch of patches; returns the log row (lr = the rate used during this epoch)."""
    from tqdm import tqdm

    cfg, (p1, p2) = run.cfg, _phases(run.cfg)
    phase = 1 if epoch < p1 else 2
    weights = cfg[f"phase{phase}"]["losses"]
    cosine = cfg["ssl"]["beta0_schedule"] == "cosine"
    ssl_factor = (cosine_weight(epoch, p1, p2, beta0=1.0) if cosine else 1.0) if phase == 2 else 0.0
    run.data.dataset.set_epoch(epoch)
    if run.data.sampler is not None:
        run.data.sampler.set_epoch(epoch)
    row: dict[str, Any] = {"epoch": epoch + 1, "phase": phase, "step": 0, "lr": run.opt.param_groups[0]["lr"],
                           "ssl_factor": float(ssl_factor)}
    run.model.train()
    sums: dict[str, float] = {}
    n, t0, clip = 0, time.time(), run.cfg["schedule"]["clip_grad"]
    bar = tqdm(run.data.loader, desc=f"epoch {epoch + 1}/{p1 + p2} (phase {phase})", mininterval=10, leave=False,
               disable=not (run.main and run.progress))
    veil = float(run.net.vis_veil) if cfg["data"]["veil"] else 0.0  # what Fuser does to frames, done to crops
    for ir, raw in bar:
        ir, raw = ir.to(run.device), raw.to(run.device)
        vis = lift_veil_batch(raw, veil) if veil else raw
        gen = torch.Generator(device="cpu").manual_seed(hash((int(cfg["seed"]), epoch, state.step, run.rank)) & MASK64)
        out_t = run.model(ir, vis, phase) if run.world > 1 else run.net.forward_train(ir, vis, phase)
        ctx = lossmod.StepContext(ir=ir, vis=vis, out=out_t, net=run.model, generator=gen, ssl=cfg["ssl"],
                                  options=cfg["loss_options"], vis_raw=raw if veil else None, veil=veil)
        loss, parts = lossmod.total_loss(weights, ctx, ssl_factor)
        run.opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(run.net.parameters(), clip)
        run.opt.step()
        if run.ema is not None:
            run.ema.update_parameters(run.net)
        state.step, n = state.step + 1, n + 1
        parts["total"] = float(loss.detach())
        for k, v in parts.items():
            sums[k] = sums.get(k, 0.0) + float(v)
        if n % 20 == 0:
            bar.set_postfix(loss=f"{sums['total'] / n:.4f}")
    run.sched.step()
    row.update(step=state.step, train_s=round(time.time() - t0, 2))
    row.update({f"loss_{k}": v / max(n, 1) for k, v in sums.items()})
    return row


def _validate_epoch(run: Run, epoch: int, state: State, row: dict[str, Any]) -> None:
    """Validation (phase II, every ``validation.every`` epochs and at the end): adds val_* columns to ``row``."""
    vcfg, total = run.cfg["validation"], sum(_phases(run.cfg))
    due = vcfg["every"] > 0 and len(run.data.val) and ((epoch + 1) % vcfg["every"] == 0 or epoch + 1 == total)
    if not due or row["phase"] != 2:
        return
    t1 = time.time()
    means, state.reference = validate(run.kept, run.data.val, vcfg, run.device, state.reference)
    row.update({f"val_{k}": v for k, v in means.items()})
    row["val_score"] = score(means, state.reference)
    row["val_s"] = round(time.time() - t1, 2)


def _save_checkpoints(run: Run, epoch: int, state: State, row: dict[str, Any]) -> bool:
    """``last.pt`` every epoch, ``best.pt`` when the validation score improves, ``epochNNNN.pt`` if asked."""
    improved = "val_score" in row and math.isfinite(row["val_score"]) and row["val_score"] > state.best
    if improved:
        state.best = row["val_score"]
    cfg = run.cfg
    ck = {"model": run.kept.state_dict(), "net": cfg["model"]["name"], "net_config": plain(dict(run.net.config)),
          "optimizer": run.opt.state_dict(), "scheduler": plain(run.sched.state_dict()), "epoch": epoch + 1,
          "step": state.step, "rng": _rng_state(), "best_score": state.best, "history": plain(state.history),
          "val_reference": plain(state.reference), "config": plain({k: v for k, v in cfg.items()
                                                                    if not k.startswith("_")})}
    if run.ema is not None:
        ck.update(train_model=run.net.state_dict(), ema_n=int(run.ema.n_averaged))
    data = pt_bytes(ck)  # serialised once for every file written this epoch
    if improved:
        write_bytes_atomic(run.out / "best.pt", data, overwrite=True)
    write_bytes_atomic(run.out / "last.pt", data, overwrite=True)
    keep = int(cfg["output"]["keep_every"])
    if keep and (epoch + 1) % keep == 0:
        write_bytes_atomic(run.out / f"epoch{epoch + 1:04d}.pt", data, overwrite=True)
    return improved


def _log_epoch(run: Run, state: State, row: dict[str, Any], improved: bool) -> None:
    """``log.csv``, ``loss.png`` and one line on stdout."""
    _write_csv(state.history, run.out / "log.csv")
    try:
        plot_history(state.history, run.out / "loss.png")
    except Exception as exc:  # a plotting problem must never stop a training run
        print(f"warning: loss plot failed: {exc}", file=sys.stderr)
    msg = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
                   if k.startswith(("epoch", "loss_total", "val_score", "lr", "train_s", "elapsed")))
    print(msg + (" *best*" if improved else ""), flush=True)


# ------------------------------------------------------------------------------------------------ trainer


def train(cfg: dict, out_dir: str | os.PathLike | None = None, resume: str | os.PathLike | None = None,
          progress: bool = True, max_epochs: int | None = None, max_minutes: float | None = None) -> Path:
    """Run the training the resolved config ``cfg`` describes; returns the output folder.

    ``max_epochs`` stops this call after that many epochs, ``max_minutes`` after the first epoch that ends past that
    much wall time (rank 0's clock decides for every rank); the schedule is unchanged and each epoch's checkpoint is
    written, so ``resume=out/last.pt`` continues exactly - for time-sliced jobs (a lent GPU's window, a CI box) and
    the resume test. Nothing is written before the data, the network and the checkpoint to resume from have been
    read, so a bad config or file leaves no run folder."""
    if max_minutes is not None and not float(max_minutes) >= 0:
        raise ValueError(f"max_minutes must be >= 0, got {max_minutes}")
    rank, world, device, owns_group = _setup_dist(cfg)
    try:
        return _train(cfg, rank, world, device, out_dir, resume, progress, max_epochs, max_minutes)
    finally:
        if owns_group and dist.is_initialized():
            # left here rather than to interpreter exit, where gloo's worker threads can still hold work whose
            # tensors need the interpreter: a process that never destroys its group may abort as it exits
            dist.destroy_process_group()


def _out_of_time(run: Run, t_start: float, max_minutes: float | None) -> bool:
    """Whether the wall-time budget is spent, as rank 0 sees it (every rank gets its answer, so all stop together)."""
    if max_minutes is None:
        return False
    spent = torch.tensor([float(time.time() - t_start >= 60.0 * float(max_minutes))], device=run.device)
    if run.world > 1:
        dist.broadcast(spent, src=0)
    return bool(spent.item())


def _train(cfg: dict, rank: int, world: int, device: torch.device, out_dir: str | os.PathLike | None,
           resume: str | os.PathLike | None, progress: bool, max_epochs: int | None,
           max_minutes: float | None = None) -> Path:
    out = _out_folder(cfg, out_dir, resume)
    data = _load_data(cfg, world, rank)
    net, model, opt, sched = _build_model(cfg, device, world)
    decay = float(cfg["schedule"]["ema"])
    ema = AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True) if decay > 0 else None
    run = Run(cfg, rank, world, device, out, data, net, model, opt, sched, progress, ema)
    state = _resume(resume, run) if resume is not None else State()
    if run.main:
        _write_run_info(run)
    total = sum(_phases(cfg))
    stop = total if max_epochs is None else min(total, state.epoch + int(max_epochs))
    t_start = time.time()
    for epoch in range(state.epoch, stop):
        row = _train_epoch(run, epoch, state)
        state.epoch = epoch + 1
        if run.main:
            _validate_epoch(run, epoch, state, row)
            row["elapsed_s"] = round(time.time() - t_start, 1)
            state.history.append(row)
            improved = _save_checkpoints(run, epoch, state, row)
            _log_epoch(run, state, row, improved)
        if state.epoch < stop and _out_of_time(run, t_start, max_minutes):
            if run.main:
                print(f"stopped after epoch {state.epoch} of {total}: {max_minutes} min of wall time spent; "
                      f"continue with --resume {out / 'last.pt'}", flush=True)
            break
    if world > 1:
        dist.barrier()  # rank 0's validation and checkpoint are written before any rank leaves the group
    return out


__all__ = ["train", "validate", "score", "lr_factor", "plot_history", "environment", "plain"]
