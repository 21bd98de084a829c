"""Every kind of output a user gets (image, text, ONNX, weights, video, align folder) is created with mode
``0666 & ~umask`` (folders ``0777 & ~umask``), like any new file: the temporary files they are written through
used to be ``tempfile.mkstemp``'s 0600, which the outputs kept."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from _fusetools import random_net

from crossfuse import io as cio
from crossfuse.export import export_onnx
from crossfuse.models import save_pt
from crossfuse.video import write_video


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(p: Path) -> int:
    return p.stat().st_mode & 0o777


def test_every_output_kind_gets_0644_under_umask_022(tmp_path, umask_022):
    net = random_net("fast", seed=0)
    outputs = [
        cio.write_image(tmp_path / "a.png", np.zeros((8, 8, 3), np.uint8)),
        cio.write_bytes_atomic(tmp_path / "log.csv", "epoch,loss\n"),
        export_onnx(net, tmp_path / "m.onnx"),
        save_pt({"x": 1}, tmp_path / "w.pt"),
        write_video(tmp_path / "v.mp4", (np.zeros((16, 16), np.uint8) for _ in range(3)), 5.0),
    ]
    assert {p.name: _mode(p) for p in outputs} == {p.name: 0o644 for p in outputs}
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left
