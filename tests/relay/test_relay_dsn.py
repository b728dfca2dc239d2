"""DSN messages (RFC 3464) read back with the standard library's parser."""

from __future__ import annotations

import email
import email.message
import email.policy

from postroom.queue.dsn import DsnRecipient, build_dsn, header_section, returns_full, status_of
from postroom.smtp.codes import Reply

ORIGINAL = (
    b"From: a@here.test\r\nTo: b@x.test\r\nSubject: Lunch\r\nMessage-ID: <m1@here>\r\n"
    b"\r\nSee you at noon.\r\n"
)


def parse(data: bytes) -> email.message.Message:
    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF only
    return email.message_from_bytes(data, policy=email.policy.compat32)


def dsn(full: bool, recipients: list[DsnRecipient], **kw: object) -> email.message.Message:
    data = build_dsn(
        reporting_mta="mail.here.test",
        sender="a@here.test",
        recipients=recipients,
        original=ORIGINAL,
        full=full,
        arrival=1_700_000_000,
        now=1_700_000_100,
        **kw,
    )  # type: ignore[arg-type]
    return parse(data)


def test_failure_report_structure_and_fields() -> None:
    msg = dsn(
        True,
        [
            DsnRecipient(
                "b@x.test",
                "failed",
                Reply(550, "5.1.1", "No such user"),
                orcpt="rfc822;B@X.test",
                remote_mta="mx.x.test",
                last_attempt=1_700_000_100,
            )
        ],
        envid="env-1",
    )
    assert msg["To"] == "<a@here.test>"
    assert msg["From"] == "Mail Delivery System <MAILER-DAEMON@mail.here.test>"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"
    text, status, original = msg.get_payload()  # type: ignore[misc]
    assert "b@x.test" in text.get_payload()
    assert status.get_content_type() == "message/delivery-status"
    per_message, per_rcpt = status.get_payload()
    assert per_message["Reporting-MTA"] == "dns; mail.here.test"
    assert per_message["Original-Envelope-Id"] == "env-1"
    assert per_rcpt["Final-Recipient"] == "rfc822; b@x.test"
    assert per_rcpt["Original-Recipient"] == "rfc822; B@X.test"
    assert per_rcpt["Action"] == "failed"
    assert per_rcpt["Status"] == "5.1.1"
    assert per_rcpt["Remote-MTA"] == "dns; mx.x.test"
    assert per_rcpt["Diagnostic-Code"] == "smtp; 550 5.1.1 No such user"
    assert original.get_content_type() == "message/rfc822"
    assert original.get_payload()[0]["Subject"] == "Lunch"


def test_headers_only_and_delay_fields() -> None:
    msg = dsn(
        False,
        [
            DsnRecipient(
                "b@x.test",
                "delayed",
                Reply(451, "4.7.1", "Greylisted"),
                will_retry_until=1_700_400_000,
            )
        ],
    )
    assert msg["Subject"].startswith("Delayed Mail")
    _, status, original = msg.get_payload()  # type: ignore[misc]
    assert status.get_payload()[1]["Will-Retry-Until"]
    assert original.get_content_type() == "text/rfc822-headers"
    assert b"See you at noon" not in original.as_bytes()


def test_utf8_addresses_use_the_global_types() -> None:
    data = build_dsn(
        reporting_mta="mail.here.test",
        sender="δ@here.test",
        recipients=[DsnRecipient("ü@x.test", "failed", Reply(550, None, "no"))],
        original=ORIGINAL,
        full=True,
        arrival=0,
        now=0,
    )
    msg = parse(data)
    _, status, original = msg.get_payload()  # type: ignore[misc]
    assert status.get_content_type() == "message/global-delivery-status"
    assert original.get_content_type() == "message/global"
    assert "Final-Recipient: utf-8; ü@x.test" in data.decode()
    assert "Status: 5.0.0" in data.decode()


def test_rules() -> None:
    assert returns_full("", ["failed"], 10) and returns_full("FULL", ["failed"], 10)
    assert not returns_full("HDRS", ["failed"], 10)
    assert not returns_full("FULL", ["delayed"], 10)
    assert not returns_full("FULL", ["failed"], 10**9)
    assert header_section(ORIGINAL).endswith(b"<m1@here>\r\n\r\n")
    assert status_of(Reply(451, None, "x")) == "4.0.0"


def test_long_diagnostics_are_folded() -> None:
    text = "word " * 60
    data = build_dsn(
        reporting_mta="m.test",
        sender="a@h.test",
        recipients=[DsnRecipient("b@x.test", "failed", Reply(550, "5.0.0", text))],
        original=ORIGINAL,
        full=False,
        arrival=0,
        now=0,
    )
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    part = parse(data).get_payload()[1].get_payload()[1]  # type: ignore[index]
    assert " ".join(part["Diagnostic-Code"].split()) == "smtp; 550 5.0.0 " + text.strip()
