"""Real programs from Debian (installed by .ci/run). In CI a missing program fails the
run; on a developer machine without them the tests are skipped with the reason."""

from __future__ import annotations

import os
import shutil

import pytest


def require(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{program} is not installed (.ci/run installs it)")
        pytest.skip(f"{program} is not installed (apt-get install it, or run .ci/run)")
    return path
