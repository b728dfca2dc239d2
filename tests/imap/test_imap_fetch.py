"""FETCH parsing: items, macros, sections, partials, BINARY and the RFC 7162 modifiers."""

from __future__ import annotations

import pytest
from imap_wire import parse, parse_error

from postroom.imap.commands import (
    Fetch,
    FetchAttribute,
    FetchBinary,
    FetchBinarySize,
    FetchBody,
    FetchItem,
    Section,
    parse_command,
)
from postroom.imap.errors import ParseError
from postroom.imap.grammar import SequenceSet
from postroom.imap.receiver import Command

A = FetchAttribute


def items(args: bytes) -> tuple[FetchItem, ...]:
    command = parse(b"a FETCH 1 " + args + b"\r\n")
    assert isinstance(command, Fetch)
    return command.items


def test_macros() -> None:
    # RFC 9051 section 6.4.5
    assert items(b"fast") == (A("FLAGS"), A("INTERNALDATE"), A("RFC822.SIZE"))
    assert items(b"ALL") == (A("FLAGS"), A("INTERNALDATE"), A("RFC822.SIZE"), A("ENVELOPE"))
    assert items(b"FULL")[-1] == A("BODY")
    assert parse_error(b"a FETCH 1 (ALL)\r\n").text == "ALL cannot be used inside a FETCH item list"


def test_simple_attributes() -> None:
    names = (
        b"ENVELOPE FLAGS INTERNALDATE RFC822.SIZE BODY BODYSTRUCTURE UID MODSEQ RFC822 "
        b"RFC822.HEADER RFC822.TEXT"
    )
    assert items(b"(" + names.lower() + b" flags)") == tuple(A(n) for n in names.decode().split())
    assert items(b"uid") == (A("UID"),)


@pytest.mark.parametrize(
    ("args", "item", "response_name"),
    [
        (b"BODY[]", FetchBody(), "BODY[]"),
        (b"body.peek[]<0.2048>", FetchBody(peek=True, partial=(0, 2048)), "BODY[]<0>"),
        (b"BODY[HEADER]", FetchBody(Section(text="HEADER")), "BODY[HEADER]"),
        (b"BODY[text]<5.10>", FetchBody(Section(text="TEXT"), partial=(5, 10)), "BODY[TEXT]<5>"),
        (b"BODY[1]", FetchBody(Section((1,))), "BODY[1]"),
        (b"BODY[4.2.2.1.MIME]", FetchBody(Section((4, 2, 2, 1), "MIME")), "BODY[4.2.2.1.MIME]"),
        (b"BODY[1.HEADER]", FetchBody(Section((1,), "HEADER")), "BODY[1.HEADER]"),
        (b"BODY[3.TEXT]", FetchBody(Section((3,), "TEXT")), "BODY[3.TEXT]"),
        (
            b'BODY.PEEK[HEADER.FIELDS (DATE from {7}\r\nX-A B"C)]',
            FetchBody(Section(text="HEADER.FIELDS", fields=("DATE", "from", 'X-A B"C')), True),
            'BODY[HEADER.FIELDS (DATE from "X-A B\\"C")]',
        ),
        (
            b"BODY[2.header.fields.not (Subject)]<0.1>",
            FetchBody(Section((2,), "HEADER.FIELDS.NOT", ("Subject",)), partial=(0, 1)),
            "BODY[2.HEADER.FIELDS.NOT (Subject)]<0>",
        ),
        (b"BINARY[]", FetchBinary(), "BINARY[]"),
        (b"BINARY.PEEK[1.2]<0.100>", FetchBinary((1, 2), True, (0, 100)), "BINARY[1.2]<0>"),
        (b"BINARY.SIZE[3]", FetchBinarySize((3,)), "BINARY.SIZE[3]"),
        (b"BINARY.SIZE[]", FetchBinarySize(), "BINARY.SIZE[]"),
    ],
)
def test_section_items(args: bytes, item: FetchItem, response_name: str) -> None:
    assert items(args) == (item,)
    assert item.response_name() == response_name


def test_sets_seen_and_wants() -> None:
    peek = parse(b"a FETCH 1:* (BODY.PEEK[] BINARY.PEEK[1] BINARY.SIZE[1] RFC822.HEADER)\r\n")
    assert isinstance(peek, Fetch) and not peek.sets_seen
    for args in (b"BODY[]", b"RFC822", b"RFC822.TEXT", b"BINARY[1]", b"BODY[HEADER]"):
        command = parse(b"a FETCH 1 " + args + b"\r\n")
        assert isinstance(command, Fetch) and command.sets_seen, args
    uid = parse(b"a UID FETCH 1:* FLAGS (CHANGEDSINCE 12345)\r\n")
    assert isinstance(uid, Fetch)
    assert uid.name == "UID FETCH"
    assert uid.wants("UID") and uid.wants("MODSEQ") and uid.wants("FLAGS")
    assert not uid.wants("ENVELOPE")


