"""Commands on one or two mailbox names: DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE.

RFC 9051 sections 6.3.5 (DELETE), 6.3.6 (RENAME), 6.3.7 (SUBSCRIBE), 6.3.8
(UNSUBSCRIBE). Names are decoded per the session (``Reader.mailbox``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from postroom.imap.commands.base import Availability, ImapCommand
from postroom.imap.grammar.reader import Reader


@dataclass(frozen=True, slots=True, kw_only=True)
class Delete(ImapCommand):
    mailbox: str
    available: ClassVar[Availability] = Availability.AUTH_OR_SELECTED


@dataclass(frozen=True, slots=True, kw_only=True)
class Rename(ImapCommand):
    mailbox: str
    new_name: str
    available: ClassVar[Availability] = Availability.AUTH_OR_SELECTED


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscribe(ImapCommand):
    mailbox: str
    available: ClassVar[Availability] = Availability.AUTH_OR_SELECTED


@dataclass(frozen=True, slots=True, kw_only=True)
class Unsubscribe(ImapCommand):
    mailbox: str
    available: ClassVar[Availability] = Availability.AUTH_OR_SELECTED


def parse_delete(r: Reader, tag: str, name: str) -> Delete:
    r.sp()
    mailbox = r.mailbox()
    r.end()
    return Delete(tag=tag, mailbox=mailbox)


def parse_rename(r: Reader, tag: str, name: str) -> Rename:
    r.sp()
    old = r.mailbox()
    r.sp()
    new = r.new_mailbox()
    r.end()
    return Rename(tag=tag, mailbox=old, new_name=new)


def parse_subscribe(r: Reader, tag: str, name: str) -> Subscribe | Unsubscribe:
    r.sp()
    mailbox = r.mailbox()
    r.end()
    if name == "SUBSCRIBE":
        return Subscribe(tag=tag, mailbox=mailbox)
    return Unsubscribe(tag=tag, mailbox=mailbox)
