"""Modified UTF-7 mailbox names (RFC 3501 section 5.1.3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postroom.imap import mutf7

VECTORS = [
    ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),  # RFC 3501 section 5.1.3
    ("INBOX", "INBOX"),
    ("&", "&-"),
    ("a&b&&", "a&-b&-&-"),
    ("Entwürfe", "Entw&APw-rfe"),
    ("Élément envoyé", "&AMk-l&AOk-ment envoy&AOk-"),
    ("😀", "&2D3eAA-"),  # a surrogate pair
    ("Отправленные", "&BB4EQgQ,BEAEMAQyBDsENQQ9BD0ESwQ1-"),
    ("tab\there", "tab&AAk-here"),
    ("", ""),
]


@pytest.mark.parametrize(("text", "wire"), VECTORS)
def test_vectors(text: str, wire: str) -> None:
    assert mutf7.encode(text) == wire
    assert mutf7.decode(wire) == text
    assert mutf7.decode(wire.encode("ascii")) == text
    assert mutf7.is_valid(wire)


@pytest.mark.parametrize(
    "wire",
    [
        "&",  # unterminated
        "&U,BTFw",  # unterminated
        "&U,BTFw-&ZeVnLIqe-",  # two adjacent shifts: the encoder merges them
        "&AGE-",  # "a" must not be encoded
        "&AP-",  # odd number of octets
        "&APy-",  # non-zero pad bits... and odd
        "&APw=-",  # padding
        "&2D0-",  # lone surrogate
        "&A!w-",  # not base64
        "caf\xe9",  # 8-bit
        "a\tb",  # control character
        "&A-",  # truncated base64
    ],
)
def test_invalid_names_are_lenient(wire: str) -> None:
    with pytest.raises(mutf7.MUTF7Error):
        mutf7.decode(wire)
    assert mutf7.decode_lenient(wire) == (wire, False)
    assert not mutf7.is_valid(wire)


def test_lenient_bytes() -> None:
    assert mutf7.decode_lenient(b"caf\xc3\xa9") == ("café", False)
    assert mutf7.decode_lenient(b"&-") == ("&", True)


@given(st.text())
def test_round_trip(text: str) -> None:
    wire = mutf7.encode(text)
    assert wire.isascii()
    assert mutf7.decode(wire) == text


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E)))
def test_decode_never_raises_anything_else(wire: str) -> None:
    decoded, ok = mutf7.decode_lenient(wire)
    if ok:
        assert mutf7.encode(decoded) == wire
    else:
        assert decoded == wire
