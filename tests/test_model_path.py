"""From training to every command, with no shared data (synthetic scenes): a run folder and its checkpoints work
with fuse / export / bench, checkpoints load with the safe loader only, a pickle that would run code is refused
everywhere, and config mistakes are one line and leave no run folder behind (issue 9)."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from crossfuse import cli, models
from crossfuse.config import ConfigError, load_config
from crossfuse.errors import CheckpointError
from crossfuse.io import read_image, write_image
from crossfuse.synthetic import make_scene

REPO = Path(__file__).resolve().parents[1]


def write_synthetic_dataset(root: Path, n: int = 6, h: int = 64, w: int = 80) -> Path:
    """``n`` synthetic scenes as ``root/ir`` and ``root/vi`` PNGs (colour visible)."""
    for i in range(n):
        sc = make_scene(h, w, seed=i)
        write_image(root / "ir" / f"scene{i:02d}.png", sc.ir)
        write_image(root / "vi" / f"scene{i:02d}.png", sc.vis)
    return root


def synthetic_overrides(root: Path) -> list[str]:
    return [f'data.root="{root}"', 'data.target="."', 'data.exclude_list=""', "data.val_count=2"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_synthetic_dataset(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture(scope="module")
def run_dir(data, tmp_path_factory) -> Path:
    """``crossfuse train tiny --out RUN`` on the synthetic scenes (2 epochs of 16 patches)."""
    out = tmp_path_factory.mktemp("runs") / "t"
    args = ["train", "tiny", "--out", str(out), "--no-progress"]
    for o in synthetic_overrides(data):
        args += ["--set", o]
    assert cli.main(args) == 0
    return out


class RunsCode:
    """Unpickling this creates ``marker``: what a crafted checkpoint could do with weights_only=False."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return open, (str(self.marker), "w")


def _evil_checkpoint(path: Path, marker: Path) -> Path:
    net = torch.nn.Conv2d(1, 1, 1)
    torch.save({"model": net.state_dict(), "net": "fast", "net_config": {}, "payload": RunsCode(marker),
                "optimizer": {}, "scheduler": {}, "rng": {}, "epoch": 1, "step": 1, "best_score": 0.0,
                "history": []}, path)
    return path


def test_trainer_smoke_on_synthetic_data(run_dir):
    for name in ("last.pt", "best.pt", "config.toml", "env.json", "log.csv", "loss.png"):
        assert (run_dir / name).is_file(), name
    ck = torch.load(run_dir / "last.pt", weights_only=True)  # the safe loader accepts our own checkpoints
    assert ck["epoch"] == 2 and ck["step"] == 8 and isinstance(ck["rng"]["numpy"]["keys"], torch.Tensor)
    rows = (run_dir / "log.csv").read_text().splitlines()
    header = rows[0].split(",")
    lrs = [float(r.split(",")[header.index("lr")]) for r in rows[1:]]
    assert lrs == pytest.approx([1e-3, 5e-4])  # the rate used during each epoch (step decay after epoch 1)


