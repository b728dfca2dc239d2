"""Small raw clients for the hardening tests: one per protocol, over blocking sockets,
bound to a chosen 127.x source address when asked."""

from __future__ import annotations

import socket
import ssl

from hardening_net import connect_from


class LineClient:
    """Lines in, lines out; ``source`` picks the client address."""

    def __init__(self, port: int, source: str = "127.0.0.1", timeout: float = 10.0) -> None:
        self.sock: socket.socket = connect_from(source, port, timeout)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def starttls(self, ctx: ssl.SSLContext) -> None:
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")

    def closed(self) -> bool:
        """True once the server closed (reads EOF); False if it is still open."""
        try:
            return self.buf == b"" and self.sock.recv(1) == b""
        except (TimeoutError, BlockingIOError):
            return False
        except (ConnectionError, ssl.SSLError):
            return True

    def close(self) -> None:
        self.sock.close()


class Smtp(LineClient):
    def reply(self) -> list[bytes]:
        lines = [self.line()]
        while lines[-1][3:4] == b"-":
            lines.append(self.line())
        return lines

    def cmd(self, text: bytes) -> list[bytes]:
        self.send(text + b"\r\n")
        return self.reply()


class Imap(LineClient):
    """``cmd`` sends ``tag text`` and returns every line up to the tagged one."""

    n = 0

    def cmd(self, text: bytes) -> list[bytes]:
        Imap.n += 1
        tag = b"h%d" % Imap.n
        self.send(tag + b" " + text + b"\r\n")
        return self.until(tag)

    def until(self, tag: bytes) -> list[bytes]:
        lines = []
        while True:
            line = self.line()
            lines.append(line)
            if line.startswith(tag + b" "):
                return lines

    def login(self, user: str, password: str) -> list[bytes]:
        return self.cmd(b'LOGIN "%s" "%s"' % (user.encode(), password.encode()))


class Pop3(LineClient):
    def cmd(self, text: bytes) -> bytes:
        self.send(text + b"\r\n")
        return self.line()

    def multi(self, text: bytes) -> list[bytes]:
        first = self.cmd(text)
        lines = [first]
        if first.startswith(b"+OK"):
            while lines[-1] != b".":
                lines.append(self.line())
        return lines
