"""``crossfuse eval --report``: one self-contained HTML page (no network), and the shared page helpers."""

from __future__ import annotations

import re

import numpy as np
import pytest
from conftest import require_data

from crossfuse import io as cio
from crossfuse.cli import main
from crossfuse.report import fmt, page, table, td, thumbnail_uri


@pytest.fixture
def triplets(tmp_path):
    """Three TNO pairs and a pixel-wise max 'fusion' of them (no model needed)."""
    tno = require_data("TNO")
    for stem in ("08", "13", "21"):
        ir, vi = cio.read_image(tno / "ir" / f"{stem}.png"), cio.read_image(tno / "vi" / f"{stem}.png")
        cio.write_image(tmp_path / "fused" / f"{stem}.png", np.maximum(ir, vi))
    return tno, tmp_path


def test_eval_report_is_one_offline_page(triplets, capsys):
    tno, tmp = triplets
    out = tmp / "report.html"
    args = ["eval", "--ir", str(tno / "ir"), "--vi", str(tno / "vi"), "--fused", str(tmp / "fused"),
            "--profile", "canonical", "--csv", str(tmp / "v.csv"), "--report", str(out), "--quiet"]
    assert main(args) == 0  # the 39 TNO pairs without a fused image are skipped with a warning, not an error
    assert f"report: {out}" in capsys.readouterr().out
    text = out.read_text()
    assert sorted(p.name for p in tmp.iterdir()) == ["fused", "report.html", "v.csv"]  # one file, nothing beside
    assert not re.search(r"https?://", text) and "<link" not in text
    srcs = re.findall(r"""src=["']([^"']*)""", text)
    assert len(srcs) == 9 and all(s.startswith("data:image/jpeg;base64,") for s in srcs)  # IR | VIS | fused x 3
    assert "<b>Profile:</b> canonical" in text and "Skipped (39)" in text
    # per-image rows carry the CSV's values (sortable by data-v)
    rows = [line.split(",") for line in (tmp / "v.csv").read_text().splitlines()]
    header, first = rows[0], rows[1]
    body = text.split("<h2>Per image</h2>")[1]
    assert body.count("<tr>") == 4 and 'class="thumbs sortable"' in body
    for name, value in zip(header[1:], first[1:]):
        assert f'data-v="{float(value)!r}"' in body, name
    # an existing report is refused before any scoring
    assert main(args) == 1
    assert "exists" in capsys.readouterr().err


def test_page_helpers():
    assert td(0.5) == '<td data-v="0.5">0.5000</td>' and td(float("inf")).startswith('<td data-v="1e+308">inf')
    assert fmt("<a&b>") == "&lt;a&amp;b&gt;"
    html = page("t", [table(["x", "y"], [[td(1.0), td(2)]], sortable=True)])
    assert html.count("<th class=\"sort\">") == 2 and "<script>" in html and "http" not in html
    uri = thumbnail_uri(np.full((40, 80, 3), 200, np.uint8), width=20)
    assert uri.startswith("data:image/jpeg;base64,")
    import base64

    import cv2
    small = cv2.imdecode(np.frombuffer(base64.b64decode(uri.split(",", 1)[1]), np.uint8), cv2.IMREAD_UNCHANGED)
    assert small.shape[:2] == (10, 20) and abs(int(small.mean()) - 200) <= 1
