"""Real IMAP clients against a real Postroom: imapclient, mbsync (isync), offlineimap,
curl and mutt (driven in tmux). Each exercises what that client does in daily use."""

from __future__ import annotations

import importlib
import os
import re
import smtplib
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from harness import RunningServer, running_server
from interop_helpers import require

pytestmark = pytest.mark.interop

BOB, PW = "bob@example.com", "bob password 1"


def message(n: int, subject: str | None = None) -> bytes:
    return (f"From: Alice <alice@example.org>\r\nTo: Bob <bob@example.com>\r\n"
            f"Subject: {subject or f'message {n}'}\r\nDate: Mon, 1 Jan 2024 10:0{n % 10}:00 +0000\r\n"
            f"Message-ID: <m{n}@example.org>\r\n\r\nBody of message {n}.\r\n").encode()


def require_module(name: str) -> ModuleType:
    """A Python client library: missing fails in CI, skips elsewhere (like ``require``)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed (pip install it)")
        pytest.skip(f"{name} is not installed")


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(tmp_path, listeners=("imap", "smtp"), users={BOB: PW}) as s:
        yield s


def put(srv: RunningServer, *messages: bytes, mailbox: str = "INBOX") -> None:
    user = srv.call(srv.store.get_user(BOB))
    for m in messages:
        srv.call(srv.store.append(user.id, mailbox, m))


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


# ---------------------------------------------------------------------- imapclient


def test_imapclient_everyday_session(srv: RunningServer) -> None:
    imapclient = require_module("imapclient")
    put(srv, message(1), message(2, "Grüße aus Köln"), message(3))
    c = imapclient.IMAPClient("127.0.0.1", port=srv.ports["imap"], ssl=False, timeout=10)
    c.login(BOB, PW)
    folders = {name: flags for flags, _, name in c.list_folders()}
    assert set(folders) == {"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"}
    assert c.find_special_folder(imapclient.imapclient.SENT) == "Sent"
    info = c.select_folder("INBOX")
    assert info[b"EXISTS"] == 3 and info[b"UIDNEXT"] == 4
    assert c.search(["SUBJECT", "message"]) == [1, 3]
    assert c.search(["SUBJECT", "Köln"], charset="UTF-8") == [2]
    data = c.fetch([1, 2], ["ENVELOPE", "BODYSTRUCTURE", "BODY.PEEK[]", "FLAGS",
                            "RFC822.SIZE"])
    env = data[2][b"ENVELOPE"]
    assert env.from_[0].mailbox == b"alice" and env.from_[0].host == b"example.org"
    assert env.message_id == b"<m2@example.org>"
    assert data[1][b"BODY[]"] == message(1)
    assert data[1][b"RFC822.SIZE"] == len(message(1))
    assert data[1][b"BODYSTRUCTURE"][:2] == (b"text", b"plain")
    assert b"\\Seen" not in data[1][b"FLAGS"]  # BODY.PEEK does not set \Seen
    assert set(c.add_flags([1], [imapclient.FLAGGED, "$Work"])[1]) == {
        b"\\Flagged", b"$Work", b"\\Recent"}
    assert b"$Work" not in c.remove_flags([1], ["$Work"])[1]
    assert set(c.get_flags([1])[1]) == {b"\\Flagged", b"\\Recent"}
    c.copy([1], "Archive")
    c.move([2], "Trash")
    assert c.search() == [1, 3]
    answer = c.append("INBOX", message(4), flags=[imapclient.SEEN])
    assert re.match(rb"\[APPENDUID \d+ 4\] ", answer), answer  # UIDPLUS (RFC 4315)
    assert c.folder_status("Archive", ["MESSAGES", "UIDNEXT"]) == {b"MESSAGES": 1,
                                                                     b"UIDNEXT": 2}
    assert c.folder_status("Trash", ["MESSAGES"])[b"MESSAGES"] == 1
    c.set_flags([3], [imapclient.DELETED])
    assert c.expunge() is not None
    assert c.search() == [1, 4]
    c.create_folder("Projects/2024")
    assert "Projects/2024" in [n for _, _, n in c.list_folders("Projects/")]
    c.rename_folder("Projects", "Work")
    assert [n for _, _, n in c.list_folders("", "Work*")] == ["Work", "Work/2024"]
    c.subscribe_folder("Work/2024")
    assert "Work/2024" in [n for _, _, n in c.list_sub_folders()]
    c.delete_folder("Work/2024")
    assert c.unselect_folder()
    c.logout()


def test_imapclient_idle_sees_a_concurrent_delivery(srv: RunningServer) -> None:
    imapclient = require_module("imapclient")
    c = imapclient.IMAPClient("127.0.0.1", port=srv.ports["imap"], ssl=False, timeout=10)
    c.login(BOB, PW)
    c.select_folder("INBOX")
    c.idle()

    def deliver() -> None:
        time.sleep(0.2)
        with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10) as s:
            s.sendmail("alice@example.org", [BOB], message(1))

    t = threading.Thread(target=deliver)
    t.start()
    got = c.idle_check(timeout=5)
    t.join()
    assert (1, b"EXISTS") in got
    c.idle_done()
    assert c.fetch([1], ["FLAGS"])[1][b"FLAGS"] == (b"\\Recent",)
    c.logout()


def test_imapclient_condstore_and_qresync(srv: RunningServer) -> None:
    imapclient = require_module("imapclient")
    put(srv, *(message(n) for n in range(1, 6)))
    c = imapclient.IMAPClient("127.0.0.1", port=srv.ports["imap"], ssl=False, timeout=10)
    c.login(BOB, PW)
    assert c.enable("CONDSTORE", "QRESYNC") == [b"CONDSTORE", b"QRESYNC"]
    info = c.select_folder("INBOX")
    uidvalidity, modseq = info[b"UIDVALIDITY"], info[b"HIGHESTMODSEQ"]
    c.add_flags([2], [imapclient.SEEN])
    c.delete_messages([3])
    c.expunge()
    changed = c.fetch(c.search(), ["FLAGS"], modifiers=[f"CHANGEDSINCE {modseq}"])
    assert set(changed) == {2}
    assert changed[2][b"MODSEQ"][0] > modseq
    c.unselect_folder()
    c._imap.untagged_responses.clear()
    # a reconnecting client: SELECT with its cached state gets only the differences
    typ, _ = c._imap._simple_command("SELECT", "INBOX",
                                     f"(QRESYNC ({uidvalidity} {modseq}))")
    assert typ == "OK"
    untagged = c._imap.untagged_responses
    assert untagged.get("VANISHED") == [b"(EARLIER) 3"]
    assert any(b"UID 2" in f and b"\\Seen" in f for f in untagged.get("FETCH", []))
    c.logout()


# ---------------------------------------------------------------------- mbsync


def _mbsync(tmp: Path, port: int) -> Callable[[], str]:
    mbsync = require("mbsync")
    (tmp / "maildir").mkdir()
    (tmp / "state").mkdir()
    rc = tmp / "mbsyncrc"
    rc.write_text(f"""IMAPAccount pr
