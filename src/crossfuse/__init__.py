"""crossfuse: robust infrared-visible image fusion.

Pipeline, one module each: ``io`` -> ``align`` -> ``augment`` -> ``nets`` -> ``losses`` -> ``train`` -> ``infer``
-> ``metrics`` -> ``bench`` -> ``cli``. The names below are the public API; importing this package does not import
torch: each name is imported from its module when first used (``crossfuse.fuse`` *is* :func:`crossfuse.infer.fuse`,
so ``help()`` and ``inspect.signature`` show its real parameters).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> the module that defines it
_API = {"evaluate": "crossfuse.metrics", "fuse": "crossfuse.infer", "Fuser": "crossfuse.infer",
        "load_model": "crossfuse.models", "resolve_model": "crossfuse.models"}
_ATTR = {"resolve_model": "resolve"}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        value = getattr(importlib.import_module(_API[name]), _ATTR.get(name, name))
        globals()[name] = value  # cached: later lookups do not come back here
        return value
    raise AttributeError(f"module 'crossfuse' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
