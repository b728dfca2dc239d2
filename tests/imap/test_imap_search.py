"""SEARCH parsing: every key, nesting, charsets, RETURN options and the limits."""

from __future__ import annotations

import datetime

import pytest
from imap_wire import parse, parse_error

from postroom.imap.commands import (
    Search,
    SearchAge,
    SearchAll,
    SearchAnd,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchModSeq,
    SearchNot,
    SearchOr,
    SearchSaveDateSupported,
    SearchSet,
    SearchSize,
    SearchText,
    parse_command,
)
from postroom.imap.errors import ParseError
from postroom.imap.grammar import SequenceSet
from postroom.imap.receiver import Command

D = datetime.date


def criteria(args: bytes, **kwargs: object) -> SearchKey:
    command = parse(b"a SEARCH " + args + b"\r\n")
    assert isinstance(command, Search)
    return command.criteria


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (b"ALL", SearchAll()),
        (b"answered", SearchFlag("\\Answered")),
        (b"DELETED", SearchFlag("\\Deleted")),
        (b"DRAFT", SearchFlag("\\Draft")),
        (b"FLAGGED", SearchFlag("\\Flagged")),
        (b"SEEN", SearchFlag("\\Seen")),
        (b"RECENT", SearchFlag("\\Recent")),
        (b"UNANSWERED", SearchFlag("\\Answered", False)),
        (b"UNDELETED", SearchFlag("\\Deleted", False)),
        (b"UNDRAFT", SearchFlag("\\Draft", False)),
        (b"UNFLAGGED", SearchFlag("\\Flagged", False)),
        (b"UNSEEN", SearchFlag("\\Seen", False)),
        (b"NEW", SearchAnd((SearchFlag("\\Recent"), SearchFlag("\\Seen", False)))),
        (b"OLD", SearchNot(SearchFlag("\\Recent"))),
        (b"KEYWORD $Junk", SearchFlag("$Junk")),
        (b"UNKEYWORD NIL", SearchFlag("NIL", False)),
        (b"KEYWORD \\seen", SearchFlag("\\Seen")),  # lenient: a system flag
        (b"BCC bob", SearchHeader("Bcc", "bob")),
        (b"CC bob", SearchHeader("Cc", "bob")),
        (b'FROM "Smith, J"', SearchHeader("From", "Smith, J")),
        (b"TO {3}\r\nx y", SearchHeader("To", "x y")),
        (b'SUBJECT ""', SearchHeader("Subject", "")),
        (b"HEADER Message-ID <a@b>", SearchHeader("Message-ID", "<a@b>")),
        (b'HEADER "X-A" ""', SearchHeader("X-A", "")),
        (b"BODY hello", SearchText("hello", body_only=True)),
        (b"TEXT hello", SearchText("hello", body_only=False)),
        (b"BEFORE 1-Feb-1994", SearchDate("internal", "before", D(1994, 2, 1))),
        (b'ON "01-feb-1994"', SearchDate("internal", "on", D(1994, 2, 1))),
        (b"SINCE 29-Feb-2024", SearchDate("internal", "since", D(2024, 2, 29))),
        (b"SENTBEFORE 1-Jan-2000", SearchDate("sent", "before", D(2000, 1, 1))),
        (b"SENTON 1-Jan-2000", SearchDate("sent", "on", D(2000, 1, 1))),
        (b"SENTSINCE 1-Jan-2000", SearchDate("sent", "since", D(2000, 1, 1))),
        (b"SAVEDBEFORE 1-Jan-2000", SearchDate("saved", "before", D(2000, 1, 1))),
        (b"SAVEDON 1-Jan-2000", SearchDate("saved", "on", D(2000, 1, 1))),
        (b"SAVEDSINCE 1-Jan-2000", SearchDate("saved", "since", D(2000, 1, 1))),
        (b"SAVEDATESUPPORTED", SearchSaveDateSupported()),
        (b"LARGER 9223372036854775807", SearchSize(True, 2**63 - 1)),
        (b"SMALLER 0", SearchSize(False, 0)),
        (b"OLDER 3600", SearchAge(True, 3600)),
        (b"YOUNGER 60", SearchAge(False, 60)),
        (b"1:3,5", SearchSet(SequenceSet(((1, 3), (5, 5))))),
        (b"*", SearchSet(SequenceSet(((None, None),)))),
        (b"$", SearchSet(SequenceSet(saved=True))),
        (b"UID 5:*", SearchSet(SequenceSet(((5, None),)), uid=True)),
        (b"UID $", SearchSet(SequenceSet(saved=True), uid=True)),
        (b"MODSEQ 0", SearchModSeq(0)),
        (
            b'MODSEQ "/flags/\\\\draft" all 620162338',
            SearchModSeq(620162338, "/flags/\\draft", "ALL"),
        ),
        (b"NOT SEEN", SearchNot(SearchFlag("\\Seen"))),
        (b"OR SEEN 2", SearchOr(SearchFlag("\\Seen"), SearchSet(SequenceSet.of(2)))),
        (b"(SEEN)", SearchFlag("\\Seen")),
        (
            b"(SEEN (DRAFT FLAGGED))",
            SearchAnd(
                (SearchFlag("\\Seen"), SearchAnd((SearchFlag("\\Draft"), SearchFlag("\\Flagged"))))
            ),
        ),
    ],
)
def test_search_keys(args: bytes, key: SearchKey) -> None:
    assert criteria(args) == key


