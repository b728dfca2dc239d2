"""DKIM keys, signing, and the DNS records a domain publishes.

Theory of operation:

* Keys live in ``<data_dir>/dkim/<domain>/<selector>.key``, PEM, mode 0600: RSA 2048
  (PKCS#1, RFC 6376 section 3.3.3 wants 1024-4096 bits) or Ed25519 (PKCS#8,
  RFC 8463). ``generate_key`` writes one atomically; ``load_keys`` reads a domain's.
  The selector defaults to ``postroom`` (RSA) and ``postroom-ed25519``, so both can be
  published and used side by side (RFC 8463 section 4 recommends dual signing while
  verifiers catch up).
* ``sign`` computes the ``DKIM-Signature`` header fields with dkimpy (relaxed/simple
  canonicalization, RFC 6376 section 3.4), one per key, ready to be prepended to the
  message before it is queued. Ed25519 signing needs PyNaCl (dkimpy's own
  requirement); without it the Ed25519 keys are skipped with a log line, so RSA
  signing still happens.
* ``txt_record`` gives the key record (``v=DKIM1; k=...; p=...``, RFC 6376 section
  3.6.1); ``dns_records`` lists everything ``postroom dns DOMAIN`` prints: MX, SPF
  (RFC 7208), the DKIM keys, DMARC (RFC 7489), and client autoconfiguration (SRV
  records per RFC 6186 and RFC 8314 section 5.1, plus the ``autoconfig`` /
  ``autodiscover`` names mail clients probe). ``zone_lines`` formats them for a zone
  file, long TXT values split into 255-octet strings (RFC 1035 section 3.3.14).
"""

from __future__ import annotations

import base64
import importlib.util
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

log = logging.getLogger("postroom.dkim")

Algorithm = Literal["rsa", "ed25519"]
DEFAULT_SELECTORS: dict[str, str] = {"rsa": "postroom", "ed25519": "postroom-ed25519"}
RSA_BITS = 2048

# RFC 6376 section 5.4.1 recommends these; From is required. Each is signed as often
# as it occurs; the OVERSIGNED ones once more ("oversigning", section 8.15: an absent
# instance is signed as empty), so nobody can add another From, Subject, ... later.
SIGNED_HEADERS: tuple[str, ...] = (
    "from",
    "reply-to",
    "subject",
    "date",
    "to",
    "cc",
    "message-id",
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "list-id",
    "list-help",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "list-post",
    "list-owner",
    "list-archive",
    "sender",
    "resent-date",
    "resent-from",
    "resent-to",
    "resent-cc",
    "resent-message-id",
)
OVERSIGNED = frozenset({"from", "subject", "date", "to", "cc", "reply-to"})

_SELECTOR = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


class DkimError(Exception):
    """Bad domain, selector or key file, or signing failed."""


@dataclass(frozen=True, slots=True)
class DkimKey:
    domain: str
    selector: str
    algorithm: Algorithm
    path: Path
    private_pem: bytes

    @property
    def record_name(self) -> str:
        """``<selector>._domainkey.<domain>`` (RFC 6376 section 3.6.2.1)."""
        return f"{self.selector}._domainkey.{self.domain}"

    def public_key_b64(self) -> str:
        key = serialization.load_pem_private_key(self.private_pem, password=None)
        if isinstance(key, ed25519.Ed25519PrivateKey):
            raw = key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        elif isinstance(key, rsa.RSAPrivateKey):
            raw = key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        else:
            raise DkimError(f"{self.path}: unsupported key type")
        return base64.b64encode(raw).decode("ascii")

    def txt_record(self) -> str:
        """The TXT value to publish at ``record_name``."""
        return f"v=DKIM1; k={self.algorithm}; p={self.public_key_b64()}"

    def dkimpy_private_key(self) -> bytes:
        """The private key in the form dkimpy takes: PKCS#1 PEM for RSA, the base64
        32-octet seed for Ed25519."""
        key = serialization.load_pem_private_key(self.private_pem, password=None)
        if isinstance(key, ed25519.Ed25519PrivateKey):
            seed = key.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
            return base64.b64encode(seed)
        if isinstance(key, rsa.RSAPrivateKey):
            return key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        raise DkimError(f"{self.path}: unsupported key type")


