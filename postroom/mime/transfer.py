"""Content-Transfer-Encoding decoding (for FETCH BINARY) and charset decoding.

RFC 2045 section 6: 7bit / 8bit / binary are identity encodings, base64 (section 6.8)
and quoted-printable (section 6.7) are decoded; any other value is unknown, and RFC
3516 section 4.3 (BINARY) says the server then answers ``NO [UNKNOWN-CTE]``, which is
why :func:`decode_transfer` returns None for it. Decoding is lenient, as readers must
be (RFC 2045 section 6.8: characters outside the base64 alphabet are ignored).
"""

from __future__ import annotations

import binascii
import codecs
import re

_IDENTITY = frozenset({"", "7bit", "8bit", "binary"})
_B64_JUNK = re.compile(rb"[^A-Za-z0-9+/]")
# Soft line breaks (RFC 2045 section 6.7 rule 5), also with trailing white space.
_QP_SOFT = re.compile(rb"=[ \t]*\r?\n")
_QP_HEX = re.compile(rb"=([0-9A-Fa-f]{2})")


def decode_transfer(body: bytes, encoding: str | None) -> bytes | None:
    """Decode a part body given its Content-Transfer-Encoding (None = absent).

    Returns the decoded octets, or None when the encoding is not one of RFC 2045's
    (the IMAP BINARY answer is then UNKNOWN-CTE). Never raises.
    """
    enc = (encoding or "").strip().lower()
    if enc in _IDENTITY:
        return body
    if enc == "base64":
        return decode_base64(body)
    if enc == "quoted-printable":
        return decode_qp(body)
    return None


def decode_base64(body: bytes) -> bytes:
    """Lenient base64: ignore non-alphabet octets, stop at the first '=' pad."""
    pad = body.find(b"=")
    if pad >= 0:
        body = body[:pad]
    clean = _B64_JUNK.sub(b"", body)
    extra = len(clean) % 4
    if extra == 1:  # a dangling sextet carries no full octet
        clean = clean[:-1]
    elif extra:
        clean += b"=" * (4 - extra)
    try:
        return binascii.a2b_base64(clean)
    except (binascii.Error, ValueError):
        return b""


def decode_qp(body: bytes) -> bytes:
    """Quoted-printable: soft breaks removed, =XX decoded, CRLFs kept, a stray
    '=' kept as is (RFC 2045 section 6.7 note 1 recommends that)."""
    body = _QP_SOFT.sub(b"", body)
    if b"=" not in body:
        return body
    return _QP_HEX.sub(lambda m: bytes((int(m.group(1), 16),)), body)


def lookup_charset(charset: str | None) -> str | None:
    """Python codec name for a MIME charset name, None when unknown."""
    if not charset:
        return None
    name = charset.strip().strip('"').lower()
    name = name.split("*", 1)[0]  # RFC 2231 section 5 language suffix
    if name in ("us-ascii", "ascii", "ansi_x3.4-1968"):
        # Real mail labelled us-ascii is often 8-bit; UTF-8 is the better guess
        # and equals ASCII for ASCII input.
        name = "utf-8"
    elif name in ("iso-8859-1", "latin1", "latin-1"):
        name = "cp1252"  # what mail labelled Latin-1 usually is (HTML5 does the same)
    elif name in ("gb2312", "gbk"):
        name = "gb18030"
    elif name == "ks_c_5601-1987":
        name = "cp949"
    try:
        return codecs.lookup(name).name
    except (LookupError, ValueError):
        return None


def decode_text(data: bytes, charset: str | None) -> str:
    """Octets in ``charset`` -> str. Unknown or absent charset: UTF-8 when it
    decodes, else cp1252. Undecodable octets become U+FFFD. Never raises."""
    codec = lookup_charset(charset)
    if codec is not None:
        try:
            return data.decode(codec, "replace")
        except (LookupError, ValueError, TypeError):  # exotic codecs may object
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")
