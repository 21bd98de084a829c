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

``restore_enhance = sigma_L > 0`` adds, after that smoothing, a contrast restoration of each source: two more maps per
source, a detail gain ``g = restore_enhance_max tanh(10 e)`` and an offset ``o = tanh(10 q)``, and
``x'' = x' + g (x' - L(x')) + o`` with ``L`` a fixed Gaussian of sigma ``sigma_L`` (run at half resolution, where the
large kernel is cheap, and upsampled bilinearly). Haze (``J t + A (1 - t)``), low light and blur shrink local contrast
about a slowly varying level; a smooth gain and offset are the per-region inverse the half-resolution head can
predict (a negative gain smooths towards ``L``). Both start at 0: an untrained net leaves the sources unchanged and
the maps get full gradients from the start (a sigmoid gain started near 0 stayed there: pilot e1/e2 of H11).

``restore_deblock = sigma_B > 0`` adds a second, wider smoothing after that one for JPEG's block steps and ringing,
which the noise floor misses (inside a flat 8 x 8 block the local variance is ~0, so the floor sees no noise): two
more maps per pair, Wiener shares of ``B`` (a Gaussian of sigma ``sigma_B`` at half resolution) with a predicted level
``restore_deblock_max sigmoid(b)``, applied to the noise-restored sources.

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

``B`` / ``B_g``: Gaussians of sigma ``rule_sigma`` / ``rule_gain_sigma`` run at half resolution (as ``L``). This is
``losses.local_contrast_target`` (the training target of the robust recipes) computed inside the network on the
restored sources, so an untrained net *is* that rule on (almost) unrestored inputs, and what training adds is the
restoration (the ``d`` shares, via ``ssl_denoise``) and the residual ``r`` (e.g. via the weak–aggressive
consistency), instead of spending the head's capacity on re-deriving the rule from half-resolution features.

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

