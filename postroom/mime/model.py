"""The stored result of analysing one message, and its JSON form.

Theory of operation: :func:`postroom.mime.analyze` turns the stored octets of a
message into a :class:`MessageInfo`; the store keeps ``info.to_json()`` next to the
message and IMAP reads it back with :meth:`MessageInfo.from_json`. Everything FETCH
ENVELOPE / BODY / BODYSTRUCTURE / BODY[section] / BINARY and SEARCH / SORT need is in
it, so the message is never parsed again; the message octets themselves are only read
for the byte ranges served.

Strings. Header-derived strings are the raw octets decoded as UTF-8 with
``surrogateescape``: valid UTF-8 reads as text, any other octet (Latin-1 headers,
junk) becomes a lone surrogate, and ``s.encode("utf-8", "surrogateescape")`` gives the
original octets back exactly (PEP 383). JSON keeps such strings through ``\\udcXX``
escapes (``ensure_ascii``), so the round trip is lossless. ``NUL`` octets in header
values are replaced by U+FFFD when parsed, as Dovecot does.

Raw values. Envelope strings (date, subject, message-id, in-reply-to) and the
Content-ID / -Description / -MD5 / -Location values are stored as they appear after
the colon (leading white space skipped), *still folded* (with their CRLFs). The IMAP
serialiser (``imap.py``) unfolds them the way Dovecot does, which for the subject
also decides quoted-string versus literal; keeping the folds is what lets it do that
byte for byte. :func:`unfold` gives the RFC 5322 section 2.2.3 unfolded value.

JSON format. Compact positional lists, not dicts (see ``_part_to_list`` for the
order). The first element of the top-level list is :data:`FORMAT_VERSION`;
:meth:`MessageInfo.from_json` raises ``ValueError`` for any other version, and the
store is expected to re-analyse the message then. Any change of field order or
meaning must bump the version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

FORMAT_VERSION = 1


class PartKind(IntEnum):
    """How a part's body is structured."""

    LEAF = 0  # opaque body (text, image, ... and anything beyond the nesting limit)
    MULTIPART = 1  # RFC 2046 section 5.1: ``children`` holds the body parts
    MESSAGE = 2  # RFC 2046 section 5.2.1 message/rfc822: ``message`` is the inner one


@dataclass(frozen=True, slots=True)
class Address:
    """One ENVELOPE address (RFC 9051 section 7.5.2 / RFC 3501 section 7.4.2).

    Group syntax (RFC 5322 section 3.4): the group start is ``(None, None, group
    name, None)`` and the group end is all None. ``name`` is the display name as
    written (quotes and escapes removed, RFC 2047 encoded words *not* decoded),
    None when absent. Dovecot's placeholders for broken addresses are stored as
    such: ``MISSING_MAILBOX``, ``MISSING_DOMAIN``, ``SYNTAX_ERROR``.
    """

    name: str | None
    adl: str | None
    mailbox: str | None
    host: str | None

    @property
    def is_group_start(self) -> bool:
        return self.host is None and self.mailbox is not None

    @property
    def is_group_end(self) -> bool:
        return self.host is None and self.mailbox is None


Addresses = tuple[Address, ...]


@dataclass(frozen=True, slots=True)
class Envelope:
    """The ENVELOPE of a message (RFC 9051 section 7.5.2).

    String fields are raw and folded (see the module docstring); None when the
    header is absent. Address lists are empty when the header is absent or holds no
    address; ``sender`` and ``reply_to`` are stored as written, and
    :attr:`effective_sender` / :attr:`effective_reply_to` apply the RFC 9051
    default (the From addresses) that the serialiser uses.
    """

    date: str | None = None
    subject: str | None = None
    from_: Addresses = ()
    sender: Addresses = ()
    reply_to: Addresses = ()
    to: Addresses = ()
    cc: Addresses = ()
    bcc: Addresses = ()
    in_reply_to: str | None = None
    message_id: str | None = None

    @property
    def effective_sender(self) -> Addresses:
        return self.sender or self.from_

    @property
    def effective_reply_to(self) -> Addresses:
        return self.reply_to or self.from_


