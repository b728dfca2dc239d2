"""APPEND with MULTIAPPEND, BINARY and UTF8 (RFC 9051 section 6.3.12).

    append = "APPEND" SP mailbox 1*append-message          ; RFC 3502 section 6
    append-message = append-opts SP append-data
    append-opts = [SP flag-list] [SP date-time]
    append-data = literal / literal8                       ; literal8: RFC 3516 section 4.4
                / "UTF8" SP "(" literal8 ")"               ; RFC 6855 section 4

The message bytes are the receiver's literal objects, passed on without copying.
CATENATE (RFC 4469) is not supported: BAD. A plain literal may not contain NUL
(``CHAR8``, RFC 9051 section 9) but the parser does not scan message bodies for it: the
handler, which sees ``binary``, decides.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import ClassVar

from postroom.imap.commands.base import Availability, ImapCommand
from postroom.imap.errors import ParseError
from postroom.imap.grammar.options import ParseOptions
from postroom.imap.grammar.reader import TAG_RE, Reader


@dataclass(frozen=True, slots=True)
class AppendMessage:
    """One message of an APPEND: ``binary`` when sent as ``literal8``, ``utf8`` when
    wrapped in ``UTF8 (...)`` (RFC 6855 section 4)."""

    data: bytes = field(repr=False)
    flags: tuple[str, ...] = ()
    internal_date: datetime.datetime | None = None
    binary: bool = False
    utf8: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Append(ImapCommand):
    mailbox: str
    messages: tuple[AppendMessage, ...]

    available: ClassVar[Availability] = Availability.AUTH_OR_SELECTED


def parse_append(r: Reader, tag: str, name: str) -> Append:
    r.sp()
    mailbox = r.mailbox()
    messages: list[AppendMessage] = []
    while True:
        r.sp()
        messages.append(_message(r))
        if len(messages) > r.options.limits.max_append_messages:
            raise r.fail("Too many messages in one APPEND", code="LIMIT")
        if r.at_end:
            break
    return Append(tag=tag, mailbox=mailbox, messages=tuple(messages))


def _message(r: Reader) -> AppendMessage:
    flags: tuple[str, ...] = ()
    date: datetime.datetime | None = None
    if r.peek() == 0x28:  # "("
        flags = r.flag_list()
        r.sp()
    if r.peek() == 0x22:  # '"'
        date = r.date_time()
        r.sp()
    if r.is_literal_next():
        data, binary = r.literal(allow_binary=True)
        return AppendMessage(data, flags, date, binary)
    word = r.keyword("a message literal")
    if word != "UTF8":
        raise r.fail(f"Unsupported APPEND data {word}")
    r.sp()
    r.expect(b"(")
    data, binary = r.literal(allow_binary=True)
    if not binary:
        raise r.fail("UTF8 APPEND data must be a literal8")
    r.expect(b")")
    return AppendMessage(data, flags, date, binary, utf8=True)


def append_mailbox(line: bytes, options: ParseOptions | None = None) -> str | None:
    """The target mailbox of an APPEND from its first line (``NeedLiteral.line`` of the
    first literal), before the message arrives - so the shell can refuse early (``NO
    [TRYCREATE]``, ``NO [TOOBIG]`` against that mailbox's APPENDLIMIT). ``None`` when the
    name is itself a literal or the line is not a readable APPEND."""
    r = Reader([line], options=options)
    try:
        if r.match(TAG_RE) is None:
            return None
        r.sp()
        if r.keyword() != "APPEND":
            return None
        r.sp()
        if r.is_literal_next():
            return None
        return r.mailbox()
    except ParseError:
        return None
