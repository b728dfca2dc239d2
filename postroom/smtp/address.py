"""Envelope addresses: RFC 5321 paths and mailboxes, with SMTPUTF8 (RFC 6531).

Theory of operation: ``parse_path`` reads one ``<...>`` path from the start of a MAIL
or RCPT argument and returns the mailbox and the rest of the line (the ESMTP
parameters). The grammar is RFC 5321 section 4.1.2:

    Path          = "<" [ A-d-l ":" ] Mailbox ">"       ; source route: parsed, ignored
    Mailbox       = Local-part "@" ( Domain / address-literal )
    Local-part    = Dot-string / Quoted-string
    address-literal = "[" ( IPv4 / "IPv6:" IPv6 / General ) "]"   ; section 4.1.3

RFC 6531 section 3.3 extends atext, qtextSMTP and sub-domain with UTF-8; the parser
always accepts UTF-8 and reports it (``Mailbox.is_ascii``) so the engine can answer
``553 5.6.7`` when the client did not ask for SMTPUTF8. U-labels are checked with IDNA
(the ``idna`` package when installed, else the standard library's IDNA 2003 codec).

Size limits are RFC 5321 section 4.5.3.1: local part 64 octets, domain 255 octets,
path 256 octets including the angle brackets.

``Mailbox`` keeps the local part unquoted; ``str(mailbox)`` gives the canonical form
(quoted only when it must be). The special recipient ``<Postmaster>`` (section 4.1.1.3)
is a mailbox with an empty domain.
"""

from __future__ import annotations

import ipaddress
import re
import types
from dataclasses import dataclass

_idna: types.ModuleType | None
try:  # IDNA 2008 + UTS 46 when available; the stdlib codec is IDNA 2003.
    import idna as _idna
except ImportError:  # pragma: no cover - depends on the environment
    _idna = None

MAX_LOCAL = 64
MAX_DOMAIN = 255
MAX_PATH = 256

# RFC 5322 atext, the ASCII part.
_ATEXT = frozenset(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~"
)
_LDH = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")
_GENERAL_TAG = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")


class AddressError(ValueError):
    """The text is not a valid path; the message says why (for the reply text)."""


@dataclass(frozen=True, slots=True)
class Mailbox:
    """``local@domain``; ``domain`` is as received (U-labels stay U-labels), or an
    address literal with its brackets, or ``""`` for the bare ``Postmaster``."""

    local: str
    domain: str

    @property
    def is_ascii(self) -> bool:
        return self.local.isascii() and self.domain.isascii()

    @property
    def ascii_domain(self) -> str:
        """The domain with U-labels turned into A-labels (for DNS), lowercased."""
        return domain_to_ascii(self.domain)

    def __str__(self) -> str:
        if not self.domain:
            return self.local
        return f"{quote_local_part(self.local)}@{self.domain}"


def _is_atext(ch: str) -> bool:
    return ord(ch) >= 0x80 or (ord(ch) < 0x80 and ord(ch) in _ATEXT)


def is_dot_string(local: str) -> bool:
    """True when ``local`` needs no quoting (RFC 5321 Dot-string, UTF-8 allowed)."""
    if not local:
        return False
    return all(atom and all(_is_atext(c) for c in atom) for atom in local.split("."))


def quote_local_part(local: str) -> str:
    """The local part as it must appear on the wire: bare when it is a Dot-string,
    else a Quoted-string with ``\\`` and ``"`` escaped (RFC 5321 section 4.1.2)."""
    if is_dot_string(local):
        return local
    escaped = local.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def domain_to_ascii(domain: str) -> str:
    """A-label form of ``domain`` (lowercased); literals and ASCII pass through."""
    if domain.startswith("[") or domain.isascii():
        return domain.lower()
    if _idna is not None:
        return str(_idna.encode(domain, uts46=True).decode("ascii")).lower()
    return domain.encode("idna").decode("ascii").lower()


def domain_to_unicode(domain: str) -> str:
    """U-label form of ``domain`` (best effort: invalid A-labels are kept)."""
    if domain.startswith("[") or "xn--" not in domain.lower():
        return domain
    try:
        if _idna is not None:
            return str(_idna.decode(domain))
        return domain.encode("ascii").decode("idna")
    except (UnicodeError, ValueError):
        return domain


def _check_u_label(label: str) -> None:
    try:
        if _idna is not None:
            _idna.encode(label, uts46=True)
        else:
            label.encode("idna")
    except (UnicodeError, ValueError) as exc:
        raise AddressError("Invalid internationalized domain name") from exc


def check_domain(domain: str) -> None:
    """Raise ``AddressError`` unless ``domain`` is RFC 5321 Domain (RFC 6531 U-labels
    allowed). Address literals are checked by ``check_address_literal``."""
    if not domain:
        raise AddressError("Empty domain")
    if len(domain.encode("utf-8")) > MAX_DOMAIN:
        raise AddressError("Domain too long")
    for label in domain.split("."):
        if not label:
            raise AddressError("Empty domain label")
        if len(label.encode("utf-8")) > 63 and label.isascii():
            raise AddressError("Domain label too long")
        if label.isascii():
            if not _LDH.match(label):
                raise AddressError("Invalid domain")
        else:
            _check_u_label(label)


