"""Tests of the fusion-network registry and the network contract (crossfuse.nets)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from crossfuse.nets import build, list_networks
from crossfuse.nets.common import count_parameters

NAMES = ["paper", "fast", "fast-s"]


def _pair(h: int, w: int, seed: int = 0, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 1, h, w, generator=g), torch.rand(batch, 1, h, w, generator=g)


def _pad(x: torch.Tensor, m: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    return F.pad(x, (0, (-w) % m, 0, (-h) % m), mode="reflect")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny tensors: one thread is faster and does not fight other CI jobs for the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def nets() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    out = {name: build(name).eval() for name in NAMES}
    # give fast's zero-initialised head random weights so outputs are not just the source average
    for name in ("fast", "fast-s"):
        for p in out[name].head.parameters():
            torch.nn.init.normal_(p, std=0.5)
    return out


def test_registry_lists_names_and_rejects_unknown() -> None:
    assert set(NAMES) <= set(list_networks())
    with pytest.raises(KeyError) as err:
        build("fsat")
    assert "fsat" in str(err.value) and "fast" in str(err.value) and "paper" in str(err.value)


def test_paper_parameter_count_matches_reference() -> None:
    # CDDFuse net.py (Encoder + Decoder + BaseFuseLayer + DetailFuseLayer) with dim 64, 8 heads
    assert count_parameters(build("paper")) == 1_188_272


def test_fast_is_small() -> None:
    assert 20_000 <= count_parameters(build("fast")) <= 150_000
    assert count_parameters(build("fast-s")) < count_parameters(build("fast"))


@pytest.mark.parametrize("name", NAMES)
def test_odd_size_shapes_and_range(nets, name: str) -> None:
    net = nets[name]
    ir, vis = _pair(37, 53, batch=2)
    m = net.pad_multiple
    assert isinstance(m, int) and m >= 1
    with torch.no_grad():
        out = net(_pad(ir, m), _pad(vis, m))[..., :37, :53]
    assert out.shape == (2, 1, 37, 53)
    assert out.dtype == torch.float32
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert float(out.std()) > 1e-3  # not a constant image


def test_fast_rejects_sizes_not_multiple_of_pad(nets) -> None:
    ir, vis = _pair(37, 53)
    with pytest.raises(ValueError, match="even"):
        nets["fast"](ir, vis)


@pytest.mark.parametrize("name", ["fast", "paper"])
def test_bad_inputs_raise_clear_errors(nets, name: str) -> None:
    ir, vis = _pair(16, 16)
    with pytest.raises(ValueError, match="differ"):
        nets[name](ir, vis[..., :14])
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        nets[name](ir.repeat(1, 3, 1, 1), vis.repeat(1, 3, 1, 1))


@pytest.mark.parametrize("name", NAMES)
def test_config_round_trip(nets, name: str) -> None:
    net = nets[name]
    again = build(name, **net.config)
    again.load_state_dict(net.state_dict())
    again.eval()
    assert again.config == net.config
    assert count_parameters(again) == count_parameters(net)
    ir, vis = _pair(16, 24, seed=3)
    with torch.no_grad():
        torch.testing.assert_close(again(ir, vis), net(ir, vis))


def test_config_changes_the_network() -> None:
    small = build("paper", dim=16, heads=2, encoder_blocks=1, decoder_blocks=1)
    assert count_parameters(small) < 100_000
    assert small.config["dim"] == 16
    cfg = build("fast", channels=[8, 16, 32], blocks=[0, 1, 1], gain_scale=5).config
    assert cfg == {"channels": [8, 16, 32], "blocks": [0, 1, 1], "gain_scale": 5.0}
    with pytest.raises(TypeError):
        build("fast", widht=3)


@pytest.mark.parametrize("name", NAMES)
def test_eval_is_deterministic(nets, name: str) -> None:
    ir, vis = _pair(20, 18, seed=5)
    with torch.no_grad():
        a, b = nets[name](ir, vis), nets[name](ir, vis)
    assert torch.equal(a, b)


def test_paper_forward_train_contract(nets) -> None:
    net = nets["paper"]
    assert net.supports_phase1 is True
    ir, vis = _pair(12, 10, seed=1, batch=2)
    keys = {"base_vis", "base_ir", "detail_vis", "detail_ir"}
    with torch.no_grad():
        p1 = net.forward_train(ir, vis, phase=1)
        p2 = net.forward_train(ir, vis, phase=2)
        assert keys | {"rec_vis", "rec_ir"} <= set(p1) and "fused" not in p1
        assert keys | {"fused"} <= set(p2)
        for k in keys:
            assert p1[k].shape == (2, 64, 12, 10)
        # the hooks agree with each other and with forward()
        torch.testing.assert_close(p2["fused"], net(ir, vis))
        torch.testing.assert_close(p1["rec_ir"], net.reconstruct(ir))
        base, detail = net.encode(vis)
        torch.testing.assert_close(base, p1["base_vis"])
        torch.testing.assert_close(detail, p1["detail_vis"])
        fb, fd = net.fuse_features(p2["base_vis"], p2["detail_vis"], p2["base_ir"], p2["detail_ir"])
        torch.testing.assert_close(net.decode(vis, fb, fd), p2["fused"])
    with pytest.raises(ValueError, match="phase"):
        net.forward_train(ir, vis, phase=3)


def test_fast_forward_train_contract(nets) -> None:
    net = nets["fast"]
    assert net.supports_phase1 is False
    ir, vis = _pair(12, 10, seed=1, batch=2)
    with torch.no_grad():
        out = net.forward_train(ir, vis, phase=2)
    assert "fused" in out and out["fused"].shape == (2, 1, 12, 10)
    assert not {"base_vis", "base_ir", "detail_vis", "detail_ir"} & set(out)
    torch.testing.assert_close(out["fused"], net(ir, vis))
    with pytest.raises(ValueError, match="phase"):
        net.forward_train(ir, vis, phase=1)


def test_untrained_fast_returns_the_average() -> None:
    # zero-initialised head: w = 0.5, r = 0, so training starts from average fusion
    ir, vis = _pair(16, 16, seed=2)
    with torch.no_grad():
        out = build("fast").eval()(ir, vis)
    torch.testing.assert_close(out, (ir + vis) / 2)


@pytest.mark.parametrize(("name", "phase"), [("paper", 1), ("paper", 2), ("fast", 2)])
def test_gradients_flow(name: str, phase: int) -> None:
    torch.manual_seed(0)
    small = {"dim": 16, "heads": 2, "encoder_blocks": 1, "decoder_blocks": 1}
    net = build(name, **(small if name == "paper" else {})).train()
    ir, vis = _pair(16, 16, seed=4, batch=2)
    out = net.forward_train(ir, vis, phase=phase)
    target = torch.maximum(ir, vis)
    pred = out["fused"] if phase == 2 else out["rec_vis"]
    loss = (pred - target).abs().mean()
    loss.backward()
    # phase I does not use the fusion layers; every other parameter must get a finite gradient
    used = [(n, p) for n, p in net.named_parameters() if not (phase == 1 and n.startswith("fuse_"))]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for _, p in used)
    assert sum(float(p.grad.abs().sum()) for _, p in used) > 0
    # the graph is connected end to end: the first conv (paper) / the zero-initialised head (fast) gets a gradient
    first = net.head.weight if name == "fast" else net.encoder.embed.weight
    assert float(first.grad.abs().sum()) > 0
    if phase == 1:
        assert all(p.grad is None for n, p in net.named_parameters() if n.startswith("fuse_"))


def test_fast_can_learn_max_fusion() -> None:
    """A few Adam steps on max(V, I) must cut the error well below the untrained (average) output's."""
    torch.manual_seed(0)
    net = build("fast-s").train()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    ir, vis = _pair(32, 32, seed=7, batch=4)
    target = torch.maximum(ir, vis)
    with torch.no_grad():
        start = float((net(ir, vis) - target).abs().mean())
    for _ in range(60):
        opt.zero_grad()
        loss = (net(ir, vis) - target).abs().mean()
        loss.backward()
        opt.step()
    assert float(loss) < 0.3 * start


