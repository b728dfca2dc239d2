"""One delivery attempt's building blocks: the envelope, the content scan, the connection.

``scan_content`` reads the queued message once to learn what the next hop must
support: 8-bit octets anywhere (8BITMIME, RFC 6152) and UTF-8 in the header
(SMTPUTF8, RFC 6531). ``make_envelope`` turns queue rows into the engine's
``Envelope``. ``open_session`` walks a route's hosts in order and each host's
addresses in order (RFC 5321 section 5.1: try the next on connection failure) and
returns the first session that reaches ``Ready``; for opportunistic TLS a failed
handshake is retried once in plain text on the same address (as Postfix does), so a
broken TLS stack at the peer delays nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

from postroom.queue.models import QueueEntry, QueueRecipient, parse_notify, parse_orcpt
from postroom.queue.routing import Route, Router, RoutingError
from postroom.smtp.client import BodyReader, ConnectError, SessionOptions, SmtpClientSession
from postroom.smtp.client_protocol import Envelope, OutboundRecipient, TlsMode
from postroom.smtp.codes import Reply

log = logging.getLogger("postroom.relay")

SCAN_CHUNK = 1024 * 1024

Connector = Callable[[str, str, int, SessionOptions], Awaitable[SmtpClientSession]]


@dataclass(frozen=True, slots=True)
class ContentInfo:
    eight_bit: bool  # an octet >= 128 anywhere
    utf8_header: bool  # ... in the header section


async def scan_content(read: BodyReader, size: int) -> ContentInfo:
    """Read the message in slices and classify it."""
    eight_bit = utf8_header = False
    in_header = True
    tail = b""
    offset = 0
    while offset < size:
        chunk = await read(offset, min(offset + SCAN_CHUNK, size))
        if not chunk:
            break
        offset += len(chunk)
        if in_header:
            window = tail + chunk
            end = window.find(b"\r\n\r\n")
            header_part = window if end < 0 else window[:end]
            if not header_part.isascii():
                utf8_header = eight_bit = True
            if end >= 0:
                in_header = False
                if not window[end:].isascii():
                    eight_bit = True
            tail = window[-3:]
        elif not chunk.isascii():
            eight_bit = True
        if eight_bit and (utf8_header or not in_header):
            break
    return ContentInfo(eight_bit, utf8_header)


def make_envelope(
    entry: QueueEntry, recipients: Sequence[QueueRecipient], info: ContentInfo
) -> Envelope:
    addresses = [entry.mail_from] + [r.address for r in recipients]
    return Envelope(
        mail_from=entry.mail_from,
        recipients=tuple(
            OutboundRecipient(r.address, parse_notify(r.notify), parse_orcpt(r.orcpt))
            for r in recipients
        ),
        size=entry.size,
        eight_bit=info.eight_bit,
        smtputf8=info.utf8_header or not all(a.isascii() for a in addresses),
        ret=entry.ret or None,
        envid=entry.envid or None,
    )


async def open_session(
    router: Router, route: Route, options: SessionOptions, connector: Connector
) -> SmtpClientSession:
    """The first host of ``route`` that answers. Raises ``RoutingError`` with the reply
    for the recipients: permanent only when every host failed permanently."""
    failures: list[Reply] = []
    for hop in route.hops:
        try:
            addresses = await router.addresses(hop)
        except RoutingError as e:
            failures.append(e.reply)
            continue
        for address in addresses:
            try:
                return await connector(hop.host, address, hop.port, options)
            except ConnectError as e:
                if e.tls_failed and options.tls_mode is TlsMode.OPPORTUNISTIC:
                    log.info("%s: %s; retrying without TLS", hop.host, e.reply)
                    try:
                        plain = replace(options, tls_mode=TlsMode.NONE)
                        return await connector(hop.host, address, hop.port, plain)
                    except ConnectError as e2:
                        e = e2
                log.info("%s [%s]:%d: %s", hop.host, address, hop.port, e.reply)
                failures.append(e.reply)
    if not failures:
        raise RoutingError(Reply(451, "4.4.4", "No usable next hop"))
    if all(f.permanent for f in failures):
        raise RoutingError(failures[-1])
    raise RoutingError(next(f for f in reversed(failures) if not f.permanent))