def check_address_literal(literal: str) -> None:
    """``[1.2.3.4]``, ``[IPv6:...]`` or a General-address-literal (section 4.1.3)."""
    inner = literal[1:-1]
    if inner.lower().startswith("ipv6:"):
        try:
            ipaddress.IPv6Address(inner[5:])
        except ValueError as exc:
            raise AddressError("Invalid IPv6 address literal") from exc
        return
    if inner and (inner[0].isdigit()) and ":" not in inner:
        try:
            ipaddress.IPv4Address(inner)
        except ValueError as exc:
            raise AddressError("Invalid IPv4 address literal") from exc
        return
    tag, colon, content = inner.partition(":")
    if not colon or not _GENERAL_TAG.match(tag) or not content:
        raise AddressError("Invalid address literal")
    # dcontent = %d33-90 / %d94-126
    if any(not (33 <= ord(c) <= 90 or 94 <= ord(c) <= 126) for c in content):
        raise AddressError("Invalid address literal")


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, ch: str, what: str) -> None:
        if self.peek() != ch:
            raise AddressError(f"Expected {what}")
        self.pos += 1


def _read_quoted(sc: _Scanner) -> str:
    sc.expect('"', "quoted string")
    out: list[str] = []
    while True:
        ch = sc.peek()
        if ch == "":
            raise AddressError("Unterminated quoted string")
        sc.pos += 1
        if ch == '"':
            return "".join(out)
        if ch == "\\":
            nxt = sc.peek()
            # quoted-pairSMTP = %d92 %d32-126
            if not nxt or not 32 <= ord(nxt) <= 126:
                raise AddressError("Invalid quoted pair")
            out.append(nxt)
            sc.pos += 1
        elif 32 <= ord(ch) <= 126 or ord(ch) >= 0x80:
            out.append(ch)  # qtextSMTP (space allowed) / UTF8-non-ascii
        else:
            raise AddressError("Invalid character in quoted string")


def _read_dot_string(sc: _Scanner) -> str:
    start = sc.pos
    while sc.peek() and (sc.peek() == "." or _is_atext(sc.peek())):
        sc.pos += 1
    local = sc.text[start : sc.pos]
    if not is_dot_string(local):
        raise AddressError("Invalid local part")
    return local


def _read_domain_or_literal(sc: _Scanner) -> str:
    if sc.peek() == "[":
        end = sc.text.find("]", sc.pos)
        if end < 0:
            raise AddressError("Unterminated address literal")
        literal = sc.text[sc.pos : end + 1]
        sc.pos = end + 1
        check_address_literal(literal)
        return literal
    start = sc.pos
    while sc.peek() and sc.peek() not in '<>@,:;" \t[]':
        sc.pos += 1
    domain = sc.text[start : sc.pos]
    check_domain(domain)
    return domain


def _skip_source_route(sc: _Scanner) -> None:
    # A-d-l = At-domain *( "," At-domain ) ":" ; RFC 5321 section 4.1.2 / appendix C:
    # accepted for compatibility and ignored.
    while True:
        sc.expect("@", "'@' in source route")
        _read_domain_or_literal(sc)
        if sc.peek() == ",":
            sc.pos += 1
            continue
        sc.expect(":", "':' after source route")
        return


def parse_path(
    text: str, *, allow_null: bool = False, allow_postmaster: bool = False
) -> tuple[Mailbox | None, str]:
    """Parse ``<path>`` at the start of ``text``.

    Returns ``(mailbox, rest)``: ``mailbox`` is ``None`` for the null path ``<>``
    (only when ``allow_null``), ``rest`` is what follows ``>``. Raises
    ``AddressError`` for bad syntax or a path over the section 4.5.3.1 limits.
    """
    sc = _Scanner(text)
    sc.expect("<", "'<'")
    if sc.peek() == ">":
        if not allow_null:
            raise AddressError("Null path not allowed here")
        return None, text[2:]
    if sc.peek() == "@":
        _skip_source_route(sc)
    if sc.peek() == '"':
        local = _read_quoted(sc)
        quoted = True
    else:
        local = _read_dot_string(sc)
        quoted = False
    if sc.peek() == ">" and allow_postmaster and not quoted and local.lower() == "postmaster":
        sc.pos += 1
        return Mailbox(local, ""), text[sc.pos :]
    sc.expect("@", "'@'")
    domain = _read_domain_or_literal(sc)
    sc.expect(">", "'>'")
    if len(local.encode("utf-8")) > MAX_LOCAL:
        raise AddressError("Local part too long")
    mailbox = Mailbox(local, domain)
    if len(str(mailbox).encode("utf-8")) + 2 > MAX_PATH:
        raise AddressError("Path too long")
    return mailbox, text[sc.pos :]


def parse_mailbox(text: str) -> Mailbox:
    """Parse a bare ``local@domain`` (no brackets, nothing after it)."""
    mailbox, rest = parse_path(f"<{text}>")
    if rest or mailbox is None:
        raise AddressError("Invalid mailbox")
    return mailbox