from functools import partial

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
# Fixed multiplier of the contrast maps' logits (restore_enhance), like gain_scale for ``a``: Adam moves a head bias
# by about lr per step, so unscaled logits need ~1,000 consistent steps to reach an offset of 0.3 (an unscaled haze
# pilot learned nothing in 200 steps that asked for nothing else).
_ENHANCE_SCALE = 10.0


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
        restore_enhance: sigma (px) of the base ``L`` of the contrast maps (gain and offset per source, after the
            smoothing; module docstring); 0 = off.
        restore_enhance_max: the largest extra detail gain of those maps (``g = restore_enhance_max tanh(10 e)``).
        restore_deblock: sigma (px) of a wide Gaussian ``B`` (half resolution) for deblocking: two more maps
            ``b_ir, b_vis`` after the stripe map; each (noise-restored) source moves towards ``B(x)`` by the Wiener
            share ``min(s / v, 1)``, ``s = (restore_deblock_max sigmoid(b))^2``, ``v = B(x^2) - B(x)^2``: compression
            steps below the predicted level in flat windows go, larger scene edges stay. 0 = off. The gain gate
            counts these shares too.
        restore_deblock_max: the largest predicted level of those shares (0-1 scale).
        detail_gain: > 0 adds one last map ``e`` and a full-resolution detail gain AFTER fusion,
            ``raw + gamma (raw - D(raw))``, ``gamma = detail_gain tanh(10 e)``, ``D`` a fixed Gaussian (sigma
            ``detail_sigma``, run at half resolution like ``L``): the one way for the net to put more local contrast
            into its output than the sources carry; 0 = off (configs and weights unchanged).
        detail_sigma: sigma (px) of ``D``.
        rule_head: fuse the (restored) sources by the local-contrast rule (module docstring) plus ``r`` instead of the
            ``a, b[, k]`` selection maps; off by default (configs and weights unchanged).
        rule_alpha, rule_sigma, rule_gain, rule_gain_sigma: the rule's constants (``losses.local_contrast_target``'s
            ``alpha, sigma, gain, gain_sigma``).
        rule_gain_gate: scale the rule's extra gain by ``1 - s`` per pixel, ``s`` the largest restoration share there
            (needs ``restore``): detail is stretched where the sources were kept, not where they were judged noisy.
        rule_alpha_gate: scale ``rule_alpha`` by ``1 - s_w`` per pixel, ``s_w`` the restoration share of the weaker
            source there (needs ``restore``): its variation is added back only where it was not judged noise.

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
        restore_enhance: float = 0.0,
        restore_enhance_max: float = 2.0,
        restore_deblock: float = 0.0,
        restore_deblock_max: float = 0.1,
        detail_gain: float = 0.0,
        detail_sigma: float = 4.0,
        rule_head: bool = False,
        rule_alpha: float = 0.4,
        rule_sigma: float = 16.0,
        rule_gain: float = 1.0,
        rule_gain_sigma: float = 8.0,
        rule_gain_gate: bool = False,
        rule_alpha_gate: bool = False,
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
        if restore_enhance < 0 or not restore_enhance_max > 0:
            raise ValueError(f"restore_enhance must be >= 0 and restore_enhance_max > 0, got {restore_enhance}, "
                             f"{restore_enhance_max}")
        if restore_deblock < 0 or not restore_deblock_max > 0:
            raise ValueError(f"restore_deblock must be >= 0 and restore_deblock_max > 0, got {restore_deblock}, "
                             f"{restore_deblock_max}")
        if detail_gain < 0 or not detail_sigma > 0:
            raise ValueError(f"detail_gain must be >= 0 and detail_sigma > 0, got {detail_gain}, {detail_sigma}")
        if detail_gain:  # only stored when set
            self.config.update(detail_gain=float(detail_gain), detail_sigma=float(detail_sigma))
        if rule_head and (complement or not (rule_sigma > 0 and rule_gain > 0 and rule_gain_sigma > 0)):
            raise ValueError(f"rule_head excludes complement and needs rule_sigma, rule_gain, rule_gain_sigma > 0, got "
                             f"{complement}, {rule_sigma}, {rule_gain}, {rule_gain_sigma}")
        if (rule_gain_gate or rule_alpha_gate) and not (rule_head and restore):
            raise ValueError("rule_gain_gate and rule_alpha_gate need rule_head and restore")
        if rule_head:  # only stored when set
            self.config.update(rule_head=True, rule_alpha=float(rule_alpha), rule_sigma=float(rule_sigma),
                               rule_gain=float(rule_gain), rule_gain_sigma=float(rule_gain_sigma))
            if rule_gain_gate:
                self.config["rule_gain_gate"] = True
            if rule_alpha_gate:
                self.config["rule_alpha_gate"] = True
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
            if restore_enhance:
                self.config.update(restore_enhance=float(restore_enhance),
                                   restore_enhance_max=float(restore_enhance_max))
            if restore_deblock:
                self.config.update(restore_deblock=float(restore_deblock),
                                   restore_deblock_max=float(restore_deblock_max))
        self.gain_scale = float(gain_scale)
        self.complement = bool(complement)
        self.restore = bool(restore)
        self.stripe = bool(restore) and restore_stripe > 0
        self.noise_max = float(restore_noise) if restore else 0.0
        self.floor = int(restore_floor) if restore else 0
        self.floor_gain = float(restore_floor_gain)
        self.restore_detach = bool(restore) and bool(restore_detach)
        self.enhance = bool(restore) and restore_enhance > 0
        self.enhance_max = float(restore_enhance_max)
        self.deblock = bool(restore) and restore_deblock > 0
        self.deblock_max = float(restore_deblock_max)
        self._deblock = half_res_passes(float(restore_deblock) if self.deblock else 0.0)  # B
        # restoration maps: d_ir, d_vis[, d_str][, b_ir, b_vis][, g_ir, g_vis, o_ir, o_vis]
        self.n_restore = ((3 if self.stripe else 2) + (2 if self.deblock else 0)
                          + (4 if self.enhance else 0)) if restore else 0
        self.detail_gain = float(detail_gain)
        self.n_detail = 1 if detail_gain else 0  # e, the last map (after r)
        self.rule = bool(rule_head)  # no a, b: r only, before the restoration maps' place
        self.rule_alpha, self.rule_gain, self.rule_gate = float(rule_alpha), float(rule_gain), bool(rule_gain_gate)
        self.alpha_gate = bool(rule_alpha_gate)
        self._rule_b = half_res_passes(float(rule_sigma)) if rule_head else ()
        self._rule_bg = half_res_passes(float(rule_gain_sigma)) if rule_head and rule_gain != 1.0 else ()
        self.n_maps = (1 if self.rule else 4 if complement else 3) + self.n_restore + self.n_detail
        self._detail = half_res_passes(float(detail_sigma) if detail_gain else 0.0)  # D
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
        self._first_restore = self.n_maps - 1 - self.n_detail - self.n_restore  # the d maps come just before r
        self._n_smooth = 3 if self.stripe else 2  # d_ir, d_vis[, d_str]: the smoothing shares, then b_ir, b_vis
        if self.restore:
            n_d = self.n_restore - (4 if self.enhance else 0)
            first = 4 * self._first_restore  # (groups of 4 sub-pixels)
            with torch.no_grad():  # (the contrast maps' gains and offsets keep bias 0: identity)
                self.head.bias[first:first + 4 * n_d] = float(restore_init)
            # fixed constants, not trained, not in the state dict: 1-D passes (taps, dim) of S and of H
            g = gaussian_taps(float(restore_sigma))
            self._iso = ((g, -1), (g, -2))
            self._rows = ((gaussian_taps(float(restore_stripe)), -1),) if self.stripe else ()
            self._base = half_res_passes(float(restore_enhance) if self.enhance else 0.0)  # L
            # the inference memory planner (backends.estimate_bytes_per_pixel) sees leaf-module outputs only, not
            # the restoration's full-resolution temporaries: it predicts 160 B/px with or without them, while the
            # peak-RSS growth of one 4 Mpx pass was 192 B/px here and 128 without restore. Stated with the same
            # headroom (160 / 128) so the default 1 GB budget means the same for both (measured 2026-11-29).
            self.bytes_per_pixel = 240.0
            if self.enhance:  # + four full-resolution maps and the detail planes: an estimate, not measured
                self.bytes_per_pixel += 48.0
            if self.n_detail:  # + the gain map and D's planes: an estimate, not measured
                self.bytes_per_pixel += 24.0
            if self.deblock:  # + two shares and the blurred planes and their squares: an estimate, not measured
                self.bytes_per_pixel += 48.0

    def maps(self, ir: Tensor, vis_y: Tensor, smoothed: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, ...]:
        """The full-resolution maps ``(a, b, r)`` (``(a, b, k, r)`` with ``complement``), each (B, 1, H, W); see
        the module docstring. With ``restore`` the logits ``d_ir, d_vis`` (and ``d_str``; with ``restore_enhance``
        then ``g_ir, g_vis, o_ir, o_vis``) come just before ``r``:
        ``(a, b[, k], d_ir, d_vis[, d_str][, g_ir, g_vis, o_ir, o_vis], r)``. ``smoothed``:
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

    def _deblocked(self, ir: Tensor, vis: Tensor, logits: Tensor) -> tuple[Tensor, ...]:
        """``restore_deblock``: both sources moved towards ``B(x)``, the wide smoothing, by the Wiener share
        ``min(s / v, 1)``, ``s`` = (``restore_deblock_max`` sigmoid(``logits``))^2, ``v = B(x^2) - B(x)^2``:
        ``(share, ir'', vis'')``. Block edges and ringing are steps no larger than the predicted level inside an
        otherwise flat window; edges of the scene are larger and kept."""
        both = torch.cat([ir, vis], dim=1)
        blur = partial(half_res_blur, passes=self._deblock)
        mean = blur(both)
        share = wiener_share((self.deblock_max * torch.sigmoid(logits)) ** 2, local_variance(both, mean, blur))
        out = both + share * (mean - both)
        return share, out[:, :1], out[:, 1:]

    def base(self, x: Tensor) -> Tensor:
        """``L(x)``: the contrast maps' fixed Gaussian (sigma ``restore_enhance``), run on the 2 x 2 mean at half
        resolution and upsampled bilinearly to ``x``'s size (H, W even)."""
        return half_res_blur(x, self._base)

    def _contrast(self, ir: Tensor, vis: Tensor, g_ir: Tensor, g_vis: Tensor, o_ir: Tensor,
                  o_vis: Tensor) -> tuple[Tensor, Tensor]:
        """``x + g (x - L(x)) + o`` for both sources (one pass of ``L`` over the stacked planes)."""
        both = torch.cat([ir, vis], dim=1)
        detail = both - self.base(both)
        return ir + g_ir * detail[:, :1] + o_ir, vis + g_vis * detail[:, 1:] + o_vis

    def _rule(self, ir: Tensor, vis: Tensor, keep: Tensor | None, keep_weak: Tensor | None) -> Tensor:
        """``rule_head``'s local-contrast rule (module docstring; ``planes.local_contrast`` with half-resolution blurs);
        ``keep`` (``rule_gain_gate``): the share of the extra gain applied per pixel; ``keep_weak``
        (``rule_alpha_gate``): the share of ``rule_alpha``."""
        alpha = self.rule_alpha if keep_weak is None else self.rule_alpha * keep_weak
        gain = self.rule_gain if keep is None else 1.0 + (self.rule_gain - 1.0) * keep
        gain_blur = (lambda x: half_res_blur(x, self._rule_bg)) if self._rule_bg else None
        return local_contrast(ir, vis, alpha, lambda x: half_res_blur(x, self._rule_b), gain, gain_blur)

    def _shares(self, ir: Tensor, vis_y: Tensor, maps: tuple[Tensor, ...], smoothed: tuple[Tensor, Tensor],
                extra: dict[str, Tensor]) -> tuple[list[Tensor], Tensor | None]:
        """The restoration's per-pixel shares that the head's maps give directly: ``d_ir, d_vis[, d_str][, g_ir,
        g_vis, o_ir, o_vis]`` (the deblocking shares depend on the noise-restored sources: :meth:`_restored`), and
        ``H(ir)`` for the stripe share (or ``None``)."""
        j = self._first_restore
        s_ir, s_vis = smoothed
        shares = [self._share(maps[j], ir, s_ir, self._iso), self._share(maps[j + 1], vis_y, s_vis, self._iso)]
        h_ir = None
        if self.stripe:
            h_ir = run_passes(ir, self._rows)
            shares.append(self._share(maps[j + 2], ir, h_ir, self._rows))
            extra["restore_stripe"] = shares[2]
        if self.enhance:
            e = j + self._n_smooth + (2 if self.deblock else 0)
            g_ir, g_vis, o_ir, o_vis = (torch.tanh(_ENHANCE_SCALE * maps[e + i]) for i in range(4))
            shares += [self.enhance_max * g_ir, self.enhance_max * g_vis, o_ir, o_vis]
            extra.update(enhance_ir=shares[-4], enhance_vis=shares[-3], offset_ir=shares[-2], offset_vis=shares[-1])
        return shares, h_ir

    def _restored(self, ir: Tensor, vis_y: Tensor, smoothed: tuple[Tensor, Tensor], h_ir: Tensor | None,
                  maps: tuple[Tensor, ...], sh: list[Tensor]) -> tuple[Tensor, Tensor, list[Tensor]]:
        """The restored sources ``ir', vis'`` for the shares ``sh`` (:meth:`_shares`), and the deblocking shares
        ``[b_ir, b_vis]`` (``[]`` without ``restore_deblock``)."""
        s_ir, s_vis = smoothed
        out_ir = ir + sh[0] * (s_ir - ir)
        if h_ir is not None:
            out_ir = out_ir + sh[2] * (h_ir - ir)
        out_vis = vis_y + sh[1] * (s_vis - vis_y)
        blocks: list[Tensor] = []
        if self.deblock:
            b = self._first_restore + self._n_smooth
            share, out_ir, out_vis = self._deblocked(out_ir, out_vis, torch.cat(maps[b:b + 2], 1))
            blocks = [share[:, :1], share[:, 1:]]
        if self.enhance:
            out_ir, out_vis = self._contrast(out_ir, out_vis, *sh[-4:])
        return out_ir, out_vis, blocks

    def _restore(self, ir: Tensor, vis_y: Tensor, maps: tuple[Tensor, ...], smoothed: tuple[Tensor, Tensor],
                 extra: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """``restore``: the restored sources the rule or the selection fuses, and the rule head's gates ``keep``
        (``rule_gain_gate``) and ``keep_weak`` (``rule_alpha_gate``), ``None`` when off; fills ``extra``."""
        shares, h_ir = self._shares(ir, vis_y, maps, smoothed, extra)
        r_ir, r_vis, blocks = self._restored(ir, vis_y, smoothed, h_ir, maps, shares)
        extra.update(restore_ir=shares[0], restore_vis=shares[1], restored_ir=r_ir, restored_vis=r_vis)
        if blocks:
            extra.update(deblock_ir=blocks[0], deblock_vis=blocks[1])
        smoothing = shares[:self._n_smooth] + blocks  # the contrast maps' gains and offsets are not smoothing
        if self.restore_detach and self.training:  # the fusion losses do not train the shares (docstring): the
            # restored sources depend on the network through the shares alone, so stopping them is stopping these
            r_ir, r_vis, smoothing = r_ir.detach(), r_vis.detach(), [x.detach() for x in smoothing]
        keep = keep_weak = None
        if self.rule_gate:  # 1 - the largest smoothing share
            keep = 1.0 - torch.stack(smoothing).amax(dim=0)
        if self.alpha_gate:  # 1 - the smoothing share of the source the rule's min takes
            s_ir = torch.maximum(smoothing[0], smoothing[2]) if self.stripe else smoothing[0]
            keep_weak = 1.0 - torch.where(r_ir <= r_vis, s_ir, smoothing[1])
        return r_ir, r_vis, keep, keep_weak

    def _fuse(self, ir: Tensor, vis_y: Tensor) -> dict[str, Tensor]:
        smoothed = self.smooth(ir, vis_y) if self.restore else None
        maps = self.maps(ir, vis_y, smoothed)
        r = maps[-1 - self.n_detail]
        extra: dict[str, Tensor] = {}
        keep = keep_weak = None  # the rule head's gates (rule_gain_gate, rule_alpha_gate), set with restore
        if smoothed is not None:
            ir, vis_y, keep, keep_weak = self._restore(ir, vis_y, maps, smoothed, extra)
        if self.rule:
            w = (ir >= vis_y).to(ir.dtype)  # which source the rule's max takes (reported, not learned)
            raw = self._rule(ir, vis_y, keep, keep_weak) + r
        else:
            w = torch.sigmoid(self.gain_scale * maps[0] * (ir - vis_y) + maps[1])
            raw = w * ir + (1.0 - w) * vis_y + r
        if self.complement:
            raw = raw + maps[2] * ((1.0 - w) * ir + w * vis_y)
        if self.n_detail:
            gamma = self.detail_gain * torch.tanh(_ENHANCE_SCALE * maps[-1])
            raw = raw + gamma * (raw - half_res_blur(raw, self._detail))
            extra["detail_gain"] = gamma
        return {"fused": clamp_unit(raw, straight_through=self.training), "raw": raw, "weight": w, "residual": r,
                **extra}

    def forward(self, ir: Tensor, vis_y: Tensor) -> Tensor:
        """Fuse (B, 1, H, W) IR and visible-Y tensors in [0, 1] (H, W even) into a (B, 1, H, W) tensor in [0, 1]."""
        return self._fuse(ir, vis_y)["fused"]

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
