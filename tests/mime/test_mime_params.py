"""Content-Type / -Disposition / -Language / -Transfer-Encoding values, with the
answers Dovecot gives for the same input."""

from __future__ import annotations

import pytest

from postroom.mime.params import (
    parse_content_type,
    parse_disposition,
    parse_encoding,
    parse_language,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text/plain", ("text", "plain", ())),
        ('TEXT/HTML; CHARSET="UTF-8"', ("TEXT", "HTML", (("CHARSET", "UTF-8"),))),
        (
            'text/plain (c) ; charset = "us-ascii" (c2); format=flowed',
            ("text", "plain", (("charset", "us-ascii"), ("format", "flowed"))),
        ),
        ("text", ("text", "", ())),
        ("text; charset=utf-8", ("", "", ())),
        ("/plain", ("", "", ())),
        ("text/", ("", "", ())),
        ("text/plain/html", ("", "", ())),
        ("text/plain@x; a=b", ("", "", ())),
        ("", ("", "", ())),
    ],
)
def test_content_type(value: str, expected: tuple[object, ...]) -> None:
    assert parse_content_type(value) == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        # duplicates kept; an unparsable parameter is dropped up to the next ';'
        (
            '; charset=utf-8; charset=latin1; novalue; =x; a="b"c',
            (("charset", "utf-8"), ("charset", "latin1"), ("a", "b")),
        ),
        ('; name="a\\"b\\\\c"; x="1\\2"', (("name", 'a"b\\c'), ("x", "12"))),
        ('; a=1; name="unterminated', (("a", "1"),)),
        ("; name==?utf-8?q?x?=", (("name", "=?utf-8?q?x?="),)),
        ("; =?utf-8?q?x?=", (("", ""),)),
        ("; ; charset=x", ()),
        ("; name=a b", (("name", "a"),)),
        ('; charset=""', (("charset", ""),)),
    ],
)
def test_parameters(params: str, expected: tuple[tuple[str, str], ...]) -> None:
    assert parse_content_type("text/plain" + params)[2] == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        # RFC 2231 section 3: continuations joined
        ('; name*0="long"; name*1="name.txt"', (("name", "longname.txt"),)),
        # section 4: extended values stay encoded; the name gets its '*'
        ("; name*=utf-8''%E2%82%AC", (("name*", "utf-8''%E2%82%AC"),)),
        (
            "; title*0*=us-ascii'en'This%20is; title*1*=%20fun; title*2=\" isn't it\"",
            (("title*", "us-ascii'en'This%20is%20fun isn't it"),),
        ),
        # a plain first segment gets an empty charset prefix, plain '%' is escaped
        ("; t*0=a; t*1*=%41b", (("t*", "''a%41b"),)),
        ("; t*0*=us-ascii''a; t*1=%41", (("t*", "us-ascii''a%2541"),)),
        # gaps: segments stay separate
        ("; d*1=q; e*0*=a; e*2*=c", (("d*1", "q"), ("e*0*", "a"), ("e*2*", "c"))),
        # plain parameters first, then the joined ones sorted by name
        (
            "; b*0=x; a=1; b*1=y; c*0*=utf-8''z; Z=2",
            (("a", "1"), ("Z", "2"), ("b", "xy"), ("c*", "utf-8''z")),
        ),
        ("; x*y=1", (("x*y", "1"),)),
    ],
)
def test_rfc2231(params: str, expected: tuple[tuple[str, str], ...]) -> None:
    assert parse_content_type("application/x" + params)[2] == expected


def test_disposition() -> None:
    assert parse_disposition('attachment; filename="a b.txt"; size=4') == (
        "attachment",
        (("filename", "a b.txt"), ("size", "4")),
    )
    assert parse_disposition("INLINE") == ("INLINE", ())
    assert parse_disposition(";filename=x") == ("", (("filename", "x"),))
    assert parse_disposition("attachment filename=x") == ("attachment", ())
    assert parse_disposition('"quoted"; a=b') == ("", (("a", "b"),))
    assert parse_disposition("") == ("", ())


def test_language() -> None:
    assert parse_language("en, de-DE (German)") == ("en", "de-DE")
    assert parse_language("en de") == ("en",)
    assert parse_language("en,,de") == ("en",)
    assert parse_language('"en"') is None
    assert parse_language("") is None


def test_transfer_encoding() -> None:
    assert parse_encoding(" BASE64 ") == "BASE64"
    assert parse_encoding("7BIT (comment)") == "7BIT"
    assert parse_encoding('"base64"') is None
    assert parse_encoding("8 bit") is None
    assert parse_encoding("") is None