@pytest.mark.parametrize("name", ["fast", "paper"])
def test_onnx_export_dynamic_size(name: str, tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    torch.manual_seed(0)
    net = build(name, **({"dim": 16, "heads": 2, "encoder_blocks": 1, "decoder_blocks": 1} if name == "paper" else {}))
    net.eval()
    if name == "fast":
        for p in net.head.parameters():
            torch.nn.init.normal_(p, std=0.5)
    path = tmp_path / f"{name}.onnx"
    axes = {0: "batch", 2: "height", 3: "width"}
    ir, vis = _pair(16, 24)
    torch.onnx.export(net, (ir, vis), str(path), input_names=["ir", "vis_y"], output_names=["fused"],
                      opset_version=17, dynamo=False,
                      dynamic_axes={"ir": axes, "vis_y": axes, "fused": axes})
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    ir, vis = _pair(22, 30, seed=9)  # a different size than the export example
    got = sess.run(None, {"ir": ir.numpy(), "vis_y": vis.numpy()})[0]
    with torch.no_grad():
        want = net(ir, vis).numpy()
    assert got.shape == (1, 1, 22, 30)
    assert abs(got - want).max() < 1e-4


def test_fast_complement_head_formula() -> None:
    """complement=True adds a fourth map k: fused = w I + (1 - w) V + k ((1 - w) I + w V) + r, exactly."""
    torch.manual_seed(0)
    net = build("fast", complement=True).eval()
    assert net.config["complement"] is True and "complement" not in build("fast").config  # old configs unchanged
    assert net.head.out_channels == 16 and build("fast").head.out_channels == 12
    # untrained: zero head -> still the plain average
    ir, vis = _pair(16, 16, seed=3)
    with torch.no_grad():
        torch.testing.assert_close(net(ir, vis), (ir + vis) / 2)
    for p in net.head.parameters():
        torch.nn.init.normal_(p, std=0.5)
    with torch.no_grad():
        a, b, k, r = net.maps(ir, vis)
        w = torch.sigmoid(net.gain_scale * a * (ir - vis) + b)
        want = (w * ir + (1 - w) * vis + k * ((1 - w) * ir + w * vis) + r).clamp(0, 1)
        torch.testing.assert_close(net(ir, vis), want)
        assert float(k.abs().mean()) > 0.01  # the fourth map is really used
    rebuilt = build("fast", **net.config)
    rebuilt.load_state_dict(net.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.eval()(ir, vis), net(ir, vis))
