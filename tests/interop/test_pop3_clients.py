"""fetchmail, getmail6 and curl retrieve over POP3 what was sent over SMTP, byte for byte."""

from __future__ import annotations

import os
import shutil
import smtplib
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from harness import running_server
from interop_helpers import require

pytestmark = pytest.mark.interop

BOB, PASSWORD = "bob@example.com", "bob password 1"


def sent_messages() -> list[bytes]:
    return [
        b"From: alice@remote.test\r\nTo: bob@example.com\r\nSubject: first\r\n\r\n"
        b"Hello Bob.\r\n.A line with a leading dot\r\n..two dots\r\n",
        b"From: alice@remote.test\r\nTo: bob@example.com\r\nSubject: second\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + "Grüße, ça va?\r\n".encode() + b"x" * 998 + b"\r\n",
    ]


@pytest.fixture
def srv(tmp_path: Path) -> Any:
    with running_server(tmp_path, listeners=("smtp", "pop3"), users={BOB: PASSWORD}) as s:
        with smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=10) as smtp:
            for m in sent_messages():
                smtp.sendmail("alice@remote.test", [BOB], m)
        yield s


def test_curl_pop3(srv: Any) -> None:
    curl = require("curl")
    for n, original in enumerate(sent_messages(), 1):
        out = subprocess.run([curl, "-s", "-u", f"{BOB}:{PASSWORD}",
                              f"pop3://127.0.0.1:{srv.ports['pop3']}/{n}"],
                             capture_output=True, timeout=30, check=True).stdout
        assert out.endswith(original)
        assert out.startswith(b"Return-Path: <alice@remote.test>\r\nReceived: ")
    listing = subprocess.run([curl, "-s", "-u", f"{BOB}:{PASSWORD}",
                              f"pop3://127.0.0.1:{srv.ports['pop3']}/"],
                             capture_output=True, timeout=30, check=True).stdout
    assert listing.count(b"\r\n") == 2


def test_fetchmail_to_mda(srv: Any, tmp_path: Path) -> None:
    fetchmail = require("fetchmail")
    out = tmp_path / "out"
    out.mkdir()
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        f'poll 127.0.0.1 service {srv.ports["pop3"]} protocol pop3 auth password\n'
        f'  user "{BOB}" password "{PASSWORD}" is root here\n'
        f'  keep mda "/bin/sh -c \'cat > {out}/msg.$$\'"\n'
        '  sslproto "" \n')
    os.chmod(rc, 0o600)
    r = subprocess.run([fetchmail, "-f", str(rc), "--nosyslog", "-N", "--invisible",
                        "--idfile", str(tmp_path / "ids")], capture_output=True, text=True,
                       timeout=60, env=dict(os.environ, HOME=str(tmp_path)))
    assert r.returncode == 0, r.stdout + r.stderr
    got = sorted((p.read_bytes() for p in out.iterdir()), key=lambda b: b"second" in b)
    assert len(got) == 2
    for data, original in zip(got, sent_messages(), strict=True):
        # fetchmail hands the MDA LF line endings; the content is otherwise unchanged
        assert data.replace(b"\r\n", b"\n").endswith(original.replace(b"\r\n", b"\n"))


def test_getmail6_to_maildir(srv: Any, tmp_path: Path) -> None:
    getmail = require("getmail")
    base = Path(tempfile.mkdtemp(prefix="getmail-"))  # pytest's tmp is 0700: unreadable to nobody
    base.chmod(0o755)
    md = base / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True)
    user = ""
    if os.getuid() == 0:  # getmail refuses to deliver as root: deliver as nobody
        user = "user = nobody\n"
        for d in (md, md / "cur", md / "new", md / "tmp"):
            os.chown(d, 65534, 65534)
    rc = tmp_path / "getmailrc"
    rc.write_text(
        "[retriever]\ntype = SimplePOP3Retriever\nserver = 127.0.0.1\n"
        f"port = {srv.ports['pop3']}\nusername = {BOB}\npassword = {PASSWORD}\n"
        f"[destination]\ntype = Maildir\npath = {md}/\n{user}"
        "[options]\ndelete = false\nread_all = true\ndelivered_to = false\nreceived = false\n"
        "verbose = 0\n")
    r = subprocess.run([getmail, "--getmaildir", str(tmp_path), "--rcfile", str(rc)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    got = [p.read_bytes() for p in (md / "new").iterdir()]
    shutil.rmtree(base)
    assert len(got) == 2
    got.sort(key=lambda b: b"second" in b)
    for data, original in zip(got, sent_messages(), strict=True):
        assert data.replace(b"\r\n", b"\n").endswith(original.replace(b"\r\n", b"\n"))
