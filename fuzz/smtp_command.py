"""Fuzz target: SMTP command lines into the server engine (any split, same answers;
well-formed replies; bounded buffering). ``python -m fuzz.smtp_command --seconds N``."""

from __future__ import annotations

from fuzz._smtp import CONFIG, run
from fuzz.engine import Target, main

DICTIONARY = (
    b"EHLO ", b"HELO ", b"MAIL FROM:", b"RCPT TO:", b"DATA", b"BDAT ", b" LAST", b"RSET",
    b"NOOP", b"QUIT", b"VRFY ", b"EXPN ", b"HELP", b"STARTTLS", b"AUTH PLAIN", b"AUTH LOGIN",
    b"AUTH SCRAM-SHA-256", b"\r\n", b"\n", b"\r", b"<", b">", b"<>", b"@", b"a@b.test",
    b"<postmaster>", b"[127.0.0.1]", b"[IPv6:::1]", b" SIZE=", b" BODY=8BITMIME",
    b" BODY=BINARYMIME", b" SMTPUTF8", b" RET=HDRS", b" ENVID=", b" NOTIFY=SUCCESS,FAILURE",
    b" ORCPT=rfc822;", b" REQUIRETLS", b" AUTH=<>", b"+2B", b"=", b"*", b".\r\n",
    b"AGFsaWNlAHNlY3JldA==", b"YWxpY2U=", b"\xc3\xa9", b"\xff", b"\x00", b"99999999999999999999",
)



def check(data: bytes) -> None:
    run(data, CONFIG)


TARGET = Target("smtp_command", check, DICTIONARY)

if __name__ == "__main__":
    raise SystemExit(main(TARGET))
