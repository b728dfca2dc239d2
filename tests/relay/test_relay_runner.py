"""The queue runner end to end: real store, real sockets (loopback), fake clock."""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trustme
from relay_fakesmtp import FakeSmtp

from postroom import dkim
from postroom.dns.mock import MockResolver
from postroom.dns.real import DnsResolver
from postroom.dns.testserver import LoopbackDnsServer
from postroom.queue.runner import Bounce, QueueRunner
from postroom.queue.scheduler import RetryPolicy
from postroom.queue.sqlite_queue import SqliteQueueStore
from postroom.queue.submit import sign_and_enqueue
from postroom.smtp.client_protocol import Timeouts, TlsMode
from postroom.store.models import QueuedRecipient
from postroom.store.sqlite import SqliteStore

MSG = (
    b"From: Alice <alice@here.test>\r\nTo: bob@remote.test\r\nSubject: Hi\r\n"
    b"Message-ID: <1@here.test>\r\n\r\nHello Bob.\r\n.leading dot\r\n"
)
T0 = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


class World:
    """A store, a fake peer, a runner routed to it, and the DSNs it produced."""

    def __init__(
        self,
        store: SqliteStore,
        peer: FakeSmtp,
        runner: QueueRunner,
        clock: Clock,
        bounces: list[Bounce],
    ) -> None:
        self.store = store
        self.peer = peer
        self.runner = runner
        self.clock = clock
        self.bounces = bounces
        self.queue = SqliteQueueStore(store)

    async def enqueue(
        self,
        *rcpts: str | QueuedRecipient,
        sender: str = "alice@here.test",
        data: bytes = MSG,
        **kw: Any,
    ) -> int:
        recipients = [r if isinstance(r, QueuedRecipient) else QueuedRecipient(r) for r in rcpts]
        item = await self.store.enqueue(data, sender, recipients, **kw)
        return item.id

    async def states(self, queue_id: int) -> list[str]:
        entry = await self.queue.get(queue_id)
        return [] if entry is None else [r.state for r in entry.recipients]


def world(
    tmp_path: Path,
    test: Callable[[World], Awaitable[None]],
    *,
    peer: FakeSmtp | None = None,
    routes: bool = True,
    **runner_kw: Any,
) -> None:
    async def main() -> None:
        clock = Clock()
        store = await SqliteStore.open(tmp_path / "data", clock=clock)
        fake = await (peer or FakeSmtp()).start()
        bounces: list[Bounce] = []

        async def bounce(b: Bounce) -> None:
            bounces.append(b)

        runner_kw.setdefault("resolver", MockResolver())
        if routes:
            runner_kw.setdefault(
                "routes",
                {"remote.test": f"127.0.0.1:{fake.port}", "other.test": f"127.0.0.1:{fake.port}"},
            )
        runner_kw.setdefault("tls_mode", TlsMode.NONE)
        runner = QueueRunner(
            store,
            "mail.here.test",
            clock=clock,
            bounce=bounce,
            timeouts=Timeouts(
                greeting=5,
                mail=5,
                rcpt=5,
                data_init=5,
                data_block=5,
                data_end=5,
                command=5,
                connect=5,
            ),
            **runner_kw,
        )
        try:
            await asyncio.wait_for(test(World(store, fake, runner, clock, bounces)), 30)
            assert await store.check_integrity() == []
        finally:
            await runner.stop(grace=1)
            await fake.stop()
            await store.close()

    asyncio.run(main())


def test_delivers_and_removes_the_item(tmp_path: Path) -> None:
    async def t(w: World) -> None:
        qid = await w.enqueue("bob@remote.test", "carol@remote.test")
        stats = await w.runner.run_once()
        assert (stats.delivered, stats.failed, stats.deferred) == (2, 0, 0)
        assert await w.states(qid) == []
        [m] = w.peer.messages
        assert m.mail_from == "alice@here.test" and m.rcpts == [
            "bob@remote.test",
            "carol@remote.test",
        ]
        assert m.data == MSG and f"SIZE={len(MSG)}" in m.mail_line
        assert w.bounces == []
        assert (
            await w.store._read(lambda c: c.execute("SELECT count(*) FROM messages").fetchone()[0])
            == 0
        )

    world(tmp_path, t)


