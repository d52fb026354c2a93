"""Shared test fixtures.

Tests that read ../shared/data (real public traces and measurements) skip with a clear reason
where it is absent (a user's clone); CI has it beside the checkout.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests run the same examples on every run (a red CI must be reproducible, and timing on a
# loaded 2-core CI machine must not fail them); `HYPOTHESIS_PROFILE=explore` searches afresh.
settings.register_profile("repeatable", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", deadline=None, max_examples=500, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the shared data folder at {SHARED_DATA} (present in CI, not in a user's clone)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def bundled_paths() -> dict[str, Path]:
    return {"inventory": REPO / "inventories", "models": REPO / "models", "workloads": REPO / "workloads"}
