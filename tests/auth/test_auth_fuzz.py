"""Hypothesis: whatever a client sends, a mechanism answers with a step, never raises."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from postroom.auth.passwords import (
    ScramCredentials,
    make_scram_credentials,
    parse_scram_credentials,
)
from postroom.auth.sasl import (
    MECHANISMS,
    Challenge,
    Failure,
    LookupScram,
    Mechanism,
    Step,
    Success,
    VerifyPassword,
    new_mechanism,
)


def _made(password: str) -> ScramCredentials:
    creds = parse_scram_credentials(make_scram_credentials(password))
    assert creds is not None
    return creds


FOUND = ("user", _made("pw"))


def drive(mech: Mechanism, initial: bytes | None, inputs: list[bytes], known: bool) -> Step:
    """Feed ``inputs`` as client responses until the mechanism finishes."""
    step = mech.start(initial)
    answers = iter(inputs)
    for _ in range(10):
        match step:
            case Challenge():
                data = next(answers, None)
                if data is None:
                    return step
                step = mech.respond(data)
            case VerifyPassword():
                step = mech.password_result("user" if known else None)
            case LookupScram():
                step = mech.scram_credentials(FOUND if known else None)
            case Success() | Failure():
                return step
    raise AssertionError(f"{mech.name} did not finish: {step}")


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(MECHANISMS),
    st.none() | st.binary(max_size=300),
    st.lists(st.binary(max_size=300), max_size=4),
    st.booleans(),
)
def test_random_bytes_never_raise(
    name: str, initial: bytes | None, inputs: list[bytes], known: bool
) -> None:
    mech = new_mechanism(name)
    assert mech is not None
    step = drive(mech, initial, inputs, known)
    assert isinstance(step, Challenge | Success | Failure)
    if isinstance(step, Success):
        assert name != "SCRAM-SHA-256"  # random bytes never carry a valid proof


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["n", "y", "p=tls-unique", "p=x", ""]),
    st.text(max_size=40),
    st.text(max_size=40),
    st.text(max_size=200),
    st.booleans(),
)
def test_scram_structured_garbage_never_raises(
    flag: str, user: str, nonce: str, final: str, known: bool
) -> None:
    """Well-shaped but wrong SCRAM messages get past the first checks and go deeper."""
    mech = new_mechanism("SCRAM-SHA-256")
    assert mech is not None
    first = f"{flag},,n={user},r={nonce}".encode()
    step = drive(mech, first, [f"c=biws,r={nonce}x,{final}".encode()], known)
    assert isinstance(step, Failure)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=100), st.text(max_size=100), st.text(max_size=100))
def test_plain_text_fields_never_raise(authzid: str, authcid: str, passwd: str) -> None:
    mech = new_mechanism("PLAIN")
    assert mech is not None
    message = f"{authzid}\x00{authcid}\x00{passwd}".encode("utf-8", "surrogatepass")
    step = drive(mech, message, [], True)
    assert isinstance(step, Success | Failure)
