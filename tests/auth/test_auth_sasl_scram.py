"""SCRAM-SHA-256 (RFC 5802, RFC 7677): the RFC's own exchange, then a real client.

Messages are shown as they travel, decoded (the engines base64 them).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
import scramp

from postroom.auth.passwords import (
    ScramCredentials,
    make_scram_credentials,
    parse_scram_credentials,
)
from postroom.auth.sasl import (
    Challenge,
    Failure,
    LookupScram,
    ScramSha256Mechanism,
    Success,
    new_mechanism,
)


def _credentials(password: str, salt: bytes, iterations: int = 4096) -> ScramCredentials:
    """RFC 5802 §3 key derivation, written out (independent of the code under test)."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return ScramCredentials(salt, iterations, hashlib.sha256(client_key).digest(), server_key)


PENCIL = _credentials("pencil", base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ=="))


def _made(password: str) -> ScramCredentials:
    creds = parse_scram_credentials(make_scram_credentials(password))
    assert creds is not None
    return creds


ALICE = _made("wonderland")


def test_rfc7677_section3_exchange() -> None:
    mech = ScramSha256Mechanism(server_nonce="%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0")
    # C: n,,n=user,r=rOprNGfwEbeRWgbNEkqO
    step = mech.start(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
    assert step == LookupScram("user", "")
    step = mech.scram_credentials(("user", PENCIL))
    # S: r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096
    assert step == Challenge(
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    )
    # C: c=biws,r=...,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=
    step = mech.respond(
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    )
    # S: v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=
    assert step == Success("user", b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")


def _client(user: str = "alice", password: str = "wonderland", **kw: object) -> scramp.ScramClient:
    return scramp.ScramClient(["SCRAM-SHA-256"], user, password, **kw)


def test_real_client_full_exchange() -> None:
    client = _client()
    mech = new_mechanism("SCRAM-SHA-256")
    assert mech is not None
    assert mech.start(None) == Challenge(b"")  # S: 334 (client-first mechanism)
    step = mech.respond(client.get_client_first().encode())
    assert step == LookupScram("alice", "")
    step = mech.scram_credentials(("alice@example.org", ALICE))
    assert isinstance(step, Challenge)
    client.set_server_first(step.data.decode())
    step = mech.respond(client.get_client_final().encode())
    assert isinstance(step, Success)
    assert step.user == "alice@example.org"  # the canonical name from the lookup
    assert step.final_data is not None
    client.set_server_final(step.final_data.decode())  # the client verifies the server


def _exchange(
    client: scramp.ScramClient, found: tuple[str, ScramCredentials] | None, **kw: object
) -> tuple[Challenge, Success | Failure]:
    mech = ScramSha256Mechanism(**kw)  # type: ignore[arg-type]
    step = mech.start(client.get_client_first().encode())
    assert isinstance(step, LookupScram)
    first = mech.scram_credentials(found)
    assert isinstance(first, Challenge)
    client.set_server_first(first.data.decode())
    final = mech.respond(client.get_client_final().encode())
    assert isinstance(final, Success | Failure)
    return first, final


def test_wrong_password() -> None:
    _, outcome = _exchange(_client(password="looking-glass"), ("alice", ALICE))
    assert outcome == Failure("invalid credentials", malformed=False)


def test_unknown_user_is_not_revealed() -> None:
    """RFC 5802 §7 has "e=unknown-user", but saying so enumerates accounts: the server
    answers with a plausible salt and fails at the proof, exactly like a bad password."""
    key = b"k" * 32
    first, outcome = _exchange(_client("mallory"), None, fake_salt_key=key)
    assert outcome == Failure("invalid credentials", malformed=False)

    attrs = dict(part.split("=", 1) for part in first.data.decode().split(","))
    assert attrs["i"] == "4096"
    assert len(base64.b64decode(attrs["s"])) == len(ALICE.salt)  # looks like a real salt

    # Asking again shows the same salt (a random one would give the game away) ...
    again, _ = _exchange(_client("mallory"), None, fake_salt_key=key)
    assert _salt(again) == _salt(first)
    # ... and another unknown user gets another salt, as real users do.
    other, _ = _exchange(_client("trudy"), None, fake_salt_key=key)
    assert _salt(other) != _salt(first)


def test_new_mechanism_passes_the_fake_salt_key() -> None:
    def salt_shown(key: bytes) -> bytes:
        mech = new_mechanism("scram-sha-256", fake_salt_key=key)
        assert mech is not None
        mech.start(b"n,,n=mallory,r=abc")
        step = mech.scram_credentials(None)
        assert isinstance(step, Challenge)
        return step.data.split(b",s=")[1]

    assert salt_shown(b"1" * 32) == salt_shown(b"1" * 32) != salt_shown(b"2" * 32)


def _salt(challenge: Challenge) -> str:
    return challenge.data.decode().split(",s=")[1].split(",")[0]


def test_unknown_user_even_with_right_looking_password_fails() -> None:
    _, outcome = _exchange(_client(), None)
    assert outcome == Failure("invalid credentials", malformed=False)


def test_y_flag_is_accepted_because_no_plus_variant_is_offered() -> None:
    # A client able to bind, offered only SCRAM-SHA-256, sends "y,," (RFC 5802 §6).
    client = _client(channel_binding=("tls-unique", b"\x01" * 12))
    assert client.get_client_first().startswith("y,,")
    client = _client(channel_binding=("tls-unique", b"\x01" * 12))
    _, outcome = _exchange(client, ("alice", ALICE))
    assert isinstance(outcome, Success)


def test_client_requiring_channel_binding_is_refused() -> None:
    step = ScramSha256Mechanism().start(b"p=tls-unique,,n=alice,r=abcdefgh")
    assert isinstance(step, Failure)
    assert not step.malformed
    assert "channel binding" in step.reason


def _manual_final(gs2: str, client_first_bare: str, server_first: str,
                  password: str) -> tuple[str, bytes]:
    """An RFC 5802 client-final-message computed by hand (scramp's client cannot send
    an authzid), and the server signature it must get back."""
    attrs = dict(a.split("=", 1) for a in server_first.split(","))
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]),
                                 int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored = hashlib.sha256(client_key).digest()
    without_proof = f"c={base64.b64encode(gs2.encode()).decode()},r={attrs['r']}"
    auth = f"{client_first_bare},{server_first},{without_proof}".encode()
    sig = hmac.new(stored, auth, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, sig, strict=True))
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    v = b"v=" + base64.b64encode(hmac.new(server_key, auth, hashlib.sha256).digest())
    return f"{without_proof},p={base64.b64encode(proof).decode()}", v


