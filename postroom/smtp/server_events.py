"""Events the SMTP server engine hands to its shell (see ``server_protocol``).

Three kinds:

* decisions — the engine stops until the shell answers with ``accept``/``reject``:
  ``MailFromRequested``, ``RcptToRequested``, ``DataComplete``; and
  ``AuthRequested``, answered through ``auth_challenge``/``auth_succeeded``/
  ``auth_failed`` (each ``AuthResponse`` during that exchange also waits for one);
* notices — no answer: ``MessageStarted``, ``DataChunk``, ``TransactionReset``,
  ``AuthAborted``;
* control — ``StartTlsRequested`` (flush, do the handshake, call ``tls_started``) and
  ``ConnectionClosed`` (flush what is queued and close).

``NEED_DATA`` and ``PAUSED`` are not events: the first asks for more bytes, the second
says a decision is pending (calling ``next_event`` again is a shell bug).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from postroom.smtp.address import Mailbox
from postroom.smtp.codes import Reply
from postroom.smtp.params import MailParams, RcptParams


class NeedData:
    """Sentinel: feed more bytes (``receive_data``) before asking again."""

    def __repr__(self) -> str:
        return "NEED_DATA"


class Paused:
    """Sentinel: a decision is pending; answer it first."""

    def __repr__(self) -> str:
        return "PAUSED"


NEED_DATA = NeedData()
PAUSED = Paused()


@dataclass(frozen=True, slots=True)
class MailFromRequested:
    """MAIL FROM passed syntax checks. ``address`` is ``""`` for ``<>``."""

    address: str
    mailbox: Mailbox | None
    params: MailParams


@dataclass(frozen=True, slots=True)
class RcptToRequested:
    """RCPT TO passed syntax and count checks."""

    address: str
    mailbox: Mailbox
    params: RcptParams


@dataclass(frozen=True, slots=True)
class MessageStarted:
    """Content is about to arrive (after ``354``, or with the first BDAT chunk)."""

    via: Literal["DATA", "BDAT"]


@dataclass(frozen=True, slots=True)
class DataChunk:
    """Message content, unstuffed, in order; never the whole message at once."""

    data: bytes


@dataclass(frozen=True, slots=True)
class DataComplete:
    """The content ended and passed the engine's checks; ``size`` is its length."""

    size: int


@dataclass(frozen=True, slots=True)
class TransactionReset:
    """The open transaction is gone (RSET, EHLO, a refused message ...): drop the
    envelope and any spooled content. The engine already answered the client."""

    reason: str


@dataclass(frozen=True, slots=True)
class AuthRequested:
    """AUTH with a mechanism offered in this session; ``initial`` is the decoded
    initial response (``b""`` for ``=``), ``None`` when the client sent none."""

    mechanism: str
    initial: bytes | None


@dataclass(frozen=True, slots=True)
class AuthResponse:
    """The client's decoded answer to the last ``auth_challenge``."""

    data: bytes


@dataclass(frozen=True, slots=True)
class AuthAborted:
    """The client cancelled (``*``) or sent garbage; ``reply`` was already sent
    and the exchange is over (not authenticated)."""

    reply: Reply


@dataclass(frozen=True, slots=True)
class StartTlsRequested:
    """``220 Ready to start TLS`` is queued; flush it, drop buffered input, start TLS."""


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """Flush what is queued and close. ``reason``: ``quit``, ``eof``, ``timeout``,
    ``errors``, ``shell``, ``http``."""

    reason: str


Event = (
    MailFromRequested
    | RcptToRequested
    | MessageStarted
    | DataChunk
    | DataComplete
    | TransactionReset
    | AuthRequested
    | AuthResponse
    | AuthAborted
    | StartTlsRequested
    | ConnectionClosed
)
