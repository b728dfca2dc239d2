"""POP3 engine transcripts, each replayed at every chunk size (STYLE habits 9 and 10)."""

from __future__ import annotations

import base64

import pytest
from pop3_engine_driver import MESSAGES, EngineDriver, chunked, run_split, transcript

from postroom.pop3.backend import MaildropEntry
from postroom.pop3.protocol import (
    EngineConfig,
    LocalProtocolError,
    NeedData,
    Paused,
    RetrieveMessage,
    ServerConnection,
    State,
)

SIZES = [len(m) for m in MESSAGES]
TOTAL = sum(SIZES)
LOGIN = """
S: +OK pop.example.test Postroom POP3 server ready
C: USER alice
S: +OK send PASS
C: PASS secret
"""
LOGGED_IN = LOGIN + f"S: +OK maildrop has 3 messages ({TOTAL} octets)\n"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


PLAIN_OK = b64(b"\x00alice\x00secret")
FINAL = b64(b"v=server-signature")


def assert_every_split(script: str, **kw: object) -> EngineDriver:
    """The same transcript whatever the chunk size: 1, 2, 3 ... octets, and whole."""
    client, _ = transcript(script)
    driver = None
    for size in [*range(1, min(len(client), 40) + 1), 64, 100, len(client)]:
        expected, actual, driver = run_split(script, size, **kw)
        assert actual == expected, f"chunk size {size}"
    assert driver is not None
    return driver


def test_full_session_every_split() -> None:
    script = (
        LOGGED_IN
        + f"""
        C: STAT
        S: +OK 3 {TOTAL}
        C: LIST
        S: +OK maildrop has 3 messages ({TOTAL} octets)
        S: 1 {SIZES[0]}
        S: 2 {SIZES[1]}
        S: 3 {SIZES[2]}
        S: .
        C: LIST 2
        S: +OK 2 {SIZES[1]}
        C: UIDL
        S: +OK unique-id listing follows
        S: 1 uid-1
        S: 2 uid-2
        S: 3 uid-3
        S: .
        C: UIDL 3
        S: +OK 3 uid-3
        C: NOOP
        S: +OK
        C: DELE 1
        S: +OK message 1 deleted
        C: DELE 1
        S: -ERR message 1 already deleted
        C: RETR 1
        S: -ERR message 1 already deleted
        C: LIST 1
        S: -ERR message 1 already deleted
        C: LIST
        S: +OK maildrop has 2 messages ({TOTAL - SIZES[0]} octets)
        S: 2 {SIZES[1]}
        S: 3 {SIZES[2]}
        S: .
        C: UIDL
        S: +OK unique-id listing follows
        S: 2 uid-2
        S: 3 uid-3
        S: .
        C: STAT
        S: +OK 2 {TOTAL - SIZES[0]}
        C: RSET
        S: +OK maildrop has 3 messages ({TOTAL} octets)
        C: DELE 3
        S: +OK message 3 deleted
        C: DELE 1
        S: +OK message 1 deleted
        C: QUIT
        S: +OK pop.example.test Postroom POP3 server signing off (1 messages left)
        """
    )
    driver = assert_every_split(script)
    assert driver.commits == [(0, 2)]
    assert driver.closed is not None
    assert driver.engine.state is State.CLOSED


def test_retr_dot_stuffing_every_split() -> None:
    script = (
        LOGGED_IN
        + f"""
        C: RETR 2
        S: +OK {SIZES[1]} octets
        S: Subject: two
        S: X-Dots: yes
        S:
        S: ..leading dot
        S: middle
        S: ...two dots
        S: ..
        S: end
        S: .
        C: RETR 1
        S: +OK {SIZES[0]} octets
        S: Subject: one
        S:
        S: Hello
        S: .
        """
    )
    assert_every_split(script)


