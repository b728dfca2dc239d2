"""What the SMTP server asks of the rest of Postroom: the backend contract.

Theory of operation: the asyncio shell (``server``) owns the session and the engine;
the backend owns policy and storage. The shell calls ``check_sender`` for MAIL,
``check_recipient`` for each RCPT and ``deliver`` once per message; each answers
with a ``Reply`` to send (``None`` for the default ``250``). Listener rules that
belong to the protocol (AUTH only under TLS, MAIL before AUTH on submission, sizes,
counts) are enforced by the engine and never reach the backend; relay refusal, unknown
users (``550 5.1.1``), quotas (``452 4.2.2`` / ``552 5.2.2``) and the like live here.

A backend that raises makes the shell answer ``451 4.3.0`` (temporary, the client
retries) and log the exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from postroom.net.listener import ConnectionInfo
from postroom.smtp.codes import Reply
from postroom.smtp.params import MailParams, RcptParams
from postroom.smtp.spool import SpooledMessage


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """Who is talking: connection facts, the HELO/EHLO name, the AUTH identity and
    the listener kind (``smtp``, ``submission``, ``submissions``)."""

    info: ConnectionInfo
    helo: str
    esmtp: bool
    authenticated_user: str | None
    listener: str

    @property
    def tls(self) -> bool:
        return self.info.tls


@dataclass(frozen=True, slots=True)
class Recipient:
    """One accepted RCPT: the address and its DSN parameters (RFC 3461)."""

    address: str
    notify: frozenset[str] | None = None
    orcpt: tuple[str, str] | None = None


@dataclass(slots=True)
class Envelope:
    """The transaction so far. ``mail_from`` is ``""`` for the null path ``<>``;
    ``recipients`` holds only accepted ones, in order; ``queue_id`` names the message
    in logs and in the Received header."""

    mail_from: str
    mail_params: MailParams
    queue_id: str
    recipients: list[Recipient] = field(default_factory=list)


class SmtpBackend(Protocol):
    """Policy and delivery for the SMTP server (implemented against the store)."""

    async def check_sender(
        self, session: SessionInfo, address: str, params: MailParams
    ) -> Reply | None:
        """MAIL FROM: ``None`` accepts (``250 2.1.0``); a reply refuses."""
        ...

    async def check_recipient(
        self, session: SessionInfo, envelope: Envelope, address: str, params: RcptParams
    ) -> Reply | None:
        """RCPT TO: ``None`` accepts (``250 2.1.5``); a reply refuses. ``envelope``
        holds the recipients accepted so far (not ``address`` yet)."""
        ...

    async def deliver(
        self, session: SessionInfo, envelope: Envelope, message: SpooledMessage
    ) -> Reply:
        """The message is complete (``message`` starts with our Received header).
        Return only once it is durable; the reply goes to the client as is."""
        ...
