"""Slowing down password guessing: failed logins per client address.

Theory of operation: one ``AuthThrottle`` is shared by every SMTP, IMAP and POP3
session in the process, so an attacker cannot spread guesses across protocols. For
each client network (an IPv4 address; an IPv6 /64, since one host usually owns a whole
/64) it remembers the times of recent failures:

* each failure is answered late: 0.5 s after the first, then 1, 2, 4 ... s, capped
  (``failure_delay``); a success is never delayed;
* a failure is forgotten after ``window`` seconds, so the delay decays on its own;
* ``block_after`` failures within the window block the network for ``block_for``
  seconds (``is_blocked``): the shell refuses to authenticate at all, with the same
  answer a wrong password gets, so the block itself leaks nothing about accounts;
* a success forgets that network's failures (a user who mistyped is not punished
  later), but does not lift a block.

Memory is bounded: at most ``max_tracked`` networks, least recently failing evicted
first; forgotten entries are dropped as new failures come in. Time comes from an
injected clock so tests never sleep.

A shell uses it like this::

    if throttle.is_blocked(ip): answer failure (no mechanism is run)
    outcome = await run_sasl(...)
    if failed: throttle.record_failure(ip); await asyncio.sleep(throttle.failure_delay(ip))
    else: throttle.record_success(ip)
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["AuthThrottle", "ThrottleSettings", "client_key"]


@dataclass(frozen=True, slots=True)
class ThrottleSettings:
    """Policy for ``AuthThrottle``; times in seconds."""

    window: float = 15 * 60.0  # how long a failure counts
    base_delay: float = 0.5  # delay after the first failure; doubles with each one
    max_delay: float = 15.0
    block_after: int = 20  # failures within the window that block the network
    block_for: float = 15 * 60.0
    max_tracked: int = 100_000  # networks remembered at once
    ipv6_prefix: int = 64

    def __post_init__(self) -> None:
        if self.block_after < 1 or self.max_tracked < 1:
            raise ValueError("block_after and max_tracked must be at least 1")
        if not 0 <= self.ipv6_prefix <= 128:
            raise ValueError("ipv6_prefix must be within 0..128")


@dataclass(slots=True)
class _Record:
    failures: deque[float]  # times of failures within the window, oldest first
    blocked_until: float = field(default=float("-inf"))


def client_key(ip: str, ipv6_prefix: int = 64) -> str:
    """The network ``ip`` is counted under: the IPv4 address itself (also for an
    IPv4-mapped IPv6 address, RFC 4291 §2.5.5.2), or the IPv6 /``ipv6_prefix``.
    Something that is not an IP address (a Unix socket peer) is its own key."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv4Address):
        return str(addr)
    if addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    # int() drops a zone index ("fe80::1%eth0"); the network is the same either way.
    network = ipaddress.IPv6Network((int(addr), ipv6_prefix), strict=False)
    return str(network)


class AuthThrottle:
    """Failed-login bookkeeping per client network; see the module docstring."""

    def __init__(
        self,
        settings: ThrottleSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings if settings is not None else ThrottleSettings()
        self._clock = clock
        # Ordered by last failure, oldest first: eviction and expiry pop from the front.
        self._records: OrderedDict[str, _Record] = OrderedDict()
        # Told of every failure (False) and success (True) recorded here, so that other
        # worker processes (postroom/workers.py) can count them too.
        self.on_record: Callable[[str, bool], None] | None = None

    def __len__(self) -> int:
        """How many networks are tracked (for tests and metrics)."""
        return len(self._records)

    def failure_delay(self, ip: str) -> float:
        """Seconds to wait before answering a failure: 0 with no recent failure, else
        ``base_delay * 2**(n-1)`` for n recent failures, at most ``max_delay``."""
        record = self._current(ip)
        if record is None or not record.failures:
            return 0.0
        n = len(record.failures)
        s = self.settings
        return min(s.max_delay, s.base_delay * 2.0 ** min(n - 1, 64))

    def is_blocked(self, ip: str) -> bool:
        """True while the network of ``ip`` is blocked after too many failures."""
        record = self._current(ip)
        return record is not None and self._clock() < record.blocked_until

    def record_failure(self, ip: str, notify: bool = True) -> None:
        """Count one failed authentication from ``ip``; ``notify=False`` for one that
        another worker process reported."""
        if notify and self.on_record is not None:
            self.on_record(ip, False)
        now = self._clock()
        s = self.settings
        key = client_key(ip, s.ipv6_prefix)
        record = self._records.get(key)
        if record is None:
            record = _Record(deque(maxlen=s.block_after))
            self._records[key] = record
        else:
            self._expire(record, now)
            self._records.move_to_end(key)
        record.failures.append(now)
        if len(record.failures) >= s.block_after:
            record.blocked_until = now + s.block_for
        self._evict(now)

    def record_success(self, ip: str, notify: bool = True) -> None:
        """Forget the failures of the network of ``ip`` (not a block in force); other
        networks are untouched."""
        if notify and self.on_record is not None:
            self.on_record(ip, True)
        key = client_key(ip, self.settings.ipv6_prefix)
        record = self._records.get(key)
        if record is not None and not self._clock() < record.blocked_until:
            del self._records[key]

    # --- sharing between worker processes ----------------------------------------------

    def snapshot(self) -> list[tuple[str, float, list[float]]]:
        """(network key, blocked until, failure times) of every network remembered now;
        times are ``clock`` readings (CLOCK_MONOTONIC is the same in every process)."""
        now = self._clock()
        out = []
        for key, record in self._records.items():
            if not self._stale(record, now):
                out.append((key, record.blocked_until, list(record.failures)))
        return out

    def restore(self, key: str, blocked_until: float, failures: list[float]) -> None:
        """Take in one network of another process's ``snapshot`` (a worker that just
        started learns what the others counted). Every worker heard of every failure, so
        the snapshots of several agree up to timing: keep the longest list of failures
        and the latest block, never a sum (which would count a failure twice)."""
        s = self.settings
        record = self._records.get(key)
        if record is None:
            record = self._records[key] = _Record(deque(maxlen=s.block_after))
        if len(failures) > len(record.failures):
            record.failures.clear()
            record.failures.extend(sorted(failures)[-s.block_after:])
        record.blocked_until = max(record.blocked_until, blocked_until)
        self._expire(record, self._clock())
        self._evict(self._clock())

    # --- internals ------------------------------------------------------------------

    def _current(self, ip: str) -> _Record | None:
        record = self._records.get(client_key(ip, self.settings.ipv6_prefix))
        if record is not None:
            self._expire(record, self._clock())
        return record

    def _expire(self, record: _Record, now: float) -> None:
        horizon = now - self.settings.window
        while record.failures and record.failures[0] <= horizon:
            record.failures.popleft()

    def _stale(self, record: _Record, now: float) -> bool:
        self._expire(record, now)
        return not record.failures and not now < record.blocked_until

    def _evict(self, now: float) -> None:
        # Drop forgotten networks from the front (amortised O(1) per failure) ...
        while self._records:
            oldest = next(iter(self._records.values()))
            if not self._stale(oldest, now):
                break
            self._records.popitem(last=False)
        # ... and keep the table bounded even under a flood of fresh addresses.
        while len(self._records) > self.settings.max_tracked:
            self._records.popitem(last=False)
