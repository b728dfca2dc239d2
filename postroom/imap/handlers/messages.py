"""Commands on the selected mailbox: CLOSE, UNSELECT, EXPUNGE, FETCH, STORE, COPY, MOVE,
SEARCH and their UID forms (RFC 9051 sections 6.4.x; UIDPLUS RFC 4315, MOVE RFC 6851,
CONDSTORE/QRESYNC RFC 7162, ESEARCH RFC 4731, SEARCHRES RFC 5182).
"""

from __future__ import annotations

import operator
import time
from collections.abc import Iterable, Sequence
from itertools import repeat
from typing import TYPE_CHECKING

from postroom.imap import commands as c
from postroom.imap.fetch_items import UnknownCte, fetch_items
from postroom.imap.grammar.reader import normalize_inbox
from postroom.imap.grammar.sequence import SequenceSet
from postroom.imap.responses import (
    EsearchResponse,
    FetchResponse,
    ResponseCode,
    SearchResponse,
    Tagged,
    Untagged,
    VanishedResponse,
)
from postroom.imap.search_eval import search
from postroom.store.models import SEEN, SYSTEM_FLAGS, Flags, OverQuota
from postroom.store.sqlite import SEPARATOR

if TYPE_CHECKING:
    from postroom.imap.selected import SelectedMailbox
    from postroom.imap.session import ImapSession


class BadSet(Exception):
    pass


def _uids(session: ImapSession, seqset: SequenceSet, uid: bool) -> list[int]:
    """The UIDs a sequence set names. Message numbers beyond the mailbox are an error
    (BAD); UIDs that do not exist simply match nothing (RFC 9051 section 6.4.9)."""
    sel = session.selected
    assert sel is not None
    if seqset.saved:  # SEARCHRES "$" (RFC 5182 section 2.1)
        return sel.present(sel.saved_result)
    if uid:
        return sel.resolve_uids(seqset.resolve(sel.max_uid()))
    seqs = sel.resolve_seqs(seqset.resolve(sel.exists))
    if seqs is None:
        raise BadSet
    return list(map(sel.uids.__getitem__, map(_minus_one, seqs)))


_minus_one = (-1).__add__  # sequence number -> position


def unknown_system_flag(flags: Iterable[str]) -> str | None:
    """A ``\\`` flag that is not a system flag: BAD, as Dovecot answers (RFC 9051
    section 2.3.2 reserves them; storing nothing while saying OK would mislead)."""
    for f in flags:
        if f.startswith("\\") and f.lower() not in SYSTEM_FLAGS:
            return f
    return None


def _sel(session: ImapSession) -> SelectedMailbox:
    assert session.selected is not None
    return session.selected


# ---------------------------------------------------------------------- CLOSE / UNSELECT


async def cmd_close(session: ImapSession, cmd: c.Close) -> Tagged:
    """RFC 9051 section 6.4.1: silently expunge (unless read-only), then deselect."""
    sel = _sel(session)
    if not sel.readonly:
        await session.store.expunge(sel.mailbox_id)
    session.unselect()
    return Tagged(cmd.tag, "OK", "CLOSE completed")


async def cmd_unselect(session: ImapSession, cmd: c.Unselect) -> Tagged:
    """RFC 9051 section 6.4.2."""
    session.unselect()
    return Tagged(cmd.tag, "OK", "UNSELECT completed")


# ---------------------------------------------------------------------- EXPUNGE


async def cmd_expunge(session: ImapSession, cmd: c.Expunge) -> Tagged:
    """RFC 9051 section 6.4.3; UID EXPUNGE (section 6.4.9, RFC 4315 section 2.1)."""
    sel = _sel(session)
    if sel.readonly:
        return Tagged(cmd.tag, "NO", "Mailbox is read-only", ResponseCode.READ_ONLY)
    only = None
    if cmd.uids is not None:
        only = _uids(session, cmd.uids, uid=True)
    gone = await session.store.expunge(sel.mailbox_id, only)
    session.expunged_own(gone)
    if session.qresync:
        # the tagged OK carries HIGHESTMODSEQ (see ImapSession.with_highestmodseq)
        session.sent_vanished = True
        await session.report_updates(allow_expunge=True, force=True)
    return Tagged(cmd.tag, "OK", f"{cmd.name} completed")


# ---------------------------------------------------------------------- FETCH


