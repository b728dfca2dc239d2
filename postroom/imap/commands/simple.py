"""Commands without arguments.

RFC 9051 section 6.1.1 CAPABILITY, 6.1.2 NOOP, 6.1.3 LOGOUT, 6.2.1 STARTTLS,
6.3.10 NAMESPACE (RFC 2342), 6.3.13 IDLE (RFC 2177), 6.4.1 CLOSE, 6.4.2 UNSELECT
(RFC 3691), 6.4.3 EXPUNGE (see ``expunge``); CHECK is RFC 3501 section 6.4.1 (IMAP4rev1
only, equivalent to NOOP).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from postroom.imap.commands.base import Availability, ImapCommand
from postroom.imap.grammar.reader import Reader


@dataclass(frozen=True, slots=True, kw_only=True)
class Capability(ImapCommand):
    available: ClassVar[Availability] = Availability.ANY


@dataclass(frozen=True, slots=True, kw_only=True)
class Noop(ImapCommand):
    available: ClassVar[Availability] = Availability.ANY


@dataclass(frozen=True, slots=True, kw_only=True)
class Logout(ImapCommand):
    available: ClassVar[Availability] = Availability.ANY


@dataclass(frozen=True, slots=True, kw_only=True)
class StartTls(ImapCommand):
    available: ClassVar[Availability] = Availability.NOT_AUTHENTICATED


@dataclass(frozen=True, slots=True, kw_only=True)
class Namespace(ImapCommand):
    available: ClassVar[Availability] = Availability.AUTH_OR_SELECTED


@dataclass(frozen=True, slots=True, kw_only=True)
class Idle(ImapCommand):
    """IDLE: the shell answers ``+ idling`` and reads the ``DONE`` line in raw line mode
    (``CommandReceiver.expect_line``), RFC 2177 section 3."""

    available: ClassVar[Availability] = Availability.AUTH_OR_SELECTED


@dataclass(frozen=True, slots=True, kw_only=True)
class Close(ImapCommand):
    available: ClassVar[Availability] = Availability.SELECTED


@dataclass(frozen=True, slots=True, kw_only=True)
class Unselect(ImapCommand):
    available: ClassVar[Availability] = Availability.SELECTED


@dataclass(frozen=True, slots=True, kw_only=True)
class Check(ImapCommand):
    available: ClassVar[Availability] = Availability.SELECTED


_BY_NAME: dict[str, type[ImapCommand]] = {
    "CAPABILITY": Capability,
    "NOOP": Noop,
    "LOGOUT": Logout,
    "STARTTLS": StartTls,
    "NAMESPACE": Namespace,
    "IDLE": Idle,
    "CLOSE": Close,
    "UNSELECT": Unselect,
    "CHECK": Check,
}

NAMES = frozenset(_BY_NAME)


def parse_simple(r: Reader, tag: str, name: str) -> ImapCommand:
    """Any of the argument-less commands; extra arguments are BAD."""
    r.end()
    return _BY_NAME[name](tag=tag)
