"""Training losses: pure functions on (B, 1, H, W) tensors in [0, 1], and one registry the configs name.

Pure functions (each documents the reference it follows, ``../shared/docs/METHOD.md`` section 4):

* :func:`intensity_max` - ``||max(V, I) - F||_1`` (CDDFuse / SeAFusion fusion intensity term);
* :func:`gradient_max` - ``||max(|grad V|, |grad I|) - |grad F|||_1`` with ``|grad X| = |Sobel_x X| + |Sobel_y X|``;
* :func:`ssim_sources` - ``(1 - SSIM(F, V))/2 + (1 - SSIM(F, I))/2`` (structure kept from both sources);
* :func:`intensity_local`, :func:`gradient_local` - L1 to :func:`local_contrast_target` (max of the sources plus the
  weaker one's variation about its own local mean, never below the weaker source: no fixed intensity pivot);
* :func:`rec_ssim`, :func:`rec_mse`, :func:`rec_gradient` - CDDFuse phase-I reconstruction terms;
* :func:`decomposition` - ``CC(D_V, D_I)^2 / (1.01 + CC(B_V, B_I))`` (CDDFuse's decomposition loss);
* the two self-supervised terms of :mod:`crossfuse.augment` (paper-code and consistency views).

The trainer calls every term through :data:`LOSSES`: a :class:`LossSpec` whose ``fn(ctx)`` receives one
:class:`StepContext` (the batch, the network's ``forward_train`` outputs, the network and a generator).
``scheduled`` terms are multiplied by the paper's cosine weight over phase II (the config's weight is beta0).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossfuse import augment
from crossfuse.nets.planes import local_contrast
from crossfuse.veil import lift_veil_batch

# ------------------------------------------------------------------------------------------------ pure functions


def sobel_xy(x: Tensor) -> Tensor:
    """Signed un-normalised Sobel derivatives ``(B, C, 2, H, W)`` (x then y), replicate-padded (kornia)."""
    return kornia.filters.spatial_gradient(x, mode="sobel", order=1, normalized=False)


def sobel_magnitude(x: Tensor) -> Tensor:
    """``|Sobel_x x| + |Sobel_y x|`` (:func:`sobel_xy`, as the CDDFuse / SeAFusion ``Sobelxy`` module)."""
    return sobel_xy(x).abs().sum(dim=2)


def intensity_max(ir: Tensor, vis: Tensor, fused: Tensor, contrast: float = 1.0) -> Tensor:
    """Mean absolute error between the fused image and the pixel-wise max of the sources (CDDFuse/SeAFusion).

    ``contrast != 1`` stretches the target about its per-sample mean: ``mu + contrast * (max(V, I) - mu)``,
    clipped to [0, 1] (asks for more contrast than either source has)."""
    target = torch.maximum(ir, vis)
    if contrast != 1.0:
        mu = target.mean(dim=(-2, -1), keepdim=True)
        target = (mu + contrast * (target - mu)).clamp(0.0, 1.0)
    return F.l1_loss(fused, target)


def complement_target(ir: Tensor, vis: Tensor, alpha: float = 0.4, pivot: float = 0.45, contrast: float = 1.0
                      ) -> Tensor:
    """``pivot + contrast * (max(V, I) + alpha * (min(V, I) - pivot) - pivot)``, clipped to [0, 1].

    Max fusion keeps the stronger source and throws the weaker one away; this target keeps the stronger source and
    adds ``alpha`` of the weaker one's variation about a fixed mid-grey ``pivot`` (so the weaker modality's content
    survives where the other is brighter), then stretches the contrast about the same pivot. Every term is
    per-pixel with fixed constants, so a fully convolutional net sees the same target on a patch as on a whole
    image. ``alpha = 0, contrast = 1`` is the plain max."""
    target = torch.maximum(ir, vis) + alpha * (torch.minimum(ir, vis) - pivot)
    if contrast != 1.0:
        target = pivot + contrast * (target - pivot)
    return target.clamp(0.0, 1.0)


def intensity_complement(ir: Tensor, vis: Tensor, fused: Tensor, alpha: float = 0.4, pivot: float = 0.45,
                         contrast: float = 1.0) -> Tensor:
    """Mean absolute error between the fused image and :func:`complement_target`."""
    return F.l1_loss(fused, complement_target(ir, vis, alpha, pivot, contrast))


def gradient_complement(ir: Tensor, vis: Tensor, fused: Tensor, alpha: float = 0.4, pivot: float = 0.45,
                        contrast: float = 1.0) -> Tensor:
    """L1 between the Sobel gradient vectors of the fused image and of :func:`complement_target`."""
    return F.l1_loss(sobel_xy(fused), sobel_xy(complement_target(ir, vis, alpha, pivot, contrast)))


def _gauss(x: Tensor, sigma: float) -> Tensor:
    k = 2 * math.ceil(3 * sigma) + 1
    return kornia.filters.gaussian_blur2d(x, (k, k), (sigma, sigma), border_type="reflect")


def local_contrast_target(ir: Tensor, vis: Tensor, alpha: float = 0.4, sigma: float = 8.0, gain: float = 1.0,
                          gain_sigma: float = 24.0) -> Tensor:
    """``T = max(V, I) + alpha * (m - G_sigma * m)`` with ``m = min(V, I)``; with ``gain != 1`` its detail about a
    wide local mean is scaled, ``mu + gain * (T - mu)``, ``mu = G_gain_sigma * T``; clipped to ``[m, 1]``.

    Like :func:`complement_target` it keeps the weaker source's variation where the other one is brighter, but
    about the weaker source's own *local* mean (Gaussian, ``sigma`` pixels) instead of a fixed grey pivot, so a dark
    scene keeps its level (no global offset), and the floor ``m`` means the target is never darker than both
    sources. The optional gain stretches contrast about a local mean too, never about a global grey, so it adds no
    pivot either. No constant depends on the image's overall brightness."""
    return local_contrast(ir, vis, alpha, lambda x: _gauss(x, sigma), gain,
                          (lambda x: _gauss(x, gain_sigma)) if gain != 1.0 else None)


