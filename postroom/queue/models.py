"""What the outbound queue holds and passes around.

A ``QueueEntry`` is one queued message (its envelope sender, DSN envelope parameters,
arrival time, size) with its recipients; each ``QueueRecipient`` has its own state,
attempt count, next attempt time and last reply, because one message can go to many
domains, each with its own fate. ``RecipientUpdate`` is what one delivery attempt
writes back.

The store keeps NOTIFY as text (``""`` or a comma list, ``"NEVER"``) and ORCPT as
``"addr-type;address"`` (the address decoded from xtext); ``notify_text`` /
``parse_notify`` and ``orcpt_text`` / ``parse_orcpt`` convert from and to the SMTP
parameter values (``postroom.smtp.params.RcptParams``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

RecipientState = Literal["pending", "delivered", "failed"]

PENDING: RecipientState = "pending"
DELIVERED: RecipientState = "delivered"
FAILED: RecipientState = "failed"


@dataclass(frozen=True, slots=True)
class QueueRecipient:
    id: int
    address: str
    notify: str = ""
    orcpt: str = ""
    state: RecipientState = "pending"
    attempts: int = 0
    next_attempt: float = 0.0
    last_reply: str = ""

    @property
    def domain(self) -> str:
        """The part after the last "@" (an address literal keeps its brackets)."""
        return self.address.rpartition("@")[2]


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """One queued message. ``recipients`` holds what the query asked for: the due
    ones (``QueueStore.due``) or all of them (``QueueStore.get``)."""

    id: int
    message_id: int
    mail_from: str
    envid: str
    ret: str
    created: float
    size: int
    recipients: tuple[QueueRecipient, ...]


@dataclass(frozen=True, slots=True)
class RecipientUpdate:
    """The new state of one recipient after an attempt."""

    recipient_id: int
    state: RecipientState
    attempts: int
    next_attempt: float
    last_reply: str


def notify_text(notify: Iterable[str] | None) -> str:
    """``frozenset({"SUCCESS", "FAILURE"})`` -> ``"SUCCESS,FAILURE"``; None -> ``""``."""
    if not notify:
        return ""
    order = ["NEVER", "SUCCESS", "FAILURE", "DELAY"]
    values = {v.upper() for v in notify}
    return ",".join(v for v in order if v in values)


def parse_notify(text: str) -> frozenset[str] | None:
    """Inverse of ``notify_text``: ``""`` -> None (no NOTIFY given)."""
    values = frozenset(v.strip().upper() for v in text.split(",") if v.strip())
    return values or None


def orcpt_text(orcpt: tuple[str, str] | None) -> str:
    """``("rfc822", "a@b")`` -> ``"rfc822;a@b"``; None -> ``""``."""
    return f"{orcpt[0]};{orcpt[1]}" if orcpt else ""


def parse_orcpt(text: str) -> tuple[str, str] | None:
    addr_type, sep, address = text.partition(";")
    if not sep or not addr_type or not address:
        return None
    return addr_type.lower(), address


def wants(notify: str, kind: str) -> bool:
    """Does this recipient's NOTIFY ask for ``kind`` (SUCCESS, FAILURE, DELAY)?

    RFC 3461 section 4.1: without NOTIFY the MTA decides; we report failures and
    delays (when delay warnings are on) and never successes.
    """
    values = parse_notify(notify)
    if values is None:
        return kind in ("FAILURE", "DELAY")
    return kind in values
