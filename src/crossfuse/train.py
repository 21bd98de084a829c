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

Resume (``resume=``) restores model, optimizer, scheduler, epoch, step, RNG states and the history; because every
patch and every augmentation draw is seeded by (seed, epoch, index/step), a resumed run continues exactly as an
uninterrupted one would. Under ``torchrun`` (``WORLD_SIZE > 1``) the model is wrapped in DistributedDataParallel
(gloo on CPU, nccl on CUDA), patches are split by a DistributedSampler and only rank 0 validates and writes.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import random
import socket
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from crossfuse import config as cfgmod
from crossfuse import data as datamod
from crossfuse import losses as lossmod
from crossfuse.augment import cosine_weight
from crossfuse.io import write_bytes_atomic
from crossfuse.metrics import compute_metrics
from crossfuse.nets import build

MASK64 = (1 << 63) - 1


# ------------------------------------------------------------------------------------------------ helpers


def fuse_array(net: torch.nn.Module, ir: np.ndarray, vis_y: np.ndarray,
               device: str | torch.device = "cpu") -> np.ndarray:
    """Fuse one uint8 ``(H, W)`` pair at full resolution (reflect-padded to ``net.pad_multiple``, cropped back);
    returns the fused Y as float64 on the 0-255 scale, rounded and clipped (as an 8-bit PNG would store it)."""
    m = int(getattr(net, "pad_multiple", 1))
    h, w = ir.shape
    ph, pw = (-h) % m, (-w) % m
    t = lambda a: torch.from_numpy(a.astype(np.float32) / 255.0)[None, None].to(device)  # noqa: E731
    a, b = t(ir), t(vis_y)
    if ph or pw:
        a = torch.nn.functional.pad(a, (0, pw, 0, ph), mode="reflect")
        b = torch.nn.functional.pad(b, (0, pw, 0, ph), mode="reflect")
    with torch.no_grad():
        f = net(a, b)[0, 0, :h, :w].float().cpu().numpy()
    return np.clip(np.round(f * 255.0), 0, 255).astype(np.float64)


def validate(net: torch.nn.Module, pairs: datamod.Pairs, vcfg: dict, device, reference: dict | None = None
             ) -> tuple[dict[str, float], dict[str, float]]:
    """Mean metrics of ``net`` over ``pairs`` and the per-metric reference (max fusion) used for the score."""
    fn = lambda ir, vi, f, names: compute_metrics(ir, vi, f, profile=vcfg["profile"], metrics=names)  # noqa: E731
    names = list(vcfg["metrics"])
    was_training = net.training
    net.eval()
    sums: dict[str, float] = {}
    ref_sums: dict[str, float] = {}
    for ir, vi in zip(pairs.ir, pairs.vis_y):
        f = fuse_array(net, ir, vi, device)
        for k, v in fn(ir.astype(np.float64), vi.astype(np.float64), f, names).items():
            sums[k] = sums.get(k, 0.0) + float(v)
        if reference is None:
            mx = np.maximum(ir, vi).astype(np.float64)
            for k, v in fn(ir.astype(np.float64), vi.astype(np.float64), mx, names).items():
                ref_sums[k] = ref_sums.get(k, 0.0) + float(v)
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


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


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


