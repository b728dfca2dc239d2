"""LOGIN (RFC 9051 section 6.2.3): ``LOGIN SP userid SP password``, both astrings.

Both are returned as text: UTF-8 (RFC 9051 section 6.2.3 allows UTF-8 user names with
SASLprep applied by the authenticator); anything else is BAD.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from postroom.imap.commands.base import Availability, ImapCommand
from postroom.imap.grammar.reader import Reader


@dataclass(frozen=True, slots=True, kw_only=True)
class Login(ImapCommand):
    username: str
    password: str = field(repr=False)

    available: ClassVar[Availability] = Availability.NOT_AUTHENTICATED


def parse_login(r: Reader, tag: str, name: str) -> Login:
    r.sp()
    user = r.astring("a user name")
    r.sp()
    password = r.astring("a password")
    r.end()
    try:
        return Login(tag=tag, username=user.decode("utf-8"), password=password.decode("utf-8"))
    except UnicodeDecodeError:
        raise r.fail("User name and password must be UTF-8") from None
