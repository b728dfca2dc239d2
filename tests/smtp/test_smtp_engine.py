"""The SMTP server engine, sans-IO: transcripts fed at every chunk split."""

from __future__ import annotations

import base64

import pytest
from smtp_helpers import (
    Driver,
    check_transcript,
    chunks,
    ehlo_lines,
    ehlo_reply,
    new_driver,
    parse_transcript,
    run_split,
)

from postroom.smtp.codes import Reply
from postroom.smtp.server_events import (
    NEED_DATA,
    PAUSED,
    AuthAborted,
    MailFromRequested,
    MessageStarted,
    RcptToRequested,
    StartTlsRequested,
    TransactionReset,
)
from postroom.smtp.server_protocol import ServerConfig, SmtpServerProtocol, State


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def ehlo_250(*extra: str) -> str:
    """The EHLO reply of the default config as ``S:`` lines, ``extra`` before LIMITS.

    Spelled out here on purpose (``ehlo_reply`` asks the engine, this does not)."""
    lines = [
        "mx.test",
        "PIPELINING",
        "SIZE 52428800",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "CHUNKING",
        "BINARYMIME",
        "DSN",
        *extra,
    ]
    return "\n".join([*(f"S: 250-{line}" for line in lines), "S: 250 LIMITS RCPTMAX=1000"])


EHLO_DEFAULT = ehlo_250()
EHLO_STARTTLS = ehlo_250("STARTTLS")


def accepted_envelope(sender: str = "a@example.org", rcpt: str = "b@example.org") -> str:
    """MAIL, RCPT and DATA, each answered at once (no pipelining), as transcript lines."""
    return "\n".join(
        [
            f"C: MAIL FROM:<{sender}>",
            "S: 250 2.1.0 Sender OK",
            f"C: RCPT TO:<{rcpt}>",
            "S: 250 2.1.5 Recipient OK",
            "C: DATA",
            "S: 354 End data with <CR><LF>.<CR><LF>",
        ]
    )


# EHLO, MAIL, RCPT and DATA as one client packet: what follows is message content.
DATA_OPEN = b"EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n"


def tail(d: Driver, n: int) -> list[str]:
    """The last ``n`` reply lines the driver's engine wrote."""
    return d.output().decode().splitlines()[-n:]


# ---- greeting, EHLO, HELO ------------------------------------------------------------


def test_ehlo_mail_rcpt_data_quit() -> None:
    d = check_transcript(
        f"""
        C: EHLO client.test
        {ehlo_reply()}
        {accepted_envelope("alice@example.org", "bob@example.net")}
        C: Subject: hi
        C:
        C: ..leading dot
        C: .
        S: 250 2.0.0 Queued
        C: QUIT
        S: 221 2.0.0 mx.test closing connection
        """
    )
    assert d.messages == [b"Subject: hi\r\n\r\n.leading dot\r\n"]
    assert d.closed == "quit"
    mail = [e for e in d.events if isinstance(e, MailFromRequested)]
    assert mail[0].address == "alice@example.org"


def test_helo_session_has_no_extensions() -> None:
    check_transcript(
        """
        C: HELO client.test
        S: 250 mx.test
        C: MAIL FROM:<a@example.org> SIZE=10
        S: 555 5.5.4 Unsupported parameter SIZE
        C: MAIL FROM:<a@example.org>
        S: 250 2.1.0 Sender OK
        C: BDAT 3 LAST
        C: abcRSET
        S: 503 5.5.1 CHUNKING not offered
        S: 250 2.0.0 OK
        """
    )


def test_capabilities_depend_on_tls_and_auth() -> None:
    plain = ehlo_lines(starttls=True, auth_mechanisms=("PLAIN", "LOGIN"))
    assert "STARTTLS" in plain
    assert not any(line.startswith("AUTH") for line in plain)
    assert "REQUIRETLS" not in plain
    tls = ehlo_lines(starttls=True, tls_active=True, auth_mechanisms=("PLAIN", "LOGIN"))
    assert "STARTTLS" not in tls
    assert "AUTH PLAIN LOGIN" in tls
    assert "REQUIRETLS" in tls
    allowed = ehlo_lines(auth_mechanisms=("PLAIN",), auth_without_tls=True)
    assert "AUTH PLAIN" in allowed
    limits = ehlo_lines(max_recipients=5, max_transactions=3, max_message_size=1000)
    assert "LIMITS RCPTMAX=5 MAILMAX=3" in limits
    assert "SIZE 1000" in limits
    off = ehlo_lines(pipelining=False, chunking=False, dsn=False, smtputf8=False)
    assert off == ["SIZE 52428800", "8BITMIME", "ENHANCEDSTATUSCODES", "LIMITS RCPTMAX=1000"]


