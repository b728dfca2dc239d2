"""SEARCH fields, SORT keys (RFC 5256, RFC 5957), PREVIEW (RFC 8970)."""

from __future__ import annotations

import pytest
from mime_helpers import msg

from postroom.mime import (
    Address,
    address_sort_key,
    analyze,
    base_subject,
    decode_words,
    display_sort_key,
)
from postroom.mime.search import parse_date


def test_search_fields_are_decoded() -> None:
    data = msg(
        b"From: =?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>\n"
        b"To: a@x\nTo: b@x\nCc: J\xc3\xb6rg <j@x>\nBcc: caf\xe9 <c@x>\n"
        b"Subject: =?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=\n"
        b" =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=\n"
        b"Date: Thu, 13 Feb 1997 09:21:12 -0700 (MST)\n"
        b"Message-ID: <m@x>\nIn-Reply-To: <r@x>\nReferences: <a@x>\n <b@x>\n\nbody\n"
    )
    s = analyze(data).search
    assert s.from_ == "Keld Jørn Simonsen <keld@dkuug.dk>"
    assert s.to == "a@x, b@x"
    assert s.cc == "Jörg <j@x>"
    assert s.bcc == "café <c@x>"
    assert s.subject == "If you can read this you understand the example."
    assert s.date == 855850872
    assert (s.message_id, s.in_reply_to, s.references) == ("<m@x>", "<r@x>", "<a@x> <b@x>")


def test_absent_fields_are_none() -> None:
    s = analyze(msg("X: y\n\nb\n")).search
    assert (s.subject, s.from_, s.date, s.references) == (None, None, None, None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", "plain"),
        ("=?utf-8?q?a_b?= =?utf-8?q?c?=", "a bc"),  # space between words dropped
        ("x =?utf-8?b?w7Y=?= y", "x ö y"),
        ("=?utf-8*en?q?a?=", "a"),  # RFC 2231 language suffix
        ("=?bogus?q?=ZZ?=", "=ZZ"),
        ("=?utf-8?b?###?=", ""),  # non-alphabet characters are ignored
        ("fold\r\n\t ed", "fold ed"),
    ],
)
def test_decode_words(value: str, expected: str) -> None:
    assert decode_words(value) == expected


def test_parse_date() -> None:
    assert parse_date("Mon, 1 Jan 2024 10:00:00 +0100") == 1704099600
    assert parse_date("1 Jan 2024 10:00 GMT") == 1704103200
    assert parse_date("not a date") is None
    assert parse_date(None) is None
    assert parse_date("Mon, 1 Jan 99999999 10:00:00 +0000") is None


@pytest.mark.parametrize(
    ("subject", "base"),
    [
        ("Hello", "hello"),
        ("Re: Hello", "hello"),
        ("RE: re: Fwd: Hello", "hello"),
        ("Re[2]: Hello", "hello"),
        ("[list] Re: Hello", "hello"),
        ("Re: [list] Hello (fwd)", "hello"),
        ("[fwd: Re: Hello]", "hello"),
        ("[PATCH]", "[patch]"),
        ("  many   spaces\there ", "many spaces here"),
        ("Re:", ""),
        ("", ""),
        (None, ""),
    ],
)
def test_base_subject(subject: str | None, base: str) -> None:
    assert base_subject(subject) == base


def test_address_sort_keys() -> None:
    group = Address(None, None, "team", None)
    joerg = Address("=?utf-8?q?J=C3=B6rg?=", None, "Joerg", "example.de")
    plain = Address(None, None, "Zed", "example.org")
    assert address_sort_key((group, joerg)) == "joerg"
    assert address_sort_key(()) == ""
    assert display_sort_key((joerg,)) == "jörg"
    assert display_sort_key((plain,)) == "zed@example.org"


def test_preview_plain_text() -> None:
    data = msg(
        """Content-Type: multipart/alternative; boundary=b

--b
Content-Type: text/plain; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

Gr=FC=DFe,

  many    spaces =
here.
--b
Content-Type: text/html

<p>ignored</p>
--b--
"""
    )
    assert analyze(data).preview == "Grüße, many spaces here."


def test_preview_from_html_and_base64() -> None:
    data = msg(
        """Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: base64

PGh0bWw+PGhlYWQ+PHN0eWxlPnB7fTwvc3R5bGU+PC9oZWFkPjxib2R5PjxwPkhlbGxvICZhbXA7
IHdlbGNvbWU8L3A+PC9ib2R5PjwvaHRtbD4=
"""
    )
    assert analyze(data).preview == "Hello & welcome"


def test_preview_is_at_most_200_characters() -> None:
    preview = analyze(msg("Subject: s\n\n" + "wörd " * 500)).preview
    assert len(preview) == 200 and preview.startswith("wörd wörd")


def test_has_attachment() -> None:
    assert not analyze(msg("Subject: s\n\nbody\n")).has_attachment
    with_pdf = msg(
        """Content-Type: multipart/mixed; boundary=b

--b

text
--b
Content-Type: application/pdf; name=a.pdf

%PDF
--b--
"""
    )
    assert analyze(with_pdf).has_attachment
    disposed = msg("Content-Type: text/plain\nContent-Disposition: attachment\n\nx\n")
    assert analyze(disposed).has_attachment
