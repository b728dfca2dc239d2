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


def test_dkim_generate_and_dns_records(tmp: Path) -> None:
    run(tmp, "domain", "add", "example.com")
    r = run(tmp, "dkim", "generate", "example.com")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("postroom._domainkey.example.com. IN TXT \"v=DKIM1; k=rsa; p=")
    assert run(tmp, "dkim", "generate", "example.com", "--algorithm", "ed25519").returncode == 0
    again = run(tmp, "dkim", "generate", "example.com")
    assert again.returncode == 1 and "exists already" in again.stderr
    zone = run(tmp, "dns", "example.com").stdout
    for needle in ("example.com. IN MX 10 mx.test.", '"v=spf1 mx -all"', "k=ed25519",
                   "_dmarc.example.com. IN TXT", "_imaps._tcp.example.com. IN SRV"):
        assert needle in zone, needle


def test_queue_list_show_retry_remove(tmp: Path) -> None:
    import asyncio

    from postroom.store.models import QueuedRecipient
    from postroom.store.sqlite import SqliteStore

    async def enqueue() -> int:
        store = await SqliteStore.open(tmp / "data")
        try:
            item = await store.enqueue(b"Subject: q\r\n\r\nbody\r\n", "a@example.com",
                                       [QueuedRecipient("x@remote.test")])
            return item.id
        finally:
            await store.close()

    qid = asyncio.run(enqueue())
    rows = json.loads(run(tmp, "queue", "list", "--json").stdout)
    assert rows[0]["id"] == qid and rows[0]["recipients"] == ["x@remote.test"]
    shown = json.loads(run(tmp, "queue", "show", str(qid), "--json").stdout)
    assert shown["recipients"][0]["state"] == "pending"
    assert "1 recipient(s) due now" in run(tmp, "queue", "retry", str(qid)).stdout
    assert run(tmp, "queue", "remove", str(qid)).returncode == 0
    assert json.loads(run(tmp, "queue", "list", "--json").stdout) == []
    missing = run(tmp, "queue", "show", "999")
    assert missing.returncode == 1 and "no queued message 999" in missing.stderr


def test_dev_quick_start_serves_and_stops_gracefully(tmp_path: Path) -> None:
    import imaplib
    import re
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "postroom", "dev", "--data",
                             str(tmp_path / "dev")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        banner = ""
        while "Stop with Ctrl-C" not in banner:
            line = proc.stdout.readline()
            assert line, "postroom dev exited early"
            banner += line
        password = re.search(r"password\s+(\S+)", banner)
        assert password is not None
        deadline = time.monotonic() + 20
        while "ready:" not in proc.stderr.readline():
            assert time.monotonic() < deadline
        m = imaplib.IMAP4("127.0.0.1", 2143)
        assert m.login("user@example.test", password.group(1))[0] == "OK"
        m.logout()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for f in (proc.stdout, proc.stderr):
            if f is not None:
                f.close()
    # second run reuses the folder and the same credentials
    assert (tmp_path / "dev" / "credentials.txt").read_text().split()[-1] == password.group(1)
