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
        # equal-length boundaries: none is a prefix of another
        out.append(b"Content-Type: multipart/mixed; boundary=b%03d\n\n--b%03d\n" % (i, i))
    out.append(b"Content-Type: text/plain\n\nleaf\n")
    for i in reversed(range(levels)):
        out.append(b"--b%03d--\n" % i)
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
    "eightbit_headers": b'From: J\xc3\xb6rg M\xc3\xbcller <joerg@example.de>\nTo: b@example.org\nSubject: Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln\nContent-Type: text/plain; name="\xc3\x84pfel.txt"\n\nbody\n',
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


_H = b"From: a@example.org\nSubject: x\n"


def _ct(value: bytes) -> bytes:
    return _H + b"Content-Type: " + value + b"\n\nb\n"


def _subject(value: bytes) -> bytes:
    return b"From: a@example.org\nSubject: " + value + b"\n\nb\n"


def _to(value: bytes) -> bytes:
    return b"From: a@x\nSubject: x\nTo: " + value + b"\n\nb\n"


def _nested(outer: bytes, inner: bytes) -> bytes:
    return (
        b'From: a@x\nSubject: x\nContent-Type: multipart/mixed; boundary="%s"\n\n--%s\n'
        b'Content-Type: multipart/mixed; boundary="%s"\n\n--%s\n\none\n--%s\n\ntwo\n--%s--\n'
        % (outer, outer, inner, inner, outer, outer)
    )


