"""Reference servers for side-by-side benchmarks and differential tests: a private
Dovecot (IMAP + POP3) on loopback with its own config directory. Nothing system-wide is
touched; everything lives under one temporary folder and stops by PID."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

DOVECOT_CONF = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
first_valid_uid = 0
mail_uid = {uid}
mail_gid = {gid}
default_login_user = dovenull
default_internal_user = dovecot
passdb {{
  driver = passwd-file
  args = username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  service_count = 0
  process_min_avail = 2
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
  service_count = 0
  process_min_avail = 2
}}
service imap {{
  process_limit = 2048
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
pop3_uidl_format = %08Xv%08Xu
"""


# Dovecot refuses to run mail processes as root: they run as "nobody".
MAIL_UID = MAIL_GID = 65534


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Dovecot:
    """``with Dovecot(users) as d: d.imap_port, d.pop3_port, d.deliver(user, bytes)``"""

    def __init__(self, users: dict[str, str], raw_passwords: bool = False,
                 extra_conf: str = "") -> None:
        """``users``: address -> password (or, with ``raw_passwords``, a scheme-tagged
        hash such as ``{ARGON2ID}$argon2id$...``). ``extra_conf`` is appended to the
        generated dovecot.conf (global settings; later values win)."""
        self.users = users
        self.raw_passwords = raw_passwords
        self.extra_conf = extra_conf
        self.root = Path(tempfile.mkdtemp(prefix="dovecot-peer-"))
        self.imap_port = free_port()
        self.pop3_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._seq = 0

    @staticmethod
    def available() -> bool:
        return shutil.which("dovecot") is not None

    def __enter__(self) -> Dovecot:
        r = self.root
        for d in ("run", "state", "mail", "home"):
            (r / d).mkdir()
        os.chmod(r, 0o755)
        tag = "" if self.raw_passwords else "{PLAIN}"
        (r / "passwd").write_text("".join(f"{u}:{tag}{p}\n" for u, p in self.users.items()))
        for d in ("mail", "home"):
            os.chown(r / d, MAIL_UID, MAIL_GID)
        (r / "dovecot.conf").write_text(DOVECOT_CONF.format(
            root=r, uid=MAIL_UID, gid=MAIL_GID, imap_port=self.imap_port,
            pop3_port=self.pop3_port) + self.extra_conf)
        self.proc = subprocess.Popen(["dovecot", "-F", "-c", str(r / "dovecot.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.imap_port), 0.5), \
                        socket.create_connection(("127.0.0.1", self.pop3_port), 0.5):
                    return self
            except OSError:
                if self.proc.poll() is not None:
                    err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                    raise RuntimeError(f"dovecot did not start: {err}") from None
                time.sleep(0.1)
        raise RuntimeError("dovecot did not start listening")

    def maildir(self, user: str) -> Path:
        md = self.root / "mail" / user
        if not (md / "new").exists():
            for d in (md, md / "cur", md / "new", md / "tmp"):
                d.mkdir(parents=True, exist_ok=True)
                os.chown(d, MAIL_UID, MAIL_GID)
        return md

    def deliver(self, user: str, data: bytes) -> None:
        """Put a message straight into the user's maildir (new/)."""
        self._seq += 1
        name = f"{int(time.time())}.P{os.getpid()}Q{self._seq}.bench"
        path = self.maildir(user) / "new" / name
        path.write_bytes(data)
        os.chown(path, MAIL_UID, MAIL_GID)

    def put(self, user: str, data: bytes, flags: str = "", mtime: float | None = None,
            ) -> None:
        """Put a message straight into cur/ as an already-seen-by-a-client file: maildir
        ``flags`` letters (F R S T D), ``mtime`` as the internal date, and the sizes in
        the name (S= on disk, W= with CRLF) so Dovecot need not stat or read it to
        index it. ``data`` may use CRLF or LF; it is stored with LF (maildir usage)."""
        self._seq += 1
        data = data.replace(b"\r\n", b"\n")
        when = time.time() if mtime is None else mtime
        vsize = len(data) + data.count(b"\n")
        name = (f"{int(when)}.M{self._seq}P{os.getpid()}.bench,S={len(data)},"
                f"W={vsize}:2,{''.join(sorted(flags))}")
        path = self.maildir(user) / "cur" / name
        path.write_bytes(data)
        os.chown(path, MAIL_UID, MAIL_GID)
        os.utime(path, (when, when))

    def pids(self) -> list[int]:
        """The master and all its children (login, auth, imap, ...)."""
        return [] if self.proc is None else process_tree(self.proc.pid)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            stop_process(self.proc, 10)
        shutil.rmtree(self.root, ignore_errors=True)


POSTFIX_MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
maillog_file = {root}/postfix.log
maillog_file_prefixes = {root}
myhostname = mx.bench.test
mydomain = bench.test
myorigin = $myhostname
mydestination = localhost
inet_interfaces = {address}
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks reject_unauth_destination
smtpd_banner = $myhostname ESMTP
alias_maps =
alias_database =
biff = no
append_dot_mydomain = no
readme_directory = no
message_size_limit = {message_size}
virtual_mailbox_limit = 0
virtual_mailbox_domains = {domains}
virtual_mailbox_base = {root}/vmail
virtual_mailbox_maps = texthash:{root}/vmailbox
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
"""


def _postfix_master_cf(smtp_listen: str) -> str:
    """The packaged master.cf with the ``smtp inet`` service moved to ``smtp_listen``
    and every chroot turned off (a private queue directory has no chroot skeleton)."""
    for src in (Path("/etc/postfix/master.cf"), Path("/usr/share/postfix/master.cf.dist")):
        if src.exists():
            break
    out = []
    for line in src.read_text().splitlines():
        f = line.split()
        if line[:1] not in ("", "#", " ", "\t") and len(f) >= 8:
            if f[0] == "smtp" and f[1] == "inet":
                f[0] = smtp_listen
            f[4] = "n"
            line = " ".join(f[:8]) + (" " + " ".join(f[8:]) if f[8:] else "")
        out.append(line)
    return "\n".join(out) + "\n"


class Postfix:
    """A private Postfix on loopback: its own config, queue and data directories in one
    temporary folder, mail for ``users`` delivered by ``virtual`` to Maildirs (nothing
    in /etc is touched, no system user is created).

    ``with Postfix(["user@example.com"]) as p: p.smtp_port, p.pids(), p.delivered(u)``
    """

    def __init__(self, users: list[str], message_size: int = 52_428_800,
                 address: str = "127.0.0.1",
                 transports: dict[str, str] | None = None, extra_main_cf: str = "",
                 ) -> None:
        """``transports``: domain -> "host:port" next hops (Postfix relays mail for
        these domains there, e.g. to a Postroom under test). ``extra_main_cf`` is
        appended to the generated main.cf (later values win)."""
        self.transports = transports or {}
        self.extra_main_cf = extra_main_cf
        self.users = users
        self.message_size = message_size
        self.address = address
        self.root = Path(tempfile.mkdtemp(prefix="postfix-peer-"))
        self.conf = self.root / "conf"
        self.smtp_port = free_port()
        self.master_pid: int | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("postfix") is not None and (
            Path("/etc/postfix/master.cf").exists()
            or Path("/usr/share/postfix/master.cf.dist").exists())

    def _postfix(self, *args: str) -> None:
        # MAIL_CONFIG rather than -c: no alternate_config_directories entry needed.
        env = dict(os.environ, MAIL_CONFIG=str(self.conf))
        res = subprocess.run(["postfix", *args], env=env, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"postfix {' '.join(args)}: {res.stderr.strip()}")

    def __enter__(self) -> Postfix:
        r = self.root
        os.chmod(r, 0o755)
        for d in ("conf", "queue", "data", "vmail"):
            (r / d).mkdir()
        os.chown(r / "vmail", MAIL_UID, MAIL_GID)
        domains = sorted({u.rpartition("@")[2] for u in self.users})
        (r / "vmailbox").write_text("".join(
            f"{u} {u.rpartition('@')[2]}/{u.rpartition('@')[0]}/\n" for u in self.users))
        (r / "transport").write_text("".join(
            f"{d} smtp:[{hp.rpartition(':')[0]}]:{hp.rpartition(':')[2]}\n"
            for d, hp in self.transports.items()))
        main_cf = POSTFIX_MAIN_CF.format(
            root=r, address=self.address, message_size=self.message_size,
            domains=", ".join(domains), uid=MAIL_UID, gid=MAIL_GID)
        if self.transports:
            main_cf += (f"transport_maps = texthash:{r}/transport\n"
                        f"relay_domains = {', '.join(sorted(self.transports))}\n")
        (self.conf / "main.cf").write_text(main_cf + self.extra_main_cf)
        (self.conf / "master.cf").write_text(
            _postfix_master_cf(f"{self.address}:{self.smtp_port}"))
        self._postfix("post-install", "create-missing")
        self._postfix("set-permissions")
        self._postfix("check")
        self._postfix("start")
        pidfile = r / "queue" / "pid" / "master.pid"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                self.master_pid = int(pidfile.read_text().split()[0])
                with socket.create_connection((self.address, self.smtp_port), 0.5):
                    return self
            except (OSError, ValueError, IndexError):
                time.sleep(0.1)
        log = r / "postfix.log"
        raise RuntimeError("postfix did not start listening: "
                           + (log.read_text()[-2000:] if log.exists() else ""))

    def command(self, program: str, *args: str) -> str:
        """Run a Postfix tool (postqueue, postsuper, postconf...) on this instance;
        its stdout. Raises RuntimeError when it fails."""
        env = dict(os.environ, MAIL_CONFIG=str(self.conf))
        res = subprocess.run([program, *args], env=env, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"{program} {' '.join(args)}: {res.stderr.strip()}")
        return res.stdout

    def pids(self) -> list[int]:
        """The master and all its descendants (smtpd, cleanup, qmgr, virtual...)."""
        return [] if self.master_pid is None else process_tree(self.master_pid)

    def maildir(self, user: str) -> Path:
        local, _, domain = user.rpartition("@")
        return self.root / "vmail" / domain / local

    def delivered(self, user: str) -> int:
        """Messages in the user's Maildir new/ (delivery runs after the 250)."""
        try:
            return sum(1 for _ in os.scandir(self.maildir(user) / "new"))
        except FileNotFoundError:
            return 0

    def queue_empty(self) -> bool:
        q = self.root / "queue"
        return not any(files for d in ("maildrop", "incoming", "active", "deferred")
                       for _, _, files in os.walk(q / d))

    def __exit__(self, *exc: object) -> None:
        if self.master_pid is not None:
            try:
                self._postfix("stop")
            except RuntimeError:
                os.kill(self.master_pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and Path(f"/proc/{self.master_pid}").exists():
                time.sleep(0.1)
        shutil.rmtree(self.root, ignore_errors=True)


class SmtpSink:
    """Postfix's ``smtp-sink`` on ``address:port``: accepts every message and throws
    it away. ``-c`` makes it print running counters (``sess=N quit=N mesg=N``, one
    update per session end, QUIT or end of data); a thread reads them and keeps the
    arrival time of every message, so ``times`` has one perf_counter() stamp per
    message received so far (to the granularity of the pipe reads).

    ``with SmtpSink("127.0.0.5") as s: s.messages, s.sessions, s.times``
    """

    def __init__(self, address: str, port: int = 25, backlog: int = 1000,
                 max_connections: int = 1000) -> None:
        self.address, self.port = address, port
        self.backlog, self.max_connections = backlog, max_connections
        self.proc: subprocess.Popen[bytes] | None = None
        self.messages = self.sessions = 0
        self.times: list[float] = []
        self._thread: threading.Thread | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("smtp-sink") is not None

    def __enter__(self) -> SmtpSink:
        self.proc = subprocess.Popen(
            ["smtp-sink", "-c", "-4", "-u", "nobody", "-m", str(self.max_connections),
             f"{self.address}:{self.port}", str(self.backlog)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._thread = threading.Thread(target=self._read, daemon=True,
                                        name=f"sink-{self.address}")
        self._thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((self.address, self.port), 0.5):
                    pass
                # that probe was a session; wait for its counter line
                while self.sessions < 1 and time.monotonic() < deadline:
                    time.sleep(0.01)
                return self
            except OSError:
                if self.proc.poll() is not None:
                    err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                    raise RuntimeError(f"smtp-sink did not start: {err}") from None
                time.sleep(0.05)
        raise RuntimeError(f"smtp-sink did not start listening on {self.address}")

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        rest = b""
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            now = time.perf_counter()
            *lines, rest = (rest + chunk).split(b"\r")
            if not lines:
                continue
            counters = dict(f.split(b"=", 1) for f in lines[-1].split() if b"=" in f)
            mesg = int(counters.get(b"mesg", self.messages))
            self.times.extend([now] * (mesg - self.messages))
            self.messages = mesg
            self.sessions = int(counters.get(b"sess", self.sessions))

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            stop_process(self.proc, 10)
        if self._thread is not None:
            self._thread.join(5)


def process_tree(root: int) -> list[int]:
    """``root`` and its live descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def memory_kb(pids: list[int]) -> tuple[int, int]:
    """(RSS, PSS) in kB summed over ``pids``. RSS counts shared pages once per process
    (libraries, the page cache of mapped files); PSS divides them among the sharers."""
    rss = pss = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key == "Rss":
                        rss += int(value.split()[0])
                    elif key == "Pss":
                        pss += int(value.split()[0])
        except OSError:
            continue
    return rss, pss


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of each process plus those of its reaped children (cutime +
    cstime), summed: the CPU a process tree has used so far, exited workers included."""
    ticks = 0
    for pid in pids:
        try:
            f = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        ticks += sum(int(x) for x in f[11:15])  # fields 14-17: utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


class SmtpLoadClient:
    """A minimal pipelining SMTP client for load: EHLO (and AUTH PLAIN) once, then many
    transactions, MAIL + RCPT + DATA in one write. Shared by the SMTP benchmarks."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.r, self.w = reader, writer

    @classmethod
    async def connect(cls, port: int, host: str = "127.0.0.1",
                      auth: tuple[str, str] | None = None) -> SmtpLoadClient:
        r, w = await asyncio.open_connection(host, port, limit=1 << 20)
        c = cls(r, w)
        if (code := await c.reply()) != 220:
            raise RuntimeError(f"greeting {code}")
        w.write(b"EHLO bench.example.org\r\n")
        if (code := await c.reply()) != 250:
            raise RuntimeError(f"EHLO {code}")
        if auth is not None:
            token = base64.b64encode(f"\0{auth[0]}\0{auth[1]}".encode()).decode()
            w.write(f"AUTH PLAIN {token}\r\n".encode())
            if (code := await c.reply()) != 235:
                raise RuntimeError(f"AUTH {code}")
        return c

    async def reply(self) -> int:
        """The code of the next (possibly multi-line) reply; 0 when the server closed."""
        while True:
            line = await self.r.readline()
            if len(line) < 4:
                return 0
            if line[3:4] != b"-":
                return int(line[:3])

    async def begin(self, mail_from: str, rcpt: str, size: int) -> bool:
        """MAIL + RCPT + DATA in one write; True at 354 (else the transaction is reset)."""
        w = self.w
        w.write(f"MAIL FROM:<{mail_from}> SIZE={size}\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n"
                .encode())
        mail, _rcpt, data = await self.reply(), await self.reply(), await self.reply()
        if data != 354:
            if mail == 250:
                w.write(b"RSET\r\n")
                await self.reply()
            return False
        return True

    async def send(self, mail_from: str, rcpt: str, *parts: bytes) -> bool:
        """One transaction of ``parts`` (dot-stuffed already); True at the final 250."""
        if not await self.begin(mail_from, rcpt, sum(map(len, parts))):
            return False
        for part in parts:
            self.w.write(part)
        self.w.write(b".\r\n")
        await self.w.drain()
        return await self.reply() == 250

    async def quit(self) -> None:
        self.w.write(b"QUIT\r\n")
        try:
            await self.reply()
        except ConnectionError:
            pass
        self.w.close()


def wait_listening(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    """Until 127.0.0.1:``port`` accepts; raises if ``proc`` exits or 30 s pass."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited with {proc.returncode}") from None
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not start listening")


def stop_process(proc: subprocess.Popen[bytes], grace: float = 30) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def serve_postroom(cfg: Path, port: int, log: Path | None = None) -> subprocess.Popen[bytes]:
    """``python -m postroom -c cfg serve`` (stderr to ``log``, appended), once ``port``
    accepts connections."""
    if log is None:
        proc = subprocess.Popen([sys.executable, "-m", "postroom", "-c", str(cfg), "serve"],
                                stderr=subprocess.DEVNULL)
    else:
        with open(log, "ab") as f:
            proc = subprocess.Popen(
                [sys.executable, "-m", "postroom", "-c", str(cfg), "serve"], stderr=f)
    wait_listening(port, proc, "postroom")
    return proc
