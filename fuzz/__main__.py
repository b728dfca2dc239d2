"""``python -m fuzz --list`` / ``python -m fuzz --all [--seconds N] [--engine E]``."""

from __future__ import annotations

import argparse

from fuzz import TARGETS
from fuzz.engine import run_all

p = argparse.ArgumentParser(prog="python -m fuzz")
p.add_argument("--list", action="store_true")
p.add_argument("--all", action="store_true")
p.add_argument("--seconds", type=float, default=60.0)
p.add_argument("--engine", choices=("hypothesis", "atheris"), default="hypothesis")
p.add_argument("targets", nargs="*", help="a subset of the targets")
a = p.parse_args()
if a.list or not (a.all or a.targets):
    print("\n".join(TARGETS))
else:
    raise SystemExit(run_all(a.targets or list(TARGETS), a.seconds, a.engine))
