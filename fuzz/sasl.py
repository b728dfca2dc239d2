"""Fuzz target: SASL exchanges (PLAIN, LOGIN, SCRAM-SHA-256, with and without the
fake-salt key for unknown users) through ``run_sasl``: the client's lines are the
input, base64-decoded as the shells do. Never raises; succeeds only with the right
password (and never for SCRAM, whose proof random bytes cannot forge).
``python -m fuzz.sasl --seconds N``."""

from __future__ import annotations

import zlib

from fuzz._imap import drive
from fuzz.engine import Target, main
from postroom.auth.authenticator import MalformedResponse, run_sasl
from postroom.auth.passwords import (
    ScramCredentials,
    make_scram_credentials,
    parse_scram_credentials,
)
from postroom.auth.sasl import MECHANISMS, Failure, Success, decode_sasl_base64, new_mechanism

_CREDS = parse_scram_credentials(make_scram_credentials("pw"))
assert _CREDS is not None


class Directory:
    async def verify_password(self, username: str, password: str) -> str | None:
        return "alice" if (username, password) == ("alice", "pw") else None

    async def scram_credentials(self, username: str) -> tuple[str, ScramCredentials] | None:
        assert _CREDS is not None
        return ("alice", _CREDS) if username == "alice" else None


def check(data: bytes) -> None:
    h = zlib.crc32(data)
    name = MECHANISMS[h % len(MECHANISMS)]
    lines = data.split(b"\n")
    encoded = bool(h & 8)  # half the time the lines are base64 text, as on the wire
    initial: bytes | None = None
    if h & 16:
        first = lines.pop(0)
        initial = decode_sasl_base64(first) if encoded else first
        if initial is None:
            return  # the engines answer a malformed initial response themselves
    answers = iter(lines)

    async def ask(challenge: bytes) -> bytes | None:
        line = next(answers, b"*")
        if line == b"*":
            return None
        if not encoded:
            return line
        decoded = decode_sasl_base64(line)
        if decoded is None:
            raise MalformedResponse
        return decoded

    mech = new_mechanism(name, fake_salt_key=b"k" * 32 if h & 32 else None)
    assert mech is not None
    outcome = drive(run_sasl(mech, initial, ask, Directory()))
    assert isinstance(outcome, Success | Failure)
    if isinstance(outcome, Success):
        assert name != "SCRAM-SHA-256", "SCRAM succeeded without a real proof"
        assert outcome.user == "alice"
        assert b"pw" in data or encoded, "success without the password"


DICTIONARY = (
    b"\x00alice\x00pw", b"alice", b"pw", b"\x00", b"\n", b"*", b"=", b"n,,n=alice,r=abc",
    b"y,,n=alice,r=", b"p=tls-unique,,n=alice,r=x", b"c=biws,r=", b",p=", b"n=", b"r=", b"s=",
    b"i=4096", b"=2C", b"=3D", b"AGFsaWNlAHB3", b"YWxpY2U=", b"cHc=", b"\xff", b"\xc3\xa9",
    b"\xef\xbb\xbf", b"\xe2\x80\x8b", b"a" * 300,
)

TARGET = Target("sasl", check, DICTIONARY)

if __name__ == "__main__":
    raise SystemExit(main(TARGET))
