"""Modified UTF-7 for mailbox names (RFC 3501 section 5.1.3; RFC 9051 section 5.1.3).

Printable US-ASCII (0x20-0x7e) stands for itself, except ``&`` which is written ``&-``.
Anything else is a shifted run: ``&``, the UTF-16BE code units in base64 with ``,``
instead of ``/`` and no padding, then ``-``. Example: ``~peter/mail/台北/日本語`` is
``~peter/mail/&U,BTFw-/&ZeVnLIqe-``.

``encode`` always produces the canonical form. ``decode`` is strict: it accepts only what
``encode`` could have produced (so ``encode(decode(x)) == x``) and raises
``MUTF7Error`` otherwise. ``decode_lenient`` never raises: servers must accept any atom
as a name (a client may have created ``a&b`` before), so an invalid name is returned
unchanged together with a flag.
"""

from __future__ import annotations

import base64
import binascii


class MUTF7Error(ValueError):
    """Not a valid (canonical) modified UTF-7 string."""


def _is_direct(ch: str) -> bool:
    return "\x20" <= ch <= "\x7e"


def encode(name: str) -> str:
    """Encode a Unicode mailbox name to modified UTF-7 (pure ASCII)."""
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            data = "".join(run).encode("utf-16-be", "surrogatepass")
            text = base64.b64encode(data).decode("ascii").rstrip("=").replace("/", ",")
            out.append(f"&{text}-")
            run.clear()

    for ch in name:
        if _is_direct(ch):
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    flush()
    return "".join(out)


def decode(name: str | bytes) -> str:
    """Decode a modified UTF-7 name; raise ``MUTF7Error`` unless it is canonical.

    Rejected: 8-bit or control characters, a shift that is not closed, base64 with
    non-zero pad bits or an odd number of octets, broken surrogate pairs, printable
    ASCII inside a shift, and two adjacent shifts (the encoder would have merged them).
    """
    if isinstance(name, bytes):
        try:
            text = name.decode("ascii")
        except UnicodeDecodeError:
            raise MUTF7Error("8-bit character in a modified UTF-7 name") from None
    else:
        text = name
    out: list[str] = []
    i = 0
    n = len(text)
    last_shift_end = -1
    while i < n:
        ch = text[i]
        if ch != "&":
            if not _is_direct(ch):
                raise MUTF7Error(f"character {ch!r} must be encoded")
            out.append(ch)
            i += 1
            continue
        end = text.find("-", i + 1)
        if end < 0:
            raise MUTF7Error("unterminated shift sequence")
        if end == i + 1:
            out.append("&")
            i = end + 1
            continue
        if last_shift_end == i:
            raise MUTF7Error("adjacent shift sequences")
        out.append(_decode_run(text[i + 1 : end]))
        i = end + 1
        last_shift_end = i
    return "".join(out)


def _decode_run(chunk: str) -> str:
    if not all(c.isascii() and (c.isalnum() or c in "+,") for c in chunk):
        raise MUTF7Error("invalid character in a shift sequence")
    if len(chunk) % 4 == 1:
        raise MUTF7Error("truncated base64 in a shift sequence")
    padded = chunk.replace(",", "/") + "=" * (-len(chunk) % 4)
    try:
        data = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise MUTF7Error("invalid base64 in a shift sequence") from None
    if len(data) % 2:
        raise MUTF7Error("odd number of octets in a shift sequence")
    # Canonical: the unused bits of the last base64 character are zero.
    if base64.b64encode(data).decode("ascii").rstrip("=") != chunk.replace(",", "/"):
        raise MUTF7Error("non-zero pad bits in a shift sequence")
    try:
        decoded = data.decode("utf-16-be")
    except UnicodeDecodeError:
        raise MUTF7Error("invalid UTF-16 in a shift sequence") from None
    if any(_is_direct(c) for c in decoded):
        raise MUTF7Error("printable ASCII inside a shift sequence")
    return decoded


def decode_lenient(name: str | bytes) -> tuple[str, bool]:
    """``(decoded, True)`` for a valid name; ``(name unchanged, False)`` otherwise.

    Bytes that are not ASCII are taken as UTF-8 (replacing invalid sequences) before
    being returned unchanged.
    """
    try:
        return decode(name), True
    except MUTF7Error:
        if isinstance(name, bytes):
            return name.decode("utf-8", "replace"), False
        return name, False


def is_valid(name: str | bytes) -> bool:
    """Whether ``name`` is canonical modified UTF-7."""
    return decode_lenient(name)[1]
