"""Postroom against Dovecot: the same command scripts, compared after normalisation.

Dovecot's answers are recorded in ``tests/imap/fixtures/dovecot_imap_diff.json`` (by
``tests/imap/fixtures/imap_diff_harness.py``); this test replays each scenario of
``imap_diff_scenarios.py`` against a real Postroom (one account per scenario) and compares
step by step with ``imap_diff.normalize``. Differences the RFCs allow are listed below
with the reason; each is checked to still be needed, so the list cannot rot.
"""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from harness import RunningServer, running_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "imap"))

from imap_diff import Scenario, Wire, normalize, read_response, run_scenario, send_command
from imap_diff_scenarios import SCENARIOS

from postroom import admin

FIXTURE = Path(__file__).resolve().parents[1] / "imap" / "fixtures" / "dovecot_imap_diff.json"
PASSWORD = "differential test"


class SocketWire:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")

    def write(self, data: bytes) -> None:
        self.sock.sendall(data)

    def readline(self) -> bytes:
        return self.file.readline()

    def read(self, n: int) -> bytes:
        return self.file.read(n)

    def close(self) -> None:
        self.file.close()
        self.sock.close()


# ---------------------------------------------------------------------- allowed differences

Units = list[Any]
Fix = Callable[[Units, Units], tuple[Units, Units]]
CHILDREN = {"\\HasChildren", "\\HasNoChildren"}
RFC5530 = {"NONEXISTENT", "ALREADYEXISTS", "CANNOT", "TRYCREATE", "CLIENTBUG", "SERVERBUG",
           "INUSE", "LIMIT", "OVERQUOTA", "NOPERM", "EXPUNGEISSUED", "CORRUPTION"}


def _attrs(unit: Any, keep: Callable[[str], bool]) -> Any:
    return (unit[0], unit[1], tuple(a for a in unit[2] if keep(a)), *unit[3:])


def _is(unit: Any, *kinds: str) -> bool:
    return isinstance(unit, tuple) and bool(unit) and unit[0] in kinds


def children_on_request(d: Units, p: Units) -> tuple[Units, Units]:
    by_name = {u[1]: u for u in d if _is(u, "LIST")}

    def fix(u: Any) -> Any:
        twin = by_name.get(u[1]) if _is(u, "LIST") else None
        if twin is not None and not CHILDREN & set(twin[2]):
            return _attrs(u, lambda a: a not in CHILDREN)
        return u
    return d, [fix(u) for u in p]


def no_marked(d: Units, p: Units) -> tuple[Units, Units]:
    return [_attrs(u, lambda a: a not in ("\\Marked", "\\UnMarked")) if _is(u, "LIST")
            else u for u in d], p


def optional_codes(d: Units, p: Units) -> tuple[Units, Units]:
    dt, pt = d[-1], p[-1]
    if _is(dt, "TAGGED") and _is(pt, "TAGGED") and dt[1] == pt[1]:
        if len(dt) == 2 and len(pt) == 3 and pt[2][0] in RFC5530:
            p = [*p[:-1], pt[:2]]
        if len(dt) == 3 and dt[2][0] == "CLIENTBUG" and len(pt) == 2:
            d = [*d[:-1], dt[:2]]
    return d, p


def highestmodseq_always(d: Units, p: Units) -> tuple[Units, Units]:
    def hms(u: Any) -> bool:
        return _is(u, "OK") and len(u) > 1 and u[1][0] == "HIGHESTMODSEQ"
    if any(_is(u, "EXISTS") for u in p) and not any(hms(u) for u in d):
        p = [u for u in p if not hms(u)]
    return d, p


def real_superiors(names: set[str]) -> Fix:
    def fix(d: Units, p: Units) -> tuple[Units, Units]:
        d = [_attrs(u, lambda a: a not in ("\\Noselect", "\\NonExistent"))
             if _is(u, "LIST") and u[1] in names else u for u in d]
        p = [u for u in p if not (_is(u, "STATUS") and u[1] in names)]
        return d, p
    return fix


def postroom_is_right(d: Units, p: Units) -> tuple[Units, Units]:
    return p, p


def uid_in_unsolicited_fetch(d: Units, p: Units) -> tuple[Units, Units]:
    dovecot = {u[1]: dict(u[2]) for u in d if _is(u, "FETCH")}

    def fix(u: Any) -> Any:
        if not _is(u, "FETCH") or u[1] not in dovecot:
            return u
        items = dict(u[2])
        if "UID" in items and "UID" not in dovecot[u[1]]:
            del items["UID"]
            return ("FETCH", u[1], tuple(sorted(items.items())))
        return u
    return d, [fix(u) for u in p]


