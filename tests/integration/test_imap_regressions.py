"""Regression tests, one per IMAP bug found by the Dovecot differential test and real
clients. Each reads as a transcript against the real server."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import RunningServer, running_server

BOB, PW = "bob@example.com", "bob password 1"


def msg(n: int) -> bytes:
    return (f"From: a@example.org\r\nTo: {BOB}\r\nSubject: m{n}\r\n"
            f"Message-ID: <r{n}@x>\r\n\r\nBody {n}.\r\n").encode()


class Client:
    """``c("SELECT INBOX")`` sends one command and returns its untagged lines and the
    tagged one (literals left inline)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.file = self.sock.makefile("rb")
        self.n = 0
        self.greeting = self.file.readline()

    def __call__(self, command: str | bytes) -> list[str]:
        self.n += 1
        tag = f"t{self.n}"
        data = command.encode() if isinstance(command, str) else command
        self.sock.sendall(tag.encode() + b" " + data + b"\r\n")
        out = []
        while True:
            line = self.file.readline()
            if not line:
                out.append("<closed>")
                return out
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            m = re.search(r"\{(\d+)\}$", text)
            if m:
                text += self.file.read(int(m.group(1))).decode("utf-8", "replace")
                text += self.file.readline().decode().rstrip("\r\n")
            out.append(text)
            if text.startswith(tag + " "):
                return out

    def close(self) -> None:
        self.file.close()
        self.sock.close()


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(tmp_path, listeners=("imap",), users={BOB: PW}) as s:
        yield s


@pytest.fixture
def login(srv: RunningServer) -> Iterator[type[Client]]:
    opened: list[Client] = []

    class LoggedIn(Client):
        def __init__(self) -> None:
            super().__init__(srv.ports["imap"])
            opened.append(self)
            assert self(f'LOGIN {BOB} "{PW}"')[-1].startswith("t1 OK")

    yield LoggedIn
    for c in opened:
        c.close()


def put(srv: RunningServer, count: int, mailbox: str = "INBOX") -> None:
    user = srv.call(srv.store.get_user(BOB))
    for n in range(1, count + 1):
        srv.call(srv.store.append(user.id, mailbox, msg(n)))


def append_cmd(n: int, flags: str = "", mailbox: str = "INBOX") -> bytes:
    data = msg(n)
    return f"APPEND {mailbox} ({flags}) {{{len(data)}+}}\r\n".encode() + data


def listed(lines: list[str]) -> list[str]:
    return [ln for ln in lines if ln.startswith(("* LIST", "* LSUB"))]


# ---------------------------------------------------------------------- LIST / LSUB


def test_inbox_matches_list_patterns_whatever_their_case(login: type[Client]) -> None:
    c = login()
    for pattern in ("In%", "*x", "*b*", "inbox", "iNbOx"):
        assert listed(c(f'LIST "" {pattern}')) == ['* LIST (\\HasNoChildren) "/" "INBOX"'], \
            pattern
    c("CREATE INBOX/Sub")
    assert listed(c('LIST "" inbox/%')) == ['* LIST (\\HasNoChildren) "/" "INBOX/Sub"']
    assert listed(c('LIST "" INBOX/sub')) == []  # only INBOX itself is case-insensitive


def test_lsub_percent_returns_the_unsubscribed_superior_as_noselect(
        login: type[Client]) -> None:
    c = login()
    c("CREATE a/b/c")
    c("SUBSCRIBE a/b/c")
    assert '* LSUB (\\Noselect) "/" "a"' in c('LSUB "" %')
    assert listed(c('LSUB "" a/%')) == ['* LSUB (\\Noselect) "/" "a/b"']
    assert listed(c('LSUB "" a/b/%')) == ['* LSUB () "/" "a/b/c"']


# ---------------------------------------------------------------------- SELECT / STATUS


def test_status_recent_of_the_selected_mailbox_counts_this_sessions_recent(
        srv: RunningServer, login: type[Client]) -> None:
    put(srv, 2)
    c = login()
    assert "* 2 RECENT" in c("SELECT INBOX")
    assert "* STATUS \"INBOX\" (RECENT 2)" in c("STATUS INBOX (RECENT)")


def test_selecting_again_closes_the_previous_mailbox_with_closed(login: type[Client]) -> None:
    c = login()
    first = c("SELECT INBOX")
    assert not any("[CLOSED]" in ln for ln in first)
    assert c("EXAMINE Sent")[0].startswith("* OK [CLOSED]")
    failed = c("SELECT nosuch")
    assert failed[0].startswith("* OK [CLOSED]") and failed[-1].startswith("t4 NO")
    assert not any("[CLOSED]" in ln for ln in c("SELECT INBOX"))  # nothing was selected