def intensity_local(ir: Tensor, vis: Tensor, fused: Tensor, alpha: float = 0.4, sigma: float = 8.0,
                    gain: float = 1.0, gain_sigma: float = 24.0) -> Tensor:
    """Mean absolute error between the fused image and :func:`local_contrast_target`."""
    return F.l1_loss(fused, local_contrast_target(ir, vis, alpha, sigma, gain, gain_sigma))


def gradient_local(ir: Tensor, vis: Tensor, fused: Tensor, alpha: float = 0.4, sigma: float = 8.0,
                   gain: float = 1.0, gain_sigma: float = 24.0) -> Tensor:
    """L1 between the Sobel gradient vectors of the fused image and of :func:`local_contrast_target`."""
    return F.l1_loss(sobel_xy(fused), sobel_xy(local_contrast_target(ir, vis, alpha, sigma, gain, gain_sigma)))


def gradient_max(ir: Tensor, vis: Tensor, fused: Tensor, gain: float = 1.0) -> Tensor:
    """Mean absolute error between ``|grad F|`` and ``gain * max(|grad V|, |grad I|)`` (Sobel magnitudes;
    ``gain = 1`` is the CDDFuse / SeAFusion term, ``gain > 1`` asks for edges sharper than either source)."""
    target = torch.maximum(sobel_magnitude(ir), sobel_magnitude(vis))
    return F.l1_loss(sobel_magnitude(fused), gain * target)


def gradient_select(ir: Tensor, vis: Tensor, fused: Tensor, gain: float = 1.0) -> Tensor:
    """L1 between the fused gradient *vector* and ``gain`` times the gradient vector of the source whose Sobel
    magnitude is larger at that pixel (gradient-domain max selection).

    Unlike :func:`gradient_max`, which matches magnitudes only and so can be satisfied by texture that is in
    neither source, this target has a sign and a direction: the only way to match it is to carry the stronger
    source's edges (``gain > 1``: amplified)."""
    gi, gv = sobel_xy(ir), sobel_xy(vis)
    take_ir = gi.abs().sum(dim=2, keepdim=True) > gv.abs().sum(dim=2, keepdim=True)
    target = torch.where(take_ir, gi, gv)
    return F.l1_loss(sobel_xy(fused), gain * target)