def test_top_zero_some_and_too_many_lines() -> None:
    script = (
        LOGGED_IN
        + """
        C: TOP 3 0
        S: +OK top of message follows
        S: Subject: three
        S:
        S: .
        C: TOP 3 2
        S: +OK top of message follows
        S: Subject: three
        S:
        S: line 1
        S: line 2
        S: .
        C: TOP 3 99
        S: +OK top of message follows
        S: Subject: three
        S:
        S: line 1
        S: line 2
        S: line 3
        S: .
        C: TOP 2 1
        S: +OK top of message follows
        S: Subject: two
        S: X-Dots: yes
        S:
        S: ..leading dot
        S: .
        C: TOP 3
        S: -ERR syntax: TOP msg n
        C: TOP 3 -1
        S: -ERR invalid number of lines
        C: TOP 9 1
        S: -ERR no such message
        """
    )
    assert_every_split(script)


@pytest.mark.parametrize(
    ("command", "answer"),
    [
        ("RETR 0", "-ERR no such message"),
        ("RETR 4", "-ERR no such message"),
        ("RETR -1", "-ERR invalid message number"),
        ("RETR +1", "-ERR invalid message number"),
        ("RETR x", "-ERR invalid message number"),
        ("RETR", "-ERR syntax: RETR msg"),
        ("RETR 1 2", "-ERR syntax: RETR msg"),
        ("DELE 99999999999999999999999", "-ERR no such message"),
        ("LIST 1 2", "-ERR syntax: LIST [msg]"),
        ("UIDL 0", "-ERR no such message"),
        ("RETR \u0661", "-ERR arguments must be ASCII"),
        ("DELE", "-ERR syntax: DELE msg"),
        ("DELE 1 2", "-ERR syntax: DELE msg"),
        ("DELE \u0661", "-ERR arguments must be ASCII"),
        ("TOP \u0661 1", "-ERR arguments must be ASCII"),
        ("LIST \u0661", "-ERR arguments must be ASCII"),
    ],
)
def test_bad_message_numbers(command: str, answer: str) -> None:
    expected, actual, _ = run_split(LOGGED_IN + f"C: {command}\nS: {answer}\n", 1000)
    assert actual == expected


def test_commands_in_the_wrong_state() -> None:
    script = f"""
        S: +OK pop.example.test Postroom POP3 server ready
        C: STAT
        S: -ERR STAT not valid in the AUTHORIZATION state
        C: NOOP
        S: -ERR NOOP not valid in the AUTHORIZATION state
        C: USER alice
        S: +OK send PASS
        C: PASS secret
        S: +OK maildrop has 3 messages ({TOTAL} octets)
        C: USER bob
        S: -ERR USER not valid in the TRANSACTION state
        C: STLS
        S: -ERR STLS not valid in the TRANSACTION state
        C: UTF8
        S: -ERR UTF8 not valid in the TRANSACTION state
        C: AUTH PLAIN
        S: -ERR AUTH not valid in the TRANSACTION state
        """
    assert_every_split(script)


def test_unknown_commands_continue_and_too_many_errors_close() -> None:
    lines = ["S: +OK pop.example.test Postroom POP3 server ready"]
    for _ in range(9):
        lines += ["C: XYZZY", "S: -ERR unknown command"]
    lines += ["C: ", "S: -ERR too many errors, closing connection", "C: NOOP"]
    driver = assert_every_split("\n".join(lines))
    assert driver.closed == "too many errors, closing connection"


def test_lowercase_commands_and_bare_lf() -> None:
    client = b"user alice\npass secret\r\nstat\n"
    driver = EngineDriver()
    out = driver.feed([client])
    assert out.endswith(f"+OK 3 {TOTAL}\r\n".encode())


def test_password_may_contain_spaces() -> None:
    script = """
    S: +OK pop.example.test Postroom POP3 server ready
    C: USER bob
    S: +OK send PASS
    C: PASS  two words
    S: +OK maildrop has 3 messages (136 octets)
    """.replace("136", str(TOTAL))
    assert_every_split(script, users={"bob": " two words"})


