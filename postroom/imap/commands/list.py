"""LIST with LIST-EXTENDED, and LSUB.

RFC 9051 section 6.3.9 and RFC 5258 section 3:

    list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts]
    list-select-opts = "(" [...] ")"      ; SUBSCRIBED REMOTE RECURSIVEMATCH SPECIAL-USE
    mbox-or-pat = list-mailbox / patterns ; patterns = "(" list-mailbox *(SP ...) ")"
    list-return-opts = "RETURN" SP "(" [return-option *(SP return-option)] ")"

Return options: SUBSCRIBED, CHILDREN (RFC 5258 section 4), SPECIAL-USE (RFC 6154
section 5.1), STATUS (items) (RFC 5819 section 2). Unknown options are BAD, and so is
RECURSIVEMATCH without a base selection option (RFC 5258 section 3.1). LSUB is RFC 3501
section 6.3.9 (IMAP4rev1 only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from postroom.imap.commands.base import Availability, ImapCommand
from postroom.imap.commands.status import status_items
from postroom.imap.grammar.reader import Reader

_SELECT_OPTIONS = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
_BASE_SELECT = frozenset({"SUBSCRIBED", "SPECIAL-USE"})


@dataclass(frozen=True, slots=True, kw_only=True)
class List(ImapCommand):
    """``extended``: the client used LIST-EXTENDED syntax (selection options, return
    options or several patterns), which changes some answers (RFC 5258 section 3).
    ``return_status`` is ``None`` unless ``RETURN (STATUS (...))`` was asked."""

    reference: str
    patterns: tuple[str, ...]
    select_subscribed: bool = False
    select_remote: bool = False
    select_recursive_match: bool = False
    select_special_use: bool = False
    return_subscribed: bool = False
    return_children: bool = False
    return_special_use: bool = False
    return_status: tuple[str, ...] | None = None
    extended: bool = False

    available: ClassVar[Availability] = Availability.AUTH_OR_SELECTED


@dataclass(frozen=True, slots=True, kw_only=True)
class Lsub(ImapCommand):
    reference: str
    pattern: str

    available: ClassVar[Availability] = Availability.AUTH_OR_SELECTED


def parse_list(r: Reader, tag: str, name: str) -> List:
    r.sp()
    selection: list[str] = []
    extended = False
    if r.peek() == 0x28:  # "("
        extended = True
        selection = r.paren_keywords(what="a LIST selection option")
        for opt in selection:
            if opt not in _SELECT_OPTIONS:
                raise r.fail(f"Unknown LIST selection option {opt}")
        if "RECURSIVEMATCH" in selection and not _BASE_SELECT.intersection(selection):
            raise r.fail("RECURSIVEMATCH needs another selection option")
        r.sp()
    reference = r.mailbox()
    r.sp()
    if r.take(b"("):
        extended = True
        patterns = [r.list_mailbox()]
        while not r.take(b")"):
            r.sp()
            patterns.append(r.list_mailbox())
            if len(patterns) > r.options.limits.max_list_patterns:
                raise r.fail("Too many LIST patterns", code="LIMIT")
    else:
        patterns = [r.list_mailbox()]
    ret: set[str] = set()
    status: tuple[str, ...] | None = None
    if r.take(b" "):
        extended = True
        if r.keyword("RETURN") != "RETURN":
            raise r.fail("Expected RETURN")
        r.sp()
        r.expect(b"(")
        if not r.take(b")"):
            while True:
                opt = r.keyword("a LIST return option")
                if opt == "STATUS" and status is None:
                    r.sp()
                    status = status_items(r)
                elif opt in ("SUBSCRIBED", "CHILDREN", "SPECIAL-USE"):
                    ret.add(opt)
                else:
                    raise r.fail(f"Unknown or repeated LIST return option {opt}")
                if r.take(b")"):
                    break
                r.sp()
    r.end()
    return List(
        tag=tag,
        reference=reference,
        patterns=tuple(patterns),
        select_subscribed="SUBSCRIBED" in selection,
        select_remote="REMOTE" in selection,
        select_recursive_match="RECURSIVEMATCH" in selection,
        select_special_use="SPECIAL-USE" in selection,
        return_subscribed="SUBSCRIBED" in ret,
        return_children="CHILDREN" in ret,
        return_special_use="SPECIAL-USE" in ret,
        return_status=status,
        extended=extended,
    )


def parse_lsub(r: Reader, tag: str, name: str) -> Lsub:
    r.sp()
    reference = r.mailbox()
    r.sp()
    pattern = r.list_mailbox()
    r.end()
    return Lsub(tag=tag, reference=reference, pattern=pattern)
