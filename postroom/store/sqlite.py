"""The embedded store: SQLite (WAL) for metadata and small bodies, files for large ones.

Theory of operation:
- Every write is an op run by the group-commit writer thread (``writer.py``): many
  concurrent appends share one transaction and one fsync, and each caller's future is
  resolved only after COMMIT returned (``synchronous=FULL``: the WAL is fsync'd).
- Reads run on a small pool of threads, each with its own read-only connection; WAL
  lets them read while the writer writes.
- Bodies up to ``inline_max`` bytes are stored in the ``messages`` row (one fsync for the
  whole batch); larger bodies go to ``blobs/`` as files fsync'd before the row is
  committed (bench/store_bench.py measured both; see README "Storage").
- Messages are analysed once (``postroom.mime.analyze``) before the write op runs, off
  the writer thread, and the analysis is stored beside the body.
- UIDs come from ``mailboxes.uidnext`` inside the same transaction as the entry, so a
  crash can only lose a UID that nobody was ever told about; a UID that was acknowledged
  is committed and never handed out again.
"""

from __future__ import annotations

import asyncio
import logging
import mmap
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from postroom.store import schema
from postroom.store.blobs import BlobStore
from postroom.store.feed import ChangeFeed
from postroom.store.models import (
    DEFAULT_MAILBOXES,
    DELETED,
    SEEN,
    SPECIAL_USES,
    Alias,
    AlreadyExists,
    AppendResult,
    Changes,
    DeliveryResult,
    Domain,
    Entry,
    EntryColumns,
    Flags,
    Invalid,
    LocalTarget,
    Mailbox,
    MailboxStatus,
    NotFound,
    OverQuota,
    QueuedRecipient,
    QueueItem,
    RemoteTarget,
    Resolution,
    StoreError,
    Target,
    User,
)
from postroom.store.writer import GroupCommitWriter, WriteContext

T = TypeVar("T")
log = logging.getLogger("postroom.store")

INLINE_MAX = 128 * 1024
NO_FLAGS = Flags()
MAX_ALIAS_DEPTH = 8
# How far HIGHESTMODSEQ jumps after an unclean stop (see _after_unclean_stop): more
# than the non-durable commits a power cut can undo (they are fsync'd at the latest
# with the next durable commit or WAL checkpoint, every 1,000 pages).
MODSEQ_AFTER_CRASH = 1 << 20
# A body file no row names is removed at start once it is this old (seconds).
ORPHAN_AGE = 3600
# Rows a query may read on the event loop thread (see _read_bounded).
LOOP_ROWS = 1000
SEPARATOR = "/"
MAX_MAILBOX_NAME = 1000


def split_address(address: str) -> tuple[str, str]:
    """``"Local@Domain"`` -> ("Local", "domain"). Raises Invalid without exactly one '@'
    separating non-empty parts (the local part may itself be quoted and contain '@')."""
    local, sep, domain = address.rpartition("@")
    if not sep or not domain or (not local and not address.startswith("@")):
        raise Invalid(f"not an address: {address!r}")
    return local, domain.lower().rstrip(".")


def normalize_mailbox_name(name: str) -> str:
    """INBOX is case-insensitive (RFC 9051 section 5.1); everything else keeps its case.
    Trailing separators are dropped (CREATE "foo/" creates "foo")."""
    name = name.rstrip(SEPARATOR) if name != SEPARATOR else name
    first, sep, rest = name.partition(SEPARATOR)
    if first.upper() == "INBOX":
        return "INBOX" + sep + rest
    return name


def _check_mailbox_name(name: str) -> None:
    if not name or len(name) > MAX_MAILBOX_NAME:
        raise Invalid("mailbox name is empty or too long")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise Invalid("mailbox name contains control characters")
    if name.startswith(SEPARATOR) or SEPARATOR * 2 in name:
        raise Invalid("mailbox name has an empty hierarchy level")
    if any(p in (".", "..") for p in name.split(SEPARATOR)):
        raise Invalid("mailbox name has a '.' or '..' level")


class PreparedMessage:
    """A message made ready for the writer: normalised, analysed, large bodies on disk."""

    __slots__ = ("blob", "body", "bodystructure", "envelope", "info", "internaldate", "size")

    def __init__(self, size: int, body: bytes | None, blob: str | None,
                 analysis: Analysis, internaldate: float) -> None:
        self.size = size
        self.body = body
        self.blob = blob
        self.info, self.envelope, self.bodystructure = analysis
        self.internaldate = internaldate


# The parse-once analysis (postroom.mime JSON) and the IMAP ENVELOPE and BODYSTRUCTURE
# rendered from it (None for a message only queued for delivery elsewhere: no IMAP
# client fetches it).
Analysis = tuple[bytes, bytes | None, bytes | None]


def _analyze(data: bytes | mmap.mmap, imap: bool) -> Analysis:
    from postroom.mime import analyze
    from postroom.mime.imap import bodystructure_to_imap, envelope_to_imap
    from postroom.mime.mapped import MappedBytes

    info = analyze(MappedBytes(data) if isinstance(data, mmap.mmap) else data)
    if not imap:
        return info.to_json(), None, None
    return (info.to_json(), envelope_to_imap(info.envelope),
            bodystructure_to_imap(info.root, extensible=True))


def _normalize(data: bytes) -> bytes:
    from postroom.mime import normalize_crlf

    return normalize_crlf(data)


