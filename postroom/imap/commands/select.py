"""SELECT and EXAMINE (RFC 9051 sections 6.3.2, 6.3.3) with their parameters.

``SELECT SP mailbox [SP "(" select-param *(SP select-param) ")"]`` (RFC 4466 section 2.4)
where a select-param is ``CONDSTORE`` (RFC 7162 section 3.1.8) or
``QRESYNC SP "(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data]
")"`` (RFC 7162 section 3.2.5), ``seq-match-data = "(" known-sequence-set SP
known-uid-set ")"``. ``known-uids`` must not contain ``*``. Unknown parameters are BAD
(RFC 4466 section 2.4). Whether QRESYNC was enabled first is the handler's business
(RFC 7162 section 3.2.5: otherwise BAD).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from postroom.imap.commands.base import Availability, ImapCommand
from postroom.imap.grammar.reader import Reader
from postroom.imap.grammar.sequence import SequenceSet


@dataclass(frozen=True, slots=True)
class QresyncParams:
    """The client's cached state (RFC 7162 section 3.2.5)."""

    uidvalidity: int
    modseq: int
    known_uids: SequenceSet | None = None
    # (known-sequence-set, known-uid-set), matched element by element
    seq_match: tuple[SequenceSet, SequenceSet] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Select(ImapCommand):
    """SELECT, or EXAMINE when ``read_only``."""

    mailbox: str
    read_only: bool = False
    condstore: bool = False
    qresync: QresyncParams | None = None

    available: ClassVar[Availability] = Availability.AUTH_OR_SELECTED

    @property
    def name(self) -> str:
        return "EXAMINE" if self.read_only else "SELECT"


def parse_select(r: Reader, tag: str, name: str) -> Select:
    r.sp()
    mailbox = r.mailbox()
    condstore = False
    qresync: QresyncParams | None = None
    if r.take(b" "):
        r.expect(b"(")
        while True:
            param = r.keyword("a SELECT parameter")
            if param == "CONDSTORE" and not condstore:
                condstore = True
            elif param == "QRESYNC" and qresync is None:
                r.sp()
                qresync = _qresync(r)
            else:
                raise r.fail(f"Unknown or repeated SELECT parameter {param}")
            if r.take(b")"):
                break
            r.sp()
    r.end()
    return Select(
        tag=tag, mailbox=mailbox, read_only=name == "EXAMINE", condstore=condstore, qresync=qresync
    )


def _qresync(r: Reader) -> QresyncParams:
    r.expect(b"(")
    uidvalidity = r.number(nonzero=True)
    r.sp()
    modseq = r.number64()  # lenient: 0 accepted ("no state yet")
    known: SequenceSet | None = None
    match: tuple[SequenceSet, SequenceSet] | None = None
    if r.take(b" "):
        if r.peek() != 0x28:  # "("
            known = r.sequence_set(allow_star=False, allow_saved=False)
            if r.take(b" "):
                match = _seq_match(r)
        else:
            match = _seq_match(r)
    r.expect(b")")
    return QresyncParams(uidvalidity, modseq, known, match)


def _seq_match(r: Reader) -> tuple[SequenceSet, SequenceSet]:
    r.expect(b"(")
    seqs = r.sequence_set(allow_star=False, allow_saved=False)
    r.sp()
    uids = r.sequence_set(allow_star=False, allow_saved=False)
    r.expect(b")")
    return seqs, uids
