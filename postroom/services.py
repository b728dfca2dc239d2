"""Sessions and services: what the protocol shells call, implemented on the store.

Theory of operation: ``MailSystem`` is built once by the app from the config and the
store. It is the account directory for SASL (``StoreAuthenticator``), the POP3 maildrop
provider, the SMTP delivery backend, and it knows which handler serves which listener.
Protocol engines never see the store; this module is where the two meet.
"""

from __future__ import annotations

import asyncio
import email.utils
import fcntl
import hashlib
import logging
import os
import secrets
import ssl
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

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
from postroom.queue.models import notify_text, orcpt_text
from postroom.queue.runner import Bounce, QueueRunner
from postroom.queue.submit import sign_and_enqueue
from postroom.smtp.backend import Envelope, Recipient, SessionInfo
from postroom.smtp.codes import Reply
from postroom.smtp.params import MailParams, RcptParams
from postroom.smtp.spool import SpooledMessage
from postroom.store.models import Entry, LocalTarget, OverQuota, QueuedRecipient, Resolution
from postroom.store.sqlite import SqliteStore

log = logging.getLogger("postroom.services")

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, ConnectionInfo],
                   Awaitable[None]]

SUBMISSION = ("submission", "submissions")


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
                 entries: Sequence[Entry], lock: MaildropLock) -> None:
        self.system = system
        self.lock = lock
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
            self.lock.release()


class MaildropLock:
    """The exclusive-access lock on a maildrop (RFC 1939 section 8): ``flock`` on a
    file per account under ``<data_dir>/run/pop3``, so it holds across worker processes
    and ends with the process that holds it, however that ends."""

    def __init__(self, run_dir: Path, user: str) -> None:
        name = hashlib.sha256(user.lower().encode()).hexdigest()[:32]
        self.path = run_dir / f"{name}.lock"
        self._fd: int | None = None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the file gives the lock up
            self._fd = None


