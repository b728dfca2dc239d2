"""FETCH data items (``postroom.imap.fetch_items``): every item and section kind, partial
ranges, NUL handling, BINARY decoding and UNKNOWN-CTE, what is read from the source -
then the same items against Dovecot 2.3's recorded answers."""

from __future__ import annotations

import hashlib
import json
import pathlib
from typing import Any

import pytest
from imap_eval_corpus import FETCH_ITEMS
from imap_eval_helpers import FakeSource, dovecot_box, make_box, make_entry, run, stamp, ts
from imap_wire import parse

from postroom.imap.commands import Fetch, FetchAttribute, FetchBody, Section
from postroom.imap.fetch_items import UnknownCte, fetch_items, sets_seen
from postroom.imap.responses import FetchResponse, Literal
from postroom.store.models import Entry

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "dovecot_imap_eval.json"

NESTED = (
    b"From: Ann <ann@example.com>\n"
    b"Subject: nested\n"
    b"Content-Type: multipart/mixed; boundary=b\n"
    b"\n"
    b"--b\n"
    b"Content-Type: text/plain\n"
    b"\n"
    b"hello\x00world\n"
    b"--b\n"
    b"Content-Type: message/rfc822\n"
    b"\n"
    b"Subject: inner\n"
    b"X-A: 1\n"
    b"\n"
    b"inner body\n"
    b"--b\n"
    b"Content-Type: application/octet-stream\n"
    b"Content-Transfer-Encoding: base64\n"
    b"\n"
    b"AAECAwBoZWxsbw==\n"
    b"--b\n"
    b"Content-Type: text/plain; charset=iso-8859-1\n"
    b"Content-Transfer-Encoding: quoted-printable\n"
    b"\n"
    b"caf=E9 soft=\n"
    b"break\n"
    b"--b\n"
    b"Content-Type: text/plain\n"
    b"Content-Transfer-Encoding: x-uuencode\n"
    b"\n"
    b"begin 644 x\n"
    b"--b--\n"
)
SIMPLE = b"Subject: hi\nFrom: a@b.c\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n\nline one\nline two\n"


def box_of(*messages: bytes, **kwargs: Any) -> Any:
    return make_box({uid: raw for uid, raw in enumerate(messages, start=1)}, **kwargs)


def fetch(
    source: FakeSource,
    entry: Entry,
    items: str,
    *,
    uid: bool = False,
    recent: bool = False,
    rev1: bool = False,
    modseq: bool = False,
) -> bytes:
    """``C: a FETCH n (items)`` -> the ``* n FETCH`` line as sent."""
    command = parse(b"a FETCH 1 (" + items.encode() + b")\r\n")
    assert isinstance(command, Fetch)
    pairs = run(
        fetch_items(
            entry,
            command.items,
            source,
            recent=recent,
            rev1=rev1,
            utf8=False,
            include_modseq=modseq,
            include_uid=uid,
        )
    )
    return bytes(FetchResponse(1, pairs))


def one(source: FakeSource, entry: Entry, item: str) -> bytes:
    """Just the value of a single item, as sent."""
    line = fetch(source, entry, item)
    name_end = line.index(b" ", len(b"* 1 FETCH ("))
    if b"[" in line[:name_end]:
        name_end = line.index(b" ", line.index(b"]"))
    return line[name_end + 1 : -len(b")\r\n")]


# --- plain attributes ---------------------------------------------------------------


def test_flags_recent_only_for_imap4rev1() -> None:
    box = box_of(SIMPLE, flags={1: ["\\Seen", "$Work", "\\Answered"]})
    entry = box.selected.entries[1]
    assert fetch(box.source, entry, "FLAGS", recent=True, rev1=True) == (
        b"* 1 FETCH (FLAGS (\\Answered \\Seen \\Recent $Work))\r\n"
    )
    assert fetch(box.source, entry, "FLAGS", recent=True) == (
        b"* 1 FETCH (FLAGS (\\Answered \\Seen $Work))\r\n"
    )
    assert fetch(box.source, entry, "FLAGS", rev1=True) == (
        b"* 1 FETCH (FLAGS (\\Answered \\Seen $Work))\r\n"
    )


