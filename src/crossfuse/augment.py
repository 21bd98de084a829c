"""CrossFuse's internal view: weak-aggressive augmentation and its loss weight schedule.

Two modes (``../shared/docs/METHOD.md`` section 2, ``docs/augment.md``):

* **paper-code** (:func:`paper_code_view`, :func:`paper_code_loss`) reproduces what the reference CrossFuse code
  does on the *fused output*: a random 32x32 crop and a Gaussian-blurred copy of it (kernel 9x21, sigma ~ U[0.1, 5]),
  MSE between the two. Gradient flows through both (as in the reference, which detaches neither).
* **consistency** (:func:`consistency_views`, :func:`shared_region`, :func:`consistency_loss`): a weak view of the
  *input pair* (random crop + horizontal flip) and an aggressive view (the same geometry, a small misregistration
  of one modality, and 1-2 random corruptions per sample from :mod:`crossfuse.corruptions`); the network fuses
  both and the loss is the L1 distance between the two fused outputs on their shared region, with the weak output
  detached as the target (self-supervision: the clean view teaches the corrupted one).

:func:`cosine_weight` is the paper's cosine decay of the self-supervised weight over phase II, counted from the
start of phase II (the reference's global-epoch bug fixed). All randomness is per sample and comes from a
``torch.Generator``; a seeded generator reproduces a batch exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from crossfuse.corruptions import (
    AUGMENT_POOL,
    CORRUPTIONS,
    HELD_OUT,
    _gen_device,
    check_batch,
    corrupt,
    gaussian_blur,
    list_corruptions,
    misregistration_margin,
    misregistration_params,
    uniform,
    warp_rigid,
)

__all__ = [
    "CORRUPTIONS", "AUGMENT_POOL", "HELD_OUT", "list_corruptions", "corrupt", "paper_code_view", "paper_code_loss",
    "Views", "consistency_views", "shared_region", "consistency_loss", "cosine_weight", "MODALITY_OF",
    "MISREGISTER",
]

# Which input a corruption may hit in the aggressive view ("both" = VIS, IR or both, drawn per sample).
MODALITY_OF: dict[str, str] = {
    "gaussian_noise": "both",
    "poisson_noise": "both",
    "blur": "both",
    "low_light": "vis",
    "contrast": "both",
    "haze": "both",
    "jpeg": "both",
    "stripe_noise": "ir",
    "misregistration": "both",
    "correlated_noise": "both",
    "column_fpn": "ir",
}
# Which modality the aggressive view's misregistration moves: "either" (IR or VIS, 1/2 each; the default) or "ir"
# (always the IR: the fused frame keeps the visible camera's geometry, as registration and the validation assume).
MISREGISTER = ("either", "ir")


def _randint(high: int, n: int, generator: torch.Generator | None) -> Tensor:
    return torch.randint(0, high, (n,), generator=generator, device=_gen_device(generator)).cpu()


def _crop_per_sample(x: Tensor, top: Tensor, left: Tensor, size_h: int, size_w: int) -> Tensor:
    """Crop ``(size_h, size_w)`` at a per-sample ``(top, left)``; differentiable in ``x``."""
    b = x.shape[0]
    dev = x.device
    rows = top.to(dev).view(b, 1) + torch.arange(size_h, device=dev).view(1, -1)  # (B, h)
    cols = left.to(dev).view(b, 1) + torch.arange(size_w, device=dev).view(1, -1)  # (B, w)
    bi = torch.arange(b, device=dev).view(b, 1, 1)
    out = x.permute(0, 2, 3, 1)[bi, rows[:, :, None], cols[:, None, :]]  # (B, h, w, C)
    return out.permute(0, 3, 1, 2)


# ------------------------------------------------------------------------------------------------ paper-code


def paper_code_view(fused: Tensor, generator: torch.Generator | None = None, crop: int = 32,
                    kernel: tuple[int, int] = (9, 21),
                    sigma: tuple[float, float] = (0.1, 5.0)) -> tuple[Tensor, Tensor]:
    """The reference code's views of the fused batch: a per-sample random ``crop`` x ``crop`` crop (weak) and a
    Gaussian-blurred copy of that same crop (aggressive).

    ``kernel`` is ``(width, height)`` as torchvision's ``GaussianBlur(kernel_size=(9, 21))`` the reference uses;
    sigma is drawn per sample from ``U[sigma[0], sigma[1]]`` and used on both axes (torchvision draws one sigma per
    call; per-sample draws are the only change). Borders are reflected. Both outputs carry gradient.
    """
    check_batch(fused, "fused")
    b, _, h, w = fused.shape
    if crop > h or crop > w or crop < 1:
        raise ValueError(f"crop {crop} does not fit the fused batch of size {h}x{w} (H x W)")
    if not 0 < sigma[0] <= sigma[1]:
        raise ValueError(f"sigma range must satisfy 0 < low <= high, got {sigma}")
    top = _randint(h - crop + 1, b, generator)
    left = _randint(w - crop + 1, b, generator)
    weak = _crop_per_sample(fused, top, left, crop, crop)
    s = uniform(b, sigma[0], sigma[1], generator, weak)
    return weak, gaussian_blur(weak, s, kernel)


def paper_code_loss(fused: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """MSE between :func:`paper_code_view`'s two views (reference CrossFuse self-supervised term)."""
    weak, aggressive = paper_code_view(fused, generator)
    return F.mse_loss(weak, aggressive)


