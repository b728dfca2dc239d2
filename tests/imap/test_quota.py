"""QUOTA (RFC 9208): parsing at every split, the responses, and the commands against a
real server, driven by Python's imaplib (its getquota/getquotaroot/setquota) and, where
the exact wire form matters, by a raw socket."""

from __future__ import annotations

import imaplib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import RunningServer, running_server
from imap_wire import parse, parse_error

from postroom.imap.commands import Availability, GetQuota, GetQuotaRoot, SetQuota
from postroom.imap.handlers.quota import storage_kib
from postroom.imap.responses import QuotaResponse, QuotaRootResponse

# --- parsing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # RFC 9208 section 4.1.1 and 4.2.1 examples
        (b'a GETQUOTA ""\r\n', GetQuota(tag="a", root="")),
        (b'G0001 GETQUOTA "!partition/sda4"\r\n', GetQuota(tag="G0001", root="!partition/sda4")),
        (b"a getquota user\r\n", GetQuota(tag="a", root="user")),
        (b"a GETQUOTA {10}\r\nUser quota\r\n", GetQuota(tag="a", root="User quota")),
        # section 4.1.2
        (b"G0002 GETQUOTAROOT INBOX\r\n", GetQuotaRoot(tag="G0002", mailbox="INBOX")),
        (b"a GETQUOTAROOT inbox\r\n", GetQuotaRoot(tag="a", mailbox="inbox")),
        (b'a GETQUOTAROOT "Entw&APw-rfe"\r\n', GetQuotaRoot(tag="a", mailbox="Entwürfe")),
        (b"a GETQUOTAROOT {3+}\r\na b\r\n", GetQuotaRoot(tag="a", mailbox="a b")),
        # section 4.1.3
        (b'S0001 SETQUOTA "#user/alice" (STORAGE 510)\r\n',
         SetQuota(tag="S0001", root="#user/alice", limits=(("STORAGE", 510),))),
        (b'a SETQUOTA "" ()\r\n', SetQuota(tag="a", root="", limits=())),
        (b"a SETQUOTA x (storage 1 MESSAGE 1000 X-VENDOR 42)\r\n",
         SetQuota(tag="a", root="x",
                  limits=(("STORAGE", 1), ("MESSAGE", 1000), ("X-VENDOR", 42)))),
        (b"a SETQUOTA x (STORAGE 9223372036854775807)\r\n",  # number64's largest
         SetQuota(tag="a", root="x", limits=(("STORAGE", 2**63 - 1),))),
    ],
)
def test_quota_commands_parse_at_every_split(line: bytes, expected: object) -> None:
    assert parse(line) == expected


def test_getquotaroot_names_in_a_utf8_session() -> None:
    assert parse('a GETQUOTAROOT "Entwürfe"\r\n'.encode(), utf8=True) == GetQuotaRoot(
        tag="a", mailbox="Entwürfe")
    assert parse_error(b'a GETQUOTAROOT "\xff"\r\n', utf8=True).text == (
        "Mailbox name is not valid UTF-8")


@pytest.mark.parametrize(
    ("line", "text"),
    [
        (b"a GETQUOTA\r\n", "Expected a space at end of line"),
        (b"a GETQUOTA \r\n", "Expected a quota root name at end of line"),
        (b'a GETQUOTA "" x\r\n', "Unexpected extra arguments at ' x'"),
        (b"a GETQUOTA (x)\r\n", "Expected a quota root name at '(x)'"),
        (b"a GETQUOTAROOT\r\n", "Expected a space at end of line"),
        (b"a GETQUOTAROOT INBOX Sent\r\n", "Unexpected extra arguments at ' Sent'"),
        (b"a GETQUOTAROOT {3}\r\na\tb\r\n", "Mailbox name contains control characters"),
        (b'a SETQUOTA ""\r\n', "Expected a space at end of line"),
        (b'a SETQUOTA "" STORAGE 512\r\n',
         "Expected a parenthesised list of resource limits at 'STORAGE 512'"),
        (b'a SETQUOTA "" (STORAGE)\r\n', "Expected a space at ')'"),
        (b'a SETQUOTA "" (STORAGE x)\r\n', "Expected a number at 'x)'"),
        (b'a SETQUOTA "" (STORAGE -1)\r\n', "Expected a number at '-1)'"),
        (b'a SETQUOTA "" (STORAGE 9223372036854775808)\r\n', "Number out of range"),
        (b'a SETQUOTA "" (512 STORAGE)\r\n', "Expected a number at 'STORAGE)'"),  # 512: an atom
        (b'a SETQUOTA "" ("STORAGE" 512)\r\n', "Expected a resource name at '\"STORAGE\" 512)'"),
        (b'a SETQUOTA "" (STORAGE 1  MESSAGE 2)\r\n', "Expected a resource name at ' MESSAGE 2)'"),
        (b'a SETQUOTA "" (STORAGE 1 )\r\n', "Expected a resource name at ')'"),
        (b'a SETQUOTA "" (STORAGE 1\r\n', "Expected a space at end of line"),
        (b'a SETQUOTA "" (STORAGE 1) x\r\n', "Unexpected extra arguments at ' x'"),
    ],
)
def test_malformed_quota_commands_are_bad(line: bytes, text: str) -> None:
    error = parse_error(line)
    assert (error.tag, error.status, error.text) == ("a", "BAD", text)


