"""MX routing (RFC 5321 section 5.1, RFC 7505) with a mock resolver."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from postroom.dns.mock import MockResolver
from postroom.queue.routing import NextHop, Router, RoutingError, parse_hostport

RESOLVER = MockResolver(
    mx={
        "multi.test": [
            (20, "c.multi.test"),
            (10, "a.multi.test"),
            (10, "b.multi.test"),
            (30, "d.multi.test"),
        ],
        "null.test": [(0, ".")],
        "self.test": [(10, "mail.here.test"), (5, "backup.self.test"), (20, "low.self.test")],
        "onlyself.test": [(10, "mail.here.test")],
    },
    a={
        "bare.test": ["127.0.0.9"],
        "a.multi.test": ["127.0.0.2"],
        "b.multi.test": ["127.0.0.3"],
        "v6.test": ["127.0.0.5"],
    },
    aaaa={"v6.test": ["::1"]},
    temporary={"broken.test", "flaky-host.test"},
)


def route(domain: str, **kw: Any) -> Any:
    router = Router(RESOLVER, "mail.here.test", **kw)
    return asyncio.run(router.route(domain))


def error(domain: str) -> str:
    with pytest.raises(RoutingError) as e:
        route(domain)
    return str(e.value.reply)


def test_mx_sorted_by_preference_equal_ones_shuffled() -> None:
    orders = set()
    for seed in range(20):
        r = route("multi.test", rng=random.Random(seed))
        hosts = [h.host for h in r.hops]
        assert hosts[2:] == ["c.multi.test", "d.multi.test"]
        orders.add(tuple(hosts[:2]))
    assert orders == {("a.multi.test", "b.multi.test"), ("b.multi.test", "a.multi.test")}


def test_implicit_mx_when_no_mx_records() -> None:
    r = route("bare.test")
    assert r.hops == (NextHop("bare.test", 25, 0),)


def test_null_mx_fails_permanently_at_once() -> None:
    assert error("null.test").startswith("556 5.1.10")


def test_nxdomain_and_temporary_failure() -> None:
    assert error("nowhere.test").startswith("550 5.1.2")
    assert error("broken.test").startswith("451 4.4.3")


def test_our_own_name_drops_it_and_lower_preferences() -> None:
    assert [h.host for h in route("self.test").hops] == ["backup.self.test"]
    assert error("onlyself.test").startswith("554 5.4.6")


def test_static_route_and_smarthost_win_over_dns() -> None:
    r = route("null.test", routes={"null.test": "127.0.0.7:2525"})
    assert r.hops == (NextHop("127.0.0.7", 2525),) and not r.relay
    r = route("anything.test", smarthost="relay.test:587")
    assert r.hops == (NextHop("relay.test", 587),) and r.relay
    assert r.key == route("other.test", smarthost="relay.test:587").key


def test_address_literal_is_its_own_next_hop() -> None:
    assert route("[127.0.0.8]").hops == (NextHop("127.0.0.8", 25),)
    assert route("[IPv6:::1]").hops == (NextHop("::1", 25),)


def test_parse_hostport() -> None:
    assert parse_hostport("[::1]:26") == NextHop("::1", 26)
    assert parse_hostport("h.test") == NextHop("h.test", 25)


def test_addresses_ipv6_first_and_failures() -> None:
    router = Router(RESOLVER, "mail.here.test")

    async def main() -> None:
        assert await router.addresses(NextHop("v6.test")) == ["::1", "127.0.0.5"]
        assert await router.addresses(NextHop("127.0.0.1")) == ["127.0.0.1"]
        with pytest.raises(RoutingError) as e:
            await router.addresses(NextHop("ghost.test"))
        assert e.value.reply.enhanced == "5.4.4"
        with pytest.raises(RoutingError) as e:
            await router.addresses(NextHop("flaky-host.test"))
        assert e.value.reply.transient

    asyncio.run(main())
    v4only = Router(RESOLVER, "mail.here.test", ipv6=False)
    assert asyncio.run(v4only.addresses(NextHop("v6.test"))) == ["127.0.0.5"]