def _rng_state() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def lr_factor(epoch: int, sch: dict) -> float:
    """Step decay ``gamma ** (epoch // step)`` with the floor ``lr_min / lr``."""
    f = sch["lr_gamma"] ** (epoch // sch["lr_step"]) if sch["lr_step"] > 0 else 1.0
    return max(f, sch["lr_min"] / sch["lr"])


# ------------------------------------------------------------------------------------------------ trainer


def _setup_dist(cfg: dict) -> tuple[int, int, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    want = str(cfg["device"])
    if want.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"config device {want!r} but CUDA is not available")
    device = torch.device(f"cuda:{local}" if want.startswith("cuda") and world > 1 else want)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return rank, world, device


def train(cfg: dict, out_dir: str | os.PathLike | None = None, resume: str | os.PathLike | None = None,
          progress: bool = True, max_epochs: int | None = None) -> Path:
    """Run the training the resolved config ``cfg`` describes; returns the output folder.

    ``max_epochs`` stops this call after that many epochs (the schedule is unchanged; continue later with
    ``resume=out/last.pt``) - for time-sliced jobs and the resume test."""
    rank, world, device = _setup_dist(cfg)
    main = rank == 0
    if cfg["threads"] and device.type == "cpu":
        torch.set_num_threads(int(cfg["threads"]))
    seed = int(cfg["seed"])
    out = Path(out_dir or cfg["output"]["dir"] or Path("runs") / cfg["name"])
    if main:
        out.mkdir(parents=True, exist_ok=True)
        if resume is None and (out / "last.pt").exists():
            raise FileExistsError(f"{out / 'last.pt'} exists; pass --resume {out / 'last.pt'} or another --out")

    d = cfg["data"]
    split = datamod.make_split(cfgmod.data_path(cfg, d["target"]),
                               cfgmod.data_path(cfg, d["exclude_list"]) if d["exclude_list"] else None,
                               int(d["val_count"]), seed)
    train_pairs = datamod.load_pairs(cfgmod.data_path(cfg, d["target"]), split.train)
    val_pairs = datamod.load_pairs(cfgmod.data_path(cfg, d["target"]), split.val[: int(d["val_max_pairs"])])
    external = None
    if d["external"]:
        parts = [datamod.load_external(p) for p in d["external"]]
        external = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    ds = datamod.PatchDataset(train_pairs, d["patch"], d["patches_per_epoch"], seed, d["flip"], external,
                              float(d["external_ratio"]))
    sampler = DistributedSampler(ds, world, rank, shuffle=False, drop_last=True) if world > 1 else None
    loader = DataLoader(ds, batch_size=d["batch_size"], shuffle=False, sampler=sampler, drop_last=True,
                        num_workers=int(d["workers"]), persistent_workers=False)

    torch.manual_seed(seed)
    net = build(cfg["model"]["name"], **cfg["model"]["config"]).to(device)
    sch = cfg["schedule"]
    p1, p2 = int(sch["phase1_epochs"]), int(sch["phase2_epochs"])
    if p1 > 0 and not getattr(net, "supports_phase1", False):
        raise cfgmod.ConfigError(f"{cfg.get('_source')}: network {cfg['model']['name']!r} has no phase I; "
                                 "set schedule.phase1_epochs = 0")
    model = torch.nn.parallel.DistributedDataParallel(net) if world > 1 else net
    opt = torch.optim.Adam(net.parameters(), lr=sch["lr"], weight_decay=sch["weight_decay"])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: lr_factor(e, sch))
    start_epoch, step, best, history = 0, 0, -math.inf, []
    reference = None
    if resume is not None:
        ck = torch.load(resume, map_location=device, weights_only=False)
        net.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        start_epoch, step, best, history = ck["epoch"], ck["step"], ck["best_score"], ck["history"]
        reference = ck.get("val_reference")
        _set_rng_state(ck["rng"])
    if main:
        write_bytes_atomic(out / "config.toml", cfgmod.to_toml(cfg), overwrite=True)
        env = environment(device, world)
        env.update(train_pairs=len(train_pairs), val_pairs=len(val_pairs), val_stems=val_pairs.stems,
                   external_patches=0 if external is None else len(external[0]), parameters=sum(
                       p.numel() for p in net.parameters()))
        write_bytes_atomic(out / "env.json", json.dumps(env, indent=2) + "\n", overwrite=True)

    total = p1 + p2
    t_start = time.time()
    from tqdm import tqdm

    stop = total if max_epochs is None else min(total, start_epoch + int(max_epochs))
    for epoch in range(start_epoch, stop):
        phase = 1 if epoch < p1 else 2
        weights = cfg[f"phase{phase}"]["losses"]
        ssl_factor = (cosine_weight(epoch, p1, p2, beta0=1.0) if cfg["ssl"]["beta0_schedule"] == "cosine" else 1.0
                      ) if phase == 2 else 0.0
        ds.set_epoch(epoch)
        if sampler is not None:
            sampler.set_epoch(epoch)
        model.train()
        sums: dict[str, float] = {}
        n = 0
        t0 = time.time()
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{total} (phase {phase})", disable=not (main and progress),
                   mininterval=10, leave=False)
        for ir, vis in bar:
            ir, vis = ir.to(device), vis.to(device)
            gen = torch.Generator(device="cpu").manual_seed(hash((seed, epoch, step, rank)) & MASK64)
            if world > 1:  # DDP hooks only run through the wrapper's forward: route forward_train through it
                out_t = _ddp_forward_train(model, ir, vis, phase)
            else:
                out_t = net.forward_train(ir, vis, phase)
            ctx = lossmod.StepContext(ir=ir, vis=vis, out=out_t, net=model, generator=gen, ssl=cfg["ssl"],
                                      options=cfg["loss_options"])
            loss, parts = lossmod.total_loss(weights, ctx, ssl_factor)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if sch["clip_grad"] > 0:
                torch.nn.utils.clip_grad_norm_(net.parameters(), sch["clip_grad"])
            opt.step()
            step += 1
            n += 1
            parts["total"] = float(loss.detach())
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
            if n % 20 == 0:
                bar.set_postfix(loss=f"{sums['total'] / n:.4f}")
        sched.step()
        row: dict[str, Any] = {"epoch": epoch + 1, "phase": phase, "step": step, "lr": opt.param_groups[0]["lr"],
                               "ssl_factor": ssl_factor, "train_s": round(time.time() - t0, 2)}
        row.update({f"loss_{k}": v / max(n, 1) for k, v in sums.items()})
        if main:
            is_val = cfg["validation"]["every"] > 0 and len(val_pairs) and (
                (epoch + 1) % cfg["validation"]["every"] == 0 or epoch + 1 == total)
            if is_val and phase == 2:
                t1 = time.time()
                means, reference = validate(net, val_pairs, cfg["validation"], device, reference)
                row.update({f"val_{k}": v for k, v in means.items()})
                row["val_score"] = score(means, reference)
                row["val_s"] = round(time.time() - t1, 2)
            row["elapsed_s"] = round(time.time() - t_start, 1)
            history.append(row)
            ck = {"model": net.state_dict(), "net": cfg["model"]["name"], "net_config": dict(net.config),
                  "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "epoch": epoch + 1, "step": step,
                  "rng": _rng_state(), "best_score": best, "history": history, "val_reference": reference,
                  "config": {k: v for k, v in cfg.items() if not k.startswith("_")}}
            improved = "val_score" in row and math.isfinite(row["val_score"]) and row["val_score"] > best
            if improved:
                best = ck["best_score"] = row["val_score"]
                _atomic_save(ck, out / "best.pt")
            _atomic_save(ck, out / "last.pt")
            keep = int(cfg["output"]["keep_every"])
            if keep and (epoch + 1) % keep == 0:
                _atomic_save(ck, out / f"epoch{epoch + 1:04d}.pt")
            _write_csv(history, out / "log.csv")
            try:
                plot_history(history, out / "loss.png")
            except Exception as exc:  # a plotting problem must never stop a training run
                print(f"warning: loss plot failed: {exc}", file=sys.stderr)
            msg = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
                           if k.startswith(("epoch", "loss_total", "val_score", "lr", "train_s", "elapsed")))
            print(msg + (" *best*" if improved else ""), flush=True)
    if world > 1:
        dist.barrier()
    return out


def _ddp_forward_train(model, ir, vis, phase):
    """Call ``forward_train`` through DDP's forward machinery (so gradient sync hooks are armed)."""
    inner = model.module
    orig = inner.forward
    inner.forward = lambda a, b: inner.forward_train(a, b, phase)  # type: ignore[method-assign]
    try:
        return model(ir, vis)
    finally:
        inner.forward = orig  # type: ignore[method-assign]


def _write_csv(history: list[dict], path: Path) -> None:
    keys: list[str] = []
    for h in history:
        keys += [k for k in h if k not in keys]
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    for h in history:
        w.writerow(h)
    write_bytes_atomic(path, buf.getvalue(), overwrite=True)


__all__ = ["train", "validate", "score", "fuse_array", "lr_factor", "plot_history", "environment"]
