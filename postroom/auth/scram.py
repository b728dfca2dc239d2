"""SCRAM-SHA-256 server mechanism (RFC 5802, RFC 7677), sans-IO, on top of scramp.

Theory of operation. The exchange is four messages (RFC 5802 §3)::

    C: n,,n=user,r=<client nonce>                       client-first-message
    S: r=<client nonce + server nonce>,s=<salt>,i=4096  server-first-message
    C: c=biws,r=<nonce>,p=<proof>                       client-final-message
    S: v=<server signature>                             server-final-message

scramp's ``ScramServer`` does the cryptography and the message syntax, but it looks
the user up through a synchronous callback in the middle of reading the first message.
A sans-IO mechanism cannot block there, so the first message is read twice:

1. a *dry run* through scramp with placeholder credentials, which validates the
   message and yields the SASLprep'd, unescaped user name (RFC 5802 §5.1 "n");
2. ``LookupScram(user)`` goes out; the shell answers with ``scram_credentials``;
3. a fresh ``ScramServer`` reads the same message with the real credentials and
   produces the server-first-message.

Channel binding: only SCRAM-SHA-256 is offered, never SCRAM-SHA-256-PLUS, so a client
that *requires* binding ("p=", RFC 5802 §6) is refused, while "y" (the client could
bind but believes the server cannot) is accepted, which is correct exactly because
no -PLUS variant is advertised (RFC 5802 §6: a server that does support binding MUST
fail on "y"). If -PLUS is ever advertised, "y" must become a failure.

Unknown users: answering "e=unknown-user" (RFC 5802 §7) would tell anyone which
accounts exist. Instead the exchange goes on with a salt derived from the user name and
a server secret (same user, same salt; indistinguishable from a real salt) and random
keys, so it fails at the proof like a wrong password does.

Authorization identity ("a=" in the GS2 header, RFC 5802 §5.1): accepted when it
names the authenticating user itself (what cyrus-sasl and libgsasl, hence mbsync and
mutt, always send); acting as another user is refused. scramp only supports an empty
GS2 header, so with an authzid scramp sees the message without it (for the nonce, salt
and server-first-message) and the client-final-message is verified here: ``c=`` must
repeat the real GS2 header, and the proof and server signature are computed over the
AuthMessage exactly as sent (RFC 5802 §3).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import secrets
from typing import Any

import scramp
from scramp.utils import ServerError

from postroom.auth.passwords import SCRAM_MIN_ITERATIONS, SCRAM_SALT_LENGTH, ScramCredentials
from postroom.auth.steps import Challenge, Failure, LookupScram, Mechanism, Step, Success

__all__ = ["MAX_SCRAM_MESSAGE", "ScramSha256Mechanism"]

# RFC 5802 messages are a user name, two nonces and base64 of 32-byte values: a few
# hundred octets. Anything far longer is refused before scramp (and SASLprep) see it.
MAX_SCRAM_MESSAGE = 4096

_SCRAM_SHA_256 = scramp.ScramMechanism("SCRAM-SHA-256")
# Key for deriving fake salts, per process unless the caller injects one. A restart or
# another worker process shows other fake salts: multi-process servers inject a key.
_PROCESS_FAKE_SALT_KEY = secrets.token_bytes(32)


class _State(enum.Enum):
    START = enum.auto()
    CLIENT_FIRST = enum.auto()  # waiting for client-first-message
    CREDENTIALS = enum.auto()  # waiting for the shell's LookupScram answer
    CLIENT_FINAL = enum.auto()  # waiting for client-final-message
    DONE = enum.auto()


class ScramSha256Mechanism(Mechanism):
    """Server side of SCRAM-SHA-256 without channel binding.

    ``fake_salt_key`` keys the salts invented for unknown users (default: random per
    process); ``fake_iterations`` is the count shown for them and should match what
    real accounts use. ``server_nonce`` is for tests only.
    """

    name = "SCRAM-SHA-256"

    def __init__(
        self,
        *,
        fake_salt_key: bytes | None = None,
        fake_iterations: int = SCRAM_MIN_ITERATIONS,
        server_nonce: str | None = None,
    ) -> None:
        if fake_iterations < SCRAM_MIN_ITERATIONS:
            # scramp refuses such a count for real users too; a fake one must not differ.
            raise ValueError(f"fake_iterations must be at least {SCRAM_MIN_ITERATIONS}")
        self._state = _State.START
        self._fake_salt_key = _PROCESS_FAKE_SALT_KEY if fake_salt_key is None else fake_salt_key
        self._fake_iterations = fake_iterations
        self._server_nonce = server_nonce
        self._client_first = ""
        self._authcid = ""
        self._gs2_header = "n,,"
        self._authzid: str | None = None
        self._server_first = ""
        self._creds: ScramCredentials | None = None
        self._user: str | None = None
        self._server: Any = None  # scramp.core.ScramServer (untyped)

    def start(self, initial_response: bytes | None) -> Step:
        self._expect(_State.START, "start")
        if initial_response is None:
            # RFC 4422 §5 (4): a client-first mechanism without an initial response
            # gets an empty challenge.
            self._state = _State.CLIENT_FIRST
            return Challenge(b"")
        return self._client_first_message(initial_response)

    def respond(self, data: bytes) -> Step:
        if self._state is _State.CLIENT_FIRST:
            return self._client_first_message(data)
        self._expect(_State.CLIENT_FINAL, "respond")
        return self._client_final_message(data)

    def scram_credentials(self, found: tuple[str, ScramCredentials] | None) -> Step:
        self._expect(_State.CREDENTIALS, "scram_credentials")
        if found is None:
            creds = self._fake_credentials(self._authcid)
        else:
            self._user, creds = found
        server = _SCRAM_SHA_256.make_server(
            lambda _name: (creds.salt, creds.stored_key, creds.server_key, creds.iterations),
            s_nonce=self._server_nonce,
        )
        self._creds = creds
        try:
            server.set_client_first(self._client_first)
            server_first = str(server.get_server_first())
            self._server_first = server_first
        except scramp.ScramException as e:
            # The message passed the dry run, so this is the stored credentials (e.g.
            # an iteration count scramp refuses): not the client's fault.
            return self._fail(f"unusable SCRAM credentials: {e}")
        self._server = server
        self._state = _State.CLIENT_FINAL
        return Challenge(server_first.encode("ascii"))

    # --- the two client messages ----------------------------------------------------

    def _client_first_message(self, data: bytes) -> Step:
        text = _decode(data)
        if text is None:
            return self._fail("client-first-message is not UTF-8 or too long", malformed=True)
        # RFC 5802 §7: gs2-header = gs2-cbind-flag "," [ authzid ] ","
        flag, comma1, rest = text.partition(",")
        authzid, comma2, _bare = rest.partition(",")
        if not (comma1 and comma2):
            return self._fail("client-first-message has no GS2 header", malformed=True)
        if flag.startswith("p="):
            # RFC 5802 §6: the client requires channel binding; we offer no -PLUS.
            return self._fail("client requires channel binding, which is not offered")
        if flag not in ("n", "y"):
            return self._fail(f"bad gs2-cbind-flag {flag!r}", malformed=True)
        self._gs2_header = f"{flag},{authzid},"
        self._authzid = None
        if authzid:
            if not authzid.startswith("a="):
                return self._fail("bad authzid in GS2 header", malformed=True)
            name = _unescape_saslname(authzid[2:])
            if name is None:
                return self._fail("bad authzid in GS2 header", malformed=True)
            self._authzid = name
            text = f"{flag},,{_bare}"  # scramp accepts only an empty authzid

        # Dry run: scramp validates the message and gives the prepared user name.
        seen: list[str] = []

        def capture(name: str) -> tuple[bytes, bytes, bytes, int]:
            seen.append(name)
            placeholder = self._fake_credentials(name)
            return (placeholder.salt, b"", b"", placeholder.iterations)

        try:
            _SCRAM_SHA_256.make_server(capture).set_client_first(text)
        except scramp.ScramException as e:
            return self._fail(f"bad client-first-message: {e}", malformed=True)
        if len(seen) != 1:  # pragma: no cover - scramp calls the lookup exactly once
            return self._fail("scramp did not report the user name", malformed=True)
        self._client_first = text
        self._authcid = seen[0]
        if self._authzid is not None and self._authzid != self._authcid:
            return self._fail("authorization identity differs from the user")
        self._state = _State.CREDENTIALS
        return LookupScram(self._authcid, "")

    def _client_final_message(self, data: bytes) -> Step:
        assert self._server is not None
        text = _decode(data)
        if text is None:
            return self._fail("client-final-message is not UTF-8 or too long", malformed=True)
        if self._authzid is not None:
            return self._final_with_authzid(text)
        try:
            self._server.set_client_final(text)
            server_final = str(self._server.get_server_final())
        except scramp.ScramException as e:
            if e.server_error is ServerError.INVALID_PROOF:
                return self._fail("invalid credentials")
            if e.server_error is ServerError.CHANNEL_BINDINGS_DONT_MATCH:
                # c= must repeat the GS2 header; a mismatch can be a downgrade attempt.
                return self._fail("channel binding data does not match the GS2 header")
            return self._fail(f"bad client-final-message: {e}", malformed=True)
        if self._user is None:  # pragma: no cover - random keys never verify
            return self._fail("invalid credentials")
        self._state = _State.DONE
        return Success(self._user, server_final.encode("ascii"))

    def _final_with_authzid(self, text: str) -> Step:
        """RFC 5802 §3 verification over the messages as the client sent them."""
        head, sep, proof_b64 = text.rpartition(",p=")
        attrs = dict(a.split("=", 1) for a in head.split(",") if "=" in a)
        if not sep or "c" not in attrs or "r" not in attrs:
            return self._fail("bad client-final-message", malformed=True)
        expected_c = base64.b64encode(self._gs2_header.encode("utf-8")).decode("ascii")
        if attrs["c"] != expected_c:
            return self._fail("channel binding data does not match the GS2 header")
        server_attrs = dict(a.split("=", 1) for a in self._server_first.split(",") if "=" in a)
        if attrs["r"] != server_attrs.get("r"):
            return self._fail("nonce mismatch", malformed=True)
        try:
            proof = base64.b64decode(proof_b64, validate=True)
        except ValueError:
            return self._fail("bad client proof", malformed=True)
        bare = self._client_first.split(",", 2)[2]
        auth_message = f"{bare},{self._server_first},{head}".encode()
        creds = self._creds
        assert creds is not None  # set with the server-first-message
        signature = hmac.new(creds.stored_key, auth_message, hashlib.sha256).digest()
        if len(proof) != len(signature):
            return self._fail("invalid credentials")
        client_key = bytes(a ^ b for a, b in zip(proof, signature, strict=True))
        if not hmac.compare_digest(hashlib.sha256(client_key).digest(), creds.stored_key):
            return self._fail("invalid credentials")
        if self._user is None:  # pragma: no cover - fake keys never verify
            return self._fail("invalid credentials")
        server_sig = hmac.new(creds.server_key, auth_message, hashlib.sha256).digest()
        self._state = _State.DONE
        return Success(self._user, b"v=" + base64.b64encode(server_sig))

    # --- helpers --------------------------------------------------------------------

    def _fake_credentials(self, authcid: str) -> ScramCredentials:
        salt = hmac.new(self._fake_salt_key, authcid.encode("utf-8"), hashlib.sha256).digest()
        return ScramCredentials(
            salt=salt[:SCRAM_SALT_LENGTH],
            iterations=self._fake_iterations,
            stored_key=secrets.token_bytes(32),
            server_key=secrets.token_bytes(32),
        )

    def _expect(self, state: _State, method: str) -> None:
        if self._state is not state:
            raise self._out_of_order(method)

    def _fail(self, reason: str, *, malformed: bool = False) -> Failure:
        self._state = _State.DONE
        self._server = None
        return Failure(reason, malformed)


def _decode(data: bytes) -> str | None:
    """RFC 5802 §7: messages are UTF-8; None if not, or if absurdly long."""
    if len(data) > MAX_SCRAM_MESSAGE:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _unescape_saslname(value: str) -> str | None:
    """RFC 5802 §5.1 saslname: "=2C" is ",", "=3D" is "="; any other "=" is an error."""
    out, i = [], 0
    while i < len(value):
        if value[i] == "=":
            code = value[i + 1 : i + 3]
            if code == "2C":
                out.append(",")
            elif code == "3D":
                out.append("=")
            else:
                return None
            i += 3
        else:
            out.append(value[i])
            i += 1
    return "".join(out)
