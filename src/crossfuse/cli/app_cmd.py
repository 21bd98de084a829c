"""``crossfuse app``: serve the local web page (``docs/app.md``); needs the ``crossfuse[app]`` extra (Gradio)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    from crossfuse.app import DEFAULT_HOST, DEFAULT_MAX_MEGAPIXELS, DEFAULT_MAX_UPLOAD_MB, DEFAULT_PORT

    p = subparsers.add_parser("app", help="local web page: fuse a pair, compare, score, open reports",
                              description="Serve the crossfuse web page (Gradio) on HOST:PORT. It binds 127.0.0.1 by "
                                          "default; pass --host 0.0.0.0 only on a trusted network.")
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST})")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--pairs", type=Path, default=None, help="a folder with ir/ + vi/ offered in the pair picker")
    p.add_argument("--report", type=Path, default=None, help="robustness report .html preloaded in its tab")
    p.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_MB,
                   help=f"largest accepted upload (default {DEFAULT_MAX_UPLOAD_MB} MB)")
    p.add_argument("--max-megapixels", type=float, default=DEFAULT_MAX_MEGAPIXELS,
                   help=f"largest accepted image (default {DEFAULT_MAX_MEGAPIXELS:g} Mpx)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import gradio  # noqa: F401
    except ModuleNotFoundError:
        raise OSError('the app needs Gradio: pip install "crossfuse[app]"') from None
    from crossfuse.app import Limits, serve

    if args.pairs is not None and not args.pairs.is_dir():
        raise FileNotFoundError(f"{args.pairs}: not a folder")
    print(f"crossfuse app: serving on http://{args.host}:{args.port} (Ctrl+C to stop)")
    serve(args.host, args.port, pairs=args.pairs, report=args.report,
          limits=Limits(args.max_upload_mb, args.max_megapixels))
    return 0
