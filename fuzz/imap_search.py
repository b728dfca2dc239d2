"""Fuzz target: SEARCH criteria - parsed, then evaluated against a small mailbox of
varied messages (flags, dates, headers, MIME bodies, an unknown transfer encoding).
Only ``ParseError`` may come out of parsing; evaluation never raises and returns
UIDs of the mailbox, ascending. ``python -m fuzz.imap_search --seconds N``."""

from __future__ import annotations

from fuzz._imap import check_events, drive, mailbox, receive
from fuzz.engine import Target, main
from postroom.imap.commands import Search
from postroom.imap.search_eval import search

PREFIXES = (b"s SEARCH ", b"s UID SEARCH ", b"s SEARCH RETURN (MIN MAX COUNT ALL SAVE) ",
            b"s UID SEARCH CHARSET UTF-8 ", b"s SEARCH CHARSET ISO-8859-1 ")


def check(data: bytes) -> None:
    prefix = PREFIXES[len(data) % len(PREFIXES)]
    for cmd in check_events(receive(prefix + data + b"\r\n", 4096), utf8=True):
        if not isinstance(cmd, Search):
            continue
        selected, source = mailbox()
        uids = drive(search(cmd.criteria, selected, source, now=1_800_000_000.0, saved=[2, 5]))
        assert uids == sorted(set(uids)) and set(uids) <= set(selected.uids), uids


_KEYS = (
    "ALL ANSWERED BCC BEFORE BODY CC DELETED DRAFT FLAGGED FROM HEADER KEYWORD LARGER NEW NOT "
    "OLD ON OR RECENT SEEN SENTBEFORE SENTON SENTSINCE SINCE SMALLER SUBJECT TEXT TO UID "
    "UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNKEYWORD UNSEEN OLDER YOUNGER MODSEQ SAVEDBEFORE "
    "SAVEDON SAVEDSINCE SAVEDATESUPPORTED"
)
DICTIONARY = (*tuple(k.encode() + b" " for k in _KEYS.split()), b"(", b")", b"((((((((", b"))))))))", b"NOT NOT NOT ", b"OR OR OR ", b" ", b"1:*", b"$", b"2,4:7", b"*", b"4294967295", b"18446744073709551615", b"1-Jan-2024", b"31-Feb-2024", b"caf\xc3\xa9", b'"bob"', b"{3}\r\nBob", b'"/flags/\\\\seen" priv 5', b"$Junk", b"\\Seen", b"Message-ID ", b'""', b"\xe9", b"\xff")

TARGET = Target("imap_search", check, DICTIONARY, max_size=8192)

if __name__ == "__main__":
    raise SystemExit(main(TARGET))