def test_ehlo_needs_a_name_and_resets_transaction() -> None:
    d = check_transcript(
        f"""
        C: EHLO
        S: 501 5.5.4 Syntax: EHLO hostname
        C: EHLO c
        {ehlo_reply()}
        C: MAIL FROM:<>
        S: 250 2.1.0 Sender OK
        C: EHLO c
        {ehlo_reply()}
        C: RCPT TO:<b@example.org>
        S: 503 5.5.1 Need MAIL command
        """
    )
    assert any(isinstance(e, TransactionReset) for e in d.events)


def test_commands_before_helo() -> None:
    check_transcript(
        """
        C: MAIL FROM:<a@example.org>
        S: 503 5.5.1 Send HELO/EHLO first
        C: NOOP
        S: 250 2.0.0 OK
        C: RSET
        S: 250 2.0.0 OK
        C: VRFY bob
        S: 252 2.5.0 Cannot VRFY user, but will accept message
        C: EXPN list
        S: 502 5.5.1 EXPN not available
        C: FOO bar
        S: 500 5.5.1 Command unrecognized
        C: quit
        S: 221 2.0.0 mx.test closing connection
        """
    )


def test_help() -> None:
    d = run_split(b"HELP\r\n", 6)
    out = d.output().decode()
    assert out.splitlines()[1].startswith("214-2.0.0 Commands: ")
    assert out.splitlines()[2] == "214 2.0.0 End of HELP"


# ---- sequence errors ---------------------------------------------------------------


def test_bad_sequences() -> None:
    check_transcript(
        """
        C: HELO c
        S: 250 mx.test
        C: RCPT TO:<b@example.org>
        S: 503 5.5.1 Need MAIL command
        C: DATA
        S: 503 5.5.1 Need MAIL command
        C: MAIL FROM:<a@example.org>
        S: 250 2.1.0 Sender OK
        C: MAIL FROM:<a@example.org>
        S: 503 5.5.1 Nested MAIL command
        C: DATA
        S: 554 5.5.1 No valid recipients
        C: DATA extra
        S: 501 5.5.4 Syntax: DATA
        C: STARTTLS
        S: 503 5.5.1 STARTTLS not allowed during a mail transaction
        C: RSET
        S: 250 2.0.0 OK
        C: DATA
        S: 503 5.5.1 Need MAIL command
        """
    )


def test_mail_and_rcpt_syntax_errors() -> None:
    d = run_split(
        parse_transcript(
            """
            C: EHLO c
            C: MAIL alice@example.org
            C: MAIL FROM:alice@example.org
            C: MAIL FROM:<alice@@example.org>
            C: MAIL FROM:<alice@example.org>SIZE=1
            C: MAIL FROM: <alice@example.org>
            C: RCPT TO:<>
            C: RCPT TO:<bob@exa_mple.org>
            C: RCPT TO:<Postmaster>
            C: RCPT TO:<bob@example.org> FOO=bar
            C: RCPT TO:<bob@example.org> NOTIFY=SUCCESS NOTIFY=FAILURE
            """
        )[0],
        1000,
    )
    replies = [line for line in d.output().decode().splitlines() if not line.startswith("250-")]
    assert replies[2:] == [
        "501 5.5.4 Syntax: MAIL FROM:<address>",
        "501 5.1.7 Bad sender address syntax: Expected '<'",
        "501 5.1.7 Bad sender address syntax: Empty domain",
        "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]",
        "250 2.1.0 Sender OK",  # a space after the colon is tolerated
        "501 5.1.3 Bad recipient address syntax: Null path not allowed here",
        "501 5.1.3 Bad recipient address syntax: Invalid domain",
        "250 2.1.5 Recipient OK",
        "555 5.5.4 Unsupported parameter FOO",
        "555 5.5.4 Duplicate parameter NOTIFY",
    ]


# ---- pipelining (RFC 2920) ----------------------------------------------------------


