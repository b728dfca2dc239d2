"""SMTP replies: the three-digit code, the enhanced status code and the text.

Theory of operation: every answer the server gives (and every answer the relay client
reads) is a ``Reply``. Serialising handles multiline replies (RFC 5321 section 4.2.1:
``250-first`` ... ``250 last``) and repeats the enhanced status code on every line
(RFC 2034 section 4). Replies whose class has no enhanced status code (``220``
greeting, ``354``, ``334``, EHLO lines; RFC 3463 section 2 defines classes 2, 4 and 5
only) simply carry ``enhanced=None``.

``SmtpError`` is how engine code says "answer this and stop": it carries the reply,
and whether the reply is temporary (4xx) or permanent (5xx) is the reply's own code.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_ENHANCED_RE = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")


@dataclass(frozen=True, slots=True)
class Reply:
    """One SMTP reply. ``text`` may hold several lines separated by ``\\n``."""

    code: int
    enhanced: str | None
    text: str = ""

    def __post_init__(self) -> None:
        if not 200 <= self.code <= 599:
            raise ValueError(f"reply code out of range: {self.code}")
        if self.enhanced is not None and not _ENHANCED_RE.match(self.enhanced):
            raise ValueError(f"bad enhanced status code: {self.enhanced!r}")

    @property
    def positive(self) -> bool:
        """2xx or 3xx (RFC 5321 section 4.2.1)."""
        return self.code < 400

    @property
    def transient(self) -> bool:
        """4xx: the client should try again later."""
        return 400 <= self.code < 500

    @property
    def permanent(self) -> bool:
        """5xx: the client must not repeat the same request."""
        return self.code >= 500

    def lines(self) -> list[str]:
        """The text lines, CR and LF removed (a reply can never inject a line)."""
        parts = self.text.replace("\r", "").split("\n")
        return parts or [""]

    def to_bytes(self, *, enhanced: bool = True) -> bytes:
        """Wire form, CRLF-terminated; ``enhanced=False`` drops the status code."""
        prefix = f"{self.enhanced} " if (enhanced and self.enhanced) else ""
        lines = self.lines()
        last = len(lines) - 1
        # An empty text still gets its space: "334 " is the empty SASL challenge
        # (RFC 4954 section 4).
        out = [
            f"{self.code}{' ' if n == last else '-'}{prefix}{line}\r\n"
            for n, line in enumerate(lines)
        ]
        return "".join(out).encode("utf-8")

    def __str__(self) -> str:
        return self.to_bytes().decode("utf-8", "replace").rstrip("\r\n")

    @classmethod
    def parse(cls, lines: Sequence[bytes]) -> Reply:
        """Parse the lines of one (possibly multiline) reply, CRLF already removed.

        Used by the client side; raises ``ValueError`` for malformed input. The
        enhanced code is recognised when the first line carries one.
        """
        if not lines:
            raise ValueError("empty reply")
        code: int | None = None
        texts: list[str] = []
        enhanced: str | None = None
        for n, raw in enumerate(lines):
            line = raw.decode("utf-8", "replace")
            if len(line) < 3 or not line[:3].isdigit():
                raise ValueError(f"malformed reply line: {line!r}")
            this = int(line[:3])
            if code is None:
                code = this
            elif this != code:
                raise ValueError("reply code changes inside a multiline reply")
            sep = line[3:4]
            if sep not in ("", " ", "-") or (sep == "-" and n == len(lines) - 1):
                raise ValueError(f"malformed reply line: {line!r}")
            text = line[4:]
            word, _, rest = text.partition(" ")
            if n == 0 and _ENHANCED_RE.match(word) and word[0] == str(this)[0]:
                enhanced = word
            if enhanced is not None and word == enhanced:
                text = rest
            texts.append(text)
        assert code is not None
        return cls(code, enhanced, "\n".join(texts))


class SmtpError(Exception):
    """Raised inside the engine (and by parsers) to answer ``reply`` and move on."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(str(reply))
        self.reply = reply


def error(code: int, enhanced: str, text: str) -> SmtpError:
    """Shorthand: ``raise error(501, "5.5.4", "Syntax error")``."""
    return SmtpError(Reply(code, enhanced, text))


# Replies the engine uses in more than one place. RFC 5321 section 4.2.2 lists the
# codes; RFC 3463 / the IANA registry the enhanced ones.
OK = Reply(250, "2.0.0", "OK")
BYE = Reply(221, "2.0.0", "Bye")
SYNTAX_ERROR = Reply(501, "5.5.4", "Syntax error in parameters or arguments")
UNKNOWN_COMMAND = Reply(500, "5.5.1", "Command unrecognized")
BAD_SEQUENCE = Reply(503, "5.5.1", "Bad sequence of commands")
LINE_TOO_LONG = Reply(500, "5.5.2", "Line too long")
TOO_MANY_ERRORS = Reply(421, "4.7.0", "Too many errors, closing connection")
TIMEOUT = Reply(421, "4.4.2", "Timeout, closing connection")
SIZE_EXCEEDED = Reply(552, "5.3.4", "Message size exceeds fixed maximum message size")
TOO_MANY_RECIPIENTS = Reply(452, "4.5.3", "Too many recipients")
LOCAL_ERROR = Reply(451, "4.3.0", "Local error in processing, try again later")
AUTH_REQUIRED = Reply(530, "5.7.0", "Authentication required")
AUTH_INVALID = Reply(535, "5.7.8", "Authentication credentials invalid")
AUTH_SUCCEEDED = Reply(235, "2.7.0", "Authentication successful")
AUTH_CANCELLED = Reply(501, "5.0.0", "Authentication cancelled")
