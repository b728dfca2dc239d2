"""Fuzz target: MIME analysis for ENVELOPE, BODYSTRUCTURE, sections and search fields
(what APPEND and delivery store once per message). Any octets give an analysis whose
parts nest inside each other and the message, which survives its JSON round trip, and
whose IMAP forms serialise. ``python -m fuzz.mime_structure --seconds N``."""

from __future__ import annotations

from fuzz.engine import Target, main
from postroom.imap.responses import FetchResponse
from postroom.mime import (
    MessageInfo,
    Part,
    PartKind,
    bodystructure_to_imap,
    envelope_to_imap,
    header_fields,
    section_range,
)
from postroom.mime.parser import analyze_strict


def _visit(part: Part, lo: int, hi: int, data: bytes, depth: int) -> None:
    assert depth < 200, "structure deeper than the parser's bound"
    assert lo <= part.header_start <= part.body_start <= part.body_end <= hi
    if part.kind == PartKind.MULTIPART:
        pos = part.body_start
        for child in part.children:
            assert child.header_start >= pos
            pos = child.body_end
            _visit(child, part.body_start, part.body_end, data, depth + 1)
    elif part.kind == PartKind.MESSAGE:
        assert part.message is not None
        _visit(part.message, part.body_start, part.body_end, data, depth + 1)
    if part.lines is not None:
        assert part.lines == data.count(b"\n", part.body_start, part.body_end)


def check(data: bytes) -> None:
    # analyze() falls back to one opaque part when the analysis raises; a fallback is
    # a bug to find, so the strict form is fuzzed.
    info = analyze_strict(data)
    assert info.size == len(data)
    _visit(info.root, 0, len(data), data, 0)
    assert MessageInfo.from_json(info.to_json()) == info
    values = [("ENVELOPE", envelope_to_imap(info.envelope)),
              ("BODYSTRUCTURE", bodystructure_to_imap(info.root)),
              ("BODY", bodystructure_to_imap(info.root, extensible=False))]
    wire = bytes(FetchResponse(1, values))
    assert wire.endswith(b")\r\n")
    for section in ("", "1", "2", "1.1", "2.1", "1.2.3"):
        for spec in ("", "MIME", "HEADER", "TEXT"):
            if not section and spec == "MIME":
                continue
            rng = section_range(info, section, spec)
            assert rng is None or 0 <= rng[0] <= rng[1] <= len(data)
    header = section_range(info, "", "HEADER")
    assert header is not None
    header_fields(data[header[0] : header[1]], ["subject", "from", "content-type"])


DICTIONARY = (
    b"\r\n", b"\n", b"\r\n\r\n", b"Content-Type: multipart/mixed; boundary=b\r\n", b"--b\r\n",
    b"--b--\r\n", b"Content-Type: message/rfc822\r\n", b"Content-Type: text/plain; charset=",
    b"Content-Transfer-Encoding: base64\r\n", b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Content-Disposition: attachment; filename*=UTF-8''%e2%82%ac\r\n", b"From: ", b"To: ",
    b"Subject: =?UTF-8?B?w6k=?=\r\n", b"=?x?Q?a_b?=", b"=?utf-8?q?", b"?=", b"\xc3\xa9", b"Date: ", b"Message-ID: <a@b>\r\n",
    b"In-Reply-To: ", b"Sender: ", b"Reply-To: ", b"Cc: a:b@c,d@e;\r\n", b'"q\\"',
    b"(comment (nested))", b"<@route:a@b>", b"\t", b" ", b";", b"=", b'"', b"\x00", b"\xff",
    b"Content-Type: multipart/alternative; boundary=\"c\"\r\n\r\n--c\r\n" * 3,
)

# Raw UTF-8 inside an RFC 2047 encoded word used to raise in _decode_word; fixed, see
# test_mime_encoded_word_with_raw_utf8_keeps_the_structure.
TARGET = Target("mime_structure", check, DICTIONARY, max_size=20000)

if __name__ == "__main__":
    raise SystemExit(main(TARGET))
