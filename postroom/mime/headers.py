"""Header blocks: splitting into fields, and HEADER.FIELDS selection.

Theory of operation: a header block (RFC 5322 section 2.2) is a run of lines ending
at the first empty line. A field starts with a line that does not begin with white
space; lines that do are its continuation (folding, section 2.2.3). The field name is
what precedes the first colon, with trailing white space removed (``Subject : x`` is
a Subject, as obs-optional of section 4.5 and Dovecot allow); the value starts after
the colon and any white space that follows it on the first line, and keeps its
folding CRLFs. A line without a colon is not a field and is skipped.

Values are decoded from octets to ``str`` with UTF-8 + ``surrogateescape`` after
replacing NUL with U+FFFD (Dovecot does the same), so raw 8-bit headers survive and
re-encode to the original octets (RFC 6532 allows UTF-8 in headers; legacy mail has
Latin-1 and worse).
"""

from __future__ import annotations

from collections.abc import Iterable

_REPLACEMENT = "\ufffd".encode()


def decode_value(raw: bytes) -> str:
    """Header value octets -> str (lossless, NUL -> U+FFFD)."""
    if b"\0" in raw:
        raw = raw.replace(b"\0", _REPLACEMENT)
    return raw.decode("utf-8", "surrogateescape")


def encode_value(value: str) -> bytes:
    """Inverse of :func:`decode_value` (except for NULs)."""
    return value.encode("utf-8", "surrogateescape")


def split_fields(block: bytes) -> list[tuple[bytes, bytes]]:
    """Return (lower-case name, raw value) for every field of a header block.

    ``block`` is the header as stored (CRLF lines; the blank line may or may not be
    included). Values keep their folding CRLFs; names are lower-cased octets.
    """
    fields: list[tuple[bytes, bytes]] = []
    name: bytes | None = None
    value: list[bytes] = []
    for line in block.split(b"\r\n"):
        if not line:
            if name is not None:
                # An empty line ends the header; callers pass only the header.
                fields.append((name, b"\r\n".join(value)))
                name = None
            continue
        if line[0] in b" \t":
            if name is not None:
                value.append(line)
            continue
        if name is not None:
            fields.append((name, b"\r\n".join(value)))
            name = None
        colon = line.find(b":")
        if colon < 0:
            continue
        name = line[:colon].rstrip(b" \t").lower()
        value = [line[colon + 1 :].lstrip(b" \t")]
    if name is not None:
        fields.append((name, b"\r\n".join(value)))
    return fields


def _field_spans(raw_header: bytes) -> list[tuple[bytes, int, int]]:
    """(lower-case name or b"" for a colon-less line, start, end) of every field,
    where end includes the field's last CRLF. The blank line is excluded."""
    spans: list[tuple[bytes, int, int]] = []
    n = len(raw_header)
    pos = 0
    while pos < n:
        eol = raw_header.find(b"\r\n", pos)
        end = n if eol < 0 else eol + 2
        if end - pos == 2 and eol == pos:
            break  # the blank line: end of header
        # extend over continuation lines
        while end < n and raw_header[end] in b" \t":
            eol = raw_header.find(b"\r\n", end)
            end = n if eol < 0 else eol + 2
        colon = raw_header.find(b":", pos, end)
        name = raw_header[pos:colon].rstrip(b" \t").lower() if colon >= 0 else b""
        spans.append((name, pos, end))
        pos = end
    return spans


def header_fields(raw_header: bytes, names: Iterable[str | bytes], not_: bool = False) -> bytes:
    """The HEADER.FIELDS / HEADER.FIELDS.NOT subset of a header (RFC 9051
    section 6.4.5): the fields whose name is (or, with ``not_``, is not) in
    ``names``, compared case-insensitively, each with its original folding, in
    message order, followed by the blank line. A field that ends the header
    without a CRLF gets one. Lines without a colon are kept only by ``not_``.
    """
    wanted = {(n.encode("ascii", "replace") if isinstance(n, str) else n).lower() for n in names}
    out: list[bytes] = []
    for name, start, end in _field_spans(raw_header):
        selected = (name in wanted) if name else False
        if selected != not_:
            chunk = raw_header[start:end]
            out.append(chunk if chunk.endswith(b"\r\n") else chunk + b"\r\n")
    out.append(b"\r\n")
    return b"".join(out)
