"""STORE and UID STORE (RFC 9051 section 6.4.6), with UNCHANGEDSINCE (RFC 7162).

store = "STORE" SP sequence-set [store-modifiers] SP store-att-flags
store-modifiers = SP "(" store-modifier *(SP store-modifier) ")"   ; RFC 4466 2.5
store-modifier = "UNCHANGEDSINCE" SP mod-sequence-valzer          ; RFC 7162 3.1.3
store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP (flag-list / (flag *(SP flag)))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from postroom.imap.commands.base import Availability, ImapCommand
from postroom.imap.grammar.reader import MAX_NUMBER64, Reader
from postroom.imap.grammar.sequence import SequenceSet

StoreMode = Literal["replace", "add", "remove"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Store(ImapCommand):
    """``mode``: FLAGS (``replace``), +FLAGS (``add``), -FLAGS (``remove``); ``silent``
    for ``.SILENT``. ``flags`` keep the client's order; system flags in canonical case."""

    sequence_set: SequenceSet
    mode: StoreMode
    flags: tuple[str, ...]
    silent: bool = False
    uid: bool = False
    unchanged_since: int | None = None

    available: ClassVar[Availability] = Availability.SELECTED

    @property
    def name(self) -> str:
        return "UID STORE" if self.uid else "STORE"


def parse_store(r: Reader, tag: str, name: str) -> Store:
    r.sp()
    sequence_set = r.sequence_set()
    r.sp()
    unchanged_since: int | None = None
    if r.take(b"("):
        while True:
            mod = r.keyword("a STORE modifier")
            if mod != "UNCHANGEDSINCE" or unchanged_since is not None:
                raise r.fail(f"Unknown or repeated STORE modifier {mod}")
            r.sp()
            unchanged_since = r.number(maximum=MAX_NUMBER64)
            if r.take(b")"):
                break
            r.sp()
        r.sp()
    mode: StoreMode = "add" if r.take(b"+") else "remove" if r.take(b"-") else "replace"
    item = r.keyword("FLAGS or FLAGS.SILENT")
    if item not in ("FLAGS", "FLAGS.SILENT"):
        raise r.fail(f"Unknown STORE item {item}")
    r.sp()
    flags = r.flag_list() if r.peek() == 0x28 else r.flags_bare()
    r.end()
    return Store(
        tag=tag,
        uid=name == "UID STORE",
        sequence_set=sequence_set,
        mode=mode,
        flags=flags,
        silent=item == "FLAGS.SILENT",
        unchanged_since=unchanged_since,
    )
