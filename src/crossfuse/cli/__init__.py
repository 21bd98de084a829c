"""The ``crossfuse`` command line: a thin shell over the Python API (also ``python -m crossfuse.cli``).

Each sub-command lives in its own module of this package and exposes ``register(subparsers)``, which adds its
parser and sets ``func`` (called with the parsed arguments, returns the exit status). Heavy imports (torch) happen
inside ``func``, so ``crossfuse eval`` and ``crossfuse --help`` start quickly. Errors crossfuse raises on purpose
(:class:`crossfuse.errors.CrossfuseError`) and file-system errors are printed as one line, ``crossfuse CMD: error:
MESSAGE``, with exit status 1; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from crossfuse.errors import CrossfuseError

# Explicit list of sub-command modules (no folder scanning).
COMMANDS = ("eval", "align", "train", "fuse", "export", "demo", "bench", "data", "app", "list", "corrupt",
            "check_align", "register")


def build_parser() -> argparse.ArgumentParser:
    from crossfuse import __version__

    parser = argparse.ArgumentParser(prog="crossfuse", description="Robust infrared-visible image fusion.")
    parser.add_argument("--version", action="version", version=f"crossfuse {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:  # every one ships with the package: a missing module is a broken install, not a skip
        importlib.import_module(f"crossfuse.cli.{name}_cmd").register(sub)
    return parser


def error_message(exc: BaseException) -> str:
    """The one line shown for an error: the message of our own errors; a bare ``KeyError('x')`` from a library
    would print as one word, so it says what it is."""
    if isinstance(exc, KeyError) and not isinstance(exc, CrossfuseError):
        key = exc.args[0] if exc.args else ""
        return key if isinstance(key, str) and " " in key else f"missing key {key!r} (KeyError)"
    return str(exc)


def parser_for(argv: list[str]) -> tuple[argparse.ArgumentParser, list[str]]:
    """The parser that reads ``argv`` and the arguments left for it (``bench robustness`` has its own parser)."""
    if argv[:2] == ["bench", "robustness"]:  # a second benchmark under `bench`, with its own parser
        from crossfuse.cli.robust_cmd import build_parser as robustness_parser

        return robustness_parser(), argv[2:]
    return build_parser(), argv


def main(argv: list[str] | None = None) -> int:
    parser, argv = parser_for(sys.argv[1:] if argv is None else list(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (CrossfuseError, ValueError, KeyError, OSError) as exc:
        # Our own errors carry a message naming the file and the problem; show it without a traceback.
        print(f"crossfuse {getattr(args, 'command', None) or 'bench'}: error: {error_message(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
