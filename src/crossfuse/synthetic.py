"""Synthetic registered infrared/visible scenes, generated in code (no data needed).

A scene is a street at dusk: textured sky and ground, a road with lane marks, buildings with windows, trees, and
hot targets (people and vehicles). In the visible image some targets stand in a dark shadow and others behind smoke,
so they are nearly invisible there, while the infrared image shows them as hot blobs (smoke is almost transparent
to long-wave IR). This is the situation image fusion is for: the fused image should show the targets *and* the
visible texture and colour.

Everything is seeded (``numpy.random.default_rng(seed)``); :func:`make_scene` returns one pair and
:func:`scene_frames` a short clip of the same scene with moving targets. Values: IR ``uint8`` (H, W), visible
``uint8`` (H, W, 3) RGB, pixel-registered by construction.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import cv2
import numpy as np

from crossfuse.io import quantize


@dataclass
class Scene:
    """One synthetic pair: ``ir`` (H, W) uint8, ``vis`` (H, W, 3) uint8 RGB, ``targets`` (H, W) bool mask of
    the hot targets, ``hidden`` (H, W) bool mask of the dark/smoky visible regions."""

    ir: np.ndarray
    vis: np.ndarray
    targets: np.ndarray
    hidden: np.ndarray
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)


@dataclass
class _Layers:
    ir: np.ndarray  # float32 0-255
    vis: np.ndarray  # float32 0-255 RGB
    dark: np.ndarray  # float32 0-1: visible darkening strength
    smoke: np.ndarray  # float32 0-1: visible smoke opacity
    targets: list[dict]


def fractal_noise(rng: np.random.Generator, h: int, w: int, octaves: int = 5, base: int = 4) -> np.ndarray:
    """Sum of bicubically upsampled random grids (1/f-like texture), float32 in about [0, 1]."""
    out = np.zeros((h, w), dtype=np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        cells = base * 2**o
        grid = rng.random((max(2, cells * h // max(h, w)), max(2, cells * w // max(h, w)))).astype(np.float32)
        out += amp * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= 0.55
    return out / total


def _soft(mask: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigma) if sigma > 0 else mask.astype(np.float32)


def _background(rng: np.random.Generator, h: int, w: int) -> _Layers:
    horizon = int(h * rng.uniform(0.30, 0.42))
    yy = np.arange(h, dtype=np.float32)[:, None] * np.ones((1, w), np.float32)
    tex = fractal_noise(rng, h, w)
    fine = fractal_noise(rng, h, w, octaves=3, base=32)
    sky = yy < horizon
    # visible: sky gradient, grass/earth ground with texture
    vis = np.empty((h, w, 3), np.float32)
    t = yy / max(horizon, 1)
    for c, (top, bottom) in enumerate(((70, 190), (100, 170), (160, 180))):
        vis[..., c] = np.where(sky, top + (bottom - top) * t, 0)
    ground_col = np.array([95, 120, 60], np.float32)
    vis[~sky] = (ground_col * (0.6 + 0.8 * tex[..., None]) + 25 * (fine[..., None] - 0.5))[~sky]
    ir = np.where(sky, 25 + 20 * t, 85 + 40 * tex + 12 * (fine - 0.5)).astype(np.float32)
    # road: a trapezoid from the horizon to the bottom
    cx = w * rng.uniform(0.35, 0.65)
    top_half, bot_half = w * 0.04, w * rng.uniform(0.3, 0.45)
    poly = np.array([[cx - top_half, horizon], [cx + top_half, horizon], [cx + bot_half, h], [cx - bot_half, h]])
    road = np.zeros((h, w), np.uint8)
    cv2.fillPoly(road, [poly.astype(np.int32)], 1)
    road = road.astype(bool)
    vis[road] = (np.array([85, 85, 90], np.float32) * (0.8 + 0.4 * fine[..., None]))[road]
    ir[road] = (115 + 15 * fine)[road]
    for y in range(horizon + 10, h, max(12, h // 18)):  # dashed lane marks
        frac = (y - horizon) / max(h - horizon, 1)
        x0, half = int(cx), max(1, int(1 + 3 * frac))
        cv2.rectangle(vis, (x0 - half, y), (x0 + half, y + max(2, int(8 * frac))), (225, 225, 210), -1)
    # buildings along the horizon, windows lit (visible) and warm (IR)
    x = int(rng.integers(0, w // 10))
    while x < w:
        bw, bh = int(rng.uniform(0.06, 0.14) * w), int(rng.uniform(0.12, 0.3) * h)
        x1, y0 = min(w, x + bw), max(0, horizon - bh)
        if not (x < cx + top_half * 4 and x1 > cx - top_half * 4):
            shade = rng.uniform(0.5, 1.0)
            col = np.array([150, 130, 120], np.float32) * shade
            vis[y0:horizon, x:x1] = col * (0.85 + 0.3 * fine[y0:horizon, x:x1, None])
            ir[y0:horizon, x:x1] = 95 + 10 * shade + 8 * fine[y0:horizon, x:x1]
            step = max(6, bw // 5)
            for wy in range(y0 + 4, horizon - 6, step):
                for wx in range(x + 3, x1 - 5, step):
                    lit = rng.random() < 0.4
                    cv2.rectangle(vis, (wx, wy), (wx + step // 2, wy + step // 2),
                                  (240, 220, 150) if lit else (40, 45, 60), -1)
                    cv2.rectangle(ir, (wx, wy), (wx + step // 2, wy + step // 2), 150.0 if lit else 105.0, -1)
        x = x1 + int(rng.integers(2, max(3, w // 30)))
    # trees: textured green blobs, cool in IR
    for _ in range(int(rng.integers(3, 7))):
        tx, ty = int(rng.uniform(0, w)), int(rng.uniform(horizon, h * 0.8))
        if road[min(ty, h - 1), min(tx, w - 1)]:
            continue
        r = int(rng.uniform(0.03, 0.07) * w)
        blob = np.zeros((h, w), np.uint8)
        cv2.circle(blob, (tx, ty - r), r, 1, -1)
        m = blob.astype(bool)
        vis[m] = (np.array([40, 95, 35], np.float32) * (0.6 + 0.8 * fine[..., None]))[m]
        ir[m] = (70 + 25 * fine)[m]
    # hiding layers: a dark shadow region and a smoke plume, each soft-edged
    dark = np.zeros((h, w), np.float32)
    dx0 = int(rng.uniform(0.0, 0.25) * w)
    cv2.ellipse(dark, (dx0 + w // 6, int(h * 0.72)), (w // 5, h // 5), 0, 0, 360, 1.0, -1)
    dark = _soft(dark, w / 60)
    smoke = np.zeros((h, w), np.float32)
    cv2.ellipse(smoke, (int(w * rng.uniform(0.65, 0.85)), int(h * 0.6)), (w // 6, h // 4), 20, 0, 360, 1.0, -1)
    smoke = _soft(smoke, w / 40) * (0.75 + 0.25 * fractal_noise(rng, h, w, octaves=4, base=6))
    # targets: people and vehicles, half of them inside the dark or smoky regions
    targets = []
    n = int(rng.integers(4, 7))
    for i in range(n):
        kind = "vehicle" if i % 3 == 2 else "person"
        if i % 2 == 0:  # hidden: place inside the shadow or the smoke
            src = dark if i % 4 == 0 else smoke
            ys, xs = np.nonzero(src > 0.7)
            if len(ys):
                j = int(rng.integers(len(ys)))
                targets.append({"kind": kind, "x": float(xs[j]), "y": float(ys[j]), "v": rng.uniform(-1.5, 1.5)})
                continue
        targets.append({"kind": kind, "x": rng.uniform(0.1, 0.9) * w, "y": rng.uniform(horizon + 0.1 * h, 0.95 * h),
                        "v": rng.uniform(-1.5, 1.5)})
    return _Layers(ir=ir, vis=vis, dark=dark, smoke=smoke, targets=targets)


def _draw_targets(layers: _Layers, frame: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
    ir, vis = layers.ir.copy(), layers.vis.copy()
    mask = np.zeros((h, w), np.uint8)
    boxes = []
    for tgt in layers.targets:
        x = int(round(tgt["x"] + tgt["v"] * frame)) % w
        y = int(tgt["y"])
        scale = 0.4 + 0.8 * y / h  # perspective: nearer is bigger
        one = np.zeros((h, w), np.uint8)
        if tgt["kind"] == "person":
            ph, pw = int(0.11 * h * scale), int(0.03 * w * scale)
            cv2.ellipse(one, (x, y - ph // 2), (max(pw // 2, 1), max(ph // 2, 1)), 0, 0, 360, 1, -1)
            cv2.circle(one, (x, y - ph - max(pw // 2, 1)), max(pw // 2, 1), 1, -1)
            box = (x - pw, y - ph - pw, x + pw, y)
            heat, col = 235.0, (60, 50, 45)
        else:
            vw, vh = int(0.12 * w * scale), int(0.05 * h * scale)
            cv2.rectangle(one, (x - vw // 2, y - vh), (x + vw // 2, y), 1, -1)
            box = (x - vw // 2, y - vh, x + vw // 2, y)
            heat, col = 200.0, (70, 80, 110)
        m = one.astype(bool)
        ir[m] = heat
        vis[m] = col
        if tgt["kind"] == "vehicle":  # hot engine/exhaust at the front
            cv2.rectangle(ir, (box[0], y - vh // 2), (box[0] + vw // 4, y), 250.0, -1)
        mask |= one
        boxes.append(box)
    # thermal blur, IR sensor noise
    ir = cv2.GaussianBlur(ir, (0, 0), 1.0)
    return ir, vis, mask.astype(bool), boxes


def _finish(layers: _Layers, ir: np.ndarray, vis: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    h, w = ir.shape
    shade = 1.0 - 0.88 * layers.dark
    vis = vis * shade[..., None]
    haze = 170 + 40 * fractal_noise(rng, h, w, octaves=3, base=8)
    vis = vis * (1 - layers.smoke[..., None]) + haze[..., None] * layers.smoke[..., None]
    ir = ir * (1 - 0.1 * layers.smoke) + 0.1 * layers.smoke * 90  # LWIR sees through smoke (slight loss)
    vis += rng.normal(0, 2.0, vis.shape).astype(np.float32)
    ir += rng.normal(0, 1.5, ir.shape).astype(np.float32)
    return quantize(ir), quantize(vis)


def make_scene(height: int = 480, width: int = 640, seed: int = 0) -> Scene:
    """One synthetic registered IR/visible pair (see the module docstring)."""
    if height < 32 or width < 32:
        raise ValueError(f"scene must be at least 32x32, got {width}x{height}")
    rng = np.random.default_rng(seed)
    layers = _background(rng, height, width)
    ir, vis, mask, boxes = _draw_targets(layers, 0, height, width)
    ir8, vis8 = _finish(layers, ir, vis, rng)
    hidden = (layers.dark > 0.5) | (layers.smoke > 0.5)
    return Scene(ir=ir8, vis=vis8, targets=mask, hidden=hidden, boxes=boxes)


def scene_frames(n_frames: int, height: int = 240, width: int = 320,
                 seed: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``n_frames`` (ir, vis) pairs of one scene with targets moving horizontally (about 1 pixel per frame)."""
    rng = np.random.default_rng(seed)
    layers = _background(rng, height, width)
    for f in range(n_frames):
        ir, vis, _, _ = _draw_targets(layers, f, height, width)
        yield _finish(layers, ir, vis, np.random.default_rng((seed, f)))


__all__ = ["Scene", "make_scene", "scene_frames", "fractal_noise"]
