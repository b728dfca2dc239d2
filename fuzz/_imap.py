"""Helpers shared by the IMAP fuzz targets: the receiver at a split, parsing with the
only allowed failure (``ParseError``), a small selected mailbox over in-memory
messages, and a driver for coroutines that never really wait."""

from __future__ import annotations

import re
import zlib
from collections.abc import Coroutine
from typing import Any, TypeVar

from postroom.imap.commands import ImapCommand, parse_command
from postroom.imap.errors import ParseError
from postroom.imap.grammar.options import ParseOptions
from postroom.imap.receiver import (
    Command,
    CommandReceiver,
    Event,
    NeedData,
    NeedLiteral,
    ReceiverConfig,
    Rejected,
)
from postroom.imap.responses import Response, error_response
from postroom.imap.selected import SelectedMailbox
from postroom.mime import MessageInfo, analyze, normalize_crlf
from postroom.mime.imap import bodystructure_to_imap, envelope_to_imap
from postroom.store.models import Entry, Flags

T = TypeVar("T")
SMALL = ReceiverConfig(max_line=64, max_literal=40, max_command=300, max_append_literal=100,
                       max_raw_line=32)
STATUS_LINE = re.compile(rb"[*A-Za-z0-9!#$&'+,\-./:;<=>?@\[\]^_`|}~]+ [^\r\n]*\r\n\Z")


def decide(event: NeedLiteral) -> bool:
    return event.size % 3 != 2  # deterministic, so every split decides alike


def receive(data: bytes, size: int, config: ReceiverConfig | None = None) -> list[Event]:
    """Feed ``data`` in ``size`` chunks; every event but NeedData. Checks that the
    receiver never holds more than one line (plus a chunk) between reads."""
    cfg = config or ReceiverConfig()
    receiver = CommandReceiver(cfg)
    events: list[Event] = []
    bound = max(cfg.max_line, cfg.max_raw_line) + 2 + size
    for i in range(0, len(data), size):
        receiver.feed(data[i : i + size])
        while True:
            event = receiver.next_event()
            if isinstance(event, NeedData):
                break
            events.append(event)
            if isinstance(event, NeedLiteral):
                if decide(event):
                    receiver.accept_literal()
                else:
                    receiver.reject_literal()
        assert receiver.buffered <= bound, f"receiver holds {receiver.buffered} octets"
    return events


def split_size(data: bytes) -> int:
    return 1 + zlib.crc32(data) % 13


def one_line(response: Response) -> bytes:
    """A status response must be exactly one line: client text echoed in it must not
    be able to inject a second response."""
    wire = bytes(response)
    assert STATUS_LINE.match(wire), f"bad status line {wire[:200]!r}"
    return wire


def parse_or_error(command: Command, utf8: bool) -> ImapCommand | ParseError:
    try:
        return parse_command(command, ParseOptions(utf8=utf8))
    except ParseError as exc:
        assert exc.status in ("BAD", "NO") and exc.text
        one_line(error_response(exc))
        return exc


def check_events(events: list[Event], utf8: bool) -> list[ImapCommand]:
    parsed = []
    for event in events:
        if isinstance(event, Rejected):
            one_line(error_response(event))
        elif isinstance(event, Command):
            result = parse_or_error(event, utf8)
            if isinstance(result, ImapCommand):
                parsed.append(result)
    return parsed


def drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that only ever yields to the loop (``sleep(0)``)."""
    while True:
        try:
            coro.send(None)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]


MESSAGES = {
    1: b"From: Alice <alice@example.com>\nTo: bob@example.org, \"Carol, C\" <c@x.test>\n"
       b"Subject: =?UTF-8?Q?caf=C3=A9?= meeting\nDate: Mon, 1 Jan 2024 10:00:00 +0100\n"
       b"Message-ID: <1@example.com>\n\nHello Bob,\nsee you.\n",
    2: b"From: x@y.test\nSubject: multi\nMIME-Version: 1.0\n"
       b"Content-Type: multipart/mixed; boundary=b\n\npre\n--b\nContent-Type: text/plain; "
       b"charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable\n\nd=E9j=E0 vu\n"
       b"--b\nContent-Type: message/rfc822\n\nSubject: inner\nFrom: i@n.test\n\ninner body\n"
       b"--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
       b"AAECAwQ=\n--b--\nepilogue\n",
    3: b"Subject: no body",
    5: b"Content-Transfer-Encoding: x-unknown\nContent-Type: text/plain\n\n\x00\xff body\n",
}


class MemorySource:
    """``MessageSource`` over ``MESSAGES`` (ids = UIDs), analysis through JSON as the
    store keeps it."""

    def __init__(self) -> None:
        self.raw = {k: bytes(normalize_crlf(v)) for k, v in MESSAGES.items()}
        self.infos = {k: MessageInfo.from_json(analyze(v).to_json()) for k, v in self.raw.items()}

    async def info(self, message_id: int) -> MessageInfo:
        return self.infos[message_id]

    async def body(self, message_id: int, start: int = 0, end: int | None = None) -> bytes:
        return self.raw[message_id][start:end]

    async def imap_summary(self, message_id: int) -> tuple[bytes, bytes] | None:
        """As the store renders them at store time; message 5 as one stored before."""
        if message_id == 5:
            return None
        info = self.infos[message_id]
        return envelope_to_imap(info.envelope), bodystructure_to_imap(info.root)


def mailbox() -> tuple[SelectedMailbox, MemorySource]:
    source = MemorySource()
    flags = {1: ["\\Seen", "$Junk"], 2: ["\\Flagged", "\\Deleted"], 3: [], 5: ["\\Draft"]}
    entries = [Entry(uid, uid, Flags.from_names(flags[uid]), uid * 3, len(source.raw[uid]),
                     1_700_000_000.0 + uid * 86400, 1_700_000_000.0 + uid * 90000)
               for uid in sorted(MESSAGES)]
    selected = SelectedMailbox(1, 1, entries, 20, 6, readonly=False, recent_range=(3, 6))
    return selected, source