# ------------------------------------------------------------------------------------------------ consistency


@dataclass(frozen=True)
class Views:
    """Weak and aggressive views of an IR/VIS batch, from :func:`consistency_views`.

    ``region`` is ``(top, left, height, width)`` in view coordinates: the part of every view that both fused
    outputs may be compared on (the border a misregistration may have filled is excluded). ``applied`` lists, per
    sample, the corruptions as ``"name@modality"`` (for logging).
    """

    ir_weak: Tensor
    vis_weak: Tensor
    ir_aggr: Tensor
    vis_aggr: Tensor
    region: tuple[int, int, int, int]
    applied: tuple[tuple[str, ...], ...] = ()


def consistency_views(ir: Tensor, vis: Tensor, generator: torch.Generator | None = None, crop: int | None = None,
                      severity: float = 1.0, corruptions: Sequence[str] | None = None,
                      misregister: str = "either") -> Views:
    """Weak and aggressive views of an IR ``(B, 1, H, W)`` / VIS ``(B, C, H, W)`` batch in ``[0, 1]``.

    * weak: a per-sample random ``crop`` x ``crop`` window (``None`` = the whole frame), horizontally flipped with
      probability 1/2; the same for IR and VIS.
    * aggressive: the weak views, then - if ``"misregistration"`` is in the pool - a misregistration of severity
      ``severity`` applied to one modality per sample (``misregister="either"``: IR or VIS with probability 1/2;
      ``"ir"``: always the IR, the visible frame being the output's geometry as at inference), then 1 or 2 (probability
      1/2 each) distinct corruptions per sample drawn from the pool without misregistration, each hitting the
      modality ``MODALITY_OF`` allows (for "both": VIS, IR or both, 1/3 each), at ``severity``.

    ``corruptions`` is the pool (default: ``AUGMENT_POOL``, the registered corruptions but the held-out two).
    """
    check_batch(ir, "ir")
    check_batch(vis, "vis")
    if ir.shape[0] != vis.shape[0] or ir.shape[2:] != vis.shape[2:]:
        raise ValueError(f"ir {tuple(ir.shape)} and vis {tuple(vis.shape)} must share batch size, height, width")
    if misregister not in MISREGISTER:
        raise ValueError(f"misregister must be one of {', '.join(MISREGISTER)}, got {misregister!r}")
    pool = list(AUGMENT_POOL if corruptions is None else corruptions)
    for name in pool:
        if name not in CORRUPTIONS:
            raise KeyError(f"unknown corruption {name!r}; valid names: {', '.join(CORRUPTIONS)}")
    b, _, h, w = ir.shape
    ch, cw = (h, w) if crop is None else (crop, crop)
    if ch > h or cw > w or ch < 1:
        raise ValueError(f"crop {crop} does not fit the input of size {h}x{w} (H x W)")
    top, left = _randint(h - ch + 1, b, generator), _randint(w - cw + 1, b, generator)
    flip = _randint(2, b, generator).bool()
    ir_w, vis_w = _crop_per_sample(ir, top, left, ch, cw), _crop_per_sample(vis, top, left, ch, cw)
    fl = flip.to(ir.device)
    ir_w = torch.where(fl.view(-1, 1, 1, 1), ir_w.flip(-1), ir_w)
    vis_w = torch.where(fl.view(-1, 1, 1, 1), vis_w.flip(-1), vis_w)

    ir_a, vis_a = ir_w.clone(), vis_w.clone()
    applied: list[list[str]] = [[] for _ in range(b)]
    margin = 0
    if "misregistration" in pool and severity > 0 and b > 0:
        margin = misregistration_margin(severity, ch, cw)
        which_ir = _randint(2, b, generator).bool()  # drawn either way: "ir" keeps the generator's sequence
        if misregister == "ir":
            which_ir = torch.ones_like(which_ir)
        shift, angle = misregistration_params(b, severity, generator, ir_w)
        ir_a = torch.where(which_ir.to(ir.device).view(-1, 1, 1, 1), warp_rigid(ir_a, shift, angle), ir_a)
        vis_a = torch.where(which_ir.to(ir.device).view(-1, 1, 1, 1), vis_a, warp_rigid(vis_a, shift, angle))
        for i in range(b):
            applied[i].append("misregistration@" + ("ir" if which_ir[i] else "vis"))
    if 2 * margin >= min(ch, cw):
        raise ValueError(f"misregistration severity {severity} leaves no shared region in a {ch}x{cw} view")

    draw = [n for n in pool if n != "misregistration"]
    if draw and severity > 0 and b > 0:
        n_each = 1 + _randint(2, b, generator)
        # per-sample random order of the pool; the first n_each names are used
        keys = torch.rand((b, len(draw)), generator=generator, device=_gen_device(generator)).cpu()
        order = keys.argsort(dim=1)
        target = _randint(3, b * len(draw), generator).view(b, len(draw))  # 0 vis, 1 ir, 2 both
        hits: dict[tuple[str, str], list[int]] = {}
        for i in range(b):
            for j in order[i, : int(n_each[i])].tolist():
                name = draw[j]
                allowed = MODALITY_OF.get(name, "both")
                mods = [allowed] if allowed != "both" else [("vis",), ("ir",), ("vis", "ir")][int(target[i, j])]
                for m in mods:
                    hits.setdefault((name, m), []).append(i)
                    applied[i].append(f"{name}@{m}")
        for name in draw:  # registry/pool order, so results do not depend on dict iteration
            for m, batch in (("vis", vis_a), ("ir", ir_a)):
                idx = hits.get((name, m))
                if idx:
                    sel = torch.tensor(sorted(idx), device=batch.device)
                    batch[sel] = corrupt(name, batch[sel], severity, generator, m)
    region = (margin, margin, ch - 2 * margin, cw - 2 * margin)
    return Views(ir_w, vis_w, ir_a, vis_a, region, tuple(tuple(a) for a in applied))