def test_pass_must_follow_user() -> None:
    script = """
    S: +OK pop.example.test Postroom POP3 server ready
    C: PASS secret
    S: -ERR USER first
    C: USER alice
    S: +OK send PASS
    C: CAPA
    C: PASS secret
    """
    client, _ = transcript(script)
    out = EngineDriver().feed([client])
    assert out.endswith(b"IMPLEMENTATION Postroom\r\n.\r\n-ERR USER first\r\n")


def test_wrong_password_three_times_closes() -> None:
    script = """
    S: +OK pop.example.test Postroom POP3 server ready
    C: USER alice
    S: +OK send PASS
    C: PASS wrong
    S: -ERR [AUTH] authentication failed
    C: USER alice
    S: +OK send PASS
    C: PASS wrong
    S: -ERR [AUTH] authentication failed
    C: USER alice
    S: +OK send PASS
    C: PASS wrong
    S: -ERR [AUTH] authentication failed; too many failures, closing connection
    C: USER alice
    """
    driver = assert_every_split(script)
    assert driver.closed is not None


def test_in_use() -> None:
    script = (
        LOGIN
        + """
        S: -ERR [IN-USE] maildrop already locked
        C: STAT
        S: -ERR STAT not valid in the AUTHORIZATION state
        """
    )
    assert_every_split(script, in_use=True)


# --- line limits -------------------------------------------------------------------


def test_overlong_line_is_refused_and_skipped() -> None:
    long = "X" * 600
    script = f"""
    S: +OK pop.example.test Postroom POP3 server ready
    C: {long}
    S: -ERR line too long
    C: USER {"a" * 505}
    S: +OK send PASS
    C: {"N" * 513}
    S: -ERR line too long
    C: CAPA
    S: +OK capability list follows
    S: TOP
    S: UIDL
    S: RESP-CODES
    S: AUTH-RESP-CODE
    S: PIPELINING
    S: USER
    S: SASL PLAIN X-FINAL
    S: STLS
    S: EXPIRE NEVER
    S: UTF8 USER
    S: IMPLEMENTATION Postroom
    S: .
    """
    assert_every_split(script)


def test_line_of_exactly_the_limit_fits() -> None:
    config = EngineConfig(hostname="pop.example.test", max_line=10)
    for client in (b"NOOP 12345\r\n", b"NOOP 12345\n"):
        for size in range(1, len(client) + 1):
            out = EngineDriver(config=config).feed(chunked(client, size))
            assert out.endswith(b"-ERR NOOP not valid in the AUTHORIZATION state\r\n")
    for size in range(1, 14):
        out = EngineDriver(config=config).feed(chunked(b"NOOP 123456\r\n", size))
        assert out.endswith(b"-ERR line too long\r\n"), size


def test_sasl_response_may_be_long_but_not_endless() -> None:
    long_ok = b64(b"\x00alice\x00secret" + b" " * 5000)
    script = f"""
    S: +OK pop.example.test Postroom POP3 server ready
    C: AUTH PLAIN
    S: +\x20
    C: {long_ok}
    S: -ERR [AUTH] authentication failed
    C: AUTH PLAIN
    S: +\x20
    C: {"A" * 20000}
    S: -ERR line too long, authentication aborted
    C: NOOP
    S: -ERR NOOP not valid in the AUTHORIZATION state
    """
    assert_every_split(script)


# --- AUTH (RFC 5034) ---------------------------------------------------------------


def test_auth_variants_every_split() -> None:
    plain = PLAIN_OK
    wrong = b64(b"\x00alice\x00nope")
    script = f"""
    S: +OK pop.example.test Postroom POP3 server ready
    C: AUTH
    S: +OK SASL mechanisms follow
    S: PLAIN
    S: X-FINAL
    S: .
    C: AUTH CRAM-MD5
    S: -ERR unsupported SASL mechanism
    C: AUTH PLAIN a b
    S: -ERR syntax: AUTH mechanism [initial-response]
    C: AUTH PLAIN \u0661
    S: -ERR arguments must be ASCII
    C: UTF8 please
    S: -ERR UTF8 takes no argument
    C: AUTH PLAIN
    S: +\x20
    C: *
    S: -ERR authentication cancelled
    C: AUTH PLAIN
    S: +\x20
    C: not base64!
    S: -ERR invalid base64, authentication aborted
    C: AUTH PLAIN =
    S: -ERR malformed SASL response
    C: AUTH PLAIN %%%
    S: -ERR invalid base64 in initial response
    C: AUTH PLAIN {wrong}
    S: -ERR [AUTH] authentication failed
    C: auth plain
    S: +\x20
    C: {plain}
    S: +OK maildrop has 3 messages ({TOTAL} octets)
    """
    assert_every_split(script)


