"""Where mail for a domain goes: static routes, the smarthost, or DNS (MX, then A/AAAA).

Theory of operation, RFC 5321 section 5.1 (with RFC 7505 for null MX):

1. A static route for the domain (``[relay] routes``), then the smarthost
   (``[relay] smarthost``), win over DNS: the next hop is that ``host:port``.
2. An address literal (``user@[192.0.2.1]``, ``[IPv6:...]``) is its own next hop.
3. Otherwise MX records: NXDOMAIN fails permanently (5.1.2); a lookup failure is
   temporary (4.4.3); a null MX (``0 .``) fails permanently at once with 556 5.1.10
   (RFC 7505 section 4.2); no MX at all means the domain itself, preference 0 (the
   "implicit MX"). Hosts are sorted by preference, equal preferences shuffled
   (section 5.1: "randomize them to spread the load"). If our own host name is among
   them, it and every host of equal or lower preference are dropped; nothing left is
   a loop (5.4.6, permanent).
4. ``addresses`` turns one host into IP addresses: IPv6 (AAAA) then IPv4 (A), each
   tried in turn by the delivery. A host that does not exist is a permanent failure
   for that host (5.4.4); it only fails the message when every host does.

``Route.key`` groups domains that share next hops, so one connection carries mail for
all of them (connection reuse).
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Mapping
from dataclasses import dataclass

from postroom.dns.resolver import DnsError, NxDomain, Resolver
from postroom.smtp.codes import Reply

SMTP_PORT = 25
MAX_MX_HOSTS = 10  # bound the work for one domain (Postfix: smtp_mx_address_limit)


class RoutingError(Exception):
    """No route: ``reply`` is what the recipients get (4xx retry, 5xx fail)."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(str(reply))
        self.reply = reply


@dataclass(frozen=True, slots=True)
class NextHop:
    host: str  # a host name, or an IP address
    port: int = SMTP_PORT
    preference: int = 0


@dataclass(frozen=True, slots=True)
class Route:
    """The hosts to try in order. ``relay``: a smarthost (use its credentials)."""

    key: str
    hops: tuple[NextHop, ...]
    relay: bool = False


def parse_hostport(spec: str, default_port: int = SMTP_PORT) -> NextHop:
    """``"host:port"``, ``"[v6]:port"``, ``"host"`` -> NextHop."""
    spec = spec.strip()
    if spec.startswith("["):
        host, _, rest = spec[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else default_port
        return NextHop(host.removeprefix("IPv6:").removeprefix("ipv6:"), port)
    if spec.count(":") == 1:
        host, _, port_text = spec.partition(":")
        return NextHop(host, int(port_text))
    return NextHop(spec, default_port)


def ip_literal(host: str) -> str | None:
    """The textual IP when ``host`` is an address (or a ``[...]`` literal), else None."""
    text = host.strip("[]")
    if text.lower().startswith("ipv6:"):
        text = text[5:]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


class Router:
    def __init__(
        self,
        resolver: Resolver,
        hostname: str,
        *,
        smarthost: str = "",
        routes: Mapping[str, str] | None = None,
        mx_port: int = SMTP_PORT,
        ipv6: bool = True,
        rng: random.Random | None = None,
    ) -> None:
        self.resolver = resolver
        self.hostname = hostname.rstrip(".").lower()
        self.smarthost = parse_hostport(smarthost) if smarthost else None
        self.routes = {k.lower().rstrip("."): parse_hostport(v) for k, v in (routes or {}).items()}
        self.mx_port = mx_port
        self.ipv6 = ipv6
        self.rng = rng or random.Random()

    async def route(self, domain: str) -> Route:
        """The next hops for ``domain`` (A-label form). Raises ``RoutingError``."""
        domain = domain.rstrip(".").lower()
        static = self.routes.get(domain)
        if static is not None:
            return Route(f"route:{static.host}:{static.port}", (static,))
        if self.smarthost is not None:
            hop = self.smarthost
            return Route(f"relay:{hop.host}:{hop.port}", (hop,), relay=True)
        if domain.startswith("["):
            ip = ip_literal(domain)
            if ip is None:
                raise RoutingError(Reply(550, "5.1.2", f"Bad address literal {domain}"))
            return Route(f"ip:{ip}", (NextHop(ip, self.mx_port),))
        try:
            records = await self.resolver.mx(domain)
        except NxDomain:
            raise RoutingError(Reply(550, "5.1.2", f"Domain {domain} does not exist")) from None
        except DnsError as e:
            raise RoutingError(
                Reply(451, "4.4.3", f"DNS lookup for {domain} failed: {e}")
            ) from None
        usable = [r for r in records if r.exchange]
        if records and not usable:  # only "." exchanges: RFC 7505 section 3
            raise RoutingError(
                Reply(556, "5.1.10", f"Domain {domain} accepts no mail (null MX, RFC 7505)")
            )
        if not usable:  # no MX at all: RFC 5321 5.1, the implicit MX
            return Route(f"mx:{domain}", (NextHop(domain, self.mx_port, 0),))
        prefs = sorted({r.preference for r in usable})
        ordered: list[NextHop] = []
        for pref in prefs:
            group = [r.exchange for r in usable if r.preference == pref]
            self.rng.shuffle(group)
            ordered += [NextHop(h, self.mx_port, pref) for h in group]
        mine = [h.preference for h in ordered if h.host == self.hostname]
        if mine:
            ordered = [h for h in ordered if h.preference < min(mine)]
            if not ordered:
                raise RoutingError(Reply(554, "5.4.6", f"Mail for {domain} loops back to myself"))
        ordered = ordered[:MAX_MX_HOSTS]
        key = "mx:" + ",".join(sorted(f"{h.host}:{h.port}" for h in ordered))
        return Route(key, tuple(ordered))

    async def addresses(self, hop: NextHop) -> list[str]:
        """The IP addresses of ``hop``, IPv6 first. Raises ``RoutingError``: 5.4.4
        (permanent) when the host does not exist or has no address, 4.4.3 when DNS
        failed."""
        ip = ip_literal(hop.host)
        if ip is not None:
            return [ip]
        found: list[str] = []
        errors: list[DnsError] = []
        lookups = [self.resolver.aaaa, self.resolver.a] if self.ipv6 else [self.resolver.a]
        for lookup in lookups:
            try:
                found += await lookup(hop.host)
            except DnsError as e:
                errors.append(e)
        if found:
            return found
        if any(e.temporary for e in errors):
            raise RoutingError(Reply(451, "4.4.3", f"DNS lookup for {hop.host} failed"))
        raise RoutingError(
            Reply(
                550,
                "5.4.4",
                f"Host {hop.host} has no address" if not errors else f"Host {hop.host} not found",
            )
        )