def test_cheap_attributes_read_nothing() -> None:
    box = box_of(SIMPLE, internaldates={1: ts("2024-01-02 03:04:05")})
    entry = box.selected.entries[1]
    line = fetch(box.source, entry, "FLAGS INTERNALDATE RFC822.SIZE UID MODSEQ")
    assert line == (
        b'* 1 FETCH (UID 1 FLAGS () INTERNALDATE "02-Jan-2024 03:04:05 +0000" '
        b"RFC822.SIZE 86 MODSEQ (1))\r\n"
    )
    assert box.source.infos == [] and box.source.reads == []


def test_uid_comes_first_and_once() -> None:
    box = box_of(SIMPLE)
    entry = box.selected.entries[1]
    assert fetch(box.source, entry, "RFC822.SIZE UID", uid=True) == (
        b"* 1 FETCH (UID 1 RFC822.SIZE 86)\r\n"
    )
    assert fetch(box.source, entry, "RFC822.SIZE", uid=True) == (
        b"* 1 FETCH (UID 1 RFC822.SIZE 86)\r\n"
    )


def test_modseq_implied_goes_last_asked_stays_in_place() -> None:
    # RFC 7162 section 3.1.4.1: MODSEQ (n)
    box = box_of(SIMPLE, modseqs={1: 42})
    entry = box.selected.entries[1]
    assert fetch(box.source, entry, "FLAGS", modseq=True) == (
        b"* 1 FETCH (FLAGS () MODSEQ (42))\r\n"
    )
    assert fetch(box.source, entry, "MODSEQ FLAGS", modseq=True) == (
        b"* 1 FETCH (MODSEQ (42) FLAGS ())\r\n"
    )


def test_internaldate_is_written_in_utc() -> None:
    box = box_of(SIMPLE, internaldates={1: ts("2024-12-31 23:59:59") + 0.75})
    assert one(box.source, box.selected.entries[1], "INTERNALDATE") == (
        b'"31-Dec-2024 23:59:59 +0000"'
    )


def test_envelope_and_structures_come_from_the_analysis() -> None:
    box = box_of(SIMPLE)
    entry = box.selected.entries[1]
    assert one(box.source, entry, "ENVELOPE") == (
        b'("Mon, 1 Jan 2024 10:00:00 +0000" "hi" ((NIL NIL "a" "b.c")) '
        b'((NIL NIL "a" "b.c")) ((NIL NIL "a" "b.c")) NIL NIL NIL NIL NIL)'
    )
    assert one(box.source, entry, "BODY") == (
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 20 2)'
    )
    assert one(box.source, entry, "BODYSTRUCTURE") == (
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 20 2 NIL NIL NIL NIL)'
    )
    assert box.source.reads == []  # structure never reads the message


def test_rfc822_items() -> None:
    # RFC 3501 section 6.4.5: RFC822 = BODY[], .HEADER = BODY.PEEK[HEADER], .TEXT = BODY[TEXT]
    box = box_of(SIMPLE)
    entry = box.selected.entries[1]
    raw = box.source.raw[1]
    header, text = raw.split(b"\r\n\r\n", 1)
    assert one(box.source, entry, "RFC822") == b"{86}\r\n" + raw
    assert one(box.source, entry, "RFC822.HEADER") == b"{66}\r\n" + header + b"\r\n\r\n"
    assert one(box.source, entry, "RFC822.TEXT") == b"{20}\r\n" + text


# --- BODY[section] --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "value"),
    [
        ("BODY[1]", b"{11}\r\nhello\x80world"),
        ("BODY[1.MIME]", b"{28}\r\nContent-Type: text/plain\r\n\r\n"),
        ("BODY[2]", b"{36}\r\nSubject: inner\r\nX-A: 1\r\n\r\ninner body"),
        ("BODY[2.MIME]", b"{32}\r\nContent-Type: message/rfc822\r\n\r\n"),
        ("BODY[2.HEADER]", b"{26}\r\nSubject: inner\r\nX-A: 1\r\n\r\n"),
        ("BODY[2.TEXT]", b"{10}\r\ninner body"),
        ("BODY[2.1]", b"{10}\r\ninner body"),
        ("BODY[2.1.MIME]", b"{26}\r\nSubject: inner\r\nX-A: 1\r\n\r\n"),
        ("BODY[2.HEADER.FIELDS (x-a)]", b"{10}\r\nX-A: 1\r\n\r\n"),
        ("BODY[2.HEADER.FIELDS.NOT (X-A)]", b"{18}\r\nSubject: inner\r\n\r\n"),
        (
            "BODY[HEADER.FIELDS (SUBJECT FROM)]",
            b"{48}\r\nFrom: Ann <ann@example.com>\r\nSubject: nested\r\n\r\n",
        ),
        ("BODY[HEADER.FIELDS (X-NONE)]", b"{2}\r\n\r\n"),
        ("BODY[3]", b"{16}\r\nAAECAwBoZWxsbw=="),  # the CRLF belongs to the boundary
        # sections that do not exist are empty, as in Dovecot
        ("BODY[9]", b"{0}\r\n"),
        ("BODY[1.HEADER]", b"{0}\r\n"),
        ("BODY[1.TEXT]", b"{0}\r\n"),
        ("BODY[9.MIME]", b"{0}\r\n"),
        ("BODY[9.HEADER.FIELDS (SUBJECT)]", b"{0}\r\n"),
        ("BODY[2.1.1.1]", b"{0}\r\n"),
    ],
)
def test_body_sections(item: str, value: bytes) -> None:
    box = box_of(NESTED)
    assert one(box.source, box.selected.entries[1], item) == value


