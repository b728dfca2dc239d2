"""What the protocol shells call to authenticate: an account lookup and the SASL loop.

Theory of operation: the mechanisms in ``postroom.auth.sasl`` are sans-IO and the
protocol engines stay free of awaits; ``run_sasl`` is the one place that awaits the
client (through ``ask``) and the account directory (through an ``Authenticator``). A
shell's AUTH/AUTHENTICATE handler is then::

    mech = new_mechanism(name)                       # None: unknown mechanism
    outcome = await run_sasl(mech, initial, ask, authenticator)
    # Success(user, None) -> 235 / OK / +OK;  Failure(_, malformed) -> see Failure

``ask(challenge)`` sends ``encode_sasl_base64(challenge)`` in the protocol's framing
(SMTP ``334 <b64>``, IMAP and POP3 ``+ <b64>``), reads one line and returns it decoded
with ``decode_sasl_base64``; None if the line was ``*`` (the client cancels, RFC 4954
§4, RFC 9051 §6.2.2, RFC 5034 §4); it raises ``MalformedResponse`` if the line is not
base64.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from postroom.auth.passwords import ScramCredentials
from postroom.auth.steps import (
    Challenge,
    Failure,
    LookupScram,
    Mechanism,
    Success,
    VerifyPassword,
)

__all__ = ["Ask", "Authenticator", "MalformedResponse", "run_sasl"]


class Authenticator(Protocol):
    """The account directory as SASL needs it. Implementations run argon2 and the store
    off the event loop; they may raise for a *temporary* failure (database down),
    which ``run_sasl`` lets through so the shell answers 454 / NO [UNAVAILABLE]."""

    async def verify_password(self, username: str, password: str) -> str | None:
        """The canonical account name if ``password`` is right for ``username``, else
        None. ``password`` is as the client sent it; ``passwords.verify_password``
        applies SASLprep."""
        ...

    async def scram_credentials(self, username: str) -> tuple[str, ScramCredentials] | None:
        """(canonical account name, SCRAM-SHA-256 credentials) for ``username``, or None
        if the account is unknown or has no SCRAM credentials stored."""
        ...


Ask = Callable[[bytes], Awaitable[bytes | None]]


class MalformedResponse(Exception):
    """Raised by an ``ask`` callback when the client's answer is not valid base64 (or
    otherwise unreadable); ``run_sasl`` ends the exchange with a malformed Failure."""


async def run_sasl(
    mechanism: Mechanism,
    initial: bytes | None,
    ask: Ask,
    authenticator: Authenticator,
    *,
    final_data_as_challenge: bool = True,
) -> Success | Failure:
    """Drive ``mechanism`` to its outcome. ``initial`` is the decoded initial response
    (None: none was sent; ``b""``: the client sent ``=``).

    Additional data with success (SCRAM's server-final-message): with
    ``final_data_as_challenge`` (the default) it is sent with ``ask`` as one last
    challenge and the client must answer with an empty response: the fallback RFC
    4422 §4 gives every protocol, and the only form for SMTP, whose 235 reply carries
    no data. The returned ``Success`` then has ``final_data=None``. Pass False if the shell sends it
    with the outcome itself; it is then left in ``Success.final_data``.

    Never raises for client behaviour; exceptions from ``ask`` other than
    ``MalformedResponse`` (connection lost) and from ``authenticator`` propagate.
    """
    step = mechanism.start(initial)
    while True:
        match step:
            case Challenge(data):
                answer = await _ask(ask, data)
                if isinstance(answer, Failure):
                    return answer
                step = mechanism.respond(answer)
            case VerifyPassword(authcid, _authzid, password):
                user = await authenticator.verify_password(authcid, password)
                step = mechanism.password_result(user)
            case LookupScram(authcid, _authzid):
                found = await authenticator.scram_credentials(authcid)
                step = mechanism.scram_credentials(found)
            case Success(user, final_data) if final_data is not None and final_data_as_challenge:
                answer = await _ask(ask, final_data)
                if isinstance(answer, Failure):
                    return answer
                if answer:
                    return Failure("non-empty answer to the final server message", malformed=True)
                return Success(user, None)
            case Success() | Failure():
                return step


async def _ask(ask: Ask, challenge: bytes) -> bytes | Failure:
    try:
        answer = await ask(challenge)
    except MalformedResponse:
        return Failure("client response is not valid base64", malformed=True)
    if answer is None:
        return Failure("cancelled")
    return answer
