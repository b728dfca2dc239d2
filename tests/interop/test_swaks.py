"""swaks against the SMTP listeners: what admins run to check a mail server."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from harness import running_server
from interop_helpers import require

pytestmark = pytest.mark.interop

BOB, PASSWORD = "bob@example.com", "bob password 1"


def swaks(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require("swaks"), "--hide-informational", *args],
                          capture_output=True, text=True, timeout=60)


def inbox(srv: Any, address: str) -> list[bytes]:
    user = srv.call(srv.store.get_user(address))
    mb = srv.call(srv.store.get_mailbox(user.id, "INBOX"))
    return [srv.call(srv.store.read_message(e.message_id))
            for e in srv.call(srv.store.list_entries(mb.id))]


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with running_server(tmp_path_factory.mktemp("swaks"), listeners=(
            "smtp", "submission", "submissions"), users={BOB: PASSWORD},
            plaintext=False) as server:
        yield server


def test_mx_delivery_with_pipelining(srv: Any) -> None:
    r = swaks("--server", f"127.0.0.1:{srv.ports['smtp']}", "--to", BOB,
              "--from", "alice@remote.test", "--pipeline", "--header", "Subject: swaks mx")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "PIPELINING" in r.stdout
    assert any(b"Subject: swaks mx" in m for m in inbox(srv, BOB))


def test_unknown_recipient_and_open_relay_refused(srv: Any) -> None:
    r = swaks("--server", f"127.0.0.1:{srv.ports['smtp']}", "--to", "nobody@example.com",
              "--from", "alice@remote.test")
    assert r.returncode == 24 and "550 5.1.1" in r.stdout
    r = swaks("--server", f"127.0.0.1:{srv.ports['smtp']}", "--to", "victim@elsewhere.test",
              "--from", "spammer@remote.test")
    assert r.returncode == 24 and "550 5.7.1" in r.stdout


def test_submission_starttls_auth(srv: Any) -> None:
    port = srv.ports["submission"]
    # no AUTH before TLS when plaintext is not allowed for this network
    r = swaks("--server", f"127.0.0.1:{port}", "--to", BOB, "--from", BOB, "--auth", "PLAIN",
              "--auth-user", BOB, "--auth-password", PASSWORD)
    assert r.returncode != 0
    for mech in ("PLAIN", "LOGIN"):
        r = swaks("--server", f"127.0.0.1:{port}", "-tls", "--to", BOB, "--from", BOB,
                  "--auth", mech, "--auth-user", BOB, "--auth-password", PASSWORD,
                  "--header", f"Subject: via {mech}")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "235 2.7.0" in r.stdout
    r = swaks("--server", f"127.0.0.1:{port}", "-tls", "--to", BOB, "--from", BOB,
              "--auth", "PLAIN", "--auth-user", BOB, "--auth-password", "wrong password")
    assert r.returncode == 28 and "535 5.7.8" in r.stdout
    msgs = inbox(srv, BOB)
    assert any(b"Subject: via LOGIN" in m and b"with ESMTPSA" in m for m in msgs)


def test_implicit_tls_and_10mb_attachment(srv: Any, tmp_path: Path) -> None:
    blob = tmp_path / "attachment.bin"
    blob.write_bytes(bytes(range(256)) * (10 * 1024 * 1024 // 256))
    r = swaks("--server", f"127.0.0.1:{srv.ports['submissions']}", "-tlsc", "--to", BOB,
              "--from", BOB, "--auth", "PLAIN", "--auth-user", BOB, "--auth-password",
              PASSWORD, "--attach", f"@{blob}", "--header", "Subject: big one",
              "--suppress-data")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    big = [m for m in inbox(srv, BOB) if b"Subject: big one" in m]
    assert len(big) == 1 and len(big[0]) > 13_000_000
