"""The shipped model's card tells the truth: `crossfuse fuse --gray` on RoadScene-test50, scored by
`crossfuse eval --profile cddfuse`, gives the numbers printed in the card (issue 5: "--gray output evaluated with
crossfuse eval gives the model card's numbers")."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import require_data

from crossfuse import cli
from crossfuse.io import write_image
from crossfuse.models import DEFAULT_MODEL
from crossfuse.synthetic import make_scene

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import eval_model  # noqa: E402

CARD = Path(__file__).resolve().parents[1] / "src" / "crossfuse" / "weights" / f"{DEFAULT_MODEL}.md"
METRICS = ("EN", "SD", "SF", "MI", "SCD", "VIF", "Qabf", "SSIM")


def _card_row(section: str) -> dict[str, float]:
    """The bold model row of the card's table under the heading that contains ``section``."""
    text = CARD.read_text(encoding="utf-8")
    start = text.index(section)
    header = next(line for line in text[start:].splitlines() if line.startswith("| method"))
    row = next(line for line in text[start:].splitlines() if line.startswith(f"| **{DEFAULT_MODEL}**"))
    names = [c.strip() for c in header.strip("|").split("|")]
    values = [c.strip() for c in row.strip("|").split("|")]
    return {n: float(v) for n, v in zip(names, values) if n in METRICS}


def _link_subset(src: Path, stems: list[str], dst: Path) -> None:
    for sub in ("ir", "vi"):
        (dst / sub).mkdir(parents=True)
        files = {p.stem: p for p in (src / sub).iterdir()}
        for s in stems:
            (dst / sub / files[s].name).symlink_to(files[s])


@pytest.mark.slow
def test_card_numbers_reproduce_on_roadscene_test50(tmp_path):
    root = require_data("RoadScene")
    stems = [s.strip() for s in (root / "cddfuse_test50.txt").read_text().split() if s.strip()]
    assert len(stems) == 50
    _link_subset(root, stems, tmp_path)
    assert cli.main(["fuse", "--ir", str(tmp_path / "ir"), "--vi", str(tmp_path / "vi"),
                     "--out", str(tmp_path / "fused"), "--gray", "--threads", "1", "--quiet"]) == 0
    summary = tmp_path / "summary.json"
    assert cli.main(["eval", "--ir", str(tmp_path / "ir"), "--vi", str(tmp_path / "vi"),
                     "--fused", str(tmp_path / "fused"), "--profile", "cddfuse", "--json", str(summary),
                     "--quiet"]) == 0
    got = json.loads(summary.read_text())
    assert got["n"] == 50
    card = _card_row("RoadScene, the 50-pair test list")
    assert set(card) == set(METRICS)
    for name, value in card.items():  # the card prints 3 decimals: agree to half a unit of the last one
        assert float(got["mean"][name]) == pytest.approx(value, abs=5e-4), name


def test_card_names_its_command_and_data():
    text = CARD.read_text(encoding="utf-8")
    assert re.search(r"crossfuse train \S+ --out", text), "the card must give the training command"
    for word in ("RoadScene", "cddfuse_test50", "LLVIP", "MSRS", "K = 1000"):
        assert word in text, word


def test_card_script_and_fuse_gray_give_byte_identical_images(tmp_path):
    """benchmarks/eval_model.py (where the card's numbers come from) fuses exactly as `crossfuse fuse --gray`, for
    8-bit colour pairs and a 16-bit pair alike (no private rules in the script)."""
    root = tmp_path / "data"
    for i in range(3):
        sc = make_scene(120, 152, seed=20 + i)
        ir, vi = sc.ir, sc.vis
        if i == 2:  # 16-bit radiometric-like IR and 16-bit visible
            ir, vi = (ir.astype(np.uint16) * 180 + 3000), vi.astype(np.uint16) * 257
        write_image(root / "TNO" / "ir" / f"p{i}.png", ir)
        write_image(root / "TNO" / "vi" / f"p{i}.png", vi)
    fuser = eval_model.make_fuser(argparse.Namespace(rule=None, checkpoint=None, weights=None, model=DEFAULT_MODEL))
    means, n, _ = eval_model.evaluate_dataset(fuser, root, "TNO", tmp_path / "card")
    assert n == 3 and all(np.isfinite(v) for v in means.values())
    assert cli.main(["fuse", "--ir", str(root / "TNO" / "ir"), "--vi", str(root / "TNO" / "vi"), "--out",
                     str(tmp_path / "cli"), "--gray", "--bit-depth", "8", "--device", "cpu", "--quiet"]) == 0
    for i in range(3):
        a, b = (tmp_path / "card" / "TNO" / f"p{i}.png").read_bytes(), (tmp_path / "cli" / f"p{i}.png").read_bytes()
        assert a == b, f"p{i}.png differs"
