"""DATA framing: the server's dot-unstuffing decoder, the client's dot-stuffing encoder.

Theory of operation (RFC 5321 sections 4.1.1.4 and 4.5.2): message content travels as
lines; a line that starts with "." gets one more "." in front (transparency) and the
content ends with the five octets CR LF "." CR LF. ``DotDecoder`` undoes that in a
stream: it is fed whatever bytes arrived, returns the content it can already decide
on, and tells how many input bytes it used (the rest, at most four bytes that might
begin the end marker, stays with the caller). After the end marker it stops; what
follows belongs to the next command (RFC 2920 pipelining).

Bare CR and bare LF — the policy (SMTP smuggling, SEC Consult, December 2023):

* Only CR LF "." CR LF ends the data. ``LF "." LF``, ``LF "." CR LF``,
  ``CR "." CR``, ``CR LF "." CR``, ``CR LF "." LF`` and friends never do: a sender
  that passes them through unchanged cannot make us see a second message. This is the
  part that closes the attack, and it holds in every mode.
* A bare CR or LF inside the content is forbidden by RFC 5321 section 2.3.8. With
  ``bare_newline="reject"`` (the default) the decoder notes it (``bare_newline_seen``)
  and keeps reading to the real end marker; the engine then refuses the message with
  ``550 5.6.0`` (5.6.0: "other or undefined media error", RFC 3463 section 3.7; we
  avoid unregistered codes). This is Postfix's ``smtpd_forbid_bare_newline = reject``
  behaviour, without Postfix's disconnect, so the client gets a clean reply.
  With ``"normalize"`` each bare CR or LF becomes CR LF in the stored content
  (Postfix's ``normalize``), and a "." after a bare LF is *not* unstuffed (it is not
  at a CR LF line start), so nothing can turn into an end marker downstream either.
* Our own client (``DotStuffer``) always sends CR LF line ends: bare CR and LF in what
  it is given become CR LF before dots are stuffed, so we never relay a smuggling
  sequence to a server that would honour it.

``LineLengthMeter`` measures text lines (RFC 5321 section 4.5.3.1.6: 1000 octets with
CR LF; the engine's limit is configurable and lenient by default).
"""

from __future__ import annotations

import re
from typing import Literal

BareNewlinePolicy = Literal["reject", "normalize"]

_END = b"\r\n.\r\n"
_BARE_OR_CRLF = re.compile(rb"\r\n|\r|\n")


def _has_bare(seg: bytes) -> bool:
    """True when ``seg`` holds a CR or LF that is not part of a CR LF pair."""
    crlf = seg.count(b"\r\n")
    return seg.count(b"\r") != crlf or seg.count(b"\n") != crlf


class DotDecoder:
    """Incremental decoder for DATA content.

    ``decode(buf)`` returns ``(content, consumed, done)``: ``content`` is unstuffed
    message bytes (CR LF line ends kept, the final CR LF before the end marker
    included), ``consumed`` how many bytes of ``buf`` were used, ``done`` whether the
    end marker was seen (then ``consumed`` counts it). Unconsumed bytes must be
    offered again, with more appended, in the next call.
    """

    def __init__(self, *, bare_newline: BareNewlinePolicy = "reject") -> None:
        self.bare_newline = bare_newline
        self.bare_newline_seen = False
        self.done = False
        self._line_start = True  # content starts at the beginning of a line

    def _emit(self, out: list[bytes], seg: bytes) -> None:
        if not seg:
            return
        if _has_bare(seg):
            self.bare_newline_seen = True
            if self.bare_newline == "normalize":
                seg = _BARE_OR_CRLF.sub(b"\r\n", seg)
        out.append(seg)

    def decode(self, buf: bytes) -> tuple[bytes, int, bool]:
        if self.done:
            return b"", 0, True
        out: list[bytes] = []
        pos = 0
        n = len(buf)
        while True:
            if self._line_start:
                if pos >= n:
                    break
                if buf[pos] == 0x2E:  # "." at the start of a line
                    if n - pos < 3:
                        break  # ".", ".\r": cannot tell yet
                    if buf[pos + 1 : pos + 3] == b"\r\n":
                        self.done = True
                        return b"".join(out), pos + 3, True
                    pos += 1  # transparency: drop the first "." (section 4.5.2)
                self._line_start = False
            i = buf.find(b"\r\n.", pos)
            if i >= 0:
                self._emit(out, buf[pos : i + 2])
                pos = i + 2
                self._line_start = True
                continue
            # No "CRLF." here: emit all but a trailing CR (it may begin one); a
            # trailing CRLF is emitted and remembered as a line start.
            if n - pos >= 2 and buf.endswith(b"\r\n"):
                self._emit(out, buf[pos:n])
                self._line_start = True
                pos = n
            elif buf.endswith(b"\r"):
                self._emit(out, buf[pos : n - 1])
                pos = n - 1
            else:
                self._emit(out, buf[pos:n])
                pos = n
            break
        return b"".join(out), pos, False


