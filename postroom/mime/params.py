"""Content-Type, Content-Disposition, Content-Language and Content-Transfer-Encoding
values, parsed the way IMAP reports them.

Theory of operation: the grammar is RFC 2045 section 5.1 (``type "/" subtype *(";"
parameter)``), RFC 2183 section 2 (disposition), RFC 3282 section 2 (language list)
and RFC 2045 section 6.1 (encoding). Tokens and parameter names keep their case.
What BODYSTRUCTURE shows for odd input follows Dovecot 2.3, the reference server
(see ``tests/mime/fixtures/dovecot_crafted.json``):

* Content-Type must be ``token "/" token`` followed by nothing or ``;``; anything
  else is "invalid" and reported as empty type and subtype with no parameters. A
  lone ``token`` (``Content-Type: text``) is that type with an empty subtype.
* Parameters: a parameter that does not parse (no ``=``, unterminated quoted
  string, junk after a value) is dropped together with everything up to the next
  ``;`` after the point of error. Empty names and values are kept; duplicates are
  kept in order. A value starting with ``=?`` (an RFC 2047 word where RFC 2045
  wants a token) is read up to white space or ``;``.
* RFC 2231 (section 3 continuations, section 4 charset'language'%XX values): the
  ``name*N`` / ``name*N*`` / ``name*`` parameters are *joined but not decoded*,
  which is what Dovecot returns and what IMAP clients decode themselves.
  Sorted by name then index, a complete sequence 0, 1, ... becomes one parameter:
  ``name`` with the concatenated values when no segment is extended, else
  ``name*`` with the concatenation, where a non-extended segment has ``%`` escaped
  as ``%25`` (and a leading non-extended segment gets an empty ``''`` charset
  prefix), so the result is one valid extended value. A sequence with a gap is
  returned segment by segment as ``name*N`` / ``name*N*``. These joined
  parameters come after the plain ones. (Dovecot 2.3.19 mislabels a lone
  ``name*`` that follows an indexed one in the same header as ``name*N*`` with
  the previous index; we do not copy that bug.)
"""

from __future__ import annotations

import re

from postroom.mime.lexer import Lexer
from postroom.mime.model import Params

_RFC2231_SUFFIX = re.compile(r"(\d{0,9})(\*?)")
_WORD_END = frozenset(" \t\r\n;")


def parse_content_type(value: str) -> tuple[str, str, Params]:
    """Return (type, subtype, params); ("", "", ()) when the value is invalid."""
    lx = Lexer(value)
    lx.skip_cfws()
    ctype = lx.token()
    if not ctype:
        return "", "", ()
    lx.skip_cfws()
    if lx.eof:
        return ctype, "", ()
    if lx.peek() != "/":
        return "", "", ()
    lx.i += 1
    lx.skip_cfws()
    subtype = lx.token()
    if not subtype:
        return "", "", ()
    lx.skip_cfws()
    if not lx.eof and lx.peek() != ";":
        return "", "", ()
    return ctype, subtype, parse_params(lx)


def parse_disposition(value: str) -> tuple[str, Params]:
    """Return (disposition type, params); the type may be empty."""
    lx = Lexer(value)
    lx.skip_cfws()
    dtype = lx.token()
    lx.skip_cfws()
    return dtype, parse_params(lx)


def parse_language(value: str) -> tuple[str, ...] | None:
    """Content-Language: comma-separated tokens up to the first bad element;
    None when there is none."""
    lx = Lexer(value)
    langs: list[str] = []
    lx.skip_cfws()
    while not lx.eof:
        tag = lx.token()
        if not tag:
            break
        langs.append(tag)
        lx.skip_cfws()
        if lx.peek() != ",":
            break
        lx.i += 1
        lx.skip_cfws()
    return tuple(langs) or None


def parse_encoding(value: str) -> str | None:
    """Content-Transfer-Encoding token as written; None when there is none or
    something else follows it (``8 bit``), as Dovecot does."""
    lx = Lexer(value)
    lx.skip_cfws()
    token = lx.token()
    lx.skip_cfws()
    return token if token and lx.eof else None


def parse_params(lx: Lexer) -> Params:
    """Read ``*(";" attribute "=" value)`` from the lexer's position, then apply
    the RFC 2231 joining described in the module docstring."""
    raw: list[tuple[str, str]] = []
    s = lx.s
    while not lx.eof:
        ok = False
        if lx.peek() == ";":
            lx.i += 1
            lx.skip_cfws()
            key = lx.token()
            lx.skip_cfws()
            if lx.peek() == "=":
                lx.i += 1
                lx.skip_cfws()
                val: str | None
                if lx.peek() == '"':
                    val = lx.quoted()
                elif s.startswith("=?", lx.i):
                    start = lx.i
                    while lx.i < lx.n and s[lx.i] not in _WORD_END:
                        lx.i += 1
                    val = s[start : lx.i]
                else:
                    val = lx.token()
                if val is not None:
                    raw.append((key, val))
                    lx.skip_cfws()
                    ok = True
        if not ok:
            # resynchronise at the next ';' after the point of error
            nxt = s.find(";", lx.i + 1)
            if nxt < 0:
                break
            lx.i = nxt
    return _join_rfc2231(raw)


def _join_rfc2231(raw: list[tuple[str, str]]) -> Params:
    plain: list[tuple[str, str]] = []
    segments: list[tuple[str, int, bool, str, int]] = []  # key, index, extended, value, order
    for order, (key, value) in enumerate(raw):
        star = key.find("*")
        m = _RFC2231_SUFFIX.fullmatch(key, star + 1) if star > 0 else None
        if m is None:
            plain.append((key, value))
            continue
        digits, ext = m.group(1), m.group(2)
        extended = bool(ext) or not digits
        segments.append((key[:star], int(digits or 0), extended, value, order))
    if not segments:
        return tuple(plain)
    segments.sort(key=lambda seg: (seg[0].lower(), seg[1], seg[4]))
    out = list(plain)
    i = 0
    while i < len(segments):
        name = segments[i][0]
        j = i
        while j < len(segments) and segments[j][0].lower() == name.lower():
            j += 1
        group = segments[i:j]
        i = j
        if any(seg[1] != n for n, seg in enumerate(group)):
            for key, idx, extended, value, _ in group:
                out.append((f"{key}*{idx}{'*' if extended else ''}", value))
            continue
        have_ext = any(seg[2] for seg in group)
        if not have_ext:
            out.append((name, "".join(seg[3] for seg in group)))
            continue
        joined = [] if group[0][2] else ["''"]
        for _, _, extended, value, _ in group:
            joined.append(value if extended else value.replace("%", "%25"))
        out.append((name + "*", "".join(joined)))
    return tuple(out)