def test_authzid_equal_to_the_user_is_accepted() -> None:
    # cyrus-sasl (mbsync) and libgsasl (mutt) always send a=<user>
    mech = ScramSha256Mechanism(server_nonce="SERVER")
    step = mech.start(b"n,a=alice,n=alice,r=CLIENT")
    assert step == LookupScram("alice", "")
    first = mech.scram_credentials(("alice", ALICE))
    assert isinstance(first, Challenge)
    final, v = _manual_final("n,a=alice,", "n=alice,r=CLIENT", first.data.decode(),
                             "wonderland")
    assert mech.respond(final.encode()) == Success("alice", v)


def test_authzid_with_a_wrong_password_or_a_forged_header_fails() -> None:
    mech = ScramSha256Mechanism(server_nonce="SERVER")
    mech.start(b"n,a=alice,n=alice,r=CLIENT")
    first = mech.scram_credentials(("alice", ALICE))
    assert isinstance(first, Challenge)
    final, _ = _manual_final("n,a=alice,", "n=alice,r=CLIENT", first.data.decode(), "nope")
    step = mech.respond(final.encode())
    assert isinstance(step, Failure) and not step.malformed
    mech = ScramSha256Mechanism(server_nonce="SERVER")
    mech.start(b"n,a=alice,n=alice,r=CLIENT")
    first = mech.scram_credentials(("alice", ALICE))
    assert isinstance(first, Challenge)
    # c= claims an empty GS2 header: the proof was made for another header
    final, _ = _manual_final("n,,", "n=alice,r=CLIENT", first.data.decode(), "wonderland")
    step = mech.respond(final.encode())
    assert isinstance(step, Failure) and not step.malformed


def test_authzid_for_another_user_is_refused() -> None:
    step = ScramSha256Mechanism().start(b"n,a=bob,n=alice,r=abcdefgh")
    assert isinstance(step, Failure)
    assert not step.malformed
    bad = ScramSha256Mechanism().start(b"n,a=b=ZZob,n=alice,r=abcdefgh")
    assert isinstance(bad, Failure) and bad.malformed


