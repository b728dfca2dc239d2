"""ESMTP parameters of MAIL and RCPT, and xtext.

Theory of operation: the text after the path is ``esmtp-param *(SP esmtp-param)``
(RFC 5321 section 4.1.2), each ``keyword["=" value]``. ``parse_mail_params`` and
``parse_rcpt_params`` split them, check each against the extensions the server
advertised in this session, and return typed values. Errors are ``SmtpError``:

* bad syntax of the list or of a value  -> ``501 5.5.4``
* unknown, not advertised or repeated    -> ``555 5.5.4`` (RFC 5321 section 4.2.2)

The parameters (extension, RFC):

    MAIL  SIZE=n                    SIZE, RFC 1870 section 4
          BODY=7BIT/8BITMIME        8BITMIME, RFC 6152;  BINARYMIME, RFC 3030
          SMTPUTF8                  RFC 6531 section 3.4
          RET=FULL/HDRS ENVID=xtext DSN, RFC 3461 sections 4.3, 4.4
          AUTH=xtext                RFC 4954 section 5
          REQUIRETLS                RFC 8689 section 4
    RCPT  NOTIFY=NEVER / list       DSN, RFC 3461 section 4.1
          ORCPT=addr-type;xtext     DSN, RFC 3461 section 4.2 (utf-8 type: RFC 6533)

xtext (RFC 3461 section 4): printable ASCII except ``+`` and ``=``, which, like every
other octet, travel as ``+XX`` (upper-case hex; lower case is accepted on input).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass

from postroom.smtp.codes import SmtpError, error

_KEYWORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
_ADDR_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
_HEX = "0123456789ABCDEFabcdef"

BODY_TYPES = ("7BIT", "8BITMIME", "BINARYMIME")
NOTIFY_VALUES = frozenset({"SUCCESS", "FAILURE", "DELAY"})
MAX_ENVID = 100  # RFC 3461 section 4.4
MAX_ORCPT = 500  # RFC 3461 section 4.2


@dataclass(frozen=True, slots=True)
class MailParams:
    """What the client declared in MAIL FROM. ``auth`` is the decoded AUTH= value
    (``"<>"`` included); ``None`` fields were not given."""

    size: int | None = None
    body: str | None = None
    smtputf8: bool = False
    ret: str | None = None
    envid: str | None = None
    auth: str | None = None
    requiretls: bool = False


@dataclass(frozen=True, slots=True)
class RcptParams:
    """What the client declared in RCPT TO: ``notify`` is ``{"NEVER"}`` or a subset
    of SUCCESS/FAILURE/DELAY; ``orcpt`` is ``(addr_type, decoded_address)``."""

    notify: frozenset[str] | None = None
    orcpt: tuple[str, str] | None = None


def xtext_encode(value: str) -> str:
    """Encode ``value`` (UTF-8 for non-ASCII) as xtext."""
    out: list[str] = []
    for byte in value.encode("utf-8"):
        if 33 <= byte <= 126 and byte not in (0x2B, 0x3D):  # not "+" nor "="
            out.append(chr(byte))
        else:
            out.append(f"+{byte:02X}")
    return "".join(out)


def xtext_decode(text: str, *, utf8: bool = False) -> str:
    """Decode xtext; raises ``ValueError`` on a bad ``+XX`` or a forbidden char.
    The decoded octets are read as UTF-8 (invalid sequences are an error). ``utf8``
    also lets raw non-ASCII through (RFC 6533 utf-8-addr-unitext, SMTPUTF8 only)."""
    out = bytearray()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "+":
            pair = text[i + 1 : i + 3]
            if len(pair) != 2 or any(c not in _HEX for c in pair):
                raise ValueError("bad xtext escape")
            out.append(int(pair, 16))
            i += 3
            continue
        if utf8 and ord(ch) >= 0x80:
            out += ch.encode("utf-8")
        elif not 33 <= ord(ch) <= 126 or ch == "=":
            raise ValueError("bad xtext character")
        else:
            out.append(ord(ch))
        i += 1
    return out.decode("utf-8")


def split_params(text: str, *, utf8: bool = False) -> list[tuple[str, str | None]]:
    """Split the parameter text into ``(KEYWORD, value)`` pairs, keywords upper-cased.

    esmtp-value = 1*(%d33-60 / %d62-126), plus UTF-8 when ``utf8`` (RFC 6531 3.3).
    """
    result: list[tuple[str, str | None]] = []
    for token in text.split(" "):
        if not token:
            continue  # tolerate doubled spaces
        keyword, eq, value = token.partition("=")
        if not _KEYWORD.match(keyword):
            raise error(501, "5.5.4", f"Invalid parameter: {token[:40]}")
        if eq:
            if not value or any(
                not (33 <= ord(c) <= 126) and not (utf8 and ord(c) >= 0x80) for c in value
            ):
                raise error(501, "5.5.4", f"Invalid value for {keyword.upper()}")
            result.append((keyword.upper(), value))
        else:
            result.append((keyword.upper(), None))
    return result


def _unique(pairs: list[tuple[str, str | None]]) -> None:
    seen: set[str] = set()
    for keyword, _ in pairs:
        if keyword in seen:
            raise error(555, "5.5.4", f"Duplicate parameter {keyword}")
        seen.add(keyword)


def _unknown(keyword: str) -> SmtpError:
    return error(555, "5.5.4", f"Unsupported parameter {keyword}")


def _need_value(keyword: str, value: str | None) -> str:
    if value is None:
        raise error(501, "5.5.4", f"{keyword} needs a value")
    return value


def _no_value(keyword: str, value: str | None) -> None:
    if value is not None:
        raise error(501, "5.5.4", f"{keyword} takes no value")


def parse_mail_params(text: str, extensions: Collection[str]) -> MailParams:
    """Parse MAIL FROM parameters; ``extensions`` are the EHLO keywords offered in
    this session (``SIZE``, ``8BITMIME``, ``BINARYMIME``, ``SMTPUTF8``, ``DSN``,
    ``AUTH``, ``REQUIRETLS``). Raises ``SmtpError``."""
    raw = split_params(text, utf8=True)
    _unique(raw)
    utf8 = any(k == "SMTPUTF8" for k, _ in raw) and "SMTPUTF8" in extensions
    size: int | None = None
    body: str | None = None
    smtputf8 = requiretls = False
    ret: str | None = None
    envid: str | None = None
    auth: str | None = None
    for keyword, value in raw:
        if value is not None and not value.isascii() and not utf8:
            raise error(501, "5.5.4", f"Invalid value for {keyword}")
        if keyword == "SIZE" and "SIZE" in extensions:
            v = _need_value(keyword, value)
            if not v.isdigit() or len(v) > 20:  # RFC 1870: 1*20DIGIT
                raise error(501, "5.5.4", "Invalid SIZE value")
            size = int(v)
        elif keyword == "BODY" and "8BITMIME" in extensions:
            v = _need_value(keyword, value).upper()
            if v not in BODY_TYPES or (v == "BINARYMIME" and "BINARYMIME" not in extensions):
                raise error(501, "5.5.4", "Invalid BODY value")
            body = v
        elif keyword == "SMTPUTF8" and "SMTPUTF8" in extensions:
            _no_value(keyword, value)
            smtputf8 = True
        elif keyword == "RET" and "DSN" in extensions:
            v = _need_value(keyword, value).upper()
            if v not in ("FULL", "HDRS"):
                raise error(501, "5.5.4", "Invalid RET value")
            ret = v
        elif keyword == "ENVID" and "DSN" in extensions:
            v = _need_value(keyword, value)
            if len(v) > MAX_ENVID:
                raise error(501, "5.5.4", "ENVID too long")
            try:
                envid = xtext_decode(v)
            except ValueError:
                raise error(501, "5.5.4", "Invalid ENVID value") from None
        elif keyword == "AUTH" and "AUTH" in extensions:
            v = _need_value(keyword, value)
            try:
                auth = xtext_decode(v)
            except ValueError:
                raise error(501, "5.5.4", "Invalid AUTH value") from None
        elif keyword == "REQUIRETLS" and "REQUIRETLS" in extensions:
            _no_value(keyword, value)
            requiretls = True
        else:
            raise _unknown(keyword)
    return MailParams(
        size=size,
        body=body,
        smtputf8=smtputf8,
        ret=ret,
        envid=envid,
        auth=auth,
        requiretls=requiretls,
    )


def parse_notify(value: str) -> frozenset[str]:
    """NOTIFY="NEVER" / 1#( "SUCCESS" / "FAILURE" / "DELAY" ), RFC 3461 4.1."""
    items = [v.upper() for v in value.split(",")]
    if items == ["NEVER"]:
        return frozenset(items)
    if not items or any(v not in NOTIFY_VALUES for v in items) or len(set(items)) != len(items):
        raise error(501, "5.5.4", "Invalid NOTIFY value")
    return frozenset(items)


