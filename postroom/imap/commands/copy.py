"""COPY, MOVE and their UID forms (RFC 9051 sections 6.4.7, 6.4.8, 6.4.9; MOVE is
RFC 6851): ``COPY SP sequence-set SP mailbox``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from postroom.imap.commands.base import Availability, ImapCommand
from postroom.imap.grammar.reader import Reader
from postroom.imap.grammar.sequence import SequenceSet


@dataclass(frozen=True, slots=True, kw_only=True)
class Copy(ImapCommand):
    sequence_set: SequenceSet
    mailbox: str
    uid: bool = False

    available: ClassVar[Availability] = Availability.SELECTED

    @property
    def name(self) -> str:
        return "UID COPY" if self.uid else "COPY"


@dataclass(frozen=True, slots=True, kw_only=True)
class Move(ImapCommand):
    sequence_set: SequenceSet
    mailbox: str
    uid: bool = False

    available: ClassVar[Availability] = Availability.SELECTED

    @property
    def name(self) -> str:
        return "UID MOVE" if self.uid else "MOVE"


def parse_copy(r: Reader, tag: str, name: str) -> Copy | Move:
    r.sp()
    sequence_set = r.sequence_set()
    r.sp()
    mailbox = r.mailbox()
    r.end()
    uid = name.startswith("UID ")
    if name.endswith("MOVE"):
        return Move(tag=tag, sequence_set=sequence_set, mailbox=mailbox, uid=uid)
    return Copy(tag=tag, sequence_set=sequence_set, mailbox=mailbox, uid=uid)