def test_user_name_is_unescaped_and_saslprepped() -> None:
    step = ScramSha256Mechanism().start("n,,n=a=2Cb=3Dc\u00ad\u2168,r=abc".encode())
    assert step == LookupScram("a,b=cIX", "")


def test_mismatched_gs2_header_in_client_final() -> None:
    # The client said "n" first but claims "y,," in c= (eSws): a downgrade signature.
    mech = ScramSha256Mechanism(server_nonce="SERVER")
    mech.start(b"n,,n=alice,r=CLIENT")
    mech.scram_credentials(("alice", ALICE))
    step = mech.respond(b"c=eSws,r=CLIENTSERVER,p=" + base64.b64encode(b"\x00" * 32))
    assert isinstance(step, Failure)
    assert not step.malformed


@pytest.mark.parametrize(
    "client_first",
    [
        b"",  # "AUTH SCRAM-SHA-256 =": empty client-first
        b"n",
        b"n,n=alice,r=abc",  # one comma: no GS2 header
        b"x,,n=alice,r=abc",  # bad gs2-cbind-flag
        b"n,b=alice,n=alice,r=abc",  # authzid must be "a="
        b"n,,r=abc",  # no user name
        b"n,,n=alice",  # no nonce
        b"n,,n=alice,r=a,b",  # nonce with a comma
        b"n,,n=,r=abc",  # empty user name
        b"n,,n=a=XYb,r=abc",  # bad escape
        b"n,,m=ext,n=alice,r=abc",  # mandatory extension not supported
        b"n,,n=al\x07ice,r=abc",  # SASLprep refuses
        b"n,,n=\xff,r=abc",  # not UTF-8
        b"n,,n=alice,r=" + b"a" * 5000,  # absurdly long
    ],
)
def test_malformed_client_first(client_first: bytes) -> None:
    step = ScramSha256Mechanism().start(client_first)
    assert isinstance(step, Failure)
    assert step.malformed


@pytest.mark.parametrize(
    "client_final",
    [
        b"",
        b"\xff",
        b"c=biws,r=CLIENTSERVER",  # no proof
        b"c=biws,r=CLIENTOTHER,p=AAAA",  # not our nonce
        b"c=biws,r=CLIENTSERVER,p=!!!!",  # proof not base64
        b"c=!!!,r=CLIENTSERVER,p=AAAA",
        b"r=CLIENTSERVER,c=biws,p=AAAA",  # attribute order is fixed
    ],
)
def test_malformed_client_final(client_final: bytes) -> None:
    mech = ScramSha256Mechanism(server_nonce="SERVER")
    mech.start(b"n,,n=alice,r=CLIENT")
    mech.scram_credentials(("alice", ALICE))
    step = mech.respond(client_final)
    assert isinstance(step, Failure)
    assert step.malformed


def test_short_proof_is_a_credentials_failure() -> None:
    mech = ScramSha256Mechanism(server_nonce="SERVER")
    mech.start(b"n,,n=alice,r=CLIENT")
    mech.scram_credentials(("alice", ALICE))
    assert mech.respond(b"c=biws,r=CLIENTSERVER,p=AAAA") == Failure("invalid credentials")


def test_unusable_stored_credentials() -> None:
    weak = ScramCredentials(ALICE.salt, 1, ALICE.stored_key, ALICE.server_key)
    mech = ScramSha256Mechanism()
    mech.start(b"n,,n=alice,r=CLIENT")
    step = mech.scram_credentials(("alice", weak))
    assert isinstance(step, Failure)
    assert not step.malformed


def test_fake_iterations_must_be_acceptable() -> None:
    with pytest.raises(ValueError):
        ScramSha256Mechanism(fake_iterations=1000)


def test_calls_out_of_order_are_caller_bugs() -> None:
    mech = ScramSha256Mechanism()
    with pytest.raises(RuntimeError):
        mech.respond(b"n,,n=alice,r=abc")
    mech.start(b"n,,n=alice,r=abc")
    with pytest.raises(RuntimeError):
        mech.respond(b"c=biws")
    with pytest.raises(RuntimeError):
        mech.password_result("alice")
    mech.scram_credentials(None)
    with pytest.raises(RuntimeError):
        mech.scram_credentials(None)