def test_modifiers() -> None:
    # RFC 7162 sections 3.1.4.1 and 3.2.6
    command = parse(b"s100 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)\r\n")
    assert command == Fetch(
        tag="s100",
        uid=True,
        sequence_set=SequenceSet(((300, 500),)),
        items=(A("FLAGS"),),
        changed_since=12345,
        vanished=True,
    )
    saved = parse(b"a FETCH $ FLAGS (changedsince 0)\r\n")
    assert isinstance(saved, Fetch) and saved.changed_since == 0 and saved.sequence_set.saved


@pytest.mark.parametrize(
    ("line", "text"),
    [
        (b"a FETCH 1 FLAGS (VANISHED)\r\n", "VANISHED needs UID FETCH and CHANGEDSINCE"),
        (b"a UID FETCH 1 FLAGS (VANISHED)\r\n", "VANISHED needs UID FETCH and CHANGEDSINCE"),
        (
            b"a FETCH 1 FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)\r\n",
            "Unknown or repeated FETCH modifier CHANGEDSINCE",
        ),
        (b"a FETCH 1 FLAGS (FOO)\r\n", "Unknown or repeated FETCH modifier FOO"),
        (b"a FETCH 1 FLAGS ()\r\n", "Expected a FETCH modifier at ')'"),
        (b"a FETCH 1 ()\r\n", "Expected a FETCH item"),
        (b"a FETCH 1 FOO\r\n", "Unknown FETCH item FOO"),
        (b"a FETCH 1 RFC822.PEEK[]\r\n", "Unknown FETCH item RFC822.PEEK["),
        (b"a FETCH 1 BODY[HEADER.FIELDS]\r\n", "Expected a space at ']'"),
        (b"a FETCH 1 BODY[HEADER.FIELDS ()]\r\n", "Expected a header field name at ')]'"),
        (b"a FETCH 1 BODY[MIME]\r\n", "MIME needs a part number"),
        (b"a FETCH 1 BODY[0]\r\n", "Invalid section part number"),
        (b"a FETCH 1 BODY[1.]\r\n", "Invalid section specification"),
        (b"a FETCH 1 BODY[.1]\r\n", "Invalid section specification"),
        (b"a FETCH 1 BODY[HEADER.1]\r\n", "Invalid section specification"),
        (b"a FETCH 1 BODY[TEXT.MIME]\r\n", "Invalid section specification"),
        (b"a FETCH 1 BODY[1.FOO]\r\n", "Invalid section specification"),
        (b"a FETCH 1 BODY[(]\r\n", "Invalid section specification"),
        (b"a FETCH 1 BODY[1\r\n", "Expected ] at end of line"),
        (b"a FETCH 1 BODY[]<0.0>\r\n", "Expected a non-zero number"),
        (b"a FETCH 1 BODY[]<1>\r\n", "Expected '.' in a partial range at '>'"),
        (b"a FETCH 1 BODY[]<1.2\r\n", "Expected > at end of line"),
        (b"a FETCH 1 BINARY[HEADER]\r\n", "BINARY takes part numbers only"),
        (b"a FETCH 1 BINARY[1.MIME]\r\n", "BINARY takes part numbers only"),
        (b"a FETCH 1 BINARY.SIZE[1]<0.1>\r\n", "Unexpected extra arguments at '<0.1>'"),
        (b"a FETCH 1 (FLAGS\r\n", "Expected a space at end of line"),
        (b"a FETCH 1 FLAGS UID\r\n", "Expected ( at 'UID'"),
        (b"a FETCH FLAGS\r\n", "Expected a sequence set at 'FLAGS'"),
    ],
)
def test_fetch_errors(line: bytes, text: str) -> None:
    error = parse_error(line)
    assert (error.status, error.text) == ("BAD", text)


def test_deep_sections_and_many_items_are_rejected_cleanly() -> None:
    ok = b".".join([b"1"] * 32)
    command = parse_command(Command("a", "FETCH", (b"a FETCH 1 BODY[" + ok + b".MIME]",)))
    assert isinstance(command, Fetch)
    for depth in (33, 100_000):
        deep = b".".join([b"1"] * depth)
        for item in (b"BODY[" + deep + b"]", b"BINARY[" + deep + b"]"):
            with pytest.raises(ParseError) as info:
                parse_command(Command("a", "FETCH", (b"a FETCH 1 " + item,)))
            assert info.value.code == "LIMIT"
    many = b"(" + b" ".join([b"FLAGS"] * 300) + b")"
    with pytest.raises(ParseError) as info:
        parse_command(Command("a", "FETCH", (b"a FETCH 1 " + many,)))
    assert info.value.text == "Too many FETCH items"


def test_duplicate_items_are_dropped() -> None:
    assert items(b"(UID BODY[1] uid BODY[1] BODY.PEEK[1])") == (
        A("UID"),
        FetchBody(Section((1,))),
        FetchBody(Section((1,)), peek=True),
    )
