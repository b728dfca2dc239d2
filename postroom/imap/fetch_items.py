"""The data items of one ``* n FETCH (...)`` response (RFC 9051 section 6.4.5 / 7.5.2).

Theory of operation: the session resolves the sequence set, decides about ``\\Seen``
and calls :func:`fetch_items` once per message; it gets ``(name, value)`` pairs for a
``FetchResponse``. Everything structural (ENVELOPE, BODY, BODYSTRUCTURE, section byte
ranges) comes from the parse-once analysis (``MessageSource.info``); the message octets
are read only for the byte range an item serves (``MessageSource.body(id, start,
end)``), and the bytes read go into the ``Literal`` uncopied unless they need NUL
replacement. Nothing here changes state or touches flags.

Answers follow Dovecot 2.3 where the RFCs leave room (checked against the real
``imap`` binary, see ``tests/imap/test_fetch_items.py``):

* ``UID`` comes first when present (requested or ``include_uid`` for UID FETCH, RFC
  9051 section 6.4.9); an implied ``MODSEQ`` (CHANGEDSINCE, RFC 7162 section 3.1.4.1)
  comes last; every other item keeps the client's order.
* A section that does not exist (``BODY[5]``, ``BODY[1.HEADER]`` on a text part,
  ``BINARY[9]``) is an empty literal ``{0}`` and ``BINARY.SIZE`` 0 - not NIL, not NO.
* A partial ``<origin.length>`` is cut from the section; an origin beyond its end gives
  the empty literal. The response name echoes only the origin (``BODY[]<10>``).
* NUL octets in ``BODY[...]``/``RFC822*`` literals become 0x80 (RFC 9051 section 4.3
  forbids NUL in a literal; only BINARY's literal8 may carry it, RFC 3516 section 4.3).
* ``BINARY[part]`` decodes the part's Content-Transfer-Encoding (base64,
  quoted-printable; identity for 7bit/8bit/binary); an unknown one raises
  :class:`UnknownCte` for ``NO [UNKNOWN-CTE]`` (RFC 3516 section 4.3). ``BINARY[]`` and
  multipart parts are served as stored (their encoding is an identity by RFC 2045
  section 6.4); message/rfc822 parts are decoded by their own header's encoding.
* ``INTERNALDATE`` is written in UTC (``+0000``): the store keeps a timestamp, not the
  zone it was appended with.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from postroom.imap.commands.fetch import (
    FetchAttribute,
    FetchBinary,
    FetchBinarySize,
    FetchBody,
    FetchItem,
)
from postroom.imap.responses import Atom, Literal, Raw, Value, format_date_time
from postroom.imap.source import MessageSource
from postroom.mime import (
    MessageInfo,
    PartKind,
    bodystructure_to_imap,
    decode_transfer,
    envelope_to_imap,
    header_fields,
    header_range,
    part_by_section,
    section_range,
    text_range,
)
from postroom.store.models import FLAG_NAMES, Entry

_UID = FetchAttribute("UID")
_MODSEQ = FetchAttribute("MODSEQ")
_IDENTITY_CTE = frozenset({"", "7bit", "8bit", "binary"})


class UnknownCte(Exception):
    """BINARY / BINARY.SIZE of a part whose Content-Transfer-Encoding is not one of RFC
    2045's: the command fails with ``NO [UNKNOWN-CTE]`` (RFC 3516 section 4.3)."""

    def __init__(self, part: tuple[int, ...]) -> None:
        self.part = part
        section = ".".join(str(p) for p in part)
        super().__init__(f"Unknown Content-Transfer-Encoding in part [{section}]")


def sets_seen(items: Sequence[FetchItem]) -> bool:
    """Whether fetching ``items`` implicitly sets ``\\Seen`` (RFC 9051 section 6.4.5:
    BODY[...] and BINARY[...] without .PEEK, RFC822, RFC822.TEXT)."""
    return any(item.sets_seen for item in items)


