"""Fuzz target: FETCH item lists - parsed, then served for every message of a small
mailbox and written out as ``* n FETCH`` responses. Only ``ParseError`` may come out
of parsing and ``UnknownCte`` of serving (BINARY of an unknown encoding).
``python -m fuzz.imap_fetch --seconds N``."""

from __future__ import annotations

from fuzz._imap import check_events, drive, mailbox, receive
from fuzz.engine import Target, main
from postroom.imap.commands import Fetch
from postroom.imap.fetch_items import UnknownCte, fetch_items
from postroom.imap.responses import FetchResponse

PREFIXES = (b"f FETCH 1:* ", b"f UID FETCH 1:* ", b"f FETCH 2 ", b"f UID FETCH 1:* ")


def check(data: bytes) -> None:
    prefix = PREFIXES[len(data) % len(PREFIXES)]
    for cmd in check_events(receive(prefix + data + b"\r\n", 4096), utf8=False):
        if not isinstance(cmd, Fetch):
            continue
        selected, source = mailbox()
        for seq, uid in enumerate(selected.uids, start=1):
            try:
                values = drive(fetch_items(selected.entries[uid], list(cmd.items), source,
                                           recent=uid in selected.recent, rev1=len(data) % 2 == 0,
                                           utf8=False, include_modseq=True, include_uid=cmd.uid))
            except UnknownCte:
                continue
            wire = bytes(FetchResponse(seq, values))
            assert wire.startswith(b"* %d FETCH (" % seq) and wire.endswith(b")\r\n")


_ITEMS = (
    "ALL FAST FULL BODY BODY.PEEK BODYSTRUCTURE ENVELOPE FLAGS INTERNALDATE RFC822 "
    "RFC822.HEADER RFC822.SIZE RFC822.TEXT UID BINARY BINARY.PEEK BINARY.SIZE MODSEQ "
    "SAVEDATE EMAILID THREADID PREVIEW"
)
DICTIONARY = (*tuple(k.encode() for k in _ITEMS.split()), b" ", b"(", b")", b"[", b"]", b"[]", b"[HEADER]", b"[TEXT]", b"[1]", b"[2.2]", b"[2.2.TEXT]", b"[2.MIME]", b"[HEADER.FIELDS (Subject From)]", b"[HEADER.FIELDS.NOT (To)]", b"<0.10>", b"<4294967295.4294967295>", b"<18446744073709551615>", b"1.", b".1", b"0", b"[0]", b"(CHANGEDSINCE 5 VANISHED)", b"(CHANGEDSINCE 18446744073709551616)", b"{3}\r\nabc")

TARGET = Target("imap_fetch", check, DICTIONARY)

if __name__ == "__main__":
    raise SystemExit(main(TARGET))