def test_pipelined_replies_in_order_and_engine_waits_for_decisions() -> None:
    client, _ = parse_transcript(
        """
        C: EHLO c
        C: MAIL FROM:<a@example.org>
        C: RCPT TO:<one@example.org>
        C: RCPT TO:<two@example.org>
        C: DATA
        """
    )
    eng = SmtpServerProtocol(ServerConfig(hostname="mx.test"))
    eng.receive_data(client)
    assert isinstance(eng.next_event(), MailFromRequested)
    assert eng.next_event() is PAUSED  # nothing else is parsed before the answer
    out = eng.data_to_send()
    assert out.endswith(b"250 LIMITS RCPTMAX=1000\r\n")
    eng.accept()
    ev = eng.next_event()
    assert isinstance(ev, RcptToRequested) and ev.address == "one@example.org"
    eng.reject(Reply(550, "5.1.1", "No such user"))
    ev = eng.next_event()
    assert isinstance(ev, RcptToRequested) and ev.address == "two@example.org"
    eng.accept()
    assert isinstance(eng.next_event(), MessageStarted)
    assert eng.next_event() is NEED_DATA
    assert eng.data_to_send() == (
        b"250 2.1.0 Sender OK\r\n550 5.1.1 No such user\r\n250 2.1.5 Recipient OK\r\n"
        b"354 End data with <CR><LF>.<CR><LF>\r\n"
    )


def test_pipelined_data_then_quit_in_one_packet() -> None:
    d = check_transcript(
        f"""
        C: EHLO c
        {EHLO_DEFAULT}
        C: MAIL FROM:<a@example.org>
        C: RCPT TO:<b@example.org>
        C: DATA
        S: 250 2.1.0 Sender OK
        S: 250 2.1.5 Recipient OK
        S: 354 End data with <CR><LF>.<CR><LF>
        C: one
        C: .
        C: MAIL FROM:<a@example.org>
        C: RCPT TO:<c@example.org>
        C: DATA
        C: two
        C: .
        C: QUIT
        S: 250 2.0.0 Queued
        S: 250 2.1.0 Sender OK
        S: 250 2.1.5 Recipient OK
        S: 354 End data with <CR><LF>.<CR><LF>
        S: 250 2.0.0 Queued
        S: 221 2.0.0 mx.test closing connection
        """
    )
    assert d.messages == [b"one\r\n", b"two\r\n"]


def test_rejected_rcpt_then_data_gets_554() -> None:
    client, _ = parse_transcript(
        """
        C: EHLO c
        C: MAIL FROM:<a@example.org>
        C: RCPT TO:<nobody@example.org>
        C: DATA
        C: should not be a message
        C: .
        """
    )
    for size in (1, 7, len(client)):
        d = new_driver()
        d.rcpt_policy = lambda ev: Reply(550, "5.1.1", "No such user")
        for chunk in chunks(client, size):
            d.feed(chunk)
        assert tail(d, 5) == [
            "250 2.1.0 Sender OK",
            "550 5.1.1 No such user",
            "554 5.5.1 No valid recipients",
            "500 5.5.1 Command unrecognized",
            "500 5.5.1 Command unrecognized",
        ]
        assert d.messages == []


# ---- limits -------------------------------------------------------------------------


def test_command_line_too_long_is_discarded_to_the_next_lf() -> None:
    long = "NOOP " + "x" * 5000
    d = check_transcript(
        f"""
        C: {long}
        S: 500 5.5.2 Line too long
        C: NOOP
        S: 250 2.0.0 OK
        """,
        sizes=range(1, 200, 7),
    )
    assert d.engine.errors == 1
    # a line just under the limit is fine
    ok = "NOOP " + "x" * (4096 - 7)
    check_transcript(f"C: {ok}\nS: 250 2.0.0 OK", sizes=range(4000, 4200, 50))


def test_bare_lf_command_lines_are_tolerated_but_cr_inside_is_not() -> None:
    d = run_split(b"HELO c\nNOOP\r\nNO\rOP\r\n", 1)
    assert d.output().decode().splitlines()[1:] == [
        "250 mx.test",
        "250 2.0.0 OK",
        "501 5.5.2 Invalid character in command",
    ]


def test_invalid_utf8_command() -> None:
    d = run_split(b"HELO \xff\xfe\r\n", 3)
    assert d.output().endswith(b"500 5.5.2 Invalid UTF-8 in command\r\n")


def test_too_many_recipients() -> None:
    client, _ = parse_transcript(
        """
        C: EHLO c
        C: MAIL FROM:<a@example.org>
        C: RCPT TO:<1@example.org>
        C: RCPT TO:<2@example.org>
        C: RCPT TO:<3@example.org>
        """
    )
    d = run_split(client, 5, max_recipients=2)
    assert tail(d, 3) == [
        "250 2.1.5 Recipient OK",
        "250 2.1.5 Recipient OK",
        "452 4.5.3 Too many recipients",
    ]
    assert d.engine.errors == 0


