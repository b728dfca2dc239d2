"""ENVELOPE / BODY / BODYSTRUCTURE serialisation, as FETCH transcripts."""

from __future__ import annotations

from mime_helpers import msg

from postroom.mime import analyze, bodystructure_to_imap, envelope_to_imap, imap_string
from postroom.mime.imap import imap_nstring_unfolded, imap_string_for_humans


def test_imap_string_quoting() -> None:
    assert imap_string(None) == b"NIL"
    assert imap_string("") == b'""'
    assert imap_string('say "hi"') == b'"say \\"hi\\""'
    assert imap_string('1"2"3"4"5') == b'"1\\"2\\"3\\"4\\"5"'  # four escapes: quoted
    assert imap_string('1"2"3"4"5"6') == b'{11}\r\n1"2"3"4"5"6'  # five: literal
    assert imap_string("caf\udce9") == b"{4}\r\ncaf\xe9"  # raw 8-bit octets
    assert imap_string("Jörg") == b"{5}\r\nJ\xc3\xb6rg"
    assert imap_string("a\tb") == b'"a\tb"'


def test_unfolded_and_for_humans() -> None:
    assert imap_nstring_unfolded("\r\n <a@b>") == b'" <a@b>"'
    assert imap_nstring_unfolded("fold\r\n  ed ") == b'"fold  ed "'
    # subjects and names: white space normalised; any change makes a literal
    assert imap_string_for_humans("plain") == b'"plain"'
    assert imap_string_for_humans("a  b") == b"{3}\r\na b"
    assert imap_string_for_humans("tab\there") == b"{8}\r\ntab here"
    assert imap_string_for_humans("a\r\n b") == b"{3}\r\na b"
    assert imap_string_for_humans('a"b') == b'{3}\r\na"b'
    assert imap_string_for_humans("") == b'""'
    assert imap_string_for_humans("   ") == b'""'


def test_envelope_transcript() -> None:
    data = msg(
        """Date: Mon, 1 Jan 2024 10:00:00 +0000
Subject: Hello
From: "Joe" <joe@example.org>
To: Mary Smith <mary@x.test>, jdoe@example.org
Cc: undisclosed-recipients:;
In-Reply-To: <a@example.org>
Message-ID: <b@example.org>

body
"""
    )
    # S: * 1 FETCH (ENVELOPE (...))
    assert envelope_to_imap(analyze(data).envelope) == (
        b'("Mon, 1 Jan 2024 10:00:00 +0000" "Hello" (("Joe" NIL "joe" "example.org"))'
        b' (("Joe" NIL "joe" "example.org")) (("Joe" NIL "joe" "example.org"))'
        b' (("Mary Smith" NIL "mary" "x.test")(NIL NIL "jdoe" "example.org"))'
        b' ((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) NIL'
        b' "<a@example.org>" "<b@example.org>")'
    )


def test_envelope_repeated_headers_and_8bit() -> None:
    data = msg(
        b"From: first@x\nFrom: J\xc3\xb6rg <second@x>\nSubject: one\nSubject: Gr\xc3\xbc\xc3\x9fe\n"
        b"Sender: s@x\nReply-To:\n\nb\n"
    )
    env = analyze(data).envelope
    assert envelope_to_imap(env) == (
        b'(NIL {7}\r\nGr\xc3\xbc\xc3\x9fe ((NIL NIL "first" "x")({5}\r\nJ\xc3\xb6rg NIL'
        b' "second" "x")) ((NIL NIL "s" "x")) ((NIL NIL "first" "x")({5}\r\nJ\xc3\xb6rg NIL'
        b' "second" "x")) NIL NIL NIL NIL NIL)'
    )


def test_bodystructure_transcript() -> None:
    data = msg(
        """Content-Type: multipart/mixed; boundary=X

--X
Content-Type: text/plain; charset=utf-8
Content-Language: en, de

hi
--X
Content-Type: message/rfc822
Content-Disposition: attachment; filename=m.eml

Subject: inner

inner body
--X
Content-Type: application/pdf; name="a.pdf"
Content-Transfer-Encoding: base64
Content-ID: <c@x>
Content-Description: A file

AAAA
--X--
"""
    )
    info = analyze(data)
    # S: * 1 FETCH (BODYSTRUCTURE (...))
    assert bodystructure_to_imap(info.root) == (
        b'(("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 2 0 NIL NIL ("en" "de") NIL)'
        b'("message" "rfc822" NIL NIL NIL "7bit" 28'
        b' (NIL "inner" NIL NIL NIL NIL NIL NIL NIL NIL)'
        b' ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 10 0 NIL NIL NIL NIL) 2'
        b' NIL ("attachment" ("filename" "m.eml")) NIL NIL)'
        b'("application" "pdf" ("name" "a.pdf") "<c@x>" "A file" "base64" 4 NIL NIL NIL NIL)'
        b' "mixed" ("boundary" "X") NIL NIL NIL)'
    )
    # S: * 1 FETCH (BODY (...))
    assert bodystructure_to_imap(info.root, extensible=False) == (
        b'(("text" "plain" ("charset" "utf-8") NIL NIL "7bit" 2 0)'
        b'("message" "rfc822" NIL NIL NIL "7bit" 28'
        b' (NIL "inner" NIL NIL NIL NIL NIL NIL NIL NIL)'
        b' ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 10 0) 2)'
        b'("application" "pdf" ("name" "a.pdf") "<c@x>" "A file" "base64" 4) "mixed")'
    )


def test_top_level_defaults() -> None:
    # No Content-Type on the message itself: all defaults, other fields ignored.
    info = analyze(msg("Content-Transfer-Encoding: base64\nContent-ID: <a@b>\n\nYg==\n"))
    assert bodystructure_to_imap(info.root) == (
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 6 1 NIL NIL NIL NIL)'
    )
    # text/plain; charset=US-ASCII + 7BIT on the message itself: canonical form
    info = analyze(
        msg("Content-Type: TEXT/PLAIN; charset=US-ASCII\nContent-Transfer-Encoding: 7BIT\n\nb\n")
    )
    assert bodystructure_to_imap(info.root, extensible=False) == (
        b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 3 1)'
    )


def test_case_is_kept_and_charset_added() -> None:
    info = analyze(
        msg(
            "Content-Type: TEXT/HTML; Format=Flowed\nContent-Transfer-Encoding: QUOTED-PRINTABLE\n\nx\n"
        )
    )
    assert bodystructure_to_imap(info.root, extensible=False) == (
        b'("TEXT" "HTML" ("Format" "Flowed" "charset" "us-ascii") NIL NIL "QUOTED-PRINTABLE" 3 1)'
    )


def test_multipart_type_without_subtype_is_octet_stream() -> None:
    info = analyze(msg("Content-Type: multipart\n\n--z\n\nx\n--z--\n"))
    assert bodystructure_to_imap(info.root, extensible=False) == (
        b'("application" "octet-stream" NIL NIL NIL "7bit" 17)'
    )


def test_invalid_content_type() -> None:
    info = analyze(msg("Content-Type: multipart/mixed\n\n"))  # no boundary: one empty part
    assert bodystructure_to_imap(info.root) == (
        b'(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0 NIL NIL NIL NIL)'
        b' "mixed" NIL NIL NIL NIL)'
    )
    info = analyze(msg("Content-Type: text; charset=utf-8\n\nb\n"))
    assert bodystructure_to_imap(info.root, extensible=False) == b'("" "" NIL NIL NIL "7bit" 3)'