def ssim(x: Tensor, y: Tensor, window: int = 11, max_val: float = 1.0) -> Tensor:
    """Mean SSIM (Gaussian window ``window``, sigma 1.5) via kornia; ``max_val`` sets the stabilising constants
    ``C1 = (0.01 max_val)^2``, ``C2 = (0.03 max_val)^2`` (1 = the usual SSIM for [0, 1] images)."""
    return kornia.metrics.ssim(x, y, window, max_val=max_val).mean()


def ssim_sources(ir: Tensor, vis: Tensor, fused: Tensor, window: int = 11, max_val: float = 1.0) -> Tensor:
    """``(1 - SSIM(F, V)) / 2 + (1 - SSIM(F, I)) / 2``: rewards keeping the structure of both sources.

    ``max_val = 2/255`` gives the stabilising constants of the CDDFuse evaluator's SSIM (scikit-image with
    ``data_range = 2`` on 0-255 images), which also scores the structure of low-contrast regions."""
    return (1 - ssim(fused, vis, window, max_val)) / 2 + (1 - ssim(fused, ir, window, max_val)) / 2


def scd_loss(ir: Tensor, vis: Tensor, fused: Tensor) -> Tensor:
    """``2 - SCD`` with SCD = CC(F - V, I) + CC(F - I, V) (Aslantas & Bendes 2015, the sum of the correlations of
    differences), per sample over H, W and averaged: rewards carrying each source's content into the result."""
    return 2 - correlation(fused - vis, ir) - correlation(fused - ir, vis)


def out_of_range(raw: Tensor) -> Tensor:
    """``mean(relu(raw - 1) + relu(-raw))`` of the network's unclamped output.

    The clamp to [0, 1] passes gradients straight through while training, so nothing else stops the unclamped value
    of a saturated pixel from drifting; this term holds it at the boundary (without it a complement-head run blew
    up to 1e16 after 15 epochs)."""
    return (F.relu(raw - 1.0) + F.relu(-raw)).mean()


def weight_binary(weight: Tensor) -> Tensor:
    """``4 * mean(w * (1 - w))`` for a per-pixel fusion weight ``w`` in [0, 1]: 0 when every pixel takes one
    source (selection keeps source pixels and edges intact, which MI, VIF and Qabf reward), 1 for a plain average."""
    return 4 * (weight * (1 - weight)).mean()


def rec_ssim(x: Tensor, x_hat: Tensor) -> Tensor:
    """``(1 - SSIM(X, X_hat)) / 2`` (CDDFuse phase I, its weight 5 lives in the config)."""
    return (1 - ssim(x, x_hat)) / 2


def rec_mse(x: Tensor, x_hat: Tensor) -> Tensor:
    """Mean squared reconstruction error."""
    return F.mse_loss(x_hat, x)


def rec_gradient(x: Tensor, x_hat: Tensor) -> Tensor:
    """L1 between the normalised Sobel gradients (both directions) of ``X`` and ``X_hat`` (CDDFuse phase I uses
    ``kornia.filters.SpatialGradient``, normalised by default)."""
    gx = kornia.filters.spatial_gradient(x, mode="sobel", normalized=True)
    gy = kornia.filters.spatial_gradient(x_hat, mode="sobel", normalized=True)
    return F.l1_loss(gy, gx)


def correlation(a: Tensor, b: Tensor, eps: float = 1e-5) -> Tensor:
    """Pearson correlation of ``a`` and ``b`` per sample and channel over H, W, averaged (CDDFuse's ``cc``);
    values are clamped to [-1, 1]."""
    a = a - a.mean(dim=(-2, -1), keepdim=True)
    b = b - b.mean(dim=(-2, -1), keepdim=True)
    num = (a * b).sum(dim=(-2, -1))
    den = torch.sqrt((a * a).sum(dim=(-2, -1)) * (b * b).sum(dim=(-2, -1))) + eps
    return (num / den).clamp(-1.0, 1.0).mean()


def decomposition(base_vis: Tensor, base_ir: Tensor, detail_vis: Tensor, detail_ir: Tensor) -> Tensor:
    """CDDFuse's decomposition loss ``CC(D_V, D_I)^2 / (1.01 + CC(B_V, B_I))``: details of the two modalities
    should be uncorrelated, bases correlated."""
    return correlation(detail_vis, detail_ir) ** 2 / (1.01 + correlation(base_vis, base_ir))


