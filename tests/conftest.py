"""Shared test fixtures: the real datasets in ../shared/data.

Tests that need real data use the ``shared_data`` fixture (or ``dataset(name)``): when the data is missing they
*fail* with a clear message under ``CI=true`` and are skipped otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CROSSFUSE_DATA", REPO.parent / "shared" / "data"))


def require_data(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        msg = f"real data missing: {path} (set CROSSFUSE_DATA or place ../shared/data beside the repository)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def fuse_cli(out: Path, ir: Path, vi: Path, *extra: str):
    """``crossfuse fuse`` on one pair (quiet; it must succeed), the written image read back as an int array."""
    from crossfuse import cli
    from crossfuse.io import read_image

    assert cli.main(["fuse", "--ir", str(ir), "--vi", str(vi), "--out", str(out), "--quiet", *extra]) == 0
    return read_image(out).astype(int)


def cli_pairs(tmp_path: Path, images: dict):
    """Write each array of ``images`` to ``tmp_path/<name>.png`` (lossless); return ``fuse(ir, *extra, vi="vi")``:
    :func:`fuse_cli` on two of those files by name, each call writing its own output."""
    from crossfuse.io import write_image

    for name, a in images.items():
        write_image(tmp_path / f"{name}.png", a)

    def fuse(ir: str, *extra: str, vi: str = "vi"):
        tag = "".join((ir, "+", vi, *extra))
        return fuse_cli(tmp_path / "out" / f"{tag}.png", tmp_path / f"{ir}.png", tmp_path / f"{vi}.png", *extra)

    return fuse


def first_pair_u8(dataset: str):
    """The dataset's first pair (sorted by name) as 8-bit planes: IR gray and visible luma."""
    from crossfuse.io import luma_u8, read_pair

    root = require_data(dataset)
    stem = sorted(p.name for p in (root / "ir").iterdir())[0]
    return tuple(luma_u8(a) for a in read_pair(root / "ir" / stem, root / "vi" / stem))


@pytest.fixture
def shared_data() -> Path:
    return require_data()


def onnx_vs_torch(net, path: Path, name: str, seed: int) -> float:
    """Largest |ONNX - torch| of ``net`` (eval mode) exported to ``path``, over three frame sizes (one odd, one
    tiny) of seeded random pairs, both run through crossfuse's backends; skips without onnxruntime."""
    import numpy as np

    pytest.importorskip("onnxruntime")
    from crossfuse.backends import OnnxBackend, TorchBackend
    from crossfuse.export import export_onnx

    onnx = export_onnx(net, path, name=name)
    worst = 0.0
    for h, w in [(64, 96), (250, 182), (16, 16)]:
        rng = np.random.default_rng(h * w + seed)
        ir, vi = rng.random((h, w), dtype=np.float32), rng.random((h, w), dtype=np.float32)
        a, b = OnnxBackend(onnx)(ir, vi), TorchBackend(net, "cpu")(ir, vi)
        assert a.shape == (h, w)
        worst = max(worst, float(np.abs(a - b).max()))
    return worst


def perturb_(net, seed: int, scale: float = 0.05):
    """Add seeded Gaussian noise (``scale``) to every parameter in place, so zero-initialised heads act; returns
    ``net``."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * scale)
    return net


def assert_rebuilds(net, ir, vis, name: str = "fast"):
    """A network built from ``net.config`` with ``net``'s state dict fuses ``(ir, vis)`` exactly as ``net`` does (both
    in eval mode); returns the rebuilt network."""
    import torch

    from crossfuse.nets import build

    rebuilt = build(name, **net.config)
    rebuilt.load_state_dict(net.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(ir, vis), net.eval()(ir, vis))
    return rebuilt
