"""The queue runner: takes due recipients from the store and delivers them.

Theory of operation. A *pass* (``run_once``, or the background loop's) asks the
store for due recipients, groups them per message and recipient domain into jobs,
routes each domain (``routing.Router``) and groups the jobs by route key, so domains
sharing next hops share connections. Each group gets up to
``max_sessions_per_destination`` workers (and the whole runner at most
``max_sessions`` connections); a worker opens one session and sends job after job
over it (connection reuse), reconnecting when the peer drops it.

Per job, the recipients go in transactions of at most ``max_recipients`` (RFC 5321
section 4.5.3.1.8's minimum of 100); recipients refused with 452 4.5.3 while others
were accepted are sent again at once in a new transaction (section 4.5.3.1.10).
Each recipient's reply goes through ``scheduler.decide`` (deliver / fail / retry
later and which DSN), the DSNs are built (``dsn.build_dsn``) and handed to the
``bounce`` hook, and only then the outcome is written (``QueueStore.record``). So
after a crash (kill -9) at any point a recipient is either recorded or still
pending: at-least-once, never lost. A DSN may then go out twice; a message never
vanishes.

The background loop runs a pass when woken (``wake()``, called after a message was
queued) or when the earliest ``next_attempt`` comes, at the latest every
``poll_interval`` seconds. Deliveries run as tasks, so a slow destination does not
hold up the next pass; recipients in flight are excluded from it. ``stop()`` lets
running deliveries finish for ``grace`` seconds, then cancels them (their
recipients stay pending).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from postroom.dns.resolver import Resolver
from postroom.queue.delivery import (
    Connector,
    ContentInfo,
    make_envelope,
    open_session,
    scan_content,
)
from postroom.queue.dsn import DsnRecipient, build_dsn, header_section, returns_full
from postroom.queue.models import FAILED, PENDING, QueueEntry, QueueRecipient, RecipientUpdate
from postroom.queue.routing import Route, Router, RoutingError
from postroom.queue.scheduler import Decision, RetryPolicy, decide
from postroom.queue.sqlite_queue import SqliteQueueStore
from postroom.queue.store import QueueStore
from postroom.smtp.address import domain_to_ascii
from postroom.smtp.client import SessionOptions, SmtpClientSession
from postroom.smtp.client_protocol import (
    CONNECTION_LOST,
    DEFAULT_TIMEOUTS,
    Credentials,
    Timeouts,
    TlsMode,
)
from postroom.smtp.codes import Reply
from postroom.store.models import QueuedRecipient
from postroom.store.sqlite import SqliteStore

log = logging.getLogger("postroom.relay")

HEADER_READ = 256 * 1024
DEFAULT_POLICY = RetryPolicy()
LOCAL_ERROR = Reply(451, "4.3.0", "Local error in routing; will try again")


@dataclass(frozen=True, slots=True)
class Bounce:
    """A DSN to send from the null sender ``<>`` to ``recipient`` (the original
    envelope sender). ``action``: failed, delayed, delivered or relayed."""

    recipient: str
    message: bytes
    action: str
    queue_id: int


BounceHook = Callable[[Bounce], Awaitable[None]]


@dataclass
class PassStats:
    """What one pass did (for tests and logs)."""

    delivered: int = 0
    failed: int = 0
    deferred: int = 0
    dsns: int = 0
    sessions: int = 0
    taken: int = 0  # recipients the pass took up


@dataclass
class _Job:
    entry: QueueEntry
    recipients: list[QueueRecipient]
    domain: str


@dataclass
class _Group:
    """The work for one route (next-hop set): a queue that passes feed and that up to
    ``max_sessions_per_destination`` workers drain, each over one reused session."""

    route: Route
    pending: deque[_Job]
    sem: asyncio.Semaphore
    workers: int = 0
    more: asyncio.Event = field(default_factory=asyncio.Event)


COALESCE_SECONDS = 0.05
READ_ONCE_MAX = 1 << 20
LINGER_SECONDS = 1.0


class QueueRunner:
    """Delivers the outbound queue. See the module docstring."""

    def __init__(
        self,
        store: SqliteStore,
        hostname: str,
        resolver: Resolver,
        *,
        smarthost: str = "",
        routes: Mapping[str, str] | None = None,
        smarthost_credentials: tuple[str, str] | None = None,
        clock: Callable[[], float] = time.time,
        policy: RetryPolicy = DEFAULT_POLICY,
        bounce: BounceHook | None = None,
        queue: QueueStore | None = None,
        tls_mode: TlsMode = TlsMode.OPPORTUNISTIC,
        ssl_context: ssl.SSLContext | None = None,
        timeouts: Timeouts = DEFAULT_TIMEOUTS,
        max_sessions: int = 20,
        max_sessions_per_destination: int = 10,
        max_recipients: int = 100,
        batch: int = 500,
        poll_interval: float = 60.0,
        mx_port: int = 25,
        ipv6: bool = True,
        connector: Connector | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.hostname = hostname
        self.queue: QueueStore = queue if queue is not None else SqliteQueueStore(store)
        self.router = Router(
            resolver,
            hostname,
            smarthost=smarthost,
            routes=routes,
            mx_port=mx_port,
            ipv6=ipv6,
            rng=rng,
        )
        self.clock = clock
        self.policy = policy
        self.bounce: BounceHook = bounce if bounce is not None else self._enqueue_bounce
        self.credentials = Credentials(*smarthost_credentials) if smarthost_credentials else None
        self.tls_mode = tls_mode
        self.ssl_context = ssl_context
        self.timeouts = timeouts
        self.max_sessions_per_destination = max_sessions_per_destination
        self.max_recipients = max_recipients
        self.batch = batch
        self.poll_interval = poll_interval
        self.connector: Connector = connector or SmtpClientSession.connect
        self._sessions = asyncio.Semaphore(max_sessions)
        self._groups: dict[str, _Group] = {}
        self._linger = True
        self._in_flight: set[int] = set()
        self.max_in_flight = max(batch * 4, 2000)
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the background loop (a first pass runs at once)."""
        if self._loop_task is None:
            self._stopping = False
            self._loop_task = asyncio.create_task(self._loop(), name="queue-runner")

    async def stop(self, grace: float = 30.0) -> None:
        """Stop passes; let running deliveries finish for ``grace`` s, cancel the rest."""
        self._stopping = True
        self._wake.set()
        for g in self._groups.values():  # lingering sessions: close now
            g.more.set()
        if self._loop_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        tasks = list(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace)
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)

    def wake(self) -> None:
        """Something was queued (or made due): run a pass now, not at the next poll."""
        self._wake.set()

    async def retry_now(self, queue_id: int | None = None) -> int:
        """``queue retry``: make pending recipients due now and wake the loop."""
        n = await self.queue.retry_now(self.clock(), queue_id)
        self.wake()
        return n

    async def run_once(self) -> PassStats:
        """One full pass, waiting for every delivery it started (tests, tools)."""
        self._linger = False  # a one-off pass: sessions close when their work is done
        try:
            stats = await self._pass(wait=True)
            while self._tasks:
                await asyncio.gather(*list(self._tasks))
        finally:
            self._linger = True
        return stats

    async def _loop(self) -> None:
        while not self._stopping:
            self._wake.clear()
            delay = self.poll_interval
            try:
                stats = await self._pass(wait=False)
                delay = await self._delay(took_some=stats.taken > 0)
            except Exception:
                log.exception("queue pass failed")
            if self._stopping:
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)
            if self._in_flight and not self._stopping:
                # Work is already flowing: let wake-ups (one per queued message under
                # load) coalesce into one pass instead of one scan each.
                await asyncio.sleep(COALESCE_SECONDS)

    async def _delay(self, *, took_some: bool) -> float:
        due = await self.queue.next_due()
        if due is None:
            return self.poll_interval
        wait = due - self.clock()
        if wait <= 0:
            # Due but not taken: beyond this pass's batch (go again at once) or in
            # flight (their tasks wake us when they are done).
            return 0.0 if took_some and not self._in_flight else self.poll_interval
        return min(wait, self.poll_interval)

    # ------------------------------------------------------------------ a pass

    async def _pass(self, *, wait: bool) -> PassStats:
        stats = PassStats()
        now = self.clock()
        room = min(self.batch, self.max_in_flight - len(self._in_flight))
        if room <= 0:  # enough in flight; finishing work wakes the loop again
            return stats
        entries = await self.queue.due(now, room, exclude=self._in_flight)
        if not entries:
            return stats
        jobs: dict[str, list[_Job]] = {}
        for entry in entries:
            by_domain: dict[str, list[QueueRecipient]] = {}
            for r in entry.recipients:
                self._in_flight.add(r.id)
                try:
                    domain = domain_to_ascii(r.domain)
                except (UnicodeError, ValueError):
                    domain = r.domain.lower()
                by_domain.setdefault(domain, []).append(r)
            for domain, rcpts in by_domain.items():
                jobs.setdefault(domain, []).append(_Job(entry, rcpts, domain))
        stats.taken = sum(len(e.recipients) for e in entries)
        groups: dict[str, tuple[Route, list[_Job]]] = {}
        started: list[asyncio.Task[None]] = []
        routes = await asyncio.gather(*(self._route(d) for d in jobs))
        for domain_jobs, route in zip(jobs.values(), routes, strict=True):
            if isinstance(route, Reply):
                for job in domain_jobs:
                    started.append(self._spawn(self._finish_all(job, route, stats)))
            else:
                groups.setdefault(route.key, (route, []))[1].extend(domain_jobs)
        for route, group_jobs in groups.values():
            started += self._feed(route, group_jobs, stats)
        if wait and started:
            await asyncio.gather(*started)
        return stats

    async def _route(self, domain: str) -> Route | Reply:
        """The route for ``domain``, or the reply its recipients get instead."""
        try:
            return await self.router.route(domain)
        except RoutingError as e:
            return e.reply
        except Exception:
            log.exception("routing %s failed", domain)
            return LOCAL_ERROR

    def _track(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        """Run ``coro`` as a task that ``stop`` and ``run_once`` wait for."""

        async def run() -> None:
            try:
                await coro
            except Exception:
                log.exception("recording a delivery outcome failed")

        task = asyncio.create_task(run())
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self.wake()  # recipients left flight: room for the next pass (coalesced)

        task.add_done_callback(done)
        return task

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        async def run() -> None:
            try:
                await coro
            except Exception:
                log.exception("delivery task failed")

        task = asyncio.create_task(run())
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self.wake()

        task.add_done_callback(done)
        return task

    def _feed(self, route: Route, jobs: list[_Job], stats: PassStats
              ) -> list[asyncio.Task[None]]:
        """Queue ``jobs`` on their route's group; start workers up to the limit. A
        route already being delivered keeps its sessions (no reconnect per pass)."""
        g = self._groups.get(route.key)
        if g is None:
            g = _Group(route, deque(), asyncio.Semaphore(self.max_sessions_per_destination))
            self._groups[route.key] = g
        g.pending.extend(jobs)
        g.more.set()
        started = []
        while g.workers < min(self.max_sessions_per_destination, len(g.pending)):
            g.workers += 1
            started.append(self._spawn(self._group_worker(g, stats)))
        return started

    async def _group_worker(self, g: _Group, stats: PassStats) -> None:
        try:
            await self._worker(g.route, g.pending, g.sem, stats, g.more)
        finally:
            g.workers -= 1
            if g.workers == 0:
                if self._groups.get(g.route.key) is g:
                    del self._groups[g.route.key]
                while g.pending:  # cancelled: still pending in the store
                    self._release(g.pending.popleft())

    def _options(self, route: Route) -> SessionOptions:
        creds = self.credentials if route.relay else None
        loopback = all(
            h.host.startswith("127.") or h.host in ("::1", "localhost") for h in route.hops
        )
        return SessionOptions(
            helo_name=self.hostname,
            tls_mode=self.tls_mode,
            ssl_context=self.ssl_context,
            credentials=creds,
            allow_plaintext_auth=loopback,
            timeouts=self.timeouts,
        )

    async def _worker(
        self,
        route: Route,
        pending: deque[_Job],
        sem: asyncio.Semaphore,
        stats: PassStats,
        more: asyncio.Event | None = None,
    ) -> None:
        async with sem, self._sessions:
            session: SmtpClientSession | None = None
            try:
                while True:
                    if not pending:
                        # Keep an open session a moment for the next pass's jobs to the
                        # same route (as Postfix's connection cache does) - unless every
                        # session slot is taken: then workers of other routes may be
                        # waiting for this one.
                        if (more is None or not self._linger or session is None
                                or not session.usable or self._sessions.locked()):
                            break
                        more.clear()
                        self.wake()  # out of work: let the next pass feed this route
                        try:
                            await asyncio.wait_for(more.wait(), LINGER_SECONDS)
                        except TimeoutError:
                            break
                        if not pending or self._stopping:
                            break
                    job = pending.popleft()
                    try:
                        if session is None or not session.usable:
                            if session is not None:
                                session.abort()
                            session = None
                            try:
                                session = await open_session(
                                    self.router, route, self._options(route), self.connector
                                )
                                stats.sessions += 1
                            except RoutingError as e:
                                await self._finish_all(job, e.reply, stats)
                                while pending:  # the destination is unreachable for all
                                    await self._finish_all(pending.popleft(), e.reply, stats)
                                return
                        await self._send_job(session, job, stats)
                    except BaseException:
                        self._release(job)  # not recorded: stays pending in the store
                        raise
            finally:
                if session is not None:
                    await session.quit()

    async def _send_job(self, session: SmtpClientSession, job: _Job, stats: PassStats) -> None:
        entry = job.entry
        mid = entry.message_id

        # A message of ordinary size is read from the store once, for the content scan
        # and the sending both; a large one is read in slices, twice, not held whole.
        whole: bytes | None = None
        if entry.size <= READ_ONCE_MAX:
            try:
                whole = await self.queue.read_message(mid, 0, entry.size)
            except Exception:  # reported below, by the scan's own read
                whole = None

        async def read(start: int, end: int) -> bytes:
            if whole is not None:
                return whole[start:end]
            return await self.queue.read_message(mid, start, end)

        try:
            info = await scan_content(read, entry.size)
        except Exception as e:
            log.error("queue %d: cannot read message %d: %s", entry.id, mid, e)
            info = ContentInfo(False, False)
        replies: dict[int, Reply] = {}
        peer_dsn = True
        for start in range(0, len(job.recipients), self.max_recipients):
            todo = job.recipients[start : start + self.max_recipients]
            while todo:
                if not session.usable:
                    for r in todo:
                        replies[r.id] = CONNECTION_LOST
                    break
                result = await session.send(make_envelope(entry, todo, info), read)
                peer_dsn = peer_dsn and result.dsn
                for r, reply in zip(todo, result.replies, strict=True):
                    replies[r.id] = reply
                again = [
                    r
                    for r, reply in zip(todo, result.replies, strict=True)
                    if reply.code == 452 and reply.enhanced in (None, "4.5.3")
                ]
                progress = any(reply.positive for reply in result.replies)
                todo = again if again and progress else []
        # Record in the background: the session goes on with the next message while the
        # outcome is committed (at-least-once: until it is, the recipients stay in
        # flight here and pending in the store).
        self._track(self._finish(job, replies, peer_dsn, session.host, stats))

    async def _finish_all(self, job: _Job, reply: Reply, stats: PassStats) -> None:
        await self._finish(job, {r.id: reply for r in job.recipients}, True, "", stats)

    def _release(self, job: _Job) -> None:
        for r in job.recipients:
            self._in_flight.discard(r.id)

    # ------------------------------------------------------------------ outcomes

    async def _finish(
        self,
        job: _Job,
        replies: Mapping[int, Reply],
        peer_dsn: bool,
        remote_mta: str,
        stats: PassStats,
    ) -> None:
        """Decide, notify, record — in that order (see the module docstring)."""
        entry = job.entry
        now = self.clock()
        decisions = [
            decide(
                r,
                replies.get(r.id, CONNECTION_LOST),
                created=entry.created,
                now=now,
                policy=self.policy,
                peer_dsn=peer_dsn,
                null_sender=not entry.mail_from,
            )
            for r in job.recipients
        ]
        updates = [d.update for d in decisions]
        try:
            updates = await self._notify(job, decisions, remote_mta, now, stats)
            await self.queue.record(entry.id, updates)
        finally:
            self._release(job)
        for u in updates:
            if u.state == PENDING:
                stats.deferred += 1
            elif u.state == FAILED:
                stats.failed += 1
            else:
                stats.delivered += 1
        for r, d in zip(job.recipients, decisions, strict=True):
            log.info("queue %d: <%s> %s: %s", entry.id, r.address, d.update.state, d.reply)

    async def _notify(
        self,
        job: _Job,
        decisions: Sequence[Decision],
        remote_mta: str,
        now: float,
        stats: PassStats,
    ) -> list[RecipientUpdate]:
        """Send the DSNs the decisions call for; returns the updates to record (a
        failure whose DSN could not be handed over stays pending, to try again)."""
        entry = job.entry
        updates = [d.update for d in decisions]
        by_action: dict[str, list[int]] = {}
        for i, d in enumerate(decisions):
            if d.dsn is not None:
                by_action.setdefault(d.dsn, []).append(i)
        for action, indexes in by_action.items():
            rcpts = [
                DsnRecipient(
                    address=job.recipients[i].address,
                    action=decisions[i].dsn or "failed",
                    reply=decisions[i].reply,
                    orcpt=job.recipients[i].orcpt,
                    remote_mta=remote_mta,
                    last_attempt=now,
                    will_retry_until=entry.created + self.policy.max_age
                    if action == "delayed"
                    else None,
                )
                for i in indexes
            ]
            try:
                full = returns_full(entry.ret, [action], entry.size)
                original = await self._original(entry, full)
                message = build_dsn(
                    reporting_mta=self.hostname,
                    sender=entry.mail_from,
                    recipients=rcpts,
                    original=original,
                    full=full,
                    envid=entry.envid,
                    arrival=entry.created,
                    now=now,
                )
                await self.bounce(Bounce(entry.mail_from, message, action, entry.id))
                stats.dsns += 1
            except Exception:
                log.exception(
                    "queue %d: cannot send the %s DSN to <%s>", entry.id, action, entry.mail_from
                )
                if action == "failed":
                    for i in indexes:
                        u = updates[i]
                        updates[i] = RecipientUpdate(
                            u.recipient_id,
                            PENDING,
                            u.attempts,
                            now + self.policy.first_retry,
                            u.last_reply,
                        )
        return updates

    async def _original(self, entry: QueueEntry, full: bool) -> bytes:
        if full:
            return await self.queue.read_message(entry.message_id)
        head = await self.queue.read_message(entry.message_id, 0, HEADER_READ)
        return header_section(head)

    async def _enqueue_bounce(self, bounce: Bounce) -> None:
        """The default hook: queue the DSN for relay like any message (null sender).
        The application should wire local delivery for local senders instead."""
        await self.store.enqueue(bounce.message, "", [QueuedRecipient(bounce.recipient)])
        self.wake()
