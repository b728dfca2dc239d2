"""QUOTA (RFC 9208): GETQUOTA, GETQUOTAROOT, SETQUOTA.

Syntax (RFC 9208 section 7)::

    getquota          = "GETQUOTA" SP quota-root-name
    getquotaroot      = "GETQUOTAROOT" SP mailbox
    setquota          = "SETQUOTA" SP quota-root-name SP setquota-list
    setquota-list     = "(" [setquota-resource *(SP setquota-resource)] ")"
    setquota-resource = resource-name SP resource-limit
    resource-name     = "STORAGE" / "MESSAGE" / "MAILBOX" / "ANNOTATION-STORAGE" / atom
    resource-limit    = number64
    quota-root-name   = astring

Quota root names are taken as UTF-8 text (a root is not a mailbox: no modified UTF-7
decoding); the GETQUOTAROOT mailbox is decoded like every other mailbox name. SETQUOTA is
parsed completely even though users may not change their quota, so that a malformed one
gets BAD rather than NO.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from postroom.imap.commands.base import Availability, ImapCommand
from postroom.imap.grammar.reader import Reader

MAX_SETQUOTA_RESOURCES = 100  # more pairs than any server has resources: a LIMIT


@dataclass(frozen=True, slots=True, kw_only=True)
class GetQuota(ImapCommand):
    """RFC 9208 section 4.1.1."""

    root: str

    available: ClassVar[Availability] = Availability.AUTH_OR_SELECTED


@dataclass(frozen=True, slots=True, kw_only=True)
class GetQuotaRoot(ImapCommand):
    """RFC 9208 section 4.1.2."""

    mailbox: str

    available: ClassVar[Availability] = Availability.AUTH_OR_SELECTED


@dataclass(frozen=True, slots=True, kw_only=True)
class SetQuota(ImapCommand):
    """RFC 9208 section 4.1.3. ``limits``: (resource name upper-cased, limit) in the
    client's order; an empty tuple asks to remove every limit of the root."""

    root: str
    limits: tuple[tuple[str, int], ...]

    available: ClassVar[Availability] = Availability.AUTH_OR_SELECTED


def parse_getquota(r: Reader, tag: str, name: str) -> GetQuota:
    r.sp()
    root = r.text_astring("a quota root name")
    r.end()
    return GetQuota(tag=tag, root=root)


def parse_getquotaroot(r: Reader, tag: str, name: str) -> GetQuotaRoot:
    r.sp()
    mailbox = r.mailbox()
    r.end()
    return GetQuotaRoot(tag=tag, mailbox=mailbox)


def parse_setquota(r: Reader, tag: str, name: str) -> SetQuota:
    r.sp()
    root = r.text_astring("a quota root name")
    r.sp()
    r.expect(b"(", "a parenthesised list of resource limits")
    limits: list[tuple[str, int]] = []
    if not r.take(b")"):
        limits.append(_setquota_resource(r))
        while not r.take(b")"):
            r.sp()
            limits.append(_setquota_resource(r))
            if len(limits) > MAX_SETQUOTA_RESOURCES:
                raise r.fail("Too many resource limits", code="LIMIT")
    r.end()
    return SetQuota(tag=tag, root=root, limits=tuple(limits))


def _setquota_resource(r: Reader) -> tuple[str, int]:
    """``resource-name SP resource-limit``."""
    resource = r.keyword("a resource name")
    r.sp()
    return resource, r.number64()
