"""Sequence sets: parsing, resolution and compact output.

Theory of operation: a sequence set (RFC 9051 section 9, ``sequence-set``) is a
comma-separated list of numbers and ranges; ``*`` stands for the largest number in use
(message count or highest UID) and ``$`` for the result saved by ``SEARCH RETURN (SAVE)``
(RFC 5182 section 2; RFC 9051 section 6.4.4.4). Parsing keeps the set as written
(``SequenceSet.ranges``, ``None`` for ``*``); ``resolve`` turns it into sorted, merged
inclusive ranges once the largest number is known. The ranges of a range are unordered:
``4:2`` is ``2:4`` (RFC 9051 section 9, ``seq-range``).

``compact`` is the reverse, for responses: ``[1, 2, 3, 5]`` becomes ``"1:3,5"`` (COPYUID
and APPENDUID, RFC 4315 section 3; ESEARCH ALL, RFC 4731 section 3.1; VANISHED, RFC 7162
section 3.2.10).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from postroom.imap.errors import ParseError

MAX_NZ_NUMBER = 0xFFFFFFFF  # nz-number: 1 .. 4,294,967,295 (RFC 9051 section 9)

_TOKEN = re.compile(rb"[0-9*:,$]+")
_ELEMENT = re.compile(r"(\*|[0-9]+)(?::(\*|[0-9]+))?\Z")

Bound = int | None  # None is "*"


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """A sequence set as written by the client.

    ``ranges`` holds ``(first, last)`` pairs in the client's order, ``None`` standing for
    ``*``; a single number ``n`` is ``(n, n)``. ``saved`` is ``$`` (then ``ranges`` is
    empty): the caller substitutes the saved search result.
    """

    ranges: tuple[tuple[Bound, Bound], ...] = ()
    saved: bool = False

    @classmethod
    def of(cls, *numbers: int) -> SequenceSet:
        """A set of single numbers (handy in tests and for building answers)."""
        return cls(tuple((n, n) for n in numbers))

    @property
    def uses_star(self) -> bool:
        return any(a is None or b is None for a, b in self.ranges)

    def resolve(self, largest: int) -> list[tuple[int, int]]:
        """Sorted, merged, inclusive ranges with ``*`` replaced by ``largest``.

        Numbers above ``largest`` are kept (the caller decides whether they are an error,
        RFC 9051 section 6.4.8, or simply match nothing, as for UIDs). ``largest`` 0 (an
        empty mailbox) makes ``*`` 0, so ``1:*`` is ``0:1``; callers filter. Raises
        ``ValueError`` for ``$``.
        """
        if self.saved:
            raise ValueError("the saved search result ($) must be substituted by the caller")
        spans = []
        for a, b in self.ranges:
            lo = largest if a is None else a
            hi = largest if b is None else b
            if lo > hi:
                lo, hi = hi, lo
            spans.append((lo, hi))
        spans.sort()
        merged: list[tuple[int, int]] = []
        for lo, hi in spans:
            if merged and lo <= merged[-1][1] + 1:
                if hi > merged[-1][1]:
                    merged[-1] = (merged[-1][0], hi)
            else:
                merged.append((lo, hi))
        return merged

    def contains(self, number: int, largest: int) -> bool:
        """Whether ``number`` is in the set (``*`` meaning ``largest``)."""
        return any(lo <= number <= hi for lo, hi in self.resolve(largest))

    def iter(self, largest: int, *, limit: int | None = None) -> Iterator[int]:
        """The numbers of the set in ascending order, none above ``limit`` (if given)."""
        for lo, hi in self.resolve(largest):
            top = hi if limit is None else min(hi, limit)
            yield from range(max(lo, 1), top + 1)

    def __str__(self) -> str:
        if self.saved:
            return "$"
        parts = []
        for a, b in self.ranges:
            first = "*" if a is None else str(a)
            if a == b:
                parts.append(first)
            else:
                parts.append(f"{first}:{'*' if b is None else b}")
        return ",".join(parts)


def parse_sequence_set(
    data: bytes, *, max_ranges: int = 200_000, allow_star: bool = True, allow_saved: bool = True
) -> SequenceSet:
    """Parse a whole sequence set token (``1:3,5,7:*`` or ``$``).

    Raises ``ParseError`` (BAD) for a malformed set, a zero or a number beyond
    4,294,967,295, ``*`` where it is not allowed (``known-uids`` of QRESYNC, RFC 7162
    section 3.2.5), or more than ``max_ranges`` elements (code ``LIMIT``).
    """
    if data == b"$":
        if not allow_saved:
            raise ParseError("$ is not allowed here")
        return SequenceSet(saved=True)
    text = data.decode("ascii", "replace")
    if not text:
        raise ParseError("Expected a sequence set")
    elements = text.split(",")
    if len(elements) > max_ranges:
        raise ParseError(
            f"Sequence set has more than {max_ranges} elements", code="LIMIT", status="BAD"
        )
    ranges = []
    for element in elements:
        match = _ELEMENT.match(element)
        if match is None:
            raise ParseError(f"Invalid sequence set: {_shorten(text)}")
        first = _bound(match.group(1), allow_star)
        second = first if match.group(2) is None else _bound(match.group(2), allow_star)
        ranges.append((first, second))
    return SequenceSet(tuple(ranges))


def _bound(token: str, allow_star: bool) -> Bound:
    if token == "*":
        if not allow_star:
            raise ParseError("* is not allowed in this sequence set")
        return None
    if len(token) > 10:
        raise ParseError("Number in sequence set out of range")
    value = int(token)
    if value == 0 or value > MAX_NZ_NUMBER:
        raise ParseError("Number in sequence set out of range (1 to 4294967295)")
    return value


def sequence_token(data: bytes, pos: int) -> int:
    """End of the sequence-set token starting at ``pos`` (== ``pos`` if none)."""
    match = _TOKEN.match(data, pos)
    return pos if match is None else match.end()


def compact(numbers: Iterable[int], *, sort: bool = True) -> str:
    """The shortest set text for ``numbers``: ``[1, 2, 3, 5]`` gives ``"1:3,5"``.

    With ``sort`` (the default) numbers are sorted and de-duplicated first. With
    ``sort=False`` the order is kept and only ascending runs are merged - COPYUID pairs
    two sets element by element, so their order must not change (RFC 4315 section 3).
    Returns ``""`` for no numbers.
    """
    seq = sorted(set(numbers)) if sort else list(numbers)
    parts: list[str] = []
    start = prev = None
    for n in seq:
        if prev is not None and n == prev + 1:
            prev = n
            continue
        if start is not None:
            parts.append(_span(start, prev))
        start = prev = n
    if start is not None:
        parts.append(_span(start, prev))
    return ",".join(parts)


def _span(a: int, b: int | None) -> str:
    return str(a) if a == b else f"{a}:{b}"


def _shorten(text: str, size: int = 40) -> str:
    return text if len(text) <= size else text[:size] + "..."
