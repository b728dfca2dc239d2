"""The runner every fuzz target shares: seed corpus, input generation, crash files.

Theory of operation: a target is a ``Target`` - a name, a function ``check(data:
bytes)`` that returns normally for any input and raises only when it found a bug (an
unexpected exception or a broken invariant), a dictionary of tokens of its grammar,
and a seed corpus directory (``fuzz/corpus/<name>/``, one input per file). Two
engines drive a target:

* **hypothesis** (always available; what the test suite uses): inputs are seeds with
  random edits (insert a dictionary token, repeat one hundreds of times to build deep
  nesting or long lines, delete, duplicate, flip bytes, splice two seeds), soups of
  dictionary tokens, and raw bytes. It runs in batches until ``seconds`` have passed;
  a failing input is shrunk by hypothesis and written to ``fuzz/crashes/<name>/``.
* **atheris** (``--engine atheris``, coverage-guided libFuzzer; ``pip install
  atheris``): instruments the loaded code, uses the seed corpus (read only) plus a
  work corpus in ``fuzz/work/<name>/`` and the dictionary; crashes land in
  ``fuzz/crashes/<name>/``.

Every target module ends with ``main(TARGET)`` so that ``python -m fuzz.<name>
--seconds 600`` runs it; ``python -m fuzz --list`` / ``python -m fuzz --all`` run them
all. A crash becomes a named regression test in ``tests/hardening/``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

ROOT = Path(__file__).resolve().parent
CORPUS = ROOT / "corpus"
CRASHES = ROOT / "crashes"
WORK = ROOT / "work"


@dataclass(frozen=True)
class Target:
    """One fuzz target. ``check`` raises only for a bug; ``max_size`` bounds the
    generated inputs (the engines keep to it, the check need not)."""

    name: str
    check: Callable[[bytes], None]
    dictionary: tuple[bytes, ...] = ()
    max_size: int = 4096
    extra_seeds: tuple[bytes, ...] = field(default=(), repr=False)
    # Bugs already reported but not fixed yet, as (exception type, name of a function
    # in its traceback): tolerated so the run can look for new ones. Each has a strict
    # xfail regression test in tests/hardening/, which fails once the bug is fixed -
    # then remove the entry here.
    known: tuple[tuple[type[BaseException], str], ...] = ()

    def run_one(self, data: bytes) -> bool:
        """``check(data)``; False when it hit a known bug, raises for a new one."""
        try:
            self.check(data)
        except Exception as e:
            if not self.is_known(e):
                raise
            return False
        return True

    def is_known(self, exc: BaseException) -> bool:
        names = {f.name for f in traceback.extract_tb(exc.__traceback__)}
        return any(isinstance(exc, t) and fn in names for t, fn in self.known)

    @property
    def corpus_dir(self) -> Path:
        return CORPUS / self.name

    def seeds(self) -> list[bytes]:
        """The seed corpus (files sorted by name), plus ``extra_seeds``; never empty."""
        out = [p.read_bytes() for p in sorted(self.corpus_dir.glob("*")) if p.is_file()]
        out += list(self.extra_seeds)
        return out or [b""]


@dataclass
class RunResult:
    target: str
    engine: str
    executions: int
    seconds: float
    crash: bytes | None = None
    crash_file: Path | None = None
    error: str = ""
    known: int = 0  # inputs that hit an already reported bug

    def line(self) -> str:
        rate = self.executions / self.seconds if self.seconds else 0.0
        status = "ok" if self.crash is None and not self.error else f"CRASH {self.crash_file}"
        known = f", {self.known} hit known bugs" if self.known else ""
        return (f"{self.target}: {self.engine} {self.executions} executions in "
                f"{self.seconds:.1f} s ({rate:.0f}/s{known}) {status}")


# --- input generation (hypothesis) ----------------------------------------------------


def _mutate(seed: bytes, edits: Sequence[tuple[int, int, int, bytes]], other: bytes) -> bytes:
    """Apply ``edits`` (kind, position, amount, token) to ``seed``."""
    data = bytearray(seed)
    for kind, pos, amount, token in edits:
        at = pos % (len(data) + 1)
        if kind == 0:  # insert a token
            data[at:at] = token
        elif kind == 1:  # repeat a token (nesting, long lines, many elements)
            data[at:at] = token * (1 + amount % 3000)
        elif kind == 2:  # delete a span
            del data[at : at + 1 + amount % 16]
        elif kind == 3 and data:  # replace one byte
            data[at % len(data)] = amount % 256
        elif kind == 4:  # duplicate a span
            data[at:at] = data[at : at + 1 + amount % 64]
        elif kind == 5:  # splice another seed
            cut = amount % (len(other) + 1)
            data[at:] = other[cut:]
        elif kind == 6:  # truncate
            del data[at:]
    return bytes(data)


def strategy(target: Target) -> SearchStrategy[bytes]:
    """The hypothesis strategy for ``target``'s inputs."""
    from hypothesis import strategies as st

    seeds = target.seeds()
    lines = sorted({ln for s in seeds for ln in s.split(b"\n") if 0 < len(ln) < 200})
    tokens = sorted(set(target.dictionary) | set(lines[:400])) or [b" "]
    token = st.one_of(st.sampled_from(tokens), st.binary(min_size=1, max_size=6))
    edit = st.tuples(st.integers(0, 6), st.integers(0, 1 << 20), st.integers(0, 1 << 16), token)
    mutated = st.builds(_mutate, st.sampled_from(seeds), st.lists(edit, max_size=8),
                        st.sampled_from(seeds))
    soup = st.lists(token, max_size=60).map(b"".join)
    raw = st.binary(max_size=min(target.max_size, 512))
    return st.one_of(mutated, mutated, soup, raw).map(lambda b: b[: target.max_size])


