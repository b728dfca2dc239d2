"""A minimal SMTP peer for relay tests: accepts what our queue sends and records the
Subject of each message. ``answer_data`` changes the reply to DATA (a broken peer)."""

from __future__ import annotations

import contextlib
import re
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager

SUBJECT = re.compile(rb"^Subject: (\S+)", re.MULTILINE)


class PeerHandler(socketserver.StreamRequestHandler):
    """Just enough of an SMTP server to accept relayed mail."""

    server: Peer

    def reply(self, line: bytes) -> None:
        self.wfile.write(line + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError):  # our server killed mid-session
            self.session()

    def session(self) -> None:
        with self.server.lock:
            self.server.sessions += 1
        self.reply(b"220 peer.remote.test ESMTP")
        while True:
            line = self.rfile.readline(4096)
            if not line:
                return
            verb = line[:4].upper()
            if verb == b"EHLO":
                self.reply(b"250-peer.remote.test")
                self.reply(b"250 8BITMIME")
            elif verb == b"DATA":
                if self.server.answer_data != b"354 go ahead":
                    self.reply(self.server.answer_data)
                    continue
                self.reply(b"354 go ahead")
                data = b""
                while True:
                    chunk = self.rfile.readline(1 << 20)
                    if not chunk:
                        return
                    if chunk == b".\r\n":
                        break
                    data += chunk
                m = SUBJECT.search(data)
                with self.server.lock:
                    self.server.received.append(m.group(1).decode() if m else "?")
                self.reply(b"250 2.0.0 queued")
            elif verb == b"QUIT":
                self.reply(b"221 bye")
                return
            else:
                self.reply(b"250 ok")


class Peer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, answer_data: bytes = b"354 go ahead") -> None:
        super().__init__(("127.0.0.1", 0), PeerHandler)
        self.lock = threading.Lock()
        self.received: list[str] = []
        self.sessions = 0
        self.answer_data = answer_data


@contextmanager
def peer(answer_data: bytes = b"354 go ahead") -> Iterator[Peer]:
    server = Peer(answer_data)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