Host 127.0.0.1
Port {port}
User {BOB}
Pass "{PW}"
SSLType None

IMAPStore remote
Account pr

MaildirStore local
Path {tmp}/maildir/
Inbox {tmp}/maildir/INBOX
SubFolders Verbatim

Channel pr
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState {tmp}/state/
""")

    def run() -> str:
        out = subprocess.run([mbsync, "-c", str(rc), "-q", "pr"], capture_output=True,
                             timeout=60, text=True)
        assert out.returncode == 0, out.stderr
        return out.stderr

    return run


def _maildir_files(box: Path) -> list[Path]:
    return sorted(p for sub in ("cur", "new") for p in (box / sub).iterdir())


def test_mbsync_two_way(srv: RunningServer, tmp_path: Path) -> None:
    imapclient = require_module("imapclient")
    put(srv, message(1), message(2), message(3))
    sync = _mbsync(tmp_path, srv.ports["imap"])
    sync()
    inbox = tmp_path / "maildir" / "INBOX"
    files = _maildir_files(inbox)
    # mbsync marks what it stores with an X-TUID header line
    assert sorted(re.sub(rb"X-TUID: \S+\n", b"", f.read_bytes()).replace(b"\n", b"\r\n")
                  for f in files) == sorted(message(n) for n in (1, 2, 3))
    assert (tmp_path / "maildir" / "Archive").is_dir()
    # near side: flag one message seen+flagged, write a new one
    first = next(f for f in files if f.read_bytes().startswith(message(1)[:40].replace(
        b"\r\n", b"\n")))
    first.rename(inbox / "cur" / (first.name.split(":2,")[0] + ":2,FS"))
    (inbox / "new" / "1700000000.local.host").write_bytes(
        message(9, "written locally").replace(b"\r\n", b"\n"))
    # far side: expunge message 2
    c = imapclient.IMAPClient("127.0.0.1", port=srv.ports["imap"], ssl=False, timeout=10)
    c.login(BOB, PW)
    c.select_folder("INBOX")
    c.delete_messages([2])
    c.expunge()
    sync()
    got = c.fetch(c.search(), ["FLAGS", "BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
    by_subject = {v[b"BODY[HEADER.FIELDS (SUBJECT)]"].strip(): set(v[b"FLAGS"])
                  for v in got.values()}
    assert by_subject == {b"Subject: message 1": {b"\\Seen", b"\\Flagged"},
                          b"Subject: message 3": set(),
                          b"Subject: written locally": set()}
    assert len(_maildir_files(inbox)) == 3  # message 2 went here too
    # stable: a second and third run change nothing on either side
    before = sorted(p.name for p in _maildir_files(inbox))
    sync()
    sync()
    assert sorted(p.name for p in _maildir_files(inbox)) == before
    assert len(c.search()) == 3
    c.logout()


def _mbsync_over_tls(tmp_path: Path, auth: str) -> subprocess.CompletedProcess[str]:
    mbsync = require("mbsync")
    with running_server(tmp_path, listeners=("imaps",), users={BOB: PW}) as srv:
        put(srv, message(1))
        (tmp_path / "mail").mkdir()
        rc = tmp_path / "mbsyncrc"
        rc.write_text(f"""IMAPAccount pr
