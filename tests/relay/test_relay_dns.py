"""Resolvers: the mock's semantics, and dnspython against the loopback DNS server."""

from __future__ import annotations

import asyncio

import pytest

from postroom.dns.mock import MockResolver
from postroom.dns.real import DnsResolver, parse_server
from postroom.dns.resolver import DnsTemporaryError, MxRecord, NxDomain
from postroom.dns.testserver import LoopbackDnsServer

ZONE = {
    "example.test": {
        "MX": ["10 mx1.example.test.", "20 mx2.example.test."],
        "TXT": ['"v=spf1 mx -all"'],
    },
    "mx1.example.test": {"A": ["127.0.0.2"], "AAAA": ["::1"]},
    "mx2.example.test": {"A": ["127.0.0.3"]},
    "nomail.test": {"MX": ["0 ."]},
    "bare.test": {"A": ["127.0.0.4"]},
    "long.test": {"TXT": ['"' + "a" * 255 + '" "bcd"']},
}


def test_mock_resolver_nxdomain_nodata_and_failure() -> None:
    r = MockResolver(
        mx={"a.test": [(10, "mx.a.test")], "null.test": [(0, ".")]},
        a={"mx.a.test": ["127.0.0.2"]},
        temporary={"broken.test"},
    )

    async def main() -> None:
        assert await r.mx("A.test.") == [MxRecord(10, "mx.a.test")]
        assert (await r.mx("null.test"))[0].is_null
        assert await r.aaaa("mx.a.test") == []  # exists, no AAAA: NODATA
        with pytest.raises(NxDomain):
            await r.mx("nowhere.test")
        with pytest.raises(DnsTemporaryError):
            await r.a("broken.test")
        assert await r.txt("a.test") == []

    asyncio.run(main())
    assert r.queries[0] == ("MX", "a.test")


def test_parse_server() -> None:
    assert parse_server("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert parse_server("[::1]:53") == ("::1", 53)
    assert parse_server("127.0.0.1") == ("127.0.0.1", 53)


def test_real_resolver_against_loopback_server() -> None:
    async def main() -> None:
        async with LoopbackDnsServer(ZONE, servfail={"broken.test"}) as server:
            r = DnsResolver([server.address], timeout=2.0)
            assert sorted(await r.mx("example.test")) == [
                MxRecord(10, "mx1.example.test"),
                MxRecord(20, "mx2.example.test"),
            ]
            assert await r.a("mx1.example.test") == ["127.0.0.2"]
            assert await r.aaaa("mx1.example.test") == ["::1"]
            assert await r.aaaa("mx2.example.test") == []
            assert await r.mx("bare.test") == []
            null = await r.mx("nomail.test")
            assert len(null) == 1 and null[0].is_null
            assert await r.txt("example.test") == ["v=spf1 mx -all"]
            assert await r.txt("long.test") == ["a" * 255 + "bcd"]
            with pytest.raises(NxDomain):
                await r.mx("missing.test")
            with pytest.raises(DnsTemporaryError):
                await r.mx("broken.test")
            assert ("example.test", "MX") in server.queries

    asyncio.run(main())


def test_loopback_server_ignores_garbage() -> None:
    server = LoopbackDnsServer(ZONE)
    assert server.answer(b"\x00\x01garbage") is None