Params = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Part:
    """One MIME entity: a message, a body part, or an encapsulated message.

    Offsets index the stored message: the header is ``[header_start, body_start)``
    (including the blank line that ends it, when there is one) and the body is
    ``[body_start, body_end)``. Per RFC 2046 section 5.1.1 the CRLF that precedes a
    boundary delimiter line belongs to the delimiter, so ``body_end`` stops before
    it (``parser.py`` lists where it stays, as in Dovecot); a multipart body
    includes its preamble and epilogue.

    ``type`` / ``subtype`` / parameter names keep the case they were written in
    (Dovecot reports them that way); use :attr:`mime_type` to compare. When no
    Content-Type header is present ``content_type_given`` is False and the RFC 2045
    section 5.2 default applies (text/plain, or message/rfc822 inside
    multipart/digest, RFC 2046 section 5.1.5). An unparseable Content-Type gives
    empty type and subtype, as in Dovecot.

    ``params`` are the Content-Type parameters in Dovecot's order: plain parameters
    as written, then RFC 2231 ones joined per name (see ``params.py``). The implied
    ``charset=us-ascii`` of text parts is not stored; :attr:`charset` supplies it.
    """

    header_start: int
    body_start: int
    body_end: int
    kind: PartKind = PartKind.LEAF
    type: str = "text"
    subtype: str = "plain"
    content_type_given: bool = False
    params: Params = ()
    id: str | None = None
    description: str | None = None
    encoding: str | None = None  # Content-Transfer-Encoding token; None = absent (7bit)
    md5: str | None = None
    disposition: str | None = None
    disposition_params: Params = ()
    language: tuple[str, ...] | None = None
    location: str | None = None
    lines: int | None = None  # text/* and message/rfc822 only (RFC 9051 body-fld-lines)
    children: tuple[Part, ...] = ()
    message: Part | None = None  # kind MESSAGE: the encapsulated message's root
    envelope: Envelope | None = None  # set on message roots (top level and encapsulated)

    @property
    def size(self) -> int:
        """Body size in octets (RFC 9051 body-fld-octets)."""
        return self.body_end - self.body_start

    @property
    def mime_type(self) -> str:
        """Lower-case ``type/subtype``."""
        return f"{self.type}/{self.subtype}".lower()

    def param(self, name: str) -> str | None:
        """The first Content-Type parameter called ``name`` (case-insensitive)."""
        name = name.lower()
        for key, value in self.params:
            if key.lower() == name:
                return value
        return None

    @property
    def charset(self) -> str | None:
        """The charset parameter; "us-ascii" for text parts without one."""
        value = self.param("charset")
        if value is None and self.type.lower() == "text":
            return "us-ascii"
        return value

    @property
    def filename(self) -> str | None:
        """Disposition ``filename`` or Content-Type ``name`` (raw, maybe RFC 2231
        or RFC 2047 encoded)."""
        for key, value in self.disposition_params:
            if key.lower() in ("filename", "filename*"):
                return value
        return self.param("name") or self.param("name*")

    def walk(self) -> list[Part]:
        """This part and all parts below it, depth first, in document order."""
        out: list[Part] = []
        stack: list[Part] = [self]
        while stack:
            part = stack.pop()
            out.append(part)
            if part.message is not None:
                stack.append(part.message)
            stack.extend(reversed(part.children))
        return out


@dataclass(frozen=True, slots=True)
class SearchFields:
    """Decoded header values for SEARCH and SORT (RFC 9051 section 6.4.4,
    RFC 5256): RFC 2047 encoded words decoded, raw 8-bit read as UTF-8 (else
    Latin-1), folding removed. Repeated address headers are joined with ", ".
    ``date`` is the Date header as seconds since the epoch (UTC), None when absent
    or unparseable."""

    subject: str | None = None
    from_: str | None = None
    to: str | None = None
    cc: str | None = None
    bcc: str | None = None
    date: int | None = None
    message_id: str | None = None
    in_reply_to: str | None = None
    references: str | None = None


