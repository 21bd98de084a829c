"""The ``crossfuse`` command line: a thin shell over the Python API.

Each sub-command lives in its own module of this package and exposes ``register(subparsers)``, which adds its
parser and sets ``func`` (called with the parsed arguments, returns the exit status). Heavy imports (torch) happen
inside ``func``, so ``crossfuse eval`` and ``crossfuse --help`` start quickly.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Explicit list of sub-command modules (no folder scanning).
COMMANDS = ("eval", "align", "train", "fuse", "export", "demo", "bench", "data", "app")


def build_parser() -> argparse.ArgumentParser:
    from crossfuse import __version__

    parser = argparse.ArgumentParser(prog="crossfuse", description="Robust infrared-visible image fusion.")
    parser.add_argument("--version", action="version", version=f"crossfuse {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"crossfuse.cli.{name}_cmd")
        except ModuleNotFoundError as exc:
            if exc.name == f"crossfuse.cli.{name}_cmd":
                continue  # sub-command not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, FileExistsError, KeyError, OSError) as exc:
        # Our own errors carry a message naming the file and the problem; show it without a traceback.
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"crossfuse {args.command}: error: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
