"""What every parsed command shares: its tag, its name, the states it is valid in."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import ClassVar


class Availability(enum.Flag):
    """The connection states a command is valid in (RFC 9051 section 3 and 6)."""

    NOT_AUTHENTICATED = enum.auto()
    AUTHENTICATED = enum.auto()
    SELECTED = enum.auto()
    AUTH_OR_SELECTED = AUTHENTICATED | SELECTED
    ANY = NOT_AUTHENTICATED | AUTHENTICATED | SELECTED


@dataclass(frozen=True, slots=True, kw_only=True)
class ImapCommand:
    """Base of every parsed command.

    ``name`` is the command as the client named it, upper-cased (``"UID FETCH"``,
    ``"EXAMINE"``); ``available`` the states it is valid in.
    """

    tag: str

    available: ClassVar[Availability] = Availability.ANY

    @property
    def name(self) -> str:
        return type(self).__name__.upper()