def test_greylisting_is_retried_after_the_backoff(tmp_path: Path) -> None:
    peer = FakeSmtp(rcpt_reply=lambda addr, n: "451 4.7.1 Greylisted" if n == 1 else "250 OK")

    async def t(w: World) -> None:
        qid = await w.enqueue("bob@remote.test")
        stats = await w.runner.run_once()
        assert stats.deferred == 1 and w.peer.messages == []
        entry = await w.queue.get(qid)
        assert entry is not None
        r = entry.recipients[0]
        assert (r.attempts, r.next_attempt) == (1, T0 + 300)
        assert r.last_reply.startswith("451 4.7.1")
        w.clock.t += 299
        assert (await w.runner.run_once()).sessions == 0  # not due yet
        w.clock.t += 1
        assert (await w.runner.run_once()).delivered == 1
        assert len(w.peer.messages) == 1 and await w.states(qid) == []
        assert w.bounces == []

    world(tmp_path, t, peer=peer)


def test_permanent_refusal_fails_at_once_and_bounces_to_the_sender(tmp_path: Path) -> None:
    peer = FakeSmtp(
        rcpt_reply=lambda addr, n: (
            "550 5.1.1 No such user" if addr.startswith("ghost") else "250 OK"
        )
    )

    async def t(w: World) -> None:
        qid = await w.enqueue(
            "bob@remote.test",
            QueuedRecipient("ghost@remote.test", "FAILURE", "rfc822;Ghost@remote.test"),
            ret="HDRS",
            envid="E-42",
        )
        stats = await w.runner.run_once()
        assert (stats.delivered, stats.failed, stats.dsns) == (1, 1, 1)
        assert await w.states(qid) == []
        [b] = w.bounces
        assert b.recipient == "alice@here.test" and b.action == "failed"
        dsn = email.message_from_bytes(b.message, policy=email.policy.compat32)
        _, status, original = dsn.get_payload()  # type: ignore[misc]
        per_message, per_rcpt = status.get_payload()
        assert per_message["Original-Envelope-Id"] == "E-42"
        assert per_rcpt["Final-Recipient"] == "rfc822; ghost@remote.test"
        assert per_rcpt["Original-Recipient"] == "rfc822; Ghost@remote.test"
        assert per_rcpt["Status"] == "5.1.1"
        assert per_rcpt["Remote-MTA"] == "dns; 127.0.0.1"
        assert original.get_content_type() == "text/rfc822-headers"  # RET=HDRS

    world(tmp_path, t, peer=peer)


def test_no_dsn_to_the_null_sender_nor_against_notify_never(tmp_path: Path) -> None:
    peer = FakeSmtp(rcpt_reply=lambda addr, n: "550 5.1.1 No such user")

    async def t(w: World) -> None:
        await w.enqueue("ghost@remote.test", sender="")
        await w.enqueue(QueuedRecipient("ghost@remote.test", "NEVER"))
        stats = await w.runner.run_once()
        assert stats.failed == 2 and w.bounces == []

    world(tmp_path, t, peer=peer)


def test_dropped_connection_mid_data_is_retried_without_duplicate(tmp_path: Path) -> None:
    peer = FakeSmtp(drop_in_data=1)

    async def t(w: World) -> None:
        qid = await w.enqueue("bob@remote.test")
        stats = await w.runner.run_once()
        assert stats.deferred == 1 and w.peer.messages == []
        entry = await w.queue.get(qid)
        assert entry is not None and entry.recipients[0].last_reply.startswith("451 4.4.2")
        w.clock.t += 300
        assert (await w.runner.run_once()).delivered == 1
        assert [m.data for m in w.peer.messages] == [MSG]

    world(tmp_path, t, peer=peer)


def test_null_mx_fails_without_connecting(tmp_path: Path) -> None:
    resolver = MockResolver(mx={"nomail.test": [(0, ".")]})

    async def t(w: World) -> None:
        await w.enqueue("bob@nomail.test")
        stats = await w.runner.run_once()
        assert stats.failed == 1 and stats.sessions == 0 and w.peer.sessions == 0
        [b] = w.bounces
        assert b"Status: 5.1.10" in b.message and b"556 5.1.10" in b.message

    world(tmp_path, t, resolver=resolver, routes=False)


