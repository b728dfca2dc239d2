"""A resolver answering from dicts, for tests (no network, no timing).

    MockResolver(
        mx={"example.org": [(10, "mx1.example.org"), (20, "mx2.example.org")],
            "nomail.test": [(0, ".")]},
        a={"mx1.example.org": ["127.0.0.2"]},
        aaaa={"mx1.example.org": ["::1"]},
        txt={"sel._domainkey.example.org": ["v=DKIM1; p=..."]},
        temporary={"broken.test"},
    )

A name exists when it appears in any table (or below one: ``a.b`` makes ``b`` exist,
as DNS empty non-terminals do); then a missing type is NODATA (empty list), otherwise
the name is NXDOMAIN. Names in ``temporary`` fail with ``DnsTemporaryError``.
``queries`` records every ``(type, name)`` asked, in order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from postroom.dns.resolver import DnsTemporaryError, MxRecord, NxDomain, normalize_name


def _norm(table: Mapping[str, Sequence[str]] | None) -> dict[str, list[str]]:
    return {normalize_name(k): list(v) for k, v in (table or {}).items()}


class MockResolver:
    def __init__(
        self,
        *,
        mx: Mapping[str, Sequence[tuple[int, str]]] | None = None,
        a: Mapping[str, Sequence[str]] | None = None,
        aaaa: Mapping[str, Sequence[str]] | None = None,
        txt: Mapping[str, Sequence[str]] | None = None,
        temporary: Iterable[str] = (),
    ) -> None:
        self.mx_table = {
            normalize_name(k): [MxRecord(p, normalize_name(h)) for p, h in v]
            for k, v in (mx or {}).items()
        }
        self.a_table = _norm(a)
        self.aaaa_table = _norm(aaaa)
        self.txt_table = _norm(txt)
        self.temporary = {normalize_name(n) for n in temporary}
        self.queries: list[tuple[str, str]] = []

    def _exists(self, name: str) -> bool:
        for table in (self.mx_table, self.a_table, self.aaaa_table, self.txt_table):
            for key in table:
                if key == name or key.endswith("." + name):
                    return True
        return False

    def _check(self, rdtype: str, name: str) -> str:
        key = normalize_name(name)
        self.queries.append((rdtype, key))
        if key in self.temporary:
            raise DnsTemporaryError(f"{name} {rdtype}: SERVFAIL (mock)")
        if not self._exists(key):
            raise NxDomain(f"{name}: no such domain (mock)")
        return key

    async def mx(self, domain: str) -> list[MxRecord]:
        return list(self.mx_table.get(self._check("MX", domain), []))

    async def a(self, host: str) -> list[str]:
        return list(self.a_table.get(self._check("A", host), []))

    async def aaaa(self, host: str) -> list[str]:
        return list(self.aaaa_table.get(self._check("AAAA", host), []))

    async def txt(self, name: str) -> list[str]:
        return list(self.txt_table.get(self._check("TXT", name), []))