def test_resume_from_a_safe_checkpoint_continues(run_dir, data, tmp_path):
    cfg = load_config("tiny", synthetic_overrides(data))
    from crossfuse.train import train

    train(cfg, tmp_path, progress=False, max_epochs=1)
    train(cfg, tmp_path, progress=False, resume=tmp_path / "last.pt")
    a, b = torch.load(run_dir / "last.pt", weights_only=True), torch.load(tmp_path / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == 8
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_run_folder_works_with_fuse_export_and_bench(run_dir, data, tmp_path, capsys):
    # fuse with the run folder (-> best.pt) right after training
    assert cli.main(["fuse", "--model", str(run_dir), "--ir", str(data / "ir"), "--vi", str(data / "vi"),
                     "--out", str(tmp_path / "fused"), "--device", "cpu", "--quiet"]) == 0
    fused = read_image(tmp_path / "fused" / "scene00.png")
    assert fused.shape == read_image(data / "vi" / "scene00.png").shape
    onnx_file = tmp_path / "t.onnx"
    assert cli.main(["export", "--model", str(run_dir / "best.pt"), "--format", "onnx", "--out", str(onnx_file)]) == 0
    assert "max |onnx - torch|" in capsys.readouterr().out
    assert cli.main(["fuse", "--model", str(onnx_file), "--ir", str(data / "ir" / "scene00.png"), "--vi",
                     str(data / "vi" / "scene00.png"), "--out", str(tmp_path / "o.png"), "--device", "cpu",
                     "--quiet"]) == 0
    diff = np.abs(read_image(tmp_path / "o.png").astype(int) - fused.astype(int)).max()
    assert diff <= 1, diff  # same network through onnxruntime: at most one grey level of rounding
    capsys.readouterr()
    assert cli.main(["bench", "--model", str(run_dir / "best.pt"), "--sizes", "64x48", "--repeats", "1",
                     "--warmup", "0", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "| 64x48 | torch | 1 |" in out
    assert "recommendation for this machine" in out and "--backend torch --threads 1" in out


def test_resolver_forms(run_dir):
    best = models.resolve(run_dir)
    assert best.kind == "checkpoint" and best.source == run_dir / "best.pt" and not best.module.training
    assert models.resolve(run_dir / "last.pt").source.name == "last.pt"
    shipped = models.resolve("crossfuse-fast")
    assert shipped.kind == "shipped" and shipped.meta["net"] == "fast"
    assert models.resolve("net:fast").kind == "untrained"
    with pytest.raises(KeyError, match="unknown model 'nope'; valid models: crossfuse-fast"):
        models.resolve("nope")
    with pytest.raises(FileNotFoundError, match="missing.pt: no such model file"):
        models.resolve("runs/missing.pt")
    with pytest.raises(CheckpointError, match="not a crossfuse training run"):
        models.resolve(run_dir.parent)


def test_export_weights_of_a_run_loads_back(run_dir, tmp_path):
    out = tmp_path / "w.pt"
    assert cli.main(["export", "--model", str(run_dir), "--format", "pt", "--out", str(out)]) == 0
    assert models.read_checkpoint(out)["kind"] == "weights"
    net, ref = models.load_model(out), models.load_model(run_dir / "best.pt")
    x = torch.rand(1, 1, 32, 40)
    with torch.no_grad():
        assert (net(x, x) - ref(x, x)).abs().max() < 5e-3  # fp16 storage only


def test_code_running_pickle_is_refused_everywhere(data, tmp_path, capsys):
    marker = tmp_path / "pwned"
    evil = _evil_checkpoint(tmp_path / "evil.pt", marker)
    # the file really calls open(marker, "w") when unpickled without the safe loader (listed, not executed)
    assert set(torch.serialization.get_unsafe_globals_in_checkpoint(evil)) & {"io.open", "builtins.open"}
    pair = [str(data / "ir" / "scene00.png"), str(data / "vi" / "scene00.png")]
    sets = sum((["--set", o] for o in synthetic_overrides(data)), [])
    commands = {
        "train": ["train", "tiny", "--resume", str(evil), "--out", str(tmp_path / "run"), "--no-progress", *sets],
        "fuse": ["fuse", "--model", str(evil), "--ir", pair[0], "--vi", pair[1], "--out", str(tmp_path / "f.png"),
                 "--device", "cpu", "--quiet"],
        "export": ["export", "--model", str(evil), "--out", str(tmp_path / "e.onnx")],
        "bench": ["bench", "--model", str(evil), "--sizes", "32x32", "--repeats", "1"],
    }
    for name, argv in commands.items():
        assert cli.main(argv) == 1, name
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and f"crossfuse {name}: error: {evil}" in err and "Unsupported global" in err, err
        assert not marker.exists(), name
    assert not (tmp_path / "run").exists()  # nothing written for a refused resume
    with pytest.raises(CheckpointError, match=f"{evil}: .*safe loader"):
        models.export_weights(evil, tmp_path / "w.pt")
    assert not marker.exists() and not (tmp_path / "w.pt").exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_files_that_are_not_models_get_one_line(tmp_path, capsys):
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint\n")
    other = tmp_path / "dict.pt"
    torch.save({"weights": [1, 2, 3]}, other)
    pickled = tmp_path / "plain.pt"
    pickled.write_bytes(pickle.dumps({"a": 1}))
    for f in (text, other, pickled):
        with pytest.raises(CheckpointError, match=f"{f}: not a crossfuse weights file or training checkpoint"):
            models.resolve(f)
        assert cli.main(["export", "--model", str(f), "--out", str(tmp_path / "x.onnx")]) == 1
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and f"{f}: not a crossfuse weights file" in err


def test_config_mistakes_are_one_line_and_leave_no_run_folder(data, tmp_path, capsys):
    base = synthetic_overrides(data)
    with pytest.raises(ConfigError, match=r"\[model.config\] does not fit network 'fast': .*chanels"):
        load_config("tiny", [*base, "model.config.chanels=3"])
    with pytest.raises(ConfigError, match=r"'schedule.lr' must be a number, got 'fast'"):
        load_config("tiny", [*base, 'schedule.lr="fast"'])
    for bad in ("model.config.chanels=3", 'schedule.lr="fast"', "data.val_count=100"):  # the last one fails late
        out = tmp_path / "run"
        argv = ["train", "tiny", "--out", str(out), "--no-progress"] + sum((["--set", o] for o in [*base, bad]), [])
        assert cli.main(argv) == 1, bad
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and err.startswith("crossfuse train: error: "), err
        assert not out.exists(), bad


def test_cli_errors_are_never_one_word(capsys, monkeypatch):
    import crossfuse.cli.list_cmd as list_cmd

    monkeypatch.setattr(list_cmd, "model_lines", lambda: {}["config"])  # a bare KeyError from inside a command
    assert cli.main(["list", "models"]) == 1
    assert capsys.readouterr().err.strip() == "crossfuse list: error: missing key 'config' (KeyError)"


def test_python_m_cli_and_list(tmp_path):
    env_src = {"PYTHONPATH": str(REPO / "src")}
    import os

    res = subprocess.run([sys.executable, "-m", "crossfuse.cli", "list", "models"], capture_output=True, text=True,
                         env={**os.environ, **env_src}, timeout=120)
    from crossfuse.models import DEFAULT_MODEL

    assert res.returncode == 0 and f"\n{DEFAULT_MODEL} (default): " in "\n" + res.stdout
    assert "a run folder" in res.stdout


@pytest.mark.parametrize("kind,expect", [("configs", "tiny: "), ("metrics", "  Qabf: "),
                                         ("corruptions", "gaussian_noise: ")])
def test_list_kinds(kind, expect, capsys):
    assert cli.main(["list", kind]) == 0
    assert any(line.startswith(expect) for line in capsys.readouterr().out.splitlines())


def test_fuse_help_names_every_model_form(capsys):
    with pytest.raises(SystemExit):
        cli.main(["fuse", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for form in ("shipped model name", "weights .pt", "training checkpoint", "run folder", ".onnx"):
        assert form in text, form


def test_top_level_api_has_real_signatures():
    import inspect

    import crossfuse
    from crossfuse.infer import fuse

    assert crossfuse.fuse is fuse
    assert {"ir", "vis", "model", "gray", "device"} <= set(inspect.signature(crossfuse.fuse).parameters)
    assert {"spec", "device"} <= set(inspect.signature(crossfuse.load_model).parameters)
    assert "profile" in inspect.signature(crossfuse.evaluate).parameters


def test_checkpoints_of_older_versions_still_load(run_dir, tmp_path):
    """Before this version the NumPy RNG state (an array) was pickled as is; such files load through a NumPy-only
    allowlist, and a resume from one continues."""
    ck = torch.load(run_dir / "last.pt", weights_only=True)
    n = ck["rng"]["numpy"]
    ck["rng"]["numpy"] = (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                          np.float64(n["cached_gaussian"]))
    torch.save(ck, tmp_path / "old.pt")
    with pytest.raises(Exception, match="Unsupported global"):
        torch.load(tmp_path / "old.pt", weights_only=True)
    blob = models.read_checkpoint(tmp_path / "old.pt")
    assert blob["kind"] == "checkpoint" and isinstance(blob["checkpoint"]["rng"]["numpy"][1], np.ndarray)
    assert models.resolve(tmp_path / "old.pt").module is not None