def test_body_partial_echoes_only_the_origin() -> None:
    box = box_of(NESTED)
    entry = box.selected.entries[1]
    assert fetch(box.source, entry, "BODY.PEEK[1]<2.3>") == b"* 1 FETCH (BODY[1]<2> {3}\r\nllo)\r\n"
    # length beyond the end: cut; origin beyond the end: empty
    assert one(box.source, entry, "BODY[2.TEXT]<6.100>") == b"{4}\r\nbody"
    assert one(box.source, entry, "BODY[2.TEXT]<10.5>") == b"{0}\r\n"
    assert one(box.source, entry, "BODY[]<99999.5>") == b"{0}\r\n"
    assert one(box.source, entry, "BODY[2.HEADER.FIELDS (SUBJECT)]<3.5>") == b"{5}\r\nject:"
    assert one(box.source, entry, "BODY[2.HEADER.FIELDS (SUBJECT)]<300.5>") == b"{0}\r\n"
    assert one(box.source, entry, "BODY[1]<5.1>") == b"{1}\r\n\x80"  # NUL replaced in partials too


def test_body_reads_only_the_range_served() -> None:
    big = SIMPLE + b"x" * 1_000_000 + b"\n"
    box = box_of(big)
    entry = box.selected.entries[1]
    assert one(box.source, entry, "BODY.PEEK[TEXT]<100.10>") == b"{10}\r\nxxxxxxxxxx"
    assert box.source.reads == [(1, 66 + 100, 66 + 110)]
    assert one(box.source, entry, "BODY.PEEK[HEADER]") == b"{66}\r\n" + box.source.raw[1][:66]
    assert box.source.reads[-1] == (1, 0, 66)


class _CountingSource(FakeSource):
    """Remembers the objects it returned, to check they reach the literal uncopied."""

    def __init__(self, messages: dict[int, bytes]) -> None:
        super().__init__(messages)
        self.returned: list[bytes] = []

    async def body(self, message_id: int, start: int = 0, end: int | None = None) -> bytes:
        data = await super().body(message_id, start, end)
        self.returned.append(data)
        return data


def test_big_literal_is_passed_through_uncopied() -> None:
    source = _CountingSource({1: SIMPLE + b"y" * 100_000 + b"\n"})
    entry = make_entry(1, len(source.raw[1]))
    pairs = run(
        fetch_items(
            entry,
            [FetchBody(Section(), peek=True)],
            source,
            recent=False,
            rev1=False,
            utf8=False,
            include_modseq=False,
        )
    )
    ((name, value),) = pairs
    assert name == "BODY[]"
    assert isinstance(value, Literal) and value.data is source.returned[0]
    chunks = FetchResponse(1, pairs).chunks()
    assert any(chunk is source.returned[0] for chunk in chunks)


def test_nul_becomes_0x80_outside_binary() -> None:
    box = box_of(NESTED)
    entry = box.selected.entries[1]
    assert b"\x00" not in one(box.source, entry, "RFC822")
    assert b"hello\x80world" in one(box.source, entry, "BODY[]")
    assert one(box.source, entry, "BINARY[1]") == b"~{11}\r\nhello\x00world"


# --- BINARY ---------------------------------------------------------------------------


