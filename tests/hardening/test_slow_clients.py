"""Slow clients against the protocol shells, with timeouts made small through their
contexts (SmtpLimits.command_timeout, Pop3Context.idle_timeout, ImapContext
preauth/idle_timeout): a client trickling a byte at a time is disconnected like an
idle one, while a client sending whole commands slowly is not; a client that stops
reading is dropped after the write timeout."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hardening_shells import (
    Handler,
    ShellServer,
    imap_handler,
    pop3_handler,
    smtp_handler,
)

TIMEOUT = 0.3


@pytest.fixture
def shells() -> Iterator[ShellServer]:
    server = ShellServer()
    yield server
    server.stop()


def handler(kind: str, shells: ShellServer, tmp: Path) -> Handler:
    if kind == "smtp":
        return smtp_handler(tmp, command_timeout=TIMEOUT)
    if kind == "pop3":
        return pop3_handler(idle_timeout=TIMEOUT, write_timeout=TIMEOUT)
    return imap_handler(shells, tmp / "store", preauth_timeout=TIMEOUT, idle_timeout=TIMEOUT,
                        write_timeout=TIMEOUT)


def trickle(port: int, payload: bytes, interval: float, seconds: float) -> float | None:
    """Send ``payload`` one byte every ``interval`` (repeating it); the seconds until
    the server closed, or None if it was still open after ``seconds``."""
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.settimeout(interval)
    t0 = time.monotonic()
    i = 0
    try:
        while time.monotonic() - t0 < seconds:
            try:
                s.send(payload[i % len(payload) : i % len(payload) + 1])
                i += 1
                while True:
                    if s.recv(65536) == b"":
                        return time.monotonic() - t0
            except TimeoutError:
                continue
            except OSError:
                return time.monotonic() - t0
        return None
    finally:
        s.close()


def whole_commands(port: int, command: bytes, interval: float, seconds: float) -> bool:
    """Send a whole ``command`` every ``interval``; True if still open at the end."""
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.settimeout(interval)
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < seconds:
            s.sendall(command)
            deadline = time.monotonic() + interval
            while time.monotonic() < deadline:
                try:
                    if s.recv(65536) == b"":
                        return False
                except TimeoutError:
                    break
        return True
    except OSError:
        return False
    finally:
        s.close()


NOOP = {"smtp": b"NOOP\r\n", "pop3": b"CAPA\r\n", "imap": b"a NOOP\r\n"}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["smtp", "pop3", "imap"])
def test_byte_a_time_client_is_disconnected(kind: str, shells: ShellServer,
                                            tmp_path: Path) -> None:
    port = shells.serve(handler(kind, shells, tmp_path), kind)
    closed_after = trickle(port, b"NOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOOP", 0.1, 2.0)
    assert closed_after is not None, "a trickling client kept its session"
    assert closed_after < 4 * TIMEOUT


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["smtp", "pop3", "imap"])
def test_slow_but_whole_commands_keep_the_session(kind: str, shells: ShellServer,
                                                  tmp_path: Path) -> None:
    port = shells.serve(handler(kind, shells, tmp_path), kind)
    assert whole_commands(port, NOOP[kind], 0.2, 1.0), "a client sending commands was dropped"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["smtp", "pop3", "imap"])
def test_silent_client_is_disconnected(kind: str, shells: ShellServer, tmp_path: Path) -> None:
    port = shells.serve(handler(kind, shells, tmp_path), kind)
    s = socket.create_connection(("127.0.0.1", port), 5)
    t0 = time.monotonic()
    try:
        while s.recv(65536):
            pass
    finally:
        s.close()
    assert time.monotonic() - t0 < 4 * TIMEOUT
    deadline = time.monotonic() + 2
    while shells.open_sessions() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert shells.open_sessions() == 0


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["smtp", "pop3", "imap"])
def test_client_that_stops_reading_is_dropped(kind: str, shells: ShellServer,
                                              tmp_path: Path) -> None:
    """Commands with long answers, never read: once the socket buffers are full the
    server's write times out and the session ends (nothing held for it)."""
    port = shells.serve(handler(kind, shells, tmp_path), kind)
    command = {"smtp": b"EHLO x\r\n", "pop3": b"CAPA\r\n", "imap": b"a CAPABILITY\r\n"}[kind]
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.connect(("127.0.0.1", port))
    s.setblocking(False)
    block = command * 4000
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < 5:
            try:
                s.send(block)
            except BlockingIOError:
                time.sleep(0.05)
            except OSError:
                break
            if time.monotonic() - t0 > 1 and shells.open_sessions() == 0:
                break
        assert shells.open_sessions() == 0, "the session still waits for a client that never reads"
    finally:
        s.close()
