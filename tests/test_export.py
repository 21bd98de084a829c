"""ONNX export (dynamic H/W) and the onnxruntime backend: parity with PyTorch within 1e-3 on the 0-1 scale."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _fusetools import random_net

pytest.importorskip("onnxruntime")
import onnx  # noqa: E402

from crossfuse import cli  # noqa: E402
from crossfuse.backends import OnnxBackend, TorchBackend  # noqa: E402
from crossfuse.errors import CheckpointError  # noqa: E402
from crossfuse.export import export_onnx  # noqa: E402
from crossfuse.infer import Fuser  # noqa: E402
from crossfuse.synthetic import make_scene  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def net():
    return random_net("fast", seed=2)


@pytest.fixture(scope="module")
def onnx_file(net, tmp_path_factory):
    return export_onnx(net, tmp_path_factory.mktemp("onnx") / "fast.onnx", name="fast-random")


def test_exported_graph_is_dynamic_and_documented(onnx_file, net):
    model = onnx.load(str(onnx_file))
    assert model.opset_import[0].version >= 17
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 1, "height", "width"]
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["crossfuse.pad_multiple"] == str(net.pad_multiple) and meta["crossfuse.model"] == "fast-random"


@pytest.mark.parametrize("h,w", [(64, 96), (122, 250), (250, 182)])
def test_onnx_matches_torch_on_planes(onnx_file, net, h, w):
    rng = np.random.default_rng(h * w)
    ir, vi = rng.random((h, w), dtype=np.float32), rng.random((h, w), dtype=np.float32)
    a = OnnxBackend(onnx_file)(ir, vi)
    b = TorchBackend(net, "cpu")(ir, vi)
    assert a.shape == (h, w)
    assert np.abs(a - b).max() < 1e-3
    assert np.abs(b - (ir + vi) / 2).max() > 0.05  # a non-trivial network


def test_onnx_fuser_matches_torch_fuser_on_a_scene(onnx_file, net):
    sc = make_scene(161, 243, seed=4)  # odd size: padding and cropping on both paths
    t = Fuser(net, device="cpu").fuse_y(sc.ir, sc.vis)
    from_file = Fuser(onnx_file, device="cpu")
    assert from_file.backend == "onnx" and from_file.pad_multiple == net.pad_multiple
    o = from_file.fuse_y(sc.ir, sc.vis)
    in_memory = Fuser(net, device="cpu", backend="onnx").fuse_y(sc.ir, sc.vis)
    assert o.shape == sc.ir.shape
    assert np.abs(o - t).max() < 1e-3 and np.abs(in_memory - t).max() < 1e-3
    rgb_t, rgb_o = Fuser(net, device="cpu")(sc.ir, sc.vis), from_file(sc.ir, sc.vis)
    assert np.abs(rgb_t.astype(int) - rgb_o).max() <= 1


def test_export_refuses_to_overwrite(onnx_file, net):
    with pytest.raises(FileExistsError):
        export_onnx(net, onnx_file)
    with pytest.raises(FileNotFoundError):
        OnnxBackend(onnx_file.with_name("missing.onnx"))
    junk = onnx_file.with_name("junk.onnx")
    junk.write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="junk.onnx: not a usable ONNX model"):
        Fuser(junk, device="cpu")


def test_export_cli(tmp_path, net, capsys):
    ck = tmp_path / "last.pt"  # a training checkpoint of the random network
    torch.save({"model": net.state_dict(), "net": "fast", "net_config": dict(net.config)}, ck)
    out = tmp_path / "m.onnx"
    assert cli.main(["export", "--format", "onnx", "--model", str(ck), "--out", str(out)]) == 0
    assert "max |onnx - torch|" in capsys.readouterr().out and out.is_file()
    assert cli.main(["export", "--model", str(out), "--out", str(tmp_path / "again.onnx")]) == 1
    assert "already an ONNX model" in capsys.readouterr().err
    assert cli.main(["export", "--out", str(out)]) == 1  # exists
    assert "exists" in capsys.readouterr().err
    assert cli.main(["export", "--out", str(tmp_path / "m.txt")]) == 1
