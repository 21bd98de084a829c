"""Video fusion: a 60-frame synthetic pair round-trips to a fused video of the same length, rate and size."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from _fusetools import random_net

import crossfuse.cli.fuse_cmd as fuse_cmd
import crossfuse.video as video
from crossfuse import cli
from crossfuse.infer import Fuser
from crossfuse.synthetic import scene_frames

torch.set_num_threads(1)
FPS = 12.0


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("video")
    frames = list(scene_frames(60, 96, 128, seed=5))
    ir = video.write_video(root / "ir.mp4", (f[0] for f in frames), FPS)
    vi = video.write_video(root / "vi.mp4", (f[1] for f in frames), FPS)
    return root, ir, vi


@pytest.fixture(autouse=True)
def random_model(monkeypatch):
    net = random_net("fast", seed=3)
    monkeypatch.setattr(fuse_cmd, "make_fuser",
                        lambda args: Fuser(net, device="cpu", ir_window=args.ir_window, stretch=args.stretch))


def test_inputs_are_what_we_wrote(clips):
    _, ir, vi = clips
    assert video.video_info(ir)[1:] == (FPS, (128, 96))
    first = next(iter(video.read_frames(ir)))
    assert first.shape == (96, 128)  # gray video read back as one channel
    assert sum(1 for _ in video.read_frames(vi)) == 60


def test_video_round_trip_same_length_rate_and_size(clips, capsys):
    root, ir, vi = clips
    out = root / "fused.mp4"
    assert cli.main(["fuse", "--ir", str(ir), "--vi", str(vi), "--out", str(out), "--quiet"]) == 0
    assert "60 frames" in capsys.readouterr().out
    n, fps, size = video.video_info(out)
    frames = list(video.read_frames(out))
    assert len(frames) == 60 and fps == pytest.approx(FPS) and size == (128, 96)
    assert frames[0].ndim == 3  # colour visible -> colour video
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # temp file renamed away
    # content: the fused frame is the Fuser's result on the decoded inputs, up to codec loss
    ir30 = list(video.read_frames(ir))[30]
    vi30 = list(video.read_frames(vi))[30]
    expected = fuse_cmd.make_fuser(cli.build_parser().parse_args(["fuse", "--ir", "a", "--vi", "b", "--out", "c"]))(
        ir30, vi30)
    assert np.abs(frames[30].astype(np.float64) - expected).mean() < 6.0
    # existing output is kept
    stamp = out.stat().st_mtime_ns
    assert cli.main(["fuse", "--ir", str(ir), "--vi", str(vi), "--out", str(out), "--quiet"]) == 0
    assert "skipped" in capsys.readouterr().out and out.stat().st_mtime_ns == stamp


def test_gray_video_and_one_ir_window_per_clip(clips, monkeypatch):
    root, ir, vi = clips
    calls = []
    real = video.resolve_ir_window
    monkeypatch.setattr(video, "resolve_ir_window", lambda img, spec: calls.append(spec) or real(img, spec))
    out = root / "gray.avi"
    assert cli.main(["fuse", "--ir", str(ir), "--vi", str(vi), "--out", str(out), "--gray", "--quiet",
                     "--ir-window", "minmax", "--stretch"]) == 0
    assert calls == ["minmax"]  # computed once for the whole clip, not per frame
    frames = list(video.read_frames(out))
    assert len(frames) == 60 and frames[0].ndim == 2 and video.video_info(out)[1] == pytest.approx(FPS)


def test_one_visible_veil_level_per_clip(clips, monkeypatch, tmp_path):
    """Like the IR window, the veil level (crossfuse.veil) comes from the first frame and is kept: no flicker."""
    _, ir, vi = clips
    seen: list = []

    class Spy(Fuser):
        def veil_of(self, vis):
            seen.append("estimate")
            return super().veil_of(vis)

        def fuse_y(self, ir, vis, ir_window=None, veil=None, verdicts=None):
            seen.append(veil)
            return super().fuse_y(ir, vis, ir_window, veil, verdicts)

    monkeypatch.setattr(fuse_cmd, "make_fuser", lambda args: Spy(random_net("fast", seed=3), device="cpu",
                                                                 vis_veil=0.75))
    assert cli.main(["fuse", "--ir", str(ir), "--vi", str(vi), "--out", str(tmp_path / "v.mp4"), "--quiet"]) == 0
    levels = [v for v in seen if v != "estimate"]
    assert seen.count("estimate") == 1 and len(levels) == 60
    assert None not in levels and len(set(levels)) == 1


def test_one_gated_step_decision_per_clip(clips, monkeypatch, tmp_path):
    """The gates of destriping and denoising are read on the first frame (its own planes, as the network gets them)
    and their verdicts hold for the clip (on or off), so no step can switch from frame to frame."""
    _, ir, vi = clips
    seen: list = []
    verdicts: list = []

    class Spy(Fuser):
        def fuse_y(self, ir, vis, ir_window=None, veil=None, verdicts_in=None):
            seen.append(verdicts_in)
            out = super().fuse_y(ir, vis, ir_window, veil, verdicts_in)
            verdicts.append(dict(self.last_verdicts))
            return out

    monkeypatch.setattr(fuse_cmd, "make_fuser", lambda args: Spy(random_net("fast", seed=3), device="cpu",
                                                                 destripe=True, denoise=True))
    assert cli.main(["fuse", "--ir", str(ir), "--vi", str(vi), "--out", str(tmp_path / "v.mp4"), "--quiet"]) == 0
    assert len(seen) == 60 and seen[0] is None  # the first frame through its own gates
    assert set(verdicts[0]) == {"destripe", "denoise_ir", "denoise_vis"}
    assert all(v == verdicts[0] for v in seen[1:])  # its verdicts, for the whole clip
    assert all(v == verdicts[0] for v in verdicts[1:])  # followed, not re-read


def test_video_errors(clips, tmp_path, capsys):
    _, ir, vi = clips
    small = video.write_video(tmp_path / "small.mp4", (np.zeros((64, 64), np.uint8) for _ in range(3)), FPS)
    assert cli.main(["fuse", "--ir", str(small), "--vi", str(vi), "--out", str(tmp_path / "o.mp4")]) == 1
    assert "size mismatch" in capsys.readouterr().err and not (tmp_path / "o.mp4").exists()
    assert cli.main(["fuse", "--ir", str(ir), "--vi", str(vi), "--out", str(tmp_path / "o.png")]) == 1
    assert "video output" in capsys.readouterr().err
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    assert cli.main(["fuse", "--ir", str(tmp_path / "bad.mp4"), "--vi", str(vi), "--out",
                     str(tmp_path / "o2.mp4")]) == 1
    assert "bad.mp4" in capsys.readouterr().err


def test_video_output_mode_follows_umask(clips, tmp_path):
    _, ir, vi = clips
    old = os.umask(0o022)
    try:
        assert cli.main(["fuse", "--ir", str(ir), "--vi", str(vi), "--out", str(tmp_path / "m.mp4"), "--quiet"]) == 0
    finally:
        os.umask(old)
    assert (tmp_path / "m.mp4").stat().st_mode & 0o777 == 0o644  # not 0600 as with tempfile.mkstemp


_SLOW_FUSE = """
import sys, time
sys.path.insert(0, {tests!r})
import torch
from _fusetools import random_net
import crossfuse.cli.fuse_cmd as fuse_cmd
from crossfuse import cli
from crossfuse.infer import Fuser