def test_max_transactions() -> None:
    client, _ = parse_transcript(
        """
        C: EHLO c
        C: MAIL FROM:<a@example.org>
        C: RSET
        C: MAIL FROM:<a@example.org>
        """
    )
    d = run_split(client, 3, max_transactions=1)
    assert tail(d, 3) == [
        "250 2.1.0 Sender OK",
        "250 2.0.0 OK",
        "452 4.5.3 Too many transactions in this session",
    ]


def test_too_many_errors_disconnects() -> None:
    d = check_transcript(
        """
        C: FOO
        S: 500 5.5.1 Command unrecognized
        C: BAR
        S: 500 5.5.1 Command unrecognized
        C: BAZ
        S: 500 5.5.1 Command unrecognized
        S: 421 4.7.0 Too many errors, closing connection
        C: NOOP
        """,
        max_errors=3,
    )
    assert d.closed == "errors"


def test_http_request_closes() -> None:
    d = run_split(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 4)
    assert d.output().endswith(b"421 4.7.0 This is an SMTP server, closing\r\n")
    assert d.closed == "http"


def test_eof_and_timeout() -> None:
    d = new_driver()
    d.feed(b"HELO c\r\nNOO")
    d.feed(b"")
    assert d.closed == "eof"
    d = new_driver()
    d.feed(b"HELO c\r\n")
    d.engine.timeout()
    d.pump()
    assert d.output().endswith(b"421 4.4.2 mx.test Timeout, closing connection\r\n")
    assert d.closed == "timeout"
    d.feed(b"NOOP\r\n")  # ignored once closed
    assert d.output() == b""


# ---- SIZE (RFC 1870) ---------------------------------------------------------------


def test_size_declared_too_big() -> None:
    client, _ = parse_transcript(
        """
        C: EHLO c
        C: MAIL FROM:<a@example.org> SIZE=1001
        C: MAIL FROM:<a@example.org> SIZE=1000
        """
    )
    d = run_split(client, 9, max_message_size=1000)
    assert tail(d, 2) == [
        "552 5.3.4 Message size exceeds fixed maximum message size",
        "250 2.1.0 Sender OK",
    ]


def test_actual_data_too_big_is_read_to_the_end_then_refused() -> None:
    body = b"x" * 70 + b"\r\n"
    client = DATA_OPEN + body * 20 + b".\r\nNOOP\r\n"
    for size in (1, 13, 100, len(client)):
        d = run_split(client, size, max_message_size=1000)
        assert tail(d, 2) == [
            "552 5.3.4 Message size exceeds fixed maximum message size",
            "250 2.0.0 OK",
        ]
        assert d.messages == []
        assert isinstance(d.events[-1], TransactionReset)
        streamed = sum(len(e.data) for e in d.events if type(e).__name__ == "DataChunk")
        assert streamed <= 1000


def test_data_line_too_long() -> None:
    client = DATA_OPEN + b"y" * 200 + b"\r\n.\r\n"
    d = run_split(client, 17, max_data_line=100)
    assert d.output().endswith(b"500 5.5.2 Line too long in message content\r\n")
    d = run_split(client, 17, max_data_line=None)
    assert d.messages == [b"y" * 200 + b"\r\n"]


# ---- DATA framing and SMTP smuggling -------------------------------------------------

SMUGGLING = [
    b"\n.\n",
    b"\n.\r\n",
    b"\r.\r",
    b"\r.\r\n",
    b"\r\n.\r",
    b"\r\n.\n",
    b"\n.\r",
    b"\r\r\n.\r\r\n",
]


@pytest.mark.parametrize("fake_end", SMUGGLING, ids=repr)
def test_smuggling_sequences_never_end_data(fake_end: bytes) -> None:
    smuggled = b"MAIL FROM:<admin@example.org>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\n"
    client = (
        DATA_OPEN + b"Subject: one\r\n\r\nbody" + fake_end + smuggled + b"evil\r\n.\r\nQUIT\r\n"
    )
    for size in range(1, 40):
        d = run_split(client, size)
        starts = [e for e in d.events if isinstance(e, MailFromRequested)]
        assert len(starts) == 1, size  # the smuggled MAIL was never a command
        assert d.messages == []  # bare CR/LF: refused (default policy)
        assert tail(d, 2) == [
            "550 5.6.0 Bare CR or LF in message content not allowed",
            "221 2.0.0 mx.test closing connection",
        ], size