def _check_domain(domain: str) -> str:
    domain = domain.strip().rstrip(".").lower()
    if not domain or "/" in domain or "\\" in domain or domain.startswith(".") or ".." in domain:
        raise DkimError(f"not a domain name: {domain!r}")
    return domain


def _check_selector(selector: str) -> str:
    if not all(_SELECTOR.match(part) for part in selector.split(".")):
        raise DkimError(f"not a DKIM selector: {selector!r}")
    return selector


def generate_key(
    keys_dir: Path,
    domain: str,
    *,
    algorithm: Algorithm = "rsa",
    selector: str | None = None,
    overwrite: bool = False,
) -> DkimKey:
    """Create a key for ``domain`` in ``keys_dir/<domain>/<selector>.key``.

    Raises ``DkimError`` when the file exists (unless ``overwrite``) or the names are
    invalid. The file is written to a temporary name with mode 0600 and renamed.
    """
    domain = _check_domain(domain)
    selector = _check_selector(selector or DEFAULT_SELECTORS[algorithm])
    path = keys_dir / domain / f"{selector}.key"
    if path.exists() and not overwrite:
        raise DkimError(f"{path} exists already")
    pem: bytes
    if algorithm == "rsa":
        pem = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    elif algorithm == "ed25519":
        pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    else:
        raise DkimError(f"unknown algorithm {algorithm!r}")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return DkimKey(domain, selector, algorithm, path, pem)


def load_key(path: Path, domain: str) -> DkimKey:
    pem = path.read_bytes()
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except ValueError as e:
        raise DkimError(f"{path}: not a PEM private key: {e}") from None
    algorithm: Algorithm
    if isinstance(key, ed25519.Ed25519PrivateKey):
        algorithm = "ed25519"
    elif isinstance(key, rsa.RSAPrivateKey):
        algorithm = "rsa"
    else:
        raise DkimError(f"{path}: unsupported key type")
    return DkimKey(_check_domain(domain), path.stem, algorithm, path, pem)


def load_keys(keys_dir: Path, domain: str) -> list[DkimKey]:
    """Every key of ``domain`` (RSA first, then by selector); [] when there is none.
    Unreadable files are logged and skipped."""
    try:
        directory = keys_dir / _check_domain(domain)
    except DkimError:
        return []
    if not directory.is_dir():
        return []
    keys: list[DkimKey] = []
    for path in sorted(directory.glob("*.key")):
        try:
            keys.append(load_key(path, domain))
        except (DkimError, OSError) as e:
            log.error("skipping DKIM key: %s", e)
    keys.sort(key=lambda k: (k.algorithm != "rsa", k.selector))
    return keys


def _nacl_available() -> bool:
    return importlib.util.find_spec("nacl") is not None


def header_names(message: bytes) -> list[str]:
    """The field names of the header section of ``message``, lowercased, in order."""
    end = message.find(b"\r\n\r\n")
    head = message if end < 0 else message[:end]
    names: list[str] = []
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t") or b":" not in line:
            continue
        names.append(line.split(b":", 1)[0].strip().decode("ascii", "replace").lower())
    return names


def signed_header_list(message: bytes, headers: Sequence[str] = SIGNED_HEADERS) -> list[str]:
    """The ``h=`` list for ``message``: each wanted field as often as it occurs, the
    OVERSIGNED ones one time more."""
    present = header_names(message)
    out: list[str] = []
    for name in dict.fromkeys(h.lower() for h in headers):
        count = present.count(name) + (1 if name in OVERSIGNED else 0)
        out += [name] * count
    return out


