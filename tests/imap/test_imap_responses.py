"""Responses: exact bytes, string encoding rules, and reading them back independently."""

from __future__ import annotations

import datetime
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from imap_wire import read_values
from imapclient.response_parser import parse_fetch_response

from postroom.imap.errors import ParseError
from postroom.imap.grammar import Reader, compact
from postroom.imap.receiver import Rejected, RejectReason
from postroom.imap.responses import (
    Atom,
    CapabilityResponse,
    Continuation,
    Data,
    EnabledResponse,
    EsearchResponse,
    ExistsResponse,
    ExpungeResponse,
    FetchResponse,
    FlagsResponse,
    IdResponse,
    ListResponse,
    Literal,
    NamespaceResponse,
    Raw,
    RecentResponse,
    ResponseCode,
    SearchResponse,
    StatusResponse,
    Tagged,
    Untagged,
    Value,
    VanishedResponse,
    astring_bytes,
    bye,
    error_response,
    format_date_time,
    string_bytes,
)


def test_tagged_and_untagged_status() -> None:
    assert bytes(Tagged.ok("a1")) == b"a1 OK completed\r\n"
    assert bytes(Tagged.ok("a1", "SELECT completed", ResponseCode.READ_WRITE)) == (
        b"a1 OK [READ-WRITE] SELECT completed\r\n"
    )
    assert bytes(Tagged.no("a2", "", ResponseCode.TRYCREATE)) == b"a2 NO [TRYCREATE] no\r\n"
    assert bytes(Tagged.bad("a3", "line\r\nA4 OK injected")) == b"a3 BAD line  A4 OK injected\r\n"
    assert bytes(Untagged("OK", "ready", ResponseCode.uidvalidity(3857529045))) == (
        b"* OK [UIDVALIDITY 3857529045] ready\r\n"
    )
    assert bytes(Untagged("PREAUTH", "hi")) == b"* PREAUTH hi\r\n"
    assert bytes(bye("Autologout; idle for too long")) == b"* BYE Autologout; idle for too long\r\n"
    assert bytes(Tagged("a", "NO", "Quota", "OVERQUOTA")) == b"a NO [OVERQUOTA] Quota\r\n"


def test_error_responses() -> None:
    assert bytes(error_response(ParseError("Unknown command FOO", tag="x"))) == (
        b"x BAD Unknown command FOO\r\n"
    )
    assert bytes(error_response(ParseError("Missing or invalid tag"))) == (
        b"* BAD Missing or invalid tag\r\n"
    )
    charset = ParseError("Unsupported charset", status="NO", code="BADCHARSET (UTF-8)", tag="t")
    assert bytes(error_response(charset)) == b"t NO [BADCHARSET (UTF-8)] Unsupported charset\r\n"
    rejected = Rejected("t", RejectReason.LITERAL_TOO_BIG, "NO", "TOOBIG", "Message too big")
    assert bytes(error_response(rejected)) == b"t NO [TOOBIG] Message too big\r\n"


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (ResponseCode.capability(["IMAP4rev2", "IDLE"]), "CAPABILITY IMAP4rev2 IDLE"),
        (ResponseCode.permanent_flags(["\\Seen", "\\*"]), "PERMANENTFLAGS (\\Seen \\*)"),
        (ResponseCode.permanent_flags([]), "PERMANENTFLAGS ()"),
        (ResponseCode.uidnext(4392), "UIDNEXT 4392"),
        (ResponseCode.unseen(12), "UNSEEN 12"),
        (ResponseCode.highest_modseq(715194045007), "HIGHESTMODSEQ 715194045007"),
        (ResponseCode.NOMODSEQ, "NOMODSEQ"),
        (ResponseCode.modified([7, 9, 8]), "MODIFIED 7:9"),
        (ResponseCode.append_uid(38505, [3955]), "APPENDUID 38505 3955"),
        (ResponseCode.append_uid(38505, [3955, 3956, 3957]), "APPENDUID 38505 3955:3957"),
        (
            ResponseCode.copy_uid(38505, [304, 319, 320], [3956, 3957, 3958]),
            "COPYUID 38505 304,319:320 3956:3958",
        ),
        (ResponseCode.copy_uid(1, [5, 3, 4], [10, 11, 12]), "COPYUID 1 5,3:4 10:12"),
        (ResponseCode.badcharset(["UTF-8", "X Y"]), 'BADCHARSET (UTF-8 "X Y")'),
        (ResponseCode.UNKNOWN_CTE, "UNKNOWN-CTE"),
        (ResponseCode.mailbox_id("F2212ea87-6097"), "MAILBOXID (F2212ea87-6097)"),
    ],
)
def test_response_codes(code: ResponseCode, text: str) -> None:
    assert str(code) == text