def test_auth_initial_response() -> None:
    script = f"""
    S: +OK pop.example.test Postroom POP3 server ready
    C: AUTH PLAIN {PLAIN_OK}
    S: +OK maildrop has 3 messages ({TOTAL} octets)
    """
    assert_every_split(script)


def test_auth_initial_response_may_exceed_the_command_limit() -> None:
    long_plain = b64(b"\x00alice\x00secret" + b" " * 600)
    script = f"""
    S: +OK pop.example.test Postroom POP3 server ready
    C: AUTH PLAIN {long_plain}
    S: -ERR [AUTH] authentication failed
    C: NOOP {long_plain}
    S: -ERR line too long
    C: AUTH PLAIN {"A" * 20000}
    S: -ERR line too long
    """
    assert_every_split(script)


def test_auth_additional_data_with_success() -> None:
    """RFC 5034 section 4: data with success goes out as a last "+" challenge, the
    client answers with an empty line, then +OK."""
    script = f"""
    S: +OK pop.example.test Postroom POP3 server ready
    C: AUTH X-FINAL {PLAIN_OK}
    S: + {FINAL}
    C:
    S: +OK maildrop has 3 messages ({TOTAL} octets)
    """
    assert_every_split(script)


# --- TLS and plaintext policy (RFC 2595) -------------------------------------------


def test_plaintext_refused_before_tls() -> None:
    script = f"""
    S: +OK pop.example.test Postroom POP3 server ready
    C: CAPA
    S: +OK capability list follows
    S: TOP
    S: UIDL
    S: RESP-CODES
    S: AUTH-RESP-CODE
    S: PIPELINING
    S: STLS
    S: EXPIRE NEVER
    S: UTF8 USER
    S: IMPLEMENTATION Postroom
    S: .
    C: USER alice
    S: -ERR log in over TLS: use STLS first
    C: PASS secret
    S: -ERR USER first
    C: AUTH PLAIN {PLAIN_OK}
    S: -ERR log in over TLS: use STLS first
    C: AUTH
    S: -ERR log in over TLS: use STLS first
    """
    driver = assert_every_split(script, plaintext_allowed=False)
    assert driver.engine.state is State.AUTHORIZATION


def test_stls_then_login() -> None:
    driver = EngineDriver(plaintext_allowed=False)
    out = driver.feed([b"STLS\r\n"])
    assert out.endswith(b"+OK begin TLS negotiation\r\n")
    assert driver.tls_starts == 1
    out = driver.feed([b"CAPA\r\nSTLS\r\nUSER alice\r\nPASS secret\r\n"])
    capa = out.split(b"+OK begin TLS negotiation\r\n", 1)[1]
    assert b"\r\nUSER\r\n" in capa
    assert b"\r\nSASL PLAIN X-FINAL\r\n" in capa
    assert b"STLS" not in capa.split(b"\r\n.\r\n")[0]
    assert capa.endswith(
        b"-ERR TLS already active\r\n+OK send PASS\r\n"
        + f"+OK maildrop has 3 messages ({TOTAL} octets)\r\n".encode()
    )


def test_stls_injection_is_discarded() -> None:
    """Commands pipelined after STLS in the clear must not run after the handshake."""
    driver = EngineDriver()
    out = driver.feed([b"USER alice\r\nSTLS\r\nUSER alice\r\nPASS secret\r\nSTAT\r\n"])
    assert out == (
        b"+OK pop.example.test Postroom POP3 server ready\r\n"
        b"+OK send PASS\r\n+OK begin TLS negotiation\r\n"
    )
    assert driver.engine.state is State.AUTHORIZATION
    # What was said before TLS is forgotten: USER must be sent again.
    out = driver.feed([b"PASS secret\r\n"])
    assert out.endswith(b"+OK begin TLS negotiation\r\n-ERR USER first\r\n")