Host 127.0.0.1
Port {srv.ports["imaps"]}
User {BOB}
Pass "{PW}"
SSLType IMAPS
CertificateFile {srv.data_dir}/tls/cert.pem
{auth}

IMAPStore remote
Account pr

MaildirStore local
Path {tmp_path}/mail/
Inbox {tmp_path}/mail/INBOX

Channel pr
Far :remote:
Near :local:
Patterns INBOX
SyncState *
""")
        return subprocess.run([mbsync, "-c", str(rc), "-q", "pr"], capture_output=True,
                              text=True, timeout=60)


def test_mbsync_over_implicit_tls(tmp_path: Path) -> None:
    out = _mbsync_over_tls(tmp_path, "AuthMechs PLAIN")
    assert out.returncode == 0, out.stderr
    assert len(_maildir_files(tmp_path / "mail" / "INBOX")) == 1


def test_mbsync_default_authentication_over_tls(tmp_path: Path) -> None:
    out = _mbsync_over_tls(tmp_path, "")
    assert out.returncode == 0, out.stderr


# ---------------------------------------------------------------------- offlineimap


def test_offlineimap_one_sync(srv: RunningServer, tmp_path: Path) -> None:
    offlineimap = require("offlineimap")
    put(srv, message(1), message(2))
    put(srv, message(3), mailbox="Archive")
    rc = tmp_path / "offlineimaprc"
    rc.write_text(f"""[general]
accounts = pr
metadata = {tmp_path}/meta
ui = quiet

[Account pr]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {tmp_path}/mail

