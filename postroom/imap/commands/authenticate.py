"""AUTHENTICATE (RFC 9051 section 6.2.2) with SASL-IR (RFC 4959).

``AUTHENTICATE SP auth-type [SP initial-resp]``; ``initial-resp = base64 / "="``, where
``=`` is an empty initial response (RFC 4959 section 3). The continuation lines of the
exchange are read by the shell in raw line mode (``CommandReceiver.expect_line``); a line
``*`` cancels (RFC 9051 section 6.2.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from postroom.auth.sasl import decode_sasl_base64
from postroom.imap.commands.base import Availability, ImapCommand
from postroom.imap.grammar.reader import Reader


@dataclass(frozen=True, slots=True, kw_only=True)
class Authenticate(ImapCommand):
    """``mechanism`` upper-cased; ``initial_response`` decoded from base64 (``b""`` for
    ``=``), ``None`` when absent."""

    mechanism: str
    initial_response: bytes | None = None

    available: ClassVar[Availability] = Availability.NOT_AUTHENTICATED


def parse_authenticate(r: Reader, tag: str, name: str) -> Authenticate:
    r.sp()
    mechanism = r.keyword("a SASL mechanism name")
    initial: bytes | None = None
    if r.take(b" "):
        raw = r.atom("a base64 initial response")
        decoded = decode_sasl_base64(raw)
        if decoded is None or raw == b"":
            raise r.fail("Invalid base64 in the initial response")
        initial = decoded
    r.end()
    return Authenticate(tag=tag, mechanism=mechanism, initial_response=initial)