def test_another_session_deleting_the_selected_mailbox_ends_the_session(
        srv: RunningServer, login: type[Client]) -> None:
    put(srv, 1, "Archive")
    a, b = login(), login()
    a("SELECT Archive")
    assert b("DELETE Archive")[-1].startswith("t2 OK")
    answer = a("NOOP")
    assert answer[0].startswith("* BYE ") and answer[-1] == "<closed>"


# ---------------------------------------------------------------------- flags, keywords


def test_new_keywords_are_announced_before_the_fetch_that_shows_them(
        srv: RunningServer, login: type[Client]) -> None:
    put(srv, 1)
    a, b = login(), login()
    assert "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)" in a("SELECT INBOX")
    out = a("STORE 1 +FLAGS ($Work)")
    assert out[:3] == [
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)",
        "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work \\*)]"
        " Flags permitted",
        "* 1 FETCH (FLAGS (\\Recent $Work))"]
    assert not any("FLAGS (" in ln and "* FLAGS" in ln for ln in a("STORE 1 +FLAGS ($work)"))
    b("SELECT INBOX")
    b("STORE 1 +FLAGS (Other)")
    noop = a("NOOP")
    assert noop[0] == "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work Other)"
    assert noop[2].startswith("* 1 FETCH (UID 1 FLAGS (\\Recent $Work Other))")


def test_unknown_system_flags_are_refused(srv: RunningServer, login: type[Client]) -> None:
    put(srv, 1)
    c = login()
    c("SELECT INBOX")
    assert c("STORE 1 +FLAGS (\\Bogus)")[-1].startswith("t3 BAD")
    data = msg(2)
    assert c(f"APPEND INBOX (\\Bogus) {{{len(data)}+}}\r\n".encode() + data)[-1].startswith(
        "t4 BAD")
    assert c("STORE 1 +FLAGS (\\seen)")[-1].startswith("t5 OK")  # any case of a real one


def test_recent_count_follows_expunges(srv: RunningServer, login: type[Client]) -> None:
    put(srv, 3)
    c = login()
    c("SELECT INBOX")
    c("STORE 1,3 +FLAGS.SILENT (\\Deleted)")
    assert c("EXPUNGE")[:-1] == ["* 1 EXPUNGE", "* 2 EXPUNGE", "* 1 RECENT"]
    # a MOVE within the mailbox removes one and adds one: one RECENT, after EXISTS
    out = c("MOVE 1 INBOX")
    assert [ln for ln in out if "RECENT" in ln or "EXISTS" in ln] == ["* 1 EXISTS",
                                                                       "* 1 RECENT"]


# ---------------------------------------------------------------------- CONDSTORE / QRESYNC


def test_vanished_modifier_needs_qresync(srv: RunningServer, login: type[Client]) -> None:
    put(srv, 1)
    c = login()
    c("ENABLE CONDSTORE")
    c("SELECT INBOX")
    assert c("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")[-1].startswith("t4 BAD")


def test_implicit_seen_under_condstore_reports_the_new_modseq(
        srv: RunningServer, login: type[Client]) -> None:
    put(srv, 1)
    c = login()
    c("SELECT INBOX (CONDSTORE)")
    out = c("FETCH 1 (BODY[TEXT])")
    assert re.fullmatch(r"\* 1 FETCH \(FLAGS \(\\Seen \\Recent\) BODY\[TEXT\] "
                        r"\{9\}Body 1\.\r\n MODSEQ \(\d+\)\)", out[0]), out


def test_condstore_enabled_while_selected_announces_highestmodseq(
        srv: RunningServer, login: type[Client]) -> None:
    put(srv, 2)
    c = login()
    c("SELECT INBOX")
    out = c("SEARCH MODSEQ 1")
    assert re.match(r"\* OK \[HIGHESTMODSEQ \d+\]", out[0]), out
    assert not any("HIGHESTMODSEQ" in ln for ln in c("SEARCH MODSEQ 1")[:-1])


def test_qresync_commands_that_report_vanished_end_with_highestmodseq(
        srv: RunningServer, login: type[Client]) -> None:
    put(srv, 3)
    a, b = login(), login()
    for c in (a, b):
        c("ENABLE QRESYNC")
        c("SELECT INBOX")
    a("STORE 1 +FLAGS.SILENT (\\Deleted)")
    out = a("EXPUNGE")
    assert out[0] == "* VANISHED 1"
    assert re.match(r"t5 OK \[HIGHESTMODSEQ \d+\]", out[-1]), out
    noop = b("NOOP")
    assert noop[0] == "* VANISHED 1" and "[HIGHESTMODSEQ" in noop[-1]
    assert "[HIGHESTMODSEQ" not in b("NOOP")[-1]  # nothing vanished this time


