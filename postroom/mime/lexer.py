"""A forgiving tokenizer for structured header field values.

Theory of operation: header values arrive here as ``str`` decoded from the raw octets
with UTF-8 + ``surrogateescape`` (so any byte survives and re-encodes to itself, see
``headers.py``). :class:`Lexer` walks such a string with an index and offers the
lexical pieces of RFC 5322 section 3.2 (CFWS, quoted-string, atom, phrase, dot-atom)
and of RFC 2045 section 5.1 (MIME token, tspecials). Folding CRLFs count as white
space (RFC 5322 section 2.2.3 unfolding). Nothing here raises: a malformed construct
yields what could be read and leaves the index where reading stopped, so that the
callers (``address.py``, ``params.py``) can apply the error recovery that Dovecot
applies, which is what IMAP clients see from the reference server.

Octets >= 0x80 (raw UTF-8 or any 8-bit charset; they appear here as non-ASCII or
surrogate characters) are accepted inside atoms and tokens, as Dovecot does
(RFC 6532 section 3.2 allows UTF-8 there).
"""

from __future__ import annotations

# RFC 2045 section 5.1: tspecials, which end a MIME token.
_TSPECIALS = frozenset('()<>@,;:\\"/[]?=')
# RFC 5322 section 3.2.3: specials, which end an atom.
_SPECIALS = frozenset('()<>[]:;@\\,."')
_WSP = frozenset(" \t\r\n")


def _is_ctl_or_space(ch: str) -> bool:
    o = ord(ch)
    return o <= 0x20 or o == 0x7F


class Lexer:
    """Index-based reader over one header field value."""

    __slots__ = ("i", "last_comment", "n", "s")

    def __init__(self, s: str) -> None:
        self.s = s
        self.i = 0
        self.n = len(s)
        # The text of the most recent comment skipped by skip_cfws(); RFC 5322
        # section 3.4 obsolete usage puts a display name there ("a@b (Name)").
        self.last_comment: str | None = None

    @property
    def eof(self) -> bool:
        return self.i >= self.n

    def peek(self) -> str:
        return self.s[self.i] if self.i < self.n else ""

    def skip_cfws(self) -> None:
        """Skip white space, folding and comments (RFC 5322 section 3.2.2)."""
        s, n = self.s, self.n
        while self.i < n:
            ch = s[self.i]
            if ch in _WSP:
                self.i += 1
            elif ch == "(":
                self.last_comment = self._comment()
            else:
                return

    def _comment(self) -> str:
        """Read a (possibly nested) comment at '('; return its unescaped text."""
        s, n = self.s, self.n
        depth = 0
        out: list[str] = []
        while self.i < n:
            ch = s[self.i]
            self.i += 1
            if ch == "\\" and self.i < n:
                out.append(s[self.i])
                self.i += 1
                continue
            if ch == "(":
                depth += 1
                if depth == 1:
                    continue
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    break
            if ch not in "\r\n":
                out.append(ch)
        return "".join(out)

    def quoted(self) -> str | None:
        """Read a quoted-string at '"' (RFC 5322 section 3.2.4), unescaping
        quoted-pairs and dropping folding CRLFs. Returns None when the closing
        quote is missing (the index is then at the end)."""
        s, n = self.s, self.n
        self.i += 1
        out: list[str] = []
        start = self.i
        while self.i < n:
            ch = s[self.i]
            if ch == '"':
                out.append(s[start : self.i])
                self.i += 1
                return "".join(out)
            if ch == "\\" and self.i + 1 < n:
                out.append(s[start : self.i])
                out.append(s[self.i + 1])
                self.i += 2
                start = self.i
                continue
            if ch in "\r\n":
                out.append(s[start : self.i])
                self.i += 1
                start = self.i
                continue
            self.i += 1
        return None

    def token(self) -> str:
        """Read a MIME token (RFC 2045 section 5.1); may be empty."""
        s, n = self.s, self.n
        start = self.i
        while self.i < n:
            ch = s[self.i]
            if ch in _TSPECIALS or _is_ctl_or_space(ch):
                break
            self.i += 1
        return s[start : self.i]

    def atom(self, allow_dot: bool = False) -> str:
        """Read an atom (RFC 5322 section 3.2.3 atext run); may be empty.
        ``allow_dot`` accepts '.' inside, as obs-phrase does (section 4.1)."""
        s, n = self.s, self.n
        start = self.i
        while self.i < n:
            ch = s[self.i]
            if _is_ctl_or_space(ch) or (ch in _SPECIALS and not (allow_dot and ch == ".")):
                break
            self.i += 1
        return s[start : self.i]

    def phrase(self) -> str | None:
        """Read a phrase: words (atoms, '.', quoted-strings) joined by one space.

        Returns "" when no word is present and None when a quoted-string is not
        terminated (RFC 5322 section 3.2.5 phrase, section 4.1 obs-phrase)."""
        words: list[str] = []
        while True:
            self.skip_cfws()
            ch = self.peek()
            if ch == '"':
                q = self.quoted()
                if q is None:
                    return None
                words.append(q)
                continue
            word = self.atom(allow_dot=True)
            if not word:
                break
            words.append(word)
        return " ".join(words)
