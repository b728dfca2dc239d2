"""The command receiver: framing, literals and limits, every input fed at every split."""

from __future__ import annotations

import pytest
from imap_wire import events_at_every_split, run, splits

from postroom.imap.receiver import (
    Command,
    CommandReceiver,
    Line,
    NeedData,
    NeedLiteral,
    ReceiverConfig,
    Rejected,
    RejectReason,
)


def cmd(tag: str | None, name: str, *segments: bytes, literals: tuple[bytes, ...] = ()) -> Command:
    return Command(tag, name, segments, literals)


def test_simple_commands_pipelined_with_crlf_and_bare_lf() -> None:
    events = events_at_every_split(b"a1 NOOP\r\na2 uid fetch 1 FLAGS\na3 LOGOUT\r\n")
    assert events == [
        cmd("a1", "NOOP", b"a1 NOOP"),
        cmd("a2", "UID FETCH", b"a2 uid fetch 1 FLAGS"),
        cmd("a3", "LOGOUT", b"a3 LOGOUT"),
    ]


def test_empty_lines_between_commands_are_ignored() -> None:
    assert events_at_every_split(b"\r\n\r\na1 NOOP\r\n\n") == [cmd("a1", "NOOP", b"a1 NOOP")]


def test_invalid_tag_gives_no_tag() -> None:
    events = events_at_every_split(b"+x NOOP\r\n(a CAPABILITY\r\n*\r\n")
    assert [(e.tag, e.name) for e in events if isinstance(e, Command)] == [
        (None, "NOOP"),
        (None, "CAPABILITY"),
        (None, ""),
    ]


def test_synchronizing_literal_waits_for_a_decision() -> None:
    # C: a1 LOGIN {3}   S: + Ready   C: bob {6}   S: + Ready   C: secret
    data = b"a1 LOGIN {3}\r\nbob {6}\r\nsecret\r\n"
    assert events_at_every_split(data) == [
        NeedLiteral("a1", "LOGIN", 3, True, False),
        NeedLiteral("a1", "LOGIN", 6, True, False),
        cmd("a1", "LOGIN", b"a1 LOGIN {3}", b" {6}", b"", literals=(b"bob", b"secret")),
    ]


def test_literal_contents_are_not_scanned_for_line_ends_or_literals() -> None:
    data = b"a1 APPEND INBOX {12+}\r\nx\r\ny {3}\r\n\r\n\r\na2 NOOP\r\n"
    events = events_at_every_split(data)
    assert events[1:] == [
        cmd("a1", "APPEND", b"a1 APPEND INBOX {12+}", b"", literals=(b"x\r\ny {3}\r\n\r\n",)),
        cmd("a2", "NOOP", b"a2 NOOP"),
    ]
    assert events[0] == NeedLiteral("a1", "APPEND", 12, False, False)


def test_multiappend_with_literal8_and_empty_literal() -> None:
    data = b'A3 APPEND Drafts (\\Seen) {2+}\r\nhi ~{3+}\r\na\x00b (\\Draft) "1-Jan-2024 00:00:00 +0000" {0+}\r\n\r\n'
    events = events_at_every_split(data)
    assert [e for e in events if isinstance(e, NeedLiteral)] == [
        NeedLiteral("A3", "APPEND", 2, False, False),
        NeedLiteral("A3", "APPEND", 3, False, True),
        NeedLiteral("A3", "APPEND", 0, False, False),
    ]
    command = events[-1]
    assert isinstance(command, Command)
    assert command.literals == (b"hi", b"a\x00b", b"")
    assert command.wire() == data[:-2]


def test_announcement_inside_an_open_quoted_string_is_not_a_literal() -> None:
    events = events_at_every_split(b'a1 LOGIN "x\\" {5}\r\na2 LOGIN "a" {1}\r\nb\r\n')
    assert events[0] == cmd("a1", "LOGIN", b'a1 LOGIN "x\\" {5}')
    assert events[1] == NeedLiteral("a2", "LOGIN", 1, True, False)


def test_rejected_synchronizing_literal_ends_the_command_at_once() -> None:
    # S: a1 NO [TOOBIG] ...; the client does not send the data, its next line is a command.
    events = events_at_every_split(
        b"a1 APPEND INBOX {99}\r\na2 NOOP\r\n", decide=lambda e: e.size < 50
    )
    assert events == [
        NeedLiteral("a1", "APPEND", 99, True, False),
        Rejected("a1", RejectReason.REFUSED, "NO", "TOOBIG", "Literal too big"),
        cmd("a2", "NOOP", b"a2 NOOP"),
    ]


def test_rejected_non_synchronizing_literal_is_read_and_thrown_away() -> None:
    # The whole command (including a later literal) is skipped, then answered.
    data = b"a1 APPEND INBOX {60+}\r\n" + b"z" * 60 + b" {5+}\r\na2 NO\r\n\r\na3 NOOP\r\n"
    events = events_at_every_split(data, decide=lambda e: e.size < 50)
    assert events == [
        NeedLiteral("a1", "APPEND", 60, False, False),
        Rejected("a1", RejectReason.REFUSED, "NO", "TOOBIG", "Literal too big"),
        cmd("a3", "NOOP", b"a3 NOOP"),
    ]


