"""The stored form: JSON round trip, compactness, versioning."""

from __future__ import annotations

import json

import pytest
from mime_helpers import msg

from postroom.mime import FORMAT_VERSION, MessageInfo, Part, analyze, unfold

DATA = msg(
    b"Subject: caf\xe9 \xc3\xa4\nFrom: J\xf6rg <j@x>\nContent-Type: multipart/mixed; boundary=b\n\n"
    b"--b\nContent-Type: text/plain; name*=utf-8''%E2%82%AC\nContent-Language: en\n\nx\n"
    b"--b\nContent-Type: message/rfc822\n\nSubject: in\n\ny\n--b--\n"
)


def test_round_trip_is_exact() -> None:
    info = analyze(DATA)
    stored = info.to_json()
    assert stored.isascii()
    back = MessageInfo.from_json(stored)
    assert back == info
    assert back.envelope.subject == "caf\udce9 ä"  # raw 8-bit survives
    assert MessageInfo.from_json(stored.decode()) == info


def test_json_is_positional_and_versioned() -> None:
    doc = json.loads(analyze(DATA).to_json())
    assert isinstance(doc, list) and doc[0] == FORMAT_VERSION
    assert b'"header_start"' not in analyze(DATA).to_json()


@pytest.mark.parametrize("bad", [b"{}", b"[]", b"[999]", b"[1, 2]", b"not json", b'"x"'])
def test_from_json_rejects_foreign_documents(bad: bytes) -> None:
    with pytest.raises(ValueError):
        MessageInfo.from_json(bad)


def test_part_helpers() -> None:
    info = analyze(DATA)
    text, message = info.root.children
    assert text.charset == "us-ascii"
    assert text.filename == "utf-8''%E2%82%AC"
    assert text.param("NAME*") == "utf-8''%E2%82%AC"
    assert message.mime_type == "message/rfc822" and message.charset is None
    assert [p.mime_type for p in info.root.walk()] == [
        "multipart/mixed",
        "text/plain",
        "message/rfc822",
        "text/plain",
    ]
    assert Part(0, 0, 5).size == 5
    assert unfold("a\r\n b") == "a b"
