"""Any input yields a result: property tests over random and MIME-shaped input,
every truncation of a nested message, and JSON round trips of the corpus."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mime_crafted import crafted_messages

from postroom.mime import (
    MessageInfo,
    Part,
    PartKind,
    analyze,
    bodystructure_to_imap,
    envelope_to_imap,
    header_fields,
    normalize_crlf,
    section_range,
)
from postroom.mime.parser import analyze_strict


def check_invariants(data: bytes, info: MessageInfo) -> None:
    n = len(data)
    assert info.size == n

    def visit(part: Part, lo: int, hi: int, prefix: str) -> None:
        assert lo <= part.header_start <= part.body_start <= part.body_end <= hi
        if part.kind == PartKind.MULTIPART:
            assert part.children
            pos = part.body_start
            for i, child in enumerate(part.children, 1):
                assert child.header_start >= pos
                pos = child.body_end
                visit(child, part.body_start, part.body_end, f"{prefix}{i}.")
        elif part.kind == PartKind.MESSAGE:
            assert part.message is not None and part.message.envelope is not None
            assert part.message.header_start == part.body_start
            visit(part.message, part.body_start, part.body_end, prefix)
        else:
            assert not part.children and part.message is None
        if part.lines is not None:
            assert part.lines == data.count(b"\n", part.body_start, part.body_end)

    visit(info.root, 0, n, "")
    assert info.root.header_start == 0
    assert info.root.envelope is not None
    assert len(info.preview) <= 200
    # everything IMAP will do with it works
    assert MessageInfo.from_json(info.to_json()) == info
    envelope_to_imap(info.envelope)
    bodystructure_to_imap(info.root)
    bodystructure_to_imap(info.root, extensible=False)
    for spec in ("", "HEADER", "TEXT"):
        rng = section_range(info, "", spec)
        assert rng is not None and 0 <= rng[0] <= rng[1] <= n
    header = section_range(info, "", "HEADER")
    assert header is not None
    header_fields(data[header[0] : header[1]], ["subject", "from"])
    for section in ("1", "1.1", "2", "1.2.1", "3.1"):
        for spec in ("", "MIME", "HEADER", "TEXT"):
            rng = section_range(info, section, spec)
            assert rng is None or 0 <= rng[0] <= rng[1] <= n


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_octets(data: bytes) -> None:
    check_invariants(data, analyze_strict(data))


_LINES = [
    b"--b",
    b"--b--",
    b"--c",
    b"--c--",
    b"--",
    b"",
    b"",
    b"Content-Type: multipart/mixed; boundary=b",
    b"Content-Type: multipart/alternative; boundary=c",
    b"Content-Type: multipart/digest; boundary=c",
    b"Content-Type: message/rfc822",
    b"Content-Type: text/plain; charset*0*=utf-8''%C3; charset*1*=%A4",
    b'Content-Type: text/plain; name="unterminated',
    b"Content-Type: multipart/mixed",
    b"Content-Transfer-Encoding: base64",
    b"Content-Disposition: attachment; filename=a",
    b"Subject: =?utf-8?q?x?= \xff\x00",
    b"From: A <a@b>, group: c@d;, <broken",
    b'To: "q\\"x" <@r:x@[1.2>',
    b" folded continuation",
    b"\tfolded tab",
    b"body text",
    b"\x00\xff\xfe",
    b"no colon header",
]


@st.composite
def mime_like(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(st.sampled_from(_LINES), max_size=40))
    raw = b"\r\n".join(lines)
    if draw(st.booleans()):
        raw += b"\r\n"
    if draw(st.booleans()):
        raw = raw.replace(b"\r\n", draw(st.sampled_from([b"\n", b"\r", b"\r\r\n"])))
    return raw


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mime_like())
def test_mime_shaped_input(data: bytes) -> None:
    check_invariants(data, analyze_strict(data))
    normalized = normalize_crlf(data)
    check_invariants(normalized, analyze_strict(normalized))


@pytest.mark.parametrize("name", ["nested", "rfc822_in_multipart", "digest", "empty_parts"])
def test_every_truncation(name: str) -> None:
    data = crafted_messages()[name]
    for cut in range(len(data) + 1):
        check_invariants(data[:cut], analyze_strict(data[:cut]))


def test_corpus_round_trips(corpus: dict[str, bytes]) -> None:
    for data in corpus.values():
        check_invariants(data, analyze_strict(data))


def test_crafted_round_trip() -> None:
    for data in crafted_messages().values():
        check_invariants(data, analyze_strict(data))


def test_analyze_falls_back_on_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(data: bytes) -> MessageInfo:
        raise RuntimeError("bug")

    monkeypatch.setattr("postroom.mime.parser.analyze_strict", boom)
    info = analyze(b"Subject: s\r\n\r\nbody")
    assert (info.root.header_start, info.root.body_start, info.root.body_end) == (0, 0, 18)
    assert envelope_to_imap(info.envelope) == b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"


def test_huge_attachment_is_cheap() -> None:
    body = b"QUJD" * 19 + b"\r\n"
    attachment = body * 100_000  # 8 MB of base64 lines
    data = (
        b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n\r\nhi\r\n--zz\r\n"
        b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + attachment
        + b"--zz--\r\n"
    )
    info = analyze_strict(data)
    assert info.root.children[1].size == len(attachment) - 2
    assert info.preview == "hi"
