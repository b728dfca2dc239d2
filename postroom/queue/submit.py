"""Putting a message into the outbound queue: DKIM-sign (when we hold a key), enqueue.

``sign_and_enqueue`` is what the SMTP paths call for remote recipients. The signing
domain is the From header's domain when a key exists for it (DMARC alignment, RFC 7489
section 3.1.1), else the envelope sender's domain, else nothing is signed. Signing is
CPU work and runs in a thread (DESIGN.md section 4); the signatures go in front of the
message as the store's ``prefix``, so the body is not copied. Failure to sign is
logged and the message is queued unsigned: a missing signature delays nobody.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
from collections.abc import Sequence
from pathlib import Path

from postroom import dkim
from postroom.store.models import QueuedRecipient, QueueItem
from postroom.store.sqlite import SqliteStore

log = logging.getLogger("postroom.relay")

HEADER_LIMIT = 256 * 1024


def from_domain(message: bytes) -> str | None:
    """The domain of the first address in the From field, lowercased, or None."""
    end = message.find(b"\r\n\r\n")
    head = message[: end if end >= 0 else HEADER_LIMIT][:HEADER_LIMIT]
    value: list[bytes] = []
    in_from = False
    for line in head.split(b"\r\n"):
        if in_from and line[:1] in (b" ", b"\t"):
            value.append(line)
            continue
        if in_from:
            break
        if line[:5].lower() == b"from:":
            in_from = True
            value.append(line[5:])
    if not value:
        return None
    _, address = email.utils.parseaddr(b" ".join(value).decode("utf-8", "replace"))
    domain = address.rpartition("@")[2].strip().lower().rstrip(".")
    return domain or None


def signing_keys(
    keys_dir: Path, message: bytes, mail_from: str, domain: str | None = None
) -> list[dkim.DkimKey]:
    """The keys to sign with: for ``domain`` if given, else the From domain, else the
    envelope sender's domain; [] when none of them has a key."""
    candidates = (
        [domain] if domain else [from_domain(message), mail_from.rpartition("@")[2].lower() or None]
    )
    for name in candidates:
        if name:
            keys = dkim.load_keys(keys_dir, name)
            if keys:
                return keys
    return []


async def sign_message(
    message: bytes, mail_from: str, keys_dir: Path | None, domain: str | None = None
) -> bytes:
    """The DKIM-Signature fields to prepend (b"" when not signing)."""
    if keys_dir is None:
        return b""

    def work() -> bytes:
        keys = signing_keys(keys_dir, message, mail_from, domain)
        return dkim.sign(message, keys) if keys else b""

    try:
        return await asyncio.get_running_loop().run_in_executor(None, work)
    except (dkim.DkimError, OSError) as e:
        log.error("DKIM signing failed, queueing unsigned: %s", e)
        return b""


async def sign_and_enqueue(
    store: SqliteStore,
    data: bytes,
    mail_from: str,
    recipients: Sequence[QueuedRecipient],
    *,
    envid: str = "",
    ret: str = "",
    dkim_keys_dir: Path | None = None,
    domain: str | None = None,
) -> QueueItem:
    """Sign ``data`` (CRLF message bytes) when a key applies and put it in the queue.
    Returns the queue item once it is durable. Call ``QueueRunner.wake()`` after."""
    prefix = await sign_message(data, mail_from, dkim_keys_dir, domain)
    return await store.enqueue(data, mail_from, recipients, envid=envid, ret=ret, prefix=prefix)
