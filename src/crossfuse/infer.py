"""Fusion inference on NumPy images: :func:`fuse` and the :class:`Fuser` that keeps a model loaded.

Conventions (see docs/fuse.md; the pixel conventions — inputs, scaling, the IR window, colour, output dtype, the
optional stretch — are :mod:`crossfuse.pixels`):

* **Visible veil** (``vis_veil``; :mod:`crossfuse.veil`): a model may declare that its visible input has its veil
  level (the lifted black level of a hazy or washed-out frame, one number per frame) taken off first; the Fuser does
  it on the whole visible Y plane before tiling (for video once, from the first frame, like the IR window).
  crossfuse-robust9 and later declare 0.75; frames with dark regions are left as they are.
* **JPEG deblocking** (``deblock``; :mod:`crossfuse.deblock`): a model may declare that 8-bit source planes which
  read as coarse JPEGs (estimated quality <= 40) are deblocked first; the Fuser does it per frame on the IR plane
  (before registration) and on the visible Y (before the veil step), whole planes before tiling. Anything else is
  left bit for bit as it is.
* **IR destriping** (``destripe``; :mod:`crossfuse.destripe`): a model may declare that an IR plane whose column
  offsets spread over 5 grey levels (plainly striped, fixed-pattern noise) has its column and row offsets taken off
  after the IR window; whole plane, before tiling; for video the first frame decides for the clip. Planes under the
  gate are left bit for bit as they are.
* **Denoising** (``denoise``; :mod:`crossfuse.denoise`): a model may declare that a source plane whose estimated
  white noise is over 3.5 grey levels is denoised (non-local means): the IR after destriping, the visible Y before the
  veil lift; whole planes, before tiling; for video the first frame decides for the clip. Planes under the gate are
  left bit for bit as they are.
* **Spread-noise gates** (part of ``denoise``; a model that declares ``spread_noise_gate`` for the visible plane,
  crossfuse-robust17 and later, H74, and ``spread_noise_gate_ir`` for the IR, crossfuse-robust18, H75): noise a
  camera's processing has spread over neighbouring pixels escapes the denoising step's estimate, but not the network's
  own restoration shares. When the earlier steps left a plane alone and the frame mean of its share (read from the
  same pass) exceeds its gate, that plane (the visible after the veil lift) is denoised at the level
  :func:`crossfuse.denoise.spread_noise_level` reads and the frame is fused again, marked degraded. A model may also
  declare ``spread_noise_gate_excess`` (crossfuse-robust19, H77): the visible plane is treated so as well when, both
  planes untouched by the earlier steps, its share exceeds the IR share by more than that (noise on the visible
  sensor alone, which stays under the absolute gate on dark frames). Frames under the gates cost nothing more and
  are fused bit for bit as without them; for video the first frame decides.
* **Any size.** Inputs are padded (reflect) to the network's ``pad_multiple`` and the result is cropped back, so the
  output has the input's size exactly. Large frames are fused in overlapping tiles blended with raised-cosine
  weights (:mod:`crossfuse.tiling`); the tile size comes from the memory budget ``max_memory`` unless ``tile`` is
  given. On a GPU an out-of-memory error falls back to smaller tiles.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np

from crossfuse import io as cio
from crossfuse.backends import (
    INPUT_STEPS,
    SHARE_PLANES,
    SPREAD_EXCESS_GATE,
    SPREAD_GATES,
    Backend,
    TorchBackend,
    declared_steps,
    estimate_bytes_per_pixel,
    make_backend,
    resolve_device,
)
from crossfuse.deblock import deblock as deblock_plane
from crossfuse.denoise import GATE as NOISE_GATE
from crossfuse.denoise import denoise as denoise_plane
from crossfuse.denoise import denoise_spread
from crossfuse.destripe import GATE
from crossfuse.destripe import destripe as destripe_plane
from crossfuse.pixels import (  # noqa: F401  (re-exported: the pixel conventions have always been importable here)
    _check_dtype,
    _ir_plane,
    _out_dtype,
    apply_stretch,
    compose_output,
    normalize_ir,
    parse_ir_window,
    resolve_ir_window,
    stretch_window,
    visible_dark,
    visible_y,
)
from crossfuse.step_report import StepReport
from crossfuse.tiling import count_tiles, run_padded, run_tiled
from crossfuse.veil import lift_veil, veil_floor

DEFAULT_MAX_MEMORY = "1GB"
DEFAULT_OVERLAP = 128
TILE_ALIGN = 32  # tile starts on multiples of this (>= the total stride of the shipped networks)
_IMAGE_BYTES_PER_PIXEL = 24  # our own float32 planes per pixel while fusing (ir, y, accumulators, output)


# --------------------------------------------------------------------------------------------------- parsing


def parse_memory(spec: str | int | float) -> int:
    """``"1.5GB"``, ``"800MB"``, ``"512M"``, ``2**30`` -> bytes (binary units: 1 GB = 2**30 bytes)."""
    if isinstance(spec, (int, float)):
        if spec <= 0:
            raise ValueError(f"memory budget must be positive, got {spec}")
        return int(spec)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?b)?\s*", str(spec).lower())
    if not m:
        raise ValueError(f"cannot read memory size {spec!r} (use e.g. 1.5GB, 800MB)")
    value = float(m.group(1)) * 1024 ** " kmgt".index(m.group(2) or " ")
    if value <= 0:
        raise ValueError(f"memory budget must be positive, got {spec!r}")
    return int(value)


# --------------------------------------------------------------------------------------------------- Fuser


class Fuser:
    """A loaded fusion model plus the inference policy (device, precision, tiling, IR window, stretching).

    Args:
        model: any spec of :func:`crossfuse.models.resolve`: a shipped model name (default:
            ``crossfuse.models.DEFAULT_MODEL``), an exported weights ``.pt``, a training checkpoint or run folder,
            an ``.onnx`` file (implies ``backend="onnx"``), or an ``nn.Module`` following the network contract
            (``forward(ir, vis_y)``, ``pad_multiple``).
        device: ``auto`` | ``cpu`` | ``cuda[:N]`` | ``mps``.
        precision: ``auto`` (fp16 on GPUs, fp32 on the CPU) | ``fp32`` | ``fp16`` | ``bf16``.
        backend: ``torch`` or ``onnx`` (onnxruntime; a torch model is exported in memory first).
        tile, overlap: force tiled inference with this tile size / overlap (pixels); ``tile=None`` chooses from
            ``max_memory`` (no tiles when the whole frame fits).
        max_memory: host working-memory budget of one call (images + network activations), e.g. ``"1.5GB"``;
            on a CUDA device the activation budget is 90 % of the free GPU memory instead.
        ir_window: IR scaling rule (module docstring); stretch: min-max stretch the fused Y (off by default).
        threads: onnxruntime intra-op threads (0: its default; torch threads are set with ``torch.set_num_threads``).
        register: estimate each pair's misregistration (``crossfuse.registration.estimate``, as ``check-align``)
            and warp the IR onto the visible frame when the verdict is "no" (confident, a corner displaced more
            than 2 px); ``last_alignment`` keeps the estimate. Off by default (docs/fuse.md).
        vis_veil: strength in [0, 1] of the visible veil removal (:mod:`crossfuse.veil`) applied to the whole visible
            plane before tiling; ``None`` (default): what the model declares (crossfuse-robust9 and later: 0.75; 0 for
            models that declare nothing); ``0`` turns it off.
        deblock: deblock source planes that read as coarse JPEGs (:mod:`crossfuse.deblock`) before fusing; ``None``
            (default): what the model declares (crossfuse-robust10 and later: on); ``False`` turns it off.
        destripe: take a plainly striped IR plane's column / row offsets off (:mod:`crossfuse.destripe`); ``None``
            (default): what the model declares (crossfuse-robust11 and later: on); ``False`` turns it off.
        denoise: denoise a plainly noisy source plane (:mod:`crossfuse.denoise`); ``None`` (default): what the model
            declares (crossfuse-robust12 and later: on); ``False`` turns it off.
        noise_level: the sources' noise level in grey levels (0-255), when the user knows it: both planes are
            denoised with it as the filter strength on every frame, whatever the estimate (which cannot see noise a
            camera's processing has spread over neighbouring pixels); it turns the denoising step on. ``None``
            (default): the gated step.
        spread_gate: the spread-noise gates the model declares (module docstring; part of the denoising step):
            ``None`` (default) or ``True``: on when denoising is; ``False``: off, the denoising step kept.
    """

    def __init__(self, model: Any = None, *, device: str = "auto", precision: str = "auto",
                 backend: str = "torch", tile: int | None = None, overlap: int = DEFAULT_OVERLAP,
                 max_memory: str | int = DEFAULT_MAX_MEMORY, ir_window: Any = "auto", stretch: bool = False,
                 threads: int = 0, register: bool = False, vis_veil: float | None = None,
                 deblock: bool | None = None, destripe: bool | None = None,
                 denoise: bool | None = None, noise_level: float | None = None,
                 spread_gate: bool | None = None) -> None:
        from crossfuse.models import resolve

        resolved = resolve(model, device=None)  # the backend moves the network to its device
        self.model_name = resolved.name
        self.runner: Backend = make_backend(resolved, backend, device, precision, threads)
        self.backend = self.runner.name
        self.tile, self.overlap = tile, int(overlap)
        if tile is not None and int(tile) < 16:
            raise ValueError(f"tile size must be at least 16 pixels, got {tile}")
        if self.overlap < 0:
            raise ValueError(f"overlap must be >= 0, got {overlap}")
        self.max_memory = parse_memory(max_memory)
        parse_ir_window(ir_window)  # validate early
        self.ir_window, self.stretch = ir_window, stretch
        self.last_tiles = 0  # tiles used by the last call (0 = whole frame at once)
        self.register = bool(register)
        self._local = threading.local()  # last_report per thread: --jobs workers share one Fuser
        given = {"vis_veil": vis_veil, "deblock": deblock, "destripe": destripe, "denoise": denoise}
        steps = {name: declared if given[name] is None else type(declared)(given[name])  # None: as the model declares
                 for name, declared in declared_steps(self.runner).items()}
        if not 0.0 <= steps["vis_veil"] <= 1.0:
            raise ValueError(f"vis_veil must be in [0, 1], got {steps['vis_veil']}")
        self.vis_veil, self.deblock, self.destripe, self.denoise = (steps[name] for name in INPUT_STEPS)
        if noise_level is not None:
            if denoise is False:
                raise ValueError("noise_level denoises every frame; it cannot be combined with denoise=False")
            if not float(noise_level) > 0:
                raise ValueError(f"noise_level must be > 0 grey levels, got {noise_level}")
            self.denoise = True
        self.noise_level = None if noise_level is None else float(noise_level)
        gates = self.runner.spread_noise_gates
        if spread_gate and not (gates and self.denoise):
            raise ValueError("spread_gate=True needs a model that declares a spread-noise gate and the denoising step "
                             f"on ({self.model_name}: gates {sorted(gates) or 'none'}, denoise {self.denoise})")
        # the gates belong to the denoising step: off with it, or on their own. plane -> gate
        gates = gates if self.denoise and spread_gate is not False else {}
        self.spread_noise_gates = {plane: gates[key] for plane, key in SPREAD_GATES.items() if key in gates}
        self.spread_excess_gate = gates.get(SPREAD_EXCESS_GATE)  # visible share minus IR share (H77); None: none

    @property
    def last_report(self) -> StepReport:
        """What the input steps did to the last pair fused by this thread (an empty report before the first)."""
        return getattr(self._local, "report", None) or StepReport()

    @property
    def last_levels(self) -> dict[str, float]:
        """The gated steps' readings of the last pair (destripe: IR column-offset spread; denoise_ir / denoise_vis:
        noise level, grey levels)."""
        return self.last_report.levels

    @property
    def last_verdicts(self) -> dict[str, bool]:
        """Whether each gated step changed its plane of the last pair."""
        return self.last_report.verdicts

    @property
    def last_quality(self) -> tuple[int, int]:
        """Estimated JPEG quality of the last pair's (IR, visible) planes when deblocking."""
        return self.last_report.quality

    @property
    def last_degraded(self) -> bool:
        """Whether an input step changed the last pair (what fuse_planes was told)."""
        return self.last_report.degraded

    @property
    def last_alignment(self) -> Any:
        """The last pair's registration.Alignment when register is on."""
        return self.last_report.alignment

    @property
    def pad_multiple(self) -> int:
        return self.runner.pad_multiple

    def plan_tile(self, h: int, w: int) -> int | None:
        """The tile size for an ``h`` x ``w`` frame: ``None`` (whole frame) when it fits ``max_memory``."""
        if self.tile is not None:
            if self.tile >= max(h, w):
                return None
            if self.tile <= self.overlap + self.align:
                raise ValueError(f"tile ({self.tile}) must exceed overlap + {self.align} ({self.overlap + self.align})")
            return int(self.tile)
        gpu = self.runner.device_budget()
        # on a GPU the activations live in GPU memory (our image planes stay in host memory)
        budget = gpu if gpu is not None else self.max_memory - _IMAGE_BYTES_PER_PIXEL * h * w
        bpp = self.runner.bytes_per_pixel()
        if bpp * h * w <= budget:
            return None
        side = int(math.sqrt(max(budget, 0) / bpp))  # below the smallest useful tile, use that tile anyway
        a = self.align
        side = max(side, 2 * (self.overlap + a), 128)
        return side // a * a

    @property
    def align(self) -> int:
        """Tile starts are multiples of this: lcm of :data:`TILE_ALIGN` and the network's ``pad_multiple``."""
        return math.lcm(TILE_ALIGN, self.pad_multiple)

    def fuse_planes(self, ir01: np.ndarray, y01: np.ndarray, degraded: bool = False) -> np.ndarray:
        """Fuse float32 (H, W) planes in [0, 1] -> fused Y (H, W) float32 in [0, 1] (padding/tiling handled);
        ``degraded``: an input step changed this frame (:attr:`last_degraded`; only a network that takes the flag,
        ``backends.takes_degraded``, reads it)."""
        return self._run(ir01, y01, degraded)[0]

    def _run(self, ir01: np.ndarray, y01: np.ndarray, degraded: bool) -> tuple[np.ndarray, dict[str, float]]:
        """:meth:`fuse_planes` and the frame means of the network's restoration shares of the same pass (``{"ir":
        ..., "vis": ...}``; empty when the model declares no spread-noise gate)."""
        if ir01.shape != y01.shape or ir01.ndim != 2:
            raise ValueError(f"IR and visible planes must be equal (H, W) arrays, got {ir01.shape}, {y01.shape}")
        run = self.runner
        if degraded and run.takes_degraded:
            run = functools.partial(self.runner, degraded=True)
        h, w = ir01.shape
        tile = self.plan_tile(h, w)
        while True:
            try:
                self.last_tiles = 0 if tile is None else count_tiles(h, w, tile, self.overlap, self.align)
                if tile is None:
                    out = run_padded(run, ir01, y01, self.pad_multiple)
                else:
                    out = run_tiled(run, ir01, y01, tile=tile, overlap=self.overlap,
                                    multiple=self.pad_multiple, align=self.align)
                shares = {}
                if out.ndim == 3:  # (fused, *shares in SHARE_PLANES order): a model with a spread-noise gate
                    shares = {k: float(np.mean(x, dtype=np.float64)) for k, x in zip(SHARE_PLANES, out[1:],
                                                                                      strict=True)}
                    out = out[0]
                return np.clip(out, 0.0, 1.0).astype(np.float32, copy=False), shares
            except RuntimeError as exc:  # GPU out of memory -> smaller tiles
                if not self.runner.is_oom(exc):
                    raise
                self.runner.free_cache()
                tile = (max(h, w) if tile is None else tile) // 2 // self.align * self.align
                if tile < max(128, 2 * (self.overlap + self.align)):
                    raise RuntimeError(f"out of GPU memory even with {tile * 2}-pixel tiles") from exc

    def __call__(self, ir: np.ndarray, vis: np.ndarray, **kwargs: Any) -> np.ndarray:
        return self.fuse(ir, vis, **kwargs)

    def fuse(self, ir: np.ndarray, vis: np.ndarray, *, gray: bool = False, dtype: Any = None,
             ir_window: Any = None, stretch: bool | tuple[float, float] | None = None) -> np.ndarray:
        """Fuse one registered pair of NumPy images; see the module docstring for the conventions.

        ``ir_window``: a spec or a resolved ``(lo, hi)`` (overrides the Fuser's); ``stretch``: ``True`` (min-max
        of this image), a fixed ``(lo, hi)`` window on the fused Y in [0, 1] (used for video), or ``False``.
        """
        ir, vis = check_pair(ir, vis)
        out_dtype = _out_dtype(vis, dtype)
        fused = self.fuse_y(ir, vis, ir_window)
        st = self.stretch if stretch is None else stretch
        if st is True:
            fused = apply_stretch(fused, stretch_window(fused))
        elif isinstance(st, (tuple, list)):
            fused = apply_stretch(fused, (float(st[0]), float(st[1])))
        return compose_output(fused, vis, gray=gray, dtype=out_dtype)

    def planes(self, ir: np.ndarray, vis: np.ndarray, ir_window: Any = None, veil: float | None = None,
               verdicts: dict[str, bool] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The network's input planes of a pair: IR through the window, visible luma with the veil taken off
        (``veil``: a level from :meth:`veil_of`, e.g. a video's first frame; ``None``: this frame's), float32 (H, W)
        in [0, 1] (the IR registered onto the visible frame first when ``register`` is on). ``verdicts``: the gated
        steps' decisions to follow instead of their own gates (a video's first-frame :attr:`last_verdicts`);
        ``None``: each step reads this frame."""
        return self._planes(ir, vis, ir_window, veil, verdicts)[:2]

    def _planes(self, ir: np.ndarray, vis: np.ndarray, ir_window: Any = None, veil: float | None = None,
                verdicts: dict[str, bool] | None = None) -> tuple[np.ndarray, np.ndarray, bool]:
        """:meth:`planes` and whether an input step changed the frame, from this call's own readings (one Fuser
        may serve several threads: the ``last_*`` attributes only report)."""
        y = visible_y(np.asarray(vis))
        level = self.veil_of(vis, y) if veil is None else float(veil)
        quality, deblocked = (100, 100), False
        if self.deblock:
            ir, y, quality, deblocked = self._deblocked(ir, vis, y)
        alignment = None
        if self.register:
            ir, alignment = registered_ir(ir, vis)
        window = resolve_ir_window(ir, self.ir_window if ir_window is None else ir_window)
        ir01 = normalize_ir(ir, window)
        levels: dict[str, float] = {}
        done: dict[str, bool] = {}
        if self.destripe:
            ir01 = _gated("destripe", destripe_plane, ir01, GATE, verdicts, levels, done)
        if self.denoise:
            step = functools.partial(denoise_plane, level=self.noise_level)
            ir01 = _gated("denoise_ir", step, ir01, NOISE_GATE, verdicts, levels, done)
            y = _gated("denoise_vis", step, y, NOISE_GATE, verdicts, levels, done)
        degraded = deblocked or any(done.values())
        self._local.report = StepReport(level, quality, deblocked, levels, done, degraded, alignment)
        return ir01, lift_veil(y, level), degraded

    @property
    def last_stripe(self) -> float:
        """Column-offset spread (grey levels) of the last pair's IR plane when destriping (0 when not read)."""
        return self.last_levels.get("destripe", 0.0)

    @property
    def last_striped(self) -> bool:
        """Whether the last frame's IR plane was destriped (for video the first frame's verdict holds for the clip,
        so the step never switches on and off from frame to frame)."""
        return self.last_verdicts.get("destripe", False)

    def _deblocked(self, ir: np.ndarray, vis: np.ndarray,
                   y: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[int, int], bool]:
        """The IR plane and the visible luma ``y`` with the planes that read as coarse JPEGs deblocked (the others
        returned as they are), the two estimated qualities, and whether a plane was deblocked. Only 8-bit sources
        are read (JPEG is 8-bit)."""
        plane = _ir_plane(ir)
        ir_db, ir_q = deblock_plane(plane)
        y8 = cio.quantize(y * np.float32(255.0)) if np.asarray(vis).dtype == np.uint8 else None  # stored luma back
        y_db, vis_q = deblock_plane(y8) if y8 is not None else (y8, 100)
        changed = ir_db is not plane or y_db is not y8
        y = y if y_db is y8 else y_db.astype(np.float32) / np.float32(255.0)
        return (ir if ir_db is plane else ir_db), y, (ir_q, vis_q), changed

    def veil_of(self, vis: np.ndarray, y: np.ndarray | None = None) -> float:
        """The veil level this Fuser takes off ``vis`` (strength ``vis_veil`` times the frame's floor; 0 when off);
        ``y``: its luma when the caller has it already (:func:`visible_y`)."""
        if self.vis_veil <= 0:
            return 0.0
        vis = np.asarray(vis)
        return self.vis_veil * veil_floor(visible_dark(vis, visible_y(vis) if y is None else y))

    def fuse_y(self, ir: np.ndarray, vis: np.ndarray, ir_window: Any = None, veil: float | None = None,
               verdicts: dict[str, bool] | None = None) -> np.ndarray:
        """The fused Y in [0, 1] (float32, before stretching/colour): for callers that pick windows themselves."""
        ir01, y01, degraded = self._planes(ir, vis, ir_window, veil, verdicts)
        return self._spread_gated(ir01, y01, degraded, verdicts)

    def _spread_gated(self, ir01: np.ndarray, y01: np.ndarray, degraded: bool,
                      verdicts: dict[str, bool] | None) -> np.ndarray:
        """Fuse the planes through the spread-noise gates (module docstring): a plane the earlier steps left alone
        whose share of this pass exceeds its gate (``verdicts``: a video's first-frame decisions instead) is denoised,
        and the frame fused again, marked degraded; verdicts, shares and levels go to :attr:`last_report`."""
        report = self._local.report
        touched = {"ir": report.verdicts.get("destripe") or report.verdicts.get("denoise_ir"),
                   "vis": report.verdicts.get("denoise_vis")}
        forced = {p: None if verdicts is None else verdicts.get(f"spread_{p}") for p in ("ir", "vis")}
        gated = [p for p in self.spread_noise_gates if not touched[p]]
        if not gated:
            return self._run(ir01, y01, degraded)[0]
        levels, said = dict(report.levels), dict(report.verdicts)
        said.update({f"spread_{p}": False for p in gated if forced[p] is False})
        open_ = [p for p in gated if forced[p] is not False]
        if not open_:
            self._local.report = dataclasses.replace(report, verdicts=said)
            return self._run(ir01, y01, degraded)[0]
        fused, shares = self._run(ir01, y01, degraded) if any(forced[p] is None for p in open_) else (None, {})
        planes = {"ir": ir01, "vis": y01}
        for p in open_:
            if forced[p] is None:
                levels[f"spread_share_{p}"] = shares[p]
            said[f"spread_{p}"] = bool(forced[p]) or self._spread_noisy(p, shares, touched)
            if said[f"spread_{p}"]:
                planes[p], levels[f"spread_{p}"] = denoise_spread(planes[p])
        fired = any(said[f"spread_{p}"] for p in open_)
        self._local.report = dataclasses.replace(report, levels=levels, verdicts=said,
                                                 degraded=report.degraded or fired)
        if not fired:
            return fused  # type: ignore[return-value]  (nothing forced on: this pass read the shares)
        return self._run(planes["ir"], planes["vis"], True)[0]

    def _spread_noisy(self, plane: str, shares: dict[str, float], touched: dict[str, Any]) -> bool:
        """Whether ``plane``'s share of this pass says spread noise: over its gate, or (the visible, H77) over the IR
        share by more than the excess gate while the IR came through the earlier steps as it was."""
        if shares[plane] > self.spread_noise_gates[plane]:
            return True
        x = self.spread_excess_gate
        return plane == "vis" and x is not None and not touched["ir"] and shares["vis"] - shares["ir"] > x