def read_only_refusal(d: Units, p: Units) -> tuple[Units, Units]:
    if p == [("TAGGED", "NO", ("READ-ONLY",))]:
        return p, p
    return d, p


def recent_with_exists(d: Units, p: Units) -> tuple[Units, Units]:
    def has(units: Units, kind: str) -> bool:
        return any(_is(u, kind) for u in units)
    if has(p, "EXISTS") and has(d, "EXISTS") and has(p, "RECENT") and not has(d, "RECENT"):
        p = [u for u in p if not _is(u, "RECENT")]
    return d, p


def inbox_spelling(d: Units, p: Units) -> tuple[Units, Units]:
    def fix(u: Any) -> Any:
        if _is(u, "STATUS") and u[1].upper() == "INBOX":
            return (u[0], "INBOX", *u[2:])
        return u
    return [fix(u) for u in d], p


def badcharset_list(d: Units, p: Units) -> tuple[Units, Units]:
    if (d and p and _is(d[-1], "TAGGED") and d[-1][2:] == (("BADCHARSET",),)
            and _is(p[-1], "TAGGED") and p[-1][2][0] == "BADCHARSET"):
        p = [*p[:-1], d[-1]]
    return d, p


def enabled_once(d: Units, p: Units) -> tuple[Units, Units]:
    d = [("ENABLED", tuple(dict.fromkeys(u[1]))) if _is(u, "ENABLED") else u for u in d]
    p = [u for u in p if u != ("ENABLED", ())]
    return d, p


def unsolicited_highestmodseq(d: Units, p: Units) -> tuple[Units, Units]:
    def hms(u: Any) -> bool:
        return _is(u, "OK") and len(u) > 1 and u[1][0] == "HIGHESTMODSEQ"
    if not any(_is(u, "FLAGS") for u in d) and not any(hms(u) for u in p):
        d = [u for u in d if not hms(u)]
    return d, p


def tagged_highestmodseq(d: Units, p: Units) -> tuple[Units, Units]:
    if (d and p and _is(d[-1], "TAGGED") and _is(p[-1], "TAGGED")
            and d[-1][2:] == (("HIGHESTMODSEQ", "M"),) and len(p[-1]) == 2):
        d = [*d[:-1], d[-1][:2]]
    return d, p


def unused_keywords_kept(d: Units, p: Units) -> tuple[Units, Units]:
    """Dovecot's FLAGS keep keywords no message has any more."""
    ours = {u[0] if _is(u, "FLAGS") else u[1][0]: u for u in p
            if _is(u, "FLAGS") or (_is(u, "OK") and len(u) > 1
                                   and u[1][0] == "PERMANENTFLAGS")}

    def fix(u: Any) -> Any:
        key = "FLAGS" if _is(u, "FLAGS") else (
            u[1][0] if _is(u, "OK") and len(u) > 1 else None)
        twin = ours.get(key) if key in ("FLAGS", "PERMANENTFLAGS") else None
        if twin is None:
            return u
        theirs = u[1] if key == "FLAGS" else u[1][1]
        mine = twin[1] if key == "FLAGS" else twin[1][1]
        if set(mine) <= set(theirs) and all(not f.startswith("\\")
                                            for f in set(theirs) - set(mine)):
            return twin
        return u
    return [fix(u) for u in d], p