# ------------------------------------------------------------------------------------------------ registry


@dataclass
class StepContext:
    """What a loss term may look at in one training step.

    ``out`` is the network's ``forward_train`` dict, ``net`` the (possibly DDP-wrapped) network, ``generator`` a
    seeded ``torch.Generator`` for the self-supervised views, ``ssl`` the config's ``[ssl]`` table.
    """

    ir: Tensor
    vis: Tensor
    out: dict[str, Tensor]
    net: nn.Module | None = None
    generator: torch.Generator | None = None
    ssl: dict | None = None
    options: dict | None = None  # config [loss_options]: per-loss keyword arguments
    vis_raw: Tensor | None = None  # data.veil: the visible batch before levelling (the views are cut from it)
    veil: float = 0.0  # data.veil: strength the views are levelled with after their corruption

    def opts(self, name: str) -> dict:
        return dict((self.options or {}).get(name, {}))


@dataclass(frozen=True)
class LossSpec:
    fn: Callable[[StepContext], Tensor]
    phase: int  # 1 = reconstruction, 2 = fusion
    scheduled: bool = False  # multiplied by the cosine schedule of phase II (weight = beta0)
    description: str = ""


def _need(ctx: StepContext, *keys: str) -> list[Tensor]:
    missing = [k for k in keys if k not in ctx.out]
    if missing:
        raise KeyError(f"the network's forward_train output lacks {', '.join(missing)} "
                       f"(has: {', '.join(sorted(ctx.out))})")
    return [ctx.out[k] for k in keys]


def _decomposition(ctx: StepContext) -> Tensor:
    return decomposition(*_need(ctx, "base_vis", "base_ir", "detail_vis", "detail_ir"))


def _views(ctx: StepContext, pool: list[str] | None = None) -> augment.Views:
    """Weak and aggressive views of the batch as the config's ``[ssl]`` table says (``pool`` overrides its
    corruptions)."""
    opts = dict(ctx.ssl or {})
    vis = ctx.vis if ctx.vis_raw is None else ctx.vis_raw
    views = augment.consistency_views(ctx.ir, vis, ctx.generator, crop=opts.get("crop"),
                                      severity=float(opts.get("severity", 1.0)),
                                      corruptions=opts.get("corruptions") if pool is None else pool,
                                      misregister=opts.get("misregister", "either"))
    if ctx.veil:  # as at inference: the corruption hits the raw frame, the veil step comes after it
        views = dataclasses.replace(views, vis_weak=lift_veil_batch(views.vis_weak, ctx.veil),
                                    vis_aggr=lift_veil_batch(views.vis_aggr, ctx.veil))
    return views


def _ssl_consistency(ctx: StepContext) -> Tensor:
    views = _views(ctx)
    ir = torch.cat([views.ir_weak, views.ir_aggr])
    vis = torch.cat([views.vis_weak, views.vis_aggr])
    fused = ctx.net(ir, vis)
    weak, aggr = fused.chunk(2)
    return augment.consistency_loss(weak, aggr, views)


def restoration_local(ir: Tensor, vis: Tensor, fused: Tensor, region: tuple[int, int, int, int], alpha: float = 0.4,
                      sigma: float = 8.0, gradient: float = 10.0) -> Tensor:
    """:func:`intensity_local` + ``gradient`` x :func:`gradient_local` of ``fused`` (the fusion of a corrupted view)
    against the local-contrast target of the CLEAN sources ``ir``/``vis``, both cropped to ``region`` (top, left,
    height, width). The target comes from the clean inputs, not from the network, so it cannot collapse to a
    constant the way a consistency term can; the target is built on the whole view so its local mean sees context."""
    top, left, h, w = region
    target = local_contrast_target(ir, vis, alpha, sigma)[..., top:top + h, left:left + w]
    out = fused[..., top:top + h, left:left + w]
    return F.l1_loss(out, target) + gradient * F.l1_loss(sobel_xy(out), sobel_xy(target))


def _ssl_restore(ctx: StepContext) -> Tensor:
    kw = ctx.opts("ssl_restore")
    views = _views(ctx, kw.pop("corruptions", None))  # option: its own pool instead of [ssl] corruptions
    fused = ctx.net(views.ir_aggr, views.vis_aggr)
    return restoration_local(views.ir_weak, views.vis_weak, fused, views.region, **kw)