# Small probes, one behaviour each (names say which).
_PROBES: dict[str, bytes] = {
    "ct_2231_order": _ct(b"text/plain; b*0=x; a=1; b*1=y; c*0*=utf-8''z; Z=2"),
    "ct_2231_lone_star": _ct(b"text/plain; f*=x"),
    "ct_2231_gaps": _ct(b"text/plain; d*1=q; e*0*=a; e*2*=c"),
    "ct_2231_mixed_first_plain": _ct(b"text/plain; title*0=a; title*1*=%41b"),
    "ct_2231_mixed_escape": _ct(b"text/plain; title*0*=us-ascii''a; title*1=%41 b"),
    "ct_no_subtype_params": _ct(b"text; charset=utf-8"),
    "ct_empty_subtype": _ct(b"text/"),
    "ct_two_slashes": _ct(b"text/plain/html; a=b"),
    "ct_odd_tokens": _ct(b"Text/x.y+z; q=1"),
    "ct_tspecial_subtype": _ct(b"text/plain@foo; q=1"),
    "ct_unterminated_quote": _ct(b'application/vnd.ms-excel; a=1; name="unterminated'),
    "ct_comments": _ct(b'text/plain; charset=utf-8 (comment); format = "flowed" ; x="a b"'),
    "ct_encoded_word_key": _ct(b"text/plain; =?utf-8?q?x?="),
    "ct_encoded_word_value": _ct(b"text/plain; name==?utf-8?q?x?="),
    "ct_value_junk": _ct(b"text/plain; name=a b"),
    "ct_value_8bit": _ct(b"text/plain; name=a\xc3\xa4b"),
    "ct_empty_param": _ct(b"text/plain ; ; charset=x"),
    "ct_charset_case": _ct(b"text/plain; Charset=x; CHARSET=y"),
    "ct_quoted_pairs": _ct(b'text/plain; name="a\\"b\\\\c"; x="1\\2"'),
    "ct_empty_charset": _ct(b'text/plain; charset=""'),
    "ct_multipart_no_subtype": _H + b"Content-Type: multipart\n\n--z\n\nx\n--z--\n",
    "ct_multipart_empty_subtype": _H + b"Content-Type: multipart/; boundary=z\n\n--z\n\nx\n--z--\n",
    "fields_no_content_type": _H
    + b"Content-Description: desc\nContent-ID: <x@y>\nContent-Transfer-Encoding: base64\n\nYg==\n",
    "fields_disposition_odd": _H
    + b"Content-Type: text/plain\nContent-Disposition: ;filename=x\nContent-Language: en de\n\nb\n",
    "fields_disposition_junk": _H
    + b"Content-Type: text/plain\nContent-Disposition: attachment filename=x\n"
    b"Content-Language: en,,de\n\nb\n",
    "fields_disposition_quoted": _H
    + b'Content-Type: text/plain\nContent-Disposition: "quoted"; a=b\nContent-Language: "en"\n\nb\n',
    "fields_disposition_empty": _H
    + b"Content-Type: text/plain\nContent-Disposition:\nContent-Language: en\n\nb\n",
    "fields_raw_values": _H
    + b"Content-Type: text/plain\nContent-ID: <a@b> (c)\nContent-Location: http://x/\n y\n"
    b"Content-MD5:  abc \n\nb\n",
    "fields_disposition_2231": _H
    + b"Content-Type: text/plain\nContent-Disposition: attachment; filename*0*=utf-8''a%20;"
    b" filename*1=b\n\nb\n",
    "fields_escape_4": _H
    + b'Content-Type: text/plain\nContent-Description: 1"2"3"4"5\nContent-ID: 1\\2\\3\\4\\5\n\nb\n',
    "fields_escape_5": _H + b'Content-Type: text/plain\nContent-Description: 1"2"3"4"5"6\n\nb\n',
    "fields_folded_description": _H
    + b"Content-Type: text/plain\nContent-Description: fold\n  ed\tdesc \n\nb\n",
    "cte_comment": _H
    + b"Content-Type: text/plain\nContent-Transfer-Encoding: 7BIT (comment)\n\nb\n",
    "cte_quoted": _H + b'Content-Type: text/plain\nContent-Transfer-Encoding: "base64"\n\nYg==\n',
    "cte_two_words": _H + b"Content-Type: text/plain\nContent-Transfer-Encoding: 8 bit\n\nb\n",
    "subject_double_space": _subject(b"a  b"),
    "subject_long": _subject(b"x" * 100),
    "subject_tab": _subject(b"tab\there"),
    "subject_trailing_space": _subject(b"trailing "),
    "subject_leading_space": _subject(b"   leading"),
    "subject_empty": _subject(b""),
    "subject_one_quote": _subject(b'a"b'),
    "subject_backslashes": _subject(b"\\\\\\\\"),
    "subject_encoded_word": _subject(b"=?utf-8?q?a?= b"),
    "subject_folded_space": _subject(b"a\n b"),
    "date_spaces": _H + b"Date:  Mon, 1 Jan 2024 10:00:00 +0000 \nMessage-ID: <a@b> (comment)\n"
    b"In-Reply-To: \nSender:\n\nb\n",
    "names_whitespace": b'From: "a\\\\b" <a@x>\nTo: "tab\there" <b@x>, "fold\n ed" <c@x>, "one\\"q" <d@x>,'
    b' "  sp  " <e@x>, Na\tme <f@x>\nSubject: x\n\nb\n',
    "mp_boundary_never_found": _H
    + b"Content-Type: multipart/mixed; boundary=nope\n\npreamble only\n--other\n\nx\n",
    "mp_empty_boundary": _H + b'Content-Type: multipart/mixed; boundary=""\n\n--\n\nx\n----\n',
    "mp_close_junk": _H
    + b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n--b--junk\nepi\n",
    "mp_inner_longer": _nested(b"x", b"xy"),
    "mp_inner_shorter": _nested(b"xy", b"x"),
    "mp_same_boundary": _nested(b"s", b"s"),
    "mp_boundary_80": _nested(b"A" * 79 + b"X", b"A" * 79 + b"Y"),
    "mp_boundary_81": _nested(b"A" * 80 + b"X", b"A" * 80 + b"Y"),
    "mp_boundary_param_case": b"From: a@x\nSubject: x\nContent-Type: multipart/mixed; BOUNDARY=q;"
    b" boundary=r\n\n--r\n\nr\n--q\n\nq\n--q--\n",
    "mp_no_final_newline": _H
    + b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nlast\n--b--",
    "mp_case": _H + b'Content-Type: Multipart/Mixed; Boundary="B"\n\n--B\n'
    b"Content-Type: Message/RFC822\n\nFrom: q@x\n\nq\n--B--\n",
    "mp_empty_epilogue_message": _H + b"Content-Type: multipart/mixed; boundary=o\n\n--o\n"
    b"Content-Type: message/rfc822\n\nFrom: q@x\nContent-Type: multipart/mixed; boundary=i\n\n"
    b"--i\n\nin\n--i--\n--o--\n",
    "mp_truncated_header_message": _H + b"Content-Type: multipart/mixed; boundary=o\n\n--o\n"
    b"Content-Type: message/rfc822\n\nnot a header\nstill not\n--o--\n",
    "rfc822_no_final_newline": _H + b"Content-Type: message/rfc822\n\nFrom: b@x\n\nno newline",
    "header_leading_continuation": b" leading continuation\nFrom: a@x\nSubject: x\n\nb\n",
    "header_mbox_from_line": b"From a@x Mon Jan 1 2024\nFrom: a@x\nSubject: x\n\nb\n",
    "header_8bit_name": _H + b"X-\xc3\xa4: y\nContent-Type: text/plain\n\nb\n",
    "top_plain_upper_7bit": _H
    + b"Content-Type: TEXT/PLAIN\nContent-Transfer-Encoding: 7BIT\n\nb\n",
    "top_plain_charset_upper": _H
    + b"Content-Type: text/plain; charset=US-ASCII\nContent-Transfer-Encoding: 7BIT\n\nb\n",
    "top_plain_with_id": _H
    + b"Content-Type: text/plain\nContent-Transfer-Encoding: 7BIT\nContent-ID: <a@b>\n\nb\n",
    "top_no_ct_fields": _H
    + b"Content-Transfer-Encoding: base64\nContent-ID: <a@b>\nContent-Disposition: inline\n\nYg==\n",
    "child_no_ct_fields": _H + b"Content-Type: multipart/mixed; boundary=q\n\n--q\n"
    b"Content-Transfer-Encoding: base64\nContent-ID: <a@b>\n\nYg==\n--q\n"
    b"Content-Type: text/plain\nContent-Transfer-Encoding: 7BIT\n\nx\n--q--\n",
    "inner_plain_7bit": _H + b"Content-Type: message/rfc822\n\nFrom: b@x\n"
    b"Content-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7BIT\n\nq\n",
}