def test_setquota_resource_count_is_bounded() -> None:
    pairs = b" ".join(b"R%d 1" % i for i in range(101))
    error = parse_error(b'a SETQUOTA "" (' + pairs + b")\r\n")
    assert (error.status, error.code, error.text) == ("BAD", "LIMIT", "Too many resource limits")
    pairs = b" ".join(b"R%d 1" % i for i in range(100))
    command = parse(b'a SETQUOTA "" (' + pairs + b")\r\n")
    assert isinstance(command, SetQuota) and len(command.limits) == 100


def test_quota_commands_need_authentication() -> None:
    for command in (GetQuota, GetQuotaRoot, SetQuota):
        assert command.available is Availability.AUTH_OR_SELECTED
    assert [GetQuota(tag="t", root="").name, GetQuotaRoot(tag="t", mailbox="x").name,
            SetQuota(tag="t", root="", limits=()).name] == ["GETQUOTA", "GETQUOTAROOT",
                                                            "SETQUOTA"]


# --- responses ---------------------------------------------------------------------------


def test_quota_responses() -> None:
    # RFC 9208 sections 4.2.1 and 4.2.2 examples
    assert bytes(QuotaResponse("", [("STORAGE", 10, 512)])) == b'* QUOTA "" (STORAGE 10 512)\r\n'
    assert bytes(QuotaRootResponse("INBOX", [""])) == b'* QUOTAROOT "INBOX" ""\r\n'
    assert bytes(QuotaRootResponse("comp.mail.mime")) == b'* QUOTAROOT "comp.mail.mime"\r\n'
    assert bytes(QuotaResponse("#user/alice", [("STORAGE", 54, 111), ("MESSAGE", 42, 1000)])) \
        == b"* QUOTA #user/alice (STORAGE 54 111 MESSAGE 42 1000)\r\n"  # an astring
    assert bytes(QuotaResponse("root", [("STORAGE", 0, 1)])) == b"* QUOTA root (STORAGE 0 1)\r\n"
    # mailbox names as everywhere: modified UTF-7, or UTF-8 once enabled
    assert bytes(QuotaRootResponse("Entwürfe", [""])) == b'* QUOTAROOT "Entw&APw-rfe" ""\r\n'
    assert bytes(QuotaRootResponse("Entwürfe", [""], utf8=True)) == (
        '* QUOTAROOT "Entwürfe" ""\r\n'.encode())
    with pytest.raises(ValueError, match="at least one resource"):
        bytes(QuotaResponse("", []))  # quota-list needs one (RFC 9208 section 7)


@pytest.mark.parametrize(("octets", "kib"), [(0, 0), (1, 1), (1023, 1), (1024, 1), (1025, 2),
                                             (10_000, 10), (2**40, 2**30)])
def test_storage_is_counted_in_kib_rounded_up(octets: int, kib: int) -> None:
    assert storage_kib(octets) == kib  # RFC 9208 section 5.1


# --- against a real server ---------------------------------------------------------------

BOB, CAROL, DAVE, ERIN = ("bob@example.com", "carol@example.com", "dave@example.com",
                          "erin@example.com")
PW = "quota test password"
MSG = (b"From: Alice <alice@example.org>\r\nTo: bob@example.com\r\nSubject: hi\r\n"
       b"Message-ID: <q@x>\r\n\r\n" + b"Hello. " * 200 + b"\r\n")


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp: Path = tmp_path_factory.mktemp("quota")
    with running_server(tmp, listeners=("imap",),
                        users={u: PW for u in (BOB, CAROL, DAVE, ERIN)}) as s:
        yield s


