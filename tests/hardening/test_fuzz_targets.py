"""Every fuzz target in ``fuzz/`` replays its seed corpus and runs briefly here; the long
runs are a documented command (SECURITY.md, ``python -m fuzz --all --seconds 600``).

``POSTROOM_FUZZ_SECONDS`` sets the time per target (default 1 s)."""

from __future__ import annotations

import importlib
import os

import pytest

from fuzz import TARGETS
from fuzz.engine import Target, replay, run_hypothesis

SECONDS = float(os.environ.get("POSTROOM_FUZZ_SECONDS", "1.0"))


def target(name: str) -> Target:
    module = importlib.import_module(f"fuzz.{name}")
    t = module.TARGET
    assert isinstance(t, Target) and t.name == name
    return t


@pytest.mark.parametrize("name", TARGETS)
def test_seed_corpus_replays_cleanly(name: str) -> None:
    t = target(name)
    assert t.corpus_dir.is_dir() and any(t.corpus_dir.iterdir()), "no seed corpus"
    assert replay(t) >= 1


@pytest.mark.parametrize("name", TARGETS)
def test_short_fuzz_run_finds_no_crash(name: str) -> None:
    result = run_hypothesis(target(name), SECONDS, seed=0)
    assert result.crash is None, f"{result.line()}\n{result.error}"
    assert result.executions >= 10, result.line()


def test_every_target_module_is_listed() -> None:
    from pathlib import Path

    import fuzz

    here = Path(fuzz.__file__).parent
    modules = {p.stem for p in here.glob("*.py") if not p.stem.startswith("_")}
    assert modules - {"engine"} == set(TARGETS)
