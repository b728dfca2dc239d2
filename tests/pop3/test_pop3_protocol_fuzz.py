"""Property tests for the POP3 engine: it never raises on client input, and the
chunking of the input never changes the answers (STYLE habit 9)."""

from __future__ import annotations

import base64

from hypothesis import given, settings
from hypothesis import strategies as st
from pop3_engine_driver import EngineDriver

from postroom.pop3.protocol import EngineConfig

COMMANDS = [
    b"USER alice",
    b"USER bob",
    b"PASS secret",
    b"PASS wrong",
    b"AUTH PLAIN",
    b"AUTH PLAIN " + base64.b64encode(b"\x00alice\x00secret"),
    b"AUTH X-FINAL " + base64.b64encode(b"\x00alice\x00secret"),
    b"AUTH",
    b"*",
    b"",
    b"=",
    b"UTF8",
    b"CAPA",
    b"STAT",
    b"LIST",
    b"LIST 2",
    b"UIDL",
    b"UIDL 1",
    b"RETR 1",
    b"RETR 2",
    b"RETR 9",
    b"TOP 2 1",
    b"TOP 3 0",
    b"DELE 1",
    b"DELE 3",
    b"RSET",
    b"NOOP",
    b"QUIT",
    b"XYZZY",
    b"RETR x",
    b"N" * 40,
]
SMALL = EngineConfig(
    hostname="pop.example.test",
    mechanisms=("PLAIN", "X-FINAL"),
    max_line=32,
    max_auth_line=48,
    max_errors=1000,
    max_auth_failures=1000,
)


def session(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\r\n" for line in lines)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=80), st.sampled_from(COMMANDS)), max_size=30))
def test_random_input_never_raises(parts: list[bytes]) -> None:
    for config in (SMALL, EngineConfig(hostname="x", mechanisms=("PLAIN",))):
        driver = EngineDriver(config=config)
        out = driver.feed(parts)
        assert out.endswith(b"\r\n")


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(COMMANDS), max_size=25),
    st.lists(st.integers(min_value=0, max_value=2000), max_size=12),
)
def test_any_split_gives_the_same_answers(lines: list[bytes], cuts: list[int]) -> None:
    data = session(lines)
    whole = EngineDriver(config=SMALL)
    expected = whole.feed([data])
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    split = EngineDriver(config=SMALL)
    assert split.feed(chunks) == expected
    assert split.commits == whole.commits
    assert split.engine.state is whole.engine.state