_ADDRESS_PROBES = [
    b'"" <a@b>',
    b"Mary   Smith <m@x>",
    b'"a""b" <x@y>',
    b'"a" "b" <x@y>',
    b"group: a@b",
    b"group: a@b; , c@d",
    b"<a@b> trailing",
    b"a@b <c@d>",
    b"a(comment)@b",
    b"A <a@b> (comment)",
    b"a . b@c",
    b'"q.\\"x"@y',
    b"<a@b",
    b"a <b@c> , ",
    b"a@b, (only comment)",
    b";",
    b":;",
    b"undisclosed-recipients:",
    b"a@b (c\\)d) ",
    b"a@ b . c",
    b"A B C",
    b'"x" a@b',
    b"a@b (=?utf-8?q?x?=)",
    b"x@y (\xc3\xa4)",
    b"<@a:b@c>",
    b'"quoted"',
    b"a,b",
    b"g: a@b, bad; c@d",
    b"@",
    b"a@",
    b"a@[x",
    b"Name <a@b",
    b'"unterminated <a@b>',
    b"a@b.",
    b".a@b",
    b"a..b@c",
    b"a@b c@d",
    b"Name (cmt) <a@b>",
    b"a@b,",
    b",a@b",
    b"a@b,,c@d",
    b"j\xc3\xb6rg@example.de",
    b'"john doe"@example.com',
    b"a@[1.2.3.4]",
    b"x@y (c1) (c2), Fred <f@g> (c3)",
]
for _i, _value in enumerate(_ADDRESS_PROBES):
    _PROBES[f"addr_{_i:02d}"] = _to(_value)


def crafted_messages() -> dict[str, bytes]:
    """Return name -> message with CRLF line endings (as stored)."""
    return {name: normalize_crlf(raw) for name, raw in {**_RAW, **_PROBES}.items()}