[Repository remote]
type = IMAP
remotehost = 127.0.0.1
remoteport = {srv.ports["imap"]}
remoteuser = {BOB}
remotepass = {PW}
ssl = no
starttls = no
""")
    out = subprocess.run([offlineimap, "-c", str(rc), "-o", "-u", "quiet"],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stdout + out.stderr
    mail = tmp_path / "mail"
    assert {p.name for p in mail.iterdir()} >= {"INBOX", "Archive", "Sent", "Trash"}
    assert len(_maildir_files(mail / "INBOX")) == 2
    archived = _maildir_files(mail / "Archive")
    assert len(archived) == 1
    assert archived[0].read_bytes().replace(b"\r\n", b"\n") == message(3).replace(
        b"\r\n", b"\n")


# ---------------------------------------------------------------------- curl


def test_curl_imap(srv: RunningServer, tmp_path: Path) -> None:
    curl = require("curl")
    put(srv, message(1), message(2, "find me"))
    base = f"imap://127.0.0.1:{srv.ports['imap']}"

    def get(url: str, *extra: str) -> bytes:
        out = subprocess.run([curl, "-s", "-S", "-u", f"{BOB}:{PW}", *extra, url],
                             capture_output=True, timeout=30)
        assert out.returncode == 0, out.stderr
        return out.stdout

    listing = get(base + "/")
    assert b'* LIST (\\HasNoChildren) "/" "INBOX"' in listing
    assert b"\\Sent" in listing
    assert get(base + "/INBOX;UID=2") == message(2, "find me")
    assert get(base + "/INBOX?SUBJECT%20%22find%20me%22").strip() == b"* SEARCH 2"
    assert b"* SEARCH 1 2" in get(base + "/INBOX", "-X", "UID SEARCH ALL")
    # upload: curl APPENDs, then the message is there
    upload = message(3, "uploaded by curl")
    (tmp_path / "upload.eml").write_bytes(upload)
    sent = subprocess.run([curl, "-s", "-S", "-u", f"{BOB}:{PW}", "-T",
                           str(tmp_path / "upload.eml"), base + "/Drafts"],
                          capture_output=True, timeout=30)
    assert sent.returncode == 0, sent.stderr
    assert get(base + "/Drafts;UID=1") == upload


# ---------------------------------------------------------------------- mutt in tmux


@pytest.fixture
def tmux_session() -> Iterator[tuple[str, str]]:
    tmux = require("tmux")
    name = f"postroom-mutt-{os.getpid()}"
    yield tmux, name
    subprocess.run([tmux, "kill-session", "-t", name], capture_output=True)


def test_mutt_reads_the_inbox(srv: RunningServer, tmp_path: Path,
                              tmux_session: tuple[str, str]) -> None:
    mutt = require("mutt")
    tmux, name = tmux_session
    put(srv, message(1, "hello from postroom"), message(2, "second one"))
    rc = tmp_path / "muttrc"
    rc.write_text(f"""set folder="imap://bob%40example.com@127.0.0.1:{srv.ports['imap']}/"
set spoolfile="+INBOX"
set imap_pass="{PW}"
set ssl_starttls=no
set ssl_force_tls=no
set header_cache=""
set message_cachedir=""
set timeout=0
set mail_check=60
set pager_stop=yes
set sort=date
set quit=yes
set delete=yes
set resolve=no
set charset="utf-8"
""")
    env = {"HOME": str(tmp_path), "TERM": "xterm", "LANG": "C.UTF-8",
           "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    env_args = [f"{k}={v}" for k, v in env.items()]
    subprocess.run([tmux, "new-session", "-d", "-s", name, "-x", "200", "-y", "50",
                    "env", "-i", *env_args, mutt, "-n", "-F", str(rc)], check=True)

    def screen() -> str:
        return subprocess.run([tmux, "capture-pane", "-t", name, "-p"], capture_output=True,
                              text=True).stdout

    def keys(*k: str) -> None:
        subprocess.run([tmux, "send-keys", "-t", name, *k], check=True)

    wait_for(lambda: "hello from postroom" in screen() and "second one" in screen())
    assert "[Msgs:2" in screen()
    keys("Enter")  # open the first message of the index (sorted by date: message 1)
    wait_for(lambda: "Body of message" in screen())
    assert "Subject: hello from postroom" in screen() or "Subject: second one" in screen()
    keys("q")  # back to the index
    wait_for(lambda: "[Msgs:2" in screen())
    user = srv.call(srv.store.get_user(BOB))
    mb = srv.call(srv.store.get_mailbox(user.id, "INBOX"))
    keys("j", "d", "$")  # delete the other one and sync (set delete=yes: no question)
    wait_for(lambda: "[Msgs:1" in screen())
    # the sync expunged one and stored \Seen on the one mutt showed
    wait_for(lambda: [e.flags.bits & 1 for e in srv.call(srv.store.list_entries(mb.id))]
             == [1])
    keys("q")  # quit (set quit=yes: no question)
    wait_for(lambda: subprocess.run([tmux, "has-session", "-t", name],
                                    capture_output=True).returncode != 0)