def run_hypothesis(target: Target, seconds: float, *, seed: int | None = None) -> RunResult:
    """Generate inputs for ``seconds`` (at least one batch); stop at the first crash,
    shrunk by hypothesis."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed

    inputs = strategy(target)
    count = 0
    failing: list[bytes] = []
    result = RunResult(target.name, "hypothesis", 0, 0.0)

    def check(data: bytes) -> None:
        nonlocal count
        count += 1
        try:
            if not target.run_one(data):
                result.known += 1
        except BaseException:
            failing.append(data)
            raise

    start = time.monotonic()
    deadline = start + seconds
    rng = random.Random(seed)
    batch = 50
    while True:
        t0 = time.monotonic()

        @settings(max_examples=batch, database=None, deadline=None,
                  suppress_health_check=list(HealthCheck), report_multiple_bugs=False,
                  phases=(Phase.generate, Phase.shrink), print_blob=False)
        @given(inputs)
        def one_batch(data: bytes) -> None:
            check(data)

        try:
            hseed(rng.getrandbits(64))(one_batch)()
        except Exception as e:  # hypothesis re-raises the shrunk failure last
            crash = failing[-1] if failing else b""
            result.crash = crash
            result.crash_file = save_crash(target, crash)
            result.error = "".join(traceback.format_exception(e))[-4000:]
            break
        now = time.monotonic()
        if now >= deadline:
            break
        # aim at batches of about half a second, never past the deadline
        per = (now - t0) / max(batch, 1)
        batch = max(10, min(5000, int(min(0.5, deadline - now) / max(per, 1e-6))))
    result.executions = count
    result.seconds = time.monotonic() - start
    return result


def save_crash(target: Target, data: bytes) -> Path:
    directory = CRASHES / target.name
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"crash-{hashlib.sha1(data).hexdigest()[:16]}"
    path.write_bytes(data)
    return path


def replay(target: Target, paths: Sequence[Path] | None = None) -> int:
    """Run ``check`` on every seed (or on ``paths``); returns how many ran."""
    inputs = [p.read_bytes() for p in paths] if paths else target.seeds()
    for data in inputs:
        target.run_one(data)
    return len(inputs)


# --- atheris -------------------------------------------------------------------------


def _dict_file(target: Target, directory: Path) -> Path | None:
    if not target.dictionary:
        return None
    path = directory / f"{target.name}.dict"
    with path.open("w") as f:
        for i, tok in enumerate(target.dictionary):
            esc = "".join(chr(b) if 0x20 <= b < 0x7F and b not in (0x22, 0x5C) else f"\\x{b:02x}"
                          for b in tok)
            f.write(f'kw{i}="{esc}"\n')
    return path


def run_atheris(target: Target, seconds: float) -> None:
    """libFuzzer through atheris; does not return (libFuzzer exits).

    The target is imported a second time with postroom instrumented for coverage.
    atheris 2.3 mis-instruments some Python 3.11 bytecode (a tuple swap such as
    ``a, self.x = self.x, None`` can leave ``self`` as None), so an exception from the
    instrumented code counts only if the plain, uninstrumented target raises too;
    the others are counted as instrumentation artefacts (reported as they double)."""
    import importlib

    import atheris

    plain = target
    for name in [m for m in sys.modules if m.split(".")[0] in ("postroom", "fuzz")
                 and m != __name__]:
        del sys.modules[name]
    with atheris.instrument_imports(include=["postroom"]):
        instrumented: Target = importlib.import_module(f"fuzz.{target.name}").TARGET
    artefacts = 0

    def one_input(data: bytes) -> None:
        nonlocal artefacts
        try:
            instrumented.run_one(data)
        except Exception:
            if plain.run_one(data):  # raises for a real (new) bug
                artefacts += 1
                if artefacts & (artefacts - 1) == 0:  # 1, 2, 4, 8 ...
                    print(f"{target.name}: {artefacts} atheris instrumentation artefacts "
                          "ignored so far", file=sys.stderr)
    work = WORK / target.name
    crashes = CRASHES / target.name
    work.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    args = [sys.argv[0], f"-max_total_time={int(seconds)}", f"-artifact_prefix={crashes}/",
            f"-max_len={target.max_size}", "-print_final_stats=1", "-rss_limit_mb=4096",
            "-timeout=20"]
    d = _dict_file(target, work)
    if d is not None:
        args.append(f"-dict={d}")
    args += [str(work), str(target.corpus_dir)]
    atheris.Setup(args, one_input)
    atheris.Fuzz()


# --- command line --------------------------------------------------------------------


def main(target: Target, argv: Sequence[str] | None = None) -> int:
    """``python -m fuzz.<name> [--seconds N] [--engine hypothesis|atheris]
    [--replay FILE...]``. Exit status 1 when a crash was found."""
    p = argparse.ArgumentParser(prog=f"python -m fuzz.{target.name}")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--engine", choices=("hypothesis", "atheris"), default="hypothesis")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--replay", nargs="*", type=Path,
                   help="run the seed corpus (or these files) once and exit")
    a = p.parse_args(argv)
    if a.replay is not None:
        n = replay(target, a.replay)
        print(f"{target.name}: replayed {n} inputs, no crash")
        return 0
    if a.engine == "atheris":
        run_atheris(target, a.seconds)
        return 0
    result = run_hypothesis(target, a.seconds, seed=a.seed)
    print(result.line())
    if result.crash is not None:
        print(result.error, file=sys.stderr)
        return 1
    return 0


def run_all(names: Sequence[str], seconds: float, engine: str) -> int:
    """Each target in its own process, one after the other."""
    failed = 0
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT.parent), *sys.path]))
    for name in names:
        rc = subprocess.call([sys.executable, "-m", f"fuzz.{name}", "--seconds", str(seconds),
                              "--engine", engine], env=env, cwd=ROOT.parent)
        failed += rc != 0
    return 1 if failed else 0