def test_continuations() -> None:
    assert bytes(Continuation()) == b"+ Ready\r\n"
    assert bytes(Continuation("idling")) == b"+ idling\r\n"
    assert bytes(Continuation.sasl(b"")) == b"+ \r\n"
    assert bytes(Continuation.sasl(b"\x00abc")) == b"+ AGFiYw==\r\n"


def test_simple_untagged_data() -> None:
    assert bytes(CapabilityResponse(("IMAP4rev2", "LITERAL+"))) == (
        b"* CAPABILITY IMAP4rev2 LITERAL+\r\n"
    )
    assert bytes(EnabledResponse()) == b"* ENABLED\r\n"
    assert bytes(EnabledResponse(("CONDSTORE",))) == b"* ENABLED CONDSTORE\r\n"
    assert bytes(ExistsResponse(23)) == b"* 23 EXISTS\r\n"
    assert bytes(RecentResponse(0)) == b"* 0 RECENT\r\n"
    assert bytes(ExpungeResponse(3)) == b"* 3 EXPUNGE\r\n"
    assert bytes(VanishedResponse([41, 43, 42, 100])) == b"* VANISHED 41:43,100\r\n"
    assert bytes(VanishedResponse("1:5", earlier=True)) == b"* VANISHED (EARLIER) 1:5\r\n"
    assert bytes(FlagsResponse(("\\Answered", "$Junk"))) == b"* FLAGS (\\Answered $Junk)\r\n"
    assert bytes(SearchResponse([])) == b"* SEARCH\r\n"
    assert bytes(SearchResponse([], modseq=5)) == b"* SEARCH\r\n"
    assert bytes(SearchResponse([2, 84], modseq=917162500)) == (
        b"* SEARCH 2 84 (MODSEQ 917162500)\r\n"
    )
    assert bytes(IdResponse(None)) == b"* ID NIL\r\n"
    assert bytes(IdResponse([("name", "Postroom"), ("vendor", None)])) == (
        b'* ID ("name" "Postroom" "vendor" NIL)\r\n'
    )
    assert bytes(Data((Atom("QUOTA"), "", [Atom("STORAGE"), 10, 512]))) == (
        b'* QUOTA "" (STORAGE 10 512)\r\n'
    )


def test_esearch() -> None:
    # RFC 4731 section 3.1 and RFC 9051 section 7.3.4
    assert bytes(EsearchResponse(tag="A282", min=2, count=3)) == (
        b'* ESEARCH (TAG "A282") MIN 2 COUNT 3\r\n'
    )
    assert bytes(EsearchResponse(tag="A283", uid=True, all=[2, 10, 11])) == (
        b'* ESEARCH (TAG "A283") UID ALL 2,10:11\r\n'
    )
    assert bytes(EsearchResponse(tag="A284", all=[], count=0)) == (
        b'* ESEARCH (TAG "A284") COUNT 0\r\n'
    )
    assert (
        bytes(EsearchResponse(tag="t", max=9, modseq=12))
        == b'* ESEARCH (TAG "t") MAX 9 MODSEQ 12\r\n'
    )
    assert bytes(EsearchResponse()) == b"* ESEARCH\r\n"


