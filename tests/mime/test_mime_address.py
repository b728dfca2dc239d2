"""Address lists (RFC 5322 section 3.4) with Dovecot's error recovery; the
expected tuples are Dovecot's ENVELOPE answers for the same input."""

from __future__ import annotations

import pytest

from postroom.mime.address import parse_address_list
from postroom.mime.model import Address

N = None


def addrs(value: str) -> list[tuple[str | None, ...]]:
    return [(a.name, a.adl, a.mailbox, a.host) for a in parse_address_list(value)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            '"Joe Q. Public" <john.q.public@example.com>',
            [("Joe Q. Public", N, "john.q.public", "example.com")],
        ),
        ("Mary   Smith <m@x>", [("Mary Smith", N, "m", "x")]),
        ("Joe Q. Public <j@x>", [("Joe Q. Public", N, "j", "x")]),
        ('"" <a@b>', [(N, N, "a", "b")]),
        ('"a""b" <x@y>', [("a b", N, "x", "y")]),
        (
            "Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
            [("Pete", N, "pete", "silly.test")],
        ),
        ("a@b.c (Comment Name)", [("Comment Name", N, "a", "b.c")]),
        ("x@y (c1) (c2)", [("c2", N, "x", "y")]),
        ("a(comment)@b", [("comment", N, "a", "b")]),
        (
            "<@route1.test,@route2.test:user@host.test>",
            [(N, "@route1.test,@route2.test", "user", "host.test")],
        ),
        ('"john doe"@example.com', [(N, N, "john doe", "example.com")]),
        ("a@[1.2.3.4]", [(N, N, "a", "[1.2.3.4]")]),
        ("a@ b . c", [(N, N, "a", "b.c")]),
        ("=?utf-8?q?J=C3=B6rg?= <j@x>", [("=?utf-8?q?J=C3=B6rg?=", N, "j", "x")]),
    ],
)
def test_mailboxes(value: str, expected: list[tuple[str | None, ...]]) -> None:
    assert addrs(value) == expected


def test_groups() -> None:
    # RFC 9051 section 7.5.2: group start (mailbox = name, host NIL), group end all NIL
    assert addrs("A Group:Ed Jones <c@a.test>,joe@where.test;, x@y") == [
        (N, N, "A Group", N),
        ("Ed Jones", N, "c", "a.test"),
        (N, N, "joe", "where.test"),
        (N, N, N, N),
        (N, N, "x", "y"),
    ]
    assert addrs("undisclosed-recipients:;") == [(N, N, "undisclosed-recipients", N), (N, N, N, N)]
    assert addrs("group: a@b") == [(N, N, "group", N), (N, N, "a", "b"), (N, N, N, N)]
    assert addrs(":;") == [(N, N, "", N), (N, N, N, N)]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("localpart", [(N, N, "localpart", "MISSING_DOMAIN")]),
        ("@nolocal.test", [(N, N, "MISSING_MAILBOX", "nolocal.test")]),
        ('"only name"', [("only name", N, "MISSING_MAILBOX", "MISSING_DOMAIN")]),
        ("A B C", [("A B C", N, "MISSING_MAILBOX", "MISSING_DOMAIN")]),
        ("<>", [(N, N, "MISSING_MAILBOX", "MISSING_DOMAIN")]),
        ("<a@b", [(N, N, "a", "SYNTAX_ERROR")]),
        ("a@b.", [(N, N, "a", "MISSING_DOMAIN")]),
        ("a@b@c, x@y", [(N, N, "a", "b")]),  # the rest after junk is dropped
        ("a@b,", [(N, N, "a", "b")]),
        (",a@b", [(N, N, "MISSING_MAILBOX", "MISSING_DOMAIN"), (N, N, "a", "b")]),
        (
            "a@b,,c@d",
            [(N, N, "a", "b"), (N, N, "MISSING_MAILBOX", "MISSING_DOMAIN"), (N, N, "c", "d")],
        ),
        ("", []),
        ("   ", []),
        ('"unterminated <a@b>', [(N, N, "MISSING_MAILBOX", "MISSING_DOMAIN")]),
    ],
)
def test_broken_addresses(value: str, expected: list[tuple[str | None, ...]]) -> None:
    assert addrs(value) == expected


def test_folding_and_8bit_survive() -> None:
    assert addrs('"fold\r\n ed" <c@x>, J\udcf6rg <j@x>') == [
        ("fold ed", N, "c", "x"),
        ("J\udcf6rg", N, "j", "x"),
    ]


def test_group_markers() -> None:
    start, end = Address(N, N, "g", N), Address(N, N, N, N)
    assert start.is_group_start and not start.is_group_end
    assert end.is_group_end and not end.is_group_start
