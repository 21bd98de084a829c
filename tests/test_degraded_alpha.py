"""``rule_alpha_degraded``: the rule head's alpha for frames an input step changed (docs/training.md H66), carried from
the Fuser's verdicts through the backends, tiling and ONNX to the network."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import first_pair_u8

from crossfuse.backends import takes_degraded
from crossfuse.export import export_onnx
from crossfuse.infer import Fuser
from crossfuse.models import load_model
from crossfuse.nets import build


def _with_constants(name: str, **constants: float) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(the shipped network ``name``, the same tensors with network ``constants`` added)."""
    return load_model(name), load_model(name, constants=constants)


def _with_switch(alpha_degraded: float = 0.4) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(crossfuse-robust14, the same tensors with ``rule_alpha_degraded``)."""
    return _with_constants("crossfuse-robust14", rule_alpha_degraded=alpha_degraded)


def _noisy_vis(vis: np.ndarray, sigma: float = 15.0) -> np.ndarray:
    rng = np.random.default_rng(3)
    return np.clip(np.round(vis + rng.normal(0.0, sigma, vis.shape)), 0, 255).astype(np.uint8)


def _two_frames(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A random batch of two frames and the flag marking the second as degraded."""
    g = torch.Generator().manual_seed(seed)
    ir, vis = torch.rand(2, 1, 48, 64, generator=g), torch.rand(2, 1, 48, 64, generator=g)
    return ir, vis, torch.tensor([0.0, 1.0]).view(2, 1, 1, 1)


def test_the_flag_picks_the_degraded_alpha_per_frame_and_the_config_rebuilds_it():
    base, net = _with_switch(0.4)
    assert net.config["rule_alpha_degraded"] == 0.4 and build("fast", **net.config).rule_alpha_degraded == 0.4
    ir, vis, flag = _two_frames(0)
    with torch.no_grad():
        out = net(ir, vis, flag)
        torch.testing.assert_close(out[:1], base(ir[:1], vis[:1]), rtol=0, atol=1e-6)  # frame 0: alpha 0.6
        torch.testing.assert_close(net(ir, vis), base(ir, vis), rtol=0, atol=0)  # no flag: alpha 0.6
        base.rule_alpha = 0.4
        torch.testing.assert_close(out[1:], base(ir[1:], vis[1:]), rtol=0, atol=1e-6)  # frame 1: alpha 0.4
    assert (out[0] - out[1]).abs().max() > 1e-3
    with pytest.raises(ValueError, match="rule_alpha_degraded and rule_gain_degraded need rule_head"):
        build("fast", rule_alpha_degraded=0.4)


def test_the_flag_picks_the_degraded_gain_per_frame_and_onnx_takes_it(tmp_path):
    base, net = _with_constants("crossfuse-robust14", rule_gain_degraded=1.0)
    assert net.config["rule_gain_degraded"] == 1.0 and takes_degraded(net) and not takes_degraded(base)
    ir, vis, flag = _two_frames(1)
    with torch.no_grad():
        out = net(ir, vis, flag)
        torch.testing.assert_close(out[:1], base(ir[:1], vis[:1]), rtol=0, atol=1e-6)  # frame 0: gain 1.1
        base.rule_gain = 1.0  # the gain blur is still built (base was made with 1.1): the stretch is the identity
        torch.testing.assert_close(out[1:], base(ir[1:], vis[1:]), rtol=0, atol=1e-6)  # frame 1: gain 1.0
    assert (out[0] - out[1]).abs().max() > 1e-4
    path = export_onnx(net, tmp_path / "gain.onnx", name="gain")
    assert Fuser(path, backend="onnx", device="cpu").runner.takes_degraded


def test_fuser_switches_on_a_noisy_pair_and_leaves_a_clean_pair_bit_identical():
    ir, vis = first_pair_u8("RoadScene")
    base, net = _with_switch(0.4)
    switched, plain = Fuser(net, device="cpu"), Fuser(base, device="cpu")
    np.testing.assert_array_equal(switched.fuse(ir, vis, gray=True), plain.fuse(ir, vis, gray=True))
    assert not switched.last_degraded

    noisy = _noisy_vis(vis)
    out = switched.fuse(ir, noisy, gray=True)
    assert switched.last_degraded and switched.last_verdicts["denoise_vis"]
    assert np.abs(out.astype(int) - plain.fuse(ir, noisy, gray=True)).max() > 0  # the switch changed something
    base.rule_alpha = 0.4
    np.testing.assert_array_equal(out, plain.fuse(ir, noisy, gray=True))  # ... to alpha 0.4 exactly
    tiler = Fuser(net, device="cpu", tile=192, overlap=32)
    tiled = tiler.fuse_y(ir, noisy)  # the flag reaches every tile
    assert tiler.last_tiles > 1
    np.testing.assert_allclose(tiled, Fuser(base, device="cpu", tile=192, overlap=32).fuse_y(ir, noisy), atol=1e-6)


