"""The trainer end to end on real RoadScene patches (tiny config): loss goes down, checkpoints round-trip, resume
continues exactly, config errors are one clear line, and two CPU processes train with DDP (gloo)."""

from __future__ import annotations

import csv
import json
import os
import socket
import tomllib

import pytest
import torch
import torch.multiprocessing as mp
from conftest import SHARED_DATA, require_data

from crossfuse import config as C
from crossfuse import data as D
from crossfuse import losses as L
from crossfuse.nets import build
from crossfuse.train import train


def _cfg(*extra: str) -> dict:
    return C.load_config("tiny", [f'data.root="{SHARED_DATA}"', *extra])


@pytest.fixture(scope="module")
def run_a(tmp_path_factory):
    require_data("RoadScene")
    out = tmp_path_factory.mktemp("a")
    train(_cfg("data.patches_per_epoch=48"), out, progress=False)
    return out


def _fixed_batch():
    rs = SHARED_DATA / "RoadScene"
    split = D.make_split(rs, rs / "cddfuse_test50.txt", val_count=2, seed=0)
    ds = D.PatchDataset(D.load_pairs(rs, split.val), patch=32, length=16, seed=123)
    ir, vis = zip(*(ds[i] for i in range(16)))
    return torch.stack(ir), torch.stack(vis)


def _loss(net, ir, vis):
    with torch.no_grad():
        ctx = L.StepContext(ir=ir, vis=vis, out=net.eval().forward_train(ir, vis, 2))
        return float(L.total_loss({"intensity_max": 1.0, "gradient_max": 10.0}, ctx)[0])


