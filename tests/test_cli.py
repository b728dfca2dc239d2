"""The command line as an administrator uses it: real processes, real exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def run(tmp: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, POSTROOM_CONFIG=str(tmp / "postroom.toml"))
    return subprocess.run([sys.executable, "-m", "postroom", *args], input=stdin,
                          capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    (tmp_path / "postroom.toml").write_text('data_dir = "data"\nhostname = "mx.test"\n')
    return tmp_path


def test_accounts_round_trip(tmp: Path) -> None:
    assert run(tmp, "domain", "add", "Example.COM").returncode == 0
    r = run(tmp, "user", "add", "Bob@example.com", "--password-stdin", "--quota", "1M",
            stdin="correct horse\n")
    assert r.returncode == 0, r.stderr
    users = json.loads(run(tmp, "user", "list", "--json").stdout)
    assert users == [{"address": "Bob@example.com", "quota": 1048576, "used": 0}]
    assert run(tmp, "alias", "add", "@example.com", "bob@example.com").returncode == 0
    aliases = json.loads(run(tmp, "alias", "list", "--json").stdout)
    assert aliases == [{"alias": "@example.com", "targets": ["bob@example.com"]}]
    boxes = json.loads(run(tmp, "mailbox", "list", "bob@example.com", "--json").stdout)
    assert {b["name"] for b in boxes} == {"INBOX", "Sent", "Drafts", "Trash", "Junk",
                                          "Archive"}
    assert run(tmp, "user", "passwd", "bob@example.com", "--password-stdin",
               stdin="another secret\n").returncode == 0
    assert json.loads(run(tmp, "domain", "list", "--json").stdout) == [{"name": "example.com"}]


@pytest.mark.parametrize("args,stdin,message", [
    (("user", "add", "x@nowhere.test", "--password-stdin"), "longenough\n",
     "not a local domain"),
    (("user", "add", "x@example.com", "--password-stdin"), "short\n", "too short"),
    (("user", "remove", "ghost@example.com"), "", "no user"),
    (("domain", "add", "example.com"), "", "exists already"),
    (("user", "add", "x@example.com"), "", "use --password-stdin"),
    (("user", "quota", "x@example.com", "lots"), "", "not a size"),
])
def test_errors_are_one_line_without_traceback(tmp: Path, args: tuple[str, ...], stdin: str,
                                               message: str) -> None:
    run(tmp, "domain", "add", "example.com")
    r = run(tmp, *args, stdin=stdin)
    assert r.returncode == 1
    assert message in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_bad_config_names_the_key(tmp: Path) -> None:
    (tmp / "postroom.toml").write_text('[limits]\nmessage_size = "big"\n')
    r = run(tmp, "domain", "list")
    assert r.returncode == 1 and "limits.message_size" in r.stderr
    assert "Traceback" not in r.stderr


def test_usage_error_exits_2(tmp: Path) -> None:
    r = run(tmp, "frobnicate")
    assert r.returncode == 2
