"""Fuzz target: the IMAP command parser (every command), as received; only
``ParseError`` may come out, and every error answer is one line.
``python -m fuzz.imap_command --seconds N``."""

from __future__ import annotations

from fuzz._imap import check_events, receive, split_size
from fuzz.engine import Target, main


def check(data: bytes) -> None:
    events = receive(data, split_size(data))
    check_events(events, utf8=False)
    check_events(events, utf8=True)


_WORDS = (
    "CAPABILITY NOOP LOGOUT STARTTLS AUTHENTICATE LOGIN ENABLE SELECT EXAMINE CREATE DELETE "
    "RENAME SUBSCRIBE UNSUBSCRIBE LIST LSUB NAMESPACE STATUS APPEND IDLE CHECK CLOSE UNSELECT "
    "EXPUNGE SEARCH FETCH STORE COPY MOVE UID ID CONDSTORE QRESYNC IMAP4rev2 UTF8=ACCEPT "
    "RETURN CHILDREN SUBSCRIBED SPECIAL-USE STATUS MESSAGES UIDNEXT UNSEEN SIZE RECURSIVEMATCH "
    "REMOTE HIGHESTMODSEQ DELETED APPENDLIMIT UIDVALIDITY USE \\Sent \\Trash \\All FLAGS "
    "+FLAGS.SILENT -FLAGS UNCHANGEDSINCE CHANGEDSINCE VANISHED INBOX inbox NIL"
)
DICTIONARY = (*tuple(w.encode() + b" " for w in _WORDS.split()), b"\r\n", b"a1 ", b"UID ", b"(", b")", b"[", b"]", b'"', b'"a b"', b"{3}\r\nabc", b"{0+}\r\n", b"~{2+}\r\n\x00x", b"1:*", b"$", b"*", b"%", b"4294967296", b"&U,BTFw-", b"&Jjo", b"&-", b"\xc3\xa9", b"\xff", b"../", b"/", b"\\Seen", b"\\", b"01-Feb-2024", b'"01-Feb-2024 10:00:00 +0100"', b"PLAIN AGFsaWNlAHNlY3JldA==", b"(MESSAGES UNSEEN)")

TARGET = Target("imap_command", check, DICTIONARY)

if __name__ == "__main__":
    raise SystemExit(main(TARGET))
