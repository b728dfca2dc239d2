"""Replies, addresses, parameters and xtext: the vocabulary server and client share."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postroom.smtp.address import (
    AddressError,
    Mailbox,
    domain_to_ascii,
    domain_to_unicode,
    parse_mailbox,
    parse_path,
    quote_local_part,
)
from postroom.smtp.codes import Reply, SmtpError
from postroom.smtp.params import (
    MailParams,
    RcptParams,
    format_mail_params,
    format_rcpt_params,
    parse_mail_params,
    parse_rcpt_params,
    xtext_decode,
    xtext_encode,
)

ALL = frozenset({"SIZE", "8BITMIME", "BINARYMIME", "SMTPUTF8", "DSN", "AUTH", "REQUIRETLS"})

# ---- Reply ----------------------------------------------------------------------------


def test_reply_serialisation() -> None:
    assert Reply(250, "2.0.0", "OK").to_bytes() == b"250 2.0.0 OK\r\n"
    assert Reply(250, "2.0.0", "OK").to_bytes(enhanced=False) == b"250 OK\r\n"
    assert Reply(250, None, "a\nb\nc").to_bytes() == b"250-a\r\n250-b\r\n250 c\r\n"
    assert Reply(550, "5.1.1", "x\ny").to_bytes() == b"550-5.1.1 x\r\n550 5.1.1 y\r\n"
    assert Reply(334, None, "").to_bytes() == b"334 \r\n"
    # CR cannot smuggle a line into a reply
    assert Reply(250, None, "a\r\rb").to_bytes() == b"250 ab\r\n"
    assert str(Reply(221, "2.0.0", "Bye")) == "221 2.0.0 Bye"
    r = Reply(452, "4.5.3", "x")
    assert r.transient and not r.permanent and not r.positive
    with pytest.raises(ValueError):
        Reply(99, None)
    with pytest.raises(ValueError):
        Reply(250, "2.0", "x")


def test_reply_parse_roundtrip() -> None:
    r = Reply(250, "2.1.5", "first\nsecond")
    lines = r.to_bytes().split(b"\r\n")[:-1]
    assert Reply.parse(lines) == r
    ehlo = Reply.parse([b"250-mx.test", b"250-SIZE 10", b"250 8BITMIME"])
    assert ehlo.enhanced is None and ehlo.lines() == ["mx.test", "SIZE 10", "8BITMIME"]
    for bad in ([], [b"25"], [b"250-a", b"251 b"], [b"250-a"], [b"250xa"]):
        with pytest.raises(ValueError):
            Reply.parse(bad)


def test_smtp_error_carries_reply() -> None:
    exc = SmtpError(Reply(501, "5.5.4", "nope"))
    assert exc.reply.code == 501 and "nope" in str(exc)


# ---- addresses ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "local", "domain", "rest"),
    [
        ("<a@example.org>", "a", "example.org", ""),
        ("<a.b+tag@sub.example.org> SIZE=1", "a.b+tag", "sub.example.org", " SIZE=1"),
        ('<"john doe"@example.org>', "john doe", "example.org", ""),
        ('<"a\\"b\\\\c"@example.org>', 'a"b\\c', "example.org", ""),
        ('<"plain"@example.org>', "plain", "example.org", ""),
        ("<@relay.example,@other.example:a@example.org>", "a", "example.org", ""),
        ("<a@[192.0.2.1]>", "a", "[192.0.2.1]", ""),
        ("<a@[IPv6:2001:db8::1]>", "a", "[IPv6:2001:db8::1]", ""),
        ("<a@[x-tag:stuff]>", "a", "[x-tag:stuff]", ""),
        ("<jösé@exämple.org>", "jösé", "exämple.org", ""),
        ("<用户@例子.广告>", "用户", "例子.广告", ""),
        ("<a@xn--exmple-cua.org>", "a", "xn--exmple-cua.org", ""),
    ],
)
def test_parse_path_valid(text: str, local: str, domain: str, rest: str) -> None:
    mailbox, tail = parse_path(text)
    assert mailbox == Mailbox(local, domain)
    assert tail == rest


@pytest.mark.parametrize(
    "text",
    [
        "a@example.org",
        "<a@example.org",
        "<>",
        "<a>",
        "<@example.org>",
        "<a..b@example.org>",
        "<.a@example.org>",
        "<a.@example.org>",
        "<a@-example.org>",
        "<a@example-.org>",
        "<a@exa mple.org>",
        "<a@example..org>",
        "<a@[300.1.1.1]>",
        "<a@[IPv6:zz::1]>",
        "<a@[nocolon]>",
        "<a@[192.0.2.1>",
        '<"unterminated@example.org>',
        '<"bad\x01char"@example.org>',
        "<a b@example.org>",
        "<@relay.example a@example.org>",
        "<" + "a" * 65 + "@example.org>",
        "<a@" + ("x" * 60 + ".") * 5 + "org>",
        "<a@" + "x" * 64 + ".org>",
    ],
)
def test_parse_path_invalid(text: str) -> None:
    with pytest.raises(AddressError):
        parse_path(text)


def test_null_path_and_postmaster() -> None:
    assert parse_path("<> BODY=8BITMIME", allow_null=True) == (None, " BODY=8BITMIME")
    mb, _ = parse_path("<Postmaster>", allow_postmaster=True)
    assert mb is not None and str(mb) == "Postmaster" and mb.domain == ""
    with pytest.raises(AddressError):
        parse_path("<postmaster>")


def test_path_length_limits() -> None:
    local = "a" * 64
    domain = ("b" * 63 + ".") * 3 + "c" * 40  # 232 octets
    mb, _ = parse_path(f"<{local[:20]}@{domain}>")
    assert mb is not None
    with pytest.raises(AddressError, match="Path too long"):
        parse_path(f"<{local}@{domain}>")  # 64 + 1 + 232 + 2 > 256


def test_canonical_form_and_idna() -> None:
    assert str(Mailbox("john doe", "example.org")) == '"john doe"@example.org'
    assert str(Mailbox("john", "example.org")) == "john@example.org"
    assert quote_local_part('a"b') == '"a\\"b"'
    assert Mailbox("a", "Exämple.ORG").ascii_domain == "xn--exmple-cua.org"
    assert domain_to_ascii("[1.2.3.4]") == "[1.2.3.4]"
    assert domain_to_unicode("xn--exmple-cua.org") == "exämple.org"
    assert domain_to_unicode("example.org") == "example.org"
    assert parse_mailbox("a@example.org") == Mailbox("a", "example.org")
    with pytest.raises(AddressError):
        parse_mailbox("a@example.org> x")


@given(st.text(max_size=80))
def test_parse_path_never_raises_anything_else(text: str) -> None:
    try:
        parse_path(text, allow_null=True, allow_postmaster=True)
    except AddressError:
        pass


@given(
    st.text(
        alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF, exclude_characters="\x7f"),
        min_size=1,
        max_size=30,
    )
)
def test_quoted_local_part_roundtrip(local: str) -> None:
    mb = Mailbox(local, "example.org")
    parsed, rest = parse_path(f"<{mb}>")
    assert parsed == mb and rest == ""


# ---- xtext and parameters -----------------------------------------------------------


@given(st.text(max_size=60))
def test_xtext_roundtrip(value: str) -> None:
    encoded = xtext_encode(value)
    assert all(33 <= ord(c) <= 126 and c != "=" for c in encoded)
    assert xtext_decode(encoded) == value


def test_xtext_examples() -> None:
    assert xtext_encode("a+b=c d") == "a+2Bb+3Dc+20d"
    assert xtext_decode("a+2bb") == "a+b"  # lower-case hex accepted
    for bad in ("a+2", "a+ZZ", "a=b", "a b", "+FF"):
        with pytest.raises(ValueError):
            xtext_decode(bad)


def test_mail_params() -> None:
    p = parse_mail_params(
        " SIZE=123 body=8bitmime SMTPUTF8 RET=full ENVID=abc+2B AUTH=<> REQUIRETLS", ALL
    )
    assert p == MailParams(
        size=123,
        body="8BITMIME",
        smtputf8=True,
        ret="FULL",
        envid="abc+",
        auth="<>",
        requiretls=True,
    )
    assert parse_mail_params("", ALL) == MailParams()
    assert (
        format_mail_params(p)
        == "SIZE=123 BODY=8BITMIME SMTPUTF8 RET=FULL ENVID=abc+2B AUTH=<> REQUIRETLS"
    )
    assert parse_mail_params(" " + format_mail_params(p), ALL) == p


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("SIZE", 501),
        ("SIZE=-1", 501),
        ("SIZE=" + "9" * 21, 501),
        ("BODY=9BIT", 501),
        ("SMTPUTF8=yes", 501),
        ("RET=ALL", 501),
        ("ENVID=a=b", 501),
        ("ENVID=" + "a" * 101, 501),
        ("AUTH=+Z", 501),
        ("FOO=bar", 555),
        ("SIZE=1 SIZE=2", 555),
        ("=x", 501),
        ("SIZE=é", 501),
    ],
)
def test_mail_params_errors(text: str, code: int) -> None:
    with pytest.raises(SmtpError) as exc:
        parse_mail_params(text, ALL)
    assert exc.value.reply.code == code


def test_params_need_the_extension() -> None:
    with pytest.raises(SmtpError) as exc:
        parse_mail_params("BODY=BINARYMIME", ALL - {"BINARYMIME"})
    assert exc.value.reply.code == 501
    for text, ext in (("SIZE=1", "SIZE"), ("RET=FULL", "DSN"), ("REQUIRETLS", "REQUIRETLS")):
        with pytest.raises(SmtpError) as exc:
            parse_mail_params(text, ALL - {ext})
        assert exc.value.reply.code == 555


def test_rcpt_params() -> None:
    p = parse_rcpt_params("NOTIFY=failure,delay ORCPT=rfc822;a+2Bb@example.org", ALL)
    assert p == RcptParams(frozenset({"FAILURE", "DELAY"}), ("rfc822", "a+b@example.org"))
    assert format_rcpt_params(p) == "NOTIFY=FAILURE,DELAY ORCPT=rfc822;a+2Bb@example.org"
    assert parse_rcpt_params(format_rcpt_params(p), ALL) == p
    utf8 = parse_rcpt_params("ORCPT=utf-8;用户@例子.广告", ALL, utf8=True)
    assert utf8.orcpt == ("utf-8", "用户@例子.广告")
    for bad in ("NOTIFY=NEVER,DELAY", "NOTIFY=SOMETIMES", "NOTIFY=", "ORCPT=rfc822", "ORCPT=;x"):
        with pytest.raises(SmtpError):
            parse_rcpt_params(bad, ALL)
    with pytest.raises(SmtpError):
        parse_rcpt_params("ORCPT=utf-8;用户@例子.广告", ALL)  # UTF-8 needs SMTPUTF8
