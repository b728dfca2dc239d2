"""LIST/LSUB selection (``postroom.imap.listing``): patterns, INBOX case, attributes."""

from __future__ import annotations

import pytest

from postroom.imap.commands import List
from postroom.imap.listing import Box, full_pattern, list_entries, lsub_entries, matches

BOXES = [Box("INBOX", True), Box("INBOX/Sub", False), Box("Sent", True, "\\Sent"),
         Box("a/b/c", True), Box("a/x"), Box("top")]


@pytest.mark.parametrize(("pattern", "name", "expected"), [
    ("*", "a/b/c", True),
    ("%", "a/b/c", False),
    ("a/%", "a/b", True),
    ("a/%", "a/b/c", False),
    ("a%", "a", True),
    ("%/%", "a/b", True),
    ("*x", "INBOX", True),  # INBOX's letters match in any case, as in Dovecot
    ("*b*", "INBOX", True),
    ("In%", "INBOX", True),
    ("inbox", "INBOX", True),
    ("inbox/%", "INBOX/Sub", True),
    ("INBOX/sub", "INBOX/Sub", False),  # the rest of the name stays case-sensitive
    ("*x", "INBOXES", False),  # not INBOX: no folding
    ("inboxes", "INBOXES", False),
    ("", "", True),
    ("a%c", "abc", True),
    ("a%c", "a/c", False),
    ("a*c", "a/b/c", True),
    ("x.y", "xzy", False),  # no regex leaks
    ("%%", "ab", True),
])
def test_matches(pattern: str, name: str, expected: bool) -> None:
    assert matches(pattern, name, "/") is expected


def test_reference_is_prefixed_without_doubling_the_separator() -> None:
    assert full_pattern("a/", "%", "/") == "a/%"
    assert full_pattern("a/", "/b", "/") == "a/b"
    assert full_pattern("", "/b", "/") == "/b"
    assert full_pattern("a", "%", "/") == "a%"


def entries(**kw: object) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    cmd = List(tag="t", reference=str(kw.pop("reference", "")),
               patterns=tuple(kw.pop("patterns", ("*",))), **kw)  # type: ignore[arg-type]
    return list_entries(cmd, BOXES, "/")


def test_plain_list_marks_implied_superiors_noselect() -> None:
    got = {n: a for n, a, _ in entries()}
    assert next(iter(got)) == "INBOX"
    assert got["a"] == ("\\Noselect", "\\HasChildren")
    assert got["a/b"] == ("\\Noselect", "\\HasChildren")
    assert got["a/b/c"] == ("\\HasNoChildren",)
    assert got["INBOX"] == ("\\HasChildren",)
    assert got["Sent"] == ("\\HasNoChildren", "\\Sent")


def test_extended_list_says_nonexistent_and_selects() -> None:
    got = {n: (a, ci) for n, a, ci in entries(patterns=("%",), extended=True,
                                               select_subscribed=True,
                                               select_recursive_match=True)}
    assert got == {"INBOX": (("\\HasChildren", "\\Subscribed"), ()),
                   "Sent": (("\\HasNoChildren", "\\Subscribed"), ()),
                   "a": (("\\NonExistent", "\\HasChildren"), ("SUBSCRIBED",))}
    special = entries(extended=True, select_special_use=True)
    assert [(n, a) for n, a, _ in special] == [("Sent", ("\\HasNoChildren", "\\Sent"))]
    # special-use attributes only when asked for, in extended syntax
    assert dict((n, a) for n, a, _ in entries(extended=True))["Sent"] == ("\\HasNoChildren",)


def test_lsub_returns_hidden_superiors_as_noselect() -> None:
    def lsub(pattern: str) -> list[tuple[str, tuple[str, ...]]]:
        return [(n, a) for n, a, _ in lsub_entries("", pattern, BOXES, "/")]

    assert lsub("%") == [("INBOX", ()), ("Sent", ("\\Sent",)), ("a", ("\\Noselect",))]
    assert lsub("a/%") == [("a/b", ("\\Noselect",))]
    assert lsub("*") == [("INBOX", ()), ("Sent", ("\\Sent",)), ("a/b/c", ())]
    assert lsub("inbox") == [("INBOX", ())]


def test_subscriptions_without_a_mailbox_show_only_when_selecting_subscribed() -> None:
    boxes = [*BOXES, Box("gone", subscribed=True, exists=False)]

    def run(**kw: object) -> dict[str, tuple[str, ...]]:
        cmd = List(tag="t", reference="", patterns=("%",), **kw)  # type: ignore[arg-type]
        return {n: a for n, a, _ in list_entries(cmd, boxes, "/")}

    assert "gone" not in run()
    assert "gone" not in run(extended=True, return_subscribed=True)
    assert run(extended=True, select_subscribed=True)["gone"] == (
        "\\NonExistent", "\\HasNoChildren", "\\Subscribed")
    assert lsub_entries("", "g*", boxes, "/") == [("gone", (), ())]
