"""ENVELOPE, BODY and BODYSTRUCTURE in IMAP syntax, from the stored analysis.

Theory of operation: pure functions from :mod:`postroom.mime.model` objects to the
octets of the FETCH data items (RFC 9051 section 7.5.2; RFC 3501 section 7.4.2 has
the same grammar for these items). The output matches Dovecot 2.3 byte for byte on
our test corpus (``tests/mime/test_mime_dovecot.py`` lists the known differences), which
means following its choices where the RFC leaves room:

* Strings (:func:`imap_string`): NIL for None; a quoted string when possible,
  with ``"`` and ``\\`` escaped; a literal ``{n}\\r\\n...`` when the value has CR,
  LF or 8-bit octets, or more than four characters to escape.
* Most header-derived strings are unfolded first: CR and LF removed, nothing else
  (:func:`imap_nstring_unfolded`).
* The subject and display names are "for humans" (:func:`imap_string_for_humans`):
  unfolded, tabs turned into spaces, runs of spaces collapsed, ends trimmed; when
  that changed anything, or the value has a quote, backslash or 8-bit octet, it is
  sent as a literal.
* Envelope: Sender and Reply-To default to From (RFC 9051 section 7.5.2).
* Body structure: type, subtype, parameter names, disposition and encoding keep
  the case they were written in; ``"message" "rfc822"`` is always lower case; text
  parts without a charset get ``("charset" "us-ascii")`` appended (RFC 2045 section
  5.2); an absent Content-Type means all defaults (text/plain or, in a digest,
  message/rfc822, encoding 7bit, every other field NIL), even when other Content-*
  fields exist; a multipart or message/rfc822 that was not descended into (beyond
  the nesting limit, or a ``multipart`` type without subtype) is reported as
  application/octet-stream so that the grammar stays valid.
"""

from __future__ import annotations

from postroom.mime.headers import encode_value
from postroom.mime.model import Address, Addresses, Envelope, Params, Part, PartKind

_NIL = b"NIL"


def _literal(raw: bytes) -> bytes:
    return b"{%d}\r\n%b" % (len(raw), raw)


def _needs_literal(raw: bytes) -> bool:
    if b"\r" in raw or b"\n" in raw or not raw.isascii():
        return True
    return raw.count(b'"') + raw.count(b"\\") > 4


def _quoted(raw: bytes) -> bytes:
    if b'"' in raw or b"\\" in raw:
        raw = raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
    return b'"' + raw + b'"'


def imap_string(value: str | bytes | None) -> bytes:
    """An IMAP nstring: NIL, quoted string or literal (see the module docstring)."""
    if value is None:
        return _NIL
    raw = encode_value(value) if isinstance(value, str) else value
    if _needs_literal(raw):
        return _literal(raw)
    return _quoted(raw)


def imap_nstring_unfolded(value: str | None) -> bytes:
    """:func:`imap_string` of the value with every CR and LF removed."""
    if value is None:
        return _NIL
    raw = encode_value(value)
    if b"\r" in raw or b"\n" in raw:
        raw = raw.replace(b"\r", b"").replace(b"\n", b"")
    return imap_string(raw)


def imap_string_for_humans(value: str | None) -> bytes:
    """Subject and display names: see the module docstring."""
    if value is None:
        return _NIL
    raw = encode_value(value)
    spaced = raw.replace(b"\r", b"").replace(b"\n", b"").replace(b"\t", b" ")
    clean = b" ".join(w for w in spaced.split(b" ") if w)
    if clean != raw or not clean.isascii() or b'"' in clean or b"\\" in clean:
        return _literal(clean) if clean else b'""'
    return b'"' + clean + b'"'


def _address(a: Address) -> bytes:
    return b"(%b %b %b %b)" % (
        imap_string_for_humans(a.name),
        imap_string(a.adl),
        imap_string(a.mailbox),
        imap_string(a.host),
    )


def _address_list(addrs: Addresses) -> bytes:
    if not addrs:
        return _NIL
    return b"(" + b"".join(_address(a) for a in addrs) + b")"


