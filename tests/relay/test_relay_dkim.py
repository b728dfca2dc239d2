"""DKIM keys, signatures checked by dkimpy's verifier, and the DNS records."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import dkim as dkimpy
import pytest

from postroom import dkim
from postroom.queue.submit import from_domain, sign_and_enqueue, signing_keys
from postroom.store.models import QueuedRecipient
from postroom.store.sqlite import SqliteStore

MSG = (
    b"From: Alice <alice@example.test>\r\nTo: bob@remote.test\r\nSubject: Hello\r\n"
    b"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\nMessage-ID: <1@example.test>\r\n"
    b"\r\nHi Bob.\r\n"
)


def dnsfunc_for(keys: list[dkim.DkimKey]) -> object:
    records = {f"{k.record_name}.".encode(): k.txt_record().encode() for k in keys}

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        return records.get(name)

    return dnsfunc


def verify_all(message: bytes, keys: list[dkim.DkimKey]) -> list[bool]:
    d = dkimpy.DKIM(message)
    out = []
    for i in range(message.count(b"DKIM-Signature:")):
        try:
            out.append(bool(d.verify(idx=i, dnsfunc=dnsfunc_for(keys))))
        except dkimpy.DKIMException:
            out.append(False)
    return out


def test_generate_rsa_and_ed25519_sign_and_verify(tmp_path: Path) -> None:
    pytest.importorskip("nacl")
    rsa_key = dkim.generate_key(tmp_path, "Example.test")
    dkim.generate_key(tmp_path, "example.test", algorithm="ed25519")
    assert rsa_key.path == tmp_path / "example.test" / "postroom.key"
    assert stat.S_IMODE(rsa_key.path.stat().st_mode) == 0o600
    keys = dkim.load_keys(tmp_path, "example.test")
    assert [(k.algorithm, k.selector) for k in keys] == [
        ("rsa", "postroom"),
        ("ed25519", "postroom-ed25519"),
    ]
    signed = dkim.sign(MSG, keys) + MSG
    assert verify_all(signed, keys) == [True, True]
    assert b"a=ed25519-sha256" in signed and b"a=rsa-sha256" in signed
    tampered = signed.replace(b"Hi Bob.", b"Hi Eve.")
    assert verify_all(tampered, keys) == [False, False]


def test_rsa_signature_verifies(tmp_path: Path) -> None:
    key = dkim.generate_key(tmp_path, "example.test", selector="s1")
    signed = dkim.sign(MSG, [key]) + MSG
    assert verify_all(signed, [key]) == [True]
    assert key.txt_record().startswith("v=DKIM1; k=rsa; p=MIIB")


def test_oversigned_fields_cannot_be_added(tmp_path: Path) -> None:
    key = dkim.generate_key(tmp_path, "example.test")
    names = dkim.signed_header_list(MSG)
    assert names.count("from") == 2 and names.count("message-id") == 1
    assert "list-id" not in names
    signed = dkim.sign(MSG, [key]) + MSG
    added = signed.replace(b"Subject: Hello\r\n", b"Subject: Hello\r\nSubject: Win!\r\n")
    assert verify_all(added, [key]) == [False]


def test_errors(tmp_path: Path) -> None:
    dkim.generate_key(tmp_path, "example.test")
    with pytest.raises(dkim.DkimError):
        dkim.generate_key(tmp_path, "example.test")
    with pytest.raises(dkim.DkimError):
        dkim.generate_key(tmp_path, "../evil")
    with pytest.raises(dkim.DkimError):
        dkim.generate_key(tmp_path, "example.test", selector="bad/selector")
    with pytest.raises(dkim.DkimError):
        dkim.sign(b"Subject: no from\r\n\r\nx\r\n", dkim.load_keys(tmp_path, "example.test"))
    assert dkim.load_keys(tmp_path, "other.test") == []


def test_dns_records(tmp_path: Path) -> None:
    key = dkim.generate_key(tmp_path, "example.test")
    records = dkim.dns_records("example.test", "mail.example.test", [key])
    by_name = {(r.name, r.type): r.value for r in records}
    assert by_name[("example.test", "MX")] == "10 mail.example.test."
    assert by_name[("example.test", "TXT")] == "v=spf1 mx -all"
    assert by_name[("postroom._domainkey.example.test", "TXT")] == key.txt_record()
    assert by_name[("_dmarc.example.test", "TXT")].startswith("v=DMARC1; p=quarantine")
    assert by_name[("_submissions._tcp.example.test", "SRV")] == "0 1 465 mail.example.test."
    assert ("autoconfig.example.test", "CNAME") in by_name
    lines = dkim.zone_lines(records)
    dkim_line = next(line for line in lines if line.startswith("postroom._domainkey"))
    strings = dkim_line.split(" TXT ", 1)[1]
    assert strings.count('"') == 4  # 2048-bit key: split in two strings of <= 255
    assert all(len(s) <= 255 for s in strings.strip('"').split('" "'))


def test_signing_domain_choice(tmp_path: Path) -> None:
    dkim.generate_key(tmp_path, "example.test")
    assert from_domain(MSG) == "example.test"
    assert signing_keys(tmp_path, MSG, "bounce@other.test")[0].domain == "example.test"
    other = MSG.replace(b"alice@example.test", b"alice@nokey.test")
    assert signing_keys(tmp_path, other, "x@nokey.test") == []
    assert signing_keys(tmp_path, other, "x@example.test")[0].domain == "example.test"


def test_sign_and_enqueue_prepends_a_valid_signature(tmp_path: Path) -> None:
    key = dkim.generate_key(tmp_path / "dkim", "example.test")

    async def main() -> bytes:
        store = await SqliteStore.open(tmp_path / "data")
        try:
            item = await sign_and_enqueue(
                store,
                MSG,
                "alice@example.test",
                [QueuedRecipient("bob@remote.test")],
                dkim_keys_dir=tmp_path / "dkim",
            )
            return await store.read_message(item.message_id)
        finally:
            await store.close()

    stored = asyncio.run(main())
    assert stored.startswith(b"DKIM-Signature:") and stored.endswith(MSG)
    assert verify_all(stored, [key]) == [True]