def flag_atoms(entry: Entry, *, recent: bool, rev1: bool) -> list[Value]:
    """The FLAGS value: system flags, ``\\Recent`` (IMAP4rev1 sessions only, RFC 3501
    section 2.3.2), then keywords - Dovecot's order."""
    flags: list[Value] = [Atom(name) for bit, name in FLAG_NAMES if entry.flags.has(bit)]
    if recent and rev1:
        flags.append(Atom("\\Recent"))
    flags.extend(Atom(keyword) for keyword in entry.flags.keywords)
    return flags


def internal_date(entry: Entry) -> str:
    """INTERNALDATE text, in UTC (see the module docstring)."""
    moment = datetime.datetime.fromtimestamp(entry.internaldate, datetime.UTC)
    return format_date_time(moment)


async def fetch_items(
    entry: Entry,
    items: Sequence[FetchItem],
    source: MessageSource,
    *,
    recent: bool,
    rev1: bool,
    utf8: bool,
    include_modseq: bool,
    include_uid: bool = False,
) -> list[tuple[str, Value]]:
    """The ``(name, value)`` pairs of one FETCH response for ``entry``.

    ``items`` as parsed (macros expanded). ``include_uid``: add UID even if not asked
    (UID FETCH); ``include_modseq``: add MODSEQ even if not asked (CHANGEDSINCE, or a
    CONDSTORE client after STORE). ``recent``: the message is ``\\Recent`` in this
    session, reported in FLAGS only when ``rev1``. ``utf8`` is accepted for the
    session's convenience; no item depends on it yet (the MIME serialisers produce
    Dovecot's forms, and ``FetchResponse(utf8=...)`` decides how strings are quoted).

    The message analysis is loaded only if an item needs it, and octets are read only
    for the range served. Raises :class:`UnknownCte` for BINARY of an unknown
    encoding; whatever ``source`` raises (message gone) passes through.
    """
    del utf8  # see the docstring
    fetcher = _Fetcher(entry, source)
    out: list[tuple[str, Value]] = []
    if include_uid or _UID in items:
        out.append(("UID", entry.uid))
    for item in items:
        if item == _UID:
            continue
        if item == _MODSEQ:
            out.append(("MODSEQ", [entry.modseq]))  # RFC 7162 section 3.1.4.1
        elif isinstance(item, FetchAttribute):
            out.append((item.name, await fetcher.attribute(item.name, recent=recent, rev1=rev1)))
        elif isinstance(item, FetchBody):
            out.append((item.response_name(), Literal(await fetcher.body(item))))
        elif isinstance(item, FetchBinary):
            data = _partial(await fetcher.binary(item.part), item.partial)
            out.append((item.response_name(), Literal(data, binary=True)))
        else:
            out.append((item.response_name(), await fetcher.binary_size(item)))
    if include_modseq and _MODSEQ not in items:
        out.append(("MODSEQ", [entry.modseq]))
    return out


