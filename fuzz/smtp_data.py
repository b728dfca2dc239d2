"""Fuzz target: message content framing - DATA dot-unstuffing (both bare newline
policies), BDAT chunk counting, and the client's dot-stuffing round trip.
``python -m fuzz.smtp_data --seconds N``."""

from __future__ import annotations

import re
import zlib

from fuzz._smtp import CONFIG, NORMALIZE, run
from fuzz.engine import Target, main
from postroom.smtp.data import DotDecoder, dot_stuff, dot_unstuff

_BARE_OR_CRLF = re.compile(rb"\r\n|\r|\n")
DATA_PREFIX = b"EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n"
BDAT_PREFIX = b"EHLO c\r\nMAIL FROM:<a@b.test> BODY=BINARYMIME\r\nRCPT TO:<c@d.test>\r\n"


def decode_split(data: bytes, size: int, policy: str) -> tuple[bytes, int, bool]:
    dec = DotDecoder(bare_newline=policy)  # type: ignore[arg-type]
    out = bytearray()
    pending = b""
    used = 0
    for i in range(0, len(data), size):
        pending += data[i : i + size]
        content, consumed, done = dec.decode(pending)
        out += content
        used += consumed
        pending = pending[consumed:]
        if done:
            return bytes(out), used, True
    return bytes(out), used, False


def check(data: bytes) -> None:
    size = 1 + zlib.crc32(data) % 13
    for policy in ("reject", "normalize"):
        whole = decode_split(data, max(len(data), 1), policy)
        assert decode_split(data, size, policy) == whole, "DotDecoder depends on the split"
        _content, used, done = whole
        if done:
            end = data[:used]
            assert end.endswith(b"\r\n.\r\n") or end == b".\r\n", "ended without CRLF.CRLF"
            assert b"\r\n.\r\n" not in data[: used - 3], "missed an earlier end marker"
    # Round trip through our client's stuffer: what we relay decodes to what we meant.
    expected = _BARE_OR_CRLF.sub(b"\r\n", data)
    if expected and not expected.endswith(b"\r\n"):
        expected += b"\r\n"
    assert dot_unstuff(dot_stuff(data)) == expected, "dot-stuffing round trip"
    # The whole engine: the content after DATA, and as BDAT chunks.
    run(DATA_PREFIX + data, CONFIG)
    run(DATA_PREFIX + data, NORMALIZE)
    bdat = b"BDAT %d LAST\r\n%s" % (len(data), data) if size % 2 else (
        b"BDAT %d\r\n%sBDAT 0 LAST\r\n" % (len(data), data))
    shell = run(BDAT_PREFIX + bdat + b"QUIT\r\n", CONFIG)
    if len(data) <= CONFIG.max_message_size:
        assert shell.messages == [data], "BDAT content changed"


DICTIONARY = (
    b"\r\n", b"\r\n.\r\n", b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b".", b"..", b"\r", b"\n",
    b"\x00", b"BDAT 5\r\n", b"BDAT 0 LAST\r\n", b"QUIT\r\n", b"RSET\r\n", b"MAIL FROM:<>\r\n",
    b"x" * 130,
)

TARGET = Target("smtp_data", check, DICTIONARY, max_size=6000)

if __name__ == "__main__":
    raise SystemExit(main(TARGET))