def restoration_inputs(restored_ir: Tensor, restored_vis: Tensor, ir: Tensor, vis: Tensor,
                       region: tuple[int, int, int, int], gradient: float = 0.0) -> Tensor:
    """``L1(ir', ir) + L1(vis', vis)`` on ``region`` (top, left, height, width): a network's restored sources
    ``ir'``, ``vis'`` of a corrupted view against the CLEAN view's sources. The target is the input itself (no fusion
    target, no intensity remapping), so it asks only for corruption removed where it is present and nothing changed
    where it is not. ``gradient > 0`` adds that multiple of the L1 between their signed Sobel gradients (blurring a
    clean edge costs more there than in intensity)."""
    top, left, h, w = region
    crop = lambda x: x[..., top:top + h, left:left + w]  # noqa: E731
    loss = F.l1_loss(crop(restored_ir), crop(ir)) + F.l1_loss(crop(restored_vis), crop(vis))
    if gradient:
        loss = loss + gradient * sum(F.l1_loss(sobel_xy(crop(a)), sobel_xy(crop(b)))
                                     for a, b in ((restored_ir, ir), (restored_vis, vis)))
    return loss


def _ssl_denoise(ctx: StepContext) -> Tensor:
    kw = ctx.opts("ssl_denoise")
    views = _views(ctx, kw.pop("corruptions", None))  # option: its own pool instead of [ssl] corruptions
    clean = float(kw.pop("clean", 0.0))  # option: weight of the same term on the weak (clean) view itself
    net = ctx.net

    def restored(ir: Tensor, vis: Tensor) -> list[Tensor]:
        out = net.forward_train(ir, vis, 2) if hasattr(net, "forward_train") else \
            net(ir, vis, 2)  # DDP: the trainer's wrapper routes a phase to forward_train
        return _need(StepContext(ctx.ir, ctx.vis, out), "restored_ir", "restored_vis")

    loss = restoration_inputs(*restored(views.ir_aggr, views.vis_aggr), views.ir_weak, views.vis_weak,
                              views.region, **kw)
    if clean:  # clean sources must come back unchanged: teaches the shares to tell noise from texture
        loss = loss + clean * restoration_inputs(*restored(views.ir_weak, views.vis_weak), views.ir_weak,
                                                 views.vis_weak, views.region, **kw)
    return loss


def _on_fused(fn: Callable[..., Tensor], name: str) -> Callable[[StepContext], Tensor]:
    """A registry term ``fn(ir, vis, fused, **[loss_options.name])`` on the network's fused output."""
    return lambda c: fn(c.ir, c.vis, _need(c, "fused")[0], **c.opts(name))


