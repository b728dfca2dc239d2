"""Random input never crashes the engine, and the split never changes the outcome."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from smtp_helpers import AUTH_TEST_CFG, run_split

WORDS = [
    b"EHLO c\r\n",
    b"HELO c\r\n",
    b"MAIL FROM:<a@example.org>\r\n",
    b"MAIL FROM:<>\r\n",
    b"RCPT TO:<b@example.org>\r\n",
    b"DATA\r\n",
    b"BDAT 3\r\n",
    b"BDAT 0 LAST\r\n",
    b"RSET\r\n",
    b"NOOP\r\n",
    b"QUIT\r\n",
    b".\r\n",
    b"\r\n",
    b"\n",
    b"\r",
    b".",
    b"AUTH PLAIN\r\n",
    b"AUTH LOGIN\r\n",
    b"*\r\n",
    b"AGFsaWNlAHNlY3JldA==\r\n",
    b"STARTTLS\r\n",
    b"VRFY x\r\n",
    b"x" * 600,
    b"\x00\xff",
    b"BDAT 99999999999999999999\r\n",
]


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400), st.integers(min_value=1, max_value=40))
def test_random_bytes_never_raise(data: bytes, size: int) -> None:
    d = run_split(data, size, auto_tls=True, **AUTH_TEST_CFG)
    d.output()
    d.feed(b"")
    assert d.closed is not None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=40), st.integers(min_value=1, max_value=30))
def test_command_soup_same_output_at_any_split(words: list[bytes], size: int) -> None:
    data = b"".join(words)
    whole = run_split(data, max(len(data), 1), **AUTH_TEST_CFG)
    split = run_split(data, size, **AUTH_TEST_CFG)  # (STARTTLS pauses both for good)
    assert split.output() == whole.output()
    assert split.messages == whole.messages
    assert split.closed == whole.closed