def test_mx_fallback_to_the_next_preference(tmp_path: Path) -> None:
    # mx1 (preference 10) is 127.0.0.2, where nothing listens; mx2 is the peer.
    peer = FakeSmtp(host="127.0.0.3")
    resolver = MockResolver(
        mx={"remote.test": [(20, "mx2.remote.test"), (10, "mx1.remote.test")]},
        a={"mx1.remote.test": ["127.0.0.2"], "mx2.remote.test": ["127.0.0.3"]},
    )

    async def t(w: World) -> None:
        w.runner.router.mx_port = w.peer.port
        await w.enqueue("bob@remote.test")
        assert (await w.runner.run_once()).delivered == 1
        assert [q for q in resolver.queries if q[0] == "A"] == [
            ("A", "mx1.remote.test"),
            ("A", "mx2.remote.test"),
        ]
        assert len(w.peer.messages) == 1

    world(tmp_path, t, peer=peer, resolver=resolver, routes=False, ipv6=False)


def test_one_session_carries_several_messages(tmp_path: Path) -> None:
    async def t(w: World) -> None:
        for _ in range(3):
            await w.enqueue("bob@remote.test")
        await w.enqueue("dan@other.test")  # same next hop: same session
        stats = await w.runner.run_once()
        assert stats.delivered == 4 and stats.sessions == 1
        assert w.peer.sessions == 1 and len(w.peer.messages) == 4

    world(tmp_path, t, max_sessions_per_destination=1)


def test_real_resolver_and_loopback_dns_server(tmp_path: Path) -> None:
    async def t(w: World) -> None:
        zone = {
            "remote.test": {"MX": ["10 mx.remote.test."]},
            "mx.remote.test": {"A": ["127.0.0.1"]},
        }
        async with LoopbackDnsServer(zone) as dns_server:
            w.runner.router.resolver = DnsResolver([dns_server.address], timeout=2)
            w.runner.router.mx_port = w.peer.port
            await w.enqueue("bob@remote.test")
            assert (await w.runner.run_once()).delivered == 1
            assert ("remote.test", "MX") in dns_server.queries
        assert len(w.peer.messages) == 1

    world(tmp_path, t, routes=False, ipv6=False)


def test_expiry_after_max_age_bounces_with_4_4_7(tmp_path: Path) -> None:
    peer = FakeSmtp(rcpt_reply=lambda addr, n: "451 4.3.0 Try later")
    policy = RetryPolicy(max_age=3600)

    async def t(w: World) -> None:
        qid = await w.enqueue("bob@remote.test")
        attempts = 0
        while await w.states(qid):
            await w.runner.run_once()
            attempts += 1
            due = await w.queue.next_due()
            if due is not None:
                w.clock.t = due
        assert attempts == 5  # ages 0, 300, 900, 2100, 3600 (capped at max age)
        [b] = w.bounces
        assert b"Status: 4.4.7" in b.message and b"Action: failed" in b.message

    world(tmp_path, t, peer=peer, policy=policy)


def test_delay_warning_then_delivery(tmp_path: Path) -> None:
    peer = FakeSmtp(rcpt_reply=lambda addr, n: "451 4.3.0 Later" if n < 3 else "250 OK")

    async def t(w: World) -> None:
        await w.enqueue("bob@remote.test")
        for _ in range(3):
            await w.runner.run_once()
            w.clock.t += 600
        assert [b.action for b in w.bounces] == ["delayed"]
        assert b"Will-Retry-Until:" in w.bounces[0].message
        assert len(w.peer.messages) == 1

    world(tmp_path, t, peer=peer, policy=RetryPolicy(delay_warning=300))


def test_success_notify_gets_relayed_dsn_when_the_peer_lacks_dsn(tmp_path: Path) -> None:
    async def t(w: World) -> None:
        await w.enqueue(QueuedRecipient("bob@remote.test", "SUCCESS,FAILURE"))
        await w.runner.run_once()
        [b] = w.bounces
        assert b.action == "relayed" and b"Action: relayed" in b.message

    world(tmp_path, t)