class SqliteStore:
    """The embedded backend. Open with ``await SqliteStore.open(data_dir)``."""

    def __init__(self, data_dir: Path, inline_max: int = INLINE_MAX,
                 clock: Callable[[], float] = time.time, primary: bool = False) -> None:
        """``primary``: this is the server that owns the data folder (not a CLI command
        or a test looking in): it records that it runs, recovers after an unclean stop
        and removes orphan body files."""
        self.data_dir = data_dir
        self.primary = primary
        self.db_path = data_dir / "postroom.db"
        self.inline_max = inline_max
        self.clock = clock
        self.feed = ChangeFeed()
        self.blobs = BlobStore(data_dir / "blobs")
        self._local = threading.local()
        self._readers = ThreadPoolExecutor(4, thread_name_prefix="store-reader")
        self._prep = ThreadPoolExecutor(2, thread_name_prefix="store-prep")
        self._writer: GroupCommitWriter | None = None
        self._uidv_lock = threading.Lock()
        self._read_conns: list[sqlite3.Connection] = []

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    async def open(cls, data_dir: Path, **kwargs: Any) -> SqliteStore:
        store = cls(data_dir, **kwargs)
        await asyncio.get_running_loop().run_in_executor(None, store._open_sync)
        return store

    def _connect(self, readonly: bool = False) -> sqlite3.Connection:
        conn = sqlite3.connect(self.db_path, isolation_level=None, check_same_thread=False,
                               timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # durability: fsync the WAL at COMMIT
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA cache_size=-16000")
        if readonly:
            conn.execute("PRAGMA query_only=1")
        return conn

    def _open_sync(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conn = self._connect()
        try:
            schema.migrate(conn)
            if self.primary:
                self._after_unclean_stop(conn)
                # Only files older than an hour: another process (a second server, a
                # restarted worker) may have written a body whose row is not committed.
                known = {r[0] for r in conn.execute(
                    "SELECT blob FROM messages WHERE blob IS NOT NULL")}
                self.blobs.sweep_orphans(known, older_than=self.clock() - ORPHAN_AGE)
        finally:
            conn.close()
        self._writer = GroupCommitWriter(self._connect,
                                         lock_path=self.data_dir / "postroom.db.writer-lock")

    def _after_unclean_stop(self, conn: sqlite3.Connection) -> None:
        """Flag changes and expunges are committed without an fsync (``durable=False``):
        a power cut may undo the last of them, and with them MODSEQ values that clients
        were told. So when the last run did not stop cleanly, every mailbox's
        HIGHESTMODSEQ jumps ahead by MODSEQ_AFTER_CRASH: modseqs never go back
        (RFC 7162 section 3.1.1; a client's CHANGEDSINCE still sees every later
        change), at the price of one resync for CONDSTORE clients."""
        conn.execute("BEGIN IMMEDIATE")
        r = conn.execute("SELECT value FROM meta WHERE key='running'").fetchone()
        if r is not None and r[0] == "1":
            log.warning("the last run did not stop cleanly: HIGHESTMODSEQ moved ahead")
            conn.execute("UPDATE mailboxes SET highestmodseq=highestmodseq+?",
                         (MODSEQ_AFTER_CRASH,))
        self._set_running(conn, True)
        conn.execute("COMMIT")

    async def close(self, stopped: bool = True) -> None:
        """Drain the writer and close. A primary store records the clean stop, unless
        ``stopped`` is False (a master process handing the folder to its workers)."""
        if self._writer is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._writer.close)
            self._writer = None
            if self.primary and stopped:
                await self.record_clean_stop()
        self._readers.shutdown(wait=True)
        self._prep.shutdown(wait=True)
        with self._uidv_lock:
            conns, self._read_conns = self._read_conns, []
        for c in conns:
            try:
                c.close()
            except sqlite3.ProgrammingError:  # made in another thread: closed with it
                pass

    async def record_clean_stop(self) -> None:
        """Record that the server stopped cleanly (see ``_after_unclean_stop``)."""
        await asyncio.get_running_loop().run_in_executor(None, self._mark_stopped)

    def _mark_stopped(self) -> None:
        conn = self._connect()
        try:
            self._set_running(conn, False)
        finally:
            conn.close()

    @staticmethod
    def _set_running(conn: sqlite3.Connection, running: bool) -> None:
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES('running', ?)",
                     ("1" if running else "0",))

    # ------------------------------------------------------------------ plumbing

    async def _write(self, op: Callable[[sqlite3.Connection, WriteContext], T],
                     durable: bool = True) -> T:
        """Run ``op`` in the writer's next batch. ``durable=False``: the caller need not
        wait for an fsync (see postroom/store/writer.py); never for anything acknowledged
        as stored (messages, queue entries, accounts)."""
        assert self._writer is not None, "store is closed"
        result: T = await asyncio.wrap_future(self._writer.submit(op, durable))
        return result

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect(readonly=True)
            self._local.conn = conn
            with self._uidv_lock:
                self._read_conns.append(conn)
        return conn

    def _read_now(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a small indexed query on the calling thread (its own read connection).

        A hop to the reader pool and back costs about 60 us of wall time and 80 us of
        CPU on this machine, 20 times a point query: queries whose cost is bounded run
        here; those that may scan a large mailbox use ``_read_bounded``."""
        return fn(self._reader())

    async def _read_bounded(self, fn: Callable[[sqlite3.Connection, int | None], T | None]
                            ) -> T:
        """``fn(conn, LOOP_ROWS)`` on the calling thread; when it answers None (it would
        have had to read more than LOOP_ROWS rows), ``fn(conn, None)`` in the reader
        pool, so a large mailbox does not hold the event loop."""
        small = fn(self._reader(), LOOP_ROWS)
        if small is not None:
            return small
        full = await self._read(lambda c: fn(c, None))
        assert full is not None
        return full

    @staticmethod
    def _limit_arg(limit: int | None) -> int:
        """The SQL LIMIT for a bounded read: one row more than ``limit`` (to see that it
        was passed), or -1 (none) when the read is not bounded."""
        return -1 if limit is None else limit + 1

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, lambda: fn(self._reader()))

    def _next_uidvalidity(self, conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT value FROM meta WHERE key='uidvalidity'").fetchone()
        last = int(row[0]) if row else 0
        value = max(int(self.clock()), last + 1)
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES('uidvalidity', ?)",
                     (str(value),))
        return value

    # ------------------------------------------------------------------ domains

    async def add_domain(self, name: str) -> Domain:
        name = name.lower().rstrip(".")
        if not name or "@" in name or any(c.isspace() for c in name):
            raise Invalid(f"not a domain name: {name!r}")

        def op(conn: sqlite3.Connection, ctx: WriteContext) -> Domain:
            try:
                conn.execute("INSERT INTO domains(name) VALUES (?)", (name,))
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"domain {name} exists already") from None
            return Domain(name)

        return await self._write(op)

    async def list_domains(self) -> list[Domain]:
        return await self._read(
            lambda c: [Domain(r[0]) for r in c.execute("SELECT name FROM domains ORDER BY name")])

    async def remove_domain(self, name: str) -> None:
        def op(conn: sqlite3.Connection, ctx: WriteContext) -> None:
            row = conn.execute("SELECT id FROM domains WHERE name=?", (name.lower(),)).fetchone()
            if row is None:
                raise NotFound(f"no domain {name}")
            users = conn.execute("SELECT count(*) FROM users WHERE domain_id=?", row).fetchone()[0]
            if users:
                raise Invalid(f"domain {name} still has {users} user(s); remove them first")
            conn.execute("DELETE FROM aliases WHERE domain_id=?", row)
            conn.execute("DELETE FROM domains WHERE id=?", row)

        await self._write(op)

    # ------------------------------------------------------------------ users

    async def add_user(self, address: str, password_hash: str, scram: str = "",
                       quota: int = 0) -> User:
        """Create an account with the default mailboxes (INBOX, Sent, Drafts, Trash, Junk,
        Archive with their special-use attributes, all subscribed)."""
        local, domain = split_address(address)
        if not local:
            raise Invalid("a user address needs a local part")
        if quota < 0:
            raise Invalid("quota must be >= 0")

        def op(conn: sqlite3.Connection, ctx: WriteContext) -> User:
            d = conn.execute("SELECT id FROM domains WHERE name=?", (domain,)).fetchone()
            if d is None:
                raise NotFound(f"{domain} is not a local domain (postroom domain add {domain})")
            try:
                cur = conn.execute(
                    "INSERT INTO users(localpart, domain_id, password_hash, scram, quota, created)"
                    " VALUES (?,?,?,?,?,?)", (local, d[0], password_hash, scram, quota,
                                              self.clock()))
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"user {local}@{domain} exists already") from None
            uid = int(cur.lastrowid or 0)
            for name, special in DEFAULT_MAILBOXES:
                conn.execute(
                    "INSERT INTO mailboxes(user_id, name, uidvalidity, special_use)"
                    " VALUES (?,?,?,?)", (uid, name, self._next_uidvalidity(conn), special))
                conn.execute("INSERT OR IGNORE INTO subscriptions(user_id, name) VALUES (?,?)",
                             (uid, name))
            return User(uid, f"{local}@{domain}", quota, 0, password_hash, scram)

        return await self._write(op)

    _USER_SQL = ("SELECT u.id, u.localpart || '@' || d.name, u.quota, u.used, u.password_hash,"
                 " u.scram FROM users u JOIN domains d ON d.id = u.domain_id")

    async def get_user(self, address: str) -> User | None:
        try:
            local, domain = split_address(address)
        except Invalid:
            return None

        def q(conn: sqlite3.Connection) -> User | None:
            r = conn.execute(self._USER_SQL + " WHERE u.localpart=? AND d.name=?",
                             (local, domain)).fetchone()
            return User(*r) if r else None

        return self._read_now(q)

    async def get_user_by_id(self, user_id: int) -> User | None:
        def q(conn: sqlite3.Connection) -> User | None:
            r = conn.execute(self._USER_SQL + " WHERE u.id=?", (user_id,)).fetchone()
            return User(*r) if r else None

        return self._read_now(q)

    async def list_users(self, domain: str | None = None) -> list[User]:
        def q(conn: sqlite3.Connection) -> list[User]:
            if domain is None:
                rows = conn.execute(self._USER_SQL + " ORDER BY d.name, u.localpart")
            else:
                rows = conn.execute(self._USER_SQL + " WHERE d.name=? ORDER BY u.localpart",
                                    (domain.lower(),))
            return [User(*r) for r in rows]

        return await self._read(q)

    async def set_password(self, address: str, password_hash: str, scram: str = "") -> None:
        user = await self._require_user(address)

        def op(conn: sqlite3.Connection, ctx: WriteContext) -> None:
            conn.execute("UPDATE users SET password_hash=?, scram=? WHERE id=?",
                         (password_hash, scram, user.id))

        await self._write(op)

    async def set_quota(self, address: str, quota: int) -> None:
        if quota < 0:
            raise Invalid("quota must be >= 0")
        user = await self._require_user(address)

        def op(conn: sqlite3.Connection, ctx: WriteContext) -> None:
            conn.execute("UPDATE users SET quota=? WHERE id=?", (quota, user.id))

        await self._write(op)

    async def _require_user(self, address: str) -> User:
        user = await self.get_user(address)
        if user is None:
            raise NotFound(f"no user {address}")
        return user

    async def remove_user(self, address: str) -> None:
        """Delete the account, its mailboxes and every message only it referenced."""
        user = await self._require_user(address)

        def op(conn: sqlite3.Connection, ctx: WriteContext) -> None:
            boxes = [r[0] for r in conn.execute("SELECT id FROM mailboxes WHERE user_id=?",
                                                (user.id,))]
            for mb in boxes:
                self._drop_entries(conn, ctx, mb, None)
                conn.execute("DELETE FROM expunged WHERE mailbox_id=?", (mb,))
                conn.execute("DELETE FROM mailboxes WHERE id=?", (mb,))
            conn.execute("DELETE FROM subscriptions WHERE user_id=?", (user.id,))
            conn.execute("DELETE FROM users WHERE id=?", (user.id,))
            ctx.after_commit(lambda: self.feed.publish(boxes))

        await self._write(op)

    # ------------------------------------------------------------------ aliases

    async def add_alias(self, alias: str, targets: Sequence[str]) -> Alias:
        """``alias`` is ``local@domain`` or ``@domain`` (catch-all); the domain must be
        local. Targets are addresses, local or remote."""
        local, domain = split_address(alias)
        if not targets:
            raise Invalid("an alias needs at least one target")
        clean: list[str] = []
        for t in targets:
            tl, td = split_address(t)
            if not tl:
                raise Invalid(f"alias target {t!r} needs a local part")
            clean.append(f"{tl}@{td}")

        def op(conn: sqlite3.Connection, ctx: WriteContext) -> Alias:
            d = conn.execute("SELECT id FROM domains WHERE name=?", (domain,)).fetchone()
            if d is None:
                raise NotFound(f"{domain} is not a local domain")
            for t in clean:
                conn.execute("INSERT OR IGNORE INTO aliases(localpart, domain_id, target)"
                             " VALUES (?,?,?)", (local, d[0], t))
            return Alias(f"{local}@{domain}", tuple(clean))

        return await self._write(op)

    async def remove_alias(self, alias: str, targets: Sequence[str] = ()) -> None:
        """Remove some targets of an alias, or the whole alias when none are named."""
        local, domain = split_address(alias)

        def op(conn: sqlite3.Connection, ctx: WriteContext) -> None:
            base = ("DELETE FROM aliases WHERE localpart=? AND domain_id="
                    "(SELECT id FROM domains WHERE name=?)")
            if targets:
                n = sum(conn.execute(base + " AND target=? COLLATE NOCASE",
                                     (local, domain, t)).rowcount for t in targets)
            else:
                n = conn.execute(base, (local, domain)).rowcount
            if not n:
                raise NotFound(f"no alias {alias}" + (" with those targets" if targets else ""))

        await self._write(op)

    async def list_aliases(self, domain: str | None = None) -> list[Alias]:
        def q(conn: sqlite3.Connection) -> list[Alias]:
            sql = ("SELECT a.localpart || '@' || d.name, a.target FROM aliases a"
                   " JOIN domains d ON d.id=a.domain_id")
            args: tuple[str, ...] = ()
            if domain is not None:
                sql += " WHERE d.name=?"
                args = (domain.lower(),)
            grouped: dict[str, list[str]] = {}
            for a, t in conn.execute(sql + " ORDER BY d.name, a.localpart, a.id", args):
                grouped.setdefault(a, []).append(t)
            return [Alias(a, tuple(ts)) for a, ts in grouped.items()]

        return await self._read(q)

    # ------------------------------------------------------------------ routing

    async def resolve(self, address: str, delimiter: str = "+", size: int | None = None
                      ) -> Resolution:
        """Where mail for ``address`` goes: local accounts and/or remote addresses.

        Order (the usual MTA lookup order): the exact user; an exact alias; the address
        without its ``+tag`` (user, then alias); the domain's catch-all. Aliases expand
        recursively up to MAX_ALIAS_DEPTH; loops stop there. With ``size``, the answer
        also lists local targets whose quota cannot take ``size`` more bytes (one read
        instead of two on the SMTP RCPT path)."""

        def q(conn: sqlite3.Connection) -> Resolution:
            res = self._resolve(conn, address, delimiter, 0, set())
            if size is None or not res.targets:
                return res
            full = []
            for t in res.targets:
                if isinstance(t, LocalTarget):
                    r = conn.execute("SELECT quota, used FROM users WHERE id=?",
                                     (t.user_id,)).fetchone()
                    if r is not None and r[0] and r[1] + size > r[0]:
                        full.append((t.user_id, int(r[0])))
            return Resolution(res.local_domain, res.targets, tuple(full))

        return self._read_now(q)

    def _resolve(self, conn: sqlite3.Connection, address: str, delim: str, depth: int,
                 seen: set[str]) -> Resolution:
        try:
            local, domain = split_address(address)
        except Invalid:
            return Resolution(False)
        d = conn.execute("SELECT id FROM domains WHERE name=?", (domain,)).fetchone()
        if d is None:
            return Resolution(False, (RemoteTarget(address),))
        key = f"{local.lower()}@{domain}"
        if key in seen or depth > MAX_ALIAS_DEPTH:
            return Resolution(True)
        seen = seen | {key}
        candidates = [local]
        if delim and delim in local:
            base = local.split(delim, 1)[0]
            if base:
                candidates.append(base)
        for cand in candidates:
            u = conn.execute("SELECT id, localpart FROM users WHERE localpart=? AND domain_id=?",
                             (cand, d[0])).fetchone()
            if u is not None:
                return Resolution(True, (LocalTarget(u[0], f"{u[1]}@{domain}"),))
            found = self._alias_targets(conn, cand, d[0], delim, depth, seen)
            if found is not None:
                return Resolution(True, found)
        found = self._alias_targets(conn, "", d[0], delim, depth, seen)
        return Resolution(True, found or ())

    def _alias_targets(self, conn: sqlite3.Connection, local: str, domain_id: int, delim: str,
                       depth: int, seen: set[str]) -> tuple[Target, ...] | None:
        rows = conn.execute("SELECT target FROM aliases WHERE localpart=? AND domain_id=?"
                            " ORDER BY id", (local, domain_id)).fetchall()
        if not rows:
            return None
        out: list[Target] = []
        for (t,) in rows:
            for tgt in self._resolve(conn, t, delim, depth + 1, seen).targets:
                if tgt not in out:
                    out.append(tgt)
        return tuple(out)

    # ------------------------------------------------------------------ mailboxes

    _MB_SQL = ("SELECT id, user_id, name, uidvalidity, uidnext, highestmodseq, special_use,"
               " EXISTS(SELECT 1 FROM subscriptions s WHERE s.user_id = mailboxes.user_id"
               " AND s.name = mailboxes.name) FROM mailboxes")

    @staticmethod
    def _mb(r: Sequence[Any]) -> Mailbox:
        return Mailbox(r[0], r[1], r[2], r[3], r[4], r[5], r[6], bool(r[7]))

    async def list_mailboxes(self, user_id: int) -> list[Mailbox]:
        return self._read_now(lambda c: [self._mb(r) for r in c.execute(
            self._MB_SQL + " WHERE user_id=? ORDER BY name", (user_id,))])

    async def get_mailbox(self, user_id: int, name: str) -> Mailbox | None:
        name = normalize_mailbox_name(name)
        return self._read_now(lambda c: self._get_mailbox(c, user_id, name))

    def _get_mailbox(self, conn: sqlite3.Connection, user_id: int, name: str) -> Mailbox | None:
        r = conn.execute(self._MB_SQL + " WHERE user_id=? AND name=?", (user_id, name)).fetchone()
        return self._mb(r) if r else None

    def _require_mailbox(self, conn: sqlite3.Connection, user_id: int, name: str) -> Mailbox:
        mb = self._get_mailbox(conn, user_id, normalize_mailbox_name(name))
        if mb is None:
            raise NotFound(f"no mailbox {name}")
        return mb

    async def create_mailbox(self, user_id: int, name: str, special_use: str | None = None,
                             subscribe: bool = False) -> Mailbox:
        name = normalize_mailbox_name(name)
        _check_mailbox_name(name)
        if special_use is not None and special_use not in SPECIAL_USES:
            raise Invalid(f"unknown special-use attribute {special_use}")

        def op(conn: sqlite3.Connection, ctx: WriteContext) -> Mailbox:
            if self._get_mailbox(conn, user_id, name) is not None:
                raise AlreadyExists(f"mailbox {name} exists already")
            cur = conn.execute(
                "INSERT INTO mailboxes(user_id, name, uidvalidity, special_use)"
                " VALUES (?,?,?,?)", (user_id, name, self._next_uidvalidity(conn),
                                      special_use))
            if subscribe:
                conn.execute("INSERT OR IGNORE INTO subscriptions(user_id, name)"
                             " VALUES (?,?)", (user_id, name))
            r = conn.execute(self._MB_SQL + " WHERE id=?", (cur.lastrowid,)).fetchone()
            return self._mb(r)

        return await self._write(op)

    async def delete_mailbox(self, user_id: int, name: str) -> None:
        """Delete one mailbox and its entries (its children stay, RFC 9051 section 6.3.5)."""
        name = normalize_mailbox_name(name)
        if name == "INBOX":
            raise Invalid("INBOX cannot be deleted")

        def op(conn: sqlite3.Connection, ctx: WriteContext) -> None:
            mb = self._require_mailbox(conn, user_id, name)
            self._drop_entries(conn, ctx, mb.id, None)
            conn.execute("DELETE FROM expunged WHERE mailbox_id=?", (mb.id,))
            conn.execute("DELETE FROM mailboxes WHERE id=?", (mb.id,))
            ctx.after_commit(lambda: self.feed.publish([mb.id]))

        await self._write(op)

    async def rename_mailbox(self, user_id: int, old: str, new: str) -> None:
        """Rename a mailbox and its children. Renaming INBOX moves its messages to a new
        mailbox and leaves INBOX empty (RFC 9051 section 6.3.6)."""
        old, new = normalize_mailbox_name(old), normalize_mailbox_name(new)
        _check_mailbox_name(new)

        def op(conn: sqlite3.Connection, ctx: WriteContext) -> None:
            src = self._require_mailbox(conn, user_id, old)
            if self._get_mailbox(conn, user_id, new) is not None:
                raise AlreadyExists(f"mailbox {new} exists already")
            if new == old or new.startswith(old + SEPARATOR):
                raise Invalid("cannot rename a mailbox into itself")
            if old == "INBOX":
                cur = conn.execute(
                    "INSERT INTO mailboxes(user_id, name, uidvalidity, subscribed)"
                    " VALUES (?,?,?,0)", (user_id, new, self._next_uidvalidity(conn)))
                dst = self._mb(conn.execute(self._MB_SQL + " WHERE id=?",
                                            (cur.lastrowid,)).fetchone())
                uids = [r[0] for r in conn.execute(
                    "SELECT uid FROM entries WHERE mailbox_id=? ORDER BY uid", (src.id,))]
                self._copy(conn, ctx, src, uids, dst, move=True)
                return
            children = conn.execute(
                "SELECT id, name FROM mailboxes WHERE user_id=? AND substr(name,1,?)=?",
                (user_id, len(old) + 1, old + SEPARATOR)).fetchall()
            for _, cname in children:
                if self._get_mailbox(conn, user_id, new + cname[len(old):]) is not None:
                    raise AlreadyExists(f"mailbox {new + cname[len(old):]} exists already")
            conn.execute("UPDATE mailboxes SET name=? WHERE id=?", (new, src.id))
            for cid, cname in children:
                conn.execute("UPDATE mailboxes SET name=? WHERE id=?",
                             (new + cname[len(old):], cid))

        await self._write(op)

    async def set_subscribed(self, user_id: int, name: str, subscribed: bool) -> None:
        """Add or remove a name in the user's subscription list. The mailbox need not
        exist, and deleting a mailbox keeps its subscription (RFC 9051 section 6.3.7)."""
        name = normalize_mailbox_name(name)

        def op(conn: sqlite3.Connection, ctx: WriteContext) -> None:
            if subscribed:
                conn.execute("INSERT OR IGNORE INTO subscriptions(user_id, name)"
                             " VALUES (?,?)", (user_id, name))
            else:
                conn.execute("DELETE FROM subscriptions WHERE user_id=? AND name=?",
                             (user_id, name))

        await self._write(op)

    async def list_subscriptions(self, user_id: int) -> list[str]:
        return self._read_now(lambda c: [r[0] for r in c.execute(
            "SELECT name FROM subscriptions WHERE user_id=? ORDER BY name", (user_id,))])

    async def set_special_use(self, user_id: int, name: str, special_use: str | None) -> None:
        if special_use is not None and special_use not in SPECIAL_USES:
            raise Invalid(f"unknown special-use attribute {special_use}")

        def op(conn: sqlite3.Connection, ctx: WriteContext) -> None:
            mb = self._require_mailbox(conn, user_id, name)
            conn.execute("UPDATE mailboxes SET special_use=? WHERE id=?", (special_use, mb.id))

        await self._write(op)

    async def status(self, mailbox_id: int) -> MailboxStatus:
        def q(conn: sqlite3.Connection, limit: int | None) -> MailboxStatus | None:
            r = conn.execute(self._MB_SQL + " WHERE id=?", (mailbox_id,)).fetchone()
            if r is None:
                raise NotFound("mailbox vanished")
            mb = self._mb(r)
            if limit is not None and mb.uidnext > limit:  # maybe more entries than limit
                return None
            agg = conn.execute(
                "SELECT count(*), coalesce(sum(e.flags & ? = 0), 0),"
                " coalesce(sum(e.flags & ? != 0), 0), coalesce(sum(e.size), 0),"
                " coalesce(sum(e.uid >= ?), 0),"
                " coalesce(sum(CASE WHEN e.flags & ? != 0 THEN e.size END), 0)"
                " FROM entries e WHERE e.mailbox_id=?",
                (SEEN, DELETED, self._recent_from(conn, mailbox_id), DELETED, mailbox_id)
            ).fetchone()
            return MailboxStatus(mb, agg[0], agg[1], agg[2], agg[3], agg[4], agg[5])

        return await self._read_bounded(q)

    @staticmethod
    def _recent_from(conn: sqlite3.Connection, mailbox_id: int) -> int:
        r = conn.execute("SELECT recent_uid FROM mailboxes WHERE id=?", (mailbox_id,)).fetchone()
        return int(r[0]) if r else 1

    async def claim_recent(self, mailbox_id: int) -> tuple[int, int]:
        """Atomically claim \\Recent for UIDs [from, to): exactly one session sees each
        message as recent (RFC 3501 section 2.3.2)."""

        def op(conn: sqlite3.Connection, ctx: WriteContext) -> tuple[int, int]:
            r = conn.execute("SELECT recent_uid, uidnext FROM mailboxes WHERE id=?",
                             (mailbox_id,)).fetchone()
            if r is None:
                raise NotFound("mailbox vanished")
            conn.execute("UPDATE mailboxes SET recent_uid=uidnext WHERE id=?", (mailbox_id,))
            return int(r[0]), int(r[1])

        return await self._write(op, durable=False)

    # ------------------------------------------------------------------ entries

    _ENTRY_SQL = ("SELECT e.uid, e.message_id, e.flags, e.keywords, e.modseq, e.size,"
                  " e.internaldate, e.savedate FROM entries e")

    @staticmethod
    def _entry(r: Sequence[Any]) -> Entry:
        kws = tuple(r[3].split(" ")) if r[3] else ()
        return Entry(r[0], r[1], Flags(r[2], kws), r[4], r[5], r[6], r[7])

    async def list_entries(self, mailbox_id: int, uids: Iterable[int] | None = None
                           ) -> list[Entry]:
        """Entries in UID order; all of them, or those of ``uids`` that exist."""
        wanted = None if uids is None else sorted(set(uids))

        def q(conn: sqlite3.Connection, limit: int | None) -> list[Entry] | None:
            if wanted is None:
                rows = conn.execute(self._ENTRY_SQL + " WHERE e.mailbox_id=? ORDER BY e.uid"
                                    " LIMIT ?", (mailbox_id, self._limit_arg(limit))).fetchall()
                if limit is not None and len(rows) > limit:
                    return None
            elif limit is not None and len(wanted) > limit:
                return None
            else:
                rows = []
                for i in range(0, len(wanted), 500):
                    chunk = wanted[i:i + 500]
                    rows += conn.execute(
                        self._ENTRY_SQL + f" WHERE e.mailbox_id=? AND e.uid IN"
                        f" ({','.join('?' * len(chunk))}) ORDER BY e.uid",
                        (mailbox_id, *chunk)).fetchall()
            return self._entries(rows)

        return await self._read_bounded(q)

    @staticmethod
    def _columns(rows: list[Any]) -> EntryColumns:
        """Entry rows (``_ENTRY_SQL``) as columns, transposed in C, sharing one Flags
        object per distinct flag set (a large mailbox has few: less time and memory than
        one each)."""
        if not rows:
            return EntryColumns.of([])
        uids, mids, bits, kws, modseqs, sizes, idates, sdates = zip(*rows, strict=True)
        shared = {k: Flags(k[0], tuple(k[1].split(" ")) if k[1] else ())
                  for k in set(zip(bits, kws, strict=True))}
        flags = tuple(map(shared.__getitem__, zip(bits, kws, strict=True)))
        return EntryColumns(uids, mids, flags, modseqs, sizes, idates, sdates)

    @classmethod
    def _entries(cls, rows: list[Any]) -> list[Entry]:
        return list(map(Entry._make, zip(*cls._columns(rows), strict=True)))

    async def select_snapshot(self, mailbox_id: int) -> tuple[Mailbox, EntryColumns]:
        """What SELECT loads: the mailbox record and all its entries as columns, read in
        one transaction so UIDNEXT and HIGHESTMODSEQ match the entries exactly."""

        def q(conn: sqlite3.Connection, limit: int | None
              ) -> tuple[Mailbox, EntryColumns] | None:
            conn.execute("BEGIN")
            try:
                r = conn.execute(self._MB_SQL + " WHERE id=?", (mailbox_id,)).fetchone()
                if r is None:
                    raise NotFound("mailbox vanished")
                rows = conn.execute(
                    self._ENTRY_SQL + " WHERE e.mailbox_id=? ORDER BY e.uid LIMIT ?",
                    (mailbox_id, self._limit_arg(limit))).fetchall()
            finally:
                conn.execute("COMMIT")
            if limit is not None and len(rows) > limit:
                return None
            return self._mb(r), self._columns(rows)

        return await self._read_bounded(q)

    async def changes_since(self, mailbox_id: int, modseq: int) -> Changes:
        """New or changed entries and expunged UIDs with a modseq above ``modseq``."""

        def q(conn: sqlite3.Connection, limit: int | None) -> Changes | None:
            most = self._limit_arg(limit)
            conn.execute("BEGIN")
            try:
                r = conn.execute("SELECT highestmodseq, uidnext FROM mailboxes WHERE id=?",
                                 (mailbox_id,)).fetchone()
                if r is None:
                    raise NotFound("mailbox vanished")
                changed = conn.execute(
                    self._ENTRY_SQL + " WHERE e.mailbox_id=? AND e.modseq>? ORDER BY e.uid"
                    " LIMIT ?", (mailbox_id, modseq, most)).fetchall()
                vanished = conn.execute(
                    "SELECT uid FROM expunged WHERE mailbox_id=? AND modseq>? ORDER BY uid"
                    " LIMIT ?", (mailbox_id, modseq, most)).fetchall()
            finally:
                conn.execute("COMMIT")
            if limit is not None and (len(changed) > limit or len(vanished) > limit):
                return None
            return Changes(r[0], r[1], tuple(self._entries(changed)),
                           tuple(v[0] for v in vanished))

        return await self._read_bounded(q)

    # ------------------------------------------------------------------ bodies

    async def read_message(self, message_id: int, start: int = 0, end: int | None = None
                           ) -> bytes:
        """The stored bytes (CRLF) of a message, or the slice [start, end). Inline
        bodies are read on the calling thread (a point query, cheaper than a thread
        hop); file bodies in the reader pool."""
        conn = self._reader()
        r = conn.execute("SELECT blob, size FROM messages WHERE id=?", (message_id,)).fetchone()
        if r is None:
            raise NotFound("message vanished")
        blob, size = r
        stop = size if end is None else min(end, size)
        if start >= stop:
            return b""
        if blob is not None:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._readers, self.blobs.read, blob, start, stop)
        if start == 0 and stop == size:
            row = conn.execute("SELECT body FROM messages WHERE id=?", (message_id,)).fetchone()
        else:
            row = conn.execute("SELECT substr(body, ?, ?) FROM messages WHERE id=?",
                               (start + 1, stop - start, message_id)).fetchone()
        if row is None:
            raise NotFound("message vanished")
        return bytes(row[0])

    async def message_info(self, message_id: int) -> bytes:
        """The parse-once analysis (postroom.mime JSON) stored with the message."""

        def q(conn: sqlite3.Connection) -> bytes:
            r = conn.execute("SELECT info FROM messages WHERE id=?", (message_id,)).fetchone()
            if r is None:
                raise NotFound("message vanished")
            return bytes(r[0])

        return self._read_now(q)

    async def message_imap_summary(self, message_id: int) -> tuple[bytes, bytes] | None:
        """The IMAP ENVELOPE and BODYSTRUCTURE rendered when the message was stored;
        None for a message stored before they were (render them from the analysis)."""

        def q(conn: sqlite3.Connection) -> tuple[bytes, bytes] | None:
            r = conn.execute("SELECT imap_envelope, imap_bodystructure FROM messages"
                             " WHERE id=?", (message_id,)).fetchone()
            if r is None:
                raise NotFound("message vanished")
            return None if r[0] is None or r[1] is None else (bytes(r[0]), bytes(r[1]))

        return self._read_now(q)

    # ------------------------------------------------------------------ writing messages

    def _prepare(self, data: bytes | Path, prefix: bytes, internaldate: float | None,
                 crlf: bool = False, imap: bool = True) -> PreparedMessage:
        """Normalise line ends to CRLF (unless ``crlf``: store the bytes exactly as
        given - SMTP DATA is CRLF by construction, BDAT content is exact octets), analyse
        (``imap``: and render ENVELOPE/BODYSTRUCTURE, for messages put in mailboxes) and
        (if large) write the body file. Runs off the loop for large messages."""
        when = self.clock() if internaldate is None else internaldate
        if isinstance(data, Path):
            # A spool file from SMTP: already CRLF (the SMTP engine guarantees it).
            size = len(prefix) + data.stat().st_size
            if size <= self.inline_max:
                whole = prefix + data.read_bytes()
                return PreparedMessage(size, whole, None, _analyze(whole, imap), when)
            # Large: copy into the blob file first, then analyse it through mmap so the
            # body is never held whole in memory.
            name = self.blobs.write(_file_chunks(prefix, data))
            with open(self.blobs.path(name), "rb") as f, \
                    mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                info = _analyze(mm, imap)
            return PreparedMessage(size, None, name, info, when)
        clean = data if crlf else _normalize(data)
        body = prefix + clean if prefix else clean
        info = _analyze(body, imap)
        if len(body) <= self.inline_max:
            return PreparedMessage(len(body), body, None, info, when)
        name = self.blobs.write([body])
        return PreparedMessage(len(body), None, name, info, when)

    async def _prepare_async(self, data: bytes | Path, prefix: bytes,
                             internaldate: float | None, crlf: bool = False,
                             imap: bool = True) -> PreparedMessage:
        if isinstance(data, bytes) and len(data) <= min(16384, self.inline_max):
            # cheaper than a thread hop
            return self._prepare(data, prefix, internaldate, crlf, imap)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._prep, self._prepare, data, prefix,
                                          internaldate, crlf, imap)

    def _insert_message(self, conn: sqlite3.Connection, ctx: WriteContext,
                        msg: PreparedMessage, refs: int = 0) -> int:
        cur = conn.execute("INSERT INTO messages(size, internaldate, body, blob, info, refs,"
                           " imap_envelope, imap_bodystructure) VALUES (?,?,?,?,?,?,?,?)",
                           (msg.size, msg.internaldate, msg.body, msg.blob, msg.info, refs,
                            msg.envelope, msg.bodystructure))
        return int(cur.lastrowid or 0)

    def _add_entry(self, conn: sqlite3.Connection, mailbox_id: int, message_id: int,
                   flags: Flags, size: int, internaldate: float, modseq: int | None = None,
                   bump_refs: bool = True) -> tuple[int, int]:
        """Insert one entry with a fresh UID (and a fresh modseq unless given)."""
        if modseq is None:
            r = conn.execute("UPDATE mailboxes SET uidnext=uidnext+1,"
                             " highestmodseq=highestmodseq+1 WHERE id=?"
                             " RETURNING uidnext-1, highestmodseq", (mailbox_id,)).fetchone()
        else:
            r = conn.execute("UPDATE mailboxes SET uidnext=uidnext+1 WHERE id=?"
                             " RETURNING uidnext-1, ?", (mailbox_id, modseq)).fetchone()
        uid, ms = int(r[0]), int(r[1])
        conn.execute("INSERT INTO entries(mailbox_id, uid, message_id, flags, keywords, modseq,"
                     " savedate, size, internaldate) VALUES (?,?,?,?,?,?,?,?,?)",
                     (mailbox_id, uid, message_id, flags.bits, " ".join(flags.keywords), ms,
                      self.clock(), size, internaldate))
        if bump_refs:
            conn.execute("UPDATE messages SET refs=refs+1 WHERE id=?", (message_id,))
        return uid, ms

    def _charge(self, conn: sqlite3.Connection, user_id: int, size: int) -> None:
        """Add ``size`` to the user's usage, refusing to cross the quota (one statement
        on the common path: the writer thread's time is the group commit's budget)."""
        r = conn.execute("UPDATE users SET used=used+? WHERE id=? AND (quota=0 OR"
                         " used+?<=quota) RETURNING used", (size, user_id, size)).fetchone()
        if r is not None:
            return
        q = conn.execute("SELECT quota, used FROM users WHERE id=?", (user_id,)).fetchone()
        if q is None:
            raise NotFound("user vanished")
        raise OverQuota(f"quota exceeded ({q[1] + size} > {q[0]} bytes)")

    def _drop_message_if_orphan(self, conn: sqlite3.Connection, ctx: WriteContext,
                                message_id: int) -> None:
        r = conn.execute("SELECT refs, blob FROM messages WHERE id=?", (message_id,)).fetchone()
        if r is not None and r[0] <= 0:
            conn.execute("DELETE FROM messages WHERE id=?", (message_id,))
            if r[1] is not None:
                name = r[1]
                # only once the row's deletion is on disk: if a power cut undid a
                # non-durable expunge, the row would name a missing file
                ctx.after_durable_commit(lambda: self.blobs.remove(name))

    def _discard_prepared(self, msg: PreparedMessage) -> None:
        if msg.blob is not None:
            self.blobs.remove(msg.blob)

    async def append(self, user_id: int, mailbox: str, data: bytes | Path,
                     flags: Flags = NO_FLAGS, internaldate: float | None = None) -> AppendResult:
        """Store one message in one mailbox (IMAP APPEND). Returns once durable.
        Raises NotFound (no such mailbox) or OverQuota."""
        results = await self.append_many(user_id, mailbox, [(data, flags, internaldate)])
        return results[0]

    async def append_many(self, user_id: int, mailbox: str,
                          items: Sequence[tuple[bytes | Path, Flags, float | None]]
                          ) -> list[AppendResult]:
        """All-or-nothing append of several messages (MULTIAPPEND, RFC 3502)."""
        prepared = [await self._prepare_async(d, b"", when) for d, _, when in items]

        def op(conn: sqlite3.Connection, ctx: WriteContext) -> list[AppendResult]:
            mb = self._require_mailbox(conn, user_id, mailbox)
            out = []
            for msg, (_, flags, _) in zip(prepared, items, strict=True):
                self._charge(conn, user_id, msg.size)
                mid = self._insert_message(conn, ctx, msg, refs=1)
                uid, ms = self._add_entry(conn, mb.id, mid, flags, msg.size, msg.internaldate,
                                          bump_refs=False)
                out.append(AppendResult(mb.id, mb.uidvalidity, uid, ms, mid))
            ctx.after_commit(lambda: self.feed.publish([mb.id]))
            return out

        try:
            return await self._write(op)
        except BaseException:
            for msg in prepared:
                self._discard_prepared(msg)
            raise

    async def deliver(self, data: bytes | Path, user_ids: Sequence[int], *,
                      prefix: bytes = b"", mailbox: str = "INBOX", flags: Flags = NO_FLAGS,
                      internaldate: float | None = None, crlf: bool = False
                      ) -> list[DeliveryResult]:
        """Deliver one message to several local accounts, sharing one stored body.

        ``prefix`` (e.g. Return-Path) is prepended. A recipient whose ``mailbox`` does not
        exist gets the message in INBOX. The result list matches ``user_ids``; a
        per-recipient failure (OverQuota, NotFound) is reported there, not raised."""
        msg = await self._prepare_async(data, prefix, internaldate, crlf)

        def op(conn: sqlite3.Connection, ctx: WriteContext) -> list[DeliveryResult]:
            mid = self._insert_message(conn, ctx, msg)
            out: list[DeliveryResult] = []
            touched: list[int] = []
            for user_id in user_ids:
                conn.execute("SAVEPOINT rcpt")
                try:
                    mb = self._get_mailbox(conn, user_id, normalize_mailbox_name(mailbox))
                    if mb is None:
                        mb = self._require_mailbox(conn, user_id, "INBOX")
                    self._charge(conn, user_id, msg.size)
                    uid, ms = self._add_entry(conn, mb.id, mid, flags, msg.size, msg.internaldate,
                                          bump_refs=False)
                except StoreError as e:
                    conn.execute("ROLLBACK TO rcpt")
                    conn.execute("RELEASE rcpt")
                    out.append(DeliveryResult(user_id, None, e))
                    continue
                conn.execute("RELEASE rcpt")
                touched.append(mb.id)
                out.append(DeliveryResult(user_id, AppendResult(mb.id, mb.uidvalidity, uid,
                                                                ms, mid)))
            if touched:
                conn.execute("UPDATE messages SET refs=? WHERE id=?", (len(touched), mid))
                ctx.after_commit(lambda: self.feed.publish(touched))
            else:
                conn.execute("DELETE FROM messages WHERE id=?", (mid,))
                if msg.blob is not None:
                    name = msg.blob
                    ctx.after_durable_commit(lambda: self.blobs.remove(name))
            return out

        try:
            return await self._write(op)
        except BaseException:
            self._discard_prepared(msg)
            raise

    async def quota_ok(self, user_id: int, size: int) -> bool:
        """Would ``size`` more bytes fit? (SMTP asks at RCPT with the SIZE parameter.)"""

        def q(conn: sqlite3.Connection) -> bool:
            r = conn.execute("SELECT quota, used FROM users WHERE id=?", (user_id,)).fetchone()
            return r is not None and (not r[0] or r[1] + size <= r[0])

        return self._read_now(q)

    # ------------------------------------------------------------------ flags, copy, expunge

    async def store_flags(self, mailbox_id: int, uids: Iterable[int], mode: str, flags: Flags,
                          unchangedsince: int | None = None
                          ) -> tuple[list[Entry], list[int]]:
        """Change flags (mode "set", "add" or "remove") of the existing ``uids``.

        Returns (entries whose flags changed, with their new modseq; UIDs refused because
        their modseq is above ``unchangedsince`` (RFC 7162 section 3.1.3)). All changes
        of one call share one new modseq."""
        if mode not in ("set", "add", "remove"):
            raise Invalid(f"bad flag mode {mode}")
        wanted = sorted(set(uids))

        def op(conn: sqlite3.Connection, ctx: WriteContext) -> tuple[list[Entry], list[int]]:
            rows = self._select_uids(conn, "SELECT uid, flags, keywords, modseq FROM entries",
                                     mailbox_id, wanted)
            failed: list[int] = []
            updates: list[tuple[int, str, int]] = []
            for uid, bits, kwtext, modseq in rows:
                if unchangedsince is not None and modseq > unchangedsince:
                    failed.append(uid)
                    continue
                kws = kwtext.split(" ") if kwtext else []
                if mode == "set":
                    nbits, nkws = flags.bits, list(flags.keywords)
                elif mode == "add":
                    nbits = bits | flags.bits
                    lower = {k.lower() for k in kws}
                    nkws = kws + [k for k in flags.keywords if k.lower() not in lower]
                else:
                    nbits = bits & ~flags.bits
                    drop = {k.lower() for k in flags.keywords}
                    nkws = [k for k in kws if k.lower() not in drop]
                ntext = " ".join(nkws)
                if nbits != bits or ntext != kwtext:
                    updates.append((nbits, ntext, uid))
            if not updates:
                return [], failed
            ms = conn.execute("UPDATE mailboxes SET highestmodseq=highestmodseq+1 WHERE id=?"
                              " RETURNING highestmodseq", (mailbox_id,)).fetchone()[0]
            conn.executemany(f"UPDATE entries SET flags=?, keywords=?, modseq={int(ms)}"
                             " WHERE mailbox_id=? AND uid=?",
                             [(b, k, mailbox_id, u) for b, k, u in updates])
            changed = self._select_uids(conn, self._ENTRY_SQL,
                                        mailbox_id, [u for _, _, u in updates], prefix="e.")
            ctx.after_commit(lambda: self.feed.publish([mailbox_id]))
            return [self._entry(r) for r in changed], failed

        return await self._write(op, durable=False)

    @staticmethod
    def _select_uids(conn: sqlite3.Connection, sql: str, mailbox_id: int, uids: list[int],
                     prefix: str = "") -> list[Any]:
        out: list[Any] = []
        for i in range(0, len(uids), 500):
            chunk = uids[i:i + 500]
            out += conn.execute(
                f"{sql} WHERE {prefix}mailbox_id=? AND {prefix}uid IN"
                f" ({','.join('?' * len(chunk))}) ORDER BY {prefix}uid",
                (mailbox_id, *chunk)).fetchall()
        return out

    async def copy(self, src: Mailbox, uids: Iterable[int], dst: Mailbox, move: bool = False
                   ) -> list[tuple[int, int]]:
        """Copy (or move) entries between two mailboxes of the same user; the message
        bytes are shared. Returns [(source UID, new UID)] in source UID order (for
        COPYUID, RFC 4315). Raises OverQuota (copies count against the quota)."""
        if src.user_id != dst.user_id:
            raise Invalid("copy between accounts is not allowed")
        wanted = sorted(set(uids))

        def op(conn: sqlite3.Connection, ctx: WriteContext) -> list[tuple[int, int]]:
            if conn.execute("SELECT 1 FROM mailboxes WHERE id=? AND user_id=?",
                            (dst.id, dst.user_id)).fetchone() is None:
                raise NotFound("target mailbox vanished")
            return self._copy(conn, ctx, src, wanted, dst, move)

        return await self._write(op)

    def _copy(self, conn: sqlite3.Connection, ctx: WriteContext, src: Mailbox,
              uids: list[int], dst: Mailbox, move: bool) -> list[tuple[int, int]]:
        rows = self._select_uids(
            conn, "SELECT e.uid, e.message_id, e.flags, e.keywords, e.size, e.internaldate"
            " FROM entries e", src.id, uids, prefix="e.")
        if not rows:
            return []
        if not move:
            self._charge(conn, dst.user_id, sum(r[4] for r in rows))
        ms = conn.execute("UPDATE mailboxes SET highestmodseq=highestmodseq+1 WHERE id=?"
                          " RETURNING highestmodseq", (dst.id,)).fetchone()[0]
        out = []
        for uid, mid, bits, kw, size, when in rows:
            new_uid, _ = self._add_entry(conn, dst.id, mid,
                                         Flags(bits, tuple(kw.split(" ")) if kw else ()),
                                         size, when, ms)
            out.append((uid, new_uid))
        if move:
            self._expunge_uids(conn, ctx, src.id, [r[0] for r in rows], charge_back=False)
        ctx.after_commit(lambda: self.feed.publish([src.id, dst.id]))
        return out

    async def expunge(self, mailbox_id: int, uids: Iterable[int] | None = None,
                      only_deleted: bool = True) -> list[int]:
        """Remove entries flagged \\Deleted (only those in ``uids`` when given: UID
        EXPUNGE, RFC 4315). ``only_deleted=False`` (POP3's UPDATE state) removes the
        given ``uids`` whatever their flags. Returns the expunged UIDs in order."""
        restrict = None if uids is None else sorted(set(uids))

        def op(conn: sqlite3.Connection, ctx: WriteContext) -> list[int]:
            if restrict is None:
                found = [r[0] for r in conn.execute(
                    "SELECT uid FROM entries WHERE mailbox_id=? AND flags & ? ORDER BY uid",
                    (mailbox_id, DELETED))]
            else:
                found = [r[0] for r in self._select_uids(
                    conn, "SELECT uid, flags FROM entries", mailbox_id, restrict)
                    if r[1] & DELETED or not only_deleted]
            if found:
                self._expunge_uids(conn, ctx, mailbox_id, found, charge_back=True)
                ctx.after_commit(lambda: self.feed.publish([mailbox_id]))
            return found

        return await self._write(op, durable=False)

    def _expunge_uids(self, conn: sqlite3.Connection, ctx: WriteContext, mailbox_id: int,
                      uids: list[int], charge_back: bool) -> None:
        rows = self._select_uids(
            conn, "SELECT e.uid, e.message_id, e.size FROM entries e", mailbox_id, uids,
            prefix="e.")
        if not rows:
            return
        ms = conn.execute("UPDATE mailboxes SET highestmodseq=highestmodseq+1 WHERE id=?"
                          " RETURNING highestmodseq, user_id", (mailbox_id,)).fetchone()
        conn.executemany("DELETE FROM entries WHERE mailbox_id=? AND uid=?",
                         [(mailbox_id, r[0]) for r in rows])
        conn.executemany("INSERT OR REPLACE INTO expunged(mailbox_id, uid, modseq)"
                         " VALUES (?,?,?)", [(mailbox_id, r[0], ms[0]) for r in rows])
        if charge_back:
            conn.execute("UPDATE users SET used=max(0, used-?) WHERE id=?",
                         (sum(r[2] for r in rows), ms[1]))
        for _, mid, _ in rows:
            conn.execute("UPDATE messages SET refs=refs-1 WHERE id=?", (mid,))
            self._drop_message_if_orphan(conn, ctx, mid)

    def _drop_entries(self, conn: sqlite3.Connection, ctx: WriteContext, mailbox_id: int,
                      uids: list[int] | None) -> None:
        if uids is None:
            uids = [r[0] for r in conn.execute("SELECT uid FROM entries WHERE mailbox_id=?",
                                               (mailbox_id,))]
        self._expunge_uids(conn, ctx, mailbox_id, uids, charge_back=True)

    # ------------------------------------------------------------------ outbound queue

    async def enqueue(self, data: bytes | Path, mail_from: str,
                      recipients: Sequence[QueuedRecipient], *, envid: str = "", ret: str = "",
                      prefix: bytes = b"", crlf: bool = False) -> QueueItem:
        """Put a message for remote recipients into the durable outbound queue."""
        if not recipients:
            raise Invalid("nothing to queue: no recipients")
        msg = await self._prepare_async(data, prefix, None, crlf, imap=False)
        now = self.clock()

        def op(conn: sqlite3.Connection, ctx: WriteContext) -> QueueItem:
            mid = self._insert_message(conn, ctx, msg, refs=1)
            qid = conn.execute("INSERT INTO queue(message_id, mail_from, envid, ret, created)"
                               " VALUES (?,?,?,?,?)", (mid, mail_from, envid, ret, now)).lastrowid
            conn.executemany("INSERT INTO queue_recipients(queue_id, address, notify, orcpt,"
                             " next_attempt) VALUES (?,?,?,?,?)",
                             [(qid, r.address, r.notify, r.orcpt, now) for r in recipients])
            return QueueItem(int(qid or 0), mid, mail_from, tuple(recipients), envid, ret, now)

        try:
            return await self._write(op)
        except BaseException:
            self._discard_prepared(msg)
            raise

    async def list_queue(self) -> list[QueueItem]:
        def q(conn: sqlite3.Connection) -> list[QueueItem]:
            items = []
            for qid, mid, mf, envid, ret, created in conn.execute(
                    "SELECT id, message_id, mail_from, envid, ret, created FROM queue ORDER BY id"):
                rcpts = tuple(QueuedRecipient(a, n, o) for a, n, o in conn.execute(
                    "SELECT address, notify, orcpt FROM queue_recipients WHERE queue_id=?"
                    " AND state='pending' ORDER BY id", (qid,)))
                items.append(QueueItem(qid, mid, mf, rcpts, envid, ret, created))
            return items

        return await self._read(q)

    async def remove_queued(self, queue_id: int) -> None:
        def op(conn: sqlite3.Connection, ctx: WriteContext) -> None:
            r = conn.execute("SELECT message_id FROM queue WHERE id=?", (queue_id,)).fetchone()
            if r is None:
                raise NotFound(f"no queued message {queue_id}")
            conn.execute("DELETE FROM queue_recipients WHERE queue_id=?", (queue_id,))
            conn.execute("DELETE FROM queue WHERE id=?", (queue_id,))
            conn.execute("UPDATE messages SET refs=refs-1 WHERE id=?", r)
            self._drop_message_if_orphan(conn, ctx, r[0])

        await self._write(op)

    # ------------------------------------------------------------------ integrity

    async def check_integrity(self) -> list[str]:
        """Consistency problems found (empty when healthy): refcounts, quotas, UIDs."""

        def q(conn: sqlite3.Connection) -> list[str]:
            problems = []
            ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
            if ok != "ok":
                problems.append(f"sqlite: {ok}")
            for mid, refs, real in conn.execute(
                    "SELECT m.id, m.refs, (SELECT count(*) FROM entries e WHERE e.message_id=m.id)"
                    " + (SELECT count(*) FROM queue q WHERE q.message_id=m.id) FROM messages m"):
                if refs != real:
                    problems.append(f"message {mid}: refs {refs} != {real}")
            for mb, uidnext, maxuid, hms, maxms in conn.execute(
                    "SELECT b.id, b.uidnext, (SELECT max(uid) FROM entries e WHERE"
                    " e.mailbox_id=b.id), b.highestmodseq, (SELECT max(modseq) FROM entries e"
                    " WHERE e.mailbox_id=b.id) FROM mailboxes b"):
                if maxuid is not None and maxuid >= uidnext:
                    problems.append(f"mailbox {mb}: uid {maxuid} >= uidnext {uidnext}")
                if maxms is not None and maxms > hms:
                    problems.append(f"mailbox {mb}: modseq {maxms} > highest {hms}")
            for blob, size in conn.execute("SELECT blob, size FROM messages"
                                           " WHERE blob IS NOT NULL"):
                p = self.blobs.path(blob)
                if not p.exists() or p.stat().st_size != size:
                    problems.append(f"blob {blob} missing or wrong size")
            return problems

        return await self._read(q)


def _file_chunks(prefix: bytes, path: Path, size: int = 1 << 20) -> Iterable[bytes]:
    if prefix:
        yield prefix
    with open(path, "rb") as f:
        while chunk := f.read(size):
            yield chunk