def test_nul_before_dot_is_just_content() -> None:
    client = DATA_OPEN + b"one\r\n\x00.\r\nMAIL FROM:<x@example.org>\r\n.\r\n"
    for size in (1, 4, len(client)):
        d = run_split(client, size)
        assert d.messages == [b"one\r\n\x00.\r\nMAIL FROM:<x@example.org>\r\n"]


@pytest.mark.parametrize("fake_end", SMUGGLING, ids=repr)
def test_smuggling_with_normalize_policy_keeps_one_message(fake_end: bytes) -> None:
    client = DATA_OPEN + b"body" + fake_end + b"MAIL FROM:<x@example.org>\r\n.\r\nQUIT\r\n"
    for size in (1, 2, 3, 5, len(client)):
        d = run_split(client, size, bare_newline="normalize")
        assert len(d.messages) == 1
        msg = d.messages[0]
        assert msg.startswith(b"body") and msg.endswith(b"MAIL FROM:<x@example.org>\r\n")
        assert b"\r\n" in msg
        # every line end is CRLF now
        assert msg.count(b"\n") == msg.count(b"\r\n") == msg.count(b"\r")


def test_empty_message_and_dot_lines() -> None:
    d = check_transcript(
        f"""
        C: HELO c
        S: 250 mx.test
        {accepted_envelope()}
        C: .
        S: 250 2.0.0 Queued
        {accepted_envelope()}
        C: ..
        C: ...
        C: .x
        C: x.
        C:  .
        C: .
        S: 250 2.0.0 Queued
        """
    )
    assert d.messages == [b"", b".\r\n..\r\nx\r\nx.\r\n .\r\n"]


def test_binary_and_8bit_data_passes_through() -> None:
    body = bytes(b for b in range(256) if b not in (10, 13)) + b"\r\n"
    client = (
        b"EHLO c\r\nMAIL FROM:<a@example.org> BODY=8BITMIME\r\nRCPT TO:<b@example.org>\r\n"
        b"DATA\r\n" + body + b".\r\n"
    )
    for size in (1, 3, len(client)):
        d = run_split(client, size)
        assert d.messages == [body]


# ---- BDAT (RFC 3030) -----------------------------------------------------------------


def test_bdat_chunks() -> None:
    d = check_transcript(
        f"""
        C: EHLO c
        C: MAIL FROM:<a@example.org> BODY=BINARYMIME
        C: RCPT TO:<b@example.org>
        C: BDAT 5
        C: abc
        C: BDAT 0
        C: BDAT 5 LAST
        C: xyz
        {EHLO_DEFAULT}
        S: 250 2.1.0 Sender OK
        S: 250 2.1.5 Recipient OK
        S: 250 2.0.0 5 octets received
        S: 250 2.0.0 0 octets received
        S: 250 2.0.0 Queued
        """
    )
    assert d.messages == [b"abc\r\nxyz\r\n"]


def test_bdat_binary_with_dots_and_crlf_dot_crlf_inside() -> None:
    payload = b"\r\n.\r\n\x00\xff\n.\n.." + bytes(range(256))
    client = (
        b"EHLO c\r\nMAIL FROM:<a@example.org> BODY=BINARYMIME\r\nRCPT TO:<b@example.org>\r\n"
        + f"BDAT {len(payload)} LAST\r\n".encode()
        + payload
        + b"QUIT\r\n"
    )
    for size in (1, 2, 64, len(client)):
        d = run_split(client, size)
        assert d.messages == [payload]
        assert d.closed == "quit"


def test_bdat_0_last_and_data_after_bdat() -> None:
    d = check_transcript(
        f"""
        C: HELO c
        S: 250 mx.test
        C: EHLO c
        {EHLO_DEFAULT}
        C: MAIL FROM:<a@example.org>
        S: 250 2.1.0 Sender OK
        C: RCPT TO:<b@example.org>
        S: 250 2.1.5 Recipient OK
        C: BDAT 4
        C: hi
        S: 250 2.0.0 4 octets received
        C: DATA
        S: 503 5.5.1 DATA not allowed after BDAT
        C: RCPT TO:<c@example.org>
        S: 503 5.5.1 RCPT not allowed after BDAT
        C: BDAT 0 LAST
        S: 250 2.0.0 Queued
        """
    )
    assert d.messages == [b"hi\r\n"]


