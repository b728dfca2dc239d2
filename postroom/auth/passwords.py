"""Stored password credentials: argon2id hashes and SCRAM-SHA-256 keys.

Theory of operation: an account keeps two derived forms of its password and never the
password itself.

* An argon2id hash (RFC 9106), checked for PLAIN and LOGIN, where the client sends the
  clear password over TLS. ``hash_password`` / ``verify_password`` / ``needs_rehash``
  wrap argon2-cffi; the cost parameters live in one ``Argon2Params`` value so a test
  can pass cheap ones. Hashing is CPU work of tens of milliseconds: callers run it off
  the event loop.
* SCRAM-SHA-256 keys (RFC 5802 §3, RFC 7677): salt, iteration count, StoredKey and
  ServerKey, serialised the way PostgreSQL stores them::

      SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>

  With these the server can check a SCRAM proof without the clear password; they are
  still password-equivalent for *impersonating the server*, so store them like hashes.

Both forms are computed from the SASLprep'd password (RFC 4013; RFC 4616 §2 for PLAIN,
RFC 5802 §2.2 "Normalize" for SCRAM), so "ﬁ" and "fi" are the same password on every
mechanism.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass

import argon2
import scramp

from postroom.auth.saslprep import SaslprepError, saslprep

__all__ = [
    "DEFAULT_ARGON2",
    "SCRAM_MAX_ITERATIONS",
    "SCRAM_MIN_ITERATIONS",
    "SCRAM_SALT_LENGTH",
    "Argon2Params",
    "ScramCredentials",
    "hash_password",
    "make_scram_credentials",
    "needs_rehash",
    "parse_scram_credentials",
    "verify_password",
]


# --- argon2id ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Argon2Params:
    """argon2id cost parameters (RFC 9106 §3.1); ``memory_cost`` is in KiB."""

    time_cost: int = 2
    memory_cost: int = 19_456
    parallelism: int = 1
    hash_len: int = 32
    salt_len: int = 16

    def hasher(self) -> argon2.PasswordHasher:
        return argon2.PasswordHasher(
            time_cost=self.time_cost,
            memory_cost=self.memory_cost,
            parallelism=self.parallelism,
            hash_len=self.hash_len,
            salt_len=self.salt_len,
            type=argon2.Type.ID,
        )


# 19 MiB, 2 passes, 1 lane: the OWASP minimum for argon2id, about 25-35 ms on one core.
# RFC 9106 §4's "second recommended option" (64 MiB) costs ~120 ms per login here.
DEFAULT_ARGON2 = Argon2Params()


def hash_password(password: str, params: Argon2Params = DEFAULT_ARGON2) -> str:
    """Return an argon2id PHC string (``$argon2id$v=19$m=...``) for ``password``.

    Raises ``ValueError`` (``SaslprepError``) if SASLprep refuses the password, e.g. it
    contains a control character, and for an empty password.
    """
    prepared = saslprep(password)  # stored string: unassigned code points refused
    if not prepared:
        raise ValueError("empty password")
    return params.hasher().hash(prepared)


def verify_password(stored_hash: str, password: str) -> bool:
    """True if ``password`` matches ``stored_hash``; False otherwise, never raising.

    A garbage or non-argon2 ``stored_hash`` and a password SASLprep refuses are just
    False. The hash carries its own parameters, so hashes made with older params verify.
    """
    try:
        prepared = saslprep(password, allow_unassigned=True)  # RFC 3454 §7: a query
    except SaslprepError:
        return False
    if not prepared:
        return False  # RFC 4616 §2: an empty prepared string fails verification
    try:
        return DEFAULT_ARGON2.hasher().verify(stored_hash, prepared)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False
    except (TypeError, ValueError):
        return False  # defensive: argon2-cffi documents neither, but garbage is garbage


def needs_rehash(stored_hash: str, params: Argon2Params = DEFAULT_ARGON2) -> bool:
    """True if ``stored_hash`` was made with other parameters than ``params`` (or is
    not an argon2 hash at all): rehash after the next successful login."""
    try:
        return params.hasher().check_needs_rehash(stored_hash)
    except (argon2.exceptions.InvalidHashError, TypeError, ValueError):
        return True


# --- SCRAM-SHA-256 ----------------------------------------------------------------

_SCRAM_PREFIX = "SCRAM-SHA-256$"
SCRAM_SALT_LENGTH = 16  # as PostgreSQL; scramp requires at least 12
# RFC 7677 §4: the iteration count SHOULD be at least 4096. scramp refuses less and
# refuses more than ten million (a DoS guard), so the same bounds apply when parsing.
SCRAM_MIN_ITERATIONS = 4096
SCRAM_MAX_ITERATIONS = 10_000_000
_SHA256_LEN = 32

_SCRAM_SHA_256 = scramp.ScramMechanism("SCRAM-SHA-256")


@dataclass(frozen=True, slots=True)
class ScramCredentials:
    """What the server keeps for SCRAM-SHA-256 (RFC 5802 §3: salt, i, StoredKey,
    ServerKey). Build with ``make_scram_credentials`` or ``parse_scram_credentials``."""

    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    def serialise(self) -> str:
        """The PostgreSQL-style string that ``parse_scram_credentials`` reads back."""
        b64 = _b64encode
        return (
            f"{_SCRAM_PREFIX}{self.iterations}:{b64(self.salt)}"
            f"${b64(self.stored_key)}:{b64(self.server_key)}"
        )


def make_scram_credentials(password: str, iterations: int = SCRAM_MIN_ITERATIONS) -> str:
    """Derive SCRAM-SHA-256 keys for ``password`` with a fresh random salt, serialised.

    Raises ``ValueError`` if SASLprep refuses the password, if it is empty, or if
    ``iterations`` is outside [4096, 10_000_000].
    """
    if not SCRAM_MIN_ITERATIONS <= iterations <= SCRAM_MAX_ITERATIONS:
        raise ValueError(f"SCRAM iteration count {iterations} out of range")
    prepared = saslprep(password)  # scramp preps again; SASLprep is idempotent
    if not prepared:
        raise ValueError("empty password")
    try:
        salt, stored_key, server_key, i = _SCRAM_SHA_256.make_auth_info(
            prepared, iteration_count=iterations, salt=secrets.token_bytes(SCRAM_SALT_LENGTH)
        )
    except scramp.ScramException as e:
        raise ValueError(f"cannot derive SCRAM credentials: {e}") from e
    creds = ScramCredentials(bytes(salt), int(i), bytes(stored_key), bytes(server_key))
    return creds.serialise()


def parse_scram_credentials(s: str) -> ScramCredentials | None:
    """Read the string ``make_scram_credentials`` wrote; None if it is malformed or
    unusable (wrong mechanism, iteration count out of range, salt too short, keys
    not 32 bytes)."""
    if not s.startswith(_SCRAM_PREFIX):
        return None
    params, sep, keys = s[len(_SCRAM_PREFIX) :].partition("$")
    iter_text, sep1, salt_text = params.partition(":")
    stored_text, sep2, server_text = keys.partition(":")
    if not (sep and sep1 and sep2):
        return None
    if not (iter_text.isascii() and iter_text.isdigit()) or iter_text.startswith("0"):
        return None
    iterations = int(iter_text)
    salt = _b64decode(salt_text)
    stored_key = _b64decode(stored_text)
    server_key = _b64decode(server_text)
    if salt is None or stored_key is None or server_key is None:
        return None
    if not SCRAM_MIN_ITERATIONS <= iterations <= SCRAM_MAX_ITERATIONS:
        return None
    if len(salt) < 12 or len(stored_key) != _SHA256_LEN or len(server_key) != _SHA256_LEN:
        return None
    return ScramCredentials(salt, iterations, stored_key, server_key)


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str) -> bytes | None:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        return None
