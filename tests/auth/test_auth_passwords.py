"""Stored credentials: argon2id hashes and SCRAM-SHA-256 keys (postroom.auth.passwords)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postroom.auth.passwords import (
    DEFAULT_ARGON2,
    Argon2Params,
    ScramCredentials,
    hash_password,
    make_scram_credentials,
    needs_rehash,
    parse_scram_credentials,
    verify_password,
)

CHEAP = Argon2Params(time_cost=1, memory_cost=8, parallelism=1)


# --- argon2id -------------------------------------------------------------------------


def test_hash_then_verify() -> None:
    stored = hash_password("correct horse", CHEAP)
    assert stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert verify_password(stored, "correct horse")
    assert not verify_password(stored, "correct horse ")
    assert not verify_password(stored, "Correct horse")


def test_each_hash_has_its_own_salt() -> None:
    assert hash_password("pw", CHEAP) != hash_password("pw", CHEAP)


def test_default_params_are_argon2id_with_moderate_cost() -> None:
    stored = hash_password("pw")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert verify_password(stored, "pw")
    assert not needs_rehash(stored)
    assert Argon2Params() == DEFAULT_ARGON2


def test_passwords_are_saslprepped_on_both_sides() -> None:
    stored = hash_password("I\u00adX", CHEAP)  # RFC 4013 §3 example 1
    assert verify_password(stored, "IX")
    assert verify_password(stored, "\u2168")  # example 5 prepares to the same "IX"
    assert verify_password(hash_password("\ufb01", CHEAP), "fi")


@pytest.mark.parametrize("bad", ["", "\u00ad", "bell\u0007"])
def test_hash_password_refuses_empty_or_prohibited(bad: str) -> None:
    with pytest.raises(ValueError):
        hash_password(bad, CHEAP)


def test_verify_refuses_prohibited_and_empty_without_raising() -> None:
    stored = hash_password("pw", CHEAP)
    assert not verify_password(stored, "pw\u0007")
    assert not verify_password(stored, "")


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "plain text",
        "$argon2id$",
        "$argon2id$v=19$m=8,t=1,p=1$AAAA$AAAA",
        "$2b$12$abcdefghijklmnopqrstuu",  # bcrypt
        "SCRAM-SHA-256$4096:AAAA$AAAA:AAAA",
        "\x00\udcff",
    ],
)
def test_verify_garbage_hash_is_false(garbage: str) -> None:
    assert verify_password(garbage, "pw") is False
    assert needs_rehash(garbage, CHEAP) is True


@given(st.text(max_size=200), st.text(max_size=50))
def test_verify_never_raises(stored: str, password: str) -> None:
    assert verify_password(stored, password) in (True, False)


@given(st.text(max_size=200))
def test_verify_never_raises_on_mangled_hash(tail: str) -> None:
    assert verify_password("$argon2id$v=19$m=8,t=1,p=1$" + tail, "pw") in (True, False)


def test_needs_rehash_when_params_change() -> None:
    stored = hash_password("pw", CHEAP)
    assert not needs_rehash(stored, CHEAP)
    assert needs_rehash(stored, Argon2Params(time_cost=2, memory_cost=8, parallelism=1))
    assert needs_rehash(stored)  # against the defaults


# --- SCRAM-SHA-256 --------------------------------------------------------------------


def _rfc5802_keys(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    """StoredKey and ServerKey per RFC 5802 §3, computed independently of scramp."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return hashlib.sha256(client_key).digest(), server_key


B64 = r"[A-Za-z0-9+/]+={0,2}"


def test_make_scram_credentials_format_and_keys() -> None:
    s = make_scram_credentials("pencil")
    assert re.fullmatch(rf"SCRAM-SHA-256\$4096:{B64}\${B64}:{B64}", s)
    creds = parse_scram_credentials(s)
    assert creds is not None
    assert creds.iterations == 4096
    assert len(creds.salt) == 16
    assert (creds.stored_key, creds.server_key) == _rfc5802_keys("pencil", creds.salt, 4096)
    assert creds.serialise() == s


def test_scram_credentials_use_the_saslprepped_password() -> None:
    creds = parse_scram_credentials(make_scram_credentials("I\u00adX"))
    assert creds is not None
    assert creds.stored_key == _rfc5802_keys("IX", creds.salt, 4096)[0]


def test_scram_iterations() -> None:
    creds = parse_scram_credentials(make_scram_credentials("pw", iterations=5000))
    assert creds is not None and creds.iterations == 5000
    for bad in (1, 4095, 10_000_001):
        with pytest.raises(ValueError):
            make_scram_credentials("pw", iterations=bad)


@pytest.mark.parametrize("bad", ["", "\u0007"])
def test_make_scram_credentials_refuses_bad_passwords(bad: str) -> None:
    with pytest.raises(ValueError):
        make_scram_credentials(bad)


def test_parse_postgresql_style_string() -> None:
    # The RFC 7677 §3 example's salt and keys, in PostgreSQL's layout.
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    stored_key, server_key = _rfc5802_keys("pencil", salt, 4096)
    text = (
        "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ=="
        f"${base64.b64encode(stored_key).decode()}:{base64.b64encode(server_key).decode()}"
    )
    assert parse_scram_credentials(text) == ScramCredentials(salt, 4096, stored_key, server_key)


GOOD = make_scram_credentials("pw")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        GOOD.replace("SCRAM-SHA-256", "SCRAM-SHA-1"),
        GOOD.replace("$4096:", "$04096:"),
        GOOD.replace("$4096:", "$4095:"),
        GOOD.replace("$4096:", "$99999999:"),
        GOOD.replace("$4096:", "$-4096:"),
        GOOD.replace("$4096:", "$:"),
        GOOD.replace("$4096:", "$\u0664\u0660\u0669\u0666:"),  # Arabic-Indic digits
        GOOD.replace(":", ";"),
        GOOD.rsplit(":", 1)[0],
        GOOD + "!",
        GOOD[:-4],  # server key truncated
        "SCRAM-SHA-256$4096:AAAA$" + GOOD.split("$")[2],  # salt of 3 bytes
        "SCRAM-SHA-256$4096:" + "A" * 22 + "==$é:é",
    ],
)
def test_parse_refuses_malformed(bad: str) -> None:
    assert parse_scram_credentials(bad) is None


@given(st.text(max_size=300))
def test_parse_never_raises(text: str) -> None:
    parse_scram_credentials(text)
    parse_scram_credentials("SCRAM-SHA-256$" + text)