def sign(message: bytes, keys: Sequence[DkimKey], headers: Sequence[str] = SIGNED_HEADERS) -> bytes:
    """The ``DKIM-Signature`` header fields (CRLF-terminated) for ``message``, one per
    key; prepend them to the message. Raises ``DkimError`` if signing fails (a message
    without From cannot be signed, RFC 6376 section 5.4)."""
    import dkim

    if "from" not in header_names(message):
        raise DkimError("the message has no From field")
    include = [h.encode() for h in signed_header_list(message, headers)]
    out: list[bytes] = []
    for key in keys:
        if key.algorithm == "ed25519" and not _nacl_available():
            log.warning("DKIM %s: Ed25519 signing needs PyNaCl; key skipped", key.record_name)
            continue
        algo = b"ed25519-sha256" if key.algorithm == "ed25519" else b"rsa-sha256"
        try:
            field = dkim.sign(
                message,
                key.selector.encode(),
                key.domain.encode(),
                key.dkimpy_private_key(),
                signature_algorithm=algo,
                canonicalize=(b"relaxed", b"simple"),
                include_headers=include,
                linesep=b"\r\n",
            )
        except dkim.DKIMException as e:
            raise DkimError(f"DKIM signing with {key.record_name} failed: {e}") from None
        out.append(field)
    return b"".join(reversed(out))


@dataclass(frozen=True, slots=True)
class DnsRecord:
    name: str  # fully qualified, no trailing dot
    type: str
    value: str  # presentation form of the data, TXT without quotes
    comment: str = ""


def dns_records(
    domain: str, hostname: str, keys: Sequence[DkimKey], *, dmarc_policy: str = "quarantine"
) -> list[DnsRecord]:
    """What to publish for ``domain`` served by the mail host ``hostname``."""
    domain = _check_domain(domain)
    host = hostname.rstrip(".").lower()
    records = [
        DnsRecord(domain, "MX", f"10 {host}.", "where mail for the domain goes"),
        DnsRecord(domain, "TXT", "v=spf1 mx -all", "SPF: only the MX hosts send for it"),
    ]
    records += [
        DnsRecord(k.record_name, "TXT", k.txt_record(), f"DKIM key ({k.algorithm})") for k in keys
    ]
    records.append(
        DnsRecord(
            f"_dmarc.{domain}",
            "TXT",
            f"v=DMARC1; p={dmarc_policy}; adkim=s; aspf=s; rua=mailto:postmaster@{domain}",
            "DMARC policy",
        )
    )
    srv = [
        ("_submissions._tcp", 465),
        ("_submission._tcp", 587),
        ("_imaps._tcp", 993),
        ("_imap._tcp", 143),
        ("_pop3s._tcp", 995),
        ("_pop3._tcp", 110),
    ]
    records += [
        DnsRecord(
            f"{name}.{domain}", "SRV", f"0 1 {port} {host}.", "client autoconfiguration (RFC 6186)"
        )
        for name, port in srv
    ]
    records += [
        DnsRecord(f"autoconfig.{domain}", "CNAME", f"{host}.", "Thunderbird-style autoconfig"),
        DnsRecord(f"autodiscover.{domain}", "CNAME", f"{host}.", "Outlook-style autodiscover"),
    ]
    return records


def _txt_strings(value: str) -> str:
    raw = value.encode("utf-8")
    parts = [raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""]
    return " ".join('"' + p.decode("utf-8", "replace").replace('"', '\\"') + '"' for p in parts)


def zone_lines(records: Sequence[DnsRecord]) -> list[str]:
    """Zone-file lines (``name. IN TYPE data``), with the comment above each record."""
    out: list[str] = []
    for r in records:
        if r.comment:
            out.append(f"; {r.comment}")
        data = _txt_strings(r.value) if r.type == "TXT" else r.value
        out.append(f"{r.name}. IN {r.type} {data}")
    return out
