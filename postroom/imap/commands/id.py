"""ID (RFC 2971 section 3.1; RFC 9051 lists it in command-any).

``ID SP ( "(" *(string SP nstring) ")" / NIL )``. Field names and values are decoded
as UTF-8 (replacing invalid sequences); RFC 2971 section 3.3 limits field names to 30
octets and values to 1024 - we bound the number of pairs only (``max_id_pairs``), and
leave truncating to whoever logs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from postroom.imap.commands.base import Availability, ImapCommand
from postroom.imap.grammar.reader import Reader


@dataclass(frozen=True, slots=True, kw_only=True)
class Id(ImapCommand):
    """``params`` is ``None`` for ``ID NIL``; otherwise (field, value-or-None) pairs."""

    params: tuple[tuple[str, str | None], ...] | None

    available: ClassVar[Availability] = Availability.ANY


def parse_id(r: Reader, tag: str, name: str) -> Id:
    r.sp()
    if r.peek_atom() == "NIL":
        r.atom()
        r.end()
        return Id(tag=tag, params=None)
    r.expect(b"(")
    pairs: list[tuple[str, str | None]] = []
    if not r.take(b")"):
        while True:
            key = r.string().decode("utf-8", "replace")
            r.sp()
            raw = r.nstring()
            pairs.append((key, None if raw is None else raw.decode("utf-8", "replace")))
            if len(pairs) > r.options.limits.max_id_pairs:
                raise r.fail("Too many ID parameters", code="LIMIT")
            if r.take(b")"):
                break
            r.sp()
    r.end()
    return Id(tag=tag, params=tuple(pairs))
