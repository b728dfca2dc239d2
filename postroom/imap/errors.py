"""Errors of the IMAP protocol layer.

A ``ParseError`` is the client's fault: the command could not be understood or breaks a
limit. It carries the answer the shell sends (RFC 9051 section 7.1): the status (``BAD``
for syntax, occasionally ``NO`` - e.g. ``NO [BADCHARSET ...]`` for SEARCH, RFC 9051
section 6.4.4), an optional response code and a human-readable text. The session goes on
after it.
"""

from __future__ import annotations

from typing import Literal

Status = Literal["BAD", "NO"]


class ParseError(Exception):
    """A command the server refuses to parse.

    ``tag`` is the command's tag when one was recognised (``None``: answer untagged,
    ``* BAD``); ``code`` is a response code without brackets (``"BADCHARSET (UTF-8)"``,
    ``"LIMIT"``), ``text`` the human-readable part.
    """

    def __init__(
        self,
        text: str,
        *,
        status: Status = "BAD",
        code: str | None = None,
        tag: str | None = None,
    ) -> None:
        super().__init__(text)
        self.text = text
        self.status: Status = status
        self.code = code
        self.tag = tag

    @property
    def bad(self) -> bool:
        """True when the answer is ``BAD`` (a protocol/syntax error)."""
        return self.status == "BAD"

    def with_tag(self, tag: str | None) -> ParseError:
        """The same error, for the command with this tag."""
        if self.tag == tag:
            return self
        return ParseError(self.text, status=self.status, code=self.code, tag=tag)

    def __repr__(self) -> str:
        return f"ParseError({self.text!r}, status={self.status!r}, code={self.code!r}, tag={self.tag!r})"


class ConnectionClosed(Exception):
    """The client went away (or the connection broke) while the server waited for it.
    Not a protocol error: the session simply ends, quietly."""


class ShuttingDown(ConnectionClosed):
    """The server is stopping: the session says BYE (RFC 9051 section 7.1.5) and ends."""
