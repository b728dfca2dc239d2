"""PLAIN (RFC 4616) and LOGIN, step by step, plus the registry and base64 helpers.

The comments give the wire view (SMTP framing) of each step.
"""

from __future__ import annotations

import pytest

from postroom.auth.sasl import (
    MAX_FIELD_OCTETS,
    MECHANISMS,
    Challenge,
    Failure,
    LoginMechanism,
    PlainMechanism,
    ScramSha256Mechanism,
    Success,
    VerifyPassword,
    decode_sasl_base64,
    encode_sasl_base64,
    new_mechanism,
)

# --- registry -------------------------------------------------------------------------


def test_mechanisms_in_advertising_order() -> None:
    assert MECHANISMS == ("PLAIN", "LOGIN", "SCRAM-SHA-256")
    assert "SCRAM-SHA-256-PLUS" not in MECHANISMS


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("PLAIN", PlainMechanism),
        ("plain", PlainMechanism),
        ("Login", LoginMechanism),
        ("scram-sha-256", ScramSha256Mechanism),
    ],
)
def test_new_mechanism_is_case_insensitive(name: str, kind: type) -> None:
    mech = new_mechanism(name)
    assert isinstance(mech, kind)
    assert mech is not None and mech.name == name.upper()


@pytest.mark.parametrize(
    "name", ["CRAM-MD5", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1", "", "PLA\u0131N", "plain "]
)
def test_unknown_mechanisms(name: str) -> None:
    assert new_mechanism(name) is None


def test_each_exchange_gets_a_fresh_object() -> None:
    assert new_mechanism("PLAIN") is not new_mechanism("PLAIN")


# --- base64 helpers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "decoded"),
    [
        (b"AGFsaWNlAHNlY3JldA==", b"\x00alice\x00secret"),
        (b"=", b""),  # RFC 4954 §4: "=" is an empty initial response
        (b"", b""),  # an empty continuation line
        (b"VXNlcm5hbWU6", b"Username:"),
    ],
)
def test_decode_sasl_base64(line: bytes, decoded: bytes) -> None:
    assert decode_sasl_base64(line) == decoded


@pytest.mark.parametrize(
    "line",
    [b"*", b"AGFsaWNl!", b"AGFsaWNlAHNlY3JldA", b"AGFs aWNl", b"AGFsaWNl\r\n", b"==", b"\xff"],
)
def test_decode_sasl_base64_refuses(line: bytes) -> None:
    assert decode_sasl_base64(line) is None


def test_encode_sasl_base64() -> None:
    assert encode_sasl_base64(b"Password:") == b"UGFzc3dvcmQ6"
    assert encode_sasl_base64(b"") == b""
    long = bytes(range(256)) * 4
    assert b"\n" not in encode_sasl_base64(long)
    assert decode_sasl_base64(encode_sasl_base64(long)) == long


# --- PLAIN ------------------------------------------------------------------------------


def test_plain_with_initial_response() -> None:
    mech = PlainMechanism()
    # C: AUTH PLAIN AGFsaWNlAHNlY3JldA==
    assert mech.start(b"\x00alice\x00secret") == VerifyPassword("alice", "", "secret")
    # (the shell checks the password: the canonical account is alice@example.org)
    assert mech.password_result("alice@example.org") == Success("alice@example.org")
    # S: 235 2.7.0 Authentication successful


def test_plain_without_initial_response() -> None:
    mech = PlainMechanism()
    # C: AUTH PLAIN
    assert mech.start(None) == Challenge(b"")  # S: 334
    # C: AGFsaWNlAHNlY3JldA==
    assert mech.respond(b"\x00alice\x00secret") == VerifyPassword("alice", "", "secret")
    assert mech.password_result("alice") == Success("alice")


def test_plain_wrong_password() -> None:
    mech = PlainMechanism()
    assert isinstance(mech.start(b"\x00alice\x00wrong"), VerifyPassword)
    assert mech.password_result(None) == Failure("invalid credentials", malformed=False)


def test_plain_authzid_equal_to_authcid() -> None:
    mech = PlainMechanism()
    assert mech.start(b"alice\x00alice\x00secret") == VerifyPassword("alice", "alice", "secret")


def test_plain_authzid_of_someone_else_fails_without_checking_the_password() -> None:
    step = PlainMechanism().start(b"bob\x00alice\x00secret")
    assert isinstance(step, Failure)
    assert not step.malformed  # an authorization refusal: 535, not 501


def test_plain_utf8_and_saslprep() -> None:
    step = PlainMechanism().start("\x00J\u00f6rg\u00ad\x00p\u00e4ss".encode())
    # authcid is SASLprep'd; the password is passed on as sent (verify_password preps).
    assert step == VerifyPassword("J\u00f6rg", "", "p\u00e4ss")


