"""Decoded header text for SEARCH, and the SORT keys derived from it.

Theory of operation: SEARCH (RFC 9051 section 6.4.4) matches header strings after
decoding, and SORT (RFC 5256) and SORT=DISPLAY (RFC 5957) compare decoded keys.
:func:`search_fields` turns the raw header fields of a message into
:class:`~postroom.mime.model.SearchFields` once, at analysis time. The SORT key
functions (:func:`base_subject`, :func:`address_sort_key`, :func:`display_sort_key`)
work from the stored envelope and search fields, so SORT never reads the message.

RFC 2047 decoding is lenient: encoded words are recognised anywhere (also inside
quoted strings and without surrounding white space, as real mail needs), white space
between two adjacent encoded words is dropped (RFC 2047 section 6.2), unknown
charsets fall back to UTF-8 / cp1252. Raw 8-bit octets are read as UTF-8, else
cp1252.
"""

from __future__ import annotations

import binascii
import re
from email.utils import mktime_tz, parsedate_tz

from postroom.mime.headers import decode_value, encode_value
from postroom.mime.model import Address, Addresses, SearchFields, unfold
from postroom.mime.transfer import decode_text

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([QqBb])\?([^?]*)\?=")
_BETWEEN_WORDS = re.compile(r"(\?=)[ \t\r\n]+(=\?)")
_WS = re.compile(r"[ \t\r\n]+")


def _raw_text(value: str) -> str:
    """str with surrogate escapes (raw 8-bit) -> real text."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return decode_text(encode_value(value), None)


def _decode_word(m: re.Match[str]) -> str:
    charset, enc, text = m.group(1), m.group(2).upper(), m.group(3)
    # Raw 8-bit bytes inside an encoded word (seen in the wild) came in as UTF-8 or
    # surrogate escapes: give them back as they were (fuzz.mime_structure found this).
    raw = text.encode("utf-8", "surrogateescape")
    try:
        if enc == "B":
            raw = raw.rstrip(b"=")
            raw = binascii.a2b_base64(raw + b"=" * (-len(raw) % 4))
        else:
            raw = re.sub(
                rb"=([0-9A-Fa-f]{2})",
                lambda h: bytes((int(h.group(1), 16),)),
                raw.replace(b"_", b" "),
            )
    except (binascii.Error, ValueError):
        return m.group(0)
    return decode_text(raw, charset)


def decode_words(value: str) -> str:
    """RFC 2047 decode a raw (maybe folded) header value to text; whitespace runs
    (including folding) collapse to one space and the ends are trimmed."""
    text = _WS.sub(" ", value).strip()
    if "=?" in text:
        text = _BETWEEN_WORDS.sub(r"\1\2", text)
        text = _ENCODED_WORD.sub(_decode_word, text)
    return _raw_text(text)


def parse_date(value: str | None) -> int | None:
    """RFC 5322 section 3.3 date-time -> seconds since the epoch (UTC)."""
    if not value:
        return None
    try:
        parsed = parsedate_tz(unfold(value))
        if parsed is None:
            return None
        return int(mktime_tz(parsed))
    except (ValueError, OverflowError, TypeError, IndexError):
        return None


_MULTI = frozenset((b"from", b"to", b"cc", b"bcc"))
_SINGLE = frozenset((b"subject", b"date", b"message-id", b"in-reply-to", b"references"))


def search_fields(fields: list[tuple[bytes, bytes]]) -> SearchFields:
    """Decoded SEARCH values from (lower-case name, raw value) header fields.

    Single-valued fields take the last occurrence (as the envelope does); address
    fields join all occurrences."""
    single: dict[bytes, str] = {}
    multi: dict[bytes, list[str]] = {}
    for name, raw in fields:
        if name in _MULTI:
            multi.setdefault(name, []).append(decode_value(raw))
        elif name in _SINGLE:
            single[name] = decode_value(raw)

    def dec(name: bytes) -> str | None:
        v = single.get(name)
        return None if v is None else decode_words(v)

    def plain(name: bytes) -> str | None:
        v = single.get(name)
        return None if v is None else _raw_text(_WS.sub(" ", v).strip())

    def addrs(name: bytes) -> str | None:
        vs = multi.get(name)
        return None if vs is None else ", ".join(decode_words(v) for v in vs)

    return SearchFields(
        subject=dec(b"subject"),
        from_=addrs(b"from"),
        to=addrs(b"to"),
        cc=addrs(b"cc"),
        bcc=addrs(b"bcc"),
        date=parse_date(single.get(b"date")),
        message_id=plain(b"message-id"),
        in_reply_to=plain(b"in-reply-to"),
        references=plain(b"references"),
    )


# --- RFC 5256 section 2.1: base subject --------------------------------------------

_SUBJ_TRAILER = re.compile(r"(?:\s*\(fwd\))+\s*$|\s+$", re.IGNORECASE)
_SUBJ_BLOB = r"\[[^\[\]]*\]"
_SUBJ_LEADER = re.compile(rf"^(?:{_SUBJ_BLOB}\s*)*(?:re|fwd?)\s*(?:{_SUBJ_BLOB}\s*)?:\s*", re.I)
_SUBJ_BLOB_LEAD = re.compile(rf"^{_SUBJ_BLOB}\s*")
_SUBJ_FWD = re.compile(r"^\[fwd:(.*)\]$", re.IGNORECASE | re.DOTALL)


def base_subject(subject: str | None) -> str:
    """The RFC 5256 section 2.1 base subject of a decoded subject, case-folded
    (SORT compares with i;unicode-casemap, RFC 5051)."""
    if not subject:
        return ""
    s = _WS.sub(" ", subject).strip()  # step 1: collapse white space
    while True:
        s = _SUBJ_TRAILER.sub("", s)  # step 2: trailing "(fwd)" and blanks
        while True:  # steps 3-5
            before = s
            s = _SUBJ_LEADER.sub("", s, count=1)
            m = _SUBJ_BLOB_LEAD.match(s)
            if m and s[m.end() :]:  # step 4: drop a blob unless it is all there is
                s = s[m.end() :]
            if s == before:
                break
        m = _SUBJ_FWD.match(s)  # step 6: "[fwd: ...]"
        if not m:
            break
        s = m.group(1).strip()
    return s.casefold()


def _first_mailbox(addrs: Addresses) -> Address | None:
    for a in addrs:
        if a.host is not None:  # skip group markers
            return a
    return None


def address_sort_key(addrs: Addresses) -> str:
    """RFC 5256 section 3 FROM / TO / CC key: the local part (addr-mailbox) of the
    first address, case-folded; "" when there is none."""
    a = _first_mailbox(addrs)
    if a is None or a.mailbox is None:
        return ""
    return _raw_text(a.mailbox).casefold()


def display_sort_key(addrs: Addresses) -> str:
    """RFC 5957 section 3 DISPLAYFROM / DISPLAYTO key: the decoded display name of
    the first address, or its addr-spec when it has none; case-folded."""
    a = _first_mailbox(addrs)
    if a is None:
        return ""
    if a.name:
        name = decode_words(a.name)
        if name:
            return name.casefold()
    return _raw_text(f"{a.mailbox or ''}@{a.host or ''}").casefold()
