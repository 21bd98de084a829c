"""Shipped models: loading by name, errors, fp16 export round trip, and the shipped fast model on a real pair."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import require_data

from crossfuse import models
from crossfuse.errors import CheckpointError
from crossfuse.nets import build


def test_names_and_errors(tmp_path, monkeypatch):
    assert models.DEFAULT_MODEL in models.list_models()
    with pytest.raises(KeyError, match="unknown model 'nope'; valid models: crossfuse-fast"):
        models.load_model("nope")
    monkeypatch.setattr(models, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="crossfuse-fast.pt: weights file missing"):
        models.load_model("crossfuse-fast")
    (tmp_path / "crossfuse-fast.pt").write_bytes(b"")  # damaged shipped file: its sha256 no longer matches
    with pytest.raises(CheckpointError, match=r"crossfuse-fast.pt: sha256 .* does not match the shipped"):
        models.load_model("crossfuse-fast")
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="other.pt: not a crossfuse weights file or training checkpoint"):
        models.load_model(tmp_path / "other.pt")


def test_export_round_trip_fp16(tmp_path):
    torch.manual_seed(0)
    net = build("fast", channels=[8, 8, 16], blocks=[1, 1, 1])
    for p in net.parameters():  # non-trivial weights (the head starts at zero)
        p.data.normal_(0, 0.1)
    ck = {"model": net.state_dict(), "net": "fast", "net_config": net.config, "epoch": 3, "step": 30}
    torch.save(ck, tmp_path / "last.pt")
    out = models.export_weights(tmp_path / "last.pt", tmp_path / "w.pt", meta={"note": "test"})
    blob = torch.load(out, weights_only=True)
    assert all(v.dtype == torch.float16 for v in blob["state_dict"].values() if v.is_floating_point())
    assert blob["meta"]["epoch"] == 3 and blob["meta"]["note"] == "test"
    with pytest.raises(FileExistsError):
        models.export_weights(tmp_path / "last.pt", out)
    loaded = models.load_model(out)
    assert not loaded.training and all(p.dtype == torch.float32 for p in loaded.parameters())
    x, y = torch.rand(1, 1, 40, 52), torch.rand(1, 1, 40, 52)
    with torch.no_grad():
        ref, got = net.eval()(x, y), loaded(x, y)
    assert (ref - got).abs().max() < 5e-3  # fp16 storage only


def test_load_model_with_constants_is_what_export_set_writes(tmp_path):
    """``load_model(spec, constants=)``: the same weights, the constants replaced - the network ``crossfuse export
    --set`` writes (here the rule head's degraded α and a spread-noise gate); the spec's own file is untouched."""
    torch.manual_seed(1)
    net = build("fast", channels=[8, 8, 16], blocks=[1, 1, 1], rule_head=True, restore=True)
    for p in net.parameters():
        p.data.normal_(0, 0.1)
    torch.save({"model": net.state_dict(), "net": "fast", "net_config": net.config, "epoch": 1, "step": 5},
               tmp_path / "last.pt")
    consts = {"rule_alpha_degraded": 0.1, "spread_noise_gate": 0.12}
    got = models.load_model(tmp_path / "last.pt", constants=consts)
    exported = models.load_model(models.export_weights(tmp_path / "last.pt", tmp_path / "w.pt", config=consts))
    plain = models.load_model(tmp_path / "last.pt")
    assert got.rule_alpha_degraded == 0.1 and got.spread_noise_gate == 0.12 and not got.training
    assert plain.spread_noise_gate is None and got.config == exported.config
    assert all(torch.equal(a, b) for a, b in zip(got.state_dict().values(), plain.state_dict().values(), strict=True))
    x, y, flag = torch.rand(1, 1, 40, 52), torch.rand(1, 1, 40, 52), torch.ones(1, 1, 1, 1)
    with torch.no_grad():
        assert (got(x, y, degraded=flag) - exported(x, y, degraded=flag)).abs().max() < 5e-3  # fp16 storage only
        assert (got(x, y, degraded=flag) - plain(x, y)).abs().max() > 1e-4  # the degraded α is in force
    with pytest.raises(CheckpointError, match="last.pt: its weights do not make a crossfuse network .*high"):
        models.load_model(tmp_path / "last.pt", constants={"rule_alpha_degraded": "high"})


def test_shipped_fast_model_fuses_a_real_pair():
    rs = require_data("RoadScene")
    from crossfuse.io import read_image, rgb_to_ycrcb

    net = models.load_model("crossfuse-fast")
    info = models.model_info("crossfuse-fast")
    assert info["net"] == "fast" and not net.training
    ir = read_image(rs / "ir" / "FLIR_00211.jpg").astype(np.float32) / 255
    y = rgb_to_ycrcb(read_image(rs / "vi" / "FLIR_00211.jpg"))[..., 0] / 255
    h, w = (s - s % net.pad_multiple for s in ir.shape)
    a, b = torch.from_numpy(ir[:h, :w])[None, None], torch.from_numpy(np.ascontiguousarray(y[:h, :w]))[None, None]
    with torch.no_grad():
        f = net(a, b)
    assert f.shape == a.shape and 0 <= float(f.min()) and float(f.max()) <= 1
    # trained towards max(V, I) with the sources' edges: close to the max image, and neither source alone
    fn = f[0, 0].numpy().ravel()
    assert np.corrcoef(fn, torch.maximum(a, b).numpy().ravel())[0, 1] > 0.8
    assert float((f - a).abs().mean()) > 0.01 and float((f - b).abs().mean()) > 0.01


@pytest.mark.parametrize("name", models.list_models())
def test_every_listed_model_ships_weights_and_a_card(name):
    path = models.weights_path(name)
    card = path.with_suffix(".md")
    assert path.is_file() and card.is_file(), f"{name}: listed but {path.name} / {card.name} missing"
    assert "## Metrics" in card.read_text() and "## Training" in card.read_text()
    info = models.model_info(name)
    net = models.load_model(name)
    assert info["net"] in ("fast", "paper") and not net.training
    m = int(getattr(net, "pad_multiple", 1))
    g = torch.Generator().manual_seed(0)
    ir, vis = torch.rand(1, 1, 8 * m, 8 * m, generator=g), torch.rand(1, 1, 8 * m, 8 * m, generator=g)
    with torch.no_grad():
        out = net(ir, vis)
    assert out.shape == ir.shape and float(out.min()) >= 0 and float(out.max()) <= 1
    assert float((out - (ir + vis) / 2).abs().mean()) > 1e-3  # trained: not the untrained average


def test_the_default_model_declares_all_four_input_steps_and_the_rule_it_was_chosen_with():
    """crossfuse-robust20 (H79): crossfuse-robust14's recipe (detail gain 1.1, H63; weaker-source share 0.6, H64) at
    half its schedule, re-trained, with crossfuse-robust19's constants - on frames an input step changed the share 0.4
    (H66-H68) and the gain 1.0 (H72); the spread-noise gates on the visible plane (H74) and the IR (H75) and the
    visible share's excess gate (H77), each by the rule from its own training-frame shares. crossfuse-robust15 ... -19
    are crossfuse-robust14's tensors with constants added; the previous defaults keep theirs."""
    from crossfuse.backends import declared_steps, spread_noise_gates
    from crossfuse.models import DEFAULT_MODEL, load_model

    assert DEFAULT_MODEL == "crossfuse-robust20"
    net, r19, r18 = load_model(DEFAULT_MODEL), load_model("crossfuse-robust19"), load_model("crossfuse-robust18")
    r17, r16 = load_model("crossfuse-robust17"), load_model("crossfuse-robust16")
    r15, r14 = load_model("crossfuse-robust15"), load_model("crossfuse-robust14")
    assert declared_steps(net) == {"vis_veil": 0.75, "deblock": True, "destripe": True, "denoise": True}
    gates = {"spread_noise_gate": 0.12, "spread_noise_gate_ir": 0.14}
    assert spread_noise_gates(net) == {"spread_noise_gate": 0.12, "spread_noise_gate_ir": 0.13,
                                       "spread_noise_gate_excess": 0.02}
    assert spread_noise_gates(r19) == {**gates, "spread_noise_gate_excess": 0.02} and spread_noise_gates(r18) == gates
    assert spread_noise_gates(r17) == {"spread_noise_gate": 0.12} and spread_noise_gates(r16) == {}
    assert r19.config == {**r16.config, **gates, "spread_noise_gate_excess": 0.02}
    assert net.config == {**r19.config, "spread_noise_gate_ir": 0.13}  # the same network and constants
    assert net.config["rule_gain"] == pytest.approx(1.1) and net.config["rule_alpha"] == pytest.approx(0.6)
    assert r16.config["rule_alpha_degraded"] == pytest.approx(0.4) and r16.config["rule_gain_degraded"] == 1.0
    assert r15.config["rule_alpha_degraded"] == pytest.approx(0.4) and "rule_gain_degraded" not in r15.config
    assert "rule_alpha_degraded" not in r14.config
    r14_tensors = r14.state_dict()
    for m in (r19, r18, r17, r16, r15):  # the same weights, constants added
        assert all(torch.equal(t, r14_tensors[k]) for k, t in m.state_dict().items())
    assert not all(torch.equal(t, r14_tensors[k]) for k, t in net.state_dict().items())  # re-trained (1,000 steps)
    r13, r12 = load_model("crossfuse-robust13").config, load_model("crossfuse-robust12").config
    assert (r13["rule_gain"], r13["rule_alpha"]) == (pytest.approx(1.1), 0.4) and r12["rule_gain"] == 1.2
    assert (r13["rule_gain"], r13["rule_alpha"]) == (pytest.approx(1.1), 0.4) and r12["rule_gain"] == 1.2
