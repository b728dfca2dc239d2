"""The vocabulary shared by every SASL mechanism: the steps and the base class.

A mechanism answers each input with exactly one step (see ``postroom.auth.sasl`` for the
loop that drives it). Steps are frozen values so tests can compare whole transcripts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from postroom.auth.passwords import ScramCredentials

__all__ = [
    "Challenge",
    "Failure",
    "LookupScram",
    "Mechanism",
    "Step",
    "Success",
    "VerifyPassword",
]


@dataclass(frozen=True, slots=True)
class Challenge:
    """Send ``data`` to the client (the engine base64-encodes and frames it), then feed
    the client's decoded answer to ``Mechanism.respond``."""

    data: bytes


@dataclass(frozen=True, slots=True)
class VerifyPassword:
    """Check ``password`` (as the client sent it, not yet SASLprep'd) for ``authcid``;
    answer with ``Mechanism.password_result``. ``authzid`` is "" or equals ``authcid``
    (the mechanism has already refused anything else)."""

    authcid: str
    authzid: str
    password: str


@dataclass(frozen=True, slots=True)
class LookupScram:
    """Fetch the SCRAM-SHA-256 credentials of ``authcid`` (already SASLprep'd);
    answer with ``Mechanism.scram_credentials``."""

    authcid: str
    authzid: str


@dataclass(frozen=True, slots=True)
class Success:
    """Authenticated as ``user`` (the canonical account name the lookup returned).
    ``final_data`` is additional data with success (SCRAM's server-final-message)."""

    user: str
    final_data: bytes | None = None


@dataclass(frozen=True, slots=True)
class Failure:
    """The exchange is over and failed. ``malformed``: the client broke the protocol
    (SMTP 501, IMAP BAD, POP3 -ERR); otherwise the credentials were refused (SMTP 535,
    IMAP NO [AUTHENTICATIONFAILED], POP3 -ERR [AUTH]). ``reason`` is for logs, not for
    the client: it may say more than a client should learn."""

    reason: str
    malformed: bool = False


Step = Challenge | VerifyPassword | LookupScram | Success | Failure


class Mechanism:
    """One server-side SASL exchange (RFC 4422 §3). Use once, then drop.

    Every method returns the next ``Step``. Bad *client* input never raises: it ends in
    ``Failure``. Calling a method the last step did not ask for is a bug in the caller
    and raises ``RuntimeError``.
    """

    name: ClassVar[str]

    def start(self, initial_response: bytes | None) -> Step:
        """Begin; ``initial_response`` is the decoded initial response (RFC 4422 §3.3),
        ``b""`` for an empty one, None if the client sent none."""
        raise NotImplementedError

    def respond(self, data: bytes) -> Step:
        """The client's decoded answer to the last ``Challenge``."""
        raise self._out_of_order("respond")

    def password_result(self, user: str | None) -> Step:
        """The answer to ``VerifyPassword``: the canonical user, or None if wrong."""
        raise self._out_of_order("password_result")

    def scram_credentials(self, found: tuple[str, ScramCredentials] | None) -> Step:
        """The answer to ``LookupScram``: (canonical user, credentials), or None if the
        user is unknown or has no SCRAM credentials."""
        raise self._out_of_order("scram_credentials")

    def _out_of_order(self, method: str) -> RuntimeError:
        return RuntimeError(f"{self.name}: {method}() called in the wrong state")