async def cmd_fetch(session: ImapSession, cmd: c.Fetch) -> Tagged:
    """RFC 9051 section 6.4.5; CHANGEDSINCE and VANISHED (RFC 7162 sections 3.1.4.1,
    3.2.6). Bodies are read per message and written out with backpressure."""
    sel = _sel(session)
    try:
        uids = _uids(session, cmd.sequence_set, cmd.uid)
    except BadSet:
        return Tagged(cmd.tag, "BAD", "Invalid message sequence number")
    if cmd.vanished and not session.qresync:
        return Tagged(cmd.tag, "BAD", "VANISHED needs ENABLE QRESYNC")  # RFC 7162 3.2.6
    items = list(cmd.items)
    modseq = cmd.changed_since is not None or any(
        isinstance(i, c.FetchAttribute) and i.name == "MODSEQ" for i in items)
    if modseq:
        session.enable_condstore()
    if cmd.vanished and cmd.changed_since is not None:
        changes = await session.store.changes_since(sel.mailbox_id, cmd.changed_since)
        lo_hi = cmd.sequence_set.resolve(sel.max_uid()) if not cmd.sequence_set.saved else []
        gone = [u for u in changes.vanished if any(a <= u <= b for a, b in lo_hi)]
        if gone:
            session.conn.send(VanishedResponse(gone, earlier=True))
    if cmd.changed_since is not None:
        since, pos = cmd.changed_since, sel.positions(uids)
        uids = [u for u, m in zip(sel.uids_at(pos), sel.modseqs_at(pos), strict=True) if m > since]
    # Fetching a body section sets \Seen (RFC 9051 section 6.4.5) unless read-only;
    # under CONDSTORE the new MODSEQ of those messages goes along (RFC 7162 3.1.4).
    seen_now: set[int] = set()
    if not sel.readonly and any(i.sets_seen for i in items):
        pos = sel.positions(uids)
        unseen = [u for u, f in zip(sel.uids_at(pos), sel.flags_at(pos), strict=True)
                  if not f.bits & SEEN]
        if unseen:
            changed, _ = await session.store.store_flags(sel.mailbox_id, unseen, "add",
                                                         Flags(SEEN))
            sel.apply_flags(changed)
            seen_now = {e.uid for e in changed}
            if not any(isinstance(i, c.FetchAttribute) and i.name == "FLAGS"
                       for i in items):
                items.insert(0, c.FetchAttribute("FLAGS"))  # before the bodies, as Dovecot
    if all(isinstance(i, c.FetchAttribute) and i.name in _FLAG_ITEMS for i in items):
        await _fetch_flags_fast(session, cmd, items, uids,
                                implied_modseq=session.condstore and modseq)
        return Tagged(cmd.tag, "OK", f"{cmd.name} completed")
    failed_cte = None
    for uid in uids:
        i = sel.index_of(uid)
        if i is None:
            continue
        try:
            values = await fetch_items(sel.entry_at(i), items, session.source,
                                       recent=sel.is_recent(uid), rev1=not session.rev2,
                                       utf8=session.utf8,
                                       include_modseq=session.condstore and (
                                           modseq or uid in seen_now),
                                       include_uid=cmd.uid)
        except UnknownCte as e:
            failed_cte = e
            continue
        session.conn.send(FetchResponse(i + 1, values, utf8=session.utf8))
        await session.conn.maybe_flush()
    if failed_cte is not None:
        return Tagged(cmd.tag, "NO", "Unknown Content-Transfer-Encoding",
                      ResponseCode.UNKNOWN_CTE)
    return Tagged(cmd.tag, "OK", f"{cmd.name} completed")


_FLAG_ITEMS = frozenset({"UID", "FLAGS", "MODSEQ"})