def test_training_reduces_loss_and_writes_outputs(run_a):
    cfg = _cfg()
    torch.manual_seed(cfg["seed"])
    init = build("fast", **cfg["model"]["config"])
    ck = torch.load(run_a / "last.pt", weights_only=True)
    trained = build(ck["net"], **ck["net_config"])
    trained.load_state_dict(ck["model"])
    ir, vis = _fixed_batch()  # held-out pairs, never trained on
    before, after = _loss(init, ir, vis), _loss(trained, ir, vis)
    assert after < 0.95 * before, (before, after)
    # written beside the checkpoints: resolved config (round-trips), environment, CSV log, curve, best
    saved = tomllib.loads((run_a / "config.toml").read_text())
    assert saved["phase2"]["losses"] == {"intensity_max": 1.0, "gradient_max": 10.0, "ssl_paper": 0.1}
    assert saved["data"]["patches_per_epoch"] == 48
    env = json.loads((run_a / "env.json").read_text())
    assert env["torch"] == torch.__version__ and env["train_pairs"] == 221 - 50 - 2
    rows = list(csv.DictReader(open(run_a / "log.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2] and all(float(r["val_score"]) > 0 for r in rows)
    assert [float(r["lr"]) for r in rows] == pytest.approx([1e-3, 1e-3 * 0.5])  # the rate used in each epoch
    assert (run_a / "loss.png").stat().st_size > 1000 and (run_a / "best.pt").is_file()


def test_checkpoint_round_trip_and_exact_resume(run_a, tmp_path):
    cfg = _cfg("data.patches_per_epoch=48")
    train(cfg, tmp_path, progress=False, max_epochs=1)
    first = torch.load(tmp_path / "last.pt", weights_only=True)
    assert first["epoch"] == 1 and first["step"] == 12
    with pytest.raises(FileExistsError, match="--resume"):
        train(cfg, tmp_path, progress=False)
    train(cfg, tmp_path, progress=False, resume=tmp_path / "last.pt")
    a = torch.load(run_a / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "last.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 2 and a["step"] == b["step"] == 24
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert torch.equal(sa["exp_avg"], sb["exp_avg"])
    # round trip: a network rebuilt from the checkpoint gives the same output as the trained one did
    net = build(b["net"], **b["net_config"])
    net.load_state_dict(b["model"])
    x = torch.rand(1, 1, 24, 30)
    net2 = build(a["net"], **a["net_config"])
    net2.load_state_dict(a["model"])
    assert torch.equal(net.eval()(x, x), net2.eval()(x, x))


def test_a_wall_time_budget_stops_after_an_epoch_and_the_cli_resumes_exactly(run_a, tmp_path, capsys):
    """``crossfuse train --max-minutes M``: the first epoch that ends past M minutes is the last of the call (its
    checkpoint written, the way to go on printed); ``--resume`` then ends where an uninterrupted run does."""
    from crossfuse import cli

    args = ["train", "tiny", "--out", str(tmp_path), "--no-progress", "--set", f'data.root="{SHARED_DATA}"',
            "--set", "data.patches_per_epoch=48"]
    assert cli.main([*args, "--max-minutes", "0"]) == 0
    said = capsys.readouterr().out
    assert "stopped after epoch 1 of 2" in said and f"--resume {tmp_path / 'last.pt'}" in said, said
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epoch"] == 1
    assert cli.main([*args, "--resume", str(tmp_path / "last.pt"), "--max-minutes", "60"]) == 0
    a, b = (torch.load(d / "last.pt", weights_only=True) for d in (run_a, tmp_path))
    assert a["epoch"] == b["epoch"] == 2 and all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert "stopped after" not in capsys.readouterr().out  # the budget was not reached: the schedule ended
    assert cli.main(["train", "tiny", "--out", str(tmp_path / "x"), "--max-epochs", "0"]) != 0
    assert "--max-epochs must be >= 1" in capsys.readouterr().err
    with pytest.raises(ValueError, match="max_minutes must be >= 0"):
        train(_cfg(), tmp_path / "y", max_minutes=-1)


def test_weight_average_leaves_the_trajectory_alone_and_resumes_exactly(run_a, tmp_path):
    """``schedule.ema``: the weights Adam trains are exactly those of the run without it (``train_model``); ``model``
    (what is validated, exported and fused with) is their moving average, different from them and restored on
    resume; a checkpoint and a config that disagree about it are one clear error."""
    from crossfuse.errors import CheckpointError

    cfg = _cfg("data.patches_per_epoch=48", "schedule.ema=0.9")
    train(cfg, tmp_path / "full", progress=False)
    train(cfg, tmp_path / "cut", progress=False, max_epochs=1)
    with pytest.raises(CheckpointError, match="schedule.ema is off in the config but on in the checkpoint"):
        train(_cfg("data.patches_per_epoch=48"), tmp_path / "cut", progress=False, resume=tmp_path / "cut/last.pt")
    train(cfg, tmp_path / "cut", progress=False, resume=tmp_path / "cut/last.pt")
    plain = torch.load(run_a / "last.pt", weights_only=True)
    full, cut = (torch.load(tmp_path / f / "last.pt", weights_only=True) for f in ("full", "cut"))
    assert full["ema_n"] == cut["ema_n"] == 24
    for k in plain["model"]:
        assert torch.equal(full["train_model"][k], plain["model"][k]), k
        assert torch.equal(cut["model"][k], full["model"][k]), k
    moved = sum(float((full["model"][k] - plain["model"][k]).abs().sum()) for k in plain["model"])
    assert moved > 0
    with pytest.raises(C.ConfigError, match=r"schedule.ema must be a number in \[0, 1\)"):
        _cfg("schedule.ema=1.0")


def test_config_errors_are_one_clear_line(tmp_path, capsys):
    require_data("RoadScene")
    with pytest.raises(C.ConfigError, match=r"unknown loss 'intensity_maxx' in \[phase2.losses\].*valid losses: "):
        _cfg("phase2.losses.intensity_maxx=1.0")
    with pytest.raises(C.ConfigError, match=r"data folder not found: .*nowhere.*RoadScene.ir"):
        C.load_config("tiny", [f'data.root="{tmp_path / "nowhere"}"'])
    with pytest.raises(C.ConfigError, match=r"unknown key 'schedule.lrr'"):
        _cfg("schedule.lrr=1")
    with pytest.raises(C.ConfigError, match=r"ssl.misregister must be one of either, ir, got 'vis'"):
        _cfg('ssl.misregister="vis"')
    assert _cfg()["ssl"]["misregister"] == "either" and _cfg('ssl.misregister="ir"')["ssl"]["misregister"] == "ir"
    bad = tmp_path / "bad.toml"
    bad.write_text('[model]\nname = "fast"\n[phase2.losses]\nsharpness = 1.0\n[schedule]\nphase2_epochs = 1\n')
    from crossfuse.cli import main

    assert main(["train", str(bad), "--out", str(tmp_path / "o"), "--set", f'data.root="{SHARED_DATA}"']) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad.toml: unknown loss 'sharpness'" in err
    with pytest.raises(FileNotFoundError, match="not a shipped config .*fast.*tiny"):
        C.load_config("no_such_config")



def test_set_one_loss_option_keeps_the_others(tmp_path):
    """``--set loss_options.X.k=v`` and a child config's ``[loss_options.X]`` change k and keep X's other options
    (they used to replace the whole table, silently dropping the rest)."""
    require_data("RoadScene")
    cfg = _cfg("loss_options.intensity_local.alpha=0.3", "loss_options.intensity_local.sigma=5.0")
    assert cfg["loss_options"]["intensity_local"] == {"alpha": 0.3, "sigma": 5.0}
    base = tmp_path / "base.toml"
    base.write_text('[model]\nname = "fast"\n[loss_options.intensity_local]\nalpha = 0.4\nsigma = 8.0\n')
    child = tmp_path / "child.toml"
    child.write_text(f'extends = "{base}"\n[loss_options.intensity_local]\nsigma = 4.0\n')
    assert C._read_merged(child)[0]["loss_options"]["intensity_local"] == {"alpha": 0.4, "sigma": 4.0}

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DDP_SET = ["schedule.phase2_epochs=1", "data.patches_per_epoch=16", "validation.every=0",
           "phase2.losses.ssl_paper=0.0"]  # no per-rank random views: DDP must then equal one process, batch 8


def _ddp_worker(rank: int, world: int, port: int, out: str, data_root: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    cfg = C.load_config("tiny", [f'data.root="{data_root}"', *DDP_SET])
    train(cfg, out, progress=False)
    import torch.distributed as dist

    assert not dist.is_initialized()  # train() leaves the process group it made


@pytest.mark.slow
def test_ddp_two_cpu_processes_gloo_equals_one_process(tmp_path):
    require_data("RoadScene")
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path / "ddp"), str(SHARED_DATA)), nprocs=2, join=True)
    ck = torch.load(tmp_path / "ddp" / "last.pt", weights_only=True)
    assert json.loads((tmp_path / "ddp" / "env.json").read_text())["world_size"] == 2
    assert ck["epoch"] == 1 and ck["step"] == 2  # 16 patches, batch 4 per rank, 2 ranks
    # one process with batch 8 sees the same 8 patches per step (the sampler interleaves ranks); averaged DDP
    # gradients must give the same weights
    train(_cfg(*DDP_SET, "data.batch_size=8"), tmp_path / "single", progress=False)
    single = torch.load(tmp_path / "single" / "last.pt", weights_only=True)
    assert single["step"] == 2
    for k, v in single["model"].items():
        torch.testing.assert_close(ck["model"][k], v, rtol=1e-4, atol=1e-6)


def test_selection_score_is_capped():
    from crossfuse.train import score

    ref = {"SF": 10.0, "MI": 4.0, "SSIM": 1.0}
    assert score({"SF": 12.0, "MI": 2.0, "SSIM": 0.9}, ref) == pytest.approx((1.2 + 0.5 + 0.9) / 3)
    # a noise image (huge SF, nothing of the sources) must not beat a real fusion
    assert score({"SF": 150.0, "MI": 0.2, "SSIM": 0.03}, ref) < score({"SF": 10.0, "MI": 2.0, "SSIM": 0.9}, ref)
