"""Fuzz target: a remote server's replies into our relay client (the SMTP client
engine), over a whole session: greeting, EHLO, STARTTLS, AUTH, MAIL/RCPT, DATA or
BDAT, QUIT. Whatever the peer says, the engine ends in ``Closed`` or
``SessionFailed``, answers every recipient, and never raises.
``python -m fuzz.smtp_reply --seconds N``."""

from __future__ import annotations

import zlib

from fuzz.engine import Target, main
from postroom.smtp.client_protocol import (
    Closed,
    Credentials,
    Envelope,
    NeedBody,
    NeedData,
    OutboundRecipient,
    Ready,
    SessionFailed,
    SmtpClientProtocol,
    StartTls,
    TlsMode,
    TransactionDone,
)
from postroom.smtp.codes import Reply

BODY = b"Subject: hi\r\n\r\n.dot\r\nline\r\n"
ENVELOPE = Envelope("a@example.test", (OutboundRecipient("b@example.org"),
                                        OutboundRecipient("c@example.org")), len(BODY))


def session(data: bytes, size: int, mode: TlsMode, auth: bool) -> list[object]:
    client = SmtpClientProtocol(
        "relay.example.test", tls_mode=mode, allow_plaintext_auth=auth,
        credentials=Credentials("user", "pw") if auth else None)
    pieces = [data[i : i + size] for i in range(0, len(data), size)] + [b""]
    feed = iter(pieces)
    seen: list[object] = []
    sent = False
    for _ in range(len(pieces) + 200):
        ev = client.next_event()
        client.data_to_send()
        if isinstance(ev, NeedData):
            client.receive_data(next(feed, b""))
            continue
        seen.append(ev)
        if isinstance(ev, Closed | SessionFailed):
            if isinstance(ev, SessionFailed):
                assert not ev.reply.positive, f"session failed with {ev.reply}"
            return seen
        if isinstance(ev, StartTls):
            client.tls_started()
        elif isinstance(ev, Ready):
            if sent:
                client.quit()
            else:
                sent = True
                client.send_message(ENVELOPE)
        elif isinstance(ev, NeedBody):
            client.send_body(BODY, last=True)
        elif isinstance(ev, TransactionDone):
            result = ev.result
            assert len(result.replies) == len(ENVELOPE.recipients)
            # A recipient counts as delivered only after the content went out and
            # the server answered it with 2xx; anything else would lose the message.
            for reply in result.replies:
                if reply.positive:
                    assert result.data_sent, f"delivered without sending: {reply}"
                    assert reply.code < 300, f"delivered on a {reply.code}"
    raise AssertionError(f"client did not finish: {seen[-3:]}")


def check(data: bytes) -> None:
    size = 1 + zlib.crc32(data) % 17
    mode = (TlsMode.NONE, TlsMode.OPPORTUNISTIC, TlsMode.REQUIRED)[size % 3]
    # Not split-invariant by nature: replies that arrive before their command was
    # sent are unsolicited (a protocol error) only when they arrive that early.
    session(data, max(len(data), 1), mode, bool(size & 4))
    session(data, size, mode, bool(size & 4))
    for raw in data.split(b"\n")[:50]:
        try:
            Reply.parse([raw.rstrip(b"\r")])
        except ValueError:
            pass


DICTIONARY = (
    b"220 mx.example.org ESMTP\r\n", b"250-mx.example.org\r\n", b"250-PIPELINING\r\n",
    b"250-SIZE 1000\r\n", b"250-SIZE\r\n", b"250-8BITMIME\r\n", b"250-SMTPUTF8\r\n",
    b"250-CHUNKING\r\n", b"250-BINARYMIME\r\n", b"250-DSN\r\n", b"250-STARTTLS\r\n",
    b"250-AUTH PLAIN LOGIN\r\n", b"250-ENHANCEDSTATUSCODES\r\n", b"250 HELP\r\n",
    b"250 2.1.0 Ok\r\n", b"250 2.1.5 Ok\r\n", b"354 go ahead\r\n", b"250 2.0.0 queued\r\n",
    b"220 2.0.0 ready for TLS\r\n", b"235 2.7.0 ok\r\n", b"334 \r\n", b"334 VXNlcm5hbWU6\r\n",
    b"421 4.4.2 bye\r\n", b"450 4.2.0 later\r\n", b"550 5.1.1 no\r\n", b"221 2.0.0 bye\r\n",
    b"\r\n", b"\n", b"-", b" ", b"2", b"5", b"\xff", b"\xb2\xb2\xb2", b"SIZE \xc2\xb2",
)

TARGET = Target("smtp_reply", check, DICTIONARY)

if __name__ == "__main__":
    raise SystemExit(main(TARGET))
