"""The SMTP client engine as transcripts, every one fed at every chunk size."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from relay_transcript import Action, every_split, run

from postroom.smtp.client_protocol import (
    ClientProtocolError,
    Closed,
    Credentials,
    Envelope,
    Extensions,
    NeedData,
    OutboundRecipient,
    SessionFailed,
    SmtpClientProtocol,
    State,
    Timeouts,
    TlsMode,
    TransactionDone,
)
from postroom.smtp.codes import Reply

BODY = b"Subject: hi\r\n\r\nHello\r\n.dot line\r\n"
# BODY as the client sends it after 354: dot-stuffed, then the lone dot.
BODY_SENT = "C: Subject: hi\nC:\nC: Hello\nC: ..dot line\nC: ."


def ehlo(*extensions: str) -> str:
    """Transcript lines: the greeting, our EHLO and a reply naming ``extensions``."""
    names = ["mx.test", *extensions]
    reply = [f"S: 250-{name}" for name in names[:-1]] + [f"S: 250 {names[-1]}"]
    return "\n".join(["S: 220 mx.test ESMTP", "C: EHLO client.test", *reply])


def pipelined(*rcpts: str, data: bool = True) -> str:
    """Client lines sent in one go: MAIL from a@here.test, the RCPTs, then DATA (or not)."""
    rcpt_lines = [f"C: RCPT TO:<{rcpt}>" for rcpt in rcpts]
    return "\n".join(["C: MAIL FROM:<a@here.test>", *rcpt_lines, *(["C: DATA"] if data else [])])


def one_by_one(rcpt: str, sender: str = "a@here.test") -> str:
    """Without pipelining: MAIL and one RCPT, each answered 250 before the next."""
    return "\n".join([f"C: MAIL FROM:<{sender}>", "S: 250 OK", f"C: RCPT TO:<{rcpt}>", "S: 250 OK"])


def env(*rcpts: str, sender: str = "a@here.test", size: int = len(BODY), **kw: Any) -> Envelope:
    recipients = tuple(OutboundRecipient(r) if isinstance(r, str) else r for r in rcpts)
    return Envelope(sender, recipients, size, **kw)


def send(envelope: Envelope) -> Action:
    return lambda e: e.send_message(envelope)


def body(data: bytes = BODY, *, last: bool = True) -> Action:
    return lambda e: e.send_body(data, last=last)


def quit_() -> Action:
    return lambda e: e.quit()


def factory(**kw: Any) -> Any:
    kw.setdefault("tls_mode", TlsMode.NONE)
    return lambda: SmtpClientProtocol("client.test", **kw)


def codes(events: Sequence[object]) -> list[list[int]]:
    return [[r.code for r in e.result.replies] for e in events if isinstance(e, TransactionDone)]


def test_pipelined_transaction_with_dsn_and_size() -> None:
    script = f"""
    S: 220 mx.test ESMTP
    C: EHLO client.test
    S: 250-mx.test hello
    S: 250-PIPELINING
    S: 250-SIZE 1000
    S: 250-8BITMIME
    S: 250 DSN
    C: MAIL FROM:<a@here.test> SIZE=33 RET=HDRS ENVID=id+2B1
    C: RCPT TO:<b@there.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@there.test
    C: RCPT TO:<c@there.test>
    C: DATA
    S: 250 2.1.0 OK
    S: 250 2.1.5 OK
    S: 550 5.1.1 No such user
    S: 354 Go ahead
    {BODY_SENT}
    S: 250 2.0.0 Queued as 42
    C: QUIT
    S: 221 2.0.0 Bye
    """
    envelope = env(
        OutboundRecipient(
            "b@there.test", frozenset({"SUCCESS", "FAILURE"}), ("rfc822", "b@there.test")
        ),
        "c@there.test",
        ret="HDRS",
        envid="id+1",
    )
    events = every_split(factory(), script, lambda: [send(envelope), body(), quit_()])
    done = events[0]
    assert isinstance(done, TransactionDone)
    assert [str(r) for r in done.result.replies] == [
        "250 2.0.0 Queued as 42",
        "550 5.1.1 No such user",
    ]
    assert done.result.dsn and done.result.data_sent
    assert isinstance(events[1], Closed)


# Transcripts whose whole check is the replies each transaction ended with:
# (script, the actions answering the engine, codes(events)).
TRANSACTIONS = [
    pytest.param(
        f"""
        {ehlo()}
        {one_by_one("b@there.test", sender="")}
        C: RCPT TO:<c@there.test>
        S: 451 4.7.1 Greylisted
        C: DATA
        S: 354 Go ahead
        {BODY_SENT}
        S: 250 OK
        """,
        lambda: [send(env("b@there.test", "c@there.test", sender="")), body()],
        [[250, 451]],
        id="without_pipelining_commands_wait_for_replies",
    ),
    pytest.param(
        f"""
        S: 220 old.test SMTP
        C: EHLO client.test
        S: 502 Command not implemented
        C: HELO client.test
        S: 250 old.test
        {one_by_one("b@there.test")}
        C: DATA
        S: 354 Go ahead
        C: x
        C: .
        S: 250 OK
        """,
        lambda: [send(env("b@there.test", size=1)), body(b"x", last=True)],
        [[250]],
        id="helo_fallback_when_ehlo_is_refused",
    ),
    pytest.param(
        f"""
        {ehlo("PIPELINING")}
        {pipelined("b@there.test")}
        S: 250 OK
        S: 550 5.1.1 Unknown
        S: 554 5.5.1 No valid recipients
        C: RSET
        {pipelined("c@there.test")}
        S: 250 OK
        S: 250 OK
        S: 250 OK
        S: 354 Go
        {BODY_SENT}
        S: 250 OK
        """,
        lambda: [send(env("b@there.test")), send(env("c@there.test")), body()],
        [[550], [250]],
        id="all_recipients_refused_then_rset_before_next_message",
    ),
    pytest.param(
        f"""
        {ehlo()}
        C: MAIL FROM:<a@here.test>
        S: 553 5.7.1 Sender refused
        """,
        lambda: [send(env("b@x.test", "c@x.test"))],
        [[553, 553]],
        id="mail_refused_without_pipelining_gives_every_recipient_its_reply",
    ),
    pytest.param(
        f"""
        {ehlo("PIPELINING", "CHUNKING")}
        {pipelined("b@x.test", data=False)}
        S: 250 OK
        S: 250 OK
        C: BDAT 6
        C: .abc
        C: BDAT 5 LAST
        C: xyz
        S: 250 2.0.0 6 octets
        S: 250 2.0.0 Queued
        """,
        lambda: [send(env("b@x.test", size=11)), body(b".abc\r\n", last=False), body(b"xyz\r\n")],
        [[250]],
        id="chunking_sends_bdat_after_the_recipients_answered",
    ),
    pytest.param(
        f"""
        {ehlo("CHUNKING")}
        {one_by_one("b@x.test")}
        C: BDAT 2
        C:
        S: 250 2.0.0 2 octets
        C: BDAT 0 LAST
        S: 552 5.3.4 Too big after all
        """,
        lambda: [send(env("b@x.test", size=2)), body(b"\r\n", last=False), body(b"")],
        [[552]],
        id="chunking_without_pipelining_waits_for_each_chunk",
    ),
    pytest.param(
        f"""
        {ehlo("CHUNKING")}
        {one_by_one("b@x.test")}
        C: BDAT 2
        C:
        S: 451 4.3.0 Disk full
        C: RSET
        S: 250 OK
        C: MAIL FROM:<a@here.test>
        S: 250 OK
        C: RCPT TO:<c@x.test>
        S: 550 5.1.1 Unknown
        """,
        lambda: [send(env("b@x.test", size=4)), body(b"\r\n", last=False), send(env("c@x.test"))],
        [[451], [550]],
        id="chunking_failed_chunk_ends_the_transaction",
    ),
    pytest.param(
        f"""
        {ehlo()}
        {one_by_one("b@x.test")}
        C: DATA
        S: 354 go
        C: a
        C: ..
        C: b
        C: .
        S: 250 OK
        """,
        lambda: [send(env("b@x.test", size=7)), body(b"a\n.\nb", last=True)],
        [[250]],
        id="bare_newlines_in_content_are_sent_as_crlf",
    ),
]


@pytest.mark.parametrize(("script", "actions", "expected"), TRANSACTIONS)
def test_transaction_replies(
    script: str, actions: Callable[[], list[Action]], expected: list[list[int]]
) -> None:
    assert codes(every_split(factory(), script, actions)) == expected


def test_354_with_no_accepted_recipient_sends_a_lone_dot() -> None:
    script = f"""
    {ehlo("PIPELINING")}
    {pipelined("b@there.test")}
    S: 250 OK
    S: 550 5.1.1 Unknown
    S: 354 Go ahead anyway
    C: .
    S: 554 5.5.1 No recipients
    """
    events = every_split(factory(), script, lambda: [send(env("b@there.test"))])
    assert codes(events) == [[550]]
    assert not events[0].result.data_sent  # type: ignore[union-attr]


def test_prechecks_refuse_without_sending_anything() -> None:
    script = f"""
    {ehlo("SIZE 10")}
    """
    big = env("b@x.test", size=11)
    utf8_addr = env("δ@x.test", size=5, smtputf8=True)
    utf8_head = env("b@x.test", size=5, smtputf8=True)
    eight = env("b@x.test", size=5, eight_bit=True)
    events = every_split(
        factory(), script, lambda: [send(big), send(utf8_addr), send(utf8_head), send(eight)]
    )
    assert [
        str(e.result.replies[0])[:9]
        for e in events  # type: ignore[union-attr]
    ] == ["552 5.3.4", "553 5.6.7", "554 5.6.9", "554 5.6.3"]


def test_smtputf8_and_8bitmime_are_declared() -> None:
    script = f"""
    {ehlo("8BITMIME", "SMTPUTF8")}
    C: MAIL FROM:<δ@here.test> BODY=8BITMIME SMTPUTF8
    S: 250 OK
    C: RCPT TO:<b@x.test>
    S: 250 OK
    C: DATA
    S: 354 go
    C: é
    C: .
    S: 250 OK
    """
    data = "é\r\n".encode()
    envelope = env("b@x.test", sender="δ@here.test", size=len(data), eight_bit=True, smtputf8=True)
    events = every_split(factory(), script, lambda: [send(envelope), body(data)])
    assert codes(events) == [[250]]


def test_starttls_then_ehlo_again_and_auth_plain() -> None:
    script = f"""
    {ehlo("STARTTLS")}
    C: STARTTLS
    S: 220 Go ahead
    C: EHLO client.test
    S: 250-mx.test
    S: 250 AUTH LOGIN PLAIN
    C: AUTH PLAIN AHVzZXIAc2VjcmV0
    S: 235 2.7.0 OK
    C: QUIT
    S: 221 Bye
    """
    eng = factory(tls_mode=TlsMode.OPPORTUNISTIC, credentials=Credentials("user", "secret"))
    events = every_split(eng, script, lambda: [lambda e: e.tls_started(), quit_()])
    assert events == [Closed()]


def test_auth_login_in_plain_text_when_allowed() -> None:
    script = f"""
    {ehlo("AUTH LOGIN")}
    C: AUTH LOGIN
    S: 334 VXNlcm5hbWU6
    C: dXNlcg==
    S: 334 UGFzc3dvcmQ6
    C: c2VjcmV0
    S: 535 5.7.8 Bad credentials
    C: QUIT
    """
    eng = factory(credentials=Credentials("user", "secret"), allow_plaintext_auth=True)
    events = every_split(eng, script, lambda: [])
    assert isinstance(events[-1], SessionFailed)
    assert events[-1].reply.code == 451 and events[-1].reply.enhanced == "5.7.8".replace(
        "5", "4", 1
    )


def test_credentials_are_never_sent_in_plain_text_by_default() -> None:
    script = f"""
    {ehlo("AUTH PLAIN")}
    C: QUIT
    """
    events = every_split(factory(credentials=Credentials("u", "p")), script, lambda: [])
    assert isinstance(events[-1], SessionFailed) and events[-1].reply.code == 451


def test_required_tls_not_offered_fails_temporarily() -> None:
    script = f"""
    {ehlo()}
    C: QUIT
    """
    events = every_split(factory(tls_mode=TlsMode.REQUIRED), script, lambda: [])
    assert isinstance(events[-1], SessionFailed)
    assert str(events[-1].reply).startswith("451 4.7.4")


def test_starttls_refused_continues_in_plain_text_when_opportunistic() -> None:
    script = f"""
    {ehlo("STARTTLS")}
    C: STARTTLS
    S: 454 4.7.0 TLS not available
    C: QUIT
    S: 221 Bye
    """
    events = every_split(factory(tls_mode=TlsMode.OPPORTUNISTIC), script, lambda: [quit_()])
    assert events == [Closed()]


def test_bytes_after_starttls_reply_are_an_injection() -> None:
    eng = SmtpClientProtocol("client.test", tls_mode=TlsMode.OPPORTUNISTIC)
    eng.receive_data(b"220 mx ESMTP\r\n")
    assert isinstance(eng.next_event(), NeedData)
    eng.receive_data(b"250-mx\r\n250 STARTTLS\r\n")
    eng.next_event()
    assert eng.data_to_send() == b"EHLO client.test\r\nSTARTTLS\r\n"
    eng.receive_data(b"220 Go ahead\r\n250 injected\r\n")
    ev = eng.next_event()
    assert isinstance(ev, SessionFailed) and ev.reply.enhanced == "4.5.0"


def test_greeting_554_ends_the_session() -> None:
    script = """
    S: 554 5.7.1 No service for you
    C: QUIT
    """
    events = every_split(factory(), script, lambda: [])
    assert isinstance(events[-1], SessionFailed) and events[-1].reply.code == 554


def test_421_mid_transaction_keeps_refusals_and_defers_the_rest() -> None:
    script = f"""
    {ehlo("PIPELINING")}
    {pipelined("b@x.test", "c@x.test")}
    S: 250 OK
    S: 550 5.1.1 Unknown
    S: 421 4.3.2 Shutting down
    """
    events = every_split(factory(), script, lambda: [send(env("b@x.test", "c@x.test"))])
    assert codes(events) == [[550, 421]]
    assert isinstance(events[-1], SessionFailed)


def test_connection_lost_mid_data_defers_the_accepted() -> None:
    script = f"""
    {ehlo("PIPELINING")}
    {pipelined("b@x.test")}
    S: 250 OK
    S: 250 OK
    S: 354 go
    {BODY_SENT}
    S: <close>
    """
    events = every_split(factory(), script, lambda: [send(env("b@x.test")), body()])
    assert codes(events) == [[451]]
    done = events[0]
    assert isinstance(done, TransactionDone) and not done.result.data_sent
    assert str(done.result.replies[0]).startswith("451 4.4.2")


def test_garbled_reply_is_a_protocol_error() -> None:
    script = """
    S: 220 mx.test ESMTP
    C: EHLO client.test
    S: 2x0 what
    """
    events = every_split(factory(), script, lambda: [])
    assert isinstance(events[-1], SessionFailed) and events[-1].reply.enhanced == "4.5.0"


def test_multiline_ehlo_parses_extensions() -> None:
    reply = Reply.parse(
        [b"250-mx.test", b"250-SIZE 35882577", b"250-AUTH PLAIN LOGIN", b"250 8bitmime"]
    )
    ext = Extensions.parse(reply)
    assert ext.size_limit == 35882577 and "8BITMIME" in ext
    assert ext.auth_mechanisms == {"PLAIN", "LOGIN"}


def test_timeouts_follow_rfc5321_4_5_3_2() -> None:
    eng = SmtpClientProtocol("c.test", tls_mode=TlsMode.NONE, timeouts=Timeouts())
    ev = eng.next_event()
    assert ev == NeedData(300.0)
    eng.receive_data(b"220 x\r\n")
    eng.next_event()
    eng.receive_data(b"250-x\r\n250 PIPELINING\r\n")
    eng.next_event()
    eng.send_message(env("b@x.test"))
    assert eng.next_event() == NeedData(300.0)  # MAIL
    eng.receive_data(b"250 ok\r\n250 ok\r\n")
    assert eng.next_event() == NeedData(120.0)  # DATA initiation
    eng.receive_data(b"354 go\r\n")
    eng.next_event()
    eng.send_body(b"x\r\n", last=True)
    assert eng.next_event() == NeedData(600.0)  # DATA termination


def test_calls_out_of_order_are_refused() -> None:
    eng = SmtpClientProtocol("c.test")
    with pytest.raises(ClientProtocolError):
        eng.send_message(env("b@x.test"))
    with pytest.raises(ClientProtocolError):
        eng.quit()
    assert eng.state is State.GREETING


def test_connection_reuse_two_messages_one_session() -> None:
    script = f"""
    {ehlo("PIPELINING")}
    {pipelined("b@x.test")}
    S: 250 OK
    S: 250 OK
    S: 354 go
    C: one
    C: .
    S: 250 OK first
    {pipelined("c@x.test")}
    S: 250 OK
    S: 250 OK
    S: 354 go
    C: two
    C: .
    S: 250 OK second
    C: QUIT
    S: 221 Bye
    """
    events = every_split(
        factory(),
        script,
        lambda: [
            send(env("b@x.test", size=5)),
            body(b"one\r\n"),
            send(env("c@x.test", size=5)),
            body(b"two\r\n"),
            quit_(),
        ],
    )
    assert codes(events) == [[250], [250]]
    assert isinstance(events[-1], Closed)


PIPELINED = f"""
{ehlo("PIPELINING", "CHUNKING")}
{pipelined("b@x.test", "c@x.test", data=False)}
S: 250 OK
S: 550 5.1.1 Unknown
S: 250 OK
C: BDAT 33 LAST
C: Subject: hi
C:
C: Hello
C: .dot line
S: 250 2.0.0 Queued
C: QUIT
S: 221 Bye
"""


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=30))
def test_any_chunking_of_the_server_side_gives_the_same_result(sizes: list[int]) -> None:
    events = run(
        SmtpClientProtocol("client.test", tls_mode=TlsMode.NONE),
        PIPELINED,
        [send(env("b@x.test", "c@x.test")), body(), quit_()],
        sizes,
    )
    assert codes(events) == [[550, 250]] and isinstance(events[-1], Closed)
