"""When to try again, when to give up, and which notification an attempt owes.

Theory of operation: ``decide`` is a pure function of one recipient, the reply its
attempt got, the item's arrival time and ``now`` (an injected clock, so tests run a
five-day retry schedule in microseconds). It returns the recipient's new state and
the DSN action, if any (RFC 3464 section 2.3.3: failed, delayed, delivered, relayed):

* 2xx: delivered. A "relayed" DSN is owed when NOTIFY asked for SUCCESS and the next
  hop did not take over DSN duty (it did not offer DSN; RFC 3461 section 5.2.2).
* 5xx: failed now, no retry (RFC 5321 section 4.2.1: the same request must not be
  repeated); a failure DSN unless NOTIFY excludes it.
* 4xx: retried after ``first_retry`` seconds, doubling (``factor``) up to
  ``max_interval``; the last attempt is made at ``max_age`` after arrival (RFC 5321
  section 4.5.4.1 suggests giving up after 4-5 days), and a 4xx then fails the
  recipient with status 4.4.7 (RFC 3463: delivery time expired).
* A delay warning ("delayed" DSN), when ``delay_warning`` is set, goes out once: with
  the attempt whose scheduled time is the first at or past ``delay_warning`` seconds
  after arrival (``warning_attempt``). Tying it to the attempt count, not to a stored
  flag, needs no extra column and still sends at most one warning per recipient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from postroom.queue.models import (
    DELIVERED,
    FAILED,
    PENDING,
    QueueRecipient,
    RecipientState,
    RecipientUpdate,
    wants,
)
from postroom.smtp.codes import Reply

DsnAction = Literal["failed", "delayed", "delivered", "relayed"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    first_retry: float = 300.0  # 5 minutes
    factor: float = 2.0
    max_interval: float = 4 * 3600.0  # 4 hours
    max_age: float = 5 * 86400.0  # 5 days
    delay_warning: float | None = None  # e.g. 4 * 3600: warn after 4 hours

    def interval(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed attempt (1-based)."""
        n = max(attempts, 1) - 1
        return float(min(self.first_retry * self.factor ** min(n, 64), self.max_interval))

    def warning_attempt(self) -> int | None:
        """The attempt number (1-based) that sends the delay warning, or None."""
        if self.delay_warning is None:
            return None
        age = 0.0
        attempt = 1
        while age < self.delay_warning:
            age += self.interval(attempt)
            attempt += 1
            if age >= self.max_age:
                return None  # the message expires before a warning is due
        return attempt


@dataclass(frozen=True, slots=True)
class Decision:
    update: RecipientUpdate
    dsn: DsnAction | None
    reply: Reply  # what the DSN reports (the remote reply, or ours on expiry)


EXPIRED_STATUS = "4.4.7"


def decide(
    recipient: QueueRecipient,
    reply: Reply,
    *,
    created: float,
    now: float,
    policy: RetryPolicy,
    peer_dsn: bool,
    null_sender: bool,
) -> Decision:
    """The outcome of one attempt for ``recipient`` that got ``reply``."""
    attempts = recipient.attempts + 1
    state: RecipientState
    dsn: DsnAction | None = None
    shown = reply
    if reply.positive:
        state, next_attempt = DELIVERED, now
        if not peer_dsn and wants(recipient.notify, "SUCCESS"):
            dsn = "relayed"
    elif reply.permanent:
        state, next_attempt = FAILED, now
        if wants(recipient.notify, "FAILURE"):
            dsn = "failed"
    else:
        deadline = created + policy.max_age
        if now >= deadline:
            state, next_attempt = FAILED, now
            shown = Reply(reply.code, EXPIRED_STATUS, f"Delivery time expired; last reply: {reply}")
            if wants(recipient.notify, "FAILURE"):
                dsn = "failed"
        else:
            state = PENDING
            next_attempt = min(now + policy.interval(attempts), deadline)
            if attempts == policy.warning_attempt() and wants(recipient.notify, "DELAY"):
                dsn = "delayed"
    if null_sender:
        dsn = None  # RFC 5321 section 4.5.5 / RFC 3461: never notify the null sender
    update = RecipientUpdate(recipient.id, state, attempts, next_attempt, str(shown))
    return Decision(update, dsn, shown)
