"""Named regression tests for what the fuzz targets found (fuzz/*.py); each says which
target found it. A bug that cannot be fixed at once is a strict xfail here and an
entry in its target's ``known`` tuple (fuzz/engine.py), both removed with the fix."""

from __future__ import annotations

import smtplib
import time
from pathlib import Path

import pytest
from hardening_peer import peer
from harness import running_server

from postroom.smtp.client_protocol import (
    Closed,
    Envelope,
    Extensions,
    NeedBody,
    NeedData,
    OutboundRecipient,
    Ready,
    SessionFailed,
    SmtpClientProtocol,
    TlsMode,
    TransactionDone,
)
from postroom.smtp.codes import Reply

BODY = b"Subject: x\r\n\r\nbody\r\n"
ENVELOPE = Envelope("a@example.test", (OutboundRecipient("b@example.org"),), len(BODY))


def relay(server_says: bytes) -> list[object]:
    """Our relay client against a peer that answers with the lines of ``server_says``,
    one line each time the client waits for a reply: the events it reports."""
    client = SmtpClientProtocol("relay.test", tls_mode=TlsMode.NONE)
    lines = iter(server_says.splitlines(keepends=True))
    events: list[object] = []
    for _ in range(50):
        ev = client.next_event()
        client.data_to_send()
        if isinstance(ev, NeedData):
            client.receive_data(next(lines, b""))
            continue
        events.append(ev)
        if isinstance(ev, Ready):
            client.send_message(ENVELOPE)
        elif isinstance(ev, NeedBody):
            client.send_body(BODY, last=True)
        elif isinstance(ev, Closed | SessionFailed):
            return events
    raise AssertionError(events)


def delivered(events: list[object]) -> bool:
    return any(isinstance(e, TransactionDone) and any(r.positive for r in e.result.replies)
               for e in events) or any(isinstance(e, SessionFailed) and e.reply.positive
                                       for e in events)


# --- SMTP relay client (fuzz.smtp_reply) ---------------------------------------------------


def test_relay_data_answered_250_is_not_delivered() -> None:
    """A peer answering DATA with 250 instead of 354 never got the content; the
    recipient used to take that 250 as its final reply and the queue dropped the
    message as delivered."""
    events = relay(b"220 mx\r\n250 mx\r\n250 ok\r\n250 ok\r\n250 ok\r\n")
    assert not delivered(events), events
    done = next(e for e in events if isinstance(e, TransactionDone))
    assert done.result.replies[0].code == 451 and not done.result.data_sent


def test_relay_positive_greeting_fails_the_session_temporarily() -> None:
    """A 2xx greeting other than 220 (``221 bye``) ended the session with that reply,
    and the queue's routing turned it into a "delivered" outcome."""
    for greeting in (b"221 2.0.0 bye\r\n", b"250 hello\r\n"):
        events = relay(greeting)
        failed = events[-1]
        assert isinstance(failed, SessionFailed) and failed.reply.code == 451, events


@pytest.mark.slow
def test_queue_keeps_a_message_the_peer_answered_250_to_data(tmp_path: Path) -> None:
    """End to end: mail forwarded to a peer that answers DATA with 250 stays in the
    queue (it used to be recorded as delivered, and dropped)."""
    with peer(answer_data=b"250 2.0.0 sure") as remote:
        relay_cfg = {"routes": {"remote.test": f"127.0.0.1:{remote.server_address[1]}"}}
        with running_server(tmp_path, listeners=("smtp",), extra={"relay": relay_cfg}) as srv:
            srv.call(srv.store.add_alias("fwd@example.com", ["peer@remote.test"]))
            with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10) as s:
                s.sendmail("a@elsewhere.test", ["fwd@example.com"],
                           b"Subject: kept\r\n\r\nbody\r\n")
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and remote.sessions == 0:
                time.sleep(0.05)
            time.sleep(0.3)  # the outcome is recorded in the background
            assert remote.sessions >= 1, "the queue never tried the peer"
            pending = srv.call(srv.store.list_queue())
        assert [r.address for item in pending for r in item.recipients] == ["peer@remote.test"]
        assert remote.received == []


def test_relay_3xx_after_the_content_is_not_delivered() -> None:
    events = relay(b"220 mx\r\n250 mx\r\n250 ok\r\n250 ok\r\n354 go\r\n354 again\r\n")
    assert not delivered(events), events


def test_relay_size_with_non_ascii_digits_is_ignored() -> None:
    """``SIZE ²`` passed ``str.isdigit`` and crashed ``int()`` in send_message."""
    ext = Extensions.parse(Reply(250, None, "mx\nSIZE \u00b2\nSIZE2 \u0661"))
    assert ext.size_limit == 0


# --- SMTP server engine (fuzz.smtp_data) ---------------------------------------------------


def test_smtp_refusal_does_not_depend_on_how_the_content_was_cut() -> None:
    """A message with an over-long line and a bare LF was refused as "line too long"
    when read in small pieces and as "bare LF" when read at once."""
    from fuzz._smtp import CONFIG, run
    from fuzz.smtp_data import DATA_PREFIX

    shell = run(DATA_PREFIX + b"x" * 130 + b"\n\r\n.\r\n", CONFIG)
    assert bytes(shell.out).endswith(b"550 5.6.0 Bare CR or LF in message content not allowed\r\n")


# --- configuration and MIME (fuzz.config_loader, fuzz.mime_structure) -----------------------


def test_config_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    from postroom.config import ConfigError, load_config

    path = tmp_path / "postroom.toml"
    path.write_bytes(b'hostname = "mx\xff"\n')
    with pytest.raises(ConfigError):
        load_config(path)


def test_config_unicode_digit_port_is_a_config_error() -> None:
    from postroom.config import Config, ConfigError

    with pytest.raises(ConfigError):
        Config.from_dict({"listen": {"smtp": ["127.0.0.1:\u00b2"]}})


def test_mime_encoded_word_with_raw_utf8_keeps_the_structure() -> None:
    from postroom.mime import PartKind
    from postroom.mime.parser import analyze_strict

    message = (b"Subject: =?utf-8?q?caf\xc3\xa9?=\r\n"
               b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\nx\r\n--b--\r\n")
    info = analyze_strict(message)
    assert info.root.kind == PartKind.MULTIPART
