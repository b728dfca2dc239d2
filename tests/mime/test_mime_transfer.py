"""Transfer decoding for BINARY (RFC 3516) and charset decoding."""

from __future__ import annotations

import pytest

from postroom.mime import decode_text, decode_transfer, normalize_crlf


@pytest.mark.parametrize("encoding", [None, "", "7bit", "8BIT", "binary", " Binary "])
def test_identity_encodings(encoding: str | None) -> None:
    assert decode_transfer(b"a\r\n\x00\xff", encoding) == b"a\r\n\x00\xff"


def test_base64_lenient() -> None:
    assert decode_transfer(b"aGVs\r\nbG8=\r\n", "base64") == b"hello"
    assert decode_transfer(b"aGVs bG8*!", "BASE64") == b"hello"  # junk ignored
    assert decode_transfer(b"aGVsbG8", "base64") == b"hello"  # missing padding
    assert decode_transfer(b"aGVsbG8=\r\nignored after pad", "base64") == b"hello"
    assert decode_transfer(b"a", "base64") == b""
    assert decode_transfer(b"", "base64") == b""


def test_quoted_printable() -> None:
    assert decode_transfer(b"caf=C3=A9 =\r\nsoft break\r\nhard", "quoted-printable") == (
        "café soft break\r\nhard".encode()
    )
    assert decode_transfer(b"a=3D=\r\n", "Quoted-Printable") == b"a="
    assert decode_transfer(b"stray = sign =ZZ", "quoted-printable") == b"stray = sign =ZZ"
    assert decode_transfer(b"trailing=  \r\nws", "quoted-printable") == b"trailingws"


def test_unknown_encoding_is_none() -> None:
    # the IMAP server answers NO [UNKNOWN-CTE]
    assert decode_transfer(b"begin 644 x", "x-uuencode") is None


def test_decode_text() -> None:
    assert decode_text("café".encode("latin-1"), "ISO-8859-1") == "café"
    assert decode_text(b"\x80", "iso-8859-1") == "€"  # read as cp1252, like HTML5
    assert decode_text("Jörg".encode(), "us-ascii") == "Jörg"  # mislabelled 8-bit
    assert decode_text("Jörg".encode(), "x-unknown") == "Jörg"
    assert decode_text(b"caf\xe9", None) == "café"
    assert decode_text(b"\xff\xfe", "utf-8") == "\ufffd\ufffd"
    assert decode_text("テスト".encode("iso-2022-jp"), "ISO-2022-JP") == "テスト"
    assert decode_text("中文".encode("gbk"), "gb2312") == "中文"


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        (b"", b""),
        (b"a\r\nb\r\n", b"a\r\nb\r\n"),
        (b"a\nb\n", b"a\r\nb\r\n"),
        (b"a\rb\r", b"a\r\nb\r\n"),
        (b"\r\r\n\n", b"\r\n\r\n\r\n"),
        (b"mixed\r\nlf\ncr\rend", b"mixed\r\nlf\r\ncr\r\nend"),
    ],
)
def test_normalize_crlf(raw: bytes, stored: bytes) -> None:
    assert normalize_crlf(raw) == stored


def test_normalize_crlf_clean_input_is_not_copied() -> None:
    data = b"x" * 1000 + b"\r\n"
    assert normalize_crlf(data) is data
