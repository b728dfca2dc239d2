"""IMAP section numbers and the byte ranges FETCH BODY[...] / BINARY[...] serve.

RFC 9051 section 6.4.5: every message has at least part 1; a non-multipart message
(or an encapsulated message whose body is not multipart) has only part 1, its body;
the parts of a multipart are numbered from 1; a message/rfc822 part's own parts are
numbered below it, as for a message. ``HEADER`` / ``TEXT`` apply to a message (the
top level, section "") or to a message/rfc822 part; ``MIME`` applies to any numbered
part and is its MIME header (for part 1 of a non-multipart message that is the
message header itself).

All ranges are ``(start, end)`` offsets into the stored message, end exclusive;
None means "no such part" (the IMAP server answers with an empty string or NO, as
its policy says).
"""

from __future__ import annotations

from postroom.mime.model import MessageInfo, Part, PartKind


def parse_section(section: str) -> list[int] | None:
    """Section text to part numbers: "1.2.3" -> [1, 2, 3], "" -> [], and None
    when it is not a valid part number."""
    if section == "":
        return []
    nums: list[int] = []
    for piece in section.split("."):
        if not piece.isdigit() or not piece.isascii() or piece.startswith("0") or len(piece) > 9:
            return None
        nums.append(int(piece))
    return nums


def _root(info: MessageInfo | Part) -> Part:
    return info.root if isinstance(info, MessageInfo) else info


def part_by_section(info: MessageInfo | Part, section: str) -> Part | None:
    """The part a section number names; "" names the message itself."""
    nums = parse_section(section)
    if nums is None:
        return None
    cur = _root(info)
    at_message = True  # cur is a message (top level or encapsulated)
    for k in nums:
        if cur.kind == PartKind.MESSAGE and not at_message:
            if cur.message is None:
                return None
            cur = cur.message
            at_message = True
        if cur.kind == PartKind.MULTIPART:
            if not 1 <= k <= len(cur.children):
                return None
            cur = cur.children[k - 1]
        elif at_message and k == 1:
            pass  # part 1 of a non-multipart message is its body: the same entity
        else:
            return None
        at_message = False
    return cur


def _message_of(info: MessageInfo | Part, section: str) -> Part | None:
    """The message a HEADER/TEXT specifier applies to: the top level for "", the
    encapsulated message of a message/rfc822 part otherwise."""
    if section == "":
        return _root(info)
    part = part_by_section(info, section)
    if part is None or part.kind != PartKind.MESSAGE:
        return None
    return part.message


def body_range(info: MessageInfo | Part, section: str) -> tuple[int, int] | None:
    """BODY[section]: the whole message for "", else the part's body (for a
    message/rfc822 part: the whole encapsulated message)."""
    if section == "":
        root = _root(info)
        return root.header_start, root.body_end
    part = part_by_section(info, section)
    return None if part is None else (part.body_start, part.body_end)


def header_range(info: MessageInfo | Part, section: str = "") -> tuple[int, int] | None:
    """BODY[section.HEADER] (also the source for HEADER.FIELDS[.NOT])."""
    msg = _message_of(info, section)
    return None if msg is None else (msg.header_start, msg.body_start)


def text_range(info: MessageInfo | Part, section: str = "") -> tuple[int, int] | None:
    """BODY[section.TEXT]: the body of a message."""
    msg = _message_of(info, section)
    return None if msg is None else (msg.body_start, msg.body_end)


def mime_range(info: MessageInfo | Part, section: str) -> tuple[int, int] | None:
    """BODY[section.MIME]: the MIME header of a numbered part (not for "")."""
    if section == "":
        return None
    part = part_by_section(info, section)
    return None if part is None else (part.header_start, part.body_start)


def section_range(
    info: MessageInfo | Part, section: str, specifier: str = ""
) -> tuple[int, int] | None:
    """Dispatch on the section text specifier: "", "HEADER", "TEXT", "MIME"
    (case-insensitive; HEADER.FIELDS[.NOT] use the HEADER range)."""
    spec = specifier.upper()
    if spec == "":
        return body_range(info, section)
    if spec.startswith("HEADER"):
        return header_range(info, section)
    if spec == "TEXT":
        return text_range(info, section)
    if spec == "MIME":
        return mime_range(info, section)
    return None
