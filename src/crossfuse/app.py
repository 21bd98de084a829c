"""``crossfuse app``: a local web page (Gradio, the optional ``crossfuse[app]`` extra) to fuse one pair and look at it.

Upload a pair (or pick one from ``--pairs DIR``). Fuse tab: choose the model and the metric profile, see IR | VIS |
fused, a before/after slider (visible vs fused), the metric table, and download the fused PNG. Check alignment tab:
``crossfuse check-align`` on the pair (shift, rotation, scale, confidence, IR-over-visible overlays before and after
warping). Report tab: open a robustness report (an HTML file written by ``crossfuse bench robustness``).

Fusion goes through :class:`crossfuse.infer.Fuser` (one loaded model per name, kept), metrics through
:func:`crossfuse.metrics.compute_metrics`, files through :mod:`crossfuse.io`. The page binds 127.0.0.1 unless told
otherwise, refuses uploads over ``max_upload_mb`` and images over ``max_megapixels``, and answers every bad upload
(not an image, sizes that differ, too large) with a one-line message in the page, never a traceback. The logic is
in plain functions (:func:`fuse_pair`, :func:`check_alignment`, :func:`load_report`), tested without a browser.
"""

from __future__ import annotations

import html
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from crossfuse import io as cio
from crossfuse.errors import CrossfuseError, InputError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
DEFAULT_MAX_UPLOAD_MB = 25
DEFAULT_MAX_MEGAPIXELS = 25.0
MAX_REPORT_MB = 50


@dataclass(frozen=True)
class Limits:
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS


@dataclass
class FuseResult:
    ir: np.ndarray  # 8-bit copies for the browser (crossfuse.io.to_uint8)
    vi: np.ndarray
    fused: np.ndarray
    metrics: dict[str, float]
    path: Path  # the fused image as written (for download)
    message: str


def pixel_size(path: Path) -> tuple[int, int] | None:
    """Width and height from the file header without decoding the pixels (None when the header is not readable)."""
    from PIL import Image  # installed with gradio; reads only the header here

    try:
        with Image.open(path) as im:
            return im.size
    except Image.DecompressionBombError:  # a header claiming hundreds of megapixels
        return (1 << 31, 1)
    except Exception:  # noqa: BLE001 -- unreadable headers are reported by the full decode that follows
        return None


def load_upload(path: str | os.PathLike | None, role: str, limits: Limits) -> np.ndarray:
    """Read one uploaded image, or raise :class:`InputError` with a one-line message naming the role and file."""
    if not path:
        raise InputError(f"no {role} image: upload one (or pick a pair)")
    p = Path(path)
    size_mb = p.stat().st_size / 1e6 if p.is_file() else 0.0
    if size_mb > limits.max_upload_mb:
        raise InputError(f"{role} image {p.name}: {size_mb:.1f} MB is over the app's {limits.max_upload_mb:g} MB limit")
    wh = pixel_size(p)
    if wh is not None and wh[0] * wh[1] > limits.max_megapixels * 1e6:
        size = f"{wh[0]}x{wh[1]}" if wh[1] > 1 else "its size"
        raise InputError(f"{role} image {p.name}: {size} is over the app's {limits.max_megapixels:g} "
                         "megapixel limit (use `crossfuse fuse` for large frames)")
    try:
        return cio.read_image(p)
    except cio.ImageError as exc:
        raise InputError(f"{role} image {p.name}: {str(exc).split(': ', 1)[-1]}") from None


class FuserCache:
    """One loaded :class:`~crossfuse.infer.Fuser` per model name, shared by the page's requests."""

    def __init__(self) -> None:
        self._fusers: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, model: str) -> Any:
        with self._lock:
            if model not in self._fusers:
                from crossfuse.infer import Fuser

                self._fusers[model] = Fuser(model, device="cpu")
            return self._fusers[model]


def load_pair(ir_path: str | None, vi_path: str | None, limits: Limits) -> tuple[np.ndarray, np.ndarray]:
    """Both uploads, which must have the same height and width (:class:`InputError` otherwise)."""
    ir = load_upload(ir_path, "infrared", limits)
    vi = load_upload(vi_path, "visible", limits)
    if ir.shape[:2] != vi.shape[:2]:
        raise InputError(f"sizes differ: infrared {ir.shape[1]}x{ir.shape[0]}, visible {vi.shape[1]}x{vi.shape[0]} "
                         "(W x H); the pair must be registered (same size)")
    return ir, vi