class _Fetcher:
    """One message's items: the analysis loaded once, on first need."""

    __slots__ = ("_info", "_summary", "entry", "source")

    def __init__(self, entry: Entry, source: MessageSource) -> None:
        self.entry = entry
        self.source = source
        self._info: MessageInfo | None = None
        self._summary: tuple[bytes, bytes] | bool | None = False  # False: not asked yet

    async def summary(self) -> tuple[bytes, bytes] | None:
        """ENVELOPE and BODYSTRUCTURE rendered at store time (a point query, where
        rendering them from the analysis costs about 80 us), or None."""
        if self._summary is False:
            self._summary = await self.source.imap_summary(self.entry.message_id)
        assert self._summary is not True
        return self._summary

    async def info(self) -> MessageInfo:
        if self._info is None:
            self._info = await self.source.info(self.entry.message_id)
        return self._info

    async def read(self, span: tuple[int, int] | None) -> bytes:
        if span is None or span[0] >= span[1]:
            return b""
        return await self.source.body(self.entry.message_id, span[0], span[1])

    async def attribute(self, name: str, *, recent: bool, rev1: bool) -> Value:
        if name == "FLAGS":
            return flag_atoms(self.entry, recent=recent, rev1=rev1)
        if name == "INTERNALDATE":
            return internal_date(self.entry)
        if name == "RFC822.SIZE":
            return self.entry.size
        if name in ("ENVELOPE", "BODYSTRUCTURE"):
            summary = await self.summary()
            if summary is not None:
                return Raw(summary[0] if name == "ENVELOPE" else summary[1])
        info = await self.info()
        if name == "ENVELOPE":
            return Raw(envelope_to_imap(info.envelope))
        if name in ("BODYSTRUCTURE", "BODY"):
            return Raw(bodystructure_to_imap(info.root, extensible=name == "BODYSTRUCTURE"))
        # RFC 3501 section 6.4.5: RFC822 = BODY[], RFC822.HEADER = BODY.PEEK[HEADER],
        # RFC822.TEXT = BODY[TEXT].
        if name == "RFC822":
            span = section_range(info, "")
        elif name == "RFC822.HEADER":
            span = header_range(info, "")
        elif name == "RFC822.TEXT":
            span = text_range(info, "")
        else:  # pragma: no cover - the parser admits no other attribute
            raise ValueError(f"unknown FETCH attribute {name}")
        return Literal(_no_nul(await self.read(span)))

    async def body(self, item: FetchBody) -> bytes:
        """BODY[section]<partial> octets (RFC 9051 section 6.4.5)."""
        info = await self.info()
        section = item.section
        numbers = _section_text(section.part)
        if section.text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
            header_span = header_range(info, numbers)
            if header_span is None:
                return b""
            header = await self.read(header_span)
            not_ = section.text == "HEADER.FIELDS.NOT"
            return _no_nul(_partial(header_fields(header, section.fields, not_=not_), item.partial))
        span = section_range(info, numbers, section.text or "")
        if span is not None and item.partial is not None:
            origin, length = item.partial
            start = min(span[0] + origin, span[1])
            span = (start, min(start + length, span[1]))
        return _no_nul(await self.read(span))

    async def binary(self, part: tuple[int, ...]) -> bytes:
        """BINARY[part]: the decoded part (see the module docstring)."""
        info = await self.info()
        if not part:
            return await self.read((info.root.header_start, info.root.body_end))
        found = part_by_section(info, _section_text(part))
        if found is None:
            return b""
        raw = await self.read((found.body_start, found.body_end))
        if found.kind == PartKind.MULTIPART:
            return raw
        decoded = decode_transfer(raw, found.encoding)
        if decoded is None:
            raise UnknownCte(part)
        return decoded

    async def binary_size(self, item: FetchBinarySize) -> int:
        """BINARY.SIZE[part]: the decoded size; identity encodings need no read."""
        info = await self.info()
        if not item.part:
            return info.root.body_end - info.root.header_start
        found = part_by_section(info, _section_text(item.part))
        if found is None:
            return 0
        if found.kind == PartKind.MULTIPART or _is_identity(found.encoding):
            return found.body_end - found.body_start
        return len(await self.binary(item.part))


def _section_text(part: tuple[int, ...]) -> str:
    return ".".join(str(p) for p in part)


def _is_identity(encoding: str | None) -> bool:
    return (encoding or "").strip().lower() in _IDENTITY_CTE


def _partial(data: bytes, partial: tuple[int, int] | None) -> bytes:
    if partial is None:
        return data
    origin, length = partial
    return data[origin : origin + length]


def _no_nul(data: bytes) -> bytes:
    """NUL -> 0x80 in a non-binary literal, as Dovecot does (RFC 9051 section 4.3)."""
    return data.replace(b"\x00", b"\x80") if b"\x00" in data else data
