"""AuthThrottle with a fake clock: no test sleeps."""

from __future__ import annotations

import pytest

from postroom.auth.throttle import AuthThrottle, ThrottleSettings, client_key


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def throttle(clock: FakeClock) -> AuthThrottle:
    return AuthThrottle(clock=clock)


def test_no_failures_no_delay(throttle: AuthThrottle) -> None:
    assert throttle.failure_delay("192.0.2.1") == 0.0
    assert not throttle.is_blocked("192.0.2.1")
    assert len(throttle) == 0  # asking does not create entries


def test_delay_doubles_up_to_the_cap(throttle: AuthThrottle) -> None:
    delays = []
    for _ in range(8):
        throttle.record_failure("192.0.2.1")
        delays.append(throttle.failure_delay("192.0.2.1"))
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0]


def test_failures_decay_after_the_window(throttle: AuthThrottle, clock: FakeClock) -> None:
    throttle.record_failure("192.0.2.1")
    clock.advance(600)
    throttle.record_failure("192.0.2.1")
    assert throttle.failure_delay("192.0.2.1") == 1.0
    clock.advance(301)  # the first failure is now 901 s old: forgotten
    assert throttle.failure_delay("192.0.2.1") == 0.5
    clock.advance(600)
    assert throttle.failure_delay("192.0.2.1") == 0.0


def test_block_after_twenty_failures(throttle: AuthThrottle, clock: FakeClock) -> None:
    for _ in range(19):
        throttle.record_failure("192.0.2.1")
    assert not throttle.is_blocked("192.0.2.1")
    throttle.record_failure("192.0.2.1")
    assert throttle.is_blocked("192.0.2.1")
    assert not throttle.is_blocked("192.0.2.2")  # other addresses are not affected
    clock.advance(899)
    assert throttle.is_blocked("192.0.2.1")
    clock.advance(2)
    assert not throttle.is_blocked("192.0.2.1")
    assert throttle.failure_delay("192.0.2.1") == 0.0


def test_slow_guessing_never_blocks(throttle: AuthThrottle, clock: FakeClock) -> None:
    for _ in range(100):
        throttle.record_failure("192.0.2.1")
        clock.advance(60)  # 15 failures per window at most
    assert not throttle.is_blocked("192.0.2.1")


def test_success_forgets_failures_of_that_address_only(throttle: AuthThrottle) -> None:
    for ip in ("192.0.2.1", "192.0.2.2"):
        throttle.record_failure(ip)
        throttle.record_failure(ip)
    throttle.record_success("192.0.2.1")
    assert throttle.failure_delay("192.0.2.1") == 0.0
    assert throttle.failure_delay("192.0.2.2") == 1.0


def test_success_does_not_lift_a_block(throttle: AuthThrottle) -> None:
    for _ in range(20):
        throttle.record_failure("192.0.2.1")
    throttle.record_success("192.0.2.1")
    assert throttle.is_blocked("192.0.2.1")


def test_ipv6_counts_per_64(throttle: AuthThrottle) -> None:
    throttle.record_failure("2001:db8:1:2::1")
    throttle.record_failure("2001:db8:1:2:ffff::9")
    assert throttle.failure_delay("2001:db8:1:2::abcd") == 1.0
    assert throttle.failure_delay("2001:db8:1:3::1") == 0.0


@pytest.mark.parametrize(
    ("ip", "key"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8::1", "2001:db8::/64"),
        ("2001:DB8:0:0:1::1", "2001:db8::/64"),
        ("::ffff:192.0.2.1", "192.0.2.1"),  # IPv4-mapped: the IPv4 address
        ("fe80::1%eth0", "fe80::/64"),
        ("not an address", "not an address"),
    ],
)
def test_client_key(ip: str, key: str) -> None:
    assert client_key(ip) == key


def test_memory_is_bounded(clock: FakeClock) -> None:
    throttle = AuthThrottle(ThrottleSettings(max_tracked=3), clock=clock)
    for i in range(1, 6):
        throttle.record_failure(f"192.0.2.{i}")
        clock.advance(1)
    assert len(throttle) == 3
    assert throttle.failure_delay("192.0.2.1") == 0.0  # oldest evicted
    assert throttle.failure_delay("192.0.2.5") == 0.5


def test_a_new_failure_makes_an_address_recent_again(clock: FakeClock) -> None:
    throttle = AuthThrottle(ThrottleSettings(max_tracked=2), clock=clock)
    throttle.record_failure("192.0.2.1")
    throttle.record_failure("192.0.2.2")
    throttle.record_failure("192.0.2.1")
    throttle.record_failure("192.0.2.3")  # evicts .2, the least recently failing
    assert throttle.failure_delay("192.0.2.1") == 1.0
    assert throttle.failure_delay("192.0.2.2") == 0.0


def test_forgotten_entries_are_dropped(throttle: AuthThrottle, clock: FakeClock) -> None:
    for i in range(1, 50):
        throttle.record_failure(f"192.0.2.{i}")
    clock.advance(901)
    throttle.record_failure("198.51.100.1")
    assert len(throttle) == 1


def test_blocked_entries_survive_expiry_of_their_failures(clock: FakeClock) -> None:
    settings = ThrottleSettings(window=60, block_after=3, block_for=600)
    throttle = AuthThrottle(settings, clock=clock)
    for _ in range(3):
        throttle.record_failure("192.0.2.1")
    clock.advance(120)  # failures forgotten, block still in force
    throttle.record_failure("198.51.100.1")
    assert throttle.is_blocked("192.0.2.1")


def test_default_clock_is_monotonic() -> None:
    throttle = AuthThrottle()
    throttle.record_failure("192.0.2.1")
    assert throttle.failure_delay("192.0.2.1") == 0.5


@pytest.mark.parametrize("bad", [{"block_after": 0}, {"max_tracked": 0}, {"ipv6_prefix": 129}])
def test_settings_are_validated(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        ThrottleSettings(**bad)


def test_snapshot_restores_in_another_throttle(clock: FakeClock) -> None:
    """A worker process that starts takes in what the others counted (postroom/workers.py):
    the same delays and blocks; restoring twice counts nothing twice."""
    first = AuthThrottle(clock=clock)
    for _ in range(3):
        first.record_failure("192.0.2.7")
        clock.advance(1)
    for _ in range(20):
        first.record_failure("2001:db8::1")
    second = AuthThrottle(clock=clock)
    for _ in range(2):
        for key, until, times in first.snapshot():
            second.restore(key, until, times)
    assert second.failure_delay("192.0.2.7") == first.failure_delay("192.0.2.7") == 2.0
    assert second.is_blocked("2001:db8::99") and not second.is_blocked("192.0.2.7")
    assert first.snapshot() == second.snapshot()
    clock.advance(16 * 60)
    assert second.snapshot() == [] and second.failure_delay("192.0.2.7") == 0.0