class MailSystem:
    def __init__(self, config: Config, store: SqliteStore,
                 ssl_context: ssl.SSLContext | None) -> None:
        self.config = config
        self.store = store
        self.ssl_context = ssl_context
        self.hash_pool = ThreadPoolExecutor(2, thread_name_prefix="auth")
        self.authenticator = StoreAuthenticator(store, self.hash_pool)
        self.throttle = AuthThrottle()
        self.pop3_run_dir = config.data_dir / "run" / "pop3"
        # Another worker process runs the queue: tell it (postroom/workers.py).
        self.remote_queue_wake: Callable[[], None] | None = None
        self.runs_queue = True
        self.runner: QueueRunner | None = None
        # Set when the server stops: idle IMAP sessions say BYE at once.
        self.stopping = asyncio.Event()
        # RCPT-time resolutions, reused at DATA time: (queue id, address) -> Resolution
        self._resolved: dict[tuple[str, str], Resolution] = {}
        self.dkim_dir = config.data_dir / "dkim"

    async def start(self) -> None:
        """Start the outbound queue runner (delivery to other servers), unless another
        worker process runs it (``runs_queue``)."""
        if not self.runs_queue:
            return
        from postroom.dns.real import DnsResolver
        from postroom.queue.runner import QueueRunner

        relay = self.config.relay
        resolver = DnsResolver([relay.dns_server] if relay.dns_server else ())
        self.runner = QueueRunner(self.store, self.config.hostname, resolver,
                                  smarthost=relay.smarthost, routes=relay.routes,
                                  bounce=self.bounce)
        await self.runner.start()

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.stop()
            self.runner = None
        self.hash_pool.shutdown(wait=False)

    async def bounce(self, b: Bounce) -> None:
        """A DSN for ``b.recipient`` (the original sender): local mailboxes get it
        directly; remote senders get it through the queue, from the null sender."""
        res = await self.store.resolve(b.recipient, self.config.subaddress_delimiter)
        local = [t.user_id for t in res.targets if isinstance(t, LocalTarget)]
        if local:
            await self.store.deliver(b.message, local, prefix=b"Return-Path: <>\r\n")
        remote = [t.address for t in res.targets if not isinstance(t, LocalTarget)]
        if remote or not res.local_domain:
            await self.store.enqueue(b.message, "", [QueuedRecipient(a) for a in
                                                     (remote or [b.recipient])])
            self.queue_wake()

    # ------------------------------------------------------------------ POP3

    async def open_maildrop(self, user: str) -> StoreMaildrop | None:
        lock = MaildropLock(self.pop3_run_dir, user)
        if not lock.acquire():
            return None
        try:
            account = await self.store.get_user(user)
            if account is None:
                raise LookupError(f"account {user} vanished")
            inbox = await self.store.get_mailbox(account.id, "INBOX")
            if inbox is None:
                raise LookupError(f"{user} has no INBOX")
            entries = await self.store.list_entries(inbox.id)
        except BaseException:
            lock.release()
            raise
        return StoreMaildrop(self, account.address, inbox.id, inbox.uidvalidity, entries,
                             lock)

    # ------------------------------------------------------------------ SMTP

    async def check_sender(self, session: SessionInfo, address: str,
                           params: MailParams) -> Reply | None:
        """MX: any sender (SPF/DMARC checks come later). Submission: only addresses the
        authenticated user owns: its own (with or without +tag) or an alias that
        reaches it (issue: SMTP policy, 553 5.7.1)."""
        if session.listener not in SUBMISSION:
            return None
        user = session.authenticated_user
        if user is None:  # the engine refuses MAIL before AUTH; belt and braces
            return Reply(530, "5.7.0", "Authentication required")
        if address and await self._owns(user, address):
            return None
        return Reply(553, "5.7.1", f"Sender address <{address}> is not yours, {user}")

    async def _owns(self, user: str, address: str) -> bool:
        account = await self.store.get_user(user)
        if account is None:
            return False
        res = await self.store.resolve(address, self.config.subaddress_delimiter)
        return res.local_domain and any(
            isinstance(t, LocalTarget) and t.user_id == account.id for t in res.targets)

    async def check_recipient(self, session: SessionInfo, envelope: Envelope, address: str,
                              params: RcptParams) -> Reply | None:
        size = envelope.mail_params.size or 0
        res = await self.store.resolve(address, self.config.subaddress_delimiter, size)
        if not res.local_domain:
            if session.listener in SUBMISSION and session.authenticated_user is not None:
                return None  # relayed through the outbound queue
            return Reply(550, "5.7.1", f"Relaying denied: <{address}> is not a local domain")
        if not res.known:
            return Reply(550, "5.1.1", f"<{address}>: no such user here")
        for _, quota in res.full:  # RFC 4954 / RFC 3463: 552 5.2.2 vs 452 4.2.2
            if size > quota:
                return Reply(552, "5.2.2", f"<{address}>: message larger than the quota")
            return Reply(452, "4.2.2", f"<{address}>: mailbox full, try again later")
        self._resolved[(envelope.queue_id, address)] = res
        if len(self._resolved) > 50_000:  # transactions reset before DATA leave entries
            for key in list(self._resolved)[:10_000]:
                del self._resolved[key]
        return None

    async def deliver(self, session: SessionInfo, envelope: Envelope,
                      message: SpooledMessage) -> Reply:
        """Local recipients get one shared stored copy (with Return-Path); remote ones
        go to the outbound queue. Returns only once everything is fsync'd."""
        local: dict[int, str] = {}
        remote: dict[str, Recipient] = {}
        for rcpt in envelope.recipients:
            res = self._resolved.pop((envelope.queue_id, rcpt.address), None)
            if res is None:
                res = await self.store.resolve(rcpt.address, self.config.subaddress_delimiter)
            for t in res.targets:
                if isinstance(t, LocalTarget):
                    local.setdefault(t.user_id, rcpt.address)
                else:
                    remote.setdefault(t.address.lower(), Recipient(
                        t.address, rcpt.notify, rcpt.orcpt))
        data: bytes | Path = Path(message.path) if message.path else message.read_all()
        extra = b""
        if session.listener in SUBMISSION:
            extra = missing_headers(message, self.config.hostname)
        if local:
            return_path = f"Return-Path: <{envelope.mail_from}>\r\n".encode()
            results = await self.store.deliver(data, list(local), prefix=return_path + extra,
                                               crlf=True)  # exactly as received (DATA: CRLF; BDAT: octets)
            failed = [r for r in results if r.error is not None]
            if failed and len(failed) == len(results) and not remote:
                err = failed[0].error
                if isinstance(err, OverQuota):
                    return Reply(452, "4.2.2", "Mailbox full, try again later")
                return Reply(451, "4.3.0", "Local delivery failed, try again later")
            for r in failed:
                log.warning("%s: local delivery to user %d failed after acceptance: %s",
                            envelope.queue_id, r.user_id, r.error)
        if remote:
            p = envelope.mail_params
            queued = [QueuedRecipient(r.address, notify_text(r.notify), orcpt_text(r.orcpt))
                      for r in remote.values()]
            if session.listener in SUBMISSION:
                # our users' mail: DKIM-signed for their domain before it is queued
                body = (await asyncio.to_thread(data.read_bytes) if isinstance(data, Path)
                        else data)
                whole = extra + body
                await sign_and_enqueue(self.store, whole, envelope.mail_from, queued,
                                       envid=p.envid or "", ret=p.ret or "",
                                       dkim_keys_dir=self.dkim_dir)
            else:  # forwarding through an alias: the original signatures stay valid
                await self.store.enqueue(data, envelope.mail_from, queued,
                                         envid=p.envid or "", ret=p.ret or "", crlf=True)
            self.queue_wake()
        return Reply(250, "2.0.0", f"Ok: queued as {envelope.queue_id}")

    def queue_wake(self) -> None:
        """Start delivering what was just queued, without waiting for the next poll."""
        if self.runner is not None:
            self.runner.wake()
        elif self.remote_queue_wake is not None:
            self.remote_queue_wake()

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
        if kind in ("imap", "imaps"):
            from postroom.imap.server import ImapContext, handle_imap

            ictx = ImapContext(
                hostname=self.config.hostname, store=self.store,
                authenticator=self.authenticator, throttle=self.throttle,
                ssl_context=self.ssl_context if kind == "imap" else None,
                plaintext_auth_allowed=self.config.auth.plaintext_allowed,
                append_limit=self.config.limits.message_size,
                subaddress_delimiter=self.config.subaddress_delimiter,
                stopping=self.stopping)
            return (partial(_with_ctx, handle_imap, ictx), kind == "imaps",
                    b"* BYE Too many connections, try again later\r\n")
        if kind in ("smtp", "submission", "submissions"):
            from postroom.smtp.server import SmtpContext, SmtpLimits, handle_smtp

            lim = self.config.limits
            spool = self.config.data_dir / "spool"
            spool.mkdir(parents=True, exist_ok=True)
            sctx = SmtpContext(
                hostname=self.config.hostname, listener=kind, backend=self,
                authenticator=self.authenticator, throttle=self.throttle,
                ssl_context=self.ssl_context if kind != "submissions" else None,
                plaintext_auth_allowed=self.config.auth.plaintext_allowed,
                limits=SmtpLimits(message_size=lim.message_size,
                                  max_recipients=lim.max_recipients),
                spool_dir=str(spool))
            return (partial(_with_ctx, handle_smtp, sctx), kind == "submissions",
                    b"421 4.7.0 Too many connections, try again later\r\n")
        return None


def missing_headers(message: SpooledMessage, hostname: str) -> bytes:
    """Message-ID and Date for a submitted message that lacks them (RFC 6409 section
    8.2 and 8.3: the submission server may add them)."""
    with message.open() as f:
        head = f.read(65536)
    end = head.find(b"\r\n\r\n")
    block = (head if end < 0 else head[:end + 2]).lower()
    out = b""
    if b"\r\nmessage-id:" not in b"\r\n" + block:
        out += f"Message-ID: <{secrets.token_hex(12)}@{hostname}>\r\n".encode()
    if b"\r\ndate:" not in b"\r\n" + block:
        out += f"Date: {email.utils.formatdate(localtime=False)}\r\n".encode()
    return out


async def _with_ctx(fn: Callable[..., Awaitable[None]], ctx: object,
                    reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    info: ConnectionInfo) -> None:
    await fn(reader, writer, info, ctx)
