"""Message bodies on the POP3 wire: TOP's cut and dot-stuffing (RFC 1939 section 3).

A multi-line response ends with a line holding a single ".". Every line of the message
that starts with "." gets one more "." in front so it cannot end the response early.

``dot_stuffed`` works on the stored bytes without copying them: it yields memoryview
slices of the original message with the extra dots as separate one-byte chunks, so a
5 MB message costs no second 5 MB buffer. Slices are at most ``chunk_size`` long, which
lets the shell wait for the socket to drain between them (backpressure).
"""

from __future__ import annotations

from collections.abc import Iterator

DEFAULT_CHUNK_SIZE = 256 * 1024
TERMINATOR = b".\r\n"


def top_end(message: bytes, body_lines: int) -> int:
    """Where TOP's output stops: after the header, the blank line and ``body_lines``
    lines of the body (RFC 1939 section 7). A message without a blank line is all
    header; asking for more lines than exist gives the whole message."""
    if message.startswith(b"\r\n"):
        pos = 2  # empty header
    else:
        blank = message.find(b"\r\n\r\n")
        if blank < 0:
            return len(message)
        pos = blank + 4
    for _ in range(body_lines):
        newline = message.find(b"\n", pos)
        if newline < 0:
            return len(message)
        pos = newline + 1
    return pos


def dot_stuffed(
    message: bytes, end: int | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Iterator[bytes | memoryview]:
    """Yield ``message[:end]`` dot-stuffed, then the terminating ``.CRLF``.

    A final line without CRLF gets one, so the terminator always starts a line.
    A "." after a bare LF is stuffed too: lenient clients split lines there."""
    stop_at = len(message) if end is None else end
    view = memoryview(message)
    pos = 0
    if stop_at > 0 and message[0] == 0x2E:
        yield b"."
    while pos < stop_at:
        found = message.find(b"\n.", pos, stop_at)
        stop = stop_at if found < 0 else found + 1
        while pos < stop:
            nxt = min(stop, pos + chunk_size)
            yield view[pos:nxt]
            pos = nxt
        if found >= 0:
            yield b"."
    if stop_at > 0 and message[max(0, stop_at - 2) : stop_at] != b"\r\n":
        yield b"\r\n"
    yield TERMINATOR