def test_stls_unavailable_or_with_argument() -> None:
    config = EngineConfig(hostname="pop.example.test")
    driver = EngineDriver(config=config)
    assert driver.feed([b"STLS\r\n"]).endswith(b"-ERR TLS not available\r\n")
    assert driver.feed([b"STLS now\r\n"]).endswith(b"-ERR STLS takes no argument\r\n")
    implicit = EngineDriver(tls_active=True, plaintext_allowed=False)
    out = implicit.feed([b"CAPA\r\nSTLS\r\n"])
    assert b"\r\nSTLS\r\n" not in out
    assert b"\r\nUSER\r\n" in out
    assert out.endswith(b"-ERR TLS already active\r\n")


# --- UTF8 (RFC 6856) and capabilities ----------------------------------------------


def test_utf8_messages_need_the_utf8_command() -> None:
    driver = EngineDriver(utf8_messages=frozenset({0}))
    out = driver.feed([b"USER alice\r\nPASS secret\r\nRETR 1\r\nTOP 1 0\r\nRETR 3\r\n"])
    assert out.count(b"-ERR [UTF8] message needs UTF-8 support: send UTF8\r\n") == 2
    assert out.endswith(b"line 3\r\n.\r\n")
    driver = EngineDriver(utf8_messages=frozenset({0}))
    out = driver.feed([b"UTF8\r\nUSER alice\r\nPASS secret\r\nRETR 1\r\n"])
    assert b"+OK UTF8 enabled\r\n" in out
    assert out.endswith(b"Hello\r\n.\r\n")


def test_utf8_user_name() -> None:
    users = {"j\u00f6rg": "p\u00e4ss"}
    script = f"""
    S: +OK pop.example.test Postroom POP3 server ready
    C: UTF8
    S: +OK UTF8 enabled
    C: USER j\u00f6rg
    S: +OK send PASS
    C: PASS p\u00e4ss
    S: +OK maildrop has 3 messages ({TOTAL} octets)
    """
    assert_every_split(script, users=users)
    out = EngineDriver().feed([b"USER \xff\r\nUSER a\x01b\r\n"])
    assert out.endswith(b"-ERR invalid UTF-8\r\n-ERR missing or invalid argument\r\n")


def test_capa_in_transaction_and_login_delay() -> None:
    config = EngineConfig(
        hostname="pop.example.test", mechanisms=("PLAIN",), tls_available=True, login_delay=900
    )
    driver = EngineDriver(config=config)
    out = driver.feed([b"USER alice\r\nPASS secret\r\nCAPA\r\n"])
    capa = out.split(b"octets)\r\n", 1)[1]
    assert capa == (
        b"+OK capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n"
        b"PIPELINING\r\nEXPIRE NEVER\r\nLOGIN-DELAY 900\r\nUTF8 USER\r\n"
        b"IMPLEMENTATION Postroom\r\n.\r\n"
    )


# --- QUIT and the UPDATE state -----------------------------------------------------


def test_quit_in_authorization_commits_nothing() -> None:
    script = """
    S: +OK pop.example.test Postroom POP3 server ready
    C: QUIT
    S: +OK pop.example.test Postroom POP3 server signing off
    C: NOOP
    """
    driver = assert_every_split(script)
    assert driver.commits == []
    assert driver.closed == "quit"


def test_quit_without_deletions_commits_nothing() -> None:
    script = (
        LOGGED_IN
        + """
        C: DELE 2
        S: +OK message 2 deleted
        C: RSET
        S: +OK maildrop has 3 messages (136 octets)
        C: QUIT
        S: +OK pop.example.test Postroom POP3 server signing off (3 messages left)
        """.replace("136", str(TOTAL))
    )
    driver = assert_every_split(script)
    assert driver.commits == []


