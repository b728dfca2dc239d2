"""A tiny authoritative DNS server on loopback UDP, for tests of the real resolver.

    zone = {
        "example.test": {"MX": ["10 mx.example.test."]},
        "mx.example.test": {"A": ["127.0.0.2"], "AAAA": ["::1"]},
        "nomail.test": {"MX": ["0 ."]},
    }
    async with LoopbackDnsServer(zone) as server:
        resolver = DnsResolver([server.address])     # "127.0.0.1:<port>"

Records are in presentation format (``dns.rdata.from_text``), so any type dnspython
knows works (TXT: ``'"v=spf1 -all"'``). A name in the zone without the asked type
answers NOERROR with an empty answer (NODATA); a name not in the zone answers
NXDOMAIN; names in ``servfail`` answer SERVFAIL. Queries are parsed and answers built
with dnspython's message module; nothing here is meant to face the network (it binds
127.0.0.1 by default and answers only what the zone says). ``queries`` records
``(name, type)`` of every question.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import cast

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from postroom.dns.resolver import normalize_name

Zone = Mapping[str, Mapping[str, Sequence[str]]]


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, server: LoopbackDnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector transport does not subclass DatagramTransport; it has its API.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        reply = self.server.answer(data)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


class LoopbackDnsServer:
    """Serves ``zone`` over UDP on ``host`` (port 0: the system picks; see ``port``)."""

    def __init__(
        self,
        zone: Zone,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        servfail: Iterable[str] = (),
        ttl: int = 300,
    ) -> None:
        self.zone = {
            normalize_name(k): {t.upper(): list(v) for t, v in types.items()}
            for k, types in zone.items()
        }
        self.host = host
        self.port = port
        self.servfail = {normalize_name(n) for n in servfail}
        self.ttl = ttl
        self.queries: list[tuple[str, str]] = []
        self._transport: asyncio.DatagramTransport | None = None

    @property
    def address(self) -> str:
        """``"127.0.0.1:<port>"``, the form ``DnsResolver`` and the config take."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=(self.host, self.port)
        )
        self._transport = transport
        self.port = int(transport.get_extra_info("sockname")[1])

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def __aenter__(self) -> LoopbackDnsServer:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def answer(self, wire: bytes) -> bytes | None:
        """The response to one query in wire format, or None for garbage."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        for question in query.question:
            name = normalize_name(question.name.to_text())
            rdtype = dns.rdatatype.to_text(question.rdtype)
            self.queries.append((name, rdtype))
            if name in self.servfail:
                response.set_rcode(dns.rcode.SERVFAIL)
                continue
            if name not in self.zone:
                response.set_rcode(dns.rcode.NXDOMAIN)
                continue
            texts = self.zone[name].get(rdtype, [])
            if texts:
                response.answer.append(
                    dns.rrset.from_text_list(question.name, self.ttl, "IN", rdtype, texts)
                )
        return response.to_wire()
