"""Messages, SEARCH criteria and FETCH items asked of both Dovecot and Postroom.

``fixtures/imap_eval_harness.py`` stores these messages in a private Dovecot, runs the
criteria and items there and records the answers in ``fixtures/dovecot_imap_eval.json``;
``test_search_eval.py`` and ``test_fetch_items.py`` replay them against the evaluators.
Messages are written with LF line ends (both sides store CRLF).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stored:
    """One APPEND: the message, its internal date (None: now) and flags."""

    raw: bytes
    date: str | None = "02-Jan-2024 03:00:00 +0000"
    flags: tuple[str, ...] = ()


def lit(data: bytes) -> bytes:
    """A non-synchronising literal (LITERAL+), for strings with CR, LF or TAB."""
    return b"{%d+}\r\n" % len(data) + data


def _big_text() -> bytes:
    """A text part of ~600 KB: several scan chunks, a needle across a chunk edge."""
    lines = [b"filler line %06d with some words in it\n" % i for i in range(15000)]
    lines[6700] = b"needle-across-the-chunk-boundary here\n"
    lines[-1] = b"the very last words: zebra crossing\n"
    return b"".join(lines)


MESSAGES: list[Stored] = [
    # 1: plain, encoded subject, quoted display name, odd white space
    Stored(
        b'From: "Joe Bloggs" <joe@example.com>\n'
        b"To: =?utf-8?q?J=C3=BCrgen?= <jurgen@example.de>, other@x.org\n"
        b"Subject: =?utf-8?q?caf=C3=A9?=  =?utf-8?b?dMOpbMOpcGhvbmU=?=  time\n"
        b"Date: Mon, 1 Jan 2024 23:30:00 -0500\n"
        b"Message-ID: <one@example.com>\n"
        b"X-Custom:  hello   world\n"
        b"X-Empty:\n"
        b"\n"
        b"Body with Stra\xc3\x9fe and UTF-8 \xc3\xa9t\xc3\xa9 text.\n"
        b"Second line mentions Bloggs and a \xef\xac\x81sh (ligature).\n",
        date="01-Jan-2024 23:30:00 -0500",
        flags=("\\Seen", "$Label1"),
    ),
    # 2: Latin-1 quoted-printable with soft line breaks
    Stored(
        b"From: plain@example.com\n"
        b"To: Undisclosed recipients:;\n"
        b"Subject: second message\n"
        b"Content-Type: text/plain; charset=iso-8859-1\n"
        b"Content-Transfer-Encoding: quoted-printable\n"
        b"\n"
        b"caf=E9 soft=\nbreak here, na=EFve\n"
        b"=3D equals sign\n",
        date="03-Jan-2024 00:00:00 +0000",
        flags=("\\Flagged", "\\Answered"),
    ),
    # 3: multipart with preamble, attachment, base64 text, message/rfc822, epilogue
    Stored(
        b"From: Mary <mary@example.com>\n"
        b"To: group: a@b.c, d@e.f;\n"
        b"Cc: a@b.c,\n  d@e.f\n"
        b"Subject: third\n"
        b"Date: garbage\n"
        b"Content-Type: multipart/mixed; boundary=b\n"
        b"\n"
        b"preamble secretword\n"
        b"--b\n"
        b"Content-Type: application/octet-stream\n"
        b"Content-Transfer-Encoding: base64\n"
        b"\n"
        b"YXR0YWNobWVudHdvcmQ=\n"
        b"--b\n"
        b"Content-Type: text/plain; charset=utf-8\n"
        b"Content-Transfer-Encoding: base64\n"
        b"\n"
        b"aGVsbG8gYmFzZTY0IHfDtnJsZCwgc3Bs\n"
        b"aXQgYWNyb3NzIGxpbmVz\n"
        b"--b\n"
        b"Content-Type: message/rfc822\n"
        b"\n"
        b"Subject: innersubject\n"
        b"From: inner@example.com\n"
        b"\n"
        b"innerbody\n"
        b"--b--\n"
        b"epilogueword\n",
        date="04-Jan-2024 12:00:00 +0000",
    ),
    # 4: nested alternative with HTML, unknown transfer encoding, digest
    Stored(
        b"From: news@lists.example.org (Newsletter Team)\n"
        b"To: Joe   Bloggs <joe@example.com>\n"
        b"Subject: =?iso-8859-1?q?Ol=E9?= newsletter\n"
        b"Date: 5 Jan 24 10:00 +0000\n"
        b"Content-Type: multipart/mixed; boundary=outer\n"
        b"\n"
        b"--outer\n"
        b"Content-Type: multipart/alternative; boundary=inner\n"
        b"\n"
        b"--inner\n"
        b"Content-Type: text/plain\n"
        b"\n"
        b"plain alternative\n"
        b"--inner\n"
        b"Content-Type: text/html; charset=utf-8\n"
        b"Content-Transfer-Encoding: quoted-printable\n"
        b"\n"
        b"<p>html <b>alternative</b> =C3=A0 la carte</p>\n"
        b"--inner--\n"
        b"--outer\n"
        b"Content-Type: text/plain\n"
        b"Content-Transfer-Encoding: x-uuencode\n"
        b"\n"
        b"begin 644 file\n"
        b"--outer\n"
        b"Content-Type: multipart/digest; boundary=d\n"
        b"\n"
        b"--d\n"
        b"\n"
        b"Subject: digested\n"
        b"\n"
        b"digestbody\n"
        b"--d--\n"
        b"--outer--\n",
        date="05-Jan-2024 10:00:00 +0000",
        flags=("$Label2", "Junk"),
    ),
    # 5: folded and repeated headers, tabs, 8-bit header, NUL in the body
    Stored(
        b"From: x@y.z\n"
        b"From: second@y.z\n"
        b"Subject: c\n"
        b"Subject: other\n"
        b"X-A: one\n"
        b"X-A: two\n"
        b"X-Fold: a\n\t\tb\n"
        b"X-Tab: a\tb\n"
        b"X-Latin: caf\xe9 latin-1\n"
        b"X-Enc: =?utf-8?q?a?= =?utf-8?q?b?=  c\n"
        b"Date: Tue, 2 Jan 2024 01:00:00\n"
        b"\n"
        b"body with a nul \x00 octet\n",
        date="06-Jan-2024 00:00:01 +0000",
        flags=("\\Draft",),
    ),
    # 6: UTF-16 base64 text, date late in its own zone
    Stored(
        b"From: =?utf-8?q?J=C3=BCrgen_M?= <j@x.de>\n"
        b"Subject: utf-16\n"
        b"Date: Tue, 02 Jan 2024 23:00:00 -1200\n"
        b"Content-Type: text/plain; charset=utf-16\n"
        b"Content-Transfer-Encoding: base64\n"
        b"\n"
        b"//5oAGkAIAB0AGgAZQByAGUA\n",
        date="10-Jan-2024 23:59:59 +0000",
        flags=("\\Seen", "\\Flagged"),
    ),
    # 7: big single-part text (chunked scanning)
    Stored(
        b"From: big@example.com\nSubject: big one\nDate: Wed, 10 Jan 2024 08:00:00 +0100\n\n"
        + _big_text(),
        date="11-Jan-2024 08:00:00 +0100",
    ),
    # 8: expunged before searching (makes UIDs and sequence numbers differ)
    Stored(b"Subject: to be expunged\n\nbye\n", flags=("\\Deleted",)),
    # 9: unknown charset, raw 8-bit, keyword in other case, no Date; internal date "now"
    Stored(
        b"From: someone@example.net\n"
        b"Subject: unknown charset\n"
        b"Content-Type: text/plain; charset=x-unknown\n"
        b"\n"
        b"unknown \xc3\xa9t\xc3\xa9 here\n",
        date=None,
        flags=("$label1",),
    ),
]

# After SELECT the harness EXPUNGEs (UID 8, appended \Deleted, goes: UIDs and sequence
# numbers differ from then on), then runs these (they also raise some mod-sequences).
STORES = (
    b"UID STORE 3 +FLAGS (\\Deleted)",
    b"UID STORE 2 +FLAGS (\\Seen)",
    b"UID STORE 5 +FLAGS ($Label1)",
)

SEARCHES: list[bytes] = [
    # flags, keywords, RECENT/NEW/OLD
    b"ALL",
    b"SEEN",
    b"UNSEEN",
    b"ANSWERED",
    b"UNANSWERED",
    b"FLAGGED",
    b"UNFLAGGED",
    b"DELETED",
    b"UNDELETED",
    b"DRAFT",
    b"UNDRAFT",
    b"KEYWORD $Label1",
    b"KEYWORD $LABEL1",
    b"UNKEYWORD $label1",
    b"KEYWORD Junk",
    b"KEYWORD nothere",
    b"RECENT",
    b"NEW",
    b"OLD",
    b"NOT NEW",
    # sets
    b"1",
    b"2:4",
    b"4:2",
    b"*",
    b"3:*",
    b"1,5,100",
    b"100",
    b"UID 1:3",
    b"UID 3",
    b"UID 6:*",
    b"UID 100:*",
    b"UID 8",
    b"NOT UID 1:5",
    # sizes, dates
    b"LARGER 300",
    b"SMALLER 300",
    b"LARGER 100000",
    b"BEFORE 2-Jan-2024",
    b"ON 2-Jan-2024",
    b"SINCE 5-Jan-2024",
    b"ON 10-Jan-2024",
    b"ON 11-Jan-2024",
    b"SENTBEFORE 2-Jan-2024",
    b"SENTON 1-Jan-2024",
    b"SENTON 2-Jan-2024",
    b"SENTON 5-Jan-2024",
    b"SENTSINCE 3-Jan-2024",
    b"SENTBEFORE 1-Jan-1971",
    b"NOT SENTSINCE 1-Jan-1971",
    b"SENTON 10-Jan-2024",
    b"OLDER 1",
    b"YOUNGER 3600",
    b"OLDER 3600",
    b"SAVEDSINCE 1-Jan-2000",
    b"SAVEDBEFORE 1-Jan-2000",
    b"SAVEDATESUPPORTED",
    b"MODSEQ 1",
    b"MODSEQ 100000",
    # header keys
    b'FROM "joe"',
    b'FROM "\\"Joe Bloggs\\" <joe"',
    b'FROM "Joe Bloggs <joe"',
    b'FROM "<plain@example.com>"',
    b'FROM "mary <"',
    b'FROM "Newsletter Team"',
    b'FROM "second"',
    b'FROM "x@y.z"',
    b'FROM "J\xc3\xbcrgen M <"',
    b'FROM "example"',
    b'FROM ""',
    b'TO "J\xc3\xbcrgen <jurgen"',
    b'TO "other@x.org"',
    b'TO "\\"Joe Bloggs\\""',
    b'TO "undisclosed recipients:;"',
    b'TO "group: <a@b.c>, <d@e.f>;"',
    b'TO ""',
    b'CC "d@e.f"',
    b'CC ""',
    b'BCC ""',
    b'SUBJECT "caf\xc3\xa9 t\xc3\xa9l\xc3\xa9phone time"',
    b'SUBJECT "cafe"',
    b'SUBJECT "CAF\xc3\x89"',
    b'SUBJECT "caf\xc3\xa9  t"',
    b'SUBJECT "ol\xc3\xa9 news"',
    b'SUBJECT "other"',
    b'SUBJECT "c"',
    b'SUBJECT "=?utf"',
    b'SUBJECT ""',
    b'HEADER X-Custom "hello   world"',
    b'HEADER X-Custom "hello world"',
    b'HEADER X-Empty ""',
    b'HEADER X-Nope ""',
    b'HEADER Message-ID "one@"',
    b'HEADER X-A "one"',
    b'HEADER X-A "two"',
    b'HEADER X-Fold "a \tb"',
    b'HEADER X-Fold "a b"',
    b"HEADER X-Tab " + lit(b"a\tb"),
    b'HEADER X-Enc "ab  c"',
    b'HEADER X-Enc "ab c"',
    b'HEADER Content-Type "multipart"',
    b'HEADER Subject "innersubject"',
    # BODY / TEXT
    b'BODY "bloggs"',
    b'BODY "\xc3\xa9T\xc3\xa9"',
    b'BODY "ete"',
    b'BODY "STRA\xc3\x9fE"',
    b'BODY "strasse"',
    b'BODY "fish (lig"',
    b'BODY "caf\xc3\xa9 softbreak"',
    b'BODY "na\xc3\xafve"',
    b'BODY "= equals"',
    b'BODY "secretword"',
    b'BODY "attachmentword"',
    b'BODY "w\xc3\xb6rld, split across"',
    b'BODY "innerbody"',
    b'BODY "innersubject"',
    b'BODY "epilogueword"',
    b'BODY "plain alternative"',
    b'BODY "<b>alternative</b>"',
    b'BODY "\xc3\xa0 la carte"',
    b'BODY "begin 644"',
    b'BODY "digestbody"',
    b'BODY "digested"',
    b'BODY "nul"',
    b'BODY "hi there"',
    b'BODY "needle-across-the-chunk-boundary"',
    b'BODY "zebra crossing"',
    b'BODY "filler line 014998"',
    b'BODY "unknown \xc3\xa9t\xc3\xa9"',
    b'BODY ""',
    b'TEXT "innersubject"',
    b'TEXT "subject: innersubject"',
    b'TEXT "application/octet"',
    b'TEXT "attachmentword"',
    b'TEXT "preamble"',
    b'TEXT "mary"',
    b'TEXT "x-custom:  hello"',
    b'TEXT "x-custom: hello world"',
    b"TEXT " + lit(b"innersubject\r\nfrom"),
    b"TEXT " + lit(b"message-id: <one@example.com>\r\nx-custom"),
    b"TEXT " + lit(b"text/plain\r\n\r\nplain alt"),
    b"TEXT " + lit(b"x-empty:\r\n\r\nbody"),
    b'TEXT "ol\xc3\xa9 newsletter"',
    b'TEXT "=?utf-8"',
    b'TEXT "digested"',
    b'TEXT "big one"',
    b'TEXT ""',
    # combinations
    b"NOT SEEN",
    b"NOT NOT SEEN",
    b"OR SEEN FLAGGED",
    b"OR (SEEN FLAGGED) DRAFT",
    b'SEEN BODY "bloggs"',
    b'OR BODY "zebra" SUBJECT "second"',
    b'NOT OR BODY "zebra" SUBJECT "second"',
    b'(OR FROM "joe" TO "joe") UNSEEN',
    b'OR OR FLAGGED DRAFT NOT BODY "e"',
    b'UID 1:4 NOT TEXT "example.com"',
    b"2:* UNDELETED SINCE 3-Jan-2024",
    b'CHARSET UTF-8 SUBJECT "caf\xc3\xa9"',
    b"CHARSET ISO-8859-1 SUBJECT " + lit(b"caf\xe9"),
    b'HEADER X-Latin "latin-1"',
    b'HEADER X-Latin "caf\xc3\xa9"',
]

FETCH_ITEMS: list[str] = [
    "BODY.PEEK[]",
    "BODY.PEEK[HEADER]",
    "BODY.PEEK[TEXT]",
    "BODY.PEEK[1]",
    "BODY.PEEK[1.MIME]",
    "BODY.PEEK[1.HEADER]",
    "BODY.PEEK[1.1]",
    "BODY.PEEK[1.2]",
    "BODY.PEEK[1.2.MIME]",
    "BODY.PEEK[2]",
    "BODY.PEEK[2.MIME]",
    "BODY.PEEK[3]",
    "BODY.PEEK[3.HEADER]",
    "BODY.PEEK[3.TEXT]",
    "BODY.PEEK[3.1]",
    "BODY.PEEK[3.1.MIME]",
    "BODY.PEEK[3.1.1]",
    "BODY.PEEK[3.1.HEADER]",
    "BODY.PEEK[3.HEADER.FIELDS (SUBJECT)]",
    "BODY.PEEK[9]",
    "BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)]",
    "BODY.PEEK[HEADER.FIELDS (X-NOPE)]",
    "BODY.PEEK[HEADER.FIELDS.NOT (SUBJECT DATE FROM)]",
    "BODY.PEEK[]<0.20>",
    "BODY.PEEK[]<10.1000000>",
    "BODY.PEEK[TEXT]<1000000.10>",
    "BODY.PEEK[1]<3.7>",
    "BODY.PEEK[HEADER.FIELDS (SUBJECT)]<2.5>",
    "BODY.PEEK[HEADER.FIELDS (SUBJECT)]<500.5>",
    "BINARY.PEEK[1]",
    "BINARY.PEEK[2]",
    "BINARY.PEEK[3.1]",
    "BINARY.PEEK[1]<2.5>",
    "BINARY.PEEK[1.2]",
    "BINARY.PEEK[9]",
    "BINARY.SIZE[1]",
    "BINARY.SIZE[2]",
    "BINARY.SIZE[1.2]",
    "BINARY.SIZE[9]",
    "RFC822.HEADER",
    "RFC822.TEXT",
    "RFC822",
    "RFC822.SIZE",
    "ENVELOPE",
    "BODYSTRUCTURE",
    "BODY",
]