def _gated(name: str, step: Any, plane: np.ndarray, gate: float, verdicts: dict[str, bool] | None,
           levels: dict[str, float], done: dict[str, bool]) -> np.ndarray:
    """``step(plane, gate) -> (plane', reading)`` by its own gate, or forced on / skipped by ``verdicts[name]``; the
    reading and whether the plane was changed go to ``levels[name]`` / ``done[name]``."""
    forced = None if verdicts is None else verdicts.get(name)
    if forced is False:
        done[name] = False
        return plane
    out, levels[name] = step(plane, gate=-1.0 if forced else gate)
    done[name] = out is not plane
    return out


def registered_ir(ir: np.ndarray, vis: np.ndarray) -> tuple[np.ndarray, Any]:
    """``(ir', alignment)``: ``ir`` warped onto ``vis``'s frame by check-align's estimate when its verdict is "no",
    else ``ir`` itself (an aligned or unknown pair is never resampled)."""
    from crossfuse import registration

    ir = np.asarray(ir)
    a = registration.estimate(ir, vis)
    if a.verdict() != "no":
        return ir, a
    src = ir.astype(np.float32) if ir.dtype.kind == "f" else ir
    return registration.register(src, a.matrix), a


def check_pair(ir: np.ndarray, vis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pair as arrays (a ``(H, W, 1)`` visible as ``(H, W)``), or a ValueError saying what is wrong."""
    ir, vis = np.asarray(ir), np.asarray(vis)
    _check_dtype(ir, "IR")
    _check_dtype(vis, "visible")
    if vis.ndim == 3 and vis.shape[2] == 1:
        vis = vis[:, :, 0]
    if not (vis.ndim == 2 or (vis.ndim == 3 and vis.shape[2] == 3)):
        raise ValueError(f"visible image must be (H, W) gray or (H, W, 3) RGB, got shape {vis.shape}")
    if ir.shape[:2] != vis.shape[:2]:
        raise ValueError(f"IR is {ir.shape[1]}x{ir.shape[0]} but visible is {vis.shape[1]}x{vis.shape[0]} "
                         "(W x H); the pair must be registered and the same size")
    if min(vis.shape[:2]) < 1:
        raise ValueError(f"empty image of shape {vis.shape}")
    return ir, vis


def fuse(ir: np.ndarray, vis: np.ndarray, model: Any = None, *, gray: bool = False, dtype: Any = None,
         device: str = "auto", precision: str = "auto", backend: str = "torch", tile: int | None = None,
         overlap: int = DEFAULT_OVERLAP, max_memory: str | int = DEFAULT_MAX_MEMORY, ir_window: Any = "auto",
         stretch: bool = False) -> np.ndarray:
    """Fuse one pair with a one-off :class:`Fuser` (use a Fuser for repeated calls); ``model``: any spec of
    :func:`crossfuse.models.resolve`. ``gray`` and ``dtype`` go to :meth:`Fuser.fuse`, the rest to :class:`Fuser`."""
    fuser = Fuser(model, device=device, precision=precision, backend=backend, tile=tile, overlap=overlap,
                  max_memory=max_memory, ir_window=ir_window, stretch=stretch)
    return fuser.fuse(ir, vis, gray=gray, dtype=dtype)


# --------------------------------------------------------------------------------------------------- files


read_pair = cio.read_pair  # the one pair reader lives in crossfuse.io (re-exported: public API of this module)


def fuse_file(fuser: Fuser, ir_path: str | os.PathLike, vi_path: str | os.PathLike, out_path: str | os.PathLike,
              *, gray: bool = False, bit_depth: int | None = None, overwrite: bool = False) -> Path:
    """Read, fuse and atomically write one pair. ``bit_depth`` defaults to the visible file's (8 or 16)."""
    ir, vi = read_pair(ir_path, vi_path)
    depth = bit_depth or (16 if vi.dtype == np.uint16 else 8)
    fused = fuser.fuse(ir, vi, gray=gray, dtype=np.uint16 if depth == 16 else np.uint8)
    return cio.write_image(out_path, fused, overwrite=overwrite)


__all__ = ["Fuser", "fuse", "fuse_file", "read_pair", "parse_memory", "parse_ir_window", "resolve_ir_window",
           "normalize_ir", "visible_y", "compose_output", "resolve_device", "TorchBackend", "estimate_bytes_per_pixel"]
