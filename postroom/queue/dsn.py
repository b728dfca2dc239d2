"""Delivery status notifications: RFC 3464 multipart/report messages to the sender.

Theory of operation: ``build_dsn`` writes one notification for one queued message
and a set of its recipients sharing an action (failed, delayed, delivered, relayed;
RFC 3464 section 2.3.3). The message is ``multipart/report;
report-type=delivery-status`` (RFC 6522) with three parts:

1. a short human-readable explanation (text/plain),
2. the machine-readable ``message/delivery-status``: per-message fields
   (Reporting-MTA, Original-Envelope-Id, Arrival-Date; section 2.2) and a block of
   per-recipient fields each (Original-Recipient, Final-Recipient, Action, Status,
   Remote-MTA, Diagnostic-Code, Last-Attempt-Date, Will-Retry-Until; section 2.3),
3. the original: the whole message (``message/rfc822``) or only its header
   (``text/rfc822-headers``). ``returns_full`` applies RFC 3461 section 4.3: the
   content comes back only in failure reports, unless the sender asked RET=HDRS, and
   not beyond ``max_full`` octets.

When an address or the original header is not ASCII the RFC 6533 types are used
(``message/global-delivery-status``, ``message/global``,
``message/global-headers``) and addresses are typed ``utf-8``.

Who gets a DSN is decided elsewhere (``scheduler.decide``): never the null sender,
never against NOTIFY. The result is sent with the null reverse-path, so a DSN about a
DSN cannot happen (RFC 3461 section 6.2 / RFC 5321 section 4.5.5).
"""

from __future__ import annotations

import email.utils
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from postroom.queue.models import parse_orcpt
from postroom.queue.scheduler import DsnAction
from postroom.smtp.codes import Reply

MAX_FULL_RETURN = 10 * 1024 * 1024

_SUBJECTS: dict[str, str] = {
    "failed": "Undelivered Mail Returned to Sender",
    "delayed": "Delayed Mail (still being retried)",
    "delivered": "Successful Mail Delivery Report",
    "relayed": "Mail Relayed: No Further Notification",
}

_INTRO: dict[str, str] = {
    "failed": "Your message could not be delivered to the recipients below. The"
    " mail system gave up; the reasons follow.",
    "delayed": "Your message has not been delivered yet to the recipients below."
    " The mail system keeps trying; you do not need to send it again.",
    "delivered": "Your message was delivered to the recipients below.",
    "relayed": "Your message was passed on to the recipients' mail system below,"
    " which does not send delivery notifications: this is the last report"
    " you will get for them.",
}


@dataclass(frozen=True, slots=True)
class DsnRecipient:
    address: str
    action: DsnAction
    reply: Reply  # the remote reply (or ours: routing, expiry)
    orcpt: str = ""  # "addr-type;address" as queued
    remote_mta: str = ""  # host name of the server that answered, when one did
    last_attempt: float | None = None
    will_retry_until: float | None = None


def status_of(reply: Reply) -> str:
    """The RFC 3463 status: the reply's enhanced code, else its class alone."""
    if reply.enhanced:
        return reply.enhanced
    return f"{reply.code // 100}.0.0"


