"""Helpers for the interop tests. Real programs from Debian (installed by .ci/run): in
CI a missing program fails the run; on a developer machine without them the tests are
skipped with the reason. (Not a conftest: several test folders have one, and a plain
``import conftest`` finds whichever was loaded first.)"""

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
