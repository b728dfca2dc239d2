"""Line-ending normalisation for stored messages.

RFC 5322 section 2.1 and RFC 5321 section 2.3.8 say a line ends with CRLF; IMAP sizes
(RFC 9051 section 7.5.2, RFC822.SIZE) count the octets that are served, so the store
keeps every message with CRLF line endings. Input that arrives with bare LF (Unix
mboxes, LMTP from some MTAs, files on disk) or bare CR (old Mac files) is rewritten
once, on delivery, by :func:`normalize_crlf`; everything downstream (the analysis in
this package, the byte ranges served by FETCH) assumes the stored form.
"""

from __future__ import annotations

import re

# A CR not followed by LF, or an LF not preceded by CR, or a proper CRLF (kept as is).
_ANY_EOL = re.compile(rb"\r\n|\r|\n")


def normalize_crlf(data: bytes) -> bytes:
    """Return ``data`` with every bare LF and every bare CR turned into CRLF.

    Existing CRLF pairs are kept; nothing else changes. When ``data`` already has only
    CRLF line endings the same object is returned without copying (the common case:
    SMTP DATA is CRLF on the wire).
    """
    crlf = data.count(b"\r\n")
    if data.count(b"\n") == crlf and data.count(b"\r") == crlf:
        return data
    if b"\r" not in data:
        # Pure LF input (the usual non-clean case): one C-speed replace.
        return data.replace(b"\n", b"\r\n")
    return _ANY_EOL.sub(b"\r\n", data)
