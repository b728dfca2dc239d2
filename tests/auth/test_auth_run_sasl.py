"""run_sasl: the loop the SMTP, IMAP and POP3 shells share, against a fake client
(``ask``) and a fake account directory. Transcripts are decoded SASL payloads:
``S:`` what the server challenged, ``C:`` what the client answered."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
import scramp

from postroom.auth.authenticator import Authenticator, MalformedResponse, run_sasl
from postroom.auth.passwords import (
    Argon2Params,
    ScramCredentials,
    hash_password,
    make_scram_credentials,
    parse_scram_credentials,
    verify_password,
)
from postroom.auth.sasl import Failure, Success, decode_sasl_base64, new_mechanism

CHEAP = Argon2Params(time_cost=1, memory_cost=8, parallelism=1)


class FakeDirectory:
    """alice (canonical alice@example.org) with an argon2 hash and SCRAM keys."""

    def __init__(self) -> None:
        self.argon2 = {"alice": hash_password("wonderland", CHEAP)}
        creds = parse_scram_credentials(make_scram_credentials("wonderland"))
        assert creds is not None
        self.scram = {"alice": creds}
        self.calls: list[str] = []

    async def verify_password(self, username: str, password: str) -> str | None:
        self.calls.append(f"verify_password {username}")
        stored = self.argon2.get(username)
        ok = stored is not None and verify_password(stored, password)
        return f"{username}@example.org" if ok else None

    async def scram_credentials(self, username: str) -> tuple[str, ScramCredentials] | None:
        self.calls.append(f"scram_credentials {username}")
        creds = self.scram.get(username)
        return None if creds is None else (f"{username}@example.org", creds)


class ScriptedClient:
    """An ``ask`` that answers from a script and records the transcript."""

    def __init__(self, *answers: bytes | Callable[[bytes], bytes] | None) -> None:
        self.answers = list(answers)
        self.transcript: list[str] = []

    async def __call__(self, challenge: bytes) -> bytes | None:
        self.transcript.append(f"S: {challenge.decode()}")
        answer = self.answers.pop(0)
        if callable(answer):
            answer = answer(challenge)
        self.transcript.append("C: *" if answer is None else f"C: {answer.decode()}")
        return answer


def run(
    name: str,
    initial: bytes | None,
    ask: Callable[[bytes], Awaitable[bytes | None]],
    directory: Authenticator | None = None,
    **kw: bool,
) -> Success | Failure:
    mech = new_mechanism(name)
    assert mech is not None
    return asyncio.run(run_sasl(mech, initial, ask, directory or FakeDirectory(), **kw))


def test_directory_satisfies_the_protocol() -> None:
    directory: Authenticator = FakeDirectory()
    assert directory is not None


def test_plain_initial_response() -> None:
    client = ScriptedClient()
    directory = FakeDirectory()
    outcome = run("PLAIN", b"\x00alice\x00wonderland", client, directory)
    assert outcome == Success("alice@example.org", None)
    assert client.transcript == []
    assert directory.calls == ["verify_password alice"]


def test_plain_after_empty_challenge() -> None:
    client = ScriptedClient(b"\x00alice\x00wonderland")
    assert run("plain", None, client) == Success("alice@example.org", None)
    assert client.transcript == ["S: ", "C: \x00alice\x00wonderland"]


def test_plain_wrong_password() -> None:
    outcome = run("PLAIN", b"\x00alice\x00looking-glass", ScriptedClient())
    assert outcome == Failure("invalid credentials", malformed=False)


def test_plain_unknown_user() -> None:
    outcome = run("PLAIN", b"\x00bob\x00wonderland", ScriptedClient())
    assert outcome == Failure("invalid credentials", malformed=False)


def test_login() -> None:
    client = ScriptedClient(b"alice", b"wonderland")
    assert run("LOGIN", None, client) == Success("alice@example.org", None)
    assert client.transcript == ["S: Username:", "C: alice", "S: Password:", "C: wonderland"]


def test_cancel() -> None:
    client = ScriptedClient(b"alice", None)  # C: * at the password prompt
    assert run("LOGIN", None, client) == Failure("cancelled", malformed=False)


def test_invalid_base64_from_the_client() -> None:
    async def ask(challenge: bytes) -> bytes | None:
        decoded = decode_sasl_base64(b"not base64!")
        if decoded is None:
            raise MalformedResponse
        return decoded

    outcome = run("LOGIN", None, ask)
    assert isinstance(outcome, Failure)
    assert outcome.malformed


def test_malformed_mechanism_input() -> None:
    outcome = run("PLAIN", b"no separators", ScriptedClient())
    assert isinstance(outcome, Failure)
    assert outcome.malformed


def _scram_client(password: str = "wonderland") -> tuple[scramp.ScramClient, ScriptedClient]:
    client = scramp.ScramClient(["SCRAM-SHA-256"], "alice", password)

    def final(server_first: bytes) -> bytes:
        client.set_server_first(server_first.decode())
        return str(client.get_client_final()).encode()

    def check_server(server_final: bytes) -> bytes:
        client.set_server_final(server_final.decode())  # raises if the server lies
        return b""

    return client, ScriptedClient(final, check_server)


def test_scram_final_data_sent_as_last_challenge() -> None:
    client, ask = _scram_client()
    outcome = run("SCRAM-SHA-256", client.get_client_first().encode(), ask)
    assert outcome == Success("alice@example.org", None)
    assert [line[:5] for line in ask.transcript] == ["S: r=", "C: c=", "S: v=", "C: "]


def test_scram_final_data_left_to_the_shell() -> None:
    client, ask = _scram_client()
    outcome = run(
        "SCRAM-SHA-256", client.get_client_first().encode(), ask, final_data_as_challenge=False
    )
    assert isinstance(outcome, Success)
    assert outcome.final_data is not None and outcome.final_data.startswith(b"v=")
    assert len(ask.transcript) == 2


def test_scram_non_empty_answer_to_final_data() -> None:
    client = scramp.ScramClient(["SCRAM-SHA-256"], "alice", "wonderland")

    def final(server_first: bytes) -> bytes:
        client.set_server_first(server_first.decode())
        return str(client.get_client_final()).encode()

    ask = ScriptedClient(final, b"surprise")
    outcome = run("SCRAM-SHA-256", client.get_client_first().encode(), ask)
    assert isinstance(outcome, Failure)
    assert outcome.malformed


def test_scram_cancel_at_final_data() -> None:
    client = scramp.ScramClient(["SCRAM-SHA-256"], "alice", "wonderland")

    def final(server_first: bytes) -> bytes:
        client.set_server_first(server_first.decode())
        return str(client.get_client_final()).encode()

    outcome = run("SCRAM-SHA-256", client.get_client_first().encode(), ScriptedClient(final, None))
    assert outcome == Failure("cancelled", malformed=False)


def test_scram_wrong_password() -> None:
    client, ask = _scram_client("looking-glass")
    outcome = run("SCRAM-SHA-256", client.get_client_first().encode(), ask)
    assert outcome == Failure("invalid credentials", malformed=False)


def test_scram_unknown_user_asks_the_directory_then_fails_at_the_proof() -> None:
    client = scramp.ScramClient(["SCRAM-SHA-256"], "bob", "whatever")

    def final(server_first: bytes) -> bytes:
        client.set_server_first(server_first.decode())
        return str(client.get_client_final()).encode()

    directory = FakeDirectory()
    outcome = run(
        "SCRAM-SHA-256", client.get_client_first().encode(), ScriptedClient(final), directory
    )
    assert outcome == Failure("invalid credentials", malformed=False)
    assert directory.calls == ["scram_credentials bob"]


def test_directory_errors_propagate() -> None:
    class Down(FakeDirectory):
        async def verify_password(self, username: str, password: str) -> str | None:
            raise ConnectionError("store unavailable")

    with pytest.raises(ConnectionError):
        run("PLAIN", b"\x00alice\x00wonderland", ScriptedClient(), Down())
