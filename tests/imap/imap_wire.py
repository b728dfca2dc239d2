"""Test helpers: drive the receiver at every split, parse commands, read responses back."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

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
)

Decide = Callable[[NeedLiteral], bool]


def accept_all(_: NeedLiteral) -> bool:
    return True


def splits(data: bytes) -> Iterator[list[bytes]]:
    """Every way worth trying to cut ``data``: every two-piece cut, then every chunk size
    (1 is byte by byte)."""
    for cut in range(len(data) + 1):
        yield [data[:cut], data[cut:]]
    for size in range(1, len(data) + 1):
        yield [data[i : i + size] for i in range(0, len(data), size)]


def run(
    chunks: list[bytes],
    *,
    config: ReceiverConfig | None = None,
    decide: Decide = accept_all,
    on_event: Callable[[CommandReceiver, Event], None] | None = None,
) -> list[Event]:
    """Feed ``chunks`` one by one, pulling events until ``NeedData`` after each; literals
    are accepted or rejected by ``decide``. Returns every event but ``NeedData``."""
    receiver = CommandReceiver(config)
    events: list[Event] = []
    for chunk in chunks:
        receiver.feed(chunk)
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
            if on_event is not None:
                on_event(receiver, event)
    return events


def events_at_every_split(
    data: bytes, *, config: ReceiverConfig | None = None, decide: Decide = accept_all
) -> list[Event]:
    """The events for ``data``, checked to be the same at every split."""
    expected = run([data], config=config, decide=decide)
    for chunks in splits(data):
        assert run(chunks, config=config, decide=decide) == expected, chunks
    return expected


def receive(data: bytes, *, config: ReceiverConfig | None = None) -> Command:
    """The single command in ``data`` (literals accepted), the same at every split."""
    events = [
        e for e in events_at_every_split(data, config=config) if not isinstance(e, NeedLiteral)
    ]
    assert len(events) == 1 and isinstance(events[0], Command), events
    return events[0]


def parse(data: bytes, *, utf8: bool = False, **limits: Any) -> ImapCommand:
    """``data`` (one command with CRLF) received at every split, then parsed."""
    from postroom.imap.grammar.options import ParseLimits

    options = ParseOptions(utf8=utf8, limits=ParseLimits(**limits))
    return parse_command(receive(data), options)


def parse_error(data: bytes, *, utf8: bool = False, **limits: Any) -> ParseError:
    try:
        result = parse(data, utf8=utf8, **limits)
    except ParseError as exc:
        return exc
    raise AssertionError(f"parsed: {result!r}")


# --- reading responses back ------------------------------------------------------------

_TOKEN = re.compile(rb'\(|\)|"(?:[^"\\]|\\.)*"|~?\{\d+\}\r\n|[^\s()"{]+|\s')


def read_values(data: bytes) -> list[Any]:
    """A tiny independent reader for response data: atoms (bytes), quoted strings and
    literals (``str`` decoded UTF-8 / ``("literal", bytes)``), lists (Python lists)."""
    stack: list[list[Any]] = [[]]
    pos = 0
    while pos < len(data):
        m = _TOKEN.match(data, pos)
        assert m is not None, data[pos:]
        token = m.group()
        pos = m.end()
        if token == b"(":
            stack.append([])
        elif token == b")":
            done = stack.pop()
            stack[-1].append(done)
        elif token.startswith(b'"'):
            body = re.sub(rb'\\(["\\])', rb"\1", token[1:-1])
            stack[-1].append(body.decode("utf-8"))
        elif token.endswith(b"}\r\n"):
            size = int(token.strip(b"~{}\r\n"))
            stack[-1].append(("literal", data[pos : pos + size]))
            pos += size
        elif token.isspace():
            continue
        else:
            stack[-1].append(token)
    assert len(stack) == 1
    return stack[0]
