"""The project's error classes: one base the CLI catches and prints as one line, without a traceback.

Every error raised on purpose by crossfuse (bad input file, bad config, unknown model, unusable checkpoint, ...)
derives from :class:`CrossfuseError`; its message names the file or option and the problem. The subclasses keep
their historical built-in bases (``ValueError`` / ``KeyError``) so existing ``except`` clauses still work.
"""

from __future__ import annotations


class CrossfuseError(Exception):
    """Base of every error crossfuse raises on purpose; ``str(exc)`` is a one-line message for the user."""

    def __str__(self) -> str:  # KeyError would repr() its message; keep it readable for every subclass
        return str(self.args[0]) if self.args else self.__class__.__name__


class InputError(CrossfuseError, ValueError):
    """An input file or array that cannot be used (unreadable, corrupt, wrong shape or dtype)."""


class UnknownNameError(CrossfuseError, KeyError):
    """A name not in a registry; the message lists the valid names."""


class CheckpointError(CrossfuseError, ValueError):
    """A file that is not a crossfuse weights file or training checkpoint, or one the safe loader refuses."""


__all__ = ["CrossfuseError", "InputError", "UnknownNameError", "CheckpointError"]