def test_commit_failure() -> None:
    script = (
        LOGGED_IN
        + """
        C: DELE 2
        S: +OK message 2 deleted
        C: QUIT
        S: -ERR [SYS/TEMP] some deleted messages not removed
        """
    )
    driver = assert_every_split(script, commit_ok=False)
    assert driver.commits == [(1,)]


def test_dropped_connection_commits_nothing() -> None:
    driver = EngineDriver()
    driver.feed([b"USER alice\r\nPASS secret\r\nDELE 1\r\nDELE 2\r\n"])
    assert driver.commits == []
    assert driver.engine.deleted == {0, 1}
    assert driver.closed is None


# --- pipelining and the decision protocol ------------------------------------------


def test_pipelined_commands_wait_for_a_pending_decision() -> None:
    engine = ServerConnection(EngineConfig(), plaintext_allowed=True)
    engine.receive_data(b"USER a\r\nPASS b\r\nRETR 1\r\nDELE 1\r\nSTAT\r\n")
    assert engine.next_event().__class__.__name__ == "PasswordLogin"
    assert isinstance(engine.next_event(), Paused)
    engine.accept_login("a", EngineDriver().entries())
    event = engine.next_event()
    assert event == RetrieveMessage(0, None)
    assert isinstance(engine.next_event(), Paused)
    assert engine.deleted == set()
    body = b"".join(engine.send_message(MESSAGES[0]))
    assert body.startswith(b"+OK localhost Postroom POP3 server ready\r\n+OK send PASS\r\n")
    assert body.endswith(f"+OK {SIZES[0]} octets\r\nSubject: one\r\n\r\nHello\r\n.\r\n".encode())
    assert isinstance(engine.next_event(), NeedData)
    assert engine.deleted == {0}
    assert (
        engine.data_to_send() == f"+OK message 1 deleted\r\n+OK 2 {TOTAL - SIZES[0]}\r\n".encode()
    )


def test_decisions_out_of_turn_are_local_errors() -> None:
    engine = ServerConnection(EngineConfig(), plaintext_allowed=True)
    with pytest.raises(LocalProtocolError):
        engine.accept_login("a", ())
    with pytest.raises(LocalProtocolError):
        engine.send_message(b"")
    with pytest.raises(LocalProtocolError):
        engine.tls_started()
    with pytest.raises(LocalProtocolError):
        engine.commit_finished(True)
    engine.receive_data(b"USER a\r\nPASS b\r\n")
    engine.next_event()
    with pytest.raises(LocalProtocolError):
        engine.send_challenge(b"x")  # USER/PASS is not a SASL exchange


def test_retrieve_failure_is_sys_temp_and_session_continues() -> None:
    engine = ServerConnection(EngineConfig(), plaintext_allowed=True)
    engine.receive_data(b"USER a\r\nPASS b\r\n")
    engine.next_event()
    engine.accept_login("a", EngineDriver().entries())
    engine.receive_data(b"RETR 2\r\nNOOP\r\n")
    assert engine.next_event() == RetrieveMessage(1, None)
    engine.retrieve_failed()
    assert isinstance(engine.next_event(), NeedData)
    assert engine.data_to_send().endswith(
        b"-ERR [SYS/TEMP] message unavailable, try again later\r\n+OK\r\n"
    )


def test_large_message_is_sent_as_views_of_the_stored_bytes() -> None:
    message = b"Subject: big\r\n\r\n" + b"x" * 998 + b"\r\n" + (b"y" * 78 + b"\r\n") * 70000
    engine = ServerConnection(EngineConfig(), plaintext_allowed=True)
    engine.receive_data(b"USER a\r\nPASS b\r\nRETR 1\r\n")
    engine.next_event()
    engine.accept_login("a", (MaildropEntry(len(message), "u"),))
    assert engine.next_event() == RetrieveMessage(0, None)
    chunks = list(engine.send_message(message))
    views = [c for c in chunks if isinstance(c, memoryview)]
    assert all(v.obj is message for v in views)
    assert b"".join(chunks).endswith(message + b".\r\n")
