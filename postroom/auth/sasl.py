"""SASL server mechanisms, sans-IO (RFC 4422).

Theory of operation: a mechanism object is fed the client's decoded responses and
answers with one step at a time. It never checks a password itself: checking is
blocking work (argon2) and belongs to the shell, so the mechanism *asks* for it with
``VerifyPassword`` / ``LookupScram`` and is told the answer with ``password_result`` /
``scram_credentials``. The protocol engines (SMTP, IMAP, POP3) own the framing
(``334``, ``+``) and base64; this module sees raw bytes only, apart from the two
base64 helpers the engines share.

Contract (implemented in this module):

    mech = new_mechanism("PLAIN")           # None for an unknown name
    step = mech.start(initial_response)     # bytes | None (None: no initial response)
    while True:
        match step:
            case Challenge(data): send data, step = mech.respond(client_bytes)
            case VerifyPassword(authcid, authzid, password):
                step = mech.password_result(user_or_None)
            case LookupScram(authcid, authzid):
                step = mech.scram_credentials((user, creds) or None)
            case Success(user, final_data): done (final_data: bytes for SCRAM's server-final)
            case Failure(reason, malformed): done

``postroom.auth.authenticator.run_sasl`` is that loop, written once.
A client cancel ("*") is handled by the protocol engine, not here.

Mechanisms: PLAIN (RFC 4616), LOGIN (draft-murchison-sasl-login-00, never an RFC but
what Outlook and many devices speak), SCRAM-SHA-256 (RFC 7677, ``postroom.auth.scram``).
"""

from __future__ import annotations

import base64
import binascii
import enum

from postroom.auth.saslprep import SaslprepError, saslprep
from postroom.auth.scram import ScramSha256Mechanism
from postroom.auth.steps import (
    Challenge,
    Failure,
    LookupScram,
    Mechanism,
    Step,
    Success,
    VerifyPassword,
)

__all__ = [
    "MAX_FIELD_OCTETS",
    "MECHANISMS",
    "Challenge",
    "Failure",
    "LoginMechanism",
    "LookupScram",
    "Mechanism",
    "PlainMechanism",
    "ScramSha256Mechanism",
    "Step",
    "Success",
    "VerifyPassword",
    "decode_sasl_base64",
    "encode_sasl_base64",
    "new_mechanism",
]

# In the order to advertise (SMTP EHLO "AUTH ...", IMAP "AUTH=...", POP3 CAPA "SASL ...").
MECHANISMS = ("PLAIN", "LOGIN", "SCRAM-SHA-256")

# RFC 4616 §2: authzid, authcid and passwd "MUST accept up to 255 octets". We accept
# more (long generated passwords) but not without bound.
MAX_FIELD_OCTETS = 1024


# --- base64, shared by the SMTP, IMAP and POP3 engines -----------------------------


def decode_sasl_base64(line: bytes) -> bytes | None:
    """Decode one client response line (without CRLF) from base64 (RFC 4648 §4).

    Returns None if it is not valid, padded base64. A lone ``=`` is the empty
    response (RFC 4954 §4 "initial response"; RFC 9051 §6.2.2 and RFC 5034 §4 the
    same), and so is an empty line (an empty continuation answer). The cancel line
    ``*`` is *not* handled here: engines test for it first (RFC 4954 §4).
    """
    if line in (b"=", b""):
        return b""
    try:
        return base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError):
        return None


def encode_sasl_base64(data: bytes) -> bytes:
    """Base64 for a challenge (no line breaks). Empty data gives ``b""``: SMTP sends
    ``334 `` and IMAP/POP3 send ``+ `` with nothing after the space."""
    return base64.b64encode(data)


# --- PLAIN (RFC 4616) ----------------------------------------------------------------


class _PlainState(enum.Enum):
    START = enum.auto()
    MESSAGE = enum.auto()  # sent the empty challenge, waiting for the message
    VERIFY = enum.auto()  # asked the shell to check the password
    DONE = enum.auto()


class PlainMechanism(Mechanism):
    """PLAIN: one client message ``[authzid] NUL authcid NUL passwd`` (RFC 4616 §2)."""

    name = "PLAIN"

    def __init__(self) -> None:
        self._state = _PlainState.START

    def start(self, initial_response: bytes | None) -> Step:
        self._expect(_PlainState.START, "start")
        if initial_response is None:
            # RFC 4616 §2 / RFC 4422 §5: no initial response, so an empty challenge.
            self._state = _PlainState.MESSAGE
            return Challenge(b"")
        return self._message(initial_response)

    def respond(self, data: bytes) -> Step:
        self._expect(_PlainState.MESSAGE, "respond")
        return self._message(data)

    def password_result(self, user: str | None) -> Step:
        self._expect(_PlainState.VERIFY, "password_result")
        self._state = _PlainState.DONE
        if user is None:
            return Failure("invalid credentials")
        return Success(user)

    def _message(self, data: bytes) -> Step:
        self._state = _PlainState.DONE  # unless it reaches VerifyPassword below
        # RFC 4616 §2: message = [authzid] UTF8NUL authcid UTF8NUL passwd
        fields = data.split(b"\x00")
        if len(fields) != 3:
            return Failure("PLAIN message needs exactly two NUL separators", malformed=True)
        if any(len(f) > MAX_FIELD_OCTETS for f in fields):
            return Failure("PLAIN field too long", malformed=True)
        raw_authzid, raw_authcid, raw_passwd = fields
        # authcid and passwd are 1*SAFE: never empty.
        if not raw_authcid or not raw_passwd:
            return Failure("PLAIN authcid or passwd is empty", malformed=True)
        try:
            authzid = raw_authzid.decode("utf-8")
            authcid = raw_authcid.decode("utf-8")
            passwd = raw_passwd.decode("utf-8")
        except UnicodeDecodeError:
            return Failure("PLAIN message is not UTF-8", malformed=True)  # SAFE is UTF-8

        prepared = _prepare_authcid(authcid)
        if isinstance(prepared, Failure):
            return prepared
        # RFC 4616 §2: the server checks the client may act as authzid. We allow only
        # acting as oneself: an empty authzid or one equal to authcid.
        if authzid and _prepare_authcid(authzid) != prepared:
            return Failure("authzid differs from authcid; proxy login is not allowed")
        self._state = _PlainState.VERIFY
        return VerifyPassword(prepared, prepared if authzid else "", passwd)

    def _expect(self, state: _PlainState, method: str) -> None:
        if self._state is not state:
            raise self._out_of_order(method)


