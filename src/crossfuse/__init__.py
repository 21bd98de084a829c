"""crossfuse: robust infrared-visible image fusion.

Pipeline, one module each: ``io`` -> ``align`` -> ``augment`` -> ``nets`` -> ``losses`` -> ``train`` -> ``infer``
-> ``metrics`` -> ``bench`` -> ``cli``. The names below are the public API; importing this package does not import
torch (the functions import what they need when called).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "evaluate", "fuse", "Fuser", "load_model"]


def evaluate(*args, **kwargs):
    """See :func:`crossfuse.metrics.evaluate`."""
    from crossfuse.metrics import evaluate as _evaluate

    return _evaluate(*args, **kwargs)


def fuse(*args, **kwargs):
    """See :func:`crossfuse.infer.fuse`."""
    from crossfuse.infer import fuse as _fuse

    return _fuse(*args, **kwargs)


def load_model(*args, **kwargs):
    """See :func:`crossfuse.models.load_model`."""
    from crossfuse.models import load_model as _load_model

    return _load_model(*args, **kwargs)


def __getattr__(name: str):
    if name == "Fuser":
        from crossfuse.infer import Fuser

        return Fuser
    raise AttributeError(f"module 'crossfuse' has no attribute {name!r}")
