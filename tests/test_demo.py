"""``crossfuse demo``: synthetic scenes, fused results, figure and metric table; and the scene generator."""

from __future__ import annotations

import numpy as np
import torch
from _fusetools import random_net

import crossfuse.cli.demo_cmd as demo_cmd
from crossfuse import cli
from crossfuse import io as cio
from crossfuse.infer import Fuser
from crossfuse.synthetic import make_scene, scene_frames

torch.set_num_threads(1)


def test_scene_is_seeded_registered_and_hides_hot_targets():
    a, b, c = make_scene(120, 160, seed=1), make_scene(120, 160, seed=1), make_scene(120, 160, seed=2)
    assert np.array_equal(a.ir, b.ir) and np.array_equal(a.vis, b.vis) and not np.array_equal(a.ir, c.ir)
    assert a.ir.shape == (120, 160) and a.vis.shape == (120, 160, 3) and a.ir.dtype == a.vis.dtype == np.uint8
    hidden = a.targets & a.hidden
    assert hidden.sum() > 20  # some targets stand in the dark/smoky regions
    y = cio.rgb_to_gray(a.vis)
    background = ~a.targets
    ir_contrast = a.ir[hidden].mean() - a.ir[background].mean()
    vis_contrast = abs(y[hidden].mean() - y[a.hidden & background].mean())
    assert ir_contrast > 60 and vis_contrast < 25  # hot in IR, nearly invisible in the visible image
    frames = list(scene_frames(3, 64, 80, seed=4))
    assert len(frames) == 3 and not np.array_equal(frames[0][0], frames[2][0])  # targets move


def test_demo_writes_inputs_fused_figure_and_table(tmp_path, monkeypatch, capsys):
    net = random_net("fast", seed=4)
    monkeypatch.setattr(demo_cmd, "make_fuser", lambda args: Fuser(net, device="cpu"))
    out = tmp_path / "demo"
    assert cli.main(["demo", "--out", str(out), "--scenes", "2", "--size", "200x150"]) == 0
    for kind in ("ir", "vi", "fused"):
        files = sorted((out / kind).iterdir())
        assert [f.name for f in files] == ["scene_000.png", "scene_001.png"]
    assert cio.read_image(out / "fused" / "scene_000.png").shape == (150, 200, 3)
    fig = cio.read_image(out / "figure.png")
    assert fig.ndim == 3 and fig.shape[0] > 300 and fig.shape[1] > 600
    table = (out / "metrics.md").read_text().splitlines()
    rows = [r for r in table if r.startswith("| ") and "---" not in r]
    assert rows[0].split("|")[2].strip() == "EN" and len(rows) == 4
    assert any("max baseline" in r for r in rows) and any("average baseline" in r for r in rows)
    for r in rows[1:]:
        values = [float(v) for v in r.strip("|").split("|")[1:]]
        assert len(values) == len(demo_cmd.DEMO_METRICS) and all(np.isfinite(values))
    assert "figure" in capsys.readouterr().out
    assert cli.main(["demo", "--out", str(out), "--scenes", "2", "--size", "200x150"]) == 1  # no silent overwrite
    assert "exists" in capsys.readouterr().err


def test_demo_with_the_shipped_default_model(tmp_path):
    from crossfuse import models

    assert cli.main(["demo", "--out", str(tmp_path), "--scenes", "1", "--size", "320x240"]) == 0
    table = (tmp_path / "metrics.md").read_text()
    rows = {r.split("|")[1].strip(): [float(v) for v in r.strip().strip("|").split("|")[1:]]
            for r in table.splitlines() if r.startswith("| ") and "---" not in r and "EN" not in r}
    model_row = f"{models.DEFAULT_MODEL} (model)"
    assert model_row in rows, table  # the shipped default model made the fused images, named as such
    assert set(rows) == {model_row, "max baseline", "average baseline"}
    assert all(np.isfinite(rows[model_row])) and rows[model_row] != rows["average baseline"]
