"""QUOTA commands: GETQUOTA, GETQUOTAROOT, SETQUOTA (RFC 9208).

Theory of operation: an account has one storage limit, ``users.quota`` in bytes (0 =
unlimited), against ``users.used``, which the store charges on APPEND, COPY and delivery
and credits on EXPUNGE. That is one quota root per account, covering all its mailboxes
(RFC 9208 section 3.2), named ``""`` as in the RFC's own examples (sections 4.2.1,
4.2.2). Dovecot calls its root "User quota", but that is only its configured default;
clients show whatever name comes, and ``""`` needs no translation. An account without a
limit has no quota root at all: GETQUOTAROOT answers ``* QUOTAROOT mailbox`` without
roots (section 4.2.2 shows one) and GETQUOTA ``""`` is NO, since a QUOTA response must
name at least one resource (``quota-list``, section 7).

STORAGE counts units of 1024 octets (section 5.1). Usage and limit are both rounded up:
the usage shown never passes the limit while the store still accepts messages, and a
nonzero limit never shows as 0. The numbers are read from the store on every command,
not from the account loaded at login.

Going over the limit is refused where the bytes grow: APPEND and COPY answer
``NO [OVERQUOTA]`` (section 4.3.1) from ``handlers/mailboxes.py`` and
``handlers/messages.py``; MOVE within the account adds nothing, so it is never refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from postroom.imap import commands as c
from postroom.imap.grammar.reader import normalize_inbox
from postroom.imap.responses import QuotaResponse, QuotaRootResponse, ResponseCode, Tagged
from postroom.store.models import User
from postroom.store.sqlite import SEPARATOR

if TYPE_CHECKING:
    from postroom.imap.session import ImapSession

ROOT = ""  # the account's one quota root
KIB = 1024  # the STORAGE unit (RFC 9208 section 5.1)


def storage_kib(octets: int) -> int:
    """Octets in STORAGE units, rounded up."""
    return -(-octets // KIB)


def quota_response(user: User, *, utf8: bool) -> QuotaResponse:
    """``* QUOTA "" (STORAGE used limit)`` for an account with a limit."""
    return QuotaResponse(ROOT, [("STORAGE", storage_kib(user.used), storage_kib(user.quota))],
                         utf8=utf8)


async def _account(session: ImapSession) -> User | None:
    """The logged-in account as the store has it now (usage moves during a session)."""
    assert session.user is not None
    return await session.store.get_user_by_id(session.user.id)


def _vanished(tag: str) -> Tagged:
    return Tagged(tag, "NO", "Account no longer exists", ResponseCode.UNAVAILABLE)


async def cmd_getquota(session: ImapSession, cmd: c.GetQuota) -> Tagged:
    """RFC 9208 section 4.1.1: NO for a root that does not exist (any name but ``""``,
    and ``""`` too for an account without a limit)."""
    user = await _account(session)
    if user is None:
        return _vanished(cmd.tag)
    if cmd.root != ROOT or not user.quota:
        return Tagged(cmd.tag, "NO", "No such quota root")
    session.conn.send(quota_response(user, utf8=session.utf8))
    return Tagged(cmd.tag, "OK", "GETQUOTA completed")


async def cmd_getquotaroot(session: ImapSession, cmd: c.GetQuotaRoot) -> Tagged:
    """RFC 9208 section 4.1.2: QUOTAROOT, then QUOTA for each root it names.

    The name need not be an existing mailbox (section 4.1.2: the client may ask which
    root a mailbox would have once created; RFC 2087's "no such mailbox" is gone), so a
    missing mailbox gets its account's root too. Names are normalised as STATUS and
    SELECT do them; an existing mailbox is echoed with its stored name."""
    assert session.user is not None
    user = await _account(session)
    if user is None:
        return _vanished(cmd.tag)
    name = normalize_inbox(cmd.mailbox, SEPARATOR)
    mb = await session.store.get_mailbox(session.user.id, name)
    shown = mb.name if mb is not None else name
    roots = (ROOT,) if user.quota else ()
    session.conn.send(QuotaRootResponse(shown, roots, utf8=session.utf8))
    if user.quota:
        session.conn.send(quota_response(user, utf8=session.utf8))
    return Tagged(cmd.tag, "OK", "GETQUOTAROOT completed")


async def cmd_setquota(session: ImapSession, cmd: c.SetQuota) -> Tagged:
    """RFC 9208 section 4.1.3: a user may not change limits (the server does not
    advertise QUOTASET); the administrator sets them with ``postroom user quota``."""
    return Tagged(cmd.tag, "NO", "Quota is set by the administrator (postroom user quota)",
                  ResponseCode.NOPERM)