@dataclass(frozen=True, slots=True)
class MessageInfo:
    """Everything IMAP needs about one stored message."""

    size: int
    root: Part
    search: SearchFields = field(default_factory=SearchFields)
    preview: str = ""  # RFC 8970 PREVIEW text, at most 200 characters
    has_attachment: bool = False

    @property
    def envelope(self) -> Envelope:
        return self.root.envelope or Envelope()

    def to_json(self) -> bytes:
        """Compact ASCII JSON (see the module docstring for stability)."""
        obj = [
            FORMAT_VERSION,
            self.size,
            _part_to_list(self.root),
            _search_to_list(self.search),
            self.preview,
            int(self.has_attachment),
        ]
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=True).encode("ascii")

    @classmethod
    def from_json(cls, data: bytes | str) -> MessageInfo:
        """Inverse of :meth:`to_json`; ValueError for another format version or
        a document that is not one of ours."""
        try:
            obj = json.loads(data)
            if not isinstance(obj, list) or not obj or obj[0] != FORMAT_VERSION:
                raise ValueError("unsupported message analysis format")
            _, size, root, search, preview, has_att = obj
            return cls(
                size=int(size),
                root=_part_from_list(root),
                search=_search_from_list(search),
                preview=str(preview),
                has_attachment=bool(has_att),
            )
        except (TypeError, KeyError, IndexError) as exc:
            raise ValueError(f"malformed message analysis: {exc}") from exc


def unfold(value: str) -> str:
    """RFC 5322 section 2.2.3 unfolding: remove every CR and LF."""
    if "\r" not in value and "\n" not in value:
        return value
    return value.replace("\r", "").replace("\n", "")


# --- JSON helpers: positional lists ------------------------------------------------


def _flat(params: Params) -> list[str]:
    return [x for pair in params for x in pair]


def _pairs(flat: list[str]) -> Params:
    return tuple((flat[i], flat[i + 1]) for i in range(0, len(flat) - 1, 2))


def _addrs_to_list(addrs: Addresses) -> list[list[str | None]]:
    return [[a.name, a.adl, a.mailbox, a.host] for a in addrs]


def _addrs_from_list(items: list[list[str | None]]) -> Addresses:
    return tuple(Address(*item) for item in items)


def _env_to_list(env: Envelope) -> list[Any]:
    return [
        env.date,
        env.subject,
        _addrs_to_list(env.from_),
        _addrs_to_list(env.sender),
        _addrs_to_list(env.reply_to),
        _addrs_to_list(env.to),
        _addrs_to_list(env.cc),
        _addrs_to_list(env.bcc),
        env.in_reply_to,
        env.message_id,
    ]


def _env_from_list(o: list[Any]) -> Envelope:
    return Envelope(
        date=o[0],
        subject=o[1],
        from_=_addrs_from_list(o[2]),
        sender=_addrs_from_list(o[3]),
        reply_to=_addrs_from_list(o[4]),
        to=_addrs_from_list(o[5]),
        cc=_addrs_from_list(o[6]),
        bcc=_addrs_from_list(o[7]),
        in_reply_to=o[8],
        message_id=o[9],
    )


def _part_to_list(p: Part) -> list[Any]:
    return [
        p.header_start,
        p.body_start,
        p.body_end,
        int(p.kind),
        p.type,
        p.subtype,
        int(p.content_type_given),
        _flat(p.params),
        p.id,
        p.description,
        p.encoding,
        p.md5,
        p.disposition,
        _flat(p.disposition_params),
        None if p.language is None else list(p.language),
        p.location,
        p.lines,
        [_part_to_list(c) for c in p.children],
        None if p.message is None else _part_to_list(p.message),
        None if p.envelope is None else _env_to_list(p.envelope),
    ]


def _part_from_list(o: list[Any]) -> Part:
    return Part(
        header_start=o[0],
        body_start=o[1],
        body_end=o[2],
        kind=PartKind(o[3]),
        type=o[4],
        subtype=o[5],
        content_type_given=bool(o[6]),
        params=_pairs(o[7]),
        id=o[8],
        description=o[9],
        encoding=o[10],
        md5=o[11],
        disposition=o[12],
        disposition_params=_pairs(o[13]),
        language=None if o[14] is None else tuple(o[14]),
        location=o[15],
        lines=o[16],
        children=tuple(_part_from_list(c) for c in o[17]),
        message=None if o[18] is None else _part_from_list(o[18]),
        envelope=None if o[19] is None else _env_from_list(o[19]),
    )


def _search_to_list(s: SearchFields) -> list[Any]:
    return [
        s.subject,
        s.from_,
        s.to,
        s.cc,
        s.bcc,
        s.date,
        s.message_id,
        s.in_reply_to,
        s.references,
    ]


def _search_from_list(o: list[Any]) -> SearchFields:
    return SearchFields(*o)
