"""CREATE (RFC 9051 section 6.3.4) with CREATE-SPECIAL-USE (RFC 6154 section 3).

``CREATE SP mailbox [SP "(" create-param *(SP create-param) ")"]`` (RFC 4466 section
2.2); the only parameter we know is ``USE SP "(" [use-attr *(SP use-attr)] ")"``.
Unknown parameters are BAD (RFC 4466 section 2.2). Whether the special-use attributes
are acceptable (``NO [USEATTR]``, RFC 6154 section 3) is the handler's decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from postroom.imap.commands.base import Availability, ImapCommand
from postroom.imap.grammar.reader import Reader

# RFC 6154 section 2 and RFC 8457 (\Important): canonical spelling.
SPECIAL_USE = {
    a.upper(): a
    for a in (
        "\\All",
        "\\Archive",
        "\\Drafts",
        "\\Flagged",
        "\\Junk",
        "\\Sent",
        "\\Trash",
        "\\Important",
    )
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Create(ImapCommand):
    """``special_use``: attributes such as ``\\Drafts`` (canonical case for known ones)."""

    mailbox: str
    special_use: tuple[str, ...] = ()

    available: ClassVar[Availability] = Availability.AUTH_OR_SELECTED


def parse_create(r: Reader, tag: str, name: str) -> Create:
    r.sp()
    mailbox = r.new_mailbox()
    uses: list[str] = []
    if r.take(b" "):
        r.expect(b"(")
        seen_use = False
        while True:
            param = r.keyword("a CREATE parameter")
            if param != "USE" or seen_use:
                raise r.fail(f"Unknown or repeated CREATE parameter {param}")
            seen_use = True
            r.sp()
            r.expect(b"(")
            if not r.take(b")"):
                while True:
                    uses.append(_use_attr(r))
                    if r.take(b")"):
                        break
                    r.sp()
            if r.take(b")"):
                break
            r.sp()
    r.end()
    return Create(tag=tag, mailbox=mailbox, special_use=tuple(dict.fromkeys(uses)))


def _use_attr(r: Reader) -> str:
    r.expect(b"\\", "a special-use attribute")
    attr = "\\" + r.atom("a special-use attribute").decode("ascii")
    return SPECIAL_USE.get(attr.upper(), attr)