def test_bdat_errors_still_consume_the_chunk() -> None:
    d = check_transcript(
        f"""
        C: EHLO c
        {EHLO_DEFAULT}
        C: BDAT 6
        C: QUIT
        S: 503 5.5.1 Need MAIL command
        C: MAIL FROM:<a@example.org>
        S: 250 2.1.0 Sender OK
        C: BDAT 6 LAST
        C: QUIT
        S: 554 5.5.1 No valid recipients
        C: BDAT x
        S: 501 5.5.4 Syntax: BDAT size [LAST]
        C: BDAT 1 FIRST
        S: 501 5.5.4 Syntax: BDAT size [LAST]
        C: NOOP
        S: 250 2.0.0 OK
        """
    )
    assert d.closed is None


def test_binarymime_requires_bdat() -> None:
    client, _ = parse_transcript(
        """
        C: EHLO c
        C: MAIL FROM:<a@example.org> BODY=BINARYMIME
        C: RCPT TO:<b@example.org>
        C: DATA
        """
    )
    d = run_split(client, 4)
    assert d.output().endswith(b"503 5.5.1 BODY=BINARYMIME requires BDAT\r\n")


def test_bdat_over_size_limit() -> None:
    client = (
        b"EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n"
        b"BDAT 600\r\n"
        + b"a" * 600
        + b"BDAT 600\r\n"
        + b"b" * 600
        + b"BDAT 10 LAST\r\n"
        + b"c" * 10
        + b"NOOP\r\n"
    )
    for size in (1, 50, len(client)):
        d = run_split(client, size, max_message_size=1000)
        assert tail(d, 4) == [
            "250 2.0.0 600 octets received",
            "552 5.3.4 Message size exceeds fixed maximum message size",
            # the transaction is over; the pipelined next chunk is read and refused
            "503 5.5.1 Need MAIL command",
            "250 2.0.0 OK",
        ]
        assert d.messages == []


# ---- DSN, SMTPUTF8 ----------------------------------------------------------------------


def test_dsn_parameters_reach_the_shell() -> None:
    client, _ = parse_transcript(
        """
        C: EHLO c
        C: MAIL FROM:<a@example.org> RET=HDRS ENVID=QQ+2B314
        C: RCPT TO:<b@example.org> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;b+2Bx@example.org
        C: RCPT TO:<c@example.org> NOTIFY=NEVER
        C: RCPT TO:<d@example.org> NOTIFY=NEVER,SUCCESS
        C: RCPT TO:<d@example.org> ORCPT=rfc822
        """
    )
    d = run_split(client, 11)
    mail = next(e for e in d.events if isinstance(e, MailFromRequested))
    assert mail.params.ret == "HDRS"
    assert mail.params.envid == "QQ+314"
    rcpts = [e for e in d.events if isinstance(e, RcptToRequested)]
    assert rcpts[0].params.notify == frozenset({"SUCCESS", "DELAY"})
    assert rcpts[0].params.orcpt == ("rfc822", "b+x@example.org")
    assert rcpts[1].params.notify == frozenset({"NEVER"})
    assert tail(d, 2) == [
        "501 5.5.4 Invalid NOTIFY value",
        "501 5.5.4 Invalid ORCPT value",
    ]


def test_dsn_disabled_refuses_params() -> None:
    client = b"EHLO c\r\nMAIL FROM:<a@example.org> RET=FULL\r\n"
    d = run_split(client, 5, dsn=False)
    assert d.output().endswith(b"555 5.5.4 Unsupported parameter RET\r\n")


def test_smtputf8() -> None:
    client, _ = parse_transcript(
        """
        C: EHLO c
        C: MAIL FROM:<jösé@exämple.org>
        C: MAIL FROM:<jösé@exämple.org> SMTPUTF8
        C: RCPT TO:<用户@例子.广告>
        C: RCPT TO:<"quoted user"@example.org>
        """
    )
    d = run_split(client, 1)
    assert tail(d, 4) == [
        "553 5.6.7 Non-ASCII address requires SMTPUTF8",
        "250 2.1.0 Sender OK",
        "250 2.1.5 Recipient OK",
        "250 2.1.5 Recipient OK",
    ]
    mail = next(e for e in d.events if isinstance(e, MailFromRequested))
    assert mail.params.smtputf8 and mail.address == "jösé@exämple.org"
    rcpts = [e.address for e in d.events if isinstance(e, RcptToRequested)]
    assert rcpts == ["用户@例子.广告", '"quoted user"@example.org']


def test_non_ascii_rcpt_without_smtputf8() -> None:
    client = b"EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@\xc3\xa9x.org>\r\n"
    d = run_split(client, 3)
    assert d.output().endswith(b"553 5.6.7 Non-ASCII address requires SMTPUTF8\r\n")