def test_reject_with_a_custom_answer() -> None:
    receiver = CommandReceiver()
    receiver.feed(b"t APPEND x {5}\r\n")
    assert isinstance(receiver.next_event(), NeedLiteral)
    receiver.reject_literal(status="NO", code="OVERQUOTA", text="Quota exceeded")
    assert receiver.next_event() == Rejected(
        "t", RejectReason.REFUSED, "NO", "OVERQUOTA", "Quota exceeded"
    )
    assert receiver.next_event() == NeedData()
    assert receiver.idle


SMALL = ReceiverConfig(max_line=40, max_literal=10, max_command=100, max_append_literal=50)


def test_line_too_long_is_skipped_to_its_end() -> None:
    data = b"a1 SEARCH " + b"X" * 60 + b"\r\na2 NOOP\r\n"
    assert events_at_every_split(data, config=SMALL) == [
        Rejected("a1", RejectReason.LINE_TOO_LONG, "BAD", None, "Command line too long"),
        cmd("a2", "NOOP", b"a2 NOOP"),
    ]


def test_line_too_long_without_a_tag() -> None:
    events = events_at_every_split(b"X" * 90 + b"\r\n", config=SMALL)
    assert events == [
        Rejected(None, RejectReason.LINE_TOO_LONG, "BAD", None, "Command line too long")
    ]


def test_line_of_exactly_the_limit_is_fine() -> None:
    line = b"a1 NOOP " + b"x" * 32
    assert len(line) == 40
    assert events_at_every_split(line + b"\r\n", config=SMALL) == [cmd("a1", "NOOP", line)]


def test_too_long_line_ending_in_a_non_synchronizing_literal_skips_the_literal() -> None:
    data = b"a1 LOGIN " + b"u" * 40 + b" {4+}\r\nxx\r\n\r\na2 NOOP\r\n"
    assert events_at_every_split(data, config=SMALL) == [
        Rejected("a1", RejectReason.LINE_TOO_LONG, "BAD", None, "Command line too long"),
        cmd("a2", "NOOP", b"a2 NOOP"),
    ]


def test_continuation_line_too_long() -> None:
    data = b"a1 LOGIN {2+}\r\nab " + b"p" * 50 + b"\r\na2 NOOP\r\n"
    assert events_at_every_split(data, config=SMALL)[1:] == [
        Rejected("a1", RejectReason.LINE_TOO_LONG, "BAD", None, "Command line too long"),
        cmd("a2", "NOOP", b"a2 NOOP"),
    ]


def test_literal_over_the_limit_outside_append() -> None:
    # Synchronizing: refused at once. Non-synchronizing: read, thrown away, then refused.
    data = b"a1 LOGIN {11}\r\na2 LOGIN {11+}\r\n01234567890 x\r\na3 NOOP\r\n"
    bad = ("BAD", "TOOBIG", "Literal too big")
    assert events_at_every_split(data, config=SMALL) == [
        Rejected("a1", RejectReason.LITERAL_TOO_BIG, *bad),
        Rejected("a2", RejectReason.LITERAL_TOO_BIG, *bad),
        cmd("a3", "NOOP", b"a3 NOOP"),
    ]


def test_append_literal_limits() -> None:
    data = b"a1 APPEND x {50+}\r\n" + b"m" * 50 + b"\r\na2 APPEND x {51}\r\n"
    events = events_at_every_split(data, config=SMALL)
    assert isinstance(events[1], Command) and events[1].literals == (b"m" * 50,)
    assert events[2] == Rejected(
        "a2", RejectReason.LITERAL_TOO_BIG, "NO", "TOOBIG", "Message too big"
    )


def test_command_too_big() -> None:
    cfg = ReceiverConfig(max_line=40, max_literal=30, max_command=60)
    data = b"a1 LOGIN {30+}\r\n" + b"u" * 30 + b" {30+}\r\n" + b"p" * 30 + b"\r\na2 NOOP\r\n"
    assert events_at_every_split(data, config=cfg)[1:] == [
        Rejected("a1", RejectReason.COMMAND_TOO_BIG, "BAD", "TOOBIG", "Command too big"),
        cmd("a2", "NOOP", b"a2 NOOP"),
    ]


def test_command_too_big_by_its_lines() -> None:
    cfg = ReceiverConfig(max_line=40, max_literal=30, max_command=50)
    data = b"a1 LOGIN {1+}\r\nu " + b"p" * 35 + b"\r\na2 NOOP\r\n"
    assert events_at_every_split(data, config=cfg)[1:] == [
        Rejected("a1", RejectReason.COMMAND_TOO_BIG, "BAD", "TOOBIG", "Command too big"),
        cmd("a2", "NOOP", b"a2 NOOP"),
    ]


