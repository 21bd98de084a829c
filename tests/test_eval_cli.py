"""``crossfuse eval`` and ``crossfuse.metrics.evaluate`` end to end, including bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from crossfuse.cli import main
from crossfuse.io import PairingError, write_image
from crossfuse.metrics import EvalResult, compute_metrics, evaluate
from tests.conftest import require_data

RNG = np.random.default_rng(11)


def _img(h: int = 40, w: int = 56, colour: bool = False) -> np.ndarray:
    x = cv2.GaussianBlur(RNG.random((h, w, 3) if colour else (h, w)) * 255, (0, 0), 2.0)
    return np.clip(np.round((x - x.min()) / (x.max() - x.min()) * 255), 0, 255).astype(np.uint8)


@pytest.fixture
def folders(tmp_path: Path) -> Path:
    """Three good triplets (one fused as JPEG, one colour), plus an IR image without partners."""
    for i, stem in enumerate(["a", "b", "c"]):
        ir, vi = _img(), _img(colour=i == 1)
        fused = np.round((ir.astype(float) + (vi.mean(axis=2) if vi.ndim == 3 else vi)) / 2).astype(np.uint8)
        write_image(tmp_path / "ir" / f"{stem}.png", ir)
        write_image(tmp_path / "vi" / f"{stem}.png", vi)
        write_image(tmp_path / "fused" / f"{stem}.{'jpg' if stem == 'c' else 'png'}", fused)
    return tmp_path


def _args(root: Path, *extra: str) -> list[str]:
    return ["eval", "--ir", str(root / "ir"), "--vi", str(root / "vi"), "--fused", str(root / "fused"), "--quiet",
            *extra]


def test_eval_writes_csv_json_and_table(folders: Path, capsys):
    csv_path, json_path = folders / "out" / "per_image.csv", folders / "out" / "summary.json"
    assert main(_args(folders, "--profile", "canonical", "--metrics", "SSIM,EN,Qabf", "--csv", str(csv_path),
                      "--json", str(json_path))) == 0
    out = capsys.readouterr().out
    assert "profile: canonical" in out and "colour:" in out and "3 evaluated, 0 skipped" in out
    rows = list(csv.reader(csv_path.open()))
    assert rows[0] == ["image", "SSIM", "EN", "Qabf"]
    assert [r[0] for r in rows[1:]] == ["a", "b", "c"]
    summary = json.loads(json_path.read_text())
    assert summary["profile"] == "canonical" and summary["n"] == 3 and summary["skipped"] == []
    assert summary["metrics"] == ["SSIM", "EN", "Qabf"] and "BT.601" in summary["colour"]
    values = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
    assert summary["mean"]["EN"] == pytest.approx(values[:, 1].mean())
    assert summary["std"]["SSIM"] == pytest.approx(values[:, 0].std())
    # the CSV numbers are what compute_metrics gives on the same files
    from crossfuse.io import read_image

    direct = compute_metrics(read_image(folders / "ir" / "c.png"), read_image(folders / "vi" / "c.png"),
                             read_image(folders / "fused" / "c.jpg"), "canonical", ["SSIM", "EN", "Qabf"])
    assert [float(v) for v in rows[3][1:]] == pytest.approx(list(direct.values()), rel=1e-12)


def test_existing_outputs_need_overwrite(folders: Path, capsys):
    target = folders / "per_image.csv"
    target.write_text("keep me\n")
    assert main(_args(folders, "--csv", str(target))) == 1
    err = capsys.readouterr().err
    assert "exists" in err and "--overwrite" in err and "Traceback" not in err
    assert target.read_text() == "keep me\n"
    assert main(_args(folders, "--csv", str(target), "--overwrite")) == 0
    assert target.read_text().startswith("image,EN,SD,SF,MI,SCD,VIF,Qabf,SSIM\n")


def test_bad_inputs_are_reported_skips(folders: Path, capsys):
    write_image(folders / "ir" / "d.png", _img())  # no vi / fused partner
    write_image(folders / "vi" / "e.png", _img())
    write_image(folders / "ir" / "e.png", _img())
    write_image(folders / "fused" / "e.png", _img(h=30))  # size mismatch
    write_image(folders / "vi" / "f.png", _img())
    write_image(folders / "ir" / "f.png", _img())
    (folders / "fused" / "f.png").write_bytes(b"not a png at all")  # unreadable
    json_path = folders / "s.json"
    assert main(_args(folders, "--json", str(json_path))) == 0
    captured = capsys.readouterr()
    assert "3 evaluated, 3 skipped" in captured.out and "warning: 3 triplet(s) skipped" in captured.err
    skipped = {s["image"]: s["reason"] for s in json.loads(json_path.read_text())["skipped"]}
    assert set(skipped) == {"d", "e", "f"}
    assert "no vi/fused partner" in skipped["d"] and "ir/d.png" in skipped["d"]
    assert "size mismatch" in skipped["e"] and "e.png is 56x30" in skipped["e"]
    assert "f.png" in skipped["f"] and "not a readable image" in skipped["f"]
    assert main(_args(folders, "--strict")) == 1


def test_nothing_to_evaluate_is_a_one_line_error(tmp_path: Path, capsys):
    for sub in ("ir", "vi", "fused"):
        (tmp_path / sub).mkdir()
    write_image(tmp_path / "ir" / "x.png", _img())
    write_image(tmp_path / "vi" / "y.png", _img())
    assert main(_args(tmp_path)) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("crossfuse eval: error: no complete ir/vi/fused triplets") and "\n" not in err
    assert main(["eval", "--ir", str(tmp_path / "nope"), "--vi", str(tmp_path / "vi"), "--fused",
                 str(tmp_path / "fused"), "--quiet"]) == 1
    assert "nope: not a folder" in capsys.readouterr().err
    with pytest.raises(PairingError):
        evaluate(tmp_path / "ir", tmp_path / "vi", tmp_path / "fused", progress=False)


def test_all_triplets_bad_exits_1(tmp_path: Path, capsys):
    write_image(tmp_path / "ir" / "a.png", _img())
    write_image(tmp_path / "vi" / "a.png", _img())
    write_image(tmp_path / "fused" / "a.png", _img(w=20))
    assert main(_args(tmp_path, "--csv", str(tmp_path / "o.csv"))) == 1
    assert "none of the 1 triplets could be scored" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


def test_unknown_metric_or_profile(folders: Path, capsys):
    assert main(_args(folders, "--metrics", "EN,FOO")) == 1
    assert "unknown metric 'FOO'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(_args(folders, "--profile", "tang"))


def test_parallel_jobs_give_identical_results(folders: Path):
    one = evaluate(folders / "ir", folders / "vi", folders / "fused", "cddfuse", None, jobs=1, progress=False)
    two = evaluate(folders / "ir", folders / "vi", folders / "fused", "cddfuse", None, jobs=2, progress=False)
    assert isinstance(one, EvalResult) and one.n == 3
    assert one.csv_text() == two.csv_text()
    assert one.summary() == two.summary()


def test_infinite_values_summarise_without_nan(tmp_path: Path):
    img = _img()
    for sub in ("ir", "vi", "fused"):
        write_image(tmp_path / sub / "same.png", img)
        write_image(tmp_path / sub / "other.png", img)
    res = evaluate(tmp_path / "ir", tmp_path / "vi", tmp_path / "fused", "canonical", ["PSNR", "SSIM"],
                   progress=False)
    assert res.mean["PSNR"] == float("inf") and res.std["PSNR"] == 0.0
    assert res.summary()["mean"]["PSNR"] == "inf"
    json.dumps(res.summary(), allow_nan=False)


def test_real_data_matches_cddfuse_golden_means(tmp_path: Path):
    """End to end on VIFB_calib (fused by CNN): the CLI's means equal the golden CDDFuse evaluator values."""
    root = require_data("VIFB_calib")
    gold_path = require_data("metric_reference", "cddfuse_vifb_calib.csv")
    gold: dict[str, list[float]] = {}
    with gold_path.open() as fh:
        for row in csv.DictReader(fh):
            if row["method"] == "CNN":
                gold.setdefault(row["metric"], []).append(float(row["value"]))
    out = tmp_path / "s.json"
    assert main(["eval", "--ir", str(root / "ir"), "--vi", str(root / "vi"), "--fused", str(root / "fused" / "CNN"),
                 "--metrics", "EN,SD,SF,AG,MI,SCD,VIF,Qabf,SSIM,CC,PSNR,MSE", "--json", str(out), "--quiet"]) == 0
    summary = json.loads(out.read_text())
    assert summary["n"] == 5 and summary["profile"] == "cddfuse"
    for metric, values in gold.items():
        assert summary["mean"][metric] == pytest.approx(np.mean(values), rel=1e-4), metric


