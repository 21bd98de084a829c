"""Shared test fixtures: the real datasets in ../shared/data.

Tests that need real data use the ``shared_data`` fixture (or ``dataset(name)``): when the data is missing they
*fail* with a clear message under ``CI=true`` and are skipped otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CROSSFUSE_DATA", REPO.parent / "shared" / "data"))


def require_data(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        msg = f"real data missing: {path} (set CROSSFUSE_DATA or place ../shared/data beside the repository)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture
def shared_data() -> Path:
    return require_data()
