"""``fast``: a small fully convolutional fusion network for CPUs (crossfuse's own design).

Idea: no convolution runs at full resolution. The pair is packed losslessly into half resolution
(pixel-unshuffle, 2 × 4 = 8 channels), the context-hungry decisions are made at 1/4 and 1/8 resolution where channels
are cheap and the receptive field is wide, and a half-resolution head predicts, for each of the 4 sub-pixels of its
2×2 block, a gain ``a``, a bias ``b`` and a residual ``r`` (pixel-shuffle back to full resolution)::

    w     = sigmoid(s * a * (ir - vis_y) + b)                # per-pixel fusion weight, s = gain_scale
    fused = clamp(w * ir + (1 - w) * vis_y + r, 0, 1)

With a large positive ``a`` the weight becomes max(V, I) selection, a negative one min selection, ``b`` biases
towards one source and ``r`` adds detail and contrast beyond both sources; all three maps vary per pixel.

With ``complement=True`` the head predicts a fourth map ``k``, the share of the *other* (not selected) source that
is added back at full resolution::

    fused = clamp(w * ir + (1 - w) * vis_y + k * ((1 - w) * ir + w * vis_y) + r, 0, 1)

so ``max(V, I) + k * (min(V, I) - pivot)``-style fusion (keep the stronger source, add the weaker one's variation
instead of discarding it) is exact per pixel rather than something ``r`` has to rebuild from half-resolution
features. The fixed ``gain_scale`` (default 20) lets a hard selection (|s·a·Δ| ≫ 1 for source differences
Δ ≈ 0.05) be reached with ordinary learning rates: with s = 1, Adam at lr 1e-4 learns max(V, I) ~6× worse in
400 steps. The output conv is zero-initialised, so an untrained net returns the plain average of the sources.
While training, the clamp passes gradients straight through (``common.clamp_unit``).

With ``restore=True`` (off by default: existing configs and weights are unchanged) the head predicts two more maps,
``d_ir`` and ``d_vis`` (logits; ``sigmoid`` -> [0, 1]), and every occurrence of ``ir``/``vis_y`` in the formulas above
is replaced by a *restored* source::

    ir'  = ir    + sigmoid(d_ir)  * (S(ir)    - ir)          # S = fixed separable Gaussian, sigma = restore_sigma
    vis' = vis_y + sigmoid(d_vis) * (S(vis_y) - vis_y)

``S`` runs at full resolution with fixed (non-trainable, not stored) weights and replicate padding. Without it the
only way to remove noise is for ``r`` (a half-resolution prediction) to equal minus the noise pixel by pixel, which
the small net never learns; with it denoising is a smooth, low-frequency decision ("this region is noisy: take
the smoothed source") that the same half-resolution features can make. ``restore_stripe > 0`` adds a third map
``d_str`` and a horizontal-only Gaussian ``H`` (sigma = ``restore_stripe``) for the infrared source,
``ir' = ir + sigmoid(d_ir) (S(ir) - ir) + sigmoid(d_str) (H(ir) - ir)``: IR stripe noise is a per-column offset,
which a smoothing along the rows removes while keeping horizontal edges.

With ``restore_noise > 0`` the shares are adaptive (a Lee / Wiener filter whose noise level is predicted):
``sigmoid(d)`` becomes a noise standard deviation ``restore_noise * sigmoid(d)`` and the share is
``min(s / v, 1)`` with ``s`` its square and ``v = G(x^2) - G(x)^2`` the local variance under the same Gaussian
(row-wise for the stripe map). Where the local variance is no larger than the predicted noise (flat, noisy regions)
the source is smoothed fully; at edges and texture (``v >> s``) it is kept, so a noise level that fits a noisy image
costs little on a clean one, and the net has to predict a noise *level* (smooth in space, often global), not where
the edges are. ``restore_floor = K`` replaces the predicted level by a fixed estimate, ``2 sigmoid(d)`` times the
smallest local variance within K × K pixels (noise raises it everywhere, an edge only where it is), so the share
depends on noise even where ``d`` is constant (uniform fine texture looks like noise to it: its floor is its own
variance). ``restore_floor_gain`` (default 2) is the constant in front: ``s = restore_floor_gain sigmoid(d) m``; a
smaller one smooths less wherever the local variance is near the floor (texture and noise alike), so the net needs
a larger ``d`` to restore.

``restore_detach`` (training only; the output is the same): the fusion formula uses the shares with their gradient
stopped, and ``forward_train`` still returns the restored sources with it, so the shares are trained by a loss on
the restored sources alone (``losses.ssl_denoise``: a corrupted view's restored sources against the clean ones). The
fusion losses see only clean inputs, where any smoothing costs edges, so without this they push the shares to 0
everywhere before the restoration loss can teach the net to tell noise from texture (pilots, docs/training.md). The
``restore_evidence`` also feeds the encoder ``|ir - S(ir)|`` and ``|vis - S(vis)|`` (8 more input channels after
unshuffling), the high-pass energy that tells noise (everywhere, also in flat regions) from texture. The ``d`` logits
start at ``restore_init`` (default -3: ``sigmoid = 0.047``), so an untrained net returns the average of two sources
that are only 5 % smoothed (adaptive: smoothed only where their local standard deviation is below
``0.047 restore_noise``).

With ``rule_head=True`` the selection maps ``a, b`` (and ``k``) are not predicted; the (restored) sources go through
a fixed local-contrast rule instead, and the head's residual ``r`` is added to it::

    m = min(ir', vis'),  T = max(ir', vis') + rule_alpha (m - B(m)),  [T = mu + rule_gain (T - mu), mu = B_g(T)]
    fused = clamp(clamp(T, m, 1) + r, 0, 1)

``B`` / ``B_g``: Gaussians of sigma ``rule_sigma`` / ``rule_gain_sigma`` run at half resolution (cheap for
large kernels) and upsampled bilinearly (``rule_gain_gate`` / ``rule_residual_gate``: the extra gain / ``r`` scaled
per pixel by 1 - the largest restoration share; ``rule_alpha_degraded`` / ``rule_gain_degraded``: the ``rule_alpha``
/ ``rule_gain`` of a frame that ``forward``'s ``degraded`` flag marks, set by :class:`crossfuse.infer.Fuser` where an
input step changed a plane).
This is
``losses.local_contrast_target`` (the training target of the robust recipes) computed inside the network on the
restored sources, so an untrained net *is* that rule on (almost) unrestored inputs, and what training adds is the
restoration (the ``d`` shares, via ``ssl_denoise``) and the residual ``r`` (e.g. via the weak–aggressive
consistency), instead of spending the head's capacity on re-deriving the rule from half-resolution features.

``vis_veil = s`` (0 = off) is not part of ``forward``: it declares a whole-frame input step that
:class:`crossfuse.infer.Fuser` applies to the visible plane before tiling (:mod:`crossfuse.veil`: the frame's veil
level, one number, taken off with strength ``s``). It is stored in the config, so weights and ONNX files carry it.
``deblock = True``, ``destripe = True`` and ``denoise = True`` likewise declare whole-frame steps of the Fuser
(:mod:`crossfuse.deblock`: source planes that read as coarse JPEGs are deblocked; :mod:`crossfuse.destripe`: a plainly
striped IR plane loses its column / row offsets; :mod:`crossfuse.denoise`: a plainly noisy source plane is denoised);
stored only when set (``crossfuse.backends.INPUT_STEPS`` lists the steps).

Layout (C1, C2, C3 = ``channels``; N1, N2, N3 = ``blocks``)::

    [ir, vis] (2, H, W) ── unshuffle 2 ──> (8, H/2)     (16 with ``restore_evidence``: + |x - S(x)| of both)
      3×3 conv → C1, N1 blocks ─────────────────────────────── f1 (H/2)
        3×3 s2 → C2, N2 blocks (dilation 1, 2) ───────────── f2 (H/4)
          3×3 s2 → C3, N3 blocks (dilation 1, 2, 4, 8) ─── f3 (H/8)
      1×1(f3) → C2, bilinear ↑ + f2, block ──────────────── g2 (H/4)
      1×1(g2) → C1, bilinear ↑ + f1, block ──────────────── g1 (H/2)
      1×1(g1) → 12 = 4 sub-pixels × (a, b, r), shuffle 2 → (3, H, W) → formula above
                (16 = 4 × (a, b, k, r) with ``complement``; + 4 × (d_ir, d_vis[, d_str]) with ``restore``)

Each block is depthwise-separable with a residual: x + LReLU(1×1(dw3×3_dilated(x))). Upsampling uses the skip
tensor's exact size, so any even H, W works (``pad_multiple = 2``). Inside, tensors are channels-last (oneDNN's
fast path on CPU: ~3× faster than NCHW for these thin convs); this is invisible to callers and to ONNX. The
restoration smoothing (two 1-D passes on the 2-plane input) adds about 2 × 2 × (2 ceil(3 sigma) + 1) multiply-adds
per pixel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from crossfuse.nets.common import check_pair, check_phase, clamp_unit
from crossfuse.nets.planes import (
    gaussian_taps,
    half_res_blur,
    half_res_passes,
    local_contrast,
    local_variance,
    min_filter,
    run_passes,
    up_to,
    wiener_share,
)

_SLOPE = 0.1


class DSBlock(nn.Module):
    """Residual depthwise-separable block: ``x + LReLU(pw(dw_dilated(x)))``."""

    def __init__(self, channels: int, dilation: int = 1) -> None:
        super().__init__()
        self.dw = nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation, groups=channels)
        self.pw = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        return x + F.leaky_relu(self.pw(self.dw(x)), _SLOPE)


def _stage(cin: int, cout: int, stride: int, n_blocks: int, dilations: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.LeakyReLU(_SLOPE)]
    layers += [DSBlock(cout, dilations[i % len(dilations)]) for i in range(n_blocks)]
    return nn.Sequential(*layers)


class FastFuse(nn.Module):
    """CPU-oriented fusion network; see the module docstring for the layout.

    Args:
        channels: widths (C1, C2, C3) at 1/2, 1/4 and 1/8 resolution.
        blocks: residual block counts (N1, N2, N3) at those resolutions.
        gain_scale: fixed multiplier of the predicted gain ``a`` (see the module docstring).
        complement: also predict ``k``, the share of the non-selected source added back (module docstring).
        restore: also predict ``d_ir``, ``d_vis``: per-pixel shares of the smoothed sources (module docstring).
        restore_sigma: sigma (pixels) of the fixed isotropic Gaussian ``S`` of ``restore``.
        restore_stripe: sigma (pixels) of the horizontal-only Gaussian for IR stripes (third map); 0 = off.
        restore_init: initial bias of the ``d`` logits (``sigmoid(-3) = 0.047``: sources nearly untouched).
        restore_noise: 0 = the shares are ``sigmoid(d)``; > 0 = adaptive (Lee/Wiener) shares
            ``min(s / v, 1)`` with ``s = (restore_noise sigmoid(d))^2`` a predicted noise variance and ``v`` the local
            variance under the same Gaussian (module docstring).
        restore_detach: while training, the fused output uses the shares with their gradient stopped, so only a
            loss on ``restored_ir``/``restored_vis`` (``ssl_denoise``) trains them; inference is unchanged.
        restore_floor: window (px) of a fixed noise estimate for adaptive shares: ``s = 2 sigmoid(d) m`` with ``m``
            the smallest local variance within the window (min-pooled ``v``) instead of a predicted level; 0 = off.
        restore_floor_gain: the constant in front of that estimate (``s = restore_floor_gain sigmoid(d) m``);
            stored in ``config`` only when it is not the default 2, so earlier configs and weights are unchanged.
        restore_evidence: also feed the encoder the high-pass magnitudes ``|ir - S(ir)|``, ``|vis - S(vis)|``
            (pixel-unshuffled like the sources: 16 input channels instead of 8), evidence of noise for the shares.
        rule_head: fuse the (restored) sources by the local-contrast rule (module docstring) plus ``r`` instead of the
            ``a, b[, k]`` selection maps; off by default (configs and weights unchanged).
        rule_alpha, rule_sigma, rule_gain, rule_gain_sigma: the rule's constants (``losses.local_contrast_target``'s
            ``alpha, sigma, gain, gain_sigma``).
        rule_gain_gate: scale the rule's extra gain by ``1 - s`` per pixel, ``s`` the largest restoration share there
            (needs ``restore``): detail is stretched where the sources were kept, not where they were judged noisy.
        rule_residual_gate: scale the residual ``r`` by the same ``1 - s`` (needs ``rule_head`` and ``restore``):
            the learned detail is added where the sources were kept, not where they were judged noisy.
        rule_alpha_degraded: the rule's ``alpha`` for frames that ``forward(..., degraded=1)`` marks as degraded
            (needs ``rule_head``; ``None``: one ``alpha`` for every frame): the weaker source's detail is partly the
            corruption an input step met (docs/training.md H66).
        rule_gain_degraded: the rule's ``gain`` for the same frames (needs ``rule_head``; ``None``: one gain): the
            detail stretch would also stretch what the step left of the corruption (H72).
        spread_noise_gate: declares the Fuser's spread-noise gate on the visible plane (needs ``restore``; ``None``:
            none): a frame whose mean visible restoration share exceeds it has its visible plane denoised and is fused
            again (:class:`crossfuse.infer.Fuser`; H74). :meth:`forward_shares` gives the shares with the output.
        spread_noise_gate_ir: the same gate on the IR plane and its restoration share (H75; ``None``: none).
        spread_noise_gate_excess: a second gate on the visible plane (needs ``spread_noise_gate``; ``None``: none):
            the visible share's excess over the IR share, read when both planes came through the earlier steps
            untouched (H77: noise on the visible sensor alone, which the absolute gate misses on dark frames).

    Attributes: ``pad_multiple = 2`` (H and W must be even; callers pad with reflect and crop back),
    ``supports_phase1 = False`` (no reconstruction phase), ``config`` (constructor kwargs as plain lists, so
    ``build("fast", **net.config)`` rebuilds it).
    """

    pad_multiple: int = 2
    supports_phase1: bool = False

    def __init__(
        self,
        channels: tuple[int, int, int] = (16, 32, 96),
        blocks: tuple[int, int, int] = (1, 2, 6),
        gain_scale: float = 20.0,
        complement: bool = False,
        restore: bool = False,
        restore_sigma: float = 1.5,
        restore_stripe: float = 0.0,
        restore_init: float = -3.0,
        restore_noise: float = 0.0,
        restore_detach: bool = False,
        restore_evidence: bool = False,
        restore_floor: int = 0,
        restore_floor_gain: float = 2.0,
        rule_head: bool = False,
        rule_alpha: float = 0.4,
        rule_sigma: float = 16.0,
        rule_gain: float = 1.0,
        rule_gain_sigma: float = 8.0,
        rule_gain_gate: bool = False,
        rule_residual_gate: bool = False,
        rule_alpha_degraded: float | None = None,
        rule_gain_degraded: float | None = None,
        spread_noise_gate: float | None = None,
        spread_noise_gate_ir: float | None = None,
        spread_noise_gate_excess: float | None = None,
        vis_veil: float = 0.0,
        deblock: bool = False,
        destripe: bool = False,
        denoise: bool = False,
    ) -> None:
        super().__init__()
        channels, blocks = [int(c) for c in channels], [int(n) for n in blocks]
        if len(channels) != 3 or min(channels) < 4:
            raise ValueError(f"channels must be three widths >= 4, got {channels}")
        if len(blocks) != 3 or min(blocks) < 0:
            raise ValueError(f"blocks must be three counts >= 0, got {blocks}")
        if not gain_scale > 0:
            raise ValueError(f"gain_scale must be > 0, got {gain_scale}")
        self.config = {"channels": channels, "blocks": blocks, "gain_scale": float(gain_scale)}
        if complement:  # only stored when set, so configs (and weights files) of the 3-map head stay as they were
            self.config["complement"] = True
        if restore_floor and (restore_floor < 3 or restore_floor % 2 == 0):
            raise ValueError(f"restore_floor must be 0 or an odd window >= 3, got {restore_floor}")
        if not restore_floor_gain > 0:
            raise ValueError(f"restore_floor_gain must be > 0, got {restore_floor_gain}")
        if rule_head and (complement or not (rule_sigma > 0 and rule_gain > 0 and rule_gain_sigma > 0)):
            raise ValueError(f"rule_head excludes complement and needs rule_sigma, rule_gain, rule_gain_sigma > 0, got "
                             f"{complement}, {rule_sigma}, {rule_gain}, {rule_gain_sigma}")
        if (rule_alpha_degraded is not None or rule_gain_degraded is not None) and not rule_head:
            raise ValueError("rule_alpha_degraded and rule_gain_degraded need rule_head")
        if (rule_gain_gate or rule_residual_gate) and not (rule_head and restore):
            raise ValueError("rule_gain_gate and rule_residual_gate need rule_head and restore")
        if rule_head:  # only stored when set
            self.config.update(rule_head=True, rule_alpha=float(rule_alpha), rule_sigma=float(rule_sigma),
                               rule_gain=float(rule_gain), rule_gain_sigma=float(rule_gain_sigma))
            if rule_alpha_degraded is not None:
                self.config["rule_alpha_degraded"] = float(rule_alpha_degraded)
            if rule_gain_degraded is not None:
                self.config["rule_gain_degraded"] = float(rule_gain_degraded)
            if rule_gain_gate:
                self.config["rule_gain_gate"] = True
            if rule_residual_gate:
                self.config["rule_residual_gate"] = True
        if restore and not (restore_sigma > 0 and restore_stripe >= 0 and restore_noise >= 0):
            raise ValueError(f"restore needs restore_sigma > 0, restore_stripe >= 0 and restore_noise >= 0, got "
                             f"{restore_sigma}, {restore_stripe}, {restore_noise}")
        if restore:  # likewise only stored when set
            self.config.update(restore=True, restore_sigma=float(restore_sigma),
                               restore_stripe=float(restore_stripe), restore_init=float(restore_init))
            if restore_noise > 0:  # only stored when set: blend-mode configs stay as they were
                self.config["restore_noise"] = float(restore_noise)
            if restore_detach:
                self.config["restore_detach"] = True
            if restore_evidence:
                self.config["restore_evidence"] = True
            if restore_floor:
                self.config["restore_floor"] = int(restore_floor)
                if float(restore_floor_gain) != 2.0:  # only stored when changed: earlier configs unchanged
                    self.config["restore_floor_gain"] = float(restore_floor_gain)
        if spread_noise_gate_excess is not None and spread_noise_gate is None:
            raise ValueError("spread_noise_gate_excess is a second gate on the visible plane: it needs "
                             "spread_noise_gate")
        for key, gate in (("spread_noise_gate", spread_noise_gate), ("spread_noise_gate_ir", spread_noise_gate_ir),
                          ("spread_noise_gate_excess", spread_noise_gate_excess)):
            if gate is not None:  # only stored when set
                if not (restore and 0.0 < gate < 1.0):
                    raise ValueError(f"{key} needs restore and a share in (0, 1), got {gate}")
                self.config[key] = float(gate)
            setattr(self, key, None if gate is None else float(gate))
        if not 0.0 <= vis_veil <= 1.0:
            raise ValueError(f"vis_veil must be in [0, 1], got {vis_veil}")
        if vis_veil:  # a whole-frame input step of crossfuse.infer, not of forward(); only stored when set
            self.config["vis_veil"] = float(vis_veil)
        self.vis_veil = float(vis_veil)
        for name, on in (("deblock", deblock), ("destripe", destripe), ("denoise", denoise)):  # likewise Fuser
            if on:  # steps; stored when set
                self.config[name] = True
        self.deblock, self.destripe, self.denoise = bool(deblock), bool(destripe), bool(denoise)
        self.gain_scale = float(gain_scale)
        self.complement = bool(complement)
        self.restore = bool(restore)
        self.stripe = bool(restore) and restore_stripe > 0
        self.noise_max = float(restore_noise) if restore else 0.0
        self.floor = int(restore_floor) if restore else 0
        self.floor_gain = float(restore_floor_gain)
        self.restore_detach = bool(restore) and bool(restore_detach)
        self.n_restore = (3 if self.stripe else 2) if restore else 0  # d_ir, d_vis[, d_str]
        self.rule = bool(rule_head)  # no a, b: r only, before the restoration maps' place
        self.rule_alpha, self.rule_gain, self.rule_gate = float(rule_alpha), float(rule_gain), bool(rule_gain_gate)
        self.residual_gate = bool(rule_residual_gate)
        self.rule_alpha_degraded = None if rule_alpha_degraded is None else float(rule_alpha_degraded)
        self.rule_gain_degraded = None if rule_gain_degraded is None else float(rule_gain_degraded)
        self._rule_b = half_res_passes(float(rule_sigma)) if rule_head else ()
        stretches = rule_gain != 1.0 or rule_gain_degraded not in (None, 1.0)
        self._rule_bg = half_res_passes(float(rule_gain_sigma)) if rule_head and stretches else ()
        self.n_maps = (1 if self.rule else 4 if complement else 3) + self.n_restore
        c1, c2, c3 = channels
        n1, n2, n3 = blocks
        self.evidence = bool(restore) and bool(restore_evidence)
        self.enc1 = _stage(16 if self.evidence else 8, c1, 1, n1, (1,))
        self.enc2 = _stage(c1, c2, 2, n2, (1, 2))
        self.enc3 = _stage(c2, c3, 2, n3, (1, 2, 4, 8))
        self.lat3 = nn.Conv2d(c3, c2, 1)
        self.dec2 = DSBlock(c2)
        self.lat2 = nn.Conv2d(c2, c1, 1)
        self.dec1 = DSBlock(c1)
        self.head = nn.Conv2d(c1, 4 * self.n_maps, 1)
        nn.init.zeros_(self.head.weight)  # untrained net = average of the sources
        nn.init.zeros_(self.head.bias)
        self._first_restore = self.n_maps - 1 - self.n_restore  # the d maps come just before r
        if self.restore:
            first = 4 * self._first_restore  # (groups of 4 sub-pixels)
            with torch.no_grad():
                self.head.bias[first:first + 4 * self.n_restore] = float(restore_init)
            # fixed constants, not trained, not in the state dict: 1-D passes (taps, dim) of S and of H
            g = gaussian_taps(float(restore_sigma))
            self._iso = ((g, -1), (g, -2))
            self._rows = ((gaussian_taps(float(restore_stripe)), -1),) if self.stripe else ()
            # the inference memory planner (backends.estimate_bytes_per_pixel) sees leaf-module outputs only, not
            # the restoration's full-resolution temporaries: it predicts 160 B/px with or without them, while the
            # peak-RSS growth of one 4 Mpx pass was 192 B/px here and 128 without restore. Stated with the same
            # headroom (160 / 128) so the default 1 GB budget means the same for both (measured 2026-11-29).
            self.bytes_per_pixel = 240.0

    def maps(self, ir: Tensor, vis_y: Tensor, smoothed: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, ...]:
        """The full-resolution maps ``(a, b, r)`` (``(a, b, k, r)`` with ``complement``), each (B, 1, H, W); see
        the module docstring. With ``restore`` the logits ``d_ir, d_vis`` (and ``d_str``) come just before ``r``:
        ``(a, b[, k], d_ir, d_vis[, d_str], r)`` (``(d_ir, d_vis[, d_str], r)`` with ``rule_head``). ``smoothed``:
        ``self.smooth(ir, vis_y)`` if already computed (used with ``restore_evidence``)."""
        if not torch.jit.is_tracing():  # shape checks are eager-only; ONNX export traces with example inputs
            check_pair(ir, vis_y)
            if ir.shape[-2] % 2 or ir.shape[-1] % 2:
                raise ValueError(f"fast needs even H and W (pad_multiple = 2), got {tuple(ir.shape[-2:])}")
        planes = [ir, vis_y]
        if self.evidence:
            s_ir, s_vis = self.smooth(ir, vis_y) if smoothed is None else smoothed
            planes += [(ir - s_ir).abs(), (vis_y - s_vis).abs()]
        x = F.pixel_unshuffle(torch.cat(planes, dim=1), 2).contiguous(memory_format=torch.channels_last)
        f1 = self.enc1(x)
        f2 = self.enc2(f1)
        f3 = self.enc3(f2)
        g2 = self.dec2(up_to(self.lat3(f3), f2) + f2)
        g1 = self.dec1(up_to(self.lat2(g2), f1) + f1)
        out = F.pixel_shuffle(self.head(g1), 2).contiguous()
        return tuple(out[:, i:i + 1] for i in range(self.n_maps))

    def smooth(self, ir: Tensor, vis_y: Tensor) -> tuple[Tensor, Tensor]:
        """``(S(ir), S(vis_y))``: the fixed Gaussian of ``restore`` (separable, replicate padding), full resolution."""
        s = run_passes(torch.cat([ir, vis_y], dim=1), self._iso)
        return s[:, :1], s[:, 1:]

    def _share(self, logit: Tensor, x: Tensor, mean: Tensor, passes: tuple) -> Tensor:
        """The share of the smoothed source: ``sigmoid(logit)``, or with ``restore_noise`` the adaptive
        ``min(s / v, 1)``, ``s = (restore_noise sigmoid(logit))^2``, ``v = G(x^2) - mean^2`` (``passes``: the 1-D
        passes of ``G``, the smoothing that gave ``mean``)."""
        d = torch.sigmoid(logit)
        if not (self.noise_max or self.floor):
            return d
        var = local_variance(x, mean, lambda y: run_passes(y, passes))
        if self.floor:  # the window's smallest local variance: ~ the noise variance wherever a flat patch is near
            noise = self.floor_gain * d * min_filter(min_filter(var, self.floor, -1), self.floor, -2)
        else:
            noise = (self.noise_max * d) ** 2
        return wiener_share(noise, var)

    def _rule(self, ir: Tensor, vis: Tensor, keep: Tensor | None, degraded: Tensor | None) -> Tensor:
        """``rule_head``'s local-contrast rule (module docstring; ``planes.local_contrast`` with half-resolution blurs);
        ``keep`` (``rule_gain_gate``): the share of the extra gain applied per pixel; ``degraded`` ((B, 1, 1, 1) in
        {0, 1}): per frame, ``rule_alpha_degraded`` / ``rule_gain_degraded`` instead of ``rule_alpha`` /
        ``rule_gain``."""
        alpha: float | Tensor = self.rule_alpha
        # the stretch beyond 1 stays the Python float it always was: a frame with the flag at 0 computes exactly what
        # a network without the switch does (H72's clean rows)
        extra: float | Tensor = self.rule_gain - 1.0
        if degraded is not None:
            d = degraded.to(ir.dtype)
            if self.rule_alpha_degraded is not None:
                alpha = self.rule_alpha + (self.rule_alpha_degraded - self.rule_alpha) * d
            if self.rule_gain_degraded is not None:
                extra = extra + (self.rule_gain_degraded - 1.0 - extra) * d
        gain = 1.0 + extra if keep is None else 1.0 + extra * keep
        gain_blur = (lambda x: half_res_blur(x, self._rule_bg)) if self._rule_bg else None
        return local_contrast(ir, vis, alpha, lambda x: half_res_blur(x, self._rule_b), gain, gain_blur)

    def _restore(self, ir: Tensor, vis_y: Tensor, maps: tuple[Tensor, ...], smoothed: tuple[Tensor, Tensor],
                 extra: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor | None]:
        """``restore``: the restored sources the rule or the selection fuses, and the rule head's gate ``keep`` = 1 -
        the largest share (``rule_gain_gate`` / ``rule_residual_gate``; ``None`` when both are off); fills ``extra``
        with the shares and the restored sources."""
        j = self._first_restore
        s_ir, s_vis = smoothed
        shares = [self._share(maps[j], ir, s_ir, self._iso), self._share(maps[j + 1], vis_y, s_vis, self._iso)]
        r_ir = ir + shares[0] * (s_ir - ir)
        if self.stripe:
            h_ir = run_passes(ir, self._rows)
            shares.append(self._share(maps[j + 2], ir, h_ir, self._rows))
            r_ir = r_ir + shares[2] * (h_ir - ir)
            extra["restore_stripe"] = shares[2]
        r_vis = vis_y + shares[1] * (s_vis - vis_y)
        extra.update(restore_ir=shares[0], restore_vis=shares[1], restored_ir=r_ir, restored_vis=r_vis)
        if self.restore_detach and self.training:  # the fusion losses do not train the shares (docstring): the
            # restored sources depend on the network through the shares alone, so stopping them is stopping these
            r_ir, r_vis, shares = r_ir.detach(), r_vis.detach(), [x.detach() for x in shares]
        gated = self.rule_gate or self.residual_gate
        keep = 1.0 - torch.stack(shares).amax(dim=0) if gated else None  # 1 - the largest share
        return r_ir, r_vis, keep

    def _fuse(self, ir: Tensor, vis_y: Tensor, degraded: Tensor | None = None) -> dict[str, Tensor]:
        smoothed = self.smooth(ir, vis_y) if self.restore else None
        maps = self.maps(ir, vis_y, smoothed)
        r = maps[-1]
        extra: dict[str, Tensor] = {}
        keep = None  # the rule head's gate (rule_gain_gate, rule_residual_gate), set with restore
        if smoothed is not None:
            ir, vis_y, keep = self._restore(ir, vis_y, maps, smoothed, extra)
        if self.rule:
            w = (ir >= vis_y).to(ir.dtype)  # which source the rule's max takes (reported, not learned)
            raw = self._rule(ir, vis_y, keep if self.rule_gate else None, degraded)
            raw = raw + (keep * r if self.residual_gate else r)
        else:
            w = torch.sigmoid(self.gain_scale * maps[0] * (ir - vis_y) + maps[1])
            raw = w * ir + (1.0 - w) * vis_y + r
        if self.complement:
            raw = raw + maps[2] * ((1.0 - w) * ir + w * vis_y)
        return {"fused": clamp_unit(raw, straight_through=self.training), "raw": raw, "weight": w, "residual": r,
                **extra}

    def forward(self, ir: Tensor, vis_y: Tensor, degraded: Tensor | None = None) -> Tensor:
        """Fuse (B, 1, H, W) IR and visible-Y tensors in [0, 1] (H, W even) into a (B, 1, H, W) tensor in [0, 1];
        ``degraded`` ((B, 1, 1, 1), 1 = an input step changed the frame) only matters with ``rule_alpha_degraded`` or
        ``rule_gain_degraded``."""
        return self._fuse(ir, vis_y, degraded)["fused"]

    def forward_shares(self, ir: Tensor, vis_y: Tensor, degraded: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``(fused, shares)``: :meth:`forward`'s (B, 1, H, W) output and the IR and visible restoration shares of the
        same pass, (B, 2, H, W) (the maps whose frame means the Fuser's spread-noise gates read; needs ``restore``)."""
        if not self.restore:
            raise ValueError("forward_shares needs a network with restore")
        out = self._fuse(ir, vis_y, degraded)
        # the order is backends.SHARE_PLANES, which the Fuser and the ONNX output follow
        return out["fused"], torch.cat([out["restore_ir"], out["restore_vis"]], dim=1)

    def forward_train(self, ir: Tensor, vis_y: Tensor, phase: int = 2) -> dict[str, Tensor]:
        """Training hook, phase 2 only: ``{"fused", "raw", "weight", "residual"}`` (the unclamped output, weight
        ``w`` and residual ``r`` as (B, 1, H, W) maps; with ``restore`` also ``restore_ir``, ``restore_vis`` (and
        ``restore_stripe``): the shares of the smoothed sources, in [0, 1], and ``restored_ir``, ``restored_vis``:
        the restored sources ``ir'``, ``vis'`` the formula fused). ``fast`` has no per-modality
        base/detail features, so the trainer skips L_dec. Phase 1 raises ``ValueError``
        (``supports_phase1 = False``)."""
        check_phase(phase, self.supports_phase1, "fast")
        return self._fuse(ir, vis_y)


def fast(**kwargs) -> FastFuse:
    """The default fast network: channels (16, 32, 96), blocks (1, 2, 6), 104k parameters."""
    return FastFuse(**kwargs)


def fast_s(**kwargs) -> FastFuse:
    """A smaller variant for weak CPUs / edge devices: channels (12, 24, 48), blocks (1, 1, 4)."""
    cfg: dict = {"channels": (12, 24, 48), "blocks": (1, 1, 4)}
    cfg.update(kwargs)
    return FastFuse(**cfg)
