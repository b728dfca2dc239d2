"""Header blocks: field splitting, value decoding, HEADER.FIELDS[.NOT]."""

from __future__ import annotations

from postroom.mime import header_fields
from postroom.mime.headers import decode_value, encode_value, split_fields

HEADER = (
    b"From: a@example.org\r\n"
    b"Subject: folded\r\n\tsecond line\r\n"
    b"X-Junk line without colon\r\n"
    b"subject : again\r\n"
    b"To: b@example.org\r\n"
    b"\r\n"
)


def test_split_fields_keeps_folding_and_lowercases_names() -> None:
    assert split_fields(HEADER) == [
        (b"from", b"a@example.org"),
        (b"subject", b"folded\r\n\tsecond line"),
        (b"subject", b"again"),
        (b"to", b"b@example.org"),
    ]


def test_split_fields_value_starts_after_leading_white_space_only() -> None:
    assert split_fields(b"Message-ID:\r\n <a@b>\r\nDate:  x  \r\n") == [
        (b"message-id", b"\r\n <a@b>"),
        (b"date", b"x  "),
    ]


def test_decode_value_round_trips_any_octets() -> None:
    for raw in (b"caf\xe9", b"J\xc3\xb6rg", b"\xff\xfe junk", b""):
        assert encode_value(decode_value(raw)) == raw
    assert decode_value(b"a\x00b") == "a\ufffdb"  # as Dovecot


def test_header_fields_selects_with_original_folding() -> None:
    # C: a1 FETCH 1 BODY[HEADER.FIELDS (SUBJECT TO)]
    assert header_fields(HEADER, ["SUBJECT", "to"]) == (
        b"Subject: folded\r\n\tsecond line\r\nsubject : again\r\nTo: b@example.org\r\n\r\n"
    )


def test_header_fields_not() -> None:
    # C: a1 FETCH 1 BODY[HEADER.FIELDS.NOT (Subject)]
    assert header_fields(HEADER, [b"Subject"], not_=True) == (
        b"From: a@example.org\r\nX-Junk line without colon\r\nTo: b@example.org\r\n\r\n"
    )


def test_header_fields_none_match_is_just_the_blank_line() -> None:
    assert header_fields(HEADER, ["X-Nothing"]) == b"\r\n"


def test_header_fields_last_field_without_crlf() -> None:
    assert header_fields(b"Subject: s\r\nTo: t", ["to"]) == b"To: t\r\n\r\n"
