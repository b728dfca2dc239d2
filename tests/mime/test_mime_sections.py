"""Section numbers (RFC 9051 section 6.4.5) and the ranges FETCH serves."""

from __future__ import annotations

from mime_helpers import msg

from postroom.mime import (
    analyze,
    body_range,
    header_range,
    mime_range,
    part_by_section,
    section_range,
    text_range,
)
from postroom.mime.sections import parse_section

DATA = msg(
    """Subject: top
Content-Type: multipart/mixed; boundary=X

--X
Content-Type: text/plain

one
--X
Content-Type: message/rfc822

Subject: inner

inner body
--X
Content-Type: message/rfc822

Subject: inner multi
Content-Type: multipart/alternative; boundary=Y

--Y

alt 1
--Y

alt 2
--Y--
--X--
"""
)
INFO = analyze(DATA)


def fetch(section: str, spec: str = "") -> bytes | None:
    rng = section_range(INFO, section, spec)
    return None if rng is None else DATA[rng[0] : rng[1]]


def test_parse_section() -> None:
    assert parse_section("") == []
    assert parse_section("1.2.3") == [1, 2, 3]
    for bad in ("0", "1.", ".1", "1..2", "a", "01", "1.x", "\u0661"):
        assert parse_section(bad) is None


def test_top_level() -> None:
    assert fetch("") == DATA
    assert (
        fetch("", "HEADER") == b"Subject: top\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n"
    )
    text = fetch("", "TEXT")
    assert text is not None and text.startswith(b"--X\r\n") and text.endswith(b"--X--\r\n")
    assert fetch("", "MIME") is None


def test_numbered_parts() -> None:
    assert fetch("1") == b"one"
    assert fetch("1", "MIME") == b"Content-Type: text/plain\r\n\r\n"
    assert fetch("1", "HEADER") is None  # not a message/rfc822 part
    assert fetch("2") == b"Subject: inner\r\n\r\ninner body"
    assert fetch("2", "HEADER") == b"Subject: inner\r\n\r\n"
    assert fetch("2", "TEXT") == b"inner body"
    assert fetch("2.1") == b"inner body"  # single-part inner message: part 1 is its body
    assert fetch("2.1", "MIME") == b"Subject: inner\r\n\r\n"
    assert fetch("2.2") is None
    assert fetch("3.1") == b"alt 1"
    assert fetch("3.2", "MIME") == b"\r\n"
    assert fetch("3.2") == b"alt 2"
    assert fetch("3.3") is None
    assert fetch("4") is None
    assert fetch("1.1") is None  # a text part has no sub-parts


def test_single_part_message() -> None:
    data = msg("Subject: s\n\nbody\n")
    info = analyze(data)
    assert part_by_section(info, "1") is info.root
    assert body_range(info, "1") == (len(data) - 6, len(data))
    assert mime_range(info, "1") == header_range(info, "") == (0, len(data) - 6)
    assert text_range(info, "") == body_range(info, "1")
    assert part_by_section(info, "2") is None
    assert part_by_section(info, "1.1") is None


def test_message_rfc822_at_top() -> None:
    data = msg("Content-Type: message/rfc822\n\nSubject: in\n\nx\n")
    info = analyze(data)
    assert part_by_section(info, "1") is info.root
    inner = part_by_section(info, "1.1")
    assert inner is not None and inner is info.root.message
    assert header_range(info, "1") == (inner.header_start, inner.body_start)


def test_spec_dispatch_is_case_insensitive() -> None:
    assert section_range(INFO, "2", "header") == header_range(INFO, "2")
    assert section_range(INFO, "2", "HEADER.FIELDS") == header_range(INFO, "2")
    assert section_range(INFO, "2", "BOGUS") is None