def shared_region(fused_weak: Tensor, fused_aggr: Tensor, views: Views) -> tuple[Tensor, Tensor]:
    """The parts of the two fused outputs that show the same scene content (``views.region``)."""
    if fused_weak.shape != fused_aggr.shape:
        raise ValueError(f"fused views differ in shape: {tuple(fused_weak.shape)} vs {tuple(fused_aggr.shape)}")
    if fused_weak.shape[-2:] != views.ir_weak.shape[-2:]:
        raise ValueError(f"fused views are {tuple(fused_weak.shape[-2:])}, the input views "
                         f"{tuple(views.ir_weak.shape[-2:])}")
    top, left, h, w = views.region
    return fused_weak[..., top:top + h, left:left + w], fused_aggr[..., top:top + h, left:left + w]


def consistency_loss(fused_weak: Tensor, fused_aggr: Tensor, views: Views) -> Tensor:
    """Mean absolute difference on the shared region, the weak output detached (it is the target)."""
    a, b = shared_region(fused_weak, fused_aggr, views)
    return F.l1_loss(b, a.detach())


# ------------------------------------------------------------------------------------------------ schedule


def cosine_weight(epoch: int, phase2_start: int, phase2_epochs: int, beta0: float = 0.1) -> float:
    """``beta0 * (1 + cos(pi * e / E_II)) / 2`` with ``e = epoch - phase2_start`` (paper's schedule, counted from
    the start of phase II as the paper says; the reference code used the global epoch). 0 before phase II and
    after its end."""
    if phase2_epochs <= 0:
        raise ValueError(f"phase2_epochs must be positive, got {phase2_epochs}")
    e = epoch - phase2_start
    if e < 0 or e >= phase2_epochs:
        return 0.0
    return beta0 * (1 + math.cos(math.pi * e / phase2_epochs)) / 2
