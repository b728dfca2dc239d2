"""EXPUNGE (RFC 9051 section 6.4.3) and UID EXPUNGE (RFC 9051 section 6.4.9; RFC 4315
section 2.1): ``"UID" SP "EXPUNGE" SP sequence-set``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from postroom.imap.commands.base import Availability, ImapCommand
from postroom.imap.grammar.reader import Reader
from postroom.imap.grammar.sequence import SequenceSet


@dataclass(frozen=True, slots=True, kw_only=True)
class Expunge(ImapCommand):
    """``uids`` is the UID set of UID EXPUNGE, ``None`` for plain EXPUNGE."""

    uids: SequenceSet | None = None

    available: ClassVar[Availability] = Availability.SELECTED

    @property
    def name(self) -> str:
        return "EXPUNGE" if self.uids is None else "UID EXPUNGE"


def parse_expunge(r: Reader, tag: str, name: str) -> Expunge:
    uids: SequenceSet | None = None
    if name == "UID EXPUNGE":
        r.sp()
        uids = r.sequence_set()
    r.end()
    return Expunge(tag=tag, uids=uids)