def test_dsn_parameters_pass_to_a_dsn_peer_and_no_relayed_dsn(tmp_path: Path) -> None:
    peer = FakeSmtp(extensions=["PIPELINING", "DSN", "8BITMIME"])

    async def t(w: World) -> None:
        await w.enqueue(
            QueuedRecipient("bob@remote.test", "SUCCESS", "rfc822;bob@remote.test"),
            envid="E 1",
            ret="FULL",
        )
        await w.runner.run_once()
        [m] = w.peer.messages
        assert m.mail_line.endswith("RET=FULL ENVID=E+201")
        assert m.rcpt_lines == [
            "RCPT TO:<bob@remote.test> NOTIFY=SUCCESS ORCPT=rfc822;bob@remote.test"
        ]
        assert w.bounces == []

    world(tmp_path, t, peer=peer)


def test_too_big_for_the_peer_fails_permanently(tmp_path: Path) -> None:
    peer = FakeSmtp(extensions=["PIPELINING", "SIZE 10"])

    async def t(w: World) -> None:
        await w.enqueue("bob@remote.test")
        stats = await w.runner.run_once()
        assert stats.failed == 1 and w.peer.messages == []
        assert b"552 5.3.4" in w.bounces[0].message

    world(tmp_path, t, peer=peer)


def test_chunking_peer_gets_bdat(tmp_path: Path) -> None:
    peer = FakeSmtp(extensions=["PIPELINING", "CHUNKING", "8BITMIME"])

    async def t(w: World) -> None:
        await w.enqueue("bob@remote.test")
        assert (await w.runner.run_once()).delivered == 1
        assert w.peer.messages[0].data == MSG
        assert any(line.startswith("C: BDAT") for line in w.peer.transcript)

    world(tmp_path, t, peer=peer)


def test_opportunistic_starttls(tmp_path: Path) -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("fake.test").configure_cert(server_ctx)
    peer = FakeSmtp(tls_context=server_ctx)

    async def t(w: World) -> None:
        await w.enqueue("bob@remote.test")
        assert (await w.runner.run_once()).delivered == 1
        assert w.peer.messages[0].tls

    world(tmp_path, t, peer=peer, tls_mode=TlsMode.OPPORTUNISTIC)


def test_smarthost_with_auth(tmp_path: Path) -> None:
    peer = FakeSmtp(credentials=("relayuser", "s3cret"))

    async def t(w: World) -> None:
        w.runner.router.smarthost = w.runner.router.routes.pop("remote.test")
        await w.enqueue("bob@remote.test", "x@anywhere.test")
        assert (await w.runner.run_once()).delivered == 2
        assert any(line.startswith("C: AUTH PLAIN") for line in w.peer.transcript)

    world(tmp_path, t, peer=peer, smarthost_credentials=("relayuser", "s3cret"))


def test_unreachable_destination_defers(tmp_path: Path) -> None:
    async def t(w: World) -> None:
        w.runner.router.routes["remote.test"] = w.runner.router.routes["remote.test"].__class__(
            "127.0.0.2", w.peer.port
        )
        qid = await w.enqueue("bob@remote.test")
        assert (await w.runner.run_once()).deferred == 1
        entry = await w.queue.get(qid)
        assert entry is not None and entry.recipients[0].last_reply.startswith("451 4.4.1")

    world(tmp_path, t)


def test_background_loop_delivers_on_wake(tmp_path: Path) -> None:
    async def t(w: World) -> None:
        w.runner.poll_interval = 3600
        await w.runner.start()
        await asyncio.sleep(0.05)
        qid = await w.enqueue("bob@remote.test")
        w.runner.wake()
        for _ in range(200):
            if w.peer.messages and not await w.states(qid):
                break
            await asyncio.sleep(0.01)
        assert len(w.peer.messages) == 1 and await w.states(qid) == []
        await w.runner.stop()

    world(tmp_path, t)


def test_stop_mid_delivery_leaves_recipients_pending(tmp_path: Path) -> None:
    peer = FakeSmtp(stall_in_data=True)

    async def t(w: World) -> None:
        w.runner.poll_interval = 3600
        qid = await w.enqueue("bob@remote.test")
        await w.runner.start()
        for _ in range(200):
            if any(line.startswith("S: 354") for line in w.peer.transcript):
                break
            await asyncio.sleep(0.01)
        await w.runner.stop(grace=0.05)
        entry = await w.queue.get(qid)
        assert entry is not None and entry.recipients[0].state == "pending"
        assert entry.recipients[0].attempts == 0  # nothing recorded: tried again later
        assert w.runner._in_flight == set()

    world(tmp_path, t, peer=peer)