def test_binary_decodes_base64_and_quoted_printable() -> None:
    # RFC 3516 section 4.2
    box = box_of(NESTED)
    entry = box.selected.entries[1]
    assert one(box.source, entry, "BINARY.PEEK[3]") == b"~{10}\r\n\x00\x01\x02\x03\x00hello"
    assert one(box.source, entry, "BINARY.PEEK[4]") == b"{14}\r\ncaf\xe9 softbreak"
    assert one(box.source, entry, "BINARY.SIZE[3]") == b"10"
    assert one(box.source, entry, "BINARY.SIZE[4]") == b"14"
    assert (
        fetch(box.source, entry, "BINARY.PEEK[3]<5.3>")
        == b"* 1 FETCH (BINARY[3]<5> {3}\r\nhel)\r\n"
    )
    # literal8 only when the octets sent hold a NUL (RFC 3516 section 4.3)
    assert one(box.source, entry, "BINARY.PEEK[3]<2.2>") == b"{2}\r\n\x02\x03"
    assert one(box.source, entry, "BINARY.PEEK[3]<3.2>") == b"~{2}\r\n\x03\x00"
    assert one(box.source, entry, "BINARY.PEEK[3]<20.2>") == b"{0}\r\n"


def test_binary_of_messages_and_multiparts() -> None:
    box = box_of(NESTED)
    entry = box.selected.entries[1]
    raw = box.source.raw[1]
    assert (
        one(box.source, entry, "BINARY[2]") == b"{36}\r\nSubject: inner\r\nX-A: 1\r\n\r\ninner body"
    )
    assert one(box.source, entry, "BINARY[2.1]") == b"{10}\r\ninner body"
    assert one(box.source, entry, "BINARY[]") == b"~{%d}\r\n" % len(raw) + raw
    assert one(box.source, entry, "BINARY.SIZE[]") == str(len(raw)).encode()
    assert one(box.source, entry, "BINARY[9]") == b"{0}\r\n"
    assert one(box.source, entry, "BINARY.SIZE[9]") == b"0"


def test_binary_size_of_identity_parts_reads_nothing() -> None:
    box = box_of(NESTED)
    entry = box.selected.entries[1]
    assert one(box.source, entry, "BINARY.SIZE[1] BINARY.SIZE[2]") == b"11 BINARY.SIZE[2] 36"
    assert box.source.reads == []


@pytest.mark.parametrize("item", ["BINARY[5]", "BINARY.PEEK[5]<0.2>", "BINARY.SIZE[5]"])
def test_unknown_transfer_encoding(item: str) -> None:
    # RFC 3516 section 4.3: NO [UNKNOWN-CTE]; other parts stay available
    box = box_of(NESTED)
    entry = box.selected.entries[1]
    with pytest.raises(UnknownCte) as caught:
        fetch(box.source, entry, "FLAGS " + item)
    assert caught.value.part == (5,)
    assert "[5]" in str(caught.value)
    assert one(box.source, entry, "BODY[5]") == b"{11}\r\nbegin 644 x"
    assert one(box.source, entry, "BINARY.SIZE[4]") == b"14"


def test_sets_seen() -> None:
    # RFC 9051 section 6.4.5
    def items(text: str) -> Any:
        command = parse(b"a FETCH 1 " + text.encode() + b"\r\n")
        assert isinstance(command, Fetch)
        return command.items

    assert sets_seen(items("(BODY[] FLAGS)"))
    assert sets_seen(items("BINARY[1]"))
    assert sets_seen(items("RFC822"))
    assert sets_seen(items("RFC822.TEXT"))
    assert not sets_seen(items("(BODY.PEEK[] BINARY.PEEK[1] BINARY.SIZE[1] RFC822.HEADER)"))
    assert not sets_seen(items("FULL"))
    assert not sets_seen([FetchAttribute("UID")])


def test_the_source_may_fail() -> None:
    class Gone(FakeSource):
        async def body(self, message_id: int, start: int = 0, end: int | None = None) -> bytes:
            raise LookupError("expunged")

    source = Gone({1: SIMPLE})
    with pytest.raises(LookupError):
        fetch(source, make_entry(1, 10), "BODY.PEEK[]")


# --- against Dovecot ------------------------------------------------------------------

