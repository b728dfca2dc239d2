"""Fuzz target: IMAP command framing (lines, literals, LITERAL+/literal8, limits) at
any split, with small limits and the real ones; bounded buffering; every rejection a
single status line. ``python -m fuzz.imap_receiver --seconds N``."""

from __future__ import annotations

from fuzz._imap import SMALL, check_events, receive, split_size
from fuzz.engine import Target, main
from postroom.imap.receiver import Command, ReceiverConfig


def check(data: bytes) -> None:
    size = split_size(data)
    for config in (SMALL, ReceiverConfig()):
        whole = receive(data, max(len(data), 1), config)
        assert receive(data, size, config) == whole, "framing depends on the split"
        for event in whole:
            if isinstance(event, Command):
                assert len(event.segments) == len(event.literals) + 1
                assert event.size <= config.max_append_command
        check_events(whole, utf8=size % 2 == 0)


DICTIONARY = (
    b"\r\n", b"\n", b"\r", b" ", b"a1 ", b"* ", b"+ ", b"{0}\r\n", b"{3}\r\n", b"{5+}\r\n",
    b"~{2}\r\n", b"~{2+}\r\n", b"{99999999999999999999}\r\n", b"{4294967296}\r\n", b'"',
    b'\\"', b"APPEND ", b"LOGIN ", b"AUTHENTICATE PLAIN", b"IDLE", b"DONE", b"x" * 70,
    b"\x00", b"\xff", b"(", b")",
)

TARGET = Target("imap_receiver", check, DICTIONARY)

if __name__ == "__main__":
    raise SystemExit(main(TARGET))