def test_untrusted_auth_param_becomes_null() -> None:
    client = b"EHLO c\r\nMAIL FROM:<a@example.org> AUTH=a+2Bb@example.org\r\n"
    d = run_split(client, 100, auth_mechanisms=("PLAIN",), tls_active=True)
    mail = next(e for e in d.events if isinstance(e, MailFromRequested))
    assert mail.params.auth == "<>"


# ---- STARTTLS (RFC 3207) -------------------------------------------------------------


def test_starttls_discards_injected_commands() -> None:
    client = b"EHLO c\r\nSTARTTLS\r\nMAIL FROM:<evil@example.org>\r\nRCPT TO:<x@example.org>\r\n"
    for size in range(len(b"EHLO c\r\nSTARTTLS\r\n"), len(client) + 1):
        d = new_driver(starttls=True)
        d.feed(client[:size])
        assert d.starttls_pending
        d.feed(client[size:])  # late plaintext, still before the handshake: dropped
        d.engine.tls_started()
        d.feed(b"EHLO c\r\n")
        out = d.output().decode().splitlines()
        assert "220 2.0.0 Ready to start TLS" in out
        assert not any(isinstance(e, MailFromRequested) for e in d.events)
        assert out[-1] == "250 LIMITS RCPTMAX=1000"
        assert "STARTTLS" not in out[-10:]
        assert d.engine.tls and d.engine.helo == "c"


def test_starttls_resets_session_state() -> None:
    d = new_driver(starttls=True, auth_mechanisms=("PLAIN",), auth_without_tls=True)
    creds = b64(b"\0alice\0secret")
    d.feed(f"EHLO c\r\nAUTH PLAIN {creds}\r\nSTARTTLS\r\n".encode())
    assert d.engine.authenticated_user is None or d.starttls_pending
    d.engine.tls_started()
    assert d.engine.authenticated_user is None
    assert d.engine.state is State.INITIAL
    d.feed(b"MAIL FROM:<a@example.org>\r\n")
    assert d.output().endswith(b"503 5.5.1 Send HELO/EHLO first\r\n")


def test_starttls_errors() -> None:
    check_transcript(
        """
        C: STARTTLS
        S: 503 5.5.1 Send HELO/EHLO first
        C: HELO c
        S: 250 mx.test
        C: STARTTLS now
        S: 501 5.5.4 Syntax: STARTTLS
        C: STARTTLS
        S: 502 5.5.1 STARTTLS not available
        """
    )
    d = run_split(b"HELO c\r\nSTARTTLS\r\n", 100, starttls=True, tls_active=True)
    assert d.output().endswith(b"503 5.5.1 TLS already active\r\n")
    eng = SmtpServerProtocol(ServerConfig(hostname="x"))
    with pytest.raises(RuntimeError):
        eng.tls_started()


# ---- AUTH (RFC 4954) -----------------------------------------------------------------

AUTH_CFG: dict[str, object] = {"auth_mechanisms": ("PLAIN", "LOGIN"), "tls_active": True}


def test_auth_plain_initial_response() -> None:
    creds = b64(b"\0alice\0secret")
    d = check_transcript(
        f"""
        C: HELO c
        S: 250 mx.test
        C: AUTH PLAIN {creds}
        S: 235 2.7.0 Authentication successful
        C: AUTH PLAIN {creds}
        S: 503 5.5.1 Already authenticated
        """,
        **AUTH_CFG,
    )
    assert d.engine.authenticated_user == "alice"


def test_auth_plain_with_challenge_and_failure() -> None:
    bad = b64(b"\0alice\0wrong")
    good = b64(b"\0alice\0secret")
    check_transcript(
        f"""
        C: HELO c
        S: 250 mx.test
        C: AUTH PLAIN
        S: 334\x20
        C: {bad}
        S: 535 5.7.8 Authentication credentials invalid
        C: AUTH plain
        S: 334\x20
        C: {good}
        S: 235 2.7.0 Authentication successful
        """,
        **AUTH_CFG,
    )


def test_auth_cancel_and_garbage() -> None:
    d = check_transcript(
        """
        C: HELO c
        S: 250 mx.test
        C: AUTH PLAIN
        S: 334\x20
        C: *
        S: 501 5.0.0 Authentication cancelled
        C: AUTH PLAIN
        S: 334\x20
        C: !!!notbase64
        S: 501 5.5.2 Invalid base64 data
        C: AUTH PLAIN !!!
        S: 501 5.5.2 Invalid base64 data
        C: AUTH CRAM-MD5
        S: 504 5.5.4 Unrecognized authentication type
        C: AUTH
        S: 501 5.5.4 Syntax: AUTH mechanism [initial-response]
        C: NOOP
        S: 250 2.0.0 OK
        """,
        **AUTH_CFG,
    )
    assert sum(isinstance(e, AuthAborted) for e in d.events) == 2


