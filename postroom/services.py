"""Sessions and services: what the protocol shells call, implemented on the store.

Theory of operation: ``MailSystem`` is built once by the app from the config and the
store. It is the account directory for SASL (``StoreAuthenticator``), the POP3 maildrop
provider, the SMTP delivery backend, and it knows which handler serves which listener.
Protocol engines never see the store; this module is where the two meet.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import ssl
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from postroom.auth.passwords import (
    ScramCredentials,
    hash_password,
    parse_scram_credentials,
    verify_password,
)
from postroom.auth.throttle import AuthThrottle
from postroom.config import Config
from postroom.net.listener import ConnectionInfo
from postroom.pop3.backend import MaildropEntry
from postroom.store.models import Entry
from postroom.store.sqlite import SqliteStore

log = logging.getLogger("postroom.services")

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, ConnectionInfo],
                   Awaitable[None]]

class StoreAuthenticator:
    """``postroom.auth.authenticator.Authenticator`` on the store; argon2 in threads."""

    def __init__(self, store: SqliteStore, pool: ThreadPoolExecutor) -> None:
        self.store = store
        self.pool = pool
        # Verified for unknown users, so that a wrong user name costs the same time as a
        # wrong password (no account enumeration by timing).
        self._dummy_hash = hash_password(secrets.token_hex(16))

    async def verify_password(self, username: str, password: str) -> str | None:
        user = await self.store.get_user(username)
        stored = user.password_hash if user is not None else self._dummy_hash
        loop = asyncio.get_running_loop()
        ok = await loop.run_in_executor(self.pool, verify_password, stored, password)
        return user.address if ok and user is not None else None

    async def scram_credentials(self, username: str) -> tuple[str, ScramCredentials] | None:
        user = await self.store.get_user(username)
        if user is None or not user.scram:
            return None
        creds = parse_scram_credentials(user.scram)
        return (user.address, creds) if creds is not None else None


def uidl_for(uidvalidity: int, uid: int) -> str:
    """POP3 unique id: stable across sessions and restarts, unique in the maildrop,
    untouched by flag changes (RFC 1939 section 7)."""
    return f"{uidvalidity:08x}{uid:08x}"


class StoreMaildrop:
    """One POP3 session's view of INBOX, frozen at login (RFC 1939 section 8)."""

    def __init__(self, system: MailSystem, user: str, mailbox_id: int, uidvalidity: int,
                 entries: Sequence[Entry]) -> None:
        self.system = system
        self.user = user
        self.mailbox_id = mailbox_id
        self._entries = list(entries)
        self.entries = [MaildropEntry(e.size, uidl_for(uidvalidity, e.uid))
                        for e in self._entries]
        self._released = False

    async def retrieve(self, index: int) -> bytes:
        return await self.system.store.read_message(self._entries[index].message_id)

    async def commit(self, deleted: Sequence[int]) -> None:
        uids = [self._entries[i].uid for i in deleted]
        await self.system.store.expunge(self.mailbox_id, uids, only_deleted=False)

    async def release(self) -> None:
        if not self._released:
            self._released = True
            self.system.pop3_locks.discard(self.user.lower())


class MailSystem:
    def __init__(self, config: Config, store: SqliteStore,
                 ssl_context: ssl.SSLContext | None) -> None:
        self.config = config
        self.store = store
        self.ssl_context = ssl_context
        self.hash_pool = ThreadPoolExecutor(2, thread_name_prefix="auth")
        self.authenticator = StoreAuthenticator(store, self.hash_pool)
        self.throttle = AuthThrottle()
        self.pop3_locks: set[str] = set()

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        self.hash_pool.shutdown(wait=False)

    # ------------------------------------------------------------------ POP3

    async def open_maildrop(self, user: str) -> StoreMaildrop | None:
        key = user.lower()
        if key in self.pop3_locks:
            return None
        self.pop3_locks.add(key)
        try:
            account = await self.store.get_user(user)
            if account is None:
                raise LookupError(f"account {user} vanished")
            inbox = await self.store.get_mailbox(account.id, "INBOX")
            if inbox is None:
                raise LookupError(f"{user} has no INBOX")
            entries = await self.store.list_entries(inbox.id)
        except BaseException:
            self.pop3_locks.discard(key)
            raise
        return StoreMaildrop(self, account.address, inbox.id, inbox.uidvalidity, entries)

    # ------------------------------------------------------------------ listeners

    def listener(self, kind: str) -> tuple[Handler, bool, bytes] | None:
        """(handler, implicit TLS?, overload reply) for a listener kind, or None."""
        if kind in ("pop3", "pop3s"):
            from postroom.pop3.server import Pop3Context, handle_pop3

            ctx = Pop3Context(
                hostname=self.config.hostname, backend=self, authenticator=self.authenticator,
                throttle=self.throttle,
                ssl_context=self.ssl_context if kind == "pop3" else None,
                plaintext_auth_allowed=self.config.auth.plaintext_allowed)
            return (partial(_with_ctx, handle_pop3, ctx), kind == "pop3s",
                    b"-ERR [SYS/TEMP] too many connections, try again later\r\n")
        return None


async def _with_ctx(fn: Callable[..., Awaitable[None]], ctx: object,
                    reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    info: ConnectionInfo) -> None:
    await fn(reader, writer, info, ctx)
