"""Retry schedule and per-recipient decisions (pure functions, fake times)."""

from __future__ import annotations

from postroom.queue.models import QueueRecipient, notify_text, parse_notify, wants
from postroom.queue.scheduler import RetryPolicy, decide
from postroom.smtp.codes import Reply

P = RetryPolicy()
OK = Reply(250, "2.0.0", "OK")
GREY = Reply(451, "4.7.1", "Greylisted")
NO = Reply(550, "5.1.1", "No such user")


def rcpt(notify: str = "", attempts: int = 0) -> QueueRecipient:
    return QueueRecipient(7, "b@x.test", notify, attempts=attempts)


def test_backoff_doubles_from_5_minutes_capped_at_4_hours() -> None:
    assert [P.interval(n) for n in range(1, 9)] == [300, 600, 1200, 2400, 4800, 9600, 14400, 14400]


def test_transient_reply_is_retried_later() -> None:
    d = decide(rcpt(), GREY, created=1000, now=1000, policy=P, peer_dsn=False, null_sender=False)
    assert d.update.state == "pending" and d.update.next_attempt == 1300
    assert d.update.attempts == 1 and d.dsn is None
    d = decide(
        rcpt(attempts=3), GREY, created=1000, now=5000, policy=P, peer_dsn=False, null_sender=False
    )
    assert d.update.next_attempt == 5000 + 2400


def test_last_attempt_is_at_max_age_then_expiry_fails_with_4_4_7() -> None:
    created = 0.0
    d = decide(
        rcpt(attempts=30),
        GREY,
        created=created,
        now=P.max_age - 60,
        policy=P,
        peer_dsn=False,
        null_sender=False,
    )
    assert d.update.state == "pending" and d.update.next_attempt == P.max_age
    d = decide(
        rcpt(attempts=31),
        GREY,
        created=created,
        now=P.max_age,
        policy=P,
        peer_dsn=False,
        null_sender=False,
    )
    assert d.update.state == "failed" and d.dsn == "failed"
    assert d.reply.enhanced == "4.4.7" and "Greylisted" in d.reply.text


def test_permanent_reply_fails_at_once_with_a_dsn_unless_never() -> None:
    d = decide(rcpt(), NO, created=0, now=1, policy=P, peer_dsn=True, null_sender=False)
    assert d.update.state == "failed" and d.dsn == "failed"
    d = decide(rcpt("NEVER"), NO, created=0, now=1, policy=P, peer_dsn=True, null_sender=False)
    assert d.dsn is None
    d = decide(rcpt("SUCCESS"), NO, created=0, now=1, policy=P, peer_dsn=True, null_sender=False)
    assert d.dsn is None  # NOTIFY given without FAILURE


def test_null_sender_never_gets_a_dsn() -> None:
    d = decide(rcpt(), NO, created=0, now=1, policy=P, peer_dsn=True, null_sender=True)
    assert d.update.state == "failed" and d.dsn is None


def test_success_notify_gives_relayed_only_when_next_hop_lacks_dsn() -> None:
    d = decide(rcpt("SUCCESS"), OK, created=0, now=1, policy=P, peer_dsn=False, null_sender=False)
    assert d.update.state == "delivered" and d.dsn == "relayed"
    d = decide(rcpt("SUCCESS"), OK, created=0, now=1, policy=P, peer_dsn=True, null_sender=False)
    assert d.dsn is None
    d = decide(rcpt(), OK, created=0, now=1, policy=P, peer_dsn=False, null_sender=False)
    assert d.dsn is None


def test_delay_warning_once_at_the_attempt_past_the_threshold() -> None:
    policy = RetryPolicy(delay_warning=3600)
    # attempts at ages 0, 300, 900, 2100, 4500: the fifth is the first past one hour
    assert policy.warning_attempt() == 5
    dsns = [
        decide(
            rcpt(attempts=n),
            GREY,
            created=0,
            now=10,
            policy=policy,
            peer_dsn=False,
            null_sender=False,
        ).dsn
        for n in range(8)
    ]
    assert dsns == [None, None, None, None, "delayed", None, None, None]
    assert RetryPolicy().warning_attempt() is None
    assert RetryPolicy(delay_warning=10 * 86400).warning_attempt() is None


def test_notify_text_round_trip() -> None:
    assert notify_text(frozenset({"FAILURE", "SUCCESS"})) == "SUCCESS,FAILURE"
    assert parse_notify("SUCCESS,FAILURE") == {"SUCCESS", "FAILURE"}
    assert parse_notify("") is None and notify_text(None) == ""
    assert wants("", "FAILURE") and not wants("", "SUCCESS") and not wants("NEVER", "FAILURE")