def login(srv: RunningServer, user: str) -> imaplib.IMAP4:
    m = imaplib.IMAP4("127.0.0.1", srv.ports["imap"], timeout=10)
    m.login(user, PW)
    return m


def account(srv: RunningServer, address: str) -> Any:
    return srv.call(srv.store.get_user(address))


class Raw:
    """A raw connection: send a line, read up to its tagged answer."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")
        self.n = 0
        self.greeting = self.file.readline()

    def cmd(self, text: str) -> list[bytes]:
        self.n += 1
        tag = f"t{self.n}".encode()
        self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        out = []
        while True:
            line = self.file.readline().rstrip(b"\r\n")
            out.append(line)
            if line.startswith(tag + b" "):
                return out

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def test_capabilities_advertise_quota_after_login(srv: RunningServer) -> None:
    m = imaplib.IMAP4("127.0.0.1", srv.ports["imap"], timeout=10)
    assert "QUOTA" not in m.capabilities
    m.login(CAROL, PW)
    typ, data = m.capability()
    caps = data[0].split()
    assert typ == "OK" and b"QUOTA" in caps and b"QUOTA=RES-STORAGE" in caps  # section 3.1
    assert b"QUOTASET" not in caps  # users cannot set limits
    m.logout()


def test_getquotaroot_and_getquota_report_usage_in_kib(srv: RunningServer) -> None:
    srv.call(srv.store.set_quota(BOB, 100_000))
    m = login(srv, BOB)
    assert m.append("INBOX", None, None, MSG)[0] == "OK"
    used = account(srv, BOB).used
    assert used >= len(MSG)
    quota = f'"" (STORAGE {-(-used // 1024)} 98)'.encode()  # 100000 octets: 97.66 -> 98
    # C: a GETQUOTAROOT INBOX / S: * QUOTAROOT INBOX "" / S: * QUOTA "" (STORAGE n 98)
    assert m.getquotaroot("INBOX") == ("OK", [[b'"INBOX" ""'], [quota]])
    assert m.getquota('""') == ("OK", [quota])
    # usage is read from the store on every command, not from the login
    srv.call(srv.store.append(account(srv, BOB).id, "INBOX", MSG))
    used = account(srv, BOB).used
    assert m.getquota('""') == ("OK", [f'"" (STORAGE {-(-used // 1024)} 98)'.encode()])
    m.logout()


def test_getquotaroot_normalises_names_like_status_and_answers_for_missing_ones(
        srv: RunningServer) -> None:
    srv.call(srv.store.set_quota(CAROL, 5 * 1024))
    m = login(srv, CAROL)
    m.create("Work/Projects")
    quota = [b'"" (STORAGE 0 5)']
    assert m.getquotaroot("inbox") == ("OK", [[b'"INBOX" ""'], quota])
    assert m.getquotaroot('"INBOX/"') == ("OK", [[b'"INBOX" ""'], quota])
    assert m.getquotaroot("Work/Projects") == ("OK", [[b'"Work/Projects" ""'], quota])
    # RFC 9208 section 4.1.2: the name need not exist; the root it would get is the
    # account's, like every mailbox's
    assert m.getquotaroot("Nowhere") == ("OK", [[b'"Nowhere" ""'], quota])
    m.select("Work/Projects")  # the selected state too
    assert m.getquotaroot("INBOX") == ("OK", [[b'"INBOX" ""'], quota])
    m.logout()


def test_unlimited_account_has_no_quota_root(srv: RunningServer) -> None:
    assert account(srv, DAVE).quota == 0
    m = login(srv, DAVE)
    # RFC 9208 section 4.2.2: a mailbox without quota root
    assert m.getquotaroot("INBOX") == ("OK", [[b'"INBOX"'], [None]])
    typ, data = m.getquota('""')
    assert (typ, data) == ("NO", [b"No such quota root"])
    m.logout()


def test_getquota_unknown_root_is_no(srv: RunningServer) -> None:
    srv.call(srv.store.set_quota(CAROL, 5 * 1024))
    m = login(srv, CAROL)
    for root in ('"User quota"', "INBOX", '"#user/carol"'):
        assert m.getquota(root) == ("NO", [b"No such quota root"])
    m.logout()


def test_setquota_is_refused_but_malformed_ones_are_bad(srv: RunningServer) -> None:
    srv.call(srv.store.set_quota(CAROL, 5 * 1024))
    m = login(srv, CAROL)
    typ, data = m.setquota('""', "(STORAGE 1000000)")
    assert typ == "NO" and data[0].startswith(b"[NOPERM] ")
    assert m.setquota('""', "()")[0] == "NO"
    assert m.setquota('"no such root"', "(MESSAGE 5)")[0] == "NO"
    with pytest.raises(imaplib.IMAP4.error, match="SETQUOTA command error: BAD"):
        m.setquota('""', "(STORAGE)")
    with pytest.raises(imaplib.IMAP4.error, match="Expected a number"):
        m.setquota('""', "(STORAGE lots)")
    assert account(srv, CAROL).quota == 5 * 1024  # unchanged
    assert m.getquota('""') == ("OK", [b'"" (STORAGE 0 5)'])
    m.logout()


def test_quota_commands_before_login_are_bad(srv: RunningServer) -> None:
    c = Raw(srv.ports["imap"])
    for command in ('GETQUOTA ""', "GETQUOTAROOT INBOX", 'SETQUOTA "" ()'):
        answer = c.cmd(command)
        assert answer[-1].split()[1] == b"BAD" and b"not authenticated state" in answer[-1]
    c.close()


def test_quota_transcript_with_utf8_names(srv: RunningServer) -> None:
    srv.call(srv.store.set_quota(CAROL, 5 * 1024))
    c = Raw(srv.ports["imap"])
    assert c.cmd(f'LOGIN {CAROL} "{PW}"')[-1].split()[1] == b"OK"
    assert c.cmd('CREATE "Entw&APw-rfe"')[-1].split()[1] == b"OK"
    assert c.cmd('GETQUOTAROOT "Entw&APw-rfe"') == [
        b'* QUOTAROOT "Entw&APw-rfe" ""', b'* QUOTA "" (STORAGE 0 5)',
        b"t3 OK GETQUOTAROOT completed"]
    assert c.cmd("ENABLE UTF8=ACCEPT")[-1] == b"t4 OK ENABLE completed"
    c.sock.sendall('t5 GETQUOTAROOT "Entwürfe"\r\n'.encode())
    assert [c.file.readline() for _ in range(3)] == [
        '* QUOTAROOT "Entwürfe" ""\r\n'.encode(), b'* QUOTA "" (STORAGE 0 5)\r\n',
        b"t5 OK GETQUOTAROOT completed\r\n"]
    c.cmd("LOGOUT")
    c.close()


def test_append_and_copy_over_quota_are_overquota_move_is_not(srv: RunningServer) -> None:
    """RFC 9208 section 4.3.1: APPEND and COPY past the limit fail with OVERQUOTA;
    MOVE within the account takes no more space, so it succeeds even at the limit."""
    m = login(srv, ERIN)
    assert m.append("INBOX", None, None, MSG)[0] == "OK"
    used = account(srv, ERIN).used
    srv.call(srv.store.set_quota(ERIN, used + len(MSG) // 2))  # room for half a message
    typ, data = m.append("INBOX", None, None, MSG)
    assert typ == "NO" and data[0].startswith(b"[OVERQUOTA] ")
    m.create("Archive")
    m.select("INBOX")
    typ, data = m.copy("1", "Archive")
    assert typ == "NO" and data[0].startswith(b"[OVERQUOTA] ")
    typ, data = m.uid("COPY", "1", "Archive")
    assert typ == "NO" and data[0].startswith(b"[OVERQUOTA] ")
    assert m.uid("MOVE", "1", "Archive")[0] == "OK"
    assert account(srv, ERIN).used == used
    kib = -(-used // 1024)
    limit = -(-(used + len(MSG) // 2) // 1024)
    assert m.getquotaroot("Archive") == ("OK", [[b'"Archive" ""'],
                                                [f'"" (STORAGE {kib} {limit})'.encode()]])
    # expunging gives the space back (and STATUS DELETED, RFC 9208 section 4.1.4, counts
    # what an EXPUNGE would free)
    m.select("Archive")
    m.store("1", "+FLAGS", "\\Deleted")
    assert m.status("Archive", "(MESSAGES DELETED DELETED-STORAGE)") == (
        "OK", [f'"Archive" (MESSAGES 1 DELETED 1 DELETED-STORAGE {kib})'.encode()])
    m.expunge()
    assert account(srv, ERIN).used == 0
    assert m.getquota('""') == ("OK", [f'"" (STORAGE 0 {limit})'.encode()])
    assert m.append("INBOX", None, None, MSG)[0] == "OK"
    m.logout()
