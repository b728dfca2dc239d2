"""Address lists for ENVELOPE: RFC 5322 section 3.4 with Dovecot's error recovery.

Theory of operation: :func:`parse_address_list` reads one unfolded-or-not header
value (From, To, ...) into :class:`~postroom.mime.model.Address` tuples. The grammar
is RFC 5322 section 3.4 (mailbox / group, name-addr / addr-spec) plus the obsolete
forms of section 4.4 that real mail uses (routes ``<@a,@b:user@host>``, comments as
display names, CFWS around dots in domains). Where the input is broken, the result
follows what Dovecot 2.3 answers, since that is what IMAP clients are used to
(recorded in ``tests/mime/fixtures/dovecot_crafted.json``):

* a missing local part or domain becomes ``MISSING_MAILBOX`` / ``MISSING_DOMAIN``;
  an angle address without its closing ``>`` gets the host ``SYNTAX_ERROR``;
* an empty list element (``a@b,,c@d``) gives an all-missing address, a trailing
  comma gives nothing;
* a quoted string or several words without ``@`` are a display name with no address
  (``"only name"``), a single bare word is a local part (``To: user``);
* when something other than ``,`` follows an address, the rest is dropped;
* ``a@b (Comment)``: the last comment is the display name;
* groups (``name: a@b, c@d;``) give the group start and end markers of
  RFC 9051 section 7.5.2, also when the ``;`` is missing.
"""

from __future__ import annotations

from postroom.mime.lexer import Lexer
from postroom.mime.model import Address

MISSING_MAILBOX = "MISSING_MAILBOX"
MISSING_DOMAIN = "MISSING_DOMAIN"
SYNTAX_ERROR = "SYNTAX_ERROR"

_GROUP_END = Address(None, None, None, None)


def parse_address_list(value: str) -> list[Address]:
    """Parse an address-list header value; never raises."""
    lx = Lexer(value)
    out: list[Address] = []
    guard = 0
    while guard < 100_000:
        guard += 1
        lx.skip_cfws()
        if lx.eof:
            break
        _address(lx, out)
        lx.skip_cfws()
        if lx.peek() != ",":
            break
        lx.i += 1
    return out


def _address(lx: Lexer, out: list[Address]) -> None:
    """address = mailbox / group (RFC 5322 section 3.4)."""
    start = lx.i
    name = lx.phrase()
    lx.skip_cfws()
    if name is not None and lx.peek() == ":":
        lx.i += 1
        out.append(Address(None, None, name, None))
        while True:
            lx.skip_cfws()
            if lx.eof:
                break
            if lx.peek() == ";":
                lx.i += 1
                break
            _mailbox(lx, out)
            lx.skip_cfws()
            if lx.peek() == ",":
                lx.i += 1
                continue
            if lx.peek() == ";":
                lx.i += 1
            break
        out.append(_GROUP_END)
        return
    lx.i = start
    _mailbox(lx, out)


def _finish(name: str | None, adl: str | None, mailbox: str, host: str) -> Address:
    return Address(name or None, adl, mailbox or MISSING_MAILBOX, host or MISSING_DOMAIN)


def _mailbox(lx: Lexer, out: list[Address]) -> None:
    """mailbox = name-addr / addr-spec."""
    start = lx.i
    name = lx.phrase()
    lx.skip_cfws()
    if name is not None and lx.peek() == "<":
        adl, local, domain, ok = _angle_addr(lx)
        out.append(_finish(name, adl, local, domain if ok else SYNTAX_ERROR))
        return
    # addr-spec = local-part "@" domain, maybe followed by a comment as name
    lx.i = start
    lx.last_comment = None
    quoted = lx.peek() == '"'
    local = _local_part(lx)
    lx.skip_cfws()
    domain = ""
    at = lx.peek() == "@"
    if at:
        lx.i += 1
        domain = _domain(lx)
        lx.skip_cfws()
    display: str | None = None
    if lx.last_comment:
        display = lx.last_comment
    elif not at:
        # A single bare word is a local part; more words, or a quoted string,
        # are a display name without an address.
        rest = lx.phrase() or ""
        if rest:
            display = f"{local} {rest}"
            local = ""
        elif quoted:
            display = local
            local = ""
    out.append(_finish(display, None, local, domain))


def _angle_addr(lx: Lexer) -> tuple[str | None, str, str, bool]:
    """angle-addr with optional obs-route; returns (adl, local, domain, closed)."""
    lx.i += 1  # '<'
    lx.skip_cfws()
    adl: str | None = None
    if lx.peek() == "@":
        routes: list[str] = []
        while lx.peek() == "@":
            lx.i += 1
            routes.append("@" + _domain(lx))
            lx.skip_cfws()
            while lx.peek() == ",":
                lx.i += 1
                lx.skip_cfws()
        adl = ",".join(routes)
        if lx.peek() == ":":
            lx.i += 1
        lx.skip_cfws()
    if lx.peek() == ">":
        lx.i += 1
        return adl, "", "", True
    local = _local_part(lx)
    lx.skip_cfws()
    domain = ""
    if lx.peek() == "@":
        lx.i += 1
        domain = _domain(lx)
        lx.skip_cfws()
    if lx.peek() != ">":
        return adl, local, domain, False
    lx.i += 1
    return adl, local, domain, True


def _local_part(lx: Lexer) -> str:
    """local-part: words separated by dots; empty words and CFWS before a dot
    tolerated (obs-local-part, RFC 5322 section 4.4)."""
    parts: list[str] = []
    while True:
        if lx.peek() == '"':
            q = lx.quoted()
            if q is None:
                return "".join(parts)
            parts.append(q)
        else:
            parts.append(lx.atom())
        lx.skip_cfws()
        if lx.peek() != ".":
            return "".join(parts)
        parts.append(".")
        lx.i += 1


def _domain(lx: Lexer) -> str:
    """domain = dot-atom / domain-literal (CFWS around dots allowed); "" when
    invalid (empty label, trailing dot, unterminated literal)."""
    lx.skip_cfws()
    if lx.peek() == "[":
        end = lx.s.find("]", lx.i)
        if end < 0:
            lx.i = lx.n
            return ""
        text = lx.s[lx.i : end + 1]
        lx.i = end + 1
        return text.replace("\r", "").replace("\n", "")
    labels: list[str] = []
    while True:
        label = lx.atom()
        if not label:
            return ""
        labels.append(label)
        save = lx.i
        lx.skip_cfws()
        if lx.peek() != ".":
            lx.i = save
            return ".".join(labels)
        lx.i += 1
        lx.skip_cfws()