STEPS_ALLOWED: list[tuple[str, int, str]] = [
    ("create_delete", 4, "RFC 9051 section 6.3.4: a server that needs no declaration of "
     "superior names MUST ignore a trailing separator: CREATE new/ makes 'new'"),
    ("create_delete", 5, "follows: 'new' exists already"),
    ("create_delete", 7, "Postroom's 'deep' is a real mailbox (superiors are created): "
     "deleting it is fine, its children stay (RFC 9051 section 6.3.5)"),
    ("create_delete", 18, "DELETE of the selected mailbox: Dovecot disconnects at the next "
     "command, Postroom has deselected it"),
    ("rename", 14, "RENAME INBOX while selected: Postroom reports the moved messages as "
     "expunged; Dovecot says nothing and disconnects at the next command"),
    ("rename", 15, "follows: Dovecot's BYE"),
    ("rename", 16, "RFC 9051 section 6.3.6 leaves INBOX empty after RENAME INBOX; Postroom "
     "keeps its UIDVALIDITY and so its UIDNEXT (UIDs are never reused), Dovecot makes a "
     "new INBOX"),
    ("copy_move", 22, "follows from Dovecot's MOVE out of a read-only mailbox"),
    ("expunge", 13, "flag changes of messages another session expunged, not yet announced: "
     "Dovecot reports them, Postroom (which reports the EXPUNGE soon after) does not"),
    ("expunge", 14, "the same messages' FLAGS: Postroom answers the last flags it "
     "reported, Dovecot the newer ones"),
    ("noop_updates", 8, "as expunge step 13"),
    ("superiors_and_inbox_children", 1, "Postroom's superior 'a' is a real mailbox: it can "
     "be deleted (its child stays); Dovecot's is a non-selectable placeholder"),
    ("superiors_and_inbox_children", 5, "follows: Postroom's 'a' no longer exists "
     "(\\NonExistent in extended LIST, RFC 5258 section 3), Dovecot's is a \\Noselect "
     "placeholder"),
    ("superiors_and_inbox_children", 13, "as create_delete step 18 (the selected mailbox "
     "was deleted by this session)"),
    ("search_modseq", 6, "RFC 5161 section 3.1: ENABLE is valid in the authenticated state "
     "only; Dovecot accepts it with a mailbox selected"),
    ("errors", 5, "RFC 9051 section 9: NOOP takes no argument (BAD); Dovecot ignores it"),
]


# Not allowed by the RFCs: Postroom bugs, kept visible here until fixed. (Subscriptions
# as names independent of mailboxes, RFC 9051 section 6.3.7, were the last: fixed with
# the store's subscriptions table.)
KNOWN_GAPS: list[tuple[str, int, str]] = []


@dataclass(frozen=True)
class Allowed:
    """A difference the RFCs permit: ``fix`` removes it from both sides of one step
    where ``scenario``/``step`` match (None: everywhere)."""

    reason: str
    fix: Fix
    scenario: str | None = None
    step: int | None = None


ALLOWED: list[Allowed] = [
    Allowed("RFC 5258 section 4: \\HasChildren/\\HasNoChildren MAY be returned with any LIST; "
            "Postroom always does, Dovecot only for RETURN (CHILDREN) or plain LIST",
            children_on_request),
    Allowed("RFC 9051 section 7.3.1 / RFC 3348: \\Marked and \\UnMarked are optional hints",
            no_marked),
    Allowed("RFC 5530 response codes are optional; Postroom adds NONEXISTENT, ALREADYEXISTS, "
            "CANNOT where Dovecot sends none, Dovecot adds CLIENTBUG to STATUS on the "
            "selected mailbox", optional_codes),
    Allowed("RFC 7162 section 3.1.2.1: a server with persistent mod-sequences sends "
            "HIGHESTMODSEQ on every SELECT/EXAMINE; Dovecot only once CONDSTORE is on",
            highestmodseq_always),
    Allowed("RFC 9051 section 7.5.2: a server MAY add UID to an unsolicited FETCH (Postroom "
            "always names the UID of a flag change)", uid_in_unsolicited_fetch),
    Allowed("RFC 9051 section 6.3.3: nothing may change in an EXAMINEd mailbox; Postroom "
            "answers NO [READ-ONLY] to STORE, EXPUNGE, MOVE there, Dovecot says OK and does "
            "nothing (or, for MOVE, moves)", read_only_refusal),
    Allowed("RFC 3501 section 7.3.2: RECENT comes with a size change; Postroom always "
            "follows EXISTS with it, Dovecot only when the count changed",
            recent_with_exists),
    Allowed("RFC 9051 section 5.1: INBOX is case-insensitive; Postroom names it INBOX in "
            "STATUS, Dovecot echoes the client's spelling", inbox_spelling),
    Allowed("RFC 9051 section 7.1: BADCHARSET MAY list the supported charsets",
            badcharset_list),
    Allowed("RFC 5161 section 3.2: ENABLED lists what the command enabled (Dovecot "
            "repeats a name given twice; Postroom sends an empty ENABLED)", enabled_once),
    Allowed("Dovecot announces HIGHESTMODSEQ in an untagged OK after EXISTS or flag "
            "changes under QRESYNC, and in the tagged OK of EXPUNGE; no RFC requires it "
            "(Postroom: the tagged OK of any command that reported VANISHED)",
            unsolicited_highestmodseq),
    Allowed("as above, tagged", tagged_highestmodseq),
    Allowed("RFC 9051 section 7.3.5: FLAGS lists the flags applicable in the mailbox; "
            "Postroom lists the keywords in use, Dovecot every keyword ever used there",
            unused_keywords_kept),
    *(Allowed("RFC 9051 sections 6.3.4, 6.3.6: CREATE and RENAME SHOULD create the superior "
              "names; Postroom makes them real mailboxes, Dovecot \\Noselect placeholders",
              real_superiors(names), scenario=name)
      for name, names in {
          "list_patterns": {"a", "a/b"}, "list_extended": {"p", "p/q"},
          "list_status": {"x"}, "create_delete": {"deep/er"},
          "rename": {"c", "new", "new/deep"}, "mailbox_names": {"x", "x/&-"}}.items()),
    *(Allowed(reason, postroom_is_right, scenario=name, step=step)
      for name, step, reason in [*STEPS_ALLOWED, *KNOWN_GAPS]),
]