# --- LOGIN (draft-murchison-sasl-login-00) ------------------------------------------


class _LoginState(enum.Enum):
    START = enum.auto()
    USERNAME = enum.auto()  # sent "Username:"
    PASSWORD = enum.auto()  # sent "Password:"
    VERIFY = enum.auto()
    DONE = enum.auto()


class LoginMechanism(Mechanism):
    """LOGIN: the server asks "Username:" then "Password:"; each answer is one
    UTF-8 string. A non-empty initial response is taken as the user name, as clients
    send ``AUTH LOGIN <base64 user>`` (draft-murchison-sasl-login-00 §2)."""

    name = "LOGIN"
    USERNAME_PROMPT = b"Username:"
    PASSWORD_PROMPT = b"Password:"

    def __init__(self) -> None:
        self._state = _LoginState.START
        self._authcid = ""

    def start(self, initial_response: bytes | None) -> Step:
        self._expect(_LoginState.START, "start")
        if not initial_response:  # None, or "=" which no client means as a user name
            self._state = _LoginState.USERNAME
            return Challenge(self.USERNAME_PROMPT)
        return self._username(initial_response)

    def respond(self, data: bytes) -> Step:
        if self._state is _LoginState.USERNAME:
            return self._username(data)
        self._expect(_LoginState.PASSWORD, "respond")
        self._state = _LoginState.DONE
        password = _decode_field(data)
        if password is None:
            return Failure("LOGIN password is not UTF-8, has NUL or is too long", malformed=True)
        if not password:
            return Failure("empty password")
        self._state = _LoginState.VERIFY
        return VerifyPassword(self._authcid, "", password)

    def password_result(self, user: str | None) -> Step:
        self._expect(_LoginState.VERIFY, "password_result")
        self._state = _LoginState.DONE
        if user is None:
            return Failure("invalid credentials")
        return Success(user)

    def _username(self, data: bytes) -> Step:
        self._state = _LoginState.DONE
        name = _decode_field(data)
        if name is None:
            return Failure("LOGIN user name is not UTF-8, has NUL or is too long", malformed=True)
        prepared = _prepare_authcid(name)
        if isinstance(prepared, Failure):
            return prepared
        self._authcid = prepared
        self._state = _LoginState.PASSWORD
        return Challenge(self.PASSWORD_PROMPT)

    def _expect(self, state: _LoginState, method: str) -> None:
        if self._state is not state:
            raise self._out_of_order(method)


# --- shared helpers and the registry -------------------------------------------------


def _decode_field(data: bytes) -> str | None:
    if len(data) > MAX_FIELD_OCTETS or b"\x00" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _prepare_authcid(authcid: str) -> str | Failure:
    """SASLprep the user name (RFC 4616 §2, as a query: RFC 3454 §7). "If preparation
    fails or results in an empty string, verification SHALL fail" (RFC 4616 §2)."""
    try:
        prepared = saslprep(authcid, allow_unassigned=True)
    except SaslprepError as e:
        return Failure(f"user name refused by SASLprep: {e}")
    if not prepared:
        return Failure("empty user name")
    return prepared


def new_mechanism(name: str, *, fake_salt_key: bytes | None = None) -> Mechanism | None:
    """A fresh server mechanism for ``name`` (case-insensitive, RFC 4422 §3.1), or None
    if it is not one we offer (the engine answers SMTP 504 / IMAP NO / POP3 -ERR).

    ``fake_salt_key`` (SCRAM only) keys the salts shown for unknown users. The default
    is random per process; a server running several worker processes must pass one
    shared, persistent secret, or an unknown user's salt changes between connections
    while a real user's does not.
    """
    if not name.isascii():  # str.upper() maps a dotless i (U+0131) to "I"
        return None
    match name.upper():
        case "PLAIN":
            return PlainMechanism()
        case "LOGIN":
            return LoginMechanism()
        case "SCRAM-SHA-256":
            return ScramSha256Mechanism(fake_salt_key=fake_salt_key)
        case _:
            return None
