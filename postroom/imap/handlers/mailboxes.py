"""Mailbox commands: SELECT/EXAMINE, CREATE, DELETE, RENAME, (UN)SUBSCRIBE, LIST, LSUB,
STATUS, APPEND (RFC 9051 sections 6.3.x; LIST-EXTENDED RFC 5258, LIST-STATUS RFC 5819,
SPECIAL-USE RFC 6154, CONDSTORE/QRESYNC RFC 7162, UIDPLUS RFC 4315, MULTIAPPEND RFC 3502).

Each handler takes the session and its parsed command, sends untagged data through
``session.conn`` and returns the tagged answer.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from postroom.imap import commands as c
from postroom.imap.grammar.reader import normalize_inbox
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
from postroom.store.sqlite import SEPARATOR

if TYPE_CHECKING:
    from postroom.imap.session import ImapSession

SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")


def _name(session: ImapSession, name: str) -> str:
    return normalize_inbox(name, SEPARATOR)


# ---------------------------------------------------------------------- SELECT


async def cmd_select(session: ImapSession, cmd: c.Select) -> Tagged:
    """RFC 9051 section 6.3.2 (SELECT) and 6.3.3 (EXAMINE); CONDSTORE/QRESYNC parameters
    (RFC 7162 sections 3.1.8, 3.2.5)."""
    assert session.user is not None
    session.unselect()  # a failed SELECT leaves no mailbox selected (section 6.3.2)
    name = _name(session, cmd.mailbox)
    mb = await session.store.get_mailbox(session.user.id, name)
    if mb is None:
        return Tagged(cmd.tag, "NO", "No such mailbox", ResponseCode.NONEXISTENT)
    if cmd.qresync is not None and not session.qresync:
        return Tagged(cmd.tag, "BAD", "QRESYNC is not enabled")
    if cmd.condstore or cmd.qresync is not None:
        session.condstore = True
    entries = await session.store.list_entries(mb.id)
    status = await session.store.status(mb.id)
    mb = status.mailbox  # fresh counters, consistent with what we just listed
    recent = (0, 0)
    if not session.rev2:
        recent = await session.store.claim_recent(mb.id)
    sel = SelectedMailbox(mb.id, mb.uidvalidity, entries, mb.highestmodseq, mb.uidnext,
                          cmd.read_only, recent)
    sel.mailbox = mb
    # Entries that changed between list_entries and status are caught by the feed.
    session.select(sel)
    keywords = sorted({k for e in entries for k in e.flags.keywords}, key=str.lower)
    flags = [*SYSTEM_FLAGS, *keywords]
    send = session.conn.send
    send(FlagsResponse(tuple(flags)))
    perm = [] if cmd.read_only else [*flags, "\\*"]
    send(Untagged("OK", "Flags permitted", ResponseCode.permanent_flags(perm)))
    send(ExistsResponse(sel.exists))
    if not session.rev2:
        send(RecentResponse(len(sel.recent)))
        first_unseen = next((i + 1 for i, u in enumerate(sel.uids)
                             if not sel.entries[u].flags.bits & 1), None)
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
    vanished = [u for u in changes.vanished
                if known is None or any(lo <= u <= hi for lo, hi in known)]
    if vanished:
        session.conn.send(VanishedResponse(vanished, earlier=True))
    for e in changes.changed:
        if e.uid in sel.entries:
            seq = sel.seq_of(e.uid)
            if seq is not None:
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
    name = _name(session, cmd.mailbox)
    if name == "INBOX":
        return Tagged(cmd.tag, "NO", "INBOX cannot be deleted", ResponseCode.CANNOT)
    mb = await session.store.get_mailbox(session.user.id, name)
    if mb is None:
        return Tagged(cmd.tag, "NO", "No such mailbox", ResponseCode.NONEXISTENT)
    if session.selected is not None and session.selected.mailbox_id == mb.id:
        session.unselect()
    await session.store.delete_mailbox(session.user.id, name)
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
    try:
        await session.store.set_subscribed(session.user.id, name, on)
    except NotFound:
        if on:
            return Tagged(cmd.tag, "NO", "No such mailbox", ResponseCode.NONEXISTENT)
    return Tagged(cmd.tag, "OK", f"{cmd.name} completed")


# ---------------------------------------------------------------------- LIST


def pattern_regex(reference: str, pattern: str) -> re.Pattern[str]:
    """RFC 9051 section 6.3.9: ``*`` matches anything, ``%`` anything but the
    hierarchy separator; the reference is prefixed. INBOX matches case-insensitively."""
    full = reference + pattern if not pattern.startswith(SEPARATOR) or not reference \
        else reference.rstrip(SEPARATOR) + pattern
    out = []
    for ch in full:
        if ch == "*":
            out.append(".*")
        elif ch == "%":
            out.append(f"[^{re.escape(SEPARATOR)}]*")
        else:
            out.append(re.escape(ch))
    body = "".join(out)
    return re.compile(f"(?:{body})\\Z", re.DOTALL)


def _inbox_match(reference: str, pattern: str, name: str) -> bool:
    """Match with the pattern's INBOX prefix folded to upper case."""
    full = normalize_inbox(reference + pattern, SEPARATOR)
    return bool(pattern_regex("", full).match(name))


