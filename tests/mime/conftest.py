"""Fixtures for the MIME tests (helpers live in mime_helpers.py)."""

from __future__ import annotations

import pytest
from mime_helpers import load_corpus


@pytest.fixture(scope="session")
def corpus() -> dict[str, bytes]:
    messages = load_corpus()
    if not messages:
        pytest.skip("MIME corpus not available")
    return messages
