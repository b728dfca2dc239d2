"""DATA framing: the decoder at every split, the encoder, line lengths, fuzzing."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from smtp_helpers import chunks

from postroom.smtp.data import DotDecoder, DotStuffer, LineLengthMeter, dot_stuff, dot_unstuff


def decode_split(wire: bytes, size: int, policy: str = "reject") -> tuple[bytes, bytes, DotDecoder]:
    """Feed ``wire`` in ``size`` pieces like the engine does (unconsumed bytes are
    offered again); return (content, rest after the end marker, decoder)."""
    dec = DotDecoder(bare_newline=policy)  # type: ignore[arg-type]
    pending = b""
    out = bytearray()
    rest = b""
    for piece in chunks(wire, size):
        if dec.done:
            rest += piece
            continue
        buf = pending + piece
        content, consumed, done = dec.decode(buf)
        out += content
        pending = buf[consumed:]
        if done:
            rest += pending
            pending = b""
    if not dec.done:
        rest = pending
    return bytes(out), rest, dec


CASES = [
    (b".\r\n", b""),
    (b"a\r\n.\r\n", b"a\r\n"),
    (b"..\r\n.\r\n", b".\r\n"),
    (b"...\r\n.\r\n", b"..\r\n"),
    (b"a\r\n..b\r\n.\r\n", b"a\r\n.b\r\n"),
    (b"\r\n\r\n.\r\n", b"\r\n\r\n"),
    (b"a.\r\n.a\r\n.\r\n", b"a.\r\na\r\n"),
    (b"a\r\n.\r\n", b"a\r\n"),
]


@pytest.mark.parametrize(("wire", "content"), CASES)
def test_decoder_at_every_split(wire: bytes, content: bytes) -> None:
    for size in range(1, len(wire) + 2):
        got, rest, dec = decode_split(wire + b"NEXT", size)
        assert got == content, size
        assert rest == b"NEXT", size
        assert not dec.bare_newline_seen


@pytest.mark.parametrize(
    "fake_end",
    [b"\n.\n", b"\n.\r\n", b"\r.\r", b"\r.\r\n", b"\r\n.\r", b"\r\n.\n", b"\n.\r", b"\r\n.\r\r\n"],
)
def test_smuggling_sequences_are_content(fake_end: bytes) -> None:
    wire = b"x" + fake_end + b"MAIL FROM:<a@b.c>\r\n.\r\nQUIT\r\n"
    for size in range(1, len(wire) + 1):
        got, rest, dec = decode_split(wire, size)
        assert rest == b"QUIT\r\n", size
        assert dec.bare_newline_seen
        assert got.endswith(b"MAIL FROM:<a@b.c>\r\n")
        normal, rest2, _ = decode_split(wire, size, "normalize")
        assert rest2 == b"QUIT\r\n"
        assert re.search(rb"\r(?!\n)|(?<!\r)\n", normal) is None  # only CRLF remains


def test_incomplete_data_never_completes() -> None:
    for wire in (b"abc\r\n.", b"abc\r\n.\r", b"abc\r\n", b".", b".\r"):
        _, _, dec = decode_split(wire, 1)
        assert not dec.done


def test_decoder_is_done_after_end() -> None:
    dec = DotDecoder()
    assert dec.decode(b".\r\n")[2]
    assert dec.decode(b"more") == (b"", 0, True)


def test_encoder() -> None:
    assert dot_stuff(b"") == b".\r\n"
    assert dot_stuff(b"a") == b"a\r\n.\r\n"
    assert dot_stuff(b"a\r\n") == b"a\r\n.\r\n"
    assert dot_stuff(b".a\r\n.\r\n") == b"..a\r\n..\r\n.\r\n"
    # bare LF / CR never go out as such (no smuggling through us)
    assert dot_stuff(b"a\n.\nb") == b"a\r\n..\r\nb\r\n.\r\n"
    assert dot_stuff(b"a\r.\rb\r") == b"a\r\n..\r\nb\r\n.\r\n"


def test_encoder_streaming_keeps_crlf_across_chunks() -> None:
    msg = b"a\r\n.b\r\n\r\n.\r\nend\r"
    whole = dot_stuff(msg)
    for size in range(1, len(msg) + 1):
        enc = DotStuffer()
        wire = b"".join(enc.encode(c) for c in chunks(msg, size)) + enc.finish()
        assert wire == whole, size


@settings(max_examples=300)
@given(st.binary(max_size=200), st.integers(min_value=1, max_value=50))
def test_stuff_then_unstuff_roundtrip(message: bytes, size: int) -> None:
    normal = re.sub(rb"\r\n|\r|\n", b"\r\n", message)
    if normal and not normal.endswith(b"\r\n"):
        normal += b"\r\n"
    wire = dot_stuff(message)
    assert dot_unstuff(wire) == normal
    got, rest, dec = decode_split(wire, size)
    assert (got, rest, dec.bare_newline_seen) == (normal, b"", False)


@settings(max_examples=300)
@given(st.binary(max_size=300), st.integers(min_value=1, max_value=64))
def test_any_split_gives_the_same_result(wire: bytes, size: int) -> None:
    assert decode_split(wire, size)[:2] == decode_split(wire, len(wire) + 1)[:2]


def test_dot_unstuff_needs_the_end() -> None:
    with pytest.raises(ValueError):
        dot_unstuff(b"abc\r\n")
    with pytest.raises(ValueError):
        dot_unstuff(b".\r\nextra")


def test_line_length_meter() -> None:
    m = LineLengthMeter(10)
    assert m.feed(b"123456789\n")  # 10 with LF
    assert m.feed(b"12345")
    assert not m.feed(b"678901\n")
    m = LineLengthMeter(10)
    assert not m.feed(b"a\n" + b"b" * 20 + b"\nc\n")
    m = LineLengthMeter(10)
    assert m.feed(b"a\n" * 50)
    assert not m.feed(b"x" * 11)
    assert not m.feed(b"\n")  # stays exceeded
