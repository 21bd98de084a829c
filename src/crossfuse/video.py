"""Frame-by-frame fusion of an IR video and a registered visible video (OpenCV ``VideoCapture``/``VideoWriter``).

The output keeps the visible video's frame rate and the frame count of the shorter input (a length mismatch is
reported). Nothing flickers from normalisation: the IR window (:func:`crossfuse.infer.resolve_ir_window`), the
visible veil level (:meth:`crossfuse.infer.Fuser.veil_of`) and, with ``stretch``, the output stretch window are
computed **once** from the first frame and applied to the whole clip.
The video is written to a temporary file beside the target and renamed when complete (no half-written output).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from crossfuse.infer import Fuser
from crossfuse.io import channels_equal, check_overwrite, commit_temp, sigterm_raises, temp_beside
from crossfuse.pixels import apply_stretch, compose_output, resolve_ir_window, stretch_window

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm")
CODECS = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG"}


@dataclass
class VideoResult:
    path: Path
    frames: int
    fps: float
    size: tuple[int, int]  # (W, H)
    note: str = ""


def is_video(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def _open(path: str | os.PathLike) -> cv2.VideoCapture:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such video file")
    cap = cv2.VideoCapture(str(p))
    if not cap.isOpened():
        raise ValueError(f"{p}: not a readable video (corrupt or unsupported codec)")
    return cap


def video_info(path: str | os.PathLike) -> tuple[int, float, tuple[int, int]]:
    """``(frame_count, fps, (W, H))`` as reported by the container (the count may be approximate)."""
    cap = _open(path)
    try:
        return (int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), float(cap.get(cv2.CAP_PROP_FPS)),
                (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))))
    finally:
        cap.release()


def read_frames(path: str | os.PathLike) -> Iterable[np.ndarray]:
    """Frames as RGB uint8 (H, W, 3), or (H, W) when the three channels are equal (gray video)."""
    cap = _open(path)
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if channels_equal(frame):
                yield np.ascontiguousarray(frame[:, :, 0])
            else:
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        cap.release()


class AtomicVideoWriter:
    """``cv2.VideoWriter`` into a temporary file in the target folder; :meth:`commit` renames it into place."""

    def __init__(self, path: str | os.PathLike, fps: float, size: tuple[int, int], *, color: bool = True,
                 codec: str | None = None, overwrite: bool = False) -> None:
        self.path = check_overwrite(path, overwrite)
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_EXTENSIONS:
            raise ValueError(f"{self.path}: unsupported video extension (use one of {', '.join(VIDEO_EXTENSIONS)})")
        self.tmp = temp_beside(self.path, suffix=suffix)  # OpenCV picks the container from the extension
        try:  # anything raised before the caller holds this writer (SIGTERM included) must not leave the temp file
            fourcc = cv2.VideoWriter_fourcc(*(codec or CODECS.get(suffix, "mp4v")))
            self.writer = cv2.VideoWriter(str(self.tmp), fourcc, fps, size, isColor=color)
            if not self.writer.isOpened():
                raise ValueError(f"{self.path}: OpenCV cannot write this video (codec {codec or CODECS.get(suffix)})")
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise
        self.color, self.size, self.frames = color, size, 0

    def write(self, frame: np.ndarray) -> None:
        """Write one uint8 frame: RGB (H, W, 3) for colour writers, (H, W) for gray ones."""
        if frame.shape[1::-1] != self.size:
            raise ValueError(f"frame is {frame.shape[1]}x{frame.shape[0]}, video is {self.size[0]}x{self.size[1]}")
        self.writer.write(np.ascontiguousarray(frame[:, :, ::-1]) if frame.ndim == 3 else frame)
        self.frames += 1

    def commit(self) -> Path:
        self.writer.release()
        return commit_temp(self.tmp, self.path)

    def abort(self) -> None:
        self.writer.release()
        self.tmp.unlink(missing_ok=True)


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], fps: float, *, overwrite: bool = False,
                codec: str | None = None) -> Path:
    """Write uint8 frames (all RGB or all gray) atomically; returns the path."""
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise ValueError(f"{path}: no frames to write")
    writer = AtomicVideoWriter(path, fps, (first.shape[1], first.shape[0]), color=first.ndim == 3,
                               codec=codec, overwrite=overwrite)
    try:
        writer.write(first)
        for f in it:
            writer.write(f)
    except BaseException:
        writer.abort()
        raise
    return writer.commit()


def _write_fused(fuser: Fuser, ir_path: str | os.PathLike, vi_path: str | os.PathLike, out_path: str | os.PathLike,
                 fps: float, size_vi: tuple[int, int], *, gray: bool, overwrite: bool, codec: str | None,
                 progress: Callable[[int], None] | None) -> tuple[Path, int]:
    """The frame loop of :func:`fuse_video`; the temporary output is removed on any exception."""
    writer: AtomicVideoWriter | None = None
    window = stretch = None
    veil, verdicts = 0.0, None
    frames = 0
    try:
        for ir, vi in zip(read_frames(ir_path), read_frames(vi_path), strict=False):
            if window is None:  # one IR window, veil level and gated-step verdicts per clip, from the first frame
                window, veil = resolve_ir_window(ir, fuser.ir_window), fuser.veil_of(vi)
            fused_y = fuser.fuse_y(ir, vi, window, veil, verdicts)
            if verdicts is None:  # the first frame went through the steps' own gates: their verdicts hold for the clip
                verdicts = dict(fuser.last_verdicts)
            if fuser.stretch:
                stretch = stretch or stretch_window(fused_y)
            if stretch is not None:
                fused_y = apply_stretch(fused_y, stretch)
            out = compose_output(fused_y, vi, gray=gray, dtype=np.uint8)
            if writer is None:
                writer = AtomicVideoWriter(out_path, fps, size_vi, color=out.ndim == 3, codec=codec,
                                           overwrite=overwrite)
            writer.write(out)
            frames += 1
            if progress:
                progress(1)
        if writer is None:
            raise ValueError(f"{ir_path} / {vi_path}: no frames could be read")
        path = writer.commit()
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    return path, frames


def fuse_video(fuser: Fuser, ir_path: str | os.PathLike, vi_path: str | os.PathLike, out_path: str | os.PathLike,
               *, gray: bool = False, overwrite: bool = False, codec: str | None = None,
               progress: Callable[[int], None] | None = None) -> VideoResult:
    """Fuse two registered videos frame by frame into ``out_path`` (8-bit; see the module docstring)."""
    n_ir, _, size_ir = video_info(ir_path)
    n_vi, fps, size_vi = video_info(vi_path)
    if size_ir != size_vi:
        raise ValueError(f"video size mismatch: {ir_path} is {size_ir[0]}x{size_ir[1]}, "
                         f"{vi_path} is {size_vi[0]}x{size_vi[1]} (W x H)")
    if not fps or fps <= 0 or not np.isfinite(fps):
        fps = 25.0
    with sigterm_raises():  # a killed run removes its hidden temporary video too
        path, frames = _write_fused(fuser, ir_path, vi_path, out_path, fps, size_vi, gray=gray, overwrite=overwrite,
                                    codec=codec, progress=progress)
    note = "" if n_ir == n_vi else f"inputs differ in length ({n_ir} vs {n_vi} frames); fused {frames}"
    return VideoResult(path=path, frames=frames, fps=fps, size=size_vi, note=note)


__all__ = ["fuse_video", "write_video", "read_frames", "video_info", "is_video", "AtomicVideoWriter", "VideoResult"]
