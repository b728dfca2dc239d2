"""The trace header the server puts on top of every message it accepts.

RFC 5321 section 4.4 (the ``Received:`` grammar), RFC 3848 and RFC 6531 section 3.7.3
(the ``with`` protocol keywords). We produce::

    Received: from <helo> (<rdns> [<ip>])           ; TCP-info: rDNS when known
            by <hostname> (Postroom) with ESMTPSA id <queue id>
            (TLSv1.3 TLS_AES_256_GCM_SHA384)           ; comment: TLS facts
            for <rcpt>; <RFC 5322 date>                ; "for" only with one recipient

Anything the client chose (HELO name, recipient) is stripped of characters that could
break the header (CR, LF, controls, parentheses in the HELO name).
"""

from __future__ import annotations

import ipaddress
import secrets
import time
from email.utils import formatdate

_B32 = "0123456789BCDFGHJKLMNPQRSTVWXYZ"  # no vowels: ids never spell words


def new_queue_id(clock: float | None = None) -> str:
    """A short id that sorts by time: seconds since 2020 and random bits, base 31."""
    now = int((time.time() if clock is None else clock) - 1_577_836_800)
    value = (max(now, 0) << 40) | secrets.randbits(40)
    out = []
    while value:
        value, digit = divmod(value, len(_B32))
        out.append(_B32[digit])
    return "".join(reversed(out)) or "0"


def with_keyword(*, esmtp: bool, tls: bool, authenticated: bool, smtputf8: bool) -> str:
    """SMTP / ESMTP / ESMTPS / ESMTPA / ESMTPSA (RFC 3848) and the UTF8SMTP forms
    (RFC 6531 section 3.7.3)."""
    if smtputf8:
        base = "UTF8SMTP"
    elif esmtp:
        base = "ESMTP"
    else:
        return "SMTP"
    return base + ("S" if tls else "") + ("A" if authenticated else "")


def _clean(text: str, *, limit: int = 255, parens: bool = False, space: bool = False) -> str:
    out = []
    for ch in text[:limit]:
        if ord(ch) < (32 if space else 33) or ch in "\x7f<>" or (parens and ch in "()\\"):
            out.append("_")
        else:
            out.append(ch)
    return "".join(out) or "unknown"


def ip_literal(ip: str) -> str:
    """``[192.0.2.1]`` or ``[IPv6:2001:db8::1]`` (RFC 5321 section 4.1.3)."""
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return f"[{_clean(ip, parens=True)}]"
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return f"[{addr.ipv4_mapped}]"
        return f"[IPv6:{addr.compressed}]"
    return f"[{addr}]"


def build_received(
    *,
    helo: str,
    peer_ip: str,
    hostname: str,
    protocol: str,
    queue_id: str,
    recipients: list[str],
    rdns: str | None = None,
    tls_version: str | None = None,
    tls_cipher: str | None = None,
    timestamp: float | None = None,
) -> bytes:
    """The complete header field, folded, CRLF-terminated, UTF-8 encoded."""
    literal = ip_literal(peer_ip)
    tcp_info = f"{_clean(rdns, parens=True)} {literal}" if rdns else literal
    lines = [
        f"Received: from {_clean(helo, parens=True)} ({tcp_info})",
        f"\tby {_clean(hostname)} (Postroom) with {protocol} id {queue_id}",
    ]
    if tls_version:
        cipher = f" {_clean(tls_cipher, parens=True)}" if tls_cipher else ""
        lines.append(f"\t({_clean(tls_version, parens=True)}{cipher})")
    date = formatdate(timestamp, localtime=True)
    if len(recipients) == 1:
        lines.append(f"\tfor <{_clean(recipients[0], limit=256, space=True)}>; {date}")
    else:
        lines[-1] += ";"
        lines.append(f"\t{date}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")