async def _fetch_flags_fast(session: ImapSession, cmd: c.Fetch, items: list[c.FetchItem],
                            uids: list[int], implied_modseq: bool) -> None:
    """FETCH of only UID/FLAGS/MODSEQ (what a client's resync asks for every message of
    a mailbox): each batch of lines is one ``str.format`` mapped in C over the selected
    mailbox's columns, the flag lists made once per flag set (and \\Recent), and written
    in batches. Same bytes as the general path (tests/imap compare them)."""
    sel = _sel(session)
    names = [i.name for i in items if isinstance(i, c.FetchAttribute)]
    with_uid = cmd.uid or "UID" in names
    rest = [n for n in dict.fromkeys(names) if n != "UID"]
    if implied_modseq and "MODSEQ" not in rest:
        rest.append("MODSEQ")
    rev1 = not session.rev2
    texts = _FlagTexts(sel.flag_sets)
    template = "* {} FETCH (" + " ".join(
        (["UID {}"] if with_uid else [])
        + ["{}" if name == "FLAGS" else "MODSEQ ({})" for name in rest]) + ")\r\n"
    positions = sel.positions(uids)
    for start in range(0, len(positions), _FETCH_BATCH):
        if start:
            await session.conn.maybe_flush()
        batch = positions[start:start + _FETCH_BATCH]
        columns: list[Iterable[object]] = [map(_plus_one, batch)]
        if with_uid:
            columns.append(sel.uids_at(batch))
        for name in rest:
            if name == "FLAGS":
                keys = sel.flag_keys_at(batch)
                if not rev1:  # \Recent is gone from IMAP4rev2
                    keys = map(operator.and_, keys, repeat(~1))
                columns.append(map(texts.__getitem__, keys))
            else:
                columns.append(sel.modseqs_at(batch))
        session.conn.send("".join(map(template.format, *columns)).encode())


_FETCH_BATCH = 1000  # lines per write
_plus_one = (1).__add__


class _FlagTexts(dict[int, str]):
    """``FLAGS (...)`` per ``SelectedMailbox.flag_keys_at`` key, made on first use: system
    flags, \\Recent, keywords (flag_atoms' order, which is Dovecot's)."""

    def __init__(self, flag_sets: Sequence[Flags]) -> None:
        super().__init__()
        self.flag_sets = flag_sets

    def __missing__(self, key: int) -> str:
        flags = self.flag_sets[key >> 1]
        names = [n for n in flags.names() if n.startswith("\\")]
        names += (["\\Recent"] if key & 1 else []) + list(flags.keywords)
        text = self[key] = f"FLAGS ({' '.join(names)})"
        return text


# ---------------------------------------------------------------------- STORE


async def cmd_store(session: ImapSession, cmd: c.Store) -> Tagged:
    """RFC 9051 section 6.4.6; UNCHANGEDSINCE (RFC 7162 section 3.1.3)."""
    sel = _sel(session)
    if sel.readonly:
        return Tagged(cmd.tag, "NO", "Mailbox is read-only", ResponseCode.READ_ONLY)
    try:
        uids = _uids(session, cmd.sequence_set, cmd.uid)
    except BadSet:
        return Tagged(cmd.tag, "BAD", "Invalid message sequence number")
    if any(f.lower() == "\\recent" for f in cmd.flags):
        return Tagged(cmd.tag, "BAD", "\\Recent cannot be changed")
    bogus = unknown_system_flag(cmd.flags)
    if bogus:
        return Tagged(cmd.tag, "BAD", f"Invalid system flag {bogus}")
    if cmd.unchanged_since is not None:
        session.enable_condstore()
    mode = {"replace": "set", "add": "add", "remove": "remove"}[cmd.mode]
    changed, failed = await session.store.store_flags(
        sel.mailbox_id, uids, mode, Flags.from_names(list(cmd.flags)), cmd.unchanged_since)
    sel.apply_flags(changed)
    session.announce_keywords()
    changed_uids = {e.uid for e in changed}
    failed_set = set(failed)
    for uid in uids:
        seq = sel.seq_of(uid)
        if seq is None or uid in failed_set:
            continue
        if cmd.silent and not (session.condstore and uid in changed_uids):
            continue
        items = session.flag_items(uid, with_uid=cmd.uid)
        if cmd.silent:  # RFC 7162 section 3.1.3: MODSEQ still reported
            items = [i for i in items if i[0] != "FLAGS"]
        session.conn.send(FetchResponse(seq, items, utf8=session.utf8))
    if failed:
        numbers = failed if cmd.uid else [sel.seq_of(u) or 0 for u in failed]
        return Tagged(cmd.tag, "OK", "Conditional STORE failed",
                      ResponseCode.modified(sorted(numbers)))
    return Tagged(cmd.tag, "OK", f"{cmd.name} completed")


# ---------------------------------------------------------------------- COPY / MOVE