def header_section(message: bytes) -> bytes:
    """The header of ``message`` (up to and including the empty line)."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = message.find(sep)
        if i >= 0:
            return message[: i + len(sep)]
    return message if message.endswith(b"\n") else message + b"\r\n"


def returns_full(
    ret: str, actions: Sequence[str], size: int, max_full: int = MAX_FULL_RETURN
) -> bool:
    """RFC 3461 section 4.3: full content only in failure reports, unless RET=HDRS."""
    return "failed" in actions and ret.upper() != "HDRS" and size <= max_full


def _clean(text: str) -> str:
    """One header-safe line: no CR/LF/controls."""
    return " ".join("".join(c if c >= " " else " " for c in text).split())


def _fold(name: str, value: str) -> str:
    """``Name: value`` folded at spaces to about 78 columns (RFC 5322 2.2.3)."""
    words = _clean(value).split(" ")
    lines: list[str] = []
    current = f"{name}:"
    for word in words:
        if len(current) + 1 + len(word) > 78 and current.strip() and current != f"{name}:":
            lines.append(current)
            current = " " + word
        else:
            current += " " + word
    lines.append(current)
    return "\r\n".join(lines) + "\r\n"


def _addr_type(address: str) -> str:
    return "rfc822" if address.isascii() else "utf-8"


def _date(t: float) -> str:
    return email.utils.formatdate(t, localtime=False)


def _diagnostic(reply: Reply) -> str:
    enhanced = f" {reply.enhanced}" if reply.enhanced else ""
    return f"smtp; {reply.code}{enhanced} {' '.join(reply.lines())}"


def build_dsn(
    *,
    reporting_mta: str,
    sender: str,
    recipients: Sequence[DsnRecipient],
    original: bytes,
    full: bool,
    envid: str = "",
    arrival: float,
    now: float,
) -> bytes:
    """The DSN message (CRLF line ends) to send from ``<>`` to ``sender``.

    ``original`` is the queued message; ``full`` returns it whole, else only its
    header. ``recipients`` share one action (it sets the subject).
    """
    if not recipients:
        raise ValueError("a DSN needs at least one recipient")
    action = recipients[0].action
    returned = original if full else header_section(original)
    head_end = returned.find(b"\r\n\r\n")
    utf8 = (
        not sender.isascii()
        or any(not r.address.isascii() for r in recipients)
        or not returned[: head_end if head_end >= 0 else len(returned)].isascii()
    )
    boundary = f"=_postroom_{secrets.token_hex(12)}"
    message_id = f"<{secrets.token_hex(16)}@{reporting_mta}>"

    out: list[str] = [
        f"From: Mail Delivery System <MAILER-DAEMON@{reporting_mta}>\r\n",
        f"To: <{sender}>\r\n",
        f"Subject: {_SUBJECTS[action]}\r\n",
        f"Date: {_date(now)}\r\n",
        f"Message-ID: {message_id}\r\n",
        "Auto-Submitted: auto-replied\r\n",  # RFC 3834 section 5
        "MIME-Version: 1.0\r\n",
        "Content-Type: multipart/report; report-type=delivery-status;\r\n"
        f'\tboundary="{boundary}"\r\n',
        "\r\n",
        "This is a MIME-formatted delivery status notification.\r\n",
        "\r\n",
        f"--{boundary}\r\n",
        f"Content-Type: text/plain; charset={'utf-8' if utf8 else 'us-ascii'}\r\n",
        f"Content-Transfer-Encoding: {'8bit' if utf8 else '7bit'}\r\n",
        "\r\n",
        f"This is the mail system at host {reporting_mta}.\r\n",
        "\r\n",
    ]
    out += [line + "\r\n" for line in _wrap(_INTRO[action])]
    out.append("\r\n")
    for r in recipients:
        out.append(
            f"<{r.address}>: {_clean(' '.join(r.reply.lines()))}\r\n"
            if r.action in ("failed", "delayed")
            else f"<{r.address}>\r\n"
        )
    out.append("\r\n")

    ds_type = "message/global-delivery-status" if utf8 else "message/delivery-status"
    out += [f"--{boundary}\r\n", f"Content-Type: {ds_type}\r\n", "\r\n"]
    out.append(f"Reporting-MTA: dns; {reporting_mta}\r\n")
    if envid:
        out.append(_fold("Original-Envelope-Id", envid))
    out.append(f"Arrival-Date: {_date(arrival)}\r\n")
    for r in recipients:
        out.append("\r\n")
        orcpt = parse_orcpt(r.orcpt)
        if orcpt is not None:
            out.append(_fold("Original-Recipient", f"{orcpt[0]}; {orcpt[1]}"))
        out.append(f"Final-Recipient: {_addr_type(r.address)}; {r.address}\r\n")
        out.append(f"Action: {r.action}\r\n")
        out.append(f"Status: {status_of(r.reply)}\r\n")
        if r.remote_mta:
            out.append(f"Remote-MTA: dns; {r.remote_mta}\r\n")
        if r.action in ("failed", "delayed") or r.remote_mta:
            out.append(_fold("Diagnostic-Code", _diagnostic(r.reply)))
        if r.last_attempt is not None:
            out.append(f"Last-Attempt-Date: {_date(r.last_attempt)}\r\n")
        if r.will_retry_until is not None:
            out.append(f"Will-Retry-Until: {_date(r.will_retry_until)}\r\n")
    out.append("\r\n")

    if full:
        part_type = "message/global" if utf8 else "message/rfc822"
    else:
        part_type = "message/global-headers" if utf8 else "text/rfc822-headers"
    out += [f"--{boundary}\r\n", f"Content-Type: {part_type}\r\n"]
    if not returned.isascii():
        out.append("Content-Transfer-Encoding: 8bit\r\n")
    head = "".join(out).encode("utf-8") + b"\r\n"
    if not returned.endswith(b"\r\n"):
        returned += b"\r\n"
    return head + returned + f"\r\n--{boundary}--\r\n".encode()


def _wrap(text: str, width: int = 72) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        lines.append(current)
    return lines