def test_onnx_carries_the_flag_as_a_third_input(tmp_path):
    ir, vis = first_pair_u8("RoadScene")
    noisy = _noisy_vis(vis)
    base, net = _with_switch(0.4)
    path = export_onnx(net, tmp_path / "switched.onnx", name="switched")
    onnx_fuser, torch_fuser = Fuser(path, backend="onnx", device="cpu"), Fuser(net, device="cpu")
    assert onnx_fuser.runner.takes_degraded and not Fuser(base, device="cpu").runner.takes_degraded
    for v in (vis, noisy):
        np.testing.assert_allclose(onnx_fuser.fuse_y(ir, v), torch_fuser.fuse_y(ir, v), atol=1e-3)
        assert onnx_fuser.last_degraded == torch_fuser.last_degraded == (v is noisy)
    plain = export_onnx(base, tmp_path / "plain.onnx", name="plain")
    assert not Fuser(plain, backend="onnx", device="cpu").runner.takes_degraded


def test_export_derives_the_switched_model_from_the_same_tensors(tmp_path, capsys):
    from crossfuse import cli, models

    src, out = str(models.weights_path("crossfuse-robust14")), tmp_path / "switched.pt"
    assert cli.main(["export", "--format", "pt", "--model", src, "--set", "rule_alpha_degraded=0.4",
                     "--out", str(out)]) == 0
    blob = models.read_checkpoint(out)
    assert blob["config"]["rule_alpha_degraded"] == 0.4 and blob["meta"]["config_overrides"] == {
        "rule_alpha_degraded": 0.4}
    derived, base = models.load_model(out), models.load_model("crossfuse-robust14")
    assert derived.rule_alpha_degraded == 0.4 and base.rule_alpha_degraded is None
    shipped = models.load_model("crossfuse-robust15")  # made this way (docs/protocol.md H68)
    assert derived.config == shipped.config
    for k, v in base.state_dict().items():
        assert torch.equal(derived.state_dict()[k], v) and torch.equal(shipped.state_dict()[k], v), k
    both = tmp_path / "both.pt"  # the default, crossfuse-robust16 (H72): two constants set at once
    assert cli.main(["export", "--format", "pt", "--model", src, "--set", "rule_alpha_degraded=0.4",
                     "--set", "rule_gain_degraded=1.0", "--out", str(both)]) == 0
    derived16, shipped16 = models.load_model(both), models.load_model("crossfuse-robust16")
    assert derived16.config == shipped16.config and shipped16.rule_gain_degraded == 1.0
    assert all(torch.equal(derived16.state_dict()[k], v) for k, v in shipped16.state_dict().items())
    capsys.readouterr()
    assert cli.main(["export", "--format", "pt", "--model", src, "--set", "no_such_key=1",
                     "--out", str(tmp_path / "bad.pt")]) != 0
    assert "no_such_key" in capsys.readouterr().err and not (tmp_path / "bad.pt").exists()
    assert cli.main(["export", "--model", src, "--set", "rule_alpha_degraded=0.4",
                     "--out", str(tmp_path / "m.onnx")]) != 0
    assert "use it with --format pt" in capsys.readouterr().err


def test_one_fuser_shared_by_threads_gives_each_frame_its_own_flag():
    """`crossfuse fuse --jobs N` shares one Fuser between threads: the flag must come from each call's own readings,
    not from the last_* attributes another thread may have just written."""
    from concurrent.futures import ThreadPoolExecutor

    ir, vis = first_pair_u8("RoadScene")
    noisy = _noisy_vis(vis)
    _, net = _with_switch(0.4)
    fuser = Fuser(net, device="cpu")
    frames = [vis, noisy] * 4
    alone = [fuser.fuse_y(ir, v) for v in frames[:2]]
    with ThreadPoolExecutor(max_workers=4) as pool:
        shared = list(pool.map(lambda v: fuser.fuse_y(ir, v), frames))
    for i, out in enumerate(shared):
        np.testing.assert_array_equal(out, alone[i % 2])


def test_a_frame_without_the_flag_is_bit_identical_to_the_network_without_the_gain_switch():
    base, net = _with_constants("crossfuse-robust15", rule_gain_degraded=1.0)
    g = torch.Generator().manual_seed(2)
    ir, vis = torch.rand(1, 1, 64, 80, generator=g), torch.rand(1, 1, 64, 80, generator=g)
    with torch.no_grad():
        for flag in (None, torch.zeros(1, 1, 1, 1)):
            assert torch.equal(net(ir, vis, flag), base(ir, vis, flag))  # exactly: the clean rows of H72
