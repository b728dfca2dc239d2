"""Password guessing against the whole server: failures from one address are answered
more and more slowly and then refused for a while, counted together over SMTP AUTH,
IMAP and POP3 (one AuthThrottle); other addresses are never slowed down, and a right
password from elsewhere is answered at once even while the attacker's answers wait.

The throttle is the server's own class with shorter times (the production defaults -
0.5 s doubling to 15 s, block after 20 for 15 minutes - are documented in SECURITY.md)."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hardening_clients import Imap, Pop3, Smtp
from harness import RunningServer, running_server

from postroom import services
from postroom.auth.throttle import AuthThrottle, ThrottleSettings

ALICE, PW = "alice@example.com", "alice password"
SETTINGS = ThrottleSettings(base_delay=0.05, max_delay=0.4, block_after=6, block_for=1.5)
# For the concurrency test: guessers never get blocked, and spend their time waiting
# out delays (as real ones do) rather than reconnecting in a loop.
PATIENT = ThrottleSettings(base_delay=0.2, max_delay=1.0, block_after=10_000)


@pytest.fixture
def srv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    made: list[AuthThrottle] = []
    settings = getattr(request, "param", SETTINGS)

    def throttle() -> AuthThrottle:
        made.append(AuthThrottle(settings))
        return made[-1]

    monkeypatch.setattr(services, "AuthThrottle", throttle)
    with running_server(tmp_path, listeners=("submission", "imap", "pop3"),
                        users={ALICE: PW}) as server:
        assert len(made) == 1  # one throttle for every protocol
        yield server


def smtp_auth(srv: RunningServer, source: str, password: str) -> tuple[bool, float]:
    s = Smtp(srv.ports["submission"], source)
    try:
        s.reply()
        s.cmd(b"EHLO client")
        token = base64.b64encode(b"\0" + ALICE.encode() + b"\0" + password.encode())
        t0 = time.monotonic()
        answer = s.cmd(b"AUTH PLAIN " + token)[0]
        return answer.startswith(b"235"), time.monotonic() - t0
    finally:
        s.close()


def imap_login(srv: RunningServer, source: str, password: str) -> tuple[bool, float]:
    i = Imap(srv.ports["imap"], source)
    try:
        i.line()
        t0 = time.monotonic()
        answer = i.login(ALICE, password)[-1]
        return answer.split()[1] == b"OK", time.monotonic() - t0
    finally:
        i.close()


def pop3_login(srv: RunningServer, source: str, password: str) -> tuple[bool, float]:
    p = Pop3(srv.ports["pop3"], source)
    try:
        p.line()
        p.cmd(b"USER " + ALICE.encode())
        t0 = time.monotonic()
        answer = p.cmd(b"PASS " + password.encode())
        return answer.startswith(b"+OK"), time.monotonic() - t0
    finally:
        p.close()


LOGINS = (smtp_auth, imap_login, pop3_login)


@pytest.mark.slow
def test_failures_slow_down_then_block_across_protocols(srv: RunningServer) -> None:
    attacker = "127.0.11.1"
    times = []
    for n in range(SETTINGS.block_after):  # SMTP, IMAP, POP3, SMTP, ... one shared count
        ok, took = LOGINS[n % 3](srv, attacker, "wrong")
        assert not ok
        times.append(took)
    assert times[-1] >= SETTINGS.max_delay * 0.9, times
    assert times[-1] > times[0] + 0.2, f"failures were not slowed down: {times}"
    for login in LOGINS:  # blocked: even the right password is refused, on every protocol
        ok, _ = login(srv, attacker, PW)
        assert not ok, f"{login.__name__} let a blocked address in"
    for login in LOGINS:  # another address is neither blocked nor slowed
        ok, took = login(srv, "127.0.11.2", PW)
        assert ok and took < 0.3, (login.__name__, took)
    time.sleep(SETTINGS.block_for + 0.3)
    ok, _ = imap_login(srv, attacker, PW)
    assert ok, "the block did not expire"


@pytest.mark.slow
@pytest.mark.parametrize("srv", [PATIENT], indirect=True)
def test_a_good_login_is_not_delayed_by_someone_elses_failures(srv: RunningServer) -> None:
    """Twelve guessing sessions wait out their (growing, up to 1 s) delays at the same
    time; a right password from another address meanwhile is answered at once - well
    under the delay any failure gets. (Password checks share a small thread pool, so
    a flood of guesses from very many addresses would still cost CPU: SECURITY.md.)"""
    stop = threading.Event()

    def guess(source: str) -> None:
        while not stop.is_set():
            LOGINS[int(source.rsplit(".", 1)[1]) % 3](srv, source, "wrong")

    threads = [threading.Thread(target=guess, args=(f"127.0.12.{n}",)) for n in range(1, 13)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)  # the guessers are deep in their delays now
        for login in LOGINS:
            ok, took = login(srv, "127.0.13.1", PW)
            assert ok and took < PATIENT.max_delay / 2, (login.__name__, took)
    finally:
        stop.set()
        for t in threads:
            t.join(10)