def test_eval_states_the_profile_conventions_under_the_table_and_in_json(folders: Path, capsys):
    json_path = folders / "s.json"
    assert main(_args(folders, "--json", str(json_path), "--metrics", "SSIM,MI")) == 0  # default profile cddfuse
    out = capsys.readouterr().out
    table, _, notes = out.partition("\nnotes:\n")
    assert "SSIM" in table and notes, out
    assert "SSIM, VIF and MI are sums over the two sources" in notes and "SSIM up to 2" in notes
    assert "population standard deviation" in notes and "one image shows std 0" in notes
    summary = json.loads(json_path.read_text())
    from crossfuse.metrics.registry import conventions

    assert summary["conventions"] == conventions("cddfuse")  # the registry's data, not a CLI string
    assert summary["mean"]["SSIM"] > 1.0  # a sum of two SSIMs: the note is what explains this number


def test_eval_help_names_the_conventions(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "sums over the two sources" in text and "population std" in text


def test_unusable_output_location_is_found_before_scoring(folders: Path, capsys, monkeypatch):
    import crossfuse.metrics as metrics

    monkeypatch.setattr(metrics, "evaluate", lambda *a, **k: pytest.fail("scored before the output was checked"))
    (folders / "afile").write_text("x")
    assert main(_args(folders, "--json", str(folders / "afile" / "s.json"))) == 1
    err = capsys.readouterr().err
    assert err.startswith("crossfuse eval: error:") and "afile: exists and is not a folder" in err
