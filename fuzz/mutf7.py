"""Fuzz target: modified UTF-7 mailbox names (RFC 3501 section 5.1.3): strict decode
accepts only canonical text (``encode(decode(x)) == x``), ``encode`` round-trips any
Unicode, ``decode_lenient`` never raises. ``python -m fuzz.mutf7 --seconds N``."""

from __future__ import annotations

from fuzz.engine import Target, main
from postroom.imap import mutf7


def check(data: bytes) -> None:
    try:
        text = mutf7.decode(data)
    except mutf7.MUTF7Error:
        pass
    else:
        assert mutf7.encode(text) == data.decode("ascii"), "decode accepted a non-canonical name"
    name, ok = mutf7.decode_lenient(data)
    assert isinstance(name, str) and ok == mutf7.is_valid(data)
    unicode = data.decode("utf-8", "replace")
    encoded = mutf7.encode(unicode)
    assert encoded.isascii() and mutf7.decode(encoded) == unicode, "encode does not round-trip"


DICTIONARY = (b"&", b"-", b"&-", b"&U,BTFw-", b"&ZeVnLIqe-", b"&AGE-", b"&2D3eAA-", b"&2D3-",
              b"&3gA-", b"&AAA-", b"&AAAA-", b",", b"+", b"/", b"~peter/", b"\xc3\xa9", b"\xff",
              b"\x00", b"\x7f", b"&Jjo", b"&Jjo-&Jjo-")

TARGET = Target("mutf7", check, DICTIONARY)

if __name__ == "__main__":
    raise SystemExit(main(TARGET))
