"""``python -m crossfuse.cli ...``: the same as ``crossfuse ...`` (what ``torchrun -m crossfuse.cli train`` runs)."""

from __future__ import annotations

import sys

from crossfuse.cli import main

sys.exit(main())
