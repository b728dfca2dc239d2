"""The resolver interface the relay uses, and its errors.

Theory of operation: routing (``postroom.queue.routing``) needs four questions answered —
MX, A, AAAA and TXT — and needs to know *why* an answer is empty, because RFC 5321
section 5.1 and RFC 7505 give each case a different outcome:

* the name does not exist (NXDOMAIN)           -> ``NxDomain`` (permanent)
* the name exists but has no record of the type -> an empty list (NODATA)
* the lookup could not be completed (SERVFAIL, timeout, no server answered)
                                                -> ``DnsTemporaryError`` (try later)

Implementations: ``real.DnsResolver`` (dnspython, the system's or a configured
server), ``mock.MockResolver`` (tests, from dicts). Names are given without a
trailing dot; results are lowercased host names without a trailing dot (MX), textual
IP addresses (A/AAAA) or decoded strings (TXT, the character-strings joined).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class DnsError(Exception):
    """Base of lookup failures. ``temporary`` says whether asking again later may help."""

    temporary = True


class NxDomain(DnsError):
    """The queried name does not exist (RCODE NXDOMAIN): a permanent condition."""

    temporary = False


class DnsTemporaryError(DnsError):
    """SERVFAIL, timeout, no reachable server: the answer is unknown for now."""

    temporary = True


@dataclass(frozen=True, slots=True, order=True)
class MxRecord:
    """One MX record. ``exchange`` is ``""`` for the null MX target "." (RFC 7505)."""

    preference: int
    exchange: str

    @property
    def is_null(self) -> bool:
        """RFC 7505 section 3: preference 0 and the root as exchange."""
        return self.exchange == "" and self.preference == 0


class Resolver(Protocol):
    """What the relay asks DNS. Every method raises ``NxDomain`` or
    ``DnsTemporaryError``; an empty list means the name exists without such records."""

    async def mx(self, domain: str) -> list[MxRecord]: ...

    async def a(self, host: str) -> list[str]: ...

    async def aaaa(self, host: str) -> list[str]: ...

    async def txt(self, name: str) -> list[str]: ...


def normalize_name(name: str) -> str:
    """Lowercase, no trailing dot: the key form used by the mock and the test server."""
    return name.rstrip(".").lower()
