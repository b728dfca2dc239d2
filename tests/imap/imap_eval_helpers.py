"""Test helpers for the FETCH and SEARCH evaluators: an in-memory MessageSource that
records what was read, store entries and a selected mailbox built from raw messages."""

from __future__ import annotations

import asyncio
import calendar
import datetime
import email.utils
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from imap_eval_corpus import MESSAGES

from postroom.imap.selected import SelectedMailbox
from postroom.mime import MessageInfo, analyze, normalize_crlf
from postroom.store.models import Entry, Flags

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def crlf(text: bytes) -> bytes:
    """Test messages are written with LF; the store keeps CRLF."""
    return bytes(normalize_crlf(text))


def ts(text: str) -> float:
    """'2024-01-02 03:00:00' (UTC) as a timestamp."""
    moment = datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    return float(calendar.timegm(moment.timetuple()))


class FakeSource:
    """``MessageSource`` over raw messages (by message id). ``reads`` logs every
    ``body`` call as (id, start, end) and ``infos`` every ``info`` call; the analysis
    goes through its JSON form, as the store keeps it."""

    def __init__(self, messages: Mapping[int, bytes]) -> None:
        self.raw = {mid: crlf(data) for mid, data in messages.items()}
        self._infos = {
            mid: MessageInfo.from_json(analyze(data).to_json()) for mid, data in self.raw.items()
        }
        self.reads: list[tuple[int, int, int | None]] = []
        self.infos: list[int] = []

    async def info(self, message_id: int) -> MessageInfo:
        self.infos.append(message_id)
        return self._infos[message_id]

    async def body(self, message_id: int, start: int = 0, end: int | None = None) -> bytes:
        self.reads.append((message_id, start, end))
        data = self.raw[message_id]
        return data[start:end]

    async def imap_summary(self, message_id: int) -> tuple[bytes, bytes] | None:
        """As for a message stored before ENVELOPE/BODYSTRUCTURE were rendered at
        store time: FETCH renders them from ``info``."""
        return None

    def read_octets(self) -> int:
        return sum(len(self.raw[mid][start:end]) for mid, start, end in self.reads)


@dataclass
class Box:
    """A mailbox fixture: the source, the selected state and the messages by UID."""

    source: FakeSource
    selected: SelectedMailbox


def make_entry(
    uid: int,
    size: int,
    *,
    message_id: int | None = None,
    flags: Iterable[str] = (),
    modseq: int = 1,
    internaldate: float = 0.0,
    savedate: float | None = None,
) -> Entry:
    return Entry(
        uid=uid,
        message_id=uid if message_id is None else message_id,
        flags=Flags.from_names(list(flags)),
        modseq=modseq,
        size=size,
        internaldate=internaldate,
        savedate=internaldate if savedate is None else savedate,
    )


def make_box(
    messages: Mapping[int, bytes],
    *,
    flags: Mapping[int, Iterable[str]] | None = None,
    modseqs: Mapping[int, int] | None = None,
    internaldates: Mapping[int, float] | None = None,
    savedates: Mapping[int, float] | None = None,
    recent: Iterable[int] = (),
) -> Box:
    """A selected mailbox holding ``messages`` by UID (message id = UID)."""
    source = FakeSource(messages)
    entries = [
        make_entry(
            uid,
            len(source.raw[uid]),
            flags=(flags or {}).get(uid, ()),
            modseq=(modseqs or {}).get(uid, 1),
            internaldate=(internaldates or {}).get(uid, 0.0),
            savedate=(savedates or {}).get(uid),
        )
        for uid in sorted(messages)
    ]
    top = max((e.modseq for e in entries), default=1)
    selected = SelectedMailbox(
        mailbox_id=1,
        uidvalidity=1,
        entries=entries,
        highestmodseq=top,
        uidnext=max(messages, default=0) + 1,
        readonly=False,
    )
    selected.mark_recent(recent)
    return Box(source, selected)


def stamp(text: str) -> float:
    """An IMAP date-time (quoted or not) as a timestamp."""
    parsed = email.utils.parsedate_tz(text.strip('"').replace("-", " ", 2))
    assert parsed is not None
    return float(email.utils.mktime_tz(parsed))


def dovecot_box(recorded: dict[str, Any]) -> Box:
    """The mailbox of the recording: same UIDs, flags, mod-sequences, dates."""
    meta = recorded["messages"]
    uids = [int(u) for u in meta]
    return make_box(
        {u: MESSAGES[u - 1].raw for u in uids},
        flags={u: meta[str(u)]["FLAGS"].strip("()").replace("\\Recent", "").split() for u in uids},
        modseqs={u: int(meta[str(u)]["MODSEQ"].strip("()")) for u in uids},
        internaldates={u: stamp(meta[str(u)]["INTERNALDATE"]) for u in uids},
        savedates={u: stamp(meta[str(u)]["SAVEDATE"]) for u in uids},
        recent=uids,
    )