def fuse_pair(ir_path: str | None, vi_path: str | None, model: str, profile: str, fusers: FuserCache,
              out_dir: Path, limits: Limits = Limits()) -> FuseResult:
    """Fuse one uploaded pair and score it; raises :class:`InputError` for anything wrong with the uploads."""
    from crossfuse.metrics import compute_metrics

    ir, vi = load_pair(ir_path, vi_path, limits)
    fuser = fusers.get(model)
    fused = fuser.fuse(ir, vi)
    steps = fuser.last_report.summary()  # this request's pair: the report is kept per thread
    metrics = compute_metrics(ir, vi, fused, profile=profile)
    stem = Path(str(vi_path)).stem
    path = cio.write_image(Path(tempfile.mkdtemp(dir=out_dir)) / f"{stem}_fused.png", fused)
    msg = f"fused {stem} ({vi.shape[1]}x{vi.shape[0]}) with {model}; metrics: profile {profile}"
    msg += f"; input steps: {steps}" if steps else ""
    return FuseResult(cio.to_uint8(ir), cio.to_uint8(vi), cio.to_uint8(fused), metrics, path, msg)


@dataclass
class AlignCheck:
    rows: list[list[Any]]  # [quantity, value]
    before: np.ndarray  # IR in red over visible in cyan, as uploaded
    after: np.ndarray  # the same with IR warped onto visible by the estimate
    message: str


def overlay(ir: np.ndarray, vi: np.ndarray) -> np.ndarray:
    """IR (8-bit luma) in the red channel, visible in green and blue: misregistration shows as coloured fringes."""
    a, b = cio.luma_u8(ir), cio.luma_u8(vi)
    return np.dstack([a, b, b])


def check_alignment(ir_path: str | None, vi_path: str | None, threshold: float, limits: Limits = Limits()
                    ) -> AlignCheck:
    """``crossfuse check-align`` on one uploaded pair (:func:`crossfuse.registration.estimate`)."""
    from crossfuse.registration import estimate, register

    ir, vi = load_pair(ir_path, vi_path, limits)
    a = estimate(ir, vi)
    rows = [["dx (px)", a.dx], ["dy (px)", a.dy], ["rotation (deg)", a.rotation_deg], ["scale", a.scale],
            ["confidence (0..1)", a.confidence], ["largest corner displacement (px)", a.displacement]]
    rows = [[k, round(float(v), 4)] for k, v in rows]
    verdict = "aligned" if a.aligned(threshold) else "MISALIGNED"
    msg = (f"{verdict}: largest corner displacement {a.displacement:.2f} px (threshold {threshold:g} px), "
           f"confidence {a.confidence:.2f}" + (" (below ~0.05: unreliable, too little shared structure)"
                                               if a.confidence < 0.05 else ""))
    ir8 = cio.luma_u8(ir)
    return AlignCheck(rows, overlay(ir8, vi), overlay(register(ir8, a.matrix), vi), msg)


def load_report(path: str | os.PathLike | None) -> str:
    """An HTML report shown inside the page (an iframe with the file as ``srcdoc``); InputError when unusable."""
    if not path or not str(path).strip():
        raise InputError("no report: give the path of a report .html file")
    p = Path(str(path).strip()).expanduser()
    if p.suffix.lower() not in (".html", ".htm"):
        raise InputError(f"{p}: not an .html file")
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    if p.stat().st_size > MAX_REPORT_MB * 1e6:
        raise InputError(f"{p}: larger than {MAX_REPORT_MB} MB")
    text = p.read_text(encoding="utf-8", errors="replace")
    return (f'<iframe title="report" style="width:100%;height:80vh;border:1px solid #ccc" '
            f'sandbox="allow-scripts" srcdoc="{html.escape(text, quote=True)}"></iframe>')


def pair_choices(folder: str | os.PathLike | None) -> dict[str, tuple[Path, Path]]:
    """Stem -> (ir, vi) paths of a paired folder (``ir/`` + ``vi/``), for the page's pair picker."""
    if folder is None:
        return {}
    matched = cio.match_folders({"ir": Path(folder) / "ir", "vi": Path(folder) / "vi"})
    return {stem: (files["ir"], files["vi"]) for stem, files in matched.items}


def error_text(exc: BaseException) -> str:
    """The one line a page shows for a failed request (no traceback): our errors as they are, others with their type."""
    if isinstance(exc, (CrossfuseError, ValueError, OSError, KeyError)):
        return f"**error:** {exc.args[0] if isinstance(exc, KeyError) and exc.args else exc}"
    return f"**error:** unexpected {type(exc).__name__}: {exc}"


