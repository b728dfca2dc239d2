"""Which mailboxes LIST and LSUB report, and with which attributes (pure functions).

Theory of operation: the handler gives the account's mailboxes (name, subscribed,
special-use) and the parsed command; this module answers the list of
``(name, attributes, child_info)`` to send. Rules and where they come from:

- Patterns (RFC 9051 section 6.3.9): ``*`` matches anything, ``%`` anything but the
  hierarchy separator; the reference is prefixed to the pattern. INBOX is
  case-insensitive, so its letters (and only those: ``INBOX/Sub`` is not ``INBOX/sub``)
  match the pattern whatever their case - ``In%``, ``*x`` and ``*b*`` all find INBOX,
  as in Dovecot.
- Names that exist only as superiors of other mailboxes are ``\\NonExistent`` in
  LIST-EXTENDED, ``\\Noselect`` in a plain LIST (RFC 5258 section 3, RFC 9051 7.3.1).
- ``\\HasChildren``/``\\HasNoChildren`` always (RFC 5258 section 4: MAY with any LIST).
- LSUB (RFC 3501 section 6.3.9): subscribed names; when ``%`` hides a subscribed
  name, its matching superior is returned instead, flagged ``\\Noselect``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from postroom.imap import commands as c


@dataclass(frozen=True)
class Box:
    """What listing needs to know of one mailbox - or of a subscription whose mailbox
    does not exist (``exists=False``: RFC 9051 section 6.3.7 keeps subscriptions when
    mailboxes go; LIST (SUBSCRIBED) shows them ``\\NonExistent``)."""

    name: str
    subscribed: bool = False
    special_use: str | None = None
    exists: bool = True


Entry = tuple[str, tuple[str, ...], tuple[str, ...]]  # name, attributes, CHILDINFO


def full_pattern(reference: str, pattern: str, sep: str) -> str:
    """The reference prefixed to the pattern (RFC 9051 section 6.3.9), without doubling
    the separator between them."""
    if reference and pattern.startswith(sep):
        return reference.rstrip(sep) + pattern
    return reference + pattern


@lru_cache(maxsize=256)
def _regex(pattern: str, sep: str) -> re.Pattern[str]:
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "%":
            out.append(f"[^{re.escape(sep)}]*")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def matches(pattern: str, name: str, sep: str) -> bool:
    """Whether ``name`` matches the LIST ``pattern`` (INBOX's letters case-folded)."""
    if name == "INBOX" or name.startswith("INBOX" + sep):
        return _match_folding(pattern, name, sep, 5)
    return _regex(pattern, sep).match(name) is not None


def _match_folding(pattern: str, name: str, sep: str, fold: int) -> bool:
    """A backtracking match where the first ``fold`` characters of ``name`` compare
    case-insensitively (patterns and names are short)."""
    memo: dict[tuple[int, int], bool] = {}

    def m(i: int, j: int) -> bool:
        key = (i, j)
        if key in memo:
            return memo[key]
        if i == len(pattern):
            result = j == len(name)
        elif pattern[i] == "*":
            result = any(m(i + 1, k) for k in range(j, len(name) + 1))
        elif pattern[i] == "%":
            k = j
            result = m(i + 1, k)
            while not result and k < len(name) and name[k] != sep:
                k += 1
                result = m(i + 1, k)
        elif j < len(name) and (name[j] == pattern[i] or (
                j < fold and name[j].upper() == pattern[i].upper())):
            result = m(i + 1, j + 1)
        else:
            result = False
        memo[key] = result
        return result

    return m(0, 0)


def _superiors(name: str, sep: str) -> Iterable[str]:
    parts = name.split(sep)
    for i in range(1, len(parts)):
        yield sep.join(parts[:i])


def list_entries(cmd: c.List, boxes: Iterable[Box], sep: str) -> list[Entry]:
    """The LIST answer for ``cmd`` (not the ``LIST "" ""`` delimiter query)."""
    boxes = list(boxes)
    by_name = {b.name: b for b in boxes if b.exists}
    implied = {s for n in by_name for s in _superiors(n, sep)} - set(by_name)
    children = {n.rsplit(sep, 1)[0] for n in [*by_name, *implied] if sep in n}
    subscribed = {b.name for b in boxes if b.subscribed}
    candidates = set(by_name) | implied
    if cmd.select_subscribed:
        candidates |= subscribed
    patterns = [full_pattern(cmd.reference, p, sep) for p in cmd.patterns]
    out: list[Entry] = []
    for name in sorted(candidates, key=lambda n: (n != "INBOX", n)):
        if not any(matches(p, name, sep) for p in patterns):
            continue
        box = by_name.get(name)
        child_info: tuple[str, ...] = ()
        if cmd.select_subscribed and name not in subscribed:
            # RFC 5258 section 3.5: a match with subscribed children only
            if cmd.select_recursive_match and any(
                    s.startswith(name + sep) for s in subscribed):
                child_info = ("SUBSCRIBED",)
            else:
                continue
        if cmd.select_special_use and (box is None or box.special_use is None):
            continue
        attrs: list[str] = []
        if box is None:
            attrs.append("\\NonExistent" if cmd.extended else "\\Noselect")
        attrs.append("\\HasChildren" if name in children else "\\HasNoChildren")
        if (cmd.return_subscribed or cmd.select_subscribed) and name in subscribed:
            attrs.append("\\Subscribed")
        if box is not None and box.special_use and (
                cmd.return_special_use or cmd.select_special_use or not cmd.extended):
            attrs.append(box.special_use)
        out.append((name, tuple(attrs), child_info))
    return out


def lsub_entries(reference: str, pattern: str, boxes: Iterable[Box], sep: str
                 ) -> list[Entry]:
    """The LSUB answer (RFC 3501 section 6.3.9)."""
    full = full_pattern(reference, pattern, sep)
    out: dict[str, tuple[str, ...]] = {}
    subscribed = [b for b in boxes if b.subscribed]
    names = {b.name for b in subscribed}
    for b in subscribed:
        if matches(full, b.name, sep):
            out[b.name] = (b.special_use,) if b.special_use else ()
            continue
        for sup in _superiors(b.name, sep):
            if sup not in names and sup not in out and matches(full, sup, sep):
                out[sup] = ("\\Noselect",)
    return [(n, out[n], ()) for n in sorted(out, key=lambda n: (n != "INBOX", n))]
