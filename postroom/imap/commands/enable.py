"""ENABLE (RFC 9051 section 6.3.1; RFC 5161): ``ENABLE 1*(SP capability)``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from postroom.imap.commands.base import Availability, ImapCommand
from postroom.imap.grammar.reader import Reader


@dataclass(frozen=True, slots=True, kw_only=True)
class Enable(ImapCommand):
    """``capabilities`` upper-cased, in the client's order, duplicates dropped."""

    capabilities: tuple[str, ...]

    # RFC 5161 section 3.1: only in the authenticated state, before any SELECT.
    available: ClassVar[Availability] = Availability.AUTHENTICATED


def parse_enable(r: Reader, tag: str, name: str) -> Enable:
    caps: list[str] = []
    r.sp()
    caps.append(r.keyword("a capability"))
    while r.take(b" "):
        caps.append(r.keyword("a capability"))
        if len(caps) > r.options.limits.max_enable:
            raise r.fail("Too many capabilities", code="LIMIT")
    r.end()
    return Enable(tag=tag, capabilities=tuple(dict.fromkeys(caps)))
