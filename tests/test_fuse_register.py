"""`Fuser(register=True)` / `crossfuse fuse --register`: check-align's estimate, then the IR warped onto the visible
frame only when the pair is off (verdict "no"); an aligned pair goes through untouched."""

from __future__ import annotations

import numpy as np
import pytest

from crossfuse import cli
from crossfuse.degrade import rigid_warp
from crossfuse.infer import Fuser
from crossfuse.io import read_image, write_image
from crossfuse.synthetic import make_scene

INNER = (slice(12, -12), slice(12, -12))  # away from the replicated border of the shift


@pytest.fixture(scope="module")
def fusers():
    return Fuser(device="cpu"), Fuser(device="cpu", register=True)


@pytest.mark.parametrize("seed", [0, 2])
def test_aligned_pair_is_not_resampled(fusers, seed):
    plain, reg = fusers
    sc = make_scene(240, 320, seed=seed)
    out = reg.fuse_y(sc.ir, sc.vis)
    assert reg.last_alignment.verdict() == "yes"
    np.testing.assert_array_equal(out, plain.fuse_y(sc.ir, sc.vis))


@pytest.mark.parametrize("seed", [0, 1])
def test_shifted_ir_is_registered_before_fusion(fusers, seed):
    plain, reg = fusers
    sc = make_scene(240, 320, seed=seed)
    ref = plain.fuse_y(sc.ir, sc.vis)
    moved = rigid_warp(sc.ir, 6, -4, 0.0)  # IR content 6 px right, 4 px up
    out = reg.fuse_y(moved, sc.vis)
    a = reg.last_alignment
    assert a.verdict() == "no" and a.dx == pytest.approx(6, abs=0.5) and a.dy == pytest.approx(-4, abs=0.5)
    err_reg = float(np.abs(out - ref)[INNER].mean())
    err_plain = float(np.abs(plain.fuse_y(moved, sc.vis) - ref)[INNER].mean())
    assert err_reg < 0.005 and err_reg < err_plain / 10, (err_reg, err_plain)
    # float IR (any scale the IR window handles) registers the same way
    reg.fuse_y(moved.astype(np.float64) / 255.0, sc.vis)
    assert reg.last_alignment.dx == pytest.approx(6, abs=0.5)


def test_cli_register_flag(tmp_path, fusers):
    _, reg = fusers
    sc = make_scene(240, 320, seed=1)
    moved = rigid_warp(sc.ir, 6, -4, 0.0)
    write_image(tmp_path / "ir" / "p.png", moved)
    write_image(tmp_path / "vi" / "p.png", sc.vis)
    for flag, out in (([], "plain"), (["--register"], "reg")):
        assert cli.main(["fuse", "--ir", str(tmp_path / "ir"), "--vi", str(tmp_path / "vi"), "--out",
                         str(tmp_path / out), "--gray", "--device", "cpu", "--quiet", *flag]) == 0
    got = read_image(tmp_path / "reg" / "p.png")
    want = np.clip(np.round(reg.fuse_y(moved, sc.vis) * 255), 0, 255).astype(np.uint8)
    assert np.abs(got.astype(int) - want).max() <= 1
    assert np.abs(got.astype(int) - read_image(tmp_path / "plain" / "p.png")).mean() > 1.0