def test_list_status_namespace_names() -> None:
    assert bytes(ListResponse("INBOX", "/", ("\\HasNoChildren",))) == (
        b'* LIST (\\HasNoChildren) "/" "INBOX"\r\n'
    )
    assert bytes(ListResponse("台北", ".", utf8=False)) == b'* LIST () "." "&U,BTFw-"\r\n'
    assert (
        bytes(ListResponse("台北", ".", utf8=True))
        == b'* LIST () "." "\xe5\x8f\xb0\xe5\x8c\x97"\r\n'
    )
    assert bytes(ListResponse('a"b\\c', None, lsub=True)) == b'* LSUB () NIL "a\\"b\\\\c"\r\n'
    assert bytes(ListResponse("Foo", "/", ("\\NonExistent",), child_info=("SUBSCRIBED",))) == (
        b'* LIST (\\NonExistent) "/" "Foo" (CHILDINFO ("SUBSCRIBED"))\r\n'
    )
    assert bytes(ListResponse("New", "/", old_name="&Old")) == (
        b'* LIST () "/" "New" (OLDNAME ("&-Old"))\r\n'
    )
    assert bytes(StatusResponse("Entwürfe", [("MESSAGES", 231), ("UIDNEXT", 44292)])) == (
        b'* STATUS "Entw&APw-rfe" (MESSAGES 231 UIDNEXT 44292)\r\n'
    )
    assert bytes(NamespaceResponse()) == b'* NAMESPACE (("" "/")) NIL NIL\r\n'
    assert (
        bytes(
            NamespaceResponse((("", "/"),), (("~", "/"),), (("#shared/", "/"), ("#public", None)))
        )
        == b'* NAMESPACE (("" "/")) (("~" "/")) (("#shared/" "/")("#public" NIL))\r\n'
    )


@pytest.mark.parametrize(
    ("value", "utf8", "wire"),
    [
        ("plain", False, b'"plain"'),
        ("", False, b'""'),
        ('say "hi" \\o/', False, b'"say \\"hi\\" \\\\o/"'),
        ("two\r\nlines", False, b"{10}\r\ntwo\r\nlines"),
        ("caf\xe9", False, b"{5}\r\ncaf\xc3\xa9"),
        ("caf\xe9", True, b'"caf\xc3\xa9"'),
        (b"\xff", True, b"{1}\r\n\xff"),
        (b"nul\x00", False, b"{4}\r\nnul\x00"),
        ("x" * 9000, False, b"{9000}\r\n" + b"x" * 9000),
    ],
)
def test_string_encoding(value: str | bytes, utf8: bool, wire: bytes) -> None:
    assert string_bytes(value, utf8=utf8) == wire


def test_astring() -> None:
    assert astring_bytes("From") == b"From"
    assert astring_bytes("NIL") == b'"NIL"'
    assert astring_bytes("") == b'""'
    assert astring_bytes("a b") == b'"a b"'


def test_fetch_response_keeps_big_bodies_as_separate_chunks() -> None:
    body = b"Subject: hi\r\n\r\n" + b"x" * 10_000
    response = FetchResponse(
        12,
        [
            ("FLAGS", [Atom("\\Seen"), Atom("$Forwarded")]),
            ("UID", 4827313),
            ("BODY[]", Literal(body)),
            ("BINARY[1]", Literal(b"a\x00b", binary=True)),
            ("BINARY[2]", Literal(b"ab", binary=True)),
            ("MODSEQ", [624140003]),
        ],
    )
    chunks = response.chunks()
    assert chunks[0] == b"* 12 FETCH (FLAGS (\\Seen $Forwarded) UID 4827313 BODY[] {10015}\r\n"
    assert chunks[1] is body
    assert chunks[2] == b" BINARY[1] ~{3}\r\na\x00b BINARY[2] {2}\r\nab MODSEQ (624140003))\r\n"
    # Read back by an independent client parser (imapclient, imaplib form).
    parsed = parse_fetch_response(_imaplib_form(bytes(response)))[4827313]  # keyed by UID
    assert parsed[b"SEQ"] == 12
    assert parsed[b"BODY[]"] == body
    assert parsed[b"BINARY[1]"] == b"a\x00b"
    assert parsed[b"FLAGS"] == (b"\\Seen", b"$Forwarded")


