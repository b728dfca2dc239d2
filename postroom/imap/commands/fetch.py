"""FETCH and UID FETCH (RFC 9051 section 6.4.5), with CONDSTORE/QRESYNC modifiers.

    fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att /
            "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers]
    fetch-att = "ENVELOPE" / "FLAGS" / "INTERNALDATE" / "RFC822" [".HEADER" / ".TEXT"] /
            "RFC822.SIZE" / "BODY" ["STRUCTURE"] / "UID" / "MODSEQ" /
            "BODY" [".PEEK"] section [partial] /
            "BINARY" [".PEEK"] section-binary [partial] / "BINARY.SIZE" section-binary
    section-spec = section-msgtext / (section-part ["." section-text])
    section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT"
    section-text = section-msgtext / "MIME"
    partial = "<" number64 "." nz-number64 ">"
    fetch-modifiers = SP "(" fetch-modifier *(SP fetch-modifier) ")"
    fetch-modifier = "CHANGEDSINCE" SP mod-sequence-value / "VANISHED"

RFC822, RFC822.HEADER and RFC822.TEXT are IMAP4rev1 (RFC 3501 section 6.4.5); BINARY is
RFC 3516 section 4.2; MODSEQ and CHANGEDSINCE RFC 7162 sections 3.1.4.1 and 3.1.4.2;
VANISHED RFC 7162 section 3.2.6 (only with UID FETCH and CHANGEDSINCE, else BAD). The
macros ALL, FAST and FULL are expanded here (RFC 9051 section 6.4.5). Each item knows its
name in the response (``response_name``), e.g. ``BODY[HEADER]<0>`` for
``BODY.PEEK[HEADER]<0.100>`` (RFC 9051 section 7.5.2: only the origin is echoed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

from postroom.imap.commands.base import Availability, ImapCommand
from postroom.imap.grammar.reader import MAX_NUMBER64, Reader
from postroom.imap.grammar.sequence import SequenceSet

SIMPLE_ATTRIBUTES = frozenset(
    {
        "ENVELOPE",
        "FLAGS",
        "INTERNALDATE",
        "RFC822.SIZE",
        "BODY",
        "BODYSTRUCTURE",
        "UID",
        "MODSEQ",
        "RFC822",
        "RFC822.HEADER",
        "RFC822.TEXT",
    }
)
MACROS = {
    "FAST": ("FLAGS", "INTERNALDATE", "RFC822.SIZE"),
    "ALL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"),
    "FULL": ("FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODY"),
}
# Items that set \Seen unless the mailbox is read-only (RFC 9051 section 6.4.5).
_SETS_SEEN = frozenset({"RFC822", "RFC822.TEXT"})
_ITEM_NAME = re.compile(rb"[A-Za-z0-9.]+")
_SECTION_WORD = re.compile(rb"[A-Za-z0-9.]+")
_ASTRING_SAFE = re.compile(r'[^\x00-\x20\x7f(){%*"\\]+\Z')


@dataclass(frozen=True, slots=True)
class Section:
    """``section-spec``: ``part`` numbers (``()`` for the whole message), then ``text``:
    ``None``, ``"HEADER"``, ``"HEADER.FIELDS"``, ``"HEADER.FIELDS.NOT"``, ``"TEXT"`` or
    ``"MIME"``; ``fields`` are the header names of HEADER.FIELDS[.NOT], as sent."""

    part: tuple[int, ...] = ()
    text: str | None = None
    fields: tuple[str, ...] = ()

    def __str__(self) -> str:
        spec = ".".join(str(p) for p in self.part)
        if self.text:
            spec = f"{spec}.{self.text}" if spec else self.text
        if self.fields:
            spec += " (" + " ".join(_astring(f) for f in self.fields) + ")"
        return spec


@dataclass(frozen=True, slots=True)
class FetchAttribute:
    """A plain item: one of ``SIMPLE_ATTRIBUTES`` (upper case)."""

    name: str

    @property
    def sets_seen(self) -> bool:
        return self.name in _SETS_SEEN

    def response_name(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class FetchBody:
    """``BODY[section]<origin.length>`` or ``BODY.PEEK[...]`` (``peek``)."""

    section: Section = Section()
    peek: bool = False
    partial: tuple[int, int] | None = None  # (origin, length)

    @property
    def sets_seen(self) -> bool:
        return not self.peek

    def response_name(self) -> str:
        origin = f"<{self.partial[0]}>" if self.partial else ""
        return f"BODY[{self.section}]{origin}"


@dataclass(frozen=True, slots=True)
class FetchBinary:
    """``BINARY[part]<origin.length>`` or ``BINARY.PEEK[...]`` (RFC 3516 section 4.2)."""

    part: tuple[int, ...] = ()
    peek: bool = False
    partial: tuple[int, int] | None = None

    @property
    def sets_seen(self) -> bool:
        return not self.peek

    def response_name(self) -> str:
        origin = f"<{self.partial[0]}>" if self.partial else ""
        return f"BINARY[{'.'.join(str(p) for p in self.part)}]{origin}"


@dataclass(frozen=True, slots=True)
class FetchBinarySize:
    """``BINARY.SIZE[part]`` (RFC 3516 section 4.2)."""

    part: tuple[int, ...] = ()

    @property
    def sets_seen(self) -> bool:
        return False

    def response_name(self) -> str:
        return f"BINARY.SIZE[{'.'.join(str(p) for p in self.part)}]"


FetchItem = FetchAttribute | FetchBody | FetchBinary | FetchBinarySize


@dataclass(frozen=True, slots=True, kw_only=True)
class Fetch(ImapCommand):
    """``items`` in the client's order (macros expanded, duplicates dropped).

    ``changed_since``: CHANGEDSINCE (RFC 7162 section 3.1.4.1; implies MODSEQ in the
    answers). ``vanished``: VANISHED (RFC 7162 section 3.2.6). UID FETCH always answers
    UID too (RFC 9051 section 6.4.9) - ``wants`` tells the handler what to send."""

    sequence_set: SequenceSet
    items: tuple[FetchItem, ...]
    uid: bool = False
    changed_since: int | None = None
    vanished: bool = False

    available: ClassVar[Availability] = Availability.SELECTED

    @property
    def name(self) -> str:
        return "UID FETCH" if self.uid else "FETCH"

    @property
    def sets_seen(self) -> bool:
        """Some item implicitly sets ``\\Seen`` (RFC 9051 section 6.4.5)."""
        return any(item.sets_seen for item in self.items)

    def wants(self, attribute: str) -> bool:
        """Whether the answer includes the plain ``attribute``, counting the implied
        ones: UID for UID FETCH, MODSEQ with CHANGEDSINCE."""
        if attribute == "UID" and self.uid:
            return True
        if attribute == "MODSEQ" and self.changed_since is not None:
            return True
        return FetchAttribute(attribute) in self.items


def parse_fetch(r: Reader, tag: str, name: str) -> Fetch:
    uid = name == "UID FETCH"
    r.sp()
    sequence_set = r.sequence_set()
    r.sp()
    items: list[FetchItem] = []
    if r.take(b"("):
        items.append(_item(r))
        while not r.take(b")"):
            r.sp()
            items.append(_item(r))
            if len(items) > r.options.limits.max_fetch_items:
                raise r.fail("Too many FETCH items", code="LIMIT")
    else:
        macro = r.peek_atom()
        if macro in MACROS:
            r.atom()
            items.extend(FetchAttribute(a) for a in MACROS[macro])
        else:
            items.append(_item(r))
    changed_since: int | None = None
    vanished = False
    if r.take(b" "):
        r.expect(b"(")
        while True:
            mod = r.keyword("a FETCH modifier")
            if mod == "CHANGEDSINCE" and changed_since is None:
                r.sp()
                changed_since = r.number(maximum=MAX_NUMBER64)  # lenient: 0 allowed
            elif mod == "VANISHED" and not vanished:
                vanished = True
            else:
                raise r.fail(f"Unknown or repeated FETCH modifier {mod}")
            if r.take(b")"):
                break
            r.sp()
        if vanished and (not uid or changed_since is None):
            raise r.fail("VANISHED needs UID FETCH and CHANGEDSINCE")
    r.end()
    return Fetch(
        tag=tag,
        uid=uid,
        sequence_set=sequence_set,
        items=tuple(dict.fromkeys(items)),
        changed_since=changed_since,
        vanished=vanished,
    )


def _item(r: Reader) -> FetchItem:
    raw = r.match(_ITEM_NAME)
    if raw is None:
        raise r.fail("Expected a FETCH item")
    word = raw.decode("ascii").upper()
    if r.peek() == 0x5B:  # "["
        if word in ("BODY", "BODY.PEEK"):
            section = _section(r)
            return FetchBody(section, word == "BODY.PEEK", _partial(r))
        if word in ("BINARY", "BINARY.PEEK"):
            part = _binary_section(r)
            return FetchBinary(part, word == "BINARY.PEEK", _partial(r))
        if word == "BINARY.SIZE":
            return FetchBinarySize(_binary_section(r))
        raise r.fail(f"Unknown FETCH item {word}[")
    if word in SIMPLE_ATTRIBUTES:
        return FetchAttribute(word)
    if word in MACROS:
        raise r.fail(f"{word} cannot be used inside a FETCH item list")
    raise r.fail(f"Unknown FETCH item {word}")


def _part_numbers(r: Reader, words: list[str]) -> tuple[tuple[int, ...], list[str]]:
    part: list[int] = []
    while words and words[0].isdigit():
        word = words.pop(0)
        if len(word) > 10 or not 0 < int(word) <= 0xFFFFFFFF:
            raise r.fail("Invalid section part number")
        part.append(int(word))
        if len(part) > r.options.limits.max_section_parts:
            raise r.fail("Section part numbers nested too deeply", code="LIMIT")
    return tuple(part), words


def _section(r: Reader) -> Section:
    r.expect(b"[")
    if r.take(b"]"):
        return Section()
    raw = r.match(_SECTION_WORD)
    if raw is None:
        raise r.fail("Invalid section specification")
    words = raw.decode("ascii").upper().split(".")
    if "" in words:
        raise r.fail("Invalid section specification")
    if len(words) > r.options.limits.max_section_parts + 3:
        raise r.fail("Section part numbers nested too deeply", code="LIMIT")
    part, rest = _part_numbers(r, words)
    text = ".".join(rest) or None
    fields: tuple[str, ...] = ()
    if text in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        r.sp()
        fields = _header_list(r)
    elif text == "MIME":
        if not part:
            raise r.fail("MIME needs a part number")
    elif text not in (None, "HEADER", "TEXT"):
        raise r.fail("Invalid section specification")
    r.expect(b"]")
    return Section(part, text, fields)


def _binary_section(r: Reader) -> tuple[int, ...]:
    r.expect(b"[")
    if r.take(b"]"):
        return ()
    raw = r.match(_SECTION_WORD)
    words = [] if raw is None else raw.decode("ascii").split(".")
    if "" in words:
        raise r.fail("Invalid BINARY section")
    if len(words) > r.options.limits.max_section_parts + 1:
        raise r.fail("Section part numbers nested too deeply", code="LIMIT")
    part, rest = _part_numbers(r, words)
    if rest or not part:
        raise r.fail("BINARY takes part numbers only")
    r.expect(b"]")
    return part


def _header_list(r: Reader) -> tuple[str, ...]:
    r.expect(b"(")
    fields = [r.ascii_astring("a header field name")]
    while not r.take(b")"):
        r.sp()
        fields.append(r.ascii_astring("a header field name"))
        if len(fields) > r.options.limits.max_header_fields:
            raise r.fail("Too many header fields", code="LIMIT")
    return tuple(fields)


def _partial(r: Reader) -> tuple[int, int] | None:
    if not r.take(b"<"):
        return None
    origin = r.number64()
    r.expect(b".", "'.' in a partial range")
    length = r.number64(nonzero=True)
    r.expect(b">")
    return origin, length


def _astring(text: str) -> str:
    if _ASTRING_SAFE.match(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