USED: set[int] = set()  # ids of the ALLOWED entries some step needed
RAN: set[str] = set()  # scenarios that passed


def apply_allowed(name: str, n: int, d: Units, p: Units) -> tuple[Units, Units, list[Allowed]]:
    used = []
    for a in ALLOWED:
        if a.scenario in (None, name) and a.step in (None, n):
            d2, p2 = a.fix(d, p)
            if (d2, p2) != (d, p):
                used.append(a)
            d, p = d2, p2
    return d, p, used


# ---------------------------------------------------------------------- the test


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with running_server(tmp_path_factory.mktemp("diff"), listeners=("imap",)) as s:
        yield s


def run_postroom(server: RunningServer, scenario: Scenario, index: int) -> list[list[bytes]]:
    address = f"diff{index}@example.com"
    server.call(admin.add_user(server.store, address, PASSWORD))
    opened: list[SocketWire] = []

    def connect(_session: int) -> Wire:
        w = SocketWire(server.ports["imap"])
        opened.append(w)
        read_response(w)
        answer = send_command(w, "login", f'LOGIN {address} "{PASSWORD}"'.encode())
        assert answer[-1].startswith(b"login OK"), answer
        return w

    try:
        return run_scenario(scenario, connect)
    finally:
        for w in opened:
            w.close()


def recorded() -> dict[str, Any]:
    return dict(json.loads(FIXTURE.read_text()))


@pytest.mark.parametrize("index", range(len(SCENARIOS)),
                         ids=[s.name for s in SCENARIOS])
def test_same_answers_as_dovecot(server: RunningServer, index: int) -> None:
    scenario = SCENARIOS[index]
    fixture = recorded()[scenario.name]
    assert fixture["commands"] == [s.command for s in scenario.steps], \
        "scenario changed: rerun tests/imap/fixtures/imap_diff_harness.py"
    dovecot = normalize([[ln.encode("latin-1") for ln in step]
                         for step in fixture["responses"]])
    postroom = normalize(run_postroom(server, scenario, index))
    steps_used: set[tuple[str | None, int | None]] = set()
    problems = []
    for n, (d, p) in enumerate(zip(dovecot, postroom, strict=True)):
        d, p, used = apply_allowed(scenario.name, n, d, p)
        if d != p:
            problems.append(f"step {n}: {scenario.steps[n].command[:80]!r}\n"
                            f"  dovecot:  {d}\n  postroom: {p}")
        for a in used:
            USED.add(id(a))
            if a.step is not None:
                steps_used.add((a.scenario, a.step))
    stale = [(a.scenario, a.step) for a in ALLOWED if a.scenario == scenario.name
             and a.step is not None and (a.scenario, a.step) not in steps_used]
    assert not stale, f"allowed differences that no longer occur: {stale}"
    assert not problems, "\n".join(problems)
    RAN.add(scenario.name)


def test_every_allowed_difference_is_still_needed() -> None:
    """Runs after the scenarios (same module, defined later): a rule no scenario needs
    any more is stale and must go."""
    if {s.name for s in SCENARIOS} != RAN:
        pytest.skip("not every scenario ran")
    stale = [f"{a.scenario or '*'}/{a.step}: {a.reason}" for a in ALLOWED if id(a) not in USED]
    assert not stale, stale