def test_signed_message_arrives_verifiable(tmp_path: Path) -> None:
    import dkim as dkimpy

    async def t(w: World) -> None:
        key = dkim.generate_key(tmp_path / "dkim", "here.test")
        await sign_and_enqueue(
            w.store,
            MSG,
            "alice@here.test",
            [QueuedRecipient("bob@remote.test")],
            dkim_keys_dir=tmp_path / "dkim",
        )
        await w.runner.run_once()
        data = w.peer.messages[0].data
        record = key.txt_record().encode()
        assert dkimpy.verify(data, dnsfunc=lambda name, timeout=5: record)

    world(tmp_path, t)


def test_default_bounce_hook_queues_the_dsn(tmp_path: Path) -> None:
    async def main() -> None:
        store = await SqliteStore.open(tmp_path / "data")
        runner = QueueRunner(store, "mail.here.test", MockResolver(mx={"nomail.test": [(0, ".")]}))
        try:
            await store.enqueue(MSG, "alice@elsewhere.test", [QueuedRecipient("b@nomail.test")])
            await runner.run_once()
            [item] = await store.list_queue()
            assert item.mail_from == "" and item.recipients[0].address == "alice@elsewhere.test"
        finally:
            await runner.stop()
            await store.close()

    asyncio.run(main())


def test_broken_starttls_falls_back_to_plain_text(tmp_path: Path) -> None:
    peer = FakeSmtp(broken_starttls=True)

    async def t(w: World) -> None:
        await w.enqueue("bob@remote.test")
        assert (await w.runner.run_once()).delivered == 1
        assert w.peer.sessions == 2 and not w.peer.messages[0].tls

    world(tmp_path, t, peer=peer, tls_mode=TlsMode.OPPORTUNISTIC)


def test_too_many_recipients_are_sent_again_in_a_new_transaction(tmp_path: Path) -> None:
    peer = FakeSmtp(max_rcpts=2)

    async def t(w: World) -> None:
        rcpts = [f"r{i}@remote.test" for i in range(5)]
        await w.enqueue(*rcpts)
        stats = await w.runner.run_once()
        assert stats.delivered == 5 and w.peer.sessions == 1
        assert [m.rcpts for m in w.peer.messages] == [rcpts[:2], rcpts[2:4], rcpts[4:]]

    world(tmp_path, t, peer=peer)


def test_sessions_per_destination_are_limited(tmp_path: Path) -> None:
    async def t(w: World) -> None:
        for i in range(6):
            await w.enqueue(f"r{i}@remote.test")
        stats = await w.runner.run_once()
        assert stats.delivered == 6 and stats.sessions == 2 and w.peer.sessions == 2

    world(tmp_path, t, max_sessions_per_destination=2)


def test_an_idle_session_does_not_hold_a_slot_others_wait_for(tmp_path: Path) -> None:
    """With every session slot taken, a session out of work closes at once instead of
    lingering for more jobs to its route while another route's mail waits (a burst to
    20 domains went at one message per domain per second)."""
    from postroom.queue.routing import parse_hostport

    async def t(w: World) -> None:
        other = await FakeSmtp().start()
        try:
            w.runner.router.routes["third.test"] = parse_hostport(f"127.0.0.1:{other.port}")
            w.runner.poll_interval = 3600
            first = await w.enqueue("bob@remote.test")
            second = await w.enqueue("carol@third.test")
            t0 = time.monotonic()
            await w.runner.start()
            while await w.states(first) or await w.states(second):
                assert time.monotonic() - t0 < 5
                await asyncio.sleep(0.01)
            assert time.monotonic() - t0 < 0.8, "the second route waited for a linger"
            assert len(w.peer.messages) == 1 and len(other.messages) == 1
            await w.runner.stop()
        finally:
            await other.stop()

    world(tmp_path, t, max_sessions=1)