async def cmd_copy(session: ImapSession, cmd: c.Copy | c.Move) -> Tagged:
    """COPY (RFC 9051 section 6.4.7) and MOVE (section 6.4.8, RFC 6851) with COPYUID
    (RFC 4315 section 3)."""
    sel = _sel(session)
    assert session.user is not None
    move = isinstance(cmd, c.Move)
    if move and sel.readonly:
        return Tagged(cmd.tag, "NO", "Mailbox is read-only", ResponseCode.READ_ONLY)
    try:
        uids = _uids(session, cmd.sequence_set, cmd.uid)
    except BadSet:
        return Tagged(cmd.tag, "BAD", "Invalid message sequence number")
    dst = await session.store.get_mailbox(session.user.id,
                                          normalize_inbox(cmd.mailbox, SEPARATOR))
    if dst is None:
        return Tagged(cmd.tag, "NO", "No such mailbox", ResponseCode.TRYCREATE)
    src_mb = sel.mailbox
    if src_mb is None:
        return Tagged(cmd.tag, "NO", "Selected mailbox vanished", ResponseCode.NONEXISTENT)
    if not uids:
        return Tagged(cmd.tag, "OK", f"{cmd.name} completed (nothing to do)")
    try:
        pairs = await session.store.copy(src_mb, uids, dst, move=move)
    except OverQuota:
        return Tagged(cmd.tag, "NO", "Quota exceeded", ResponseCode.OVERQUOTA)
    code = ResponseCode.copy_uid(dst.uidvalidity, [p[0] for p in pairs],
                                 [p[1] for p in pairs]) if pairs else None
    if move:
        # RFC 6851 section 4.3: COPYUID in an untagged OK before the expunges
        if code is not None:
            session.conn.send(Untagged("OK", "Moved", code))
        session.expunged_own([p[0] for p in pairs])
        if dst.id == sel.mailbox_id:
            await session.report_updates(allow_expunge=True, force=True)
        return Tagged(cmd.tag, "OK", f"{cmd.name} completed")
    if dst.id == sel.mailbox_id:
        await session.report_updates(allow_expunge=False, force=True)
    return Tagged(cmd.tag, "OK", f"{cmd.name} completed", code)


# ---------------------------------------------------------------------- SEARCH


async def cmd_search(session: ImapSession, cmd: c.Search) -> Tagged:
    """RFC 9051 section 6.4.4; ESEARCH RETURN options (RFC 4731), SAVE (RFC 5182),
    MODSEQ (RFC 7162 section 3.1.5)."""
    sel = _sel(session)
    try:
        matched = await search(cmd.criteria, sel, session.source, now=time.time(),
                               saved=sel.saved_result)
    except (IndexError, ValueError) as e:
        return Tagged(cmd.tag, "BAD", f"Invalid search: {e}")
    uses_modseq = _mentions_modseq(cmd.criteria)
    if uses_modseq:
        session.enable_condstore()
    highest = max(sel.modseqs_at(sel.positions(matched)), default=None) \
        if uses_modseq else None
    numbers = matched if cmd.uid else [sel.seq_of(u) or 0 for u in matched]
    opts = cmd.return_options
    if opts is None and session.rev2:
        # IMAP4rev2 has no SEARCH response: no RETURN means RETURN (ALL) (RFC 9051
        # section 6.4.4, appendix E item 6)
        opts = ("ALL",)
    if opts is not None and "SAVE" in opts:
        # SAVE with MIN or MAX saves just those (RFC 5182 section 2.4)
        if ("MIN" in opts or "MAX" in opts) and not ({"ALL", "COUNT"} & set(opts)):
            keep = []
            if "MIN" in opts and matched:
                keep.append(matched[0])
            if "MAX" in opts and matched:
                keep.append(matched[-1])
            sel.saved_result = sorted(set(keep))
        else:
            sel.saved_result = list(matched)
    if opts is not None and set(opts) != {"SAVE"}:  # SAVE alone: no answer (RFC 5182)
        session.conn.send(EsearchResponse(
            tag=cmd.tag, uid=cmd.uid,
            min=numbers[0] if "MIN" in opts and numbers else None,
            max=numbers[-1] if "MAX" in opts and numbers else None,
            all=numbers if "ALL" in opts and numbers else None,
            count=len(numbers) if "COUNT" in opts else None,
            modseq=highest if numbers else None))
    elif opts is None:
        session.conn.send(SearchResponse(numbers, highest))
    return Tagged(cmd.tag, "OK", f"{cmd.name} completed")


def _mentions_modseq(key: object) -> bool:
    if isinstance(key, c.SearchModSeq):
        return True
    if isinstance(key, c.SearchNot):
        return _mentions_modseq(key.key)
    if isinstance(key, c.SearchOr):
        return _mentions_modseq(key.left) or _mentions_modseq(key.right)
    if isinstance(key, c.SearchAnd):
        return any(_mentions_modseq(k) for k in key.keys)
    return False
