"""Reference servers for side-by-side benchmarks and differential tests: a private
Dovecot (IMAP + POP3) on loopback with its own config directory. Nothing system-wide is
touched; everything lives under one temporary folder and stops by PID."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
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

    def __init__(self, users: dict[str, str], raw_passwords: bool = False) -> None:
        """``users``: address -> password (or, with ``raw_passwords``, a scheme-tagged
        hash such as ``{ARGON2ID}$argon2id$...``)."""
        self.users = users
        self.raw_passwords = raw_passwords
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
            pop3_port=self.pop3_port))
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

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)