def envelope_to_imap(env: Envelope) -> bytes:
    """The ENVELOPE data item value (RFC 9051 section 7.5.2)."""
    return b"(%b %b %b %b %b %b %b %b %b %b)" % (
        imap_nstring_unfolded(env.date),
        imap_string_for_humans(env.subject),
        _address_list(env.from_),
        _address_list(env.effective_sender),
        _address_list(env.effective_reply_to),
        _address_list(env.to),
        _address_list(env.cc),
        _address_list(env.bcc),
        imap_nstring_unfolded(env.in_reply_to),
        imap_nstring_unfolded(env.message_id),
    )


def _params(params: Params) -> bytes:
    if not params:
        return _NIL
    return b"(" + b" ".join(imap_string(k) + b" " + imap_string(v) for k, v in params) + b")"


def _extension(part: Part, given: bool) -> bytes:
    """body-fld-md5 (leaves only, added by the caller), dsp, lang, loc."""
    if not given:
        return b"NIL NIL NIL"
    if part.disposition is None:
        dsp = _NIL
    else:
        dsp = b"(%b %b)" % (imap_string(part.disposition), _params(part.disposition_params))
    if part.language is None:
        lang = _NIL
    else:
        lang = b"(" + b" ".join(imap_string(x) for x in part.language) + b")"
    return b"%b %b %b" % (dsp, lang, imap_nstring_unfolded(part.location))


def bodystructure_to_imap(part: Part, extensible: bool = True) -> bytes:
    """BODYSTRUCTURE (``extensible=True``) or BODY (``False``) of a message, given
    its root part (RFC 9051 section 7.5.2)."""
    out: list[bytes] = []
    _body(part, extensible, out, top=True)
    return b"".join(out)


def _is_default_text(part: Part) -> bool:
    """text/plain [charset=us-ascii] [7bit] and no other MIME field: Dovecot
    reports such a part exactly like one without Content-Type."""
    if part.type.lower() != "text" or part.subtype.lower() != "plain":
        return False
    if part.params and (
        len(part.params) > 1
        or part.params[0][0].lower() != "charset"
        or part.params[0][1].lower() != "us-ascii"
    ):
        return False
    if part.encoding is not None and part.encoding.lower() != "7bit":
        return False
    return (
        part.id is None
        and part.description is None
        and part.md5 is None
        and part.disposition is None
        and part.language is None
        and part.location is None
    )


def _body(part: Part, ext: bool, out: list[bytes], top: bool = False) -> None:
    # Only for the message itself: no Content-Type, or a plain default one,
    # means the canonical default structure (Dovecot's "plain 7bit" shortcut).
    given = not (
        top
        and part.kind == PartKind.LEAF
        and (not part.content_type_given or _is_default_text(part))
    )
    if part.kind == PartKind.MULTIPART:
        out.append(b"(")
        for child in part.children:
            _body(child, ext, out)
        out.append(b" ")
        out.append(imap_string(part.subtype))
        if ext:
            out.append(b" %b %b" % (_params(part.params), _extension(part, given)))
        out.append(b")")
        return
    ltype = part.type.lower()
    params = part.params if given else ()
    if not given:
        head = b'"text" "plain"'
    elif part.kind == PartKind.MESSAGE:
        head = b'"message" "rfc822"'
    elif ltype == "multipart" or (ltype == "message" and part.subtype.lower() == "rfc822"):
        head = b'"application" "octet-stream"'  # not descended into: stay grammatical
    else:
        head = imap_string(part.type) + b" " + imap_string(part.subtype)
    if ltype == "text" and not any(k.lower() == "charset" for k, _ in params):
        params = (*params, ("charset", "us-ascii"))
    fields = b"%b %b %b %b %b %d" % (
        head,
        _params(params),
        imap_nstring_unfolded(part.id) if given else _NIL,
        imap_nstring_unfolded(part.description) if given else _NIL,
        imap_string((part.encoding if given else None) or "7bit"),
        part.size,
    )
    out.append(b"(")
    out.append(fields)
    if part.kind == PartKind.MESSAGE and part.message is not None:
        inner = part.message
        out.append(b" ")
        out.append(envelope_to_imap(inner.envelope or Envelope()))
        out.append(b" ")
        _body(inner, ext, out)
        out.append(b" %d" % (part.lines or 0))
    elif ltype == "text" and part.kind == PartKind.LEAF:
        out.append(b" %d" % (part.lines or 0))
    if ext:
        out.append(b" ")
        out.append(imap_nstring_unfolded(part.md5) if given else _NIL)
        out.append(b" ")
        out.append(_extension(part, given))
    out.append(b")")