LOSSES: dict[str, LossSpec] = {
    "intensity_max": LossSpec(_on_fused(intensity_max, "intensity_max"), 2,
                              description="||max(V, I) - F||_1 (option contrast: stretched target)"),
    "gradient_max": LossSpec(_on_fused(gradient_max, "gradient_max"), 2,
                             description="|| gain * max(|grad V|, |grad I|) - |grad F| ||_1 (Sobel; option gain)"),
    "gradient_select": LossSpec(_on_fused(gradient_select, "gradient_select"), 2,
                                description="|| grad F - gain * grad(stronger source) ||_1 (signed Sobel)"),
    "intensity_complement": LossSpec(
        _on_fused(intensity_complement, "intensity_complement"), 2,
        description="||max(V, I) + alpha (min(V, I) - pivot), stretched about pivot - F||_1"),
    "gradient_complement": LossSpec(_on_fused(gradient_complement, "gradient_complement"), 2,
                                    description="||grad F - grad(complement target)||_1 (signed Sobel)"),
    "intensity_local": LossSpec(
        _on_fused(intensity_local, "intensity_local"), 2,
        description="||clip(max(V, I) + alpha (m - G_sigma m), m, 1) - F||_1, m = min(V, I) (no fixed pivot; "
                    "option gain about G_gain_sigma of it)"),
    "gradient_local": LossSpec(_on_fused(gradient_local, "gradient_local"), 2,
                               description="||grad F - grad(local-contrast target)||_1 (signed Sobel)"),
    "out_of_range": LossSpec(lambda c: out_of_range(_need(c, "raw")[0]), 2,
                             description="mean(relu(raw - 1) + relu(-raw)) of the unclamped output"),
    "weight_binary": LossSpec(lambda c: weight_binary(_need(c, "weight")[0]), 2,
                              description="4 mean(w (1 - w)) of the network's fusion weight (selection, not mixing)"),
    "scd": LossSpec(lambda c: scd_loss(c.ir, c.vis, _need(c, "fused")[0]), 2,
                    description="2 - CC(F - V, I) - CC(F - I, V)"),
    "ssim_sources": LossSpec(_on_fused(ssim_sources, "ssim_sources"), 2,
                             description="(1 - SSIM(F, V))/2 + (1 - SSIM(F, I))/2"),
    "decomposition": LossSpec(_decomposition, 2, description="CC(D_V, D_I)^2 / (1.01 + CC(B_V, B_I))"),
    "ssl_paper": LossSpec(lambda c: augment.paper_code_loss(_need(c, "fused")[0], c.generator), 2, scheduled=True,
                          description="MSE(crop(F), blur(crop(F))) - reference CrossFuse code's internal view"),
    "ssl_consistency": LossSpec(_ssl_consistency, 2, scheduled=True,
                                description="L1(fuse(weak), fuse(aggressive)) on the shared region"),
    "ssl_restore": LossSpec(_ssl_restore, 2, scheduled=True,
                            description="intensity_local + gradient x gradient_local of fuse(aggressive) vs the "
                                        "clean (weak) view's local-contrast target on the shared region"),
    "ssl_denoise": LossSpec(_ssl_denoise, 2, scheduled=True,
                            description="L1(restored sources of the aggressive view, clean weak-view sources) on the "
                                        "shared region (networks with restored_ir/restored_vis: fast, restore)"),
    "rec_ssim": LossSpec(lambda c: rec_ssim(c.vis, _need(c, "rec_vis")[0]) + rec_ssim(c.ir, _need(c, "rec_ir")[0]),
                         1, description="sum over V, I of (1 - SSIM(X, X_hat))/2"),
    "rec_mse": LossSpec(lambda c: rec_mse(c.vis, _need(c, "rec_vis")[0]) + rec_mse(c.ir, _need(c, "rec_ir")[0]),
                        1, description="sum over V, I of MSE(X, X_hat)"),
    "rec_gradient": LossSpec(lambda c: rec_gradient(c.vis, _need(c, "rec_vis")[0]), 1,
                             description="||grad V - grad V_hat||_1 (normalised Sobel)"),
    "rec_decomposition": LossSpec(_decomposition, 1, description="decomposition loss during phase I"),
}


def list_losses() -> list[str]:
    return sorted(LOSSES)


def get_loss(name: str) -> LossSpec:
    """The :class:`LossSpec` registered as ``name``; ``KeyError`` listing the valid names otherwise."""
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise KeyError(f"unknown loss {name!r}; valid losses: {', '.join(list_losses())}") from None


def total_loss(weights: dict[str, float], ctx: StepContext, ssl_factor: float = 1.0) -> tuple[Tensor, dict[str, float]]:
    """Weighted sum of the named terms; ``scheduled`` terms are also multiplied by ``ssl_factor`` (the cosine
    schedule divided by beta0) and skipped when it is 0. Returns the total and each term's unweighted value."""
    total = ctx.ir.new_zeros(())
    parts: dict[str, float] = {}
    for name, w in weights.items():
        spec = get_loss(name)
        factor = float(w) * (ssl_factor if spec.scheduled else 1.0)
        if factor == 0.0:
            continue
        value = spec.fn(ctx)
        total = total + factor * value
        parts[name] = float(value.detach())
    return total, parts


__all__ = [
    "sobel_magnitude", "intensity_max", "complement_target", "intensity_complement", "gradient_complement",
    "gradient_max", "sobel_xy", "local_contrast_target", "intensity_local", "gradient_local", "restoration_local",
    "restoration_inputs",
    "gradient_select", "ssim", "ssim_sources",
    "scd_loss", "out_of_range", "weight_binary", "rec_ssim", "rec_mse",
    "rec_gradient", "correlation", "decomposition", "StepContext", "LossSpec", "LOSSES", "list_losses", "get_loss",
    "total_loss",
]
