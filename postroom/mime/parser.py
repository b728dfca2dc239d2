"""Parse-once MIME analysis of a stored message.

Theory of operation: :func:`analyze` reads the message octets once, top-down, and
returns a :class:`~postroom.mime.model.MessageInfo`. No email object tree is built:
the parser only records offsets into the stored octets plus the few header fields
IMAP needs, so memory stays proportional to the number of parts, not to the size.

The octets are expected to have CRLF line endings (the store normalises with
:func:`~postroom.mime.crlf.normalize_crlf` on delivery). Bare LF does not break the
parser, it just isn't a line end: an LF-only message reads as one long header.

Structure (RFC 2045, RFC 2046), with Dovecot 2.3's answers for the odd cases
(``tests/mime/test_mime_dovecot.py`` compares every offset with it):

* An entity is a header block, ended by the first empty line (RFC 5322 section
  2.1), then a body. Inside a multipart, the entity ends where the next boundary
  delimiter line of *any* enclosing multipart starts.
* The CRLF before a delimiter line belongs to the delimiter (RFC 2046 section
  5.1.1), so a body that runs into a delimiter ends before it. When that CRLF
  ends a header line instead (a delimiter inside a header block, or right after
  its blank line), the header is cut before it and the body is empty; the
  enclosing parts still count the CRLF. Likewise a multipart whose close
  delimiter is followed directly by an enclosing delimiter (no epilogue) keeps
  the close delimiter's CRLF.
* A delimiter line is a line starting with ``--`` + boundary. Like Dovecot, the
  boundary is matched as a prefix (``--abcdef`` is a delimiter for ``abc``), only
  its first :data:`BOUNDARY_MATCH_LEN` octets count, and when several enclosing
  boundaries match, the longest wins (the innermost on a tie), so nested
  boundaries that are prefixes of each other work. ``--`` right after the
  boundary makes it the close delimiter; the rest of the line is ignored.
* A multipart's body runs from its header to the end of its own entity: preamble,
  parts, close delimiter and epilogue. Lines after the close delimiter are
  epilogue until a delimiter of an enclosing multipart. A missing close delimiter
  means the last part runs to the end of the enclosing entity (or message).
* A multipart without a usable boundary, or whose boundary never occurs, gets one
  empty text/plain child, so that IMAP's grammar (a multipart has at least one
  part) holds; Dovecot does the same.
* message/rfc822 bodies are parsed as messages whatever their transfer encoding
  (RFC 2046 section 5.2.1 forbids encoding them; Dovecot parses them anyway).
  Children of multipart/digest default to message/rfc822 (RFC 2046 section 5.1.5).
* Nesting deeper than :data:`MAX_DEPTH`, or more than :data:`MAX_PARTS` parts, is
  not descended into: such a multipart or message becomes an opaque leaf.

Robustness: anything the parser cannot make sense of ends up as a leaf or as
preamble/epilogue; offsets always satisfy ``0 <= header_start <= body_start <=
body_end <= size``. :func:`analyze` never raises; on an internal error it falls back
to a single text/plain leaf covering the message, which is still served byte for
byte.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

from postroom.mime.address import parse_address_list
from postroom.mime.headers import decode_value, encode_value, split_fields
from postroom.mime.mapped import MappedBytes
from postroom.mime.model import Address, Envelope, MessageInfo, Params, Part, PartKind
from postroom.mime.params import (
    parse_content_type,
    parse_disposition,
    parse_encoding,
    parse_language,
)
from postroom.mime.preview import has_attachment, make_preview
from postroom.mime.search import search_fields

log = logging.getLogger("postroom.mime")

MAX_DEPTH = 99  # entities nested at most 100 deep, counting the message (as Dovecot)
MAX_PARTS = 10_000
# Dovecot compares only this many octets of a boundary (RFC 2046 section 5.1.1
# allows 70); longer boundaries that share a prefix this long are the same one.
BOUNDARY_MATCH_LEN = 80


class _Delim(NamedTuple):
    line_start: int  # offset of the "--" that starts the delimiter line
    level: int  # index into the boundary stack (0 = outermost)
    close: bool  # close delimiter ("--boundary--")
    next: int  # offset of the line after the delimiter line


class _Content(NamedTuple):
    type: str
    subtype: str
    given: bool
    params: Params
    id: str | None
    description: str | None
    encoding: str | None
    md5: str | None
    disposition: str | None
    disposition_params: Params
    language: tuple[str, ...] | None
    location: str | None


_ADDRESS_FIELDS = {
    b"from": "from_",
    b"sender": "sender",
    b"reply-to": "reply_to",
    b"to": "to",
    b"cc": "cc",
    b"bcc": "bcc",
}
_STRING_FIELDS = {
    b"date": "date",
    b"subject": "subject",
    b"in-reply-to": "in_reply_to",
    b"message-id": "message_id",
}


def _envelope(fields: list[tuple[bytes, bytes]]) -> Envelope:
    """RFC 9051 section 7.5.2 envelope. Like Dovecot: for repeated headers the
    last string value wins and address lists are concatenated."""
    strings: dict[str, str] = {}
    lists: dict[str, list[Address]] = {}
    for name, raw in fields:
        attr = _STRING_FIELDS.get(name)
        if attr is not None:
            strings[attr] = decode_value(raw)
            continue
        attr = _ADDRESS_FIELDS.get(name)
        if attr is not None:
            lists.setdefault(attr, []).extend(parse_address_list(decode_value(raw)))
    return Envelope(
        **strings,  # type: ignore[arg-type]
        **{k: tuple(v) for k, v in lists.items()},  # type: ignore[arg-type]
    )


def _content(fields: list[tuple[bytes, bytes]], digest: bool) -> _Content:
    """The Content-* fields of one entity; the first occurrence of each wins."""
    found: dict[bytes, bytes] = {}
    for name, raw in fields:
        if name.startswith(b"content-") and name not in found:
            found[name] = raw
    ct = found.get(b"content-type")
    params: Params
    if ct is None:
        ctype, subtype, params = ("message", "rfc822", ()) if digest else ("text", "plain", ())
    else:
        ctype, subtype, params = parse_content_type(decode_value(ct))
    disp = found.get(b"content-disposition")
    dtype: str | None = None
    dparams: Params = ()
    if disp is not None:
        dtype, dparams = parse_disposition(decode_value(disp))
    lang = found.get(b"content-language")
    cte = found.get(b"content-transfer-encoding")

    def text(name: bytes) -> str | None:
        raw = found.get(name)
        return None if raw is None else decode_value(raw)

    return _Content(
        type=ctype,
        subtype=subtype,
        given=ct is not None,
        params=params,
        id=text(b"content-id"),
        description=text(b"content-description"),
        encoding=None if cte is None else parse_encoding(decode_value(cte)),
        md5=text(b"content-md5"),
        disposition=dtype,
        disposition_params=dparams,
        language=None if lang is None else parse_language(decode_value(lang)),
        location=text(b"content-location"),
    )


def _empty_part(pos: int, envelope: Envelope | None = None) -> Part:
    """A zero-length text/plain entity at ``pos`` (stand-in for a missing one)."""
    return Part(pos, pos, pos, lines=0, envelope=envelope)


def _delimiter(boundary: str) -> bytes:
    return b"--" + encode_value(boundary)[:BOUNDARY_MATCH_LEN]


def _first_param(params: Params, name: str) -> str | None:
    for key, value in params:
        if key.lower() == name:
            return value
    return None


class _Analyzer:
    """One pass over one message; see the module docstring."""

    def __init__(self, data: bytes | MappedBytes) -> None:
        self.data = data
        self.n = len(data)
        self.parts = 0
        self.root_fields: list[tuple[bytes, bytes]] = []

    def match(self, ls: int, bounds: tuple[bytes, ...]) -> _Delim | None:
        """The delimiter starting at line start ``ls``, if any (longest match)."""
        data = self.data
        best = -1
        best_len = -1
        for level, b in enumerate(bounds):
            if len(b) >= best_len and data.startswith(b, ls):
                best, best_len = level, len(b)
        if best < 0:
            return None
        after = ls + best_len
        eol = data.find(b"\r\n", after)
        return _Delim(ls, best, data.startswith(b"--", after), self.n if eol < 0 else eol + 2)

    def find_delim(self, pos: int, bounds: tuple[bytes, ...], limit: int = -1) -> _Delim | None:
        """The first delimiter line starting at or after line start ``pos`` (and
        at or before ``limit`` when given)."""
        if not bounds:
            return None
        data = self.data
        end = self.n if limit < 0 else min(self.n, limit + 2)
        if data.startswith(b"--", pos) and (limit < 0 or pos <= limit):
            m = self.match(pos, bounds)
            if m is not None:
                return m
        p = data.find(b"\r\n--", pos, end)
        while p >= 0:
            m = self.match(p + 2, bounds)
            if m is not None:
                return m
            p = data.find(b"\r\n--", p + 2, end)
        return None

    def entity(
        self, start: int, bounds: tuple[bytes, ...], depth: int, digest: bool, is_message: bool
    ) -> tuple[Part, _Delim | None, int]:
        """Parse the entity at ``start``; return it, the delimiter that ended it
        (None at the end of the message) and where it ends for its parent:
        before the CRLF preceding that delimiter when the CRLF is body content,
        at the delimiter when the CRLF ended a header or delimiter line."""
        data, n = self.data, self.n
        self.parts += 1
        if data.startswith(b"\r\n", start):
            hdr_end = start + 2
        else:
            k = data.find(b"\r\n\r\n", start)
            hdr_end = n if k < 0 else k + 4
        # A delimiter line inside the header block ends the entity there.
        delim = self.find_delim(start, bounds, hdr_end - 1) if bounds else None
        empty = delim is not None
        if delim is not None:
            hdr_end = max(start, delim.line_start - 2)
        fields = split_fields(data[start:hdr_end]) if hdr_end > start else []
        if depth == 0:
            self.root_fields = fields
        c = _content(fields, digest)
        ltype = c.type.lower()
        kind = PartKind.LEAF
        if depth < MAX_DEPTH and self.parts < MAX_PARTS:
            if ltype == "multipart" and c.subtype:
                kind = PartKind.MULTIPART
            elif ltype == "message" and c.subtype.lower() == "rfc822":
                kind = PartKind.MESSAGE
        boundary = _first_param(c.params, "boundary") if kind == PartKind.MULTIPART else None
        if not empty and bounds and data.startswith(b"--", hdr_end):
            # An enclosing delimiter right after the blank line: empty body, and
            # the blank line's CRLF belongs to the delimiter. (A multipart's own
            # boundary there just means an empty preamble.)
            own = () if boundary is None else (_delimiter(boundary),)
            m = self.match(hdr_end, (*bounds, *own))
            if m is not None and m.level < len(bounds):
                delim, empty = m, True
                hdr_end = max(start, hdr_end - 2)
        body_start = hdr_end
        children: tuple[Part, ...] = ()
        message: Part | None = None
        lines: int | None = None
        if empty:
            # The CRLF before the delimiter ended a header line, so it was
            # trimmed from the header above but still lies inside this entity
            # as its parent sees it (Dovecot counts it there too).
            body_end = body_start
            outer_end = n if delim is None else delim.line_start
            if kind == PartKind.MULTIPART:
                children = (_empty_part(body_start),)
            elif kind == PartKind.MESSAGE:
                message = _empty_part(body_start, Envelope())
                lines = 0
            elif ltype == "text":
                lines = 0
        elif kind == PartKind.MULTIPART:
            if boundary is not None:
                children, delim, outer_end = self.multipart(
                    body_start, bounds, boundary, depth, c.subtype
                )
            else:
                delim = self.find_delim(body_start, bounds)
                outer_end = self.end_before(delim, body_start)
            body_end = outer_end
            if not children:
                children = (_empty_part(body_start),)
        elif kind == PartKind.MESSAGE:
            message, delim, outer_end = self.entity(body_start, bounds, depth + 1, False, True)
            body_end = outer_end
            lines = data.count(b"\n", body_start, body_end)
        else:
            delim = self.find_delim(body_start, bounds)
            body_end = outer_end = self.end_before(delim, body_start)
            if ltype == "text":
                lines = data.count(b"\n", body_start, body_end)
        part = Part(
            header_start=start,
            body_start=body_start,
            body_end=body_end,
            kind=kind,
            type=c.type,
            subtype=c.subtype,
            content_type_given=c.given,
            params=c.params,
            id=c.id,
            description=c.description,
            encoding=c.encoding,
            md5=c.md5,
            disposition=c.disposition,
            disposition_params=c.disposition_params,
            language=c.language,
            location=c.location,
            lines=lines,
            children=children,
            message=message,
            envelope=_envelope(fields) if is_message else None,
        )
        return part, delim, outer_end

    def end_before(self, delim: _Delim | None, body_start: int) -> int:
        """Body end for an entity ended by ``delim``: before the CRLF that
        precedes the delimiter line (RFC 2046 section 5.1.1)."""
        if delim is None:
            return self.n
        return max(body_start, delim.line_start - 2)

    def multipart(
        self, body_start: int, bounds: tuple[bytes, ...], boundary: str, depth: int, subtype: str
    ) -> tuple[tuple[Part, ...], _Delim | None, int]:
        """Parse the body parts of a multipart; return them, the delimiter of an
        enclosing multipart that ends this one (None at end of message) and the
        end of this multipart's body."""
        inner = (*bounds, _delimiter(boundary))
        level = len(bounds)
        digest = subtype.lower() == "digest"
        kids: list[Part] = []
        d = self.find_delim(body_start, inner)  # skips the preamble
        end = self.end_before(d, body_start)
        while d is not None and d.level == level and not d.close:
            if self.parts >= MAX_PARTS:
                d = d._replace(close=True)  # the rest is opaque epilogue
                break
            child, d, end = self.entity(d.next, inner, depth + 1, digest, False)
            kids.append(child)
        if d is not None and d.level == level:
            # After the close delimiter: the epilogue, up to an enclosing
            # delimiter. When it is empty, the CRLF before that delimiter ends
            # the close delimiter line and stays in this body.
            after = d.next
            d = self.find_delim(after, bounds)
            end = (
                self.n if d is None else d.line_start if d.line_start == after else d.line_start - 2
            )
        return tuple(kids), d, end


def analyze_strict(data: bytes | MappedBytes) -> MessageInfo:
    """:func:`analyze` without the safety net: internal errors propagate (for
    tests, which must see them)."""
    a = _Analyzer(data)
    root, _, _ = a.entity(0, (), 0, False, True)
    return MessageInfo(
        size=len(data),
        root=root,
        search=search_fields(a.root_fields),
        preview=make_preview(data, root),
        has_attachment=has_attachment(root),
    )


def analyze(data: bytes | MappedBytes) -> MessageInfo:
    """Analyse a stored message (CRLF line endings); never raises.

    Returns the structure, envelope, SEARCH fields, preview and attachment flag.
    ``data`` is the whole message as ``bytes``; the analysis copies only header
    blocks and at most 16 KiB of one text part (for the preview), so a 50 MB
    message costs little more than a small one.
    """
    try:
        return analyze_strict(data)
    except Exception:  # a bug must not make a message undeliverable or unreadable
        log.exception("MIME analysis failed; storing the message as one opaque part")
        size = len(data)
        return MessageInfo(size=size, root=Part(0, 0, size, envelope=Envelope()))
