"""Dot-stuffing and TOP's cut (postroom.pop3.message)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from postroom.pop3.message import dot_stuffed, top_end


def stuffed(message: bytes, end: int | None = None, chunk_size: int = 1 << 18) -> bytes:
    return b"".join(dot_stuffed(message, end, chunk_size))


def unstuff(wire: bytes) -> bytes:
    """What a client does: strip the terminator, then one leading dot per line."""
    assert wire.endswith(b"\r\n.\r\n") or wire == b".\r\n"
    body = wire[:-3]
    lines = body.split(b"\n")
    return b"\n".join(line[1:] if line.startswith(b".") else line for line in lines)


def test_lines_starting_with_a_dot_get_another() -> None:
    message = b".a\r\n.\r\n..\r\nb.\r\n"
    assert stuffed(message) == b"..a\r\n..\r\n...\r\nb.\r\n.\r\n"


def test_empty_message_and_missing_final_crlf() -> None:
    assert stuffed(b"") == b".\r\n"
    assert stuffed(b"x") == b"x\r\n.\r\n"
    assert stuffed(b".") == b"..\r\n.\r\n"
    assert stuffed(b"a\r\nb") == b"a\r\nb\r\n.\r\n"


def test_dot_after_bare_lf_is_stuffed() -> None:
    assert stuffed(b"a\n.b\r\n") == b"a\n..b\r\n.\r\n"


def test_chunks_are_small_views_of_the_message() -> None:
    message = b"0123456789\r\n.x\r\n" * 3
    chunks = list(dot_stuffed(message, None, 4))
    assert all(len(c) <= 4 for c in chunks)
    assert all(c.obj is message for c in chunks if isinstance(c, memoryview))
    assert b"".join(chunks) == stuffed(message)


def test_end_cuts_the_message() -> None:
    assert stuffed(b"a\r\n.b\r\nc\r\n", 7) == b"a\r\n..b\r\n.\r\n"


def test_top_end() -> None:
    message = b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\nl3"
    assert message[: top_end(message, 0)] == b"A: 1\r\nB: 2\r\n\r\n"
    assert message[: top_end(message, 2)] == b"A: 1\r\nB: 2\r\n\r\nl1\r\nl2\r\n"
    assert top_end(message, 3) == len(message)
    assert top_end(message, 10**40) == len(message)
    assert top_end(b"A: 1\r\nB: 2\r\n", 5) == len(b"A: 1\r\nB: 2\r\n")  # header only
    assert top_end(b"\r\nbody\r\nmore\r\n", 1) == len(b"\r\nbody\r\n")  # empty header


@given(st.binary(max_size=300), st.integers(min_value=1, max_value=50))
def test_unstuffing_gives_the_message_back(message: bytes, chunk_size: int) -> None:
    wire = stuffed(message, None, chunk_size)
    expected = message if message.endswith(b"\r\n") or not message else message + b"\r\n"
    assert unstuff(wire) == expected
    assert b"\r\n.\r\n" not in wire[:-3]  # the terminator appears once, at the end