def test_literal_minus() -> None:
    # RFC 7888 section 5: non-synchronizing literals up to 4096 octets only.
    cfg = ReceiverConfig(literal_minus=True, max_append_literal=None)
    ok = b"a1 APPEND x {4096+}\r\n" + b"a" * 4096 + b"\r\n"
    too_big = b"a2 APPEND x {4097+}\r\n" + b"a" * 4097 + b"\r\n"
    sync = b"a3 APPEND x {4097}\r\n"
    events = run([ok + too_big + sync], config=cfg)
    assert isinstance(events[1], Command)
    assert events[2] == Rejected(
        "a2",
        RejectReason.LITERAL_MINUS,
        "BAD",
        "TOOBIG",
        "Non-synchronizing literal over 4096 octets (LITERAL-)",
    )
    assert events[3] == NeedLiteral("a3", "APPEND", 4097, True, False)


def test_raw_line_mode_for_authenticate_and_idle() -> None:
    # C: a1 AUTHENTICATE PLAIN / S: + / C: base64 / ... C: a2 IDLE / S: + idling / C: DONE
    data = b"a1 AUTHENTICATE PLAIN\r\nAGJvYgBzZWNyZXQ=\r\na2 IDLE\r\nDONE\r\na3 NOOP\r\n"

    def on_event(receiver: CommandReceiver, event: object) -> None:
        if isinstance(event, Command) and event.name in ("AUTHENTICATE", "IDLE"):
            receiver.expect_line()

    expected = [
        cmd("a1", "AUTHENTICATE", b"a1 AUTHENTICATE PLAIN"),
        Line(b"AGJvYgBzZWNyZXQ="),
        cmd("a2", "IDLE", b"a2 IDLE"),
        Line(b"DONE"),
        cmd("a3", "NOOP", b"a3 NOOP"),
    ]
    for chunks in splits(data):
        assert run(chunks, on_event=on_event) == expected


def test_raw_line_too_long() -> None:
    data = b"a1 AUTHENTICATE PLAIN\r\n" + b"A" * 100 + b"\r\na2 NOOP\r\n"

    def on_event(receiver: CommandReceiver, event: object) -> None:
        if isinstance(event, Command) and event.name == "AUTHENTICATE":
            receiver.expect_line(max_length=20)

    for chunks in splits(data):
        assert run(chunks, on_event=on_event)[1:] == [
            Rejected(None, RejectReason.LINE_TOO_LONG, "BAD", None, "Line too long"),
            cmd("a2", "NOOP", b"a2 NOOP"),
        ]


def test_misuse_is_a_runtime_error() -> None:
    receiver = CommandReceiver()
    receiver.feed(b"a1 LOGIN {3}\r\n")
    assert isinstance(receiver.next_event(), NeedLiteral)
    with pytest.raises(RuntimeError):
        receiver.next_event()
    with pytest.raises(RuntimeError):
        receiver.expect_line()
    receiver.accept_literal()
    with pytest.raises(RuntimeError):
        receiver.accept_literal()
    assert not receiver.idle
    receiver.feed(b"bob x\r\n")
    assert isinstance(receiver.next_event(), Command)
    assert receiver.idle and receiver.buffered == 0


def test_huge_announcement_is_refused_not_allocated() -> None:
    events = run([b"a1 APPEND x {99999999999999999999}\r\na2 NOOP\r\n"])
    assert events[0] == Rejected(
        "a1", RejectReason.COMMAND_TOO_BIG, "BAD", "TOOBIG", "Command too big"
    )
    assert events[1] == cmd("a2", "NOOP", b"a2 NOOP")


def test_byte_by_byte_big_literal_is_linear() -> None:
    # 1 MiB literal fed in 1 KiB chunks: the receiver does not rescan what it has.
    body = b"x" * (1 << 20)
    data = b"a1 APPEND x {%d+}\r\n" % len(body) + body + b"\r\n"
    events = run([data[i : i + 1024] for i in range(0, len(data), 1024)])
    assert isinstance(events[-1], Command) and events[-1].literals == (body,)


def test_starttls_command_injection_is_discarded() -> None:
    # C: a1 STARTTLS\r\na2 DELETE INBOX  (in the same packet: must not run after TLS starts)
    receiver = CommandReceiver()
    receiver.feed(b"a1 STARTTLS\r\na2 DELETE INBOX\r\n")
    assert receiver.next_event() == cmd("a1", "STARTTLS", b"a1 STARTTLS")
    assert receiver.discard_buffered() == len(b"a2 DELETE INBOX\r\n")
    assert receiver.next_event() == NeedData()
    receiver.feed(b"a3 NOOP\r\n")
    assert receiver.next_event() == cmd("a3", "NOOP", b"a3 NOOP")
    receiver.feed(b"a4 LOGIN {1}\r\n")
    assert isinstance(receiver.next_event(), NeedLiteral)
    with pytest.raises(RuntimeError):
        receiver.discard_buffered()