async def cmd_list(session: ImapSession, cmd: c.List) -> Tagged:
    assert session.user is not None
    if len(cmd.patterns) == 1 and cmd.patterns[0] == "" and not cmd.extended:
        # RFC 9051 section 6.3.9: the hierarchy delimiter and root
        session.conn.send(ListResponse("", SEPARATOR, ("\\Noselect",), utf8=session.utf8))
        return Tagged(cmd.tag, "OK", "LIST completed")
    boxes = await session.store.list_mailboxes(session.user.id)
    by_name = {m.name: m for m in boxes}
    # Names that exist only as parents of others (\NonExistent, RFC 5258 section 3)
    implied: set[str] = set()
    for n in by_name:
        parts = n.split(SEPARATOR)
        for i in range(1, len(parts)):
            implied.add(SEPARATOR.join(parts[:i]))
    implied -= set(by_name)
    children = {p for n in list(by_name) + list(implied)
                for p in [n.rsplit(SEPARATOR, 1)[0]] if SEPARATOR in n}
    subscribed = {n for n, m in by_name.items() if m.subscribed}
    candidates = sorted(set(by_name) | implied, key=lambda n: (n != "INBOX", n))
    out: list[tuple[str, list[str], tuple[str, ...]]] = []
    for name in candidates:
        if not any(_inbox_match(cmd.reference, p, name) for p in cmd.patterns):
            continue
        mb = by_name.get(name)
        attrs: list[str] = []
        child_info: tuple[str, ...] = ()
        if cmd.select_subscribed and name not in subscribed:
            if cmd.select_recursive_match and any(
                    s.startswith(name + SEPARATOR) for s in subscribed):
                child_info = ("SUBSCRIBED",)
            else:
                continue
        if cmd.select_special_use and (mb is None or mb.special_use is None):
            continue
        if mb is None:
            attrs.append("\\NonExistent" if cmd.extended else "\\Noselect")
        attrs.append("\\HasChildren" if name in children else "\\HasNoChildren")
        if (cmd.return_subscribed or cmd.select_subscribed) and name in subscribed:
            attrs.append("\\Subscribed")
        if mb is not None and mb.special_use and (
                cmd.return_special_use or cmd.select_special_use or not cmd.extended):
            attrs.append(mb.special_use)
        out.append((name, attrs, child_info))
    for name, attrs, child_info in out:
        session.conn.send(ListResponse(name, SEPARATOR, tuple(attrs), utf8=session.utf8,
                                       child_info=child_info))
        mb = by_name.get(name)
        if cmd.return_status and mb is not None:
            session.conn.send(await _status_response(session, mb, cmd.return_status))
    return Tagged(cmd.tag, "OK", "LIST completed")


async def cmd_lsub(session: ImapSession, cmd: c.Lsub) -> Tagged:
    """RFC 3501 section 6.3.9 (IMAP4rev1 clients)."""
    assert session.user is not None
    boxes = await session.store.list_mailboxes(session.user.id)
    for mb in sorted(boxes, key=lambda m: (m.name != "INBOX", m.name)):
        if mb.subscribed and _inbox_match(cmd.reference, cmd.pattern, mb.name):
            attrs: tuple[str, ...] = (mb.special_use,) if mb.special_use else ()
            session.conn.send(ListResponse(mb.name, SEPARATOR, attrs, utf8=session.utf8,
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
    }
    if "HIGHESTMODSEQ" in items:
        session.condstore = True
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