def test_qresync_select_keeps_to_the_known_uids(srv: RunningServer, login: type[Client]
                                                ) -> None:
    put(srv, 4)
    c = login()
    c("ENABLE QRESYNC")
    sel = c("SELECT INBOX")
    uv = re.search(r"UIDVALIDITY (\d+)", "\n".join(sel))
    ms = re.search(r"HIGHESTMODSEQ (\d+)", "\n".join(sel))
    assert uv and ms
    c("STORE 1,4 +FLAGS (\\Seen)")
    c("UNSELECT")
    out = c(f"SELECT INBOX (QRESYNC ({uv.group(1)} {ms.group(1)} 3:4))")
    fetched = [ln for ln in out if " FETCH " in ln]
    assert len(fetched) == 1 and "UID 4 " in fetched[0], fetched


# ---------------------------------------------------------------------- names


def test_create_refuses_names_that_are_not_modified_utf7(login: type[Client]) -> None:
    c = login()
    assert c("CREATE bad&name")[-1] == "t2 NO [CANNOT] Mailbox name is not valid modified UTF-7"
    assert c('CREATE "Entw&APw-rfe"')[-1].startswith("t3 OK")
    assert listed(c('LIST "" Entw*')) == ['* LIST (\\HasNoChildren) "/" "Entw&APw-rfe"']
    assert c("RENAME Entw&APw-rfe x&y")[-1].startswith("t5 NO [CANNOT]")


# ---------------------------------------------------------------------- IMAP4rev2


def test_imap4rev2_search_answers_esearch(srv: RunningServer, login: type[Client]) -> None:
    put(srv, 3)
    c = login()
    c("ENABLE IMAP4rev2")
    c("SELECT INBOX")
    assert c("SEARCH ALL")[:-1] == ['* ESEARCH (TAG "t4") ALL 1:3']
    assert c("UID SEARCH 2:3")[:-1] == ['* ESEARCH (TAG "t5") UID ALL 2:3']
    assert c("SEARCH SUBJECT nothing")[:-1] == ['* ESEARCH (TAG "t6")']
    assert c("SEARCH RETURN (SAVE) 1")[:-1] == []  # SAVE alone answers nothing


# ---------------------------------------------------------------------- ordering rules
# (the Dovecot comparison sorts untagged responses, so it cannot check these)


def test_list_status_follows_each_list_response(srv: RunningServer, login: type[Client]
                                                ) -> None:
    put(srv, 2)
    c = login()
    c("CREATE a/b")
    c("DELETE a")
    out = c('LIST "" * RETURN (STATUS (MESSAGES))')[:-1]
    for i, line in enumerate(out):
        if line.startswith("* STATUS"):
            name = line.split('"')[1]
            assert out[i - 1].startswith("* LIST") and out[i - 1].endswith(f'"{name}"')
    assert '* LIST (\\NonExistent \\HasChildren) "/" "a"' in out  # and no STATUS for it
    assert not any(ln.startswith('* STATUS "a" ') for ln in out)


def test_move_sends_copyuid_before_the_expunges(srv: RunningServer, login: type[Client]
                                               ) -> None:
    put(srv, 3)
    c = login()
    c("SELECT INBOX")
    out = c("MOVE 1:2 Archive")
    assert re.match(r"\* OK \[COPYUID \d+ 1:2 1:2\]", out[0]), out  # RFC 6851 section 4.3
    assert out[1:3] == ["* 1 EXPUNGE", "* 1 EXPUNGE"]


# ---------------------------------------------------------------------- the connection


def test_a_client_leaving_during_idle_is_not_a_server_error(
        srv: RunningServer, login: type[Client], caplog: pytest.LogCaptureFixture) -> None:
    c = login()
    c("SELECT INBOX")
    c.sock.sendall(b"i IDLE\r\n")
    assert c.file.readline().startswith(b"+ ")
    c.close()
    d = login()  # the server is fine, and logged no failure for the first session
    assert d("NOOP")[-1].startswith("t2 OK")
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_stopping_server_says_bye_to_waiting_sessions() -> None:
    import asyncio

    from postroom.imap.errors import ShuttingDown
    from postroom.imap.server import Connection, ImapContext
    from postroom.net.listener import ConnectionInfo

    async def scenario() -> None:
        stopping = asyncio.Event()
        reader = asyncio.StreamReader()
        ctx = ImapContext(hostname="h", store=None, authenticator=None,  # type: ignore[arg-type]
                          throttle=None, stopping=stopping)  # type: ignore[arg-type]
        conn = Connection(reader, None, ConnectionInfo("imap", "1", 1, "2", 2), ctx)  # type: ignore[arg-type]
        waiting = asyncio.ensure_future(conn.read_more(60))
        await asyncio.sleep(0.01)
        stopping.set()
        with pytest.raises(ShuttingDown):
            await asyncio.wait_for(waiting, 1)
        reader.feed_data(b"a NOOP\r\n")  # nothing was lost from the stream meanwhile
        assert await reader.readline() == b"a NOOP\r\n"

    asyncio.run(scenario())
