"""The differential comparator (``imap_diff.py``) says equal only what the RFCs make
equal: a comparator that hides real differences would make the Dovecot test worthless."""

from __future__ import annotations

import io

from imap_diff import Step, expand_set, normalize, read_response, send_command


def norm(*lines: str, tag: str = "s0") -> list[object]:
    return normalize([[ln.encode() for ln in (*lines, f"{tag} OK done")]])[0]


def test_expunge_runs_compare_by_what_they_removed() -> None:
    ascending = norm("* 1 EXPUNGE", "* 1 EXPUNGE", "* 1 EXPUNGE")
    descending = norm("* 3 EXPUNGE", "* 2 EXPUNGE", "* 1 EXPUNGE")
    assert ascending == descending == [("EXPUNGED", (1, 2, 3)), ("TAGGED", "OK")]
    assert norm("* 2 EXPUNGE", "* 2 EXPUNGE") != norm("* 2 EXPUNGE", "* 3 EXPUNGE")


def test_fetch_items_order_and_splits_do_not_matter_but_values_do() -> None:
    a = norm("* 1 FETCH (UID 7 FLAGS (\\Seen \\Answered))")
    b = norm("* 1 FETCH (FLAGS (\\Answered \\Seen))", "* 1 FETCH (UID 7)")
    assert a == b
    assert a != norm("* 1 FETCH (UID 7 FLAGS (\\Seen))")
    assert a != norm("* 2 FETCH (UID 7 FLAGS (\\Seen \\Answered))")


def test_strings_atoms_and_literals_spell_the_same_name() -> None:
    assert norm('* LIST (\\HasNoChildren) "/" Sent') == norm(
        '* LIST (\\HasNoChildren) "/" "Sent"') == norm(
        '* LIST (\\HasNoChildren) "/" {4}\r\nSent')
    assert norm('* LIST () "/" Sent') != norm('* LIST () "/" Trash')


def test_codes_are_kept_text_is_not() -> None:
    assert norm("* OK [UIDNEXT 4] Predicted") == norm("* OK [UIDNEXT 4] whatever")
    assert norm("* OK [UIDNEXT 4] x") != norm("* OK [UIDNEXT 5] x")
    assert normalize([[b"s0 NO [TRYCREATE] nope"]]) != normalize([[b"s0 NO nope"]])


def test_uidvalidity_equalities_survive_symbols() -> None:
    same = normalize([[b"* OK [UIDVALIDITY 99] x", b"s0 OK"],
                      [b"s1 OK [COPYUID 99 1 5] done"]])
    other = normalize([[b"* OK [UIDVALIDITY 99] x", b"s0 OK"],
                       [b"s1 OK [COPYUID 42 1 5] done"]])
    assert same[1] == [("TAGGED", "OK", ("COPYUID", "V1", (1,), (5,)))]
    assert other[1] == [("TAGGED", "OK", ("COPYUID", "V2", (1,), (5,)))]


def test_sets_are_expanded() -> None:
    assert expand_set("1:3,7,9:8") == (1, 2, 3, 7, 9, 8)
    assert norm("* ESEARCH (TAG \"s0\") ALL 1:2,4") == norm('* ESEARCH (TAG "s0") ALL 1,2,4')


class FakeWire:
    def __init__(self, server_bytes: bytes) -> None:
        self.input = io.BytesIO(server_bytes)
        self.sent = b""

    def write(self, data: bytes) -> None:
        self.sent += data

    def readline(self) -> bytes:
        return self.input.readline()

    def read(self, n: int) -> bytes:
        return self.input.read(n)


def test_literals_are_read_whole_and_sync_literals_wait_for_the_continuation() -> None:
    w = FakeWire(b"* 1 FETCH (BODY[] {5}\r\nab\r\nc)\r\n")
    assert read_response(w) == b"* 1 FETCH (BODY[] {5}\r\nab\r\nc)"
    refused = FakeWire(b"t NO [TRYCREATE] no such mailbox\r\n")
    assert send_command(refused, "t", b"APPEND x {5}\r\nhello") == [
        b"t NO [TRYCREATE] no such mailbox"]
    assert refused.sent == b"t APPEND x {5}\r\n"  # the data never went
    accepted = FakeWire(b"+ go\r\nt OK done\r\n")
    assert send_command(accepted, "t", b"APPEND x {5}\r\nhello")[-1] == b"t OK done"
    assert accepted.sent == b"t APPEND x {5}\r\nhello\r\n"
    assert Step("NOOP").session == 0