def test_search_program_is_an_implicit_and() -> None:
    # RFC 9051 section 6.4.4 example
    assert criteria(b'FLAGGED SINCE 1-Feb-1994 NOT FROM "Smith"') == SearchAnd(
        (
            SearchFlag("\\Flagged"),
            SearchDate("internal", "since", D(1994, 2, 1)),
            SearchNot(SearchHeader("From", "Smith")),
        )
    )
    assert criteria(b"OR (NOT 1:5 UID 7) (DELETED OR TEXT x BODY y)") == SearchOr(
        SearchAnd(
            (SearchNot(SearchSet(SequenceSet(((1, 5),)))), SearchSet(SequenceSet.of(7), True))
        ),
        SearchAnd(
            (
                SearchFlag("\\Deleted"),
                SearchOr(SearchText("x", body_only=False), SearchText("y", body_only=True)),
            )
        ),
    )


def test_return_options_and_charset() -> None:
    command = parse(
        b"a UID SEARCH RETURN (min COUNT MIN) CHARSET utf-8 TEXT {4}\r\n\xc3\xa9t\xc3\r\n"
    )
    assert command == Search(
        tag="a",
        uid=True,
        charset="utf-8",
        return_options=("MIN", "COUNT"),
        criteria=SearchText("ét\ufffd", body_only=False),
    )
    assert isinstance(command, Search) and command.name == "UID SEARCH" and command.wants_esearch
    empty = parse(b"a SEARCH RETURN () ALL\r\n")
    assert isinstance(empty, Search) and empty.return_options == ("ALL",)
    save = parse(b"a SEARCH RETURN (SAVE) $\r\n")
    assert isinstance(save, Search) and not save.wants_esearch and save.uses_saved
    plain = parse(b"a SEARCH CHARSET ISO-8859-1 SUBJECT {1}\r\n\xe9\r\n")
    assert isinstance(plain, Search) and plain.criteria == SearchHeader("Subject", "é")
    assert plain.return_options is None and not plain.wants_esearch and not plain.uses_saved
    ascii_ = parse(b'a SEARCH CHARSET "US-ASCII" SUBJECT \xc3\xa9\r\n')
    assert isinstance(ascii_, Search) and ascii_.criteria == SearchHeader("Subject", "é")


def test_unknown_charset_is_no_badcharset() -> None:
    # RFC 9051 section 6.4.4: tagged NO with BADCHARSET, not BAD.
    for charset in (b"X-UNKNOWN", b"rot13", b"base64"):
        error = parse_error(b"a SEARCH CHARSET " + charset + b" ALL\r\n")
        assert (error.status, error.code) == ("NO", "BADCHARSET (UTF-8 US-ASCII)")


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (b"", "Expected a search key at end of line"),
        (b"FOO", "Unknown search key FOO"),
        (b"SEEN ", "Expected a search key at end of line"),
        (b"(SEEN", "Expected a space at end of line"),
        (b"()", "Expected a search key at ')'"),
        (b"SEEN)", "Expected a space at ')'"),
        (b"OR SEEN", "Expected a space at end of line"),
        (b"NOT", "Expected a space at end of line"),
        (b"BEFORE 30-Feb-2024", "Invalid date"),
        (b"BEFORE 1-Foo-2024", "Expected a date like 1-Feb-2024"),
        (b"BEFORE 2024-01-01", "Expected a date like 1-Feb-2024"),
        (b"LARGER x", "Expected a number at 'x'"),
        (b"LARGER 9223372036854775808", "Number out of range"),
        (b"OLDER 0", "Expected a non-zero number"),
        (b"UID x", "Expected a sequence set at 'x'"),
        (b'MODSEQ "/x" all 1', "MODSEQ entry name must start with /flags/"),
        (b'MODSEQ "/flags/x" any 1', "MODSEQ entry type must be PRIV, SHARED or ALL"),
        (b"HEADER {2}\r\n\xc3\xa9 x", "a header field name must be ASCII"),
        (b"RETURN (FOO) ALL", "Unknown SEARCH return option FOO"),
        (b"CHARSET", "Expected a space at end of line"),
    ],
)
def test_search_errors(args: bytes, text: str) -> None:
    error = parse_error(b"a SEARCH " + args + b"\r\n")
    assert (error.status, error.text) == ("BAD", text)


def test_deep_nesting_is_rejected_cleanly() -> None:
    # Parentheses, NOT and OR all count; the limit is checked before recursing further.
    for opener, closer in ((b"(", b")"), (b"NOT ", b""), (b"OR ALL ", b"")):
        ok = opener * 49 + b"ALL" + closer * 49
        assert isinstance(parse_command(_search(ok)), Search)
        for depth in (50, 10_000):
            deep = opener * depth + b"ALL" + closer * depth
            with pytest.raises(ParseError) as info:
                parse_command(_search(deep))
            assert (info.value.code, info.value.tag) == ("LIMIT", "a")
            assert info.value.text == "Search keys nested too deeply"


def test_too_many_keys() -> None:
    program = b" ".join([b"SEEN"] * 10_001)
    with pytest.raises(ParseError) as info:
        parse_command(_search(program))
    assert info.value.text == "Too many search keys"
    assert isinstance(parse_command(_search(b" ".join([b"SEEN"] * 10_000))), Search)


def _search(program: bytes) -> Command:
    return Command("a", "SEARCH", (b"a SEARCH " + program,))
