"""Mailbox commands: SELECT/EXAMINE, CREATE, DELETE, RENAME, (UN)SUBSCRIBE, LIST, LSUB,
STATUS, APPEND (RFC 9051 sections 6.3.x; LIST-EXTENDED RFC 5258, LIST-STATUS RFC 5819,
SPECIAL-USE RFC 6154, CONDSTORE/QRESYNC RFC 7162, UIDPLUS RFC 4315, MULTIAPPEND RFC 3502).

Each handler takes the session and its parsed command, sends untagged data through
``session.conn`` and returns the tagged answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from postroom.imap import commands as c
from postroom.imap.grammar.reader import normalize_inbox
from postroom.imap.handlers.messages import unknown_system_flag
from postroom.imap.listing import Box, list_entries, lsub_entries
from postroom.imap.responses import (
    ExistsResponse,
    FetchResponse,
    FlagsResponse,
    ListResponse,
    RecentResponse,
    ResponseCode,
    StatusResponse,
    Tagged,
    Untagged,
    VanishedResponse,
    sequence_text,
)
from postroom.imap.selected import SelectedMailbox
from postroom.store.models import (
    AlreadyExists,
    Flags,
    Invalid,
    Mailbox,
    NotFound,
    OverQuota,
)
from postroom.store.sqlite import SEPARATOR, normalize_mailbox_name

if TYPE_CHECKING:
    from postroom.imap.session import ImapSession


def _name(session: ImapSession, name: str) -> str:
    return normalize_inbox(name, SEPARATOR)


# ---------------------------------------------------------------------- SELECT


async def cmd_select(session: ImapSession, cmd: c.Select) -> Tagged:
    """RFC 9051 section 6.3.2 (SELECT) and 6.3.3 (EXAMINE); CONDSTORE/QRESYNC parameters
    (RFC 7162 sections 3.1.8, 3.2.5)."""
    assert session.user is not None
    if session.selected is not None:
        # a failed SELECT leaves no mailbox selected (section 6.3.2); the client learns
        # that the previous one is closed (section 7.1, RFC 7162 section 3.2.11)
        session.unselect()
        session.conn.send(Untagged("OK", "Previous mailbox closed", ResponseCode.CLOSED))
    name = _name(session, cmd.mailbox)
    mb = await session.store.get_mailbox(session.user.id, name)
    if mb is None:
        return Tagged(cmd.tag, "NO", "No such mailbox", ResponseCode.NONEXISTENT)
    if cmd.qresync is not None and not session.qresync:
        return Tagged(cmd.tag, "BAD", "QRESYNC is not enabled")
    if cmd.condstore or cmd.qresync is not None:
        session.condstore = True  # HIGHESTMODSEQ follows in any case
    # the mailbox's counters read with its entries, in one transaction
    mb, entries = await session.store.select_snapshot(mb.id)
    recent = (0, 0)
    if not session.rev2:
        recent = await session.store.claim_recent(mb.id)
    sel = SelectedMailbox(mb.id, mb.uidvalidity, entries, mb.highestmodseq, mb.uidnext,
                          cmd.read_only, recent)
    sel.mailbox = mb
    session.select(sel)
    flags = sel.flag_names()
    send = session.conn.send
    send(FlagsResponse(tuple(flags)))
    perm = [] if cmd.read_only else [*flags, "\\*"]
    send(Untagged("OK", "Flags permitted", ResponseCode.permanent_flags(perm)))
    send(ExistsResponse(sel.exists))
    if not session.rev2:
        send(RecentResponse(sel.recent_count))
        session.recent_reported = sel.recent_count
        first_unseen = sel.first_unseen()
        if first_unseen is not None:
            send(Untagged("OK", "First unseen", ResponseCode.unseen(first_unseen)))
    send(Untagged("OK", "UIDs valid", ResponseCode.uidvalidity(mb.uidvalidity)))
    send(Untagged("OK", "Predicted next UID", ResponseCode.uidnext(mb.uidnext)))
    send(Untagged("OK", "Highest", ResponseCode.highest_modseq(mb.highestmodseq)))
    if session.rev2:
        send(ListResponse(mb.name, SEPARATOR, (), utf8=session.utf8))
    if cmd.qresync is not None and cmd.qresync.uidvalidity == mb.uidvalidity:
        await _qresync(session, cmd.qresync)
    code = ResponseCode.READ_ONLY if cmd.read_only else ResponseCode.READ_WRITE
    return Tagged(cmd.tag, "OK", f"{'EXAMINE' if cmd.read_only else 'SELECT'} completed",
                  code)


async def _qresync(session: ImapSession, q: c.QresyncParams) -> None:
    """VANISHED (EARLIER) and FETCH for what changed since the client's modseq
    (RFC 7162 section 3.2.5.1)."""
    sel = session.selected
    assert sel is not None
    changes = await session.store.changes_since(sel.mailbox_id, q.modseq)
    known = None
    if q.known_uids is not None:
        known = q.known_uids.resolve(sel.uidnext)

    def is_known(uid: int) -> bool:  # both reports keep to the client's known UIDs
        return known is None or any(lo <= uid <= hi for lo, hi in known)

    vanished = [u for u in changes.vanished if is_known(u)]
    if vanished:
        session.conn.send(VanishedResponse(vanished, earlier=True))
    for e in changes.changed:
        seq = sel.seq_of(e.uid)
        if seq is not None and is_known(e.uid):
            session.conn.send(FetchResponse(seq, session.flag_items(e.uid)))


# ---------------------------------------------------------------------- CREATE/DELETE/RENAME


async def cmd_create(session: ImapSession, cmd: c.Create) -> Tagged:
    """RFC 9051 section 6.3.4; superior names are created as needed; USE (RFC 6154)."""
    assert session.user is not None
    name = _name(session, cmd.mailbox)
    clean = name.rstrip(SEPARATOR)
    if clean.upper() == "INBOX":
        return Tagged(cmd.tag, "NO", "INBOX exists already", ResponseCode.ALREADYEXISTS)
    special = None
    if cmd.special_use:
        known = {"\\archive", "\\drafts", "\\flagged", "\\junk", "\\sent", "\\trash",
                 "\\all", "\\important"}
        if len(cmd.special_use) > 1 or cmd.special_use[0].lower() not in known:
            return Tagged(cmd.tag, "NO", "Unsupported special-use attribute",
                          ResponseCode.USEATTR)
        special = "\\" + cmd.special_use[0][1:].capitalize()
    parts = clean.split(SEPARATOR)
    try:
        for i in range(1, len(parts)):
            parent = SEPARATOR.join(parts[:i])
            if await session.store.get_mailbox(session.user.id, parent) is None:
                await session.store.create_mailbox(session.user.id, parent)
        await session.store.create_mailbox(session.user.id, clean, special)
    except AlreadyExists:
        return Tagged(cmd.tag, "NO", "Mailbox exists already", ResponseCode.ALREADYEXISTS)
    except Invalid as e:
        return Tagged(cmd.tag, "NO", f"Invalid mailbox name: {e}", ResponseCode.CANNOT)
    return Tagged(cmd.tag, "OK", "CREATE completed")


async def cmd_delete(session: ImapSession, cmd: c.Delete) -> Tagged:
    """RFC 9051 section 6.3.5."""
    assert session.user is not None
    name = normalize_mailbox_name(_name(session, cmd.mailbox))  # "INBOX/" is INBOX
    if name == "INBOX":
        return Tagged(cmd.tag, "NO", "INBOX cannot be deleted", ResponseCode.CANNOT)
    mb = await session.store.get_mailbox(session.user.id, name)
    if mb is None:
        return Tagged(cmd.tag, "NO", "No such mailbox", ResponseCode.NONEXISTENT)
    if session.selected is not None and session.selected.mailbox_id == mb.id:
        session.unselect()
    try:
        await session.store.delete_mailbox(session.user.id, name)
    except (Invalid, NotFound) as e:
        return Tagged(cmd.tag, "NO", f"Cannot delete: {e}", ResponseCode.CANNOT)
    return Tagged(cmd.tag, "OK", "DELETE completed")


async def cmd_rename(session: ImapSession, cmd: c.Rename) -> Tagged:
    """RFC 9051 section 6.3.6 (renaming INBOX moves its messages)."""
    assert session.user is not None
    old, new = _name(session, cmd.mailbox), _name(session, cmd.new_name).rstrip(SEPARATOR)
    if await session.store.get_mailbox(session.user.id, old) is None:
        return Tagged(cmd.tag, "NO", "No such mailbox", ResponseCode.NONEXISTENT)
    if new.upper() == "INBOX":
        return Tagged(cmd.tag, "NO", "INBOX exists already", ResponseCode.ALREADYEXISTS)
    try:
        parts = new.split(SEPARATOR)
        for i in range(1, len(parts)):
            parent = SEPARATOR.join(parts[:i])
            if parent != old and await session.store.get_mailbox(session.user.id,
                                                                 parent) is None:
                await session.store.create_mailbox(session.user.id, parent)
        await session.store.rename_mailbox(session.user.id, old, new)
    except AlreadyExists:
        return Tagged(cmd.tag, "NO", "Target exists already", ResponseCode.ALREADYEXISTS)
    except (Invalid, NotFound) as e:
        return Tagged(cmd.tag, "NO", f"Cannot rename: {e}", ResponseCode.CANNOT)
    return Tagged(cmd.tag, "OK", "RENAME completed")


async def cmd_subscribe(session: ImapSession, cmd: c.Subscribe | c.Unsubscribe) -> Tagged:
    """RFC 9051 sections 6.3.7, 6.3.8."""
    assert session.user is not None
    name = _name(session, cmd.mailbox)
    on = isinstance(cmd, c.Subscribe)
    # SUBSCRIBE validates the name, as Dovecot does (RFC 9051 section 6.3.7 allows it);
    # the subscription then outlives the mailbox, and UNSUBSCRIBE takes any name.
    if on and await session.store.get_mailbox(session.user.id, name) is None:
        return Tagged(cmd.tag, "NO", "No such mailbox", ResponseCode.NONEXISTENT)
    await session.store.set_subscribed(session.user.id, name, on)
    return Tagged(cmd.tag, "OK", f"{cmd.name} completed")


# ---------------------------------------------------------------------- LIST


async def cmd_list(session: ImapSession, cmd: c.List) -> Tagged:
    """RFC 9051 section 6.3.9, LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819); which
    names and attributes: ``listing.py``."""
    assert session.user is not None
    if len(cmd.patterns) == 1 and cmd.patterns[0] == "" and not cmd.extended:
        # RFC 9051 section 6.3.9: the hierarchy delimiter and root
        session.conn.send(ListResponse("", SEPARATOR, ("\\Noselect",), utf8=session.utf8))
        return Tagged(cmd.tag, "OK", "LIST completed")
    boxes = await session.store.list_mailboxes(session.user.id)
    by_name = {m.name: m for m in boxes}
    entries = list_entries(cmd, await _boxes(session, boxes), SEPARATOR)
    for name, attrs, child_info in entries:
        session.conn.send(ListResponse(name, SEPARATOR, attrs, utf8=session.utf8,
                                       child_info=child_info))
        mb = by_name.get(name)
        if cmd.return_status and mb is not None:
            # RFC 5819 section 2: STATUS right after its LIST, none for \NonExistent
            session.conn.send(await _status_response(session, mb, cmd.return_status))
    return Tagged(cmd.tag, "OK", "LIST completed")


async def _boxes(session: ImapSession, boxes: list[Mailbox]) -> list[Box]:
    """Mailboxes, plus subscriptions whose mailbox does not exist (``exists=False``)."""
    assert session.user is not None
    names = {m.name for m in boxes}
    subs = await session.store.list_subscriptions(session.user.id)
    return [Box(m.name, m.subscribed, m.special_use) for m in boxes] + [
        Box(n, True, None, exists=False) for n in subs if n not in names]


async def cmd_lsub(session: ImapSession, cmd: c.Lsub) -> Tagged:
    """RFC 3501 section 6.3.9 (IMAP4rev1 clients)."""
    assert session.user is not None
    boxes = await session.store.list_mailboxes(session.user.id)
    entries = lsub_entries(cmd.reference, cmd.pattern, await _boxes(session, boxes),
                           SEPARATOR)
    for name, attrs, _ in entries:
        session.conn.send(ListResponse(name, SEPARATOR, attrs, utf8=session.utf8,
                                       lsub=True))
    return Tagged(cmd.tag, "OK", "LSUB completed")


# ---------------------------------------------------------------------- STATUS


async def _status_response(session: ImapSession, mb: Mailbox, items: tuple[str, ...]
                           ) -> StatusResponse:
    st = await session.store.status(mb.id)
    values = {
        "MESSAGES": st.messages, "UIDNEXT": st.mailbox.uidnext,
        "UIDVALIDITY": st.mailbox.uidvalidity, "UNSEEN": st.unseen, "DELETED": st.deleted,
        "SIZE": st.size, "RECENT": st.recent, "HIGHESTMODSEQ": st.mailbox.highestmodseq,
        "APPENDLIMIT": session.ctx.append_limit,
        # RFC 9208 section 4.1.4: what EXPUNGE would free, in the STORAGE resource's
        # units of 1024 octets (section 5.1), rounded up like the QUOTA usage.
        "DELETED-STORAGE": -(-st.deleted_size // 1024),
    }
    sel = session.selected
    if sel is not None and sel.mailbox_id == mb.id:
        # \Recent this session holds plus what nobody has claimed yet
        values["RECENT"] = sel.recent_count + st.recent
    if "HIGHESTMODSEQ" in items:
        session.enable_condstore()
    return StatusResponse(mb.name, [(i, values[i]) for i in items if i in values],
                          utf8=session.utf8)


async def cmd_status(session: ImapSession, cmd: c.Status) -> Tagged:
    """RFC 9051 section 6.3.11."""
    assert session.user is not None
    mb = await session.store.get_mailbox(session.user.id, _name(session, cmd.mailbox))
    if mb is None:
        return Tagged(cmd.tag, "NO", "No such mailbox", ResponseCode.NONEXISTENT)
    session.conn.send(await _status_response(session, mb, cmd.items))
    return Tagged(cmd.tag, "OK", "STATUS completed")


# ---------------------------------------------------------------------- APPEND


async def cmd_append(session: ImapSession, cmd: c.Append) -> Tagged:
    """RFC 9051 section 6.3.12, MULTIAPPEND (RFC 3502: all or nothing), APPENDUID
    (RFC 4315). The receiver already refused literals over APPENDLIMIT."""
    assert session.user is not None
    name = _name(session, cmd.mailbox)
    mb = await session.store.get_mailbox(session.user.id, name)
    if mb is None:
        return Tagged(cmd.tag, "NO", "No such mailbox", ResponseCode.TRYCREATE)
    items = []
    for m in cmd.messages:
        if any(f.lower() == "\\recent" for f in m.flags):
            return Tagged(cmd.tag, "BAD", "\\Recent cannot be set")
        bogus = unknown_system_flag(m.flags)
        if bogus:
            return Tagged(cmd.tag, "BAD", f"Invalid system flag {bogus}")
        if not m.data:
            return Tagged(cmd.tag, "NO", "Empty message", ResponseCode.CANNOT)
        if len(m.data) > session.ctx.append_limit:
            return Tagged(cmd.tag, "NO", "Message too big", ResponseCode.TOOBIG)
        when = m.internal_date.timestamp() if m.internal_date is not None else None
        items.append((m.data, Flags.from_names(list(m.flags)), when))
    try:
        results = await session.store.append_many(session.user.id, name, items)
    except OverQuota:
        return Tagged(cmd.tag, "NO", "Quota exceeded", ResponseCode.OVERQUOTA)
    except NotFound:
        return Tagged(cmd.tag, "NO", "No such mailbox", ResponseCode.TRYCREATE)
    uids = sequence_text([r.uid for r in results], sort=False)
    code = ResponseCode.append_uid(results[0].uidvalidity, uids)
    if session.selected is not None and session.selected.mailbox_id == mb.id:
        await session.report_updates(allow_expunge=True, force=True)
    return Tagged(cmd.tag, "OK", "APPEND completed", code)