# (uid, item) -> why we differ from Dovecot 2.3.19. "literal8" marks BINARY answers whose
# octets agree but which Dovecot sends as ~{n} although they hold no NUL: it uses literal8
# whenever it decoded something; we only when NUL forces it (RFC 3516 section 4.3 allows
# both).
KNOWN: dict[tuple[int, str], str] = {
    (2, "BINARY.PEEK[1]"): "literal8",
    (2, "BINARY.PEEK[1]<2.5>"): "literal8",
    (3, "BINARY.PEEK[1]"): "literal8",
    (3, "BINARY.PEEK[2]"): "literal8",
    (3, "BINARY.PEEK[1]<2.5>"): "literal8",
    (4, "BINARY.PEEK[1.2]"): "literal8",
    (5, "BINARY.PEEK[1]<2.5>"): "literal8",
    (3, "BODY.PEEK[1.1]"): "Dovecot lets N.1 name part N itself when N is a non-message "
    "leaf inside a multipart; RFC 9051 gives such a part no subparts and "
    "postroom.mime.part_by_section says it does not exist (empty answer)",
    (4, "BINARY.PEEK[1]"): "BINARY of a multipart: Dovecot rewrites it, decoding its "
    "children and relabelling them binary; we serve it as stored (its own encoding is "
    "an identity one)",
    (4, "BINARY.PEEK[1]<2.5>"): "literal8 (octets agree)",
    (4, "BINARY.SIZE[1]"): "Dovecot refuses BINARY.SIZE for every part once one part of "
    "the message has an unknown encoding (UNKNOWN-CTE); we size each part on its own",
    (4, "BINARY.SIZE[1.2]"): "as BINARY.SIZE[1]",
}


def _recorded() -> dict[str, Any]:
    return dict(json.loads(FIXTURE.read_text()))


def _cases() -> list[Any]:
    recorded = _recorded()
    return [
        pytest.param(int(uid), item, id=f"{uid}:{item}")
        for uid in recorded["fetches"]
        for item in FETCH_ITEMS
    ]


def _payload(value: bytes) -> bytes:
    """A literal's octets (``{n}`` or ``~{n}``)."""
    return value[value.index(b"}\r\n") + 3 :]


@pytest.fixture(scope="module")
def recorded_box() -> tuple[dict[str, Any], Any]:
    recorded = _recorded()
    return recorded, dovecot_box(recorded)


def test_dovecot_metadata(recorded_box: tuple[dict[str, Any], Any]) -> None:
    """FLAGS (with \\Recent), RFC822.SIZE, MODSEQ as Dovecot sent them after SELECT."""
    recorded, box = recorded_box
    for uid, meta in recorded["messages"].items():
        entry = box.selected.entries[int(uid)]
        line = fetch(box.source, entry, "FLAGS RFC822.SIZE MODSEQ", recent=True, rev1=True)
        expected = (
            f"FLAGS {meta['FLAGS']} RFC822.SIZE {meta['RFC822.SIZE']} MODSEQ {meta['MODSEQ']}"
        )
        assert line == b"* 1 FETCH (" + expected.encode() + b")\r\n"
        # Dovecot keeps the APPEND zone; we write UTC, so compare the instants
        date = one(box.source, entry, "INTERNALDATE").decode()
        assert stamp(date) == stamp(meta["INTERNALDATE"])


@pytest.mark.parametrize(("uid", "item"), _cases())
def test_against_dovecot(uid: int, item: str, recorded_box: tuple[dict[str, Any], Any]) -> None:
    recorded, box = recorded_box
    expected = recorded["fetches"][str(uid)][item]
    known = KNOWN.get((uid, item))
    entry = box.selected.entries[uid]
    if "no" in expected:
        assert "UNKNOWN-CTE" in expected["no"]
        if known is None:
            with pytest.raises(UnknownCte):
                fetch(box.source, entry, item)
        return
    line = fetch(box.source, entry, item)
    name = expected["name"].encode("latin-1")
    prefix = b"* 1 FETCH (" + name + b" "
    assert line.startswith(prefix)
    value = line[len(prefix) : -len(b")\r\n")]
    want = expected["value"]
    if isinstance(want, dict):  # a big value: length and SHA-1 only
        assert {"len": len(value), "sha1": hashlib.sha1(value).hexdigest()} == want
        return
    want_bytes = want.encode("latin-1")
    if known is None:
        assert value == want_bytes
    elif known.startswith("literal8"):
        assert want_bytes.startswith(b"~{") and _payload(value) == _payload(want_bytes)
    else:
        assert value != want_bytes, f"fixed? {known}"
