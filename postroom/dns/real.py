"""The real resolver: dnspython's asyncio stub resolver.

By default it reads the system configuration (``/etc/resolv.conf``); ``servers``
(``"127.0.0.1:5353"`` or ``"[::1]:53"`` or a bare address) replaces it, which is what
``[relay] dns_server`` in the configuration and the tests use. dnspython follows
CNAME chains itself. Its exceptions are mapped onto ``resolver.DnsError``:
NXDOMAIN -> ``NxDomain``; NoAnswer -> empty list; everything else (SERVFAIL from
every server, timeouts, no nameservers) -> ``DnsTemporaryError``.
"""

from __future__ import annotations

from collections.abc import Sequence

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.rdatatype
import dns.resolver

from postroom.dns.resolver import DnsTemporaryError, MxRecord, NxDomain


def parse_server(spec: str) -> tuple[str, int]:
    """``"addr:port"``, ``"[v6]:port"``, ``"addr"`` -> (address, port)."""
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else 53
    if spec.count(":") == 1:
        host, _, port = spec.partition(":")
        return host, int(port)
    return spec, 53


class DnsResolver:
    """``Resolver`` on dnspython. ``timeout`` bounds each whole lookup (seconds)."""

    def __init__(self, servers: Sequence[str] = (), *, timeout: float = 10.0) -> None:
        if servers:
            self._resolver = dns.asyncresolver.Resolver(configure=False)
            self._resolver.nameservers = [
                dns.nameserver.Do53Nameserver(*parse_server(s)) for s in servers
            ]
        else:
            self._resolver = dns.asyncresolver.Resolver()
        self._resolver.lifetime = timeout
        self._resolver.cache = dns.resolver.LRUCache(4096)

    async def _query(self, name: str, rdtype: str) -> dns.resolver.Answer | None:
        try:
            return await self._resolver.resolve(name.rstrip(".") + ".", rdtype, search=False)
        except dns.resolver.NXDOMAIN:
            raise NxDomain(f"{name}: no such domain") from None
        except dns.resolver.NoAnswer:
            return None
        except (dns.exception.DNSException, OSError) as e:
            raise DnsTemporaryError(f"{name} {rdtype}: {e.__class__.__name__}: {e}") from None

    async def mx(self, domain: str) -> list[MxRecord]:
        answer = await self._query(domain, "MX")
        if answer is None:
            return []
        out: list[MxRecord] = []
        for rr in answer:
            exchange = rr.exchange.to_text(omit_final_dot=True).lower()
            out.append(MxRecord(int(rr.preference), "" if exchange in ("", ".", "@") else exchange))
        return out

    async def _addresses(self, host: str, rdtype: str) -> list[str]:
        answer = await self._query(host, rdtype)
        return [] if answer is None else [rr.address for rr in answer]

    async def a(self, host: str) -> list[str]:
        return await self._addresses(host, "A")

    async def aaaa(self, host: str) -> list[str]:
        return await self._addresses(host, "AAAA")

    async def txt(self, name: str) -> list[str]:
        answer = await self._query(name, "TXT")
        if answer is None:
            return []
        return [b"".join(rr.strings).decode("utf-8", "replace") for rr in answer]
