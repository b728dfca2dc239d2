"""The store contract: what every backend must do (DESIGN.md section 3)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from postroom.store.models import (
    DELETED,
    SEEN,
    AlreadyExists,
    EntryColumns,
    Flags,
    Invalid,
    LocalTarget,
    NotFound,
    OverQuota,
    QueuedRecipient,
    RemoteTarget,
)
from postroom.store.sqlite import SqliteStore

MSG = (b"From: Alice <alice@example.org>\r\nTo: bob@example.com\r\nSubject: hi\r\n"
       b"Message-ID: <1@example.org>\r\n\r\nHello Bob.\r\n")


async def setup_user(store: SqliteStore, address: str = "bob@example.com", quota: int = 0
                     ) -> Any:
    domain = address.split("@")[1]
    if domain not in [d.name for d in await store.list_domains()]:
        await store.add_domain(domain)
    return await store.add_user(address, "hash", quota=quota)


def test_domains_users_and_default_mailboxes(run_store: Any) -> None:
    async def t(store: SqliteStore) -> None:
        await store.add_domain("Example.COM")
        with pytest.raises(AlreadyExists):
            await store.add_domain("example.com")
        with pytest.raises(NotFound):
            await store.add_user("x@nowhere.test", "h")
        u = await store.add_user("Bob.Smith@EXAMPLE.com", "h", quota=1000)
        assert u.address == "Bob.Smith@example.com"  # local part kept, domain folded
        with pytest.raises(AlreadyExists):
            await store.add_user("bob.smith@example.com", "h")
        assert (await store.get_user("BOB.SMITH@Example.Com")) == u
        boxes = {m.name: m.special_use for m in await store.list_mailboxes(u.id)}
        assert boxes == {"INBOX": None, "Sent": "\\Sent", "Drafts": "\\Drafts",
                         "Trash": "\\Trash", "Junk": "\\Junk", "Archive": "\\Archive"}
        uidvs = {m.uidvalidity for m in await store.list_mailboxes(u.id)}
        assert len(uidvs) == 6
        with pytest.raises(Invalid):
            await store.remove_domain("example.com")
        await store.remove_user("bob.smith@example.com")
        assert await store.get_user("bob.smith@example.com") is None
        await store.remove_domain("example.com")
        assert await store.list_domains() == []

    run_store(t)


def test_resolution_aliases_catchall_subaddress(run_store: Any) -> None:
    async def t(store: SqliteStore) -> None:
        bob = await setup_user(store, "bob@example.com")
        ann = await setup_user(store, "ann@example.com")
        await store.add_alias("team@example.com", ["bob@example.com", "ann@example.com",
                                                   "carol@remote.test"])
        await store.add_alias("loop1@example.com", ["loop2@example.com"])
        await store.add_alias("loop2@example.com", ["loop1@example.com"])
        r = await store.resolve("bob@example.com")
        assert r.local_domain and r.targets == (LocalTarget(bob.id, "bob@example.com"),)
        assert (await store.resolve("BOB@Example.Com")).targets[0] == LocalTarget(
            bob.id, "bob@example.com")
        assert (await store.resolve("bob+lists@example.com")).targets[0].user_id == bob.id  # type: ignore[union-attr]
        assert (await store.resolve("bob-lists@example.com", delimiter="-")).known
        team = await store.resolve("team@example.com")
        assert set(team.targets) == {LocalTarget(bob.id, "bob@example.com"),
                                     LocalTarget(ann.id, "ann@example.com"),
                                     RemoteTarget("carol@remote.test")}
        assert not (await store.resolve("nobody@example.com")).known
        assert (await store.resolve("nobody@example.com")).local_domain
        assert not (await store.resolve("loop1@example.com")).known  # loops end, no crash
        ext = await store.resolve("someone@elsewhere.test")
        assert not ext.local_domain
        await store.add_alias("@example.com", ["ann@example.com"])
        assert (await store.resolve("nobody@example.com")).targets == (
            LocalTarget(ann.id, "ann@example.com"),)
        aliases = {a.address: a.targets for a in await store.list_aliases()}
        assert aliases["@example.com"] == ("ann@example.com",)
        await store.remove_alias("team@example.com", ["carol@remote.test"])
        assert RemoteTarget("carol@remote.test") not in (
            await store.resolve("team@example.com")).targets
        await store.remove_alias("team@example.com")
        with pytest.raises(NotFound):
            await store.remove_alias("team@example.com")

    run_store(t)


def test_append_uids_modseq_and_bytes(run_store: Any) -> None:
    async def t(store: SqliteStore) -> None:
        u = await setup_user(store)
        inbox = await store.get_mailbox(u.id, "inbox")
        assert inbox is not None and inbox.name == "INBOX"
        r1 = await store.append(u.id, "INBOX", MSG, Flags.from_names(["\\Seen", "$Label"]))
        r2 = await store.append(u.id, "INBOX", MSG.replace(b"\r\n", b"\n"))
        assert (r1.uid, r2.uid) == (1, 2)
        assert r2.modseq > r1.modseq
        assert r1.uidvalidity == inbox.uidvalidity
        # Bare LF input is stored as CRLF, byte for byte otherwise.
        assert await store.read_message(r2.message_id) == MSG
        assert await store.read_message(r1.message_id, 6, 11) == MSG[6:11]
        entries = await store.list_entries(inbox.id)
        assert [e.uid for e in entries] == [1, 2]
        assert entries[0].flags.names() == ["\\Seen", "$Label"]
        assert entries[0].size == len(MSG)
        st = await store.status(inbox.id)
        assert (st.messages, st.unseen, st.size) == (2, 1, 2 * len(MSG))
        assert st.mailbox.uidnext == 3
        with pytest.raises(NotFound):
            await store.append(u.id, "Nope", MSG)
        assert (await store.message_info(r1.message_id))  # analysed once, stored

    run_store(t)


def test_uids_never_reused_and_uidvalidity_changes(run_store: Any) -> None:
    async def t(store: SqliteStore) -> None:
        u = await setup_user(store)
        mb = await store.create_mailbox(u.id, "Work/Projects/")
        assert mb.name == "Work/Projects"
        await store.append(u.id, "Work/Projects", MSG, Flags(DELETED))
        assert await store.expunge(mb.id) == [1]
        r = await store.append(u.id, "Work/Projects", MSG)
        assert r.uid == 2
        await store.delete_mailbox(u.id, "Work/Projects")
        mb2 = await store.create_mailbox(u.id, "Work/Projects")
        assert mb2.uidvalidity != mb.uidvalidity
        with pytest.raises(AlreadyExists):
            await store.create_mailbox(u.id, "Work/Projects")
        for bad in ["", "a//b", "/a", "a/../b", "x\x00y"]:
            with pytest.raises(Invalid):
                await store.create_mailbox(u.id, bad)
        with pytest.raises(Invalid):
            await store.delete_mailbox(u.id, "inbox")

    run_store(t)


def test_flags_modes_unchangedsince_and_changes(run_store: Any) -> None:
    async def t(store: SqliteStore) -> None:
        u = await setup_user(store)
        mb = await store.get_mailbox(u.id, "INBOX")
        assert mb is not None
        for _ in range(3):
            await store.append(u.id, "INBOX", MSG)
        base = (await store.status(mb.id)).mailbox.highestmodseq
        changed, failed = await store.store_flags(mb.id, [1, 2, 99], "add",
                                                  Flags.from_names(["\\Seen", "Work"]))
        assert [e.uid for e in changed] == [1, 2] and failed == []
        assert changed[0].modseq == changed[1].modseq > base
        # adding again changes nothing, so no new modseq
        again, _ = await store.store_flags(mb.id, [1], "add", Flags.from_names(["\\seen", "WORK"]))
        assert again == []
        changed, failed = await store.store_flags(mb.id, [1, 3], "set", Flags.from_names(
            ["\\Flagged"]), unchangedsince=base)
        assert [e.uid for e in changed] == [3] and failed == [1]
        changed, _ = await store.store_flags(mb.id, [2], "remove", Flags.from_names(["work"]))
        assert changed[0].flags.names() == ["\\Seen"]
        ch = await store.changes_since(mb.id, base)
        assert [e.uid for e in ch.changed] == [1, 2, 3] and ch.vanished == ()
        await store.store_flags(mb.id, [2], "add", Flags(DELETED))
        mark = (await store.status(mb.id)).mailbox.highestmodseq
        assert await store.expunge(mb.id) == [2]
        ch = await store.changes_since(mb.id, mark)
        assert ch.vanished == (2,) and ch.changed == () and ch.highestmodseq > mark

    run_store(t)


def test_copy_move_share_bytes_and_count_quota(run_store: Any) -> None:
    async def t(store: SqliteStore) -> None:
        u = await setup_user(store, quota=3 * len(MSG))
        inbox = await store.get_mailbox(u.id, "INBOX")
        arch = await store.get_mailbox(u.id, "Archive")
        assert inbox and arch
        r = await store.append(u.id, "INBOX", MSG, Flags(SEEN, ("Keep",)))
        pairs = await store.copy(inbox, [r.uid, 42], arch)
        assert pairs == [(1, 1)]
        e = (await store.list_entries(arch.id))[0]
        assert e.message_id == r.message_id and e.flags == Flags(SEEN, ("Keep",))
        assert (await store.get_user_by_id(u.id)).used == 2 * len(MSG)  # type: ignore[union-attr]
        await store.append(u.id, "INBOX", MSG)
        with pytest.raises(OverQuota):
            await store.append(u.id, "INBOX", MSG)
        with pytest.raises(OverQuota):
            await store.copy(inbox, [1], arch)
        moved = await store.copy(inbox, [1, 2], arch, move=True)
        assert [p[0] for p in moved] == [1, 2]
        assert await store.list_entries(inbox.id) == []
        assert (await store.changes_since(inbox.id, 0)).vanished == (1, 2)
        assert (await store.get_user_by_id(u.id)).used == 3 * len(MSG)  # type: ignore[union-attr]
        # moving inside the same mailbox works and gives new UIDs
        same = await store.copy(arch, [1], arch, move=True)
        assert same[0][1] > 3
        other = await setup_user(store, "eve@example.com")
        ebox = await store.get_mailbox(other.id, "INBOX")
        assert ebox
        with pytest.raises(Invalid):
            await store.copy(arch, [1], ebox)
        assert await store.check_integrity() == []

    run_store(t)


def test_deliver_shares_one_body_and_reports_per_recipient(run_store: Any) -> None:
    async def t(store: SqliteStore) -> None:
        a = await setup_user(store, "a@example.com")
        b = await setup_user(store, "b@example.com", quota=10)
        c = await setup_user(store, "c@example.com")
        res = await store.deliver(MSG, [a.id, b.id, c.id], prefix=b"Return-Path: <x@y>\r\n",
                                  mailbox="Nonexistent")
        assert res[0].error is None and res[2].error is None
        assert isinstance(res[1].error, OverQuota)
        assert res[0].result and res[2].result
        assert res[0].result.message_id == res[2].result.message_id
        body = await store.read_message(res[0].result.message_id)
        assert body == b"Return-Path: <x@y>\r\n" + MSG
        assert await store.quota_ok(b.id, 10) and not await store.quota_ok(b.id, 11)
        # nobody could take it: no orphan message left behind
        none = await store.deliver(MSG, [b.id])
        assert none[0].error is not None
        assert await store.check_integrity() == []

    run_store(t)


def test_large_bodies_go_to_files_and_are_removed(run_store: Any, tmp_path: Any) -> None:
    big = b"Subject: big\r\n\r\n" + b"x" * 76 + b"\r\n"
    big = big + b"y" * 76 * 3000 + b"\r\n"

    async def t(store: SqliteStore) -> None:
        u = await setup_user(store)
        spool = tmp_path / "spool.eml"
        spool.write_bytes(big)
        r1 = await store.append(u.id, "INBOX", big, Flags(DELETED))
        res = await store.deliver(spool, [u.id], prefix=b"Return-Path: <>\r\n")
        r2 = res[0].result
        assert r2 is not None
        assert await store.read_message(r1.message_id) == big
        assert await store.read_message(r2.message_id) == b"Return-Path: <>\r\n" + big
        assert await store.read_message(r2.message_id, 17, 30) == big[:13]
        files = list((store.data_dir / "blobs").rglob("*"))
        assert len([f for f in files if f.is_file()]) == 2
        await store.expunge((await store.get_mailbox(u.id, "INBOX")).id)  # type: ignore[union-attr]
        files = [f for f in (store.data_dir / "blobs").rglob("*") if f.is_file()]
        assert len(files) == 1
        assert await store.check_integrity() == []

    run_store(t, inline_max=64 * 1024)


def test_rename_children_and_inbox(run_store: Any) -> None:
    async def t(store: SqliteStore) -> None:
        u = await setup_user(store)
        await store.create_mailbox(u.id, "A")
        await store.create_mailbox(u.id, "A/B")
        await store.create_mailbox(u.id, "AB")
        await store.rename_mailbox(u.id, "A", "Z")
        names = {m.name for m in await store.list_mailboxes(u.id)}
        assert {"Z", "Z/B", "AB"} <= names and "A" not in names and "A/B" not in names
        with pytest.raises(Invalid):
            await store.rename_mailbox(u.id, "Z", "Z/C")
        with pytest.raises(AlreadyExists):
            await store.rename_mailbox(u.id, "Z", "AB")
        await store.append(u.id, "INBOX", MSG)
        await store.append(u.id, "INBOX", MSG)
        await store.rename_mailbox(u.id, "INBOX", "Old")
        old = await store.get_mailbox(u.id, "Old")
        inbox = await store.get_mailbox(u.id, "INBOX")
        assert old and inbox
        assert len(await store.list_entries(old.id)) == 2
        assert await store.list_entries(inbox.id) == []
        r = await store.append(u.id, "INBOX", MSG)
        assert r.uid == 3  # INBOX keeps its UID sequence
        await store.set_subscribed(u.id, "Old", True)
        assert (await store.get_mailbox(u.id, "Old")).subscribed  # type: ignore[union-attr]

    run_store(t)


def test_change_feed_wakes_subscribers(run_store: Any) -> None:
    async def t(store: SqliteStore) -> None:
        u = await setup_user(store)
        mb = await store.get_mailbox(u.id, "INBOX")
        assert mb
        sub = store.feed.subscribe(mb.id)
        other = store.feed.subscribe(mb.id + 1000)
        await store.append(u.id, "INBOX", MSG)
        await asyncio.wait_for(sub.wait(), 2)
        assert not other.pending()
        await store.store_flags(mb.id, [1], "add", Flags(SEEN))
        await asyncio.wait_for(sub.wait(), 2)
        sub.close()
        other.close()

    run_store(t)


def test_recent_is_claimed_once(run_store: Any) -> None:
    async def t(store: SqliteStore) -> None:
        u = await setup_user(store)
        mb = await store.get_mailbox(u.id, "INBOX")
        assert mb
        await store.append(u.id, "INBOX", MSG)
        await store.append(u.id, "INBOX", MSG)
        assert (await store.status(mb.id)).recent == 2
        assert await store.claim_recent(mb.id) == (1, 3)
        assert await store.claim_recent(mb.id) == (3, 3)
        assert (await store.status(mb.id)).recent == 0

    run_store(t)


def test_group_commit_batches_concurrent_appends(run_store: Any) -> None:
    async def t(store: SqliteStore) -> None:
        u = await setup_user(store)
        assert store._writer is not None
        before = store._writer.batches
        results = await asyncio.gather(*(store.append(u.id, "INBOX", MSG) for _ in range(50)))
        assert sorted(r.uid for r in results) == list(range(1, 51))
        assert store._writer.batches - before < 50  # fsyncs were shared

    run_store(t)


def test_queue_enqueue_list_remove(run_store: Any) -> None:
    async def t(store: SqliteStore) -> None:
        item = await store.enqueue(MSG, "bob@example.com",
                                   [QueuedRecipient("x@remote.test", "FAILURE", "rfc822;x@r")],
                                   envid="E1", ret="HDRS")
        items = await store.list_queue()
        assert [i.id for i in items] == [item.id]
        assert items[0].recipients[0].orcpt == "rfc822;x@r"
        assert await store.read_message(item.message_id) == MSG
        await store.remove_queued(item.id)
        assert await store.list_queue() == []
        assert await store.check_integrity() == []

    run_store(t)


def test_reopen_keeps_everything(run_store: Any, tmp_path: Any) -> None:
    async def t(store: SqliteStore) -> None:
        u = await setup_user(store)
        await store.append(u.id, "INBOX", MSG)
        await store.close()
        store2 = await SqliteStore.open(store.data_dir)
        try:
            mb = await store2.get_mailbox(u.id, "INBOX")
            assert mb and mb.uidnext == 2
            assert len(await store2.list_entries(mb.id)) == 1
        finally:
            await store2.close()
        # run_store closes the first store again: make that harmless
        store._writer = None
        store._readers = store2._readers
        store._prep = store2._prep

    run_store(t)


def test_subscriptions_are_names_that_outlive_mailboxes(run_store: Any) -> None:
    async def t(store: SqliteStore) -> None:
        u = await setup_user(store)
        assert "INBOX" in await store.list_subscriptions(u.id)
        await store.create_mailbox(u.id, "Lists")
        await store.set_subscribed(u.id, "Lists", True)
        assert (await store.get_mailbox(u.id, "Lists")).subscribed  # type: ignore[union-attr]
        await store.delete_mailbox(u.id, "Lists")  # RFC 9051 section 6.3.7
        assert "Lists" in await store.list_subscriptions(u.id)
        await store.set_subscribed(u.id, "Gone/Never", True)  # any name
        await store.set_subscribed(u.id, "Lists", False)
        assert "Lists" not in await store.list_subscriptions(u.id)
        await store.remove_user("bob@example.com")
        assert await store.list_subscriptions(u.id) == []

    run_store(t)


def test_large_mailbox_reads_are_whole(run_store: Any) -> None:
    """Entries, STATUS and changes of a mailbox larger than what is read on the event
    loop (LOOP_ROWS): the same answers, read in the reader pool."""
    from postroom.store import sqlite as sqlite_store

    async def t(store: SqliteStore) -> None:
        u = await setup_user(store)
        n = sqlite_store.LOOP_ROWS + 7
        await store.append_many(u.id, "INBOX", [(MSG, Flags(SEEN if i % 2 else 0), None)
                                                for i in range(n)])
        mb = await store.get_mailbox(u.id, "INBOX")
        assert mb is not None
        entries = await store.list_entries(mb.id)
        assert [e.uid for e in entries] == list(range(1, n + 1))
        snap_mb, cols = await store.select_snapshot(mb.id)
        assert snap_mb == mb and EntryColumns.of(entries) == cols
        assert len({id(f) for f in cols.flags}) == 2  # one Flags object per distinct set
        subset = await store.list_entries(mb.id, range(2, n + 5))
        assert [e.uid for e in subset] == list(range(2, n + 1))
        assert [e.uid for e in await store.list_entries(mb.id, [3, 1, 3])] == [1, 3]
        st = await store.status(mb.id)
        assert (st.messages, st.unseen, st.deleted, st.deleted_size) == (n, (n + 1) // 2, 0, 0)
        await store.store_flags(mb.id, [1, 2], "add", Flags(DELETED))
        st = await store.status(mb.id)
        assert (st.deleted, st.deleted_size) == (2, 2 * st.size // n)
        changes = await store.changes_since(mb.id, 0)
        assert len(changes.changed) == n and changes.vanished == ()
        await store.expunge(mb.id, range(1, n + 1), only_deleted=False)
        changes = await store.changes_since(mb.id, changes.highestmodseq)
        assert changes.changed == () and list(changes.vanished) == list(range(1, n + 1))
        assert (await store.status(mb.id)).messages == 0

    run_store(t)


def test_imap_summary_is_rendered_once_at_store_time(run_store: Any) -> None:
    from postroom.mime.imap import bodystructure_to_imap, envelope_to_imap
    from postroom.mime.model import MessageInfo

    async def t(store: SqliteStore) -> None:
        u = await setup_user(store)
        r = await store.append(u.id, "INBOX", MSG, Flags(), None)
        info = MessageInfo.from_json(await store.message_info(r.message_id))
        assert await store.message_imap_summary(r.message_id) == (
            envelope_to_imap(info.envelope), bodystructure_to_imap(info.root))
        with pytest.raises(NotFound):
            await store.message_imap_summary(r.message_id + 1000)

    run_store(t)
