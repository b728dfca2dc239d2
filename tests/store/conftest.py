"""Every backend runs the same contract suite (shared/STYLE.md habit 7)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from postroom.store.sqlite import SqliteStore

BACKENDS = ["sqlite"]


async def open_backend(name: str, tmp_path: Path, **kw: Any) -> SqliteStore:
    if name == "sqlite":
        return await SqliteStore.open(tmp_path / "data", **kw)
    raise ValueError(name)


@pytest.fixture(params=BACKENDS)
def run_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., Any]:
    """``run_store(coro_fn)``: opens a fresh store, runs ``await coro_fn(store)``, closes."""

    def runner(fn: Callable[[SqliteStore], Coroutine[Any, Any, Any]], **kw: Any) -> Any:
        async def main() -> Any:
            store = await open_backend(request.param, tmp_path, **kw)
            try:
                return await fn(store)
            finally:
                await store.close()

        return asyncio.run(main())

    return runner