def test_plain_accepts_long_fields_up_to_the_limit() -> None:
    user, pw = b"u" * MAX_FIELD_OCTETS, b"p" * MAX_FIELD_OCTETS
    assert isinstance(PlainMechanism().start(b"\x00" + user + b"\x00" + pw), VerifyPassword)


@pytest.mark.parametrize(
    "message",
    [
        b"",  # "AUTH PLAIN =": an empty message
        b"alice",
        b"\x00alice",
        b"\x00alice\x00secret\x00",
        b"\x00\x00secret",  # authcid is 1*SAFE
        b"\x00alice\x00",  # passwd is 1*SAFE
        b"\x00\xffalice\x00secret",  # not UTF-8
        b"\x00alice\x00\xc3",
        b"\x00" + b"u" * (MAX_FIELD_OCTETS + 1) + b"\x00secret",
        b"\x00alice\x00" + b"p" * (MAX_FIELD_OCTETS + 1),
    ],
)
def test_plain_malformed(message: bytes) -> None:
    step = PlainMechanism().start(message)
    assert isinstance(step, Failure)
    assert step.malformed


@pytest.mark.parametrize("authcid", ["\u00ad", "al\u0007ice", "\u0627a"])
def test_plain_user_name_refused_by_saslprep_is_a_credentials_failure(authcid: str) -> None:
    step = PlainMechanism().start(b"\x00" + authcid.encode() + b"\x00secret")
    assert isinstance(step, Failure)
    assert not step.malformed  # RFC 4616 §2: "verification SHALL fail"


def test_plain_calls_out_of_order_are_caller_bugs() -> None:
    mech = PlainMechanism()
    with pytest.raises(RuntimeError):
        mech.respond(b"x")
    mech.start(None)
    with pytest.raises(RuntimeError):
        mech.password_result("alice")
    with pytest.raises(RuntimeError):
        mech.scram_credentials(None)
    mech.respond(b"garbage")
    with pytest.raises(RuntimeError):
        mech.respond(b"again")


# --- LOGIN ------------------------------------------------------------------------------


def test_login_full_exchange() -> None:
    mech = LoginMechanism()
    # C: AUTH LOGIN
    assert mech.start(None) == Challenge(b"Username:")  # S: 334 VXNlcm5hbWU6
    assert mech.respond(b"alice") == Challenge(b"Password:")  # S: 334 UGFzc3dvcmQ6
    assert mech.respond(b"secret") == VerifyPassword("alice", "", "secret")
    assert mech.password_result("alice@example.org") == Success("alice@example.org")


def test_login_with_user_name_as_initial_response() -> None:
    mech = LoginMechanism()
    # C: AUTH LOGIN YWxpY2U=
    assert mech.start(b"alice") == Challenge(b"Password:")
    assert mech.respond(b"secret") == VerifyPassword("alice", "", "secret")


def test_login_empty_initial_response_asks_for_the_user_name() -> None:
    assert LoginMechanism().start(b"") == Challenge(b"Username:")


def test_login_wrong_password() -> None:
    mech = LoginMechanism()
    mech.start(b"alice")
    mech.respond(b"wrong")
    assert mech.password_result(None) == Failure("invalid credentials", malformed=False)


@pytest.mark.parametrize(
    ("username", "password", "malformed"),
    [
        (b"\xff", b"secret", True),
        (b"al\x00ice", b"secret", True),
        (b"u" * (MAX_FIELD_OCTETS + 1), b"secret", True),
        (b"alice", b"\xc3(", True),
        (b"alice", b"pass\x00word", True),
        (b"", b"secret", False),  # empty user name: fails like bad credentials
        (b"\xc2\xad", b"secret", False),  # prepares to empty
        (b"alice", b"", False),  # empty password
    ],
)
def test_login_bad_input(username: bytes, password: bytes, malformed: bool) -> None:
    mech = LoginMechanism()
    step = mech.start(None)
    step = mech.respond(username)
    if isinstance(step, Challenge):
        step = mech.respond(password)
    assert isinstance(step, Failure)
    assert step.malformed is malformed


def test_login_calls_out_of_order_are_caller_bugs() -> None:
    mech = LoginMechanism()
    mech.start(b"alice")
    with pytest.raises(RuntimeError):
        mech.password_result("alice")
    mech.respond(b"secret")
    with pytest.raises(RuntimeError):
        mech.respond(b"more")
    mech.password_result("alice")
    with pytest.raises(RuntimeError):
        mech.start(None)
