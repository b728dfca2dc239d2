"""Hand-made edge-case messages, each probing one behaviour of MIME analysis.

They are written with LF line endings for readability and normalised to CRLF (as the
store does) by :func:`crafted_messages`. The same messages were given to Dovecot by
``fixtures/dovecot_harness.py``; its answers are in ``fixtures/dovecot_crafted.json``.
"""

from __future__ import annotations

from postroom.mime.crlf import normalize_crlf

_SIMPLE = b"From: a@example.org\nTo: b@example.org\nSubject: s\n"


def _deep(levels: int) -> bytes:
    out = [b"From: a@example.org\nSubject: deep\nMIME-Version: 1.0\n"]
    for i in range(levels):
        out.append(b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (i, i))
    out.append(b"Content-Type: text/plain\n\nleaf\n")
    for i in reversed(range(levels)):
        out.append(b"--b%d--\n" % i)
    return b"".join(out)


_RAW: dict[str, bytes] = {
    "nested": b"""From: a@example.org
Subject: nested
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

This is the preamble.
--outer
Content-Type: text/plain; charset=utf-8

first part
--outer
Content-Type: multipart/alternative; boundary=inner

inner preamble
--inner
Content-Type: text/plain

alt text
--inner
Content-Type: text/html

<p>alt html</p>
--inner--
inner epilogue
--outer
Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

AAEC
--outer--
This is the epilogue.
""",
    "rfc822_in_multipart": b"""From: a@example.org
Subject: forward
Content-Type: multipart/mixed; boundary=X

--X
Content-Type: text/plain

see attached
--X
Content-Type: message/rfc822
Content-Disposition: attachment

From: "Inner Sender" <inner@example.net>
To: x@example.net, y@example.net
Subject: inner subject
Date: Mon, 1 Jan 2024 10:00:00 +0000
Message-ID: <inner@example.net>
Content-Type: multipart/alternative; boundary=Y

--Y
Content-Type: text/plain

inner text
--Y
Content-Type: text/html

<b>inner</b>
--Y--

--X--
""",
    "missing_final_boundary": b"""From: a@example.org
Subject: truncated
Content-Type: multipart/mixed; boundary=Z

--Z
Content-Type: text/plain

one
--Z
Content-Type: text/plain

two, never closed
""",
    "no_boundary_param": b"""From: a@example.org
Subject: no boundary
Content-Type: multipart/mixed

--foo
Content-Type: text/plain

text
--foo--
""",
    "rfc2231": b"""From: a@example.org
Subject: rfc2231
Content-Type: application/x-stuff;
 title*0*=us-ascii'en'This%20is%20even%20more%20;
 title*1*=%2A%2A%2Afun%2A%2A%2A%20;
 title*2="isn't it!"; name*0="long"; name*1="name.txt";
 simple*=utf-8''%E2%82%AC
Content-Disposition: attachment; filename*=UTF-8''%E2%82%AC%20rates.txt

body
""",
    "groups": b"""From: "Joe Q. Public" <john.q.public@example.com>
To: Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>
Cc: <boss@nil.test>, "Giant; \\"Big\\" Box" <sysservices@example.net>
Bcc: A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;
Reply-To: Undisclosed recipients:;
Sender: Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>
Subject: groups

body
""",
    "address_edge": b"""From: <@route1.test,@route2.test:user@host.test>
To: localpart, @nolocal.test, "only name", <>, a@b@c, x@y.test (comment)
Cc: =?utf-8?q?J=C3=B6rg?= <joerg@example.de>, "Last, First" <lf@example.de>
Bcc: group: ; other: a@b.test; c@d.test
Reply-To:
Subject: address edge

body
""",
    "eightbit_headers": b"From: J\xc3\xb6rg M\xc3\xbcller <joerg@example.de>\nTo: b@example.org\nSubject: Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln\nContent-Type: text/plain; name=\"\xc3\x84pfel.txt\"\n\nbody\n",
    "latin1_headers": b"From: J\xf6rg <joerg@example.de>\nSubject: caf\xe9\n\nbody\n",
    "empty_body": _SIMPLE + b"\n",
    "header_only_no_blank": _SIMPLE.rstrip(b"\n"),
    "header_only_newline": _SIMPLE,
    "empty_message": b"",
    "body_only": b"\nno header at all\n",
    "uppercase_type": b"""From: a@example.org
Subject: upper
Content-Type: TEXT/HTML; CHARSET="UTF-8"; Format=Flowed
Content-Transfer-Encoding: QUOTED-PRINTABLE

<p>hi=3D</p>
""",
    "text_no_charset": b"""From: a@example.org
Subject: nocharset
Content-Type: text/plain; format=flowed

hello
""",
    "all_content_fields": b"""From: a@example.org
Subject: fields
Content-Type: text/plain; charset=us-ascii
Content-ID: <part1@example.org>
Content-Description: A "described" part
Content-Transfer-Encoding: 8bit
Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==
Content-Disposition: attachment; filename="a b.txt"; size=4
Content-Language: en, de-DE (German)
Content-Location: http://example.org/a%20b.txt

body
""",
    "duplicate_headers": b"""From: first@example.org
From: second@example.org
Subject: first subject
Subject: second subject
Message-ID: <first@example.org>
Message-ID: <second@example.org>
Content-Type: text/html
Content-Type: text/plain; charset=iso-8859-1

body
""",
    "folding": b"""From: a@example.org
Subject: folded
\tsubject  with   spaces\x20\x20
Date: Mon, 1 Jan 2024
 10:00:00 +0000
Message-ID:
 <folded@example.org>
In-Reply-To: <a@example.org>
 <b@example.org>

body
""",
    "quote_heavy": b"""From: "a \\"b\\" c" <a@example.org>
Subject: say "hi" \\ "there" \\ "again"
Message-ID: <"quoted"@example.org>

body
""",
    "nul_in_header": b"From: a@example.org\nSubject: nul\x00here\n\nbody with \x00 nul\n",
    "boundary_prefix": b"""From: a@example.org
Subject: prefix
Content-Type: multipart/mixed; boundary=abc

--abc
Content-Type: text/plain

one
--abcdef
still one?
--abc \t
Content-Type: text/plain

two
--abc--
""",
    "part_header_no_blank": b"""From: a@example.org
Subject: part header no blank
Content-Type: multipart/mixed; boundary=q

--q
Content-Type: text/plain
--q
Content-Type: text/html

<p>x</p>
--q--
""",
    "digest": b"""From: a@example.org
Subject: digest
Content-Type: multipart/digest; boundary=d

--d

From: x@example.org
Subject: one

first
--d
Content-Type: text/plain

explicit text
--d--
""",
    "rfc822_base64": b"""From: a@example.org
Subject: base64 message
Content-Type: message/rfc822
Content-Transfer-Encoding: base64

RnJvbTogeEBleGFtcGxlLm9yZwpTdWJqZWN0OiBpbm5lcgoKYm9keQo=
""",
    "rfc822_top": b"""From: a@example.org
Subject: top rfc822
Content-Type: message/rfc822

From: b@example.org
Subject: inner
Content-Type: text/plain; charset=utf-8

inner body
""",
    "deep": _deep(120),
    "weird_header_lines": b"""From: a@example.org
Subject : spaced name
this line has no colon
X-Empty:
Content-Type: text/plain (comment) ; charset = "us-ascii" (c2)

body
""",
    "bad_content_types": b"""From: a@example.org
Subject: bad types
Content-Type: multipart/mixed; boundary=B

--B
Content-Type: text

no subtype
--B
Content-Type: /plain

no type
--B
Content-Type: ;charset=utf-8

nothing
--B
Content-Type: text/plain; charset=utf-8; charset=latin1; novalue; =x; a="b"c

params
--B
Content-Type: application/x-y; name="unterminated

bad quote
--B--
""",
    "empty_parts": b"""From: a@example.org
Subject: empty parts
Content-Type: multipart/alternative; boundary=E

--E
--E

--E
Content-Type: text/plain

--E--
""",
    "long_subject": b"From: a@example.org\nSubject: " + b"word " * 40 + b"\n\nbody\n",
    "disposition_plain": b"""From: a@example.org
Subject: disp
Content-Disposition: INLINE
Content-Language: EN
Content-Type: text/plain

body
""",
    "message_global": b"""From: a@example.org
Subject: global
Content-Type: message/global

From: b@example.org
Subject: inner

x
""",
    "crlf_in_boundary_area": b"""From: a@example.org
Subject: blank lines
Content-Type: multipart/mixed; boundary=L


--L
Content-Type: text/plain


two blank lines above and below


--L--


""",
    "binary_junk": b"From: a@example.org\nSubject: junk\nContent-Type: multipart/mixed; boundary=J\n\n--J\nContent-Type: image/png\nContent-Transfer-Encoding: binary\n\n\x89PNG\r\x00\x01\x02\xff\xfe\n--J--\n",
    "sender_replyto": b"""From: a@example.org
Sender: s@example.org
Reply-To: r@example.org, r2@example.org
To: undisclosed-recipients:;
Subject: sender

body
""",
    "encoded_words": b"""From: =?ISO-8859-1?Q?Keld_J=F8rn_Simonsen?= <keld@dkuug.dk>
To: =?US-ASCII?Q?Keith_Moore?= <moore@cs.utk.edu>
Subject: =?ISO-8859-1?B?SWYgeW91IGNhbiByZWFkIHRoaXMgeW8=?=
 =?ISO-8859-2?B?dSB1bmRlcnN0YW5kIHRoZSBleGFtcGxlLg==?=
Date: Thu, 13 Feb 1997 09:21:12 -0700 (MST)

body
""",
    "unknown_cte": b"""From: a@example.org
Subject: unknown cte
Content-Type: text/plain
Content-Transfer-Encoding: x-uuencode

begin 644 x
end
""",
}


def crafted_messages() -> dict[str, bytes]:
    """Return name -> message with CRLF line endings (as stored)."""
    return {name: normalize_crlf(raw) for name, raw in _RAW.items()}