def test_auth_empty_initial_response() -> None:
    eng = SmtpServerProtocol(ServerConfig(hostname="mx.test", **AUTH_CFG))  # type: ignore[arg-type]
    eng.receive_data(b"EHLO c\r\nAUTH PLAIN =\r\n")
    ev = eng.next_event()
    assert ev.__class__.__name__ == "AuthRequested"
    assert ev.initial == b""  # type: ignore[union-attr]


def test_auth_line_too_long() -> None:
    d = new_driver(**AUTH_CFG)
    d.feed(b"HELO c\r\nAUTH PLAIN\r\n" + b"A" * 13000 + b"\r\nNOOP\r\n")
    assert tail(d, 2) == [
        "500 5.5.6 Authentication exchange line is too long",
        "250 2.0.0 OK",
    ]


def test_auth_not_offered() -> None:
    check_transcript(
        f"""
        C: EHLO c
        {EHLO_STARTTLS}
        C: AUTH PLAIN
        S: 538 5.7.11 Encryption required for requested authentication
        """,
        auth_mechanisms=("PLAIN",),
        starttls=True,
    )
    d = run_split(b"HELO c\r\nAUTH PLAIN\r\n", 100)
    assert d.output().endswith(b"502 5.5.1 AUTH not available\r\n")


def test_scram_style_final_data_needs_empty_response() -> None:
    eng = SmtpServerProtocol(ServerConfig(hostname="mx.test", **AUTH_CFG))  # type: ignore[arg-type]
    eng.receive_data(b"HELO c\r\nAUTH PLAIN =\r\n\r\n")
    assert eng.next_event().__class__.__name__ == "AuthRequested"
    eng.auth_succeeded("alice", b"v=final")
    assert eng.next_event() is NEED_DATA or eng.authenticated_user == "alice"
    out = eng.data_to_send().decode().splitlines()
    assert out[-2:] == [f"334 {b64(b'v=final')}", "235 2.7.0 Authentication successful"]
    assert eng.authenticated_user == "alice"


def test_submission_requires_auth() -> None:
    check_transcript(
        f"""
        C: EHLO c
        {EHLO_STARTTLS}
        C: MAIL FROM:<a@example.org>
        S: 530 5.7.0 Must issue a STARTTLS command first
        """,
        auth_mechanisms=("PLAIN",),
        starttls=True,
        require_auth=True,
    )
    creds = b64(b"\0alice\0secret")
    check_transcript(
        f"""
        C: EHLO c
        {ehlo_reply(require_auth=True, **AUTH_CFG)}
        C: MAIL FROM:<a@example.org>
        S: 530 5.7.0 Authentication required
        C: AUTH PLAIN {creds}
        S: 235 2.7.0 Authentication successful
        C: MAIL FROM:<a@example.org> AUTH=alice
        S: 250 2.1.0 Sender OK
        C: AUTH PLAIN {creds}
        S: 503 5.5.1 AUTH not allowed during a mail transaction
        """,
        require_auth=True,
        **AUTH_CFG,
    )


def test_shell_misuse_raises() -> None:
    eng = SmtpServerProtocol(ServerConfig(hostname="x"))
    with pytest.raises(RuntimeError):
        eng.accept()
    with pytest.raises(RuntimeError):
        eng.auth_challenge(b"")


def test_starttls_event_pauses_engine() -> None:
    eng = SmtpServerProtocol(ServerConfig(hostname="x", starttls=True))
    eng.receive_data(b"EHLO c\r\nSTARTTLS\r\nNOOP\r\n")
    assert isinstance(eng.next_event(), StartTlsRequested)
    assert eng.next_event() is PAUSED
    eng.close()
    assert eng.closed


def test_bdat_inside_data_is_content_and_bdat_after_data_works() -> None:
    client = (
        DATA_OPEN + b"BDAT 5 LAST\r\nhello\r\n.\r\n"
        b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nBDAT 5 LAST\r\nhello"
        b"QUIT\r\n"
    )
    for size in (1, 2, 9, len(client)):
        d = run_split(client, size)
        assert d.messages == [b"BDAT 5 LAST\r\nhello\r\n", b"hello"]
        assert d.closed == "quit"