def test_envelope_like_values_read_back() -> None:
    internal = datetime.datetime(
        1996, 7, 17, 2, 44, 25, tzinfo=datetime.timezone(datetime.timedelta(hours=-7))
    )
    envelope: list[Value] = [
        "Wed, 17 Jul 1996 02:23:25 -0700 (PDT)",
        'IMAP4rev2 "WG" mtg\r\nsummary',
        [["Terry Gray", None, "gray", "cac.washington.edu"]],
        None,
        b"<B27397-0100000@cac.washington.edu>",
    ]
    response = FetchResponse(
        1,
        [
            ("INTERNALDATE", format_date_time(internal)),
            ("ENVELOPE", envelope),
            ("X", Raw(b"raw")),
        ],
    )
    wire = bytes(response)
    assert wire.startswith(b'* 1 FETCH (INTERNALDATE "17-Jul-1996 02:44:25 -0700" ENVELOPE (')
    values = read_values(wire[2:-2])
    assert values[:2] == [b"1", b"FETCH"]
    items = values[2]
    assert items[0] == b"INTERNALDATE" and items[1] == "17-Jul-1996 02:44:25 -0700"
    assert items[3] == [
        "Wed, 17 Jul 1996 02:23:25 -0700 (PDT)",
        ("literal", b'IMAP4rev2 "WG" mtg\r\nsummary'),
        [["Terry Gray", b"NIL", "gray", "cac.washington.edu"]],
        b"NIL",
        "<B27397-0100000@cac.washington.edu>",
    ]
    assert items[4:] == [b"X", b"raw"]


def test_date_time_round_trip() -> None:
    moments = [
        datetime.datetime(2024, 2, 1, 10, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=1))),
        datetime.datetime(
            1999,
            12,
            31,
            23,
            59,
            59,
            tzinfo=datetime.timezone(-datetime.timedelta(hours=9, minutes=30)),
        ),
        datetime.datetime(2024, 1, 5, 0, 0, tzinfo=datetime.UTC),
    ]
    for moment in moments:
        text = format_date_time(moment)
        assert Reader([b'"' + text.encode() + b'"']).date_time() == moment
    assert format_date_time(datetime.datetime(2024, 1, 5)) == "05-Jan-2024 00:00:00 +0000"


@given(st.lists(st.integers(min_value=1, max_value=60), max_size=40))
def test_compact_is_exact(numbers: list[int]) -> None:
    text = compact(numbers)
    expanded: set[int] = set()
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition(":")
        expanded.update(range(int(lo), int(hi or lo) + 1))
    assert expanded == set(numbers)
    assert not re.search(r"(\d+):\1\b", text)
    unsorted = compact(numbers, sort=False)
    order: list[int] = []
    for part in filter(None, unsorted.split(",")):
        lo, _, hi = part.partition(":")
        order.extend(range(int(lo), int(hi or lo) + 1))
    assert order == numbers


@given(st.one_of(st.text(), st.binary()), st.booleans())
def test_any_string_reads_back(value: str | bytes, utf8: bool) -> None:
    data = value.encode("utf-8") if isinstance(value, str) else value
    [read] = read_values(string_bytes(value, utf8=utf8))
    if isinstance(read, tuple):
        assert read == ("literal", data)
    else:
        assert read.encode("utf-8") == data


def _imaplib_form(wire: bytes) -> list[bytes | tuple[bytes, bytes]]:
    """What imaplib hands to imapclient: the line without "* " and "FETCH", literals as
    tuples."""
    assert wire.startswith(b"* ") and wire.endswith(b"\r\n")
    data = wire[2:-2].replace(b" FETCH ", b" ", 1)
    out: list[bytes | tuple[bytes, bytes]] = []
    pos = 0
    pattern = re.compile(rb"~?\{(\d+)\}\r\n")
    while True:
        m = pattern.search(data, pos)
        if m is None:
            out.append(data[pos:])
            return out
        size = int(m.group(1))
        head = data[pos : m.end() - 2].replace(b"~{", b"{")
        out.append((head, data[m.end() : m.end() + size]))
        pos = m.end() + size