def parse_orcpt(value: str, *, utf8: bool = False) -> tuple[str, str]:
    """ORCPT=addr-type ";" xtext, RFC 3461 section 4.2 (raw UTF-8 allowed with
    ``utf8``: RFC 6533 section 3)."""
    addr_type, semi, encoded = value.partition(";")
    if not semi or not _ADDR_TYPE.match(addr_type) or not encoded or len(value) > MAX_ORCPT:
        raise error(501, "5.5.4", "Invalid ORCPT value")
    try:
        decoded = xtext_decode(encoded, utf8=utf8)
    except ValueError:
        raise error(501, "5.5.4", "Invalid ORCPT value") from None
    return addr_type.lower(), decoded


def parse_rcpt_params(text: str, extensions: Collection[str], *, utf8: bool = False) -> RcptParams:
    """Parse RCPT TO parameters (``utf8``: the transaction uses SMTPUTF8)."""
    raw = split_params(text, utf8=utf8)
    _unique(raw)
    notify: frozenset[str] | None = None
    orcpt: tuple[str, str] | None = None
    for keyword, value in raw:
        if keyword == "NOTIFY" and "DSN" in extensions:
            notify = parse_notify(_need_value(keyword, value))
        elif keyword == "ORCPT" and "DSN" in extensions:
            orcpt = parse_orcpt(_need_value(keyword, value), utf8=utf8)
        else:
            raise _unknown(keyword)
    return RcptParams(notify=notify, orcpt=orcpt)


def format_mail_params(params: MailParams) -> str:
    """The parameter text for a client's MAIL FROM (inverse of the parser)."""
    parts: list[str] = []
    if params.size is not None:
        parts.append(f"SIZE={params.size}")
    if params.body:
        parts.append(f"BODY={params.body}")
    if params.smtputf8:
        parts.append("SMTPUTF8")
    if params.ret:
        parts.append(f"RET={params.ret}")
    if params.envid is not None:
        parts.append(f"ENVID={xtext_encode(params.envid)}")
    if params.auth is not None:
        parts.append(f"AUTH={xtext_encode(params.auth)}")
    if params.requiretls:
        parts.append("REQUIRETLS")
    return " ".join(parts)


def format_rcpt_params(params: RcptParams) -> str:
    """The parameter text for a client's RCPT TO."""
    parts: list[str] = []
    if params.notify:
        order = ["NEVER", "SUCCESS", "FAILURE", "DELAY"]
        parts.append("NOTIFY=" + ",".join(v for v in order if v in params.notify))
    if params.orcpt:
        parts.append(f"ORCPT={params.orcpt[0]};{xtext_encode(params.orcpt[1])}")
    return " ".join(parts)