def _fuse_tab(gr: Any, ins: list, fusers: FuserCache, out: Path, limits: Limits) -> None:
    from crossfuse.metrics import list_profiles
    from crossfuse.models import DEFAULT_MODEL, list_models

    def on_fuse(ir_path, vi_path, model, profile):
        try:
            r = fuse_pair(ir_path, vi_path, model, profile, fusers, out, limits)
        except Exception as exc:  # noqa: BLE001 -- the page boundary: one line for the user, never a traceback
            return None, None, None, None, None, None, error_text(exc)
        table = [[k, round(v, 4)] for k, v in r.metrics.items()]
        return r.ir, r.vi, r.fused, (r.vi, r.fused), table, str(r.path), r.message

    with gr.Row():
        model = gr.Dropdown(list_models(), value=DEFAULT_MODEL, label="model")
        profile = gr.Dropdown(list_profiles(), value="cddfuse", label="metric profile")
    run = gr.Button("Fuse", variant="primary", elem_id="fuse_btn")
    status = gr.Markdown(elem_id="status")
    with gr.Row():
        ir_out = gr.Image(label="IR", interactive=False, format="png")
        vi_out = gr.Image(label="VIS", interactive=False, format="png")
        fused_out = gr.Image(label="fused", interactive=False, elem_id="fused", format="png")
    slider = gr.ImageSlider(label="before (visible) / after (fused)", interactive=False, format="png")
    table = gr.Dataframe(headers=["metric", "value"], label="metrics", interactive=False)
    download = gr.File(label="download the fused image", interactive=False)
    run.click(on_fuse, [*ins, model, profile], [ir_out, vi_out, fused_out, slider, table, download, status],
              api_name="fuse")


def _align_tab(gr: Any, ins: list, limits: Limits) -> None:
    from crossfuse.registration import DEFAULT_THRESHOLD

    def on_check(ir_path, vi_path, threshold):
        try:
            r = check_alignment(ir_path, vi_path, float(threshold), limits)
        except Exception as exc:  # noqa: BLE001 -- the page boundary
            return None, None, error_text(exc)
        return r.rows, (r.before, r.after), r.message

    threshold = gr.Number(value=DEFAULT_THRESHOLD, label="aligned if the largest corner displacement is within (px)")
    run = gr.Button("Check alignment", variant="primary", elem_id="align_btn")
    status = gr.Markdown(elem_id="align_status")
    table = gr.Dataframe(headers=["quantity", "value"], label="estimated misregistration (IR vs visible)",
                         interactive=False)
    slider = gr.ImageSlider(label="IR (red) over visible (cyan): as uploaded / IR warped by the estimate",
                            interactive=False, format="png")
    run.click(on_check, [*ins, threshold], [table, slider, status], api_name="check_align")


def _report_tab(gr: Any, report: str | os.PathLike | None) -> None:
    def on_report(path):
        try:
            return load_report(path), f"opened {path}"
        except Exception as exc:  # noqa: BLE001 -- the page boundary
            return "", error_text(exc)

    path = gr.Textbox(value=str(report) if report else "", label="report .html file (crossfuse bench robustness, "
                      "crossfuse eval --report)")
    show = gr.Button("Open")
    status = gr.Markdown()
    frame = gr.HTML()
    show.click(on_report, path, [frame, status], api_name="report")


def build_app(pairs: str | os.PathLike | None = None, report: str | os.PathLike | None = None,
              limits: Limits = Limits(), out_dir: str | os.PathLike | None = None) -> Any:
    """The Gradio Blocks page (not launched). ``pairs``: a folder with ir/ + vi/ offered in a picker."""
    import gradio as gr

    choices = pair_choices(pairs)
    out = Path(out_dir or tempfile.mkdtemp(prefix="crossfuse-app-"))

    def on_pick(stem):
        ir, vi = choices.get(stem, (None, None))
        return (str(ir) if ir else None), (str(vi) if vi else None)

    with gr.Blocks(title="crossfuse", analytics_enabled=False) as page:
        gr.Markdown("# crossfuse: infrared-visible fusion")
        pick = gr.Dropdown(sorted(choices), label="pick a pair", visible=bool(choices), value=None)
        with gr.Row():
            ir_in = gr.File(label="infrared image", type="filepath", elem_id="ir_in")
            vi_in = gr.File(label="visible image", type="filepath", elem_id="vi_in")
        pick.change(on_pick, pick, [ir_in, vi_in])
        with gr.Tab("Fuse"):
            _fuse_tab(gr, [ir_in, vi_in], FuserCache(), out, limits)
        with gr.Tab("Check alignment"):
            _align_tab(gr, [ir_in, vi_in], limits)
        with gr.Tab("Robustness report"):
            _report_tab(gr, report)
    return page


def serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, block: bool = True, **kwargs: Any) -> Any:
    """Build and launch the page; ``block=False`` returns at once (tests). Returns the Blocks object."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # a local tool: no calls home
    import gradio as gr

    limits = kwargs.get("limits", Limits())
    pairs = kwargs.get("pairs")  # the picker hands out files of this folder (Gradio serves only allowed paths)
    allowed = [str(Path(pairs, m).resolve()) for m in ("ir", "vi")] if pairs else None
    page = build_app(**kwargs)
    page.queue(default_concurrency_limit=1)  # one fusion at a time: the model is shared
    # system fonts: the default theme would fetch web fonts, and the page must work offline
    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                              font_mono=["ui-monospace", "monospace"])
    page.launch(server_name=host, server_port=port, prevent_thread_lock=not block, share=False, quiet=not block,
                max_file_size=f"{limits.max_upload_mb:g}mb", show_error=False, footer_links=[], ssr_mode=False,
                theme=theme, allowed_paths=allowed)
    return page
