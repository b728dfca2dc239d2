"""PREVIEW text (RFC 8970) and the has-attachment flag.

RFC 8970 section 2 leaves the algorithm to the server: up to 200 characters of
plain text, no markup, suitable to show under a subject line. Ours takes the first
text/plain part that is not an attachment (else the first text/html one, with tags,
scripts and styles removed and entities decoded), transfer-decodes and
charset-decodes the first few KiB of it, and collapses white space. Only a bounded
prefix of the body is read, so a huge message costs no more than a small one.
"""

from __future__ import annotations

import html
import re

from postroom.mime.mapped import MappedBytes
from postroom.mime.model import Part, PartKind
from postroom.mime.transfer import decode_text, decode_transfer

PREVIEW_CHARS = 200
_READ_LIMIT = 16 * 1024  # octets of encoded body looked at

_HTML_DROP = re.compile(r"<(script|style|head|title)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_HTML_TAG = re.compile(r"<[^>]*>?")
_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)


def _is_attachment(part: Part) -> bool:
    return part.content_type_given and (part.disposition or "").lower() == "attachment"


def _candidates(root: Part) -> tuple[Part | None, Part | None]:
    plain: Part | None = None
    rich: Part | None = None
    for part in _body_parts(root):
        if part.kind != PartKind.LEAF or _is_attachment(part):
            continue
        mime = part.mime_type if part.content_type_given else "text/plain"
        if mime == "text/plain" and plain is None:
            plain = part
        elif mime == "text/html" and rich is None:
            rich = part
    return plain, rich


def _body_parts(root: Part) -> list[Part]:
    """Parts of the message itself, not descending into attached messages."""
    out: list[Part] = []
    stack = [root]
    while stack:
        part = stack.pop()
        out.append(part)
        stack.extend(reversed(part.children))
    return out


def make_preview(data: bytes | MappedBytes, root: Part) -> str:
    """The PREVIEW text for a message (may be empty). Never raises."""
    plain, rich = _candidates(root)
    part = plain or rich
    if part is None:
        return ""
    limit = min(part.body_end, part.body_start + _READ_LIMIT)
    # Read a growing window: a 200-character preview rarely needs more than the first
    # 2 KiB, and collapsing white space over 16 KiB cost more than the rest of the
    # analysis (bench/smtp_bench.py profile). Windows end at a line break so base64 and
    # quoted-printable decode cleanly.
    window = 2048
    while True:
        end = min(limit, part.body_start + window)
        raw = data[part.body_start : end]
        if end < limit:
            cut = raw.rfind(b"\r\n")
            if cut > 0:
                raw = raw[:cut]
        text = _preview_text(raw, part, part is plain)
        if len(text) >= PREVIEW_CHARS or end >= limit:
            return text[:PREVIEW_CHARS]
        window *= 4


def _preview_text(raw: bytes, part: Part, is_plain: bool) -> str:
    decoded = decode_transfer(raw, part.encoding)
    if decoded is None:
        decoded = raw
    text = decode_text(decoded, part.charset)
    if not is_plain:
        text = _HTML_COMMENT.sub(" ", text)
        text = _HTML_DROP.sub(" ", text)
        text = html.unescape(_HTML_TAG.sub(" ", text))
    return " ".join(text.replace("\ufffd", "").split())  # collapse white space


def has_attachment(root: Part) -> bool:
    """True when some part is an attachment: Content-Disposition attachment, or a
    non-text leaf that carries a file name."""
    for part in root.walk():
        if part.kind == PartKind.MULTIPART:
            continue
        if _is_attachment(part):
            return True
        if part.kind == PartKind.MESSAGE:
            continue
        if part.type.lower() not in ("text", "") and part.filename is not None:
            return True
    return False