class DotStuffer:
    """Incremental encoder for a client sending DATA.

    ``encode(chunk)`` returns wire bytes: line ends made CR LF (bare CR and LF
    included, see the module docstring), a "." doubled at every line start.
    ``finish()`` returns the rest plus the end marker (adding a CR LF when the
    content did not end with one).
    """

    def __init__(self) -> None:
        self._line_start = True
        self._held_cr = False
        self._empty = True

    def encode(self, chunk: bytes) -> bytes:
        if not chunk:
            return b""
        data = (b"\r" if self._held_cr else b"") + chunk
        self._held_cr = data.endswith(b"\r")
        if self._held_cr:
            data = data[:-1]
        if not data:
            return b""
        data = _BARE_OR_CRLF.sub(b"\r\n", data)
        data = data.replace(b"\r\n.", b"\r\n..")
        if self._line_start and data.startswith(b"."):
            data = b"." + data
        self._line_start = data.endswith(b"\r\n")
        self._empty = False
        return data

    def finish(self) -> bytes:
        tail = b""
        if self._held_cr:
            tail = b"\r\n"
            self._held_cr = False
            self._line_start = True
            self._empty = False
        if not self._empty and not self._line_start:
            tail += b"\r\n"
        return tail + b".\r\n"


def dot_stuff(message: bytes) -> bytes:
    """The whole DATA payload for ``message``, end marker included."""
    enc = DotStuffer()
    return enc.encode(message) + enc.finish()


def dot_unstuff(wire: bytes) -> bytes:
    """Decode a complete DATA payload (tests, tools); raises ``ValueError`` when the
    end marker is missing or bytes follow it."""
    dec = DotDecoder(bare_newline="normalize")
    content, consumed, done = dec.decode(wire)
    if not done or consumed != len(wire):
        raise ValueError("no end of data marker at the end")
    return content


class LineLengthMeter:
    """Tracks the longest line (octets including the LF) in a stream of content.

    ``feed(seg)`` returns False once some line exceeded ``limit``; it never looks
    at a byte twice except when a segment may hide an over-long line.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.exceeded = False
        self._current = 0

    def feed(self, seg: bytes) -> bool:
        if self.exceeded or not seg:
            return not self.exceeded
        limit = self.limit
        first = seg.find(b"\n")
        if first < 0:
            self._current += len(seg)
            if self._current > limit:
                self.exceeded = True
            return not self.exceeded
        if self._current + first + 1 > limit:
            self.exceeded = True
            return False
        last = seg.rfind(b"\n")
        if last - first > limit and any(
            len(line) + 1 > limit for line in seg[first + 1 : last].split(b"\n")
        ):
            self.exceeded = True
            return False
        self._current = len(seg) - last - 1
        if self._current > limit:
            self.exceeded = True
        return not self.exceeded