torch.set_num_threads(1)
net = random_net("fast", seed=3)

class SlowFuser(Fuser):
    def fuse_planes(self, ir01, y01, **kwargs):
        time.sleep(0.05)  # ~3 s for the clip: time to be killed mid-way
        return super().fuse_planes(ir01, y01, **kwargs)

fuse_cmd.make_fuser = lambda args: SlowFuser(net, device="cpu")
sys.exit(cli.main(sys.argv[1:]))
"""


def test_sigterm_during_video_fusion_leaves_no_temporary_file(clips, tmp_path):
    _, ir, vi = clips
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    script = tmp_path / "slow_fuse.py"
    script.write_text(_SLOW_FUSE.format(tests=str(Path(__file__).parent)))
    proc = subprocess.Popen([sys.executable, str(script), "fuse", "--ir", str(ir), "--vi", str(vi), "--out",
                             str(out_dir / "f.mp4"), "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not any(out_dir.iterdir()) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    temp = [p.name for p in out_dir.iterdir()]
    assert temp and temp[0].startswith(".f.mp4."), (temp, proc.poll())  # killed while the temp video is written
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=60)
    assert rc == 128 + signal.SIGTERM, proc.stderr.read().decode()
    assert list(out_dir.iterdir()) == []  # neither the temporary video nor a half output
