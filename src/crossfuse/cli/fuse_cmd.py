"""``crossfuse fuse``: fuse a file pair, two folders matched by stem, or two videos.

Batches never stop on one bad pair: corrupt or partly decodable files, size mismatches, missing partners and broken
links are reported by name in the summary and the exit status is 1. Options and the output location are checked
before the model loads. Existing outputs are skipped unless ``--overwrite`` (so a re-run resumes), and every output
is written atomically (a SIGTERM removes the temporary file too).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from crossfuse.io import IMAGE_EXTENSIONS, OutputError


@dataclass
class Summary:
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def line(self) -> str:
        """``fused: N written[, N skipped (...)], N failed``: skips are mentioned only when there were some."""
        skipped = f", {len(self.skipped)} skipped (output exists; --overwrite replaces)" if self.skipped else ""
        return f"fused: {len(self.written)} written{skipped}, {len(self.failed)} failed"

    def report(self) -> None:
        print(self.line())
        for name, why in self.failed:
            print(f"  FAILED {name}: {why}")


COLOUR_RULE = ("Colour rule: a visible image in true colour gives a colour output (the visible colour is kept, "
               "only brightness is fused); a gray visible image - including one stored as three equal channels, "
               "as all of TNO is - gives a gray output.")


def _allow_negative_values(parser: argparse.ArgumentParser) -> None:
    """Let ``--max-memory -1GB`` reach our own check (a clear message) instead of argparse taking ``-1GB`` for an
    option ("expected one argument"): argparse treats a value as an option unless it looks like a negative number,
    and this widens "number" to a number with a unit."""
    parser._negative_number_matcher = re.compile(r"^-\d*\.?\d+([a-z]*)$", re.IGNORECASE)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "fuse", help="fuse an IR/visible pair, two folders of pairs, or two videos",
        description="Fuse infrared and visible images. --ir/--vi are two files (--out: an image file name, or a "
                    "folder), two folders matched by file stem (--out: a folder) or two videos (--out: a video). "
                    + COLOUR_RULE + " Sizes are kept exactly.")
    _allow_negative_values(p)
    p.add_argument("--ir", required=True, help="infrared file, folder or video")
    p.add_argument("--vi", required=True, help="visible file, folder or video (registered with --ir)")
    p.add_argument("--out", required=True, help="output file, folder or video")
    p.add_argument("--model", default=None,
                   help="shipped model name (crossfuse list models; default: the default model), an exported "
                        "weights .pt, a training checkpoint (last.pt / best.pt) or run folder (its best.pt, else "
                        "last.pt), or an .onnx file")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "fp16", "bf16"),
                   help="GPU autocast precision (auto: fp16 on GPUs, fp32 on the CPU)")
    p.add_argument("--backend", default="torch", choices=("torch", "onnx"), help="inference backend")
    p.add_argument("--gray", action="store_true", help="write the fused Y channel only (for evaluation)")
    p.add_argument("--bit-depth", type=int, choices=(8, 16), default=None,
                   help="output bit depth (default: the visible input's; 16 needs --ext png/tif)")
    p.add_argument("--tile", type=int, default=None,
                   help="force tiles of N pixels, N > --overlap + 32 (default: from --max-memory)")
    p.add_argument("--overlap", type=int, default=None, help="tile overlap in pixels (default 128)")
    p.add_argument("--max-memory", default="1GB",
                   help="working-memory budget per pair: a positive size such as 1.5GB or 800MB (default 1GB)")
    p.add_argument("--vis-veil", type=float, default=None, metavar="S",
                   help="visible veil removal strength in [0, 1] before fusion (default: what the model declares, "
                        "0.75 for crossfuse-robust9 and later; 0 turns it off)")
    p.add_argument("--deblock", action=argparse.BooleanOptionalAction, default=None,
                   help="deblock sources that read as coarse JPEGs (quality <= 40) before fusion (default: what the "
                        "model declares, on for crossfuse-robust10 and later)")
    p.add_argument("--destripe", action=argparse.BooleanOptionalAction, default=None,
                   help="take the column / row offsets off a plainly striped IR frame before fusion (default: what "
                        "the model declares, on for crossfuse-robust11 and later)")
    p.add_argument("--denoise", action=argparse.BooleanOptionalAction, default=None,
                   help="denoise a source frame whose estimated noise is over 3.5 grey levels before fusion "
                        "(default: what the model declares, on for crossfuse-robust12 and later)")
    p.add_argument("--noise-level", type=float, default=None, metavar="N",
                   help="the sources' noise level in grey levels, if you know it: denoise both planes of every frame "
                        "with it as the filter strength, whatever the estimate (which cannot see noise a camera's "
                        "processing has spread over neighbouring pixels); turns denoising on")
    p.add_argument("--spread-gate", action=argparse.BooleanOptionalAction, default=None,
                   help="denoise a frame's plane when the network's own restoration share reads it as noisy (noise "
                        "spread over neighbouring pixels, which the estimate above cannot see) and fuse it again "
                        "(default: what the model declares, on for crossfuse-robust17 and later, with --denoise)")
    p.add_argument("--stretch", action="store_true",
                   help="min-max stretch the fused result (off by default; inflates SD/EN/SF; for video the "
                        "window of the first frame is kept)")
    p.add_argument("--ir-window", default="auto",
                   help="IR scaling: auto (8-bit as is, 16-bit percentiles 0.5-99.5), full, minmax, p0.5,99.5, "
                        "fixed:LO,HI")
    p.add_argument("--register", action="store_true",
                   help="estimate each pair's misregistration (as check-align) and warp the IR onto the visible "
                        "frame when it is off by more than 2 px")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs (default: skip them)")
    p.add_argument("--jobs", type=int, default=1, help="pairs processed concurrently (default 1)")
    p.add_argument("--threads", type=int, default=0,
                   help="CPU threads for the network (default: torch's choice; on a busy machine 1 can be faster)")
    p.add_argument("--ext", default="png", help="output extension for folder mode (default png)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--log", metavar="CSV",
                   help="write one row per pair: status, error, seconds and what the input steps did to it (veil "
                        "level, JPEG qualities, destripe / denoise readings and verdicts, whether the rule was told "
                        "the frame was degraded, the registration estimate); image pairs and folders only")
    p.set_defaults(func=run)


def make_fuser(args: argparse.Namespace):
    from crossfuse.infer import DEFAULT_OVERLAP, Fuser

    if getattr(args, "threads", 0):
        import torch

        torch.set_num_threads(args.threads)
    return Fuser(args.model, device=args.device, precision=args.precision, backend=args.backend, tile=args.tile,
                 overlap=DEFAULT_OVERLAP if args.overlap is None else args.overlap, max_memory=args.max_memory,
                 ir_window=args.ir_window, stretch=args.stretch, register=getattr(args, "register", False),
                 vis_veil=getattr(args, "vis_veil", None), deblock=getattr(args, "deblock", None),
                 destripe=getattr(args, "destripe", None), denoise=getattr(args, "denoise", None),
                 noise_level=getattr(args, "noise_level", None), spread_gate=getattr(args, "spread_gate", None))


def _image_target(ir: Path, out: Path, ext: str) -> Path:
    """Pair mode: ``--out`` is an image file name, or a folder (new or existing) that gets ``<ir stem><ext>``."""
    if out.suffix.lower() in IMAGE_EXTENSIONS:
        return out
    if out.is_dir() or not out.suffix:
        return out / f"{ir.stem}{ext}"
    if out.exists():
        raise OutputError(f"--out {out}: exists and is neither a folder nor an image file")
    raise OutputError(f"--out {out}: not an image file name (use {', '.join(IMAGE_EXTENSIONS)}) nor a folder "
                      "(a new folder needs a name without an extension)")


def _plan(args: argparse.Namespace, summary: Summary) -> list[tuple[str, Path, Path, Path]]:
    """(name, ir, vi, out) jobs for pair and folder mode; problems of pairing go to ``summary.failed``. The output
    folder is created and checked for writing here, before any work."""
    from crossfuse.io import ensure_folder, match_folders

    ir, vi, out = Path(args.ir), Path(args.vi), Path(args.out)
    ext = "." + args.ext.lstrip(".").lower()
    if ext not in IMAGE_EXTENSIONS:
        raise ValueError(f"--ext {args.ext}: not an image extension ({', '.join(IMAGE_EXTENSIONS)})")
    if ir.is_dir() and vi.is_dir():
        if out.exists() and not out.is_dir():
            raise OutputError(f"--out {out}: exists and is not a folder (folder input needs an output folder)")
        matched = match_folders({"ir": ir, "vi": vi})
        for problem in matched.problems:
            stem, _, why = problem.partition(": ")
            summary.failed.append((stem, why))
        ensure_folder(out)
        return [(stem, f["ir"], f["vi"], out / f"{stem}{ext}") for stem, f in matched.items]
    for p in (ir, vi):
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such file or folder")
    if ir.is_dir() or vi.is_dir():
        raise ValueError(f"--ir {ir} and --vi {vi} must both be files or both be folders")
    target = _image_target(ir, out, ext)
    if target.is_dir():
        raise OutputError(f"--out {target}: is a folder, not an image file")
    ensure_folder(target.parent)
    return [(ir.stem, ir, vi, target)]


def _check_depth(args: argparse.Namespace, outputs: list[Path]) -> None:
    if args.bit_depth == 16:
        bad = [p for p in outputs if p.suffix.lower() not in (".png", ".tif", ".tiff")]
        if bad:
            raise ValueError(f"--bit-depth 16 needs .png or .tif outputs, not {bad[0].name}")


Outcome = tuple[str, str | None, dict[str, str]]  # (name, error or None, log columns: seconds and the step report)


def _fuse_all(args: argparse.Namespace, todo: list[tuple[str, Path, Path, Path]]) -> list[Outcome]:
    """Fuse the jobs (``--jobs`` at a time); returns one :data:`Outcome` per job, in order."""
    from tqdm import tqdm

    from crossfuse.infer import fuse_file

    fuser = make_fuser(args)
    check_tile(args, fuser.align)
    bar = tqdm(total=len(todo), unit="pair", desc="fuse", disable=args.quiet, file=sys.stderr)

    def one(job: tuple[str, Path, Path, Path]) -> Outcome:
        name, ir, vi, out = job
        start = time.perf_counter()
        try:
            fuse_file(fuser, ir, vi, out, gray=args.gray, bit_depth=args.bit_depth, overwrite=args.overwrite)
            return name, None, {"seconds": f"{time.perf_counter() - start:.3f}", **fuser.last_report.row()}
        except (ValueError, OSError) as exc:  # ImageError and OutputError included
            return name, str(exc), {"seconds": f"{time.perf_counter() - start:.3f}"}
        finally:
            bar.update(1)

    if args.jobs == 1:
        try:
            return [one(job) for job in todo]
        finally:
            bar.close()
    pool = ThreadPoolExecutor(max_workers=args.jobs)
    try:
        return list(pool.map(one, todo))
    finally:  # on SIGTERM / Ctrl-C drop the queued pairs instead of fusing them all first
        pool.shutdown(cancel_futures=True)
        bar.close()


def run_images(args: argparse.Namespace) -> int:
    from crossfuse.shard import Shard

    shard = Shard.from_env()  # under torchrun: this rank's share of the pairs (docs/sharding.md)
    summary = Summary()
    jobs = _plan(args, summary)
    _check_depth(args, [j[3] for j in jobs])
    todo = []
    for job in shard.take(jobs):
        if job[3].exists() and not args.overwrite:
            summary.skipped.append(job[0])
        else:
            todo.append(job)
    rows = {name: {"status": "failed", "error": why} for name, why in summary.failed}  # pairing problems
    rows |= {name: {"status": "skipped", "error": "output exists"} for name in summary.skipped}
    for name, err, cols in _fuse_all(args, todo) if todo else []:
        if err is None:
            summary.written.append(name)
        else:
            summary.failed.append((name, err))
        rows[name] = {"status": "failed" if err else "written", "error": err or "", **cols}
    if args.log:
        write_log(log_path(args, shard), rows, overwrite=args.overwrite)
    summary = shard.merged(summary)  # rank 0 reports for all ranks
    if summary is None:
        return 0
    summary.report()
    return 1 if summary.failed else 0


def log_path(args: argparse.Namespace, shard) -> Path:
    """``--log``, with ``.rankN`` before the suffix under torchrun (each rank logs its own share)."""
    p = Path(args.log)
    return p.with_name(f"{p.stem}.rank{shard.rank}{p.suffix}") if shard.active else p


def write_log(path: Path, rows: dict[str, dict[str, str]], overwrite: bool) -> None:
    """``--log``: one CSV row per pair (sorted by name), the union of the columns, written atomically."""
    from crossfuse.io import csv_text, write_bytes_atomic

    table = [{"pair": name, "status": "", "error": "", **rows[name]} for name in sorted(rows)]
    write_bytes_atomic(path, csv_text(table), overwrite=overwrite)


def run_video(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from crossfuse.io import ensure_folder
    from crossfuse.video import fuse_video, is_video, video_info

    out = Path(args.out)
    if not is_video(out):
        raise ValueError(f"--out {out}: video input needs a video output file (.mp4, .avi, ...)")
    if out.is_dir():
        raise OutputError(f"--out {out}: is a folder, not a video file")
    if out.exists() and not args.overwrite:
        print(f"fused: 0 written, 1 skipped ({out} exists; --overwrite replaces), 0 failed")
        return 0
    if args.bit_depth == 16:
        raise ValueError("--bit-depth 16 is not available for video (8-bit codecs)")
    ensure_folder(out.parent)
    fuser = make_fuser(args)
    check_tile(args, fuser.align)
    total = video_info(args.vi)[0] or None
    with tqdm(total=total, unit="frame", desc="fuse", disable=args.quiet, file=sys.stderr) as bar:
        res = fuse_video(fuser, args.ir, args.vi, out, gray=args.gray, overwrite=args.overwrite,
                         progress=bar.update)
    print(f"fused: {res.path} ({res.frames} frames, {res.fps:g} fps, {res.size[0]}x{res.size[1]})"
          + (f"; note: {res.note}" if res.note else ""))
    return 0


def check_tile(args: argparse.Namespace, align: int) -> None:
    """``--tile`` / ``--overlap`` that tiled inference can use: ``--tile`` above ``--overlap`` + the tile alignment
    (32, or the model's padding multiple when larger); called with 32 before the model loads and with the
    model's own alignment once it has."""
    from crossfuse.infer import DEFAULT_OVERLAP

    overlap = DEFAULT_OVERLAP if args.overlap is None else args.overlap
    if overlap < 0:
        raise ValueError(f"--overlap must be >= 0, got {overlap}")
    if args.tile is not None and args.tile <= overlap + align:
        raise ValueError(f"--tile {args.tile} must be larger than --overlap ({overlap}) + {align} = "
                         f"{overlap + align}: use a larger --tile or a smaller --overlap")


def check_options(args: argparse.Namespace) -> None:
    """Options checked before any file is read or the model is loaded; messages use the CLI's words."""
    from crossfuse.infer import TILE_ALIGN, parse_memory
    from crossfuse.pixels import parse_ir_window

    if args.jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {args.jobs}")
    if args.threads < 0:
        raise ValueError(f"--threads must be >= 0, got {args.threads}")
    try:
        parse_memory(args.max_memory)
    except ValueError:
        raise ValueError(f"--max-memory {args.max_memory}: not a positive size; use e.g. 1.5GB or 800MB") from None
    try:
        parse_ir_window(args.ir_window)
    except ValueError as exc:
        raise ValueError(f"--ir-window {args.ir_window}: {exc}") from None
    check_tile(args, TILE_ALIGN)
    if args.noise_level is not None:
        if not args.noise_level > 0:
            raise ValueError(f"--noise-level must be > 0 grey levels, got {args.noise_level}")
        if args.denoise is False:
            raise ValueError("--noise-level denoises every frame; it cannot be combined with --no-denoise")
    if getattr(args, "spread_gate", None) and args.denoise is False:
        raise ValueError("--spread-gate belongs to the denoising step; it cannot be combined with --no-denoise")
    if args.log:
        from crossfuse.io import check_overwrite
        from crossfuse.shard import Shard

        check_overwrite(log_path(args, Shard.from_env()), args.overwrite)  # before any pair is fused


def run(args: argparse.Namespace) -> int:
    from crossfuse.io import sigterm_raises
    from crossfuse.video import is_video

    check_options(args)
    with sigterm_raises():  # SIGTERM unwinds like Ctrl-C: temporary outputs are removed
        if is_video(args.ir) or is_video(args.vi):
            if not (is_video(args.ir) and is_video(args.vi)):
                raise ValueError(f"--ir {args.ir} and --vi {args.vi}: both must be videos, or neither")
            if args.log:
                raise ValueError("--log is for image pairs and folders (a video follows its first frame's steps)")
            return run_video(args)
        return run_images(args)
