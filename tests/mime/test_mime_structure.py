"""MIME structure and offsets, as section -> (MIME header, body) transcripts.

Each test writes a message, analyses it, and shows what BODY[sec.MIME] and
BODY[sec] would serve. RFC 2046 section 5.1.1: the CRLF before a delimiter line
belongs to the delimiter, so no body below ends with it.
"""

from __future__ import annotations

from mime_helpers import msg, sections

from postroom.mime import MAX_DEPTH, PartKind, analyze, section_range


def test_nested_multipart_with_preamble_and_epilogue() -> None:
    data = msg(
        """From: a@example.org
Content-Type: multipart/mixed; boundary="outer"

preamble
--outer
Content-Type: text/plain

first
--outer
Content-Type: multipart/alternative; boundary=inner

inner preamble
--inner

alt text
--inner
Content-Type: text/html

<p>html</p>
--inner--
inner epilogue
--outer--
epilogue
"""
    )
    info = analyze(data)
    assert sections(data, info) == {
        "1": (b"Content-Type: text/plain\r\n\r\n", b"first"),
        "2": (
            b"Content-Type: multipart/alternative; boundary=inner\r\n\r\n",
            b"inner preamble\r\n--inner\r\n\r\nalt text\r\n--inner\r\n"
            b"Content-Type: text/html\r\n\r\n<p>html</p>\r\n--inner--\r\ninner epilogue",
        ),
        "2.1": (b"\r\n", b"alt text"),
        "2.2": (b"Content-Type: text/html\r\n\r\n", b"<p>html</p>"),
    }
    root = info.root
    assert root.kind == PartKind.MULTIPART
    assert data[root.body_start : root.body_end].startswith(b"preamble\r\n")
    assert data[root.body_start : root.body_end].endswith(b"--outer--\r\nepilogue\r\n")
    assert root.body_end == len(data)


def test_message_rfc822_inside_multipart() -> None:
    data = msg(
        """Subject: fwd
Content-Type: multipart/mixed; boundary=X

--X
Content-Type: message/rfc822

Subject: inner
Content-Type: multipart/alternative; boundary=Y

--Y

one
--Y

two
--Y--

--X--
"""
    )
    info = analyze(data)
    part = info.root.children[0]
    assert part.kind == PartKind.MESSAGE and part.message is not None
    assert part.message.envelope is not None and part.message.envelope.subject == "inner"
    assert sections(data, info) == {
        "1": (
            b"Content-Type: message/rfc822\r\n\r\n",
            b"Subject: inner\r\nContent-Type: multipart/alternative; boundary=Y\r\n\r\n"
            b"--Y\r\n\r\none\r\n--Y\r\n\r\ntwo\r\n--Y--\r\n",
        ),
        "1.1": (b"\r\n", b"one"),
        "1.2": (b"\r\n", b"two"),
    }
    # message/rfc822 lines count the whole encapsulated message
    assert part.lines == 10
    header = section_range(info, "1", "HEADER")
    assert header is not None
    assert data[header[0] : header[1]].startswith(b"Subject: inner\r\n")
    assert data[header[1] - 4 : header[1]] == b"Y\r\n\r\n"[-4:]


def test_missing_final_boundary_runs_to_end() -> None:
    data = msg(
        """Content-Type: multipart/mixed; boundary=Z

--Z

one
--Z

two, never closed
"""
    )
    assert sections(data) == {
        "1": (b"\r\n", b"one"),
        "2": (b"\r\n", b"two, never closed\r\n"),
    }


def test_multipart_without_boundary_gets_one_empty_part() -> None:
    data = msg("Content-Type: multipart/mixed\n\n--foo\n\ntext\n--foo--\n")
    info = analyze(data)
    assert sections(data, info) == {"1": (b"", b"")}
    assert info.root.children[0].mime_type == "text/plain"
    assert info.root.body_end == len(data)


def test_boundary_that_never_occurs() -> None:
    data = msg("Content-Type: multipart/mixed; boundary=nope\n\njust text\n")
    assert sections(data) == {"1": (b"", b"")}


def test_empty_parts_and_header_cut_by_delimiter() -> None:
    # part 1: nothing; part 2: only the blank line, whose CRLF belongs to the
    # delimiter; part 3: a header without its blank line; part 4: header, blank
    # line, then the close delimiter at once.
    data = msg(
        """Content-Type: multipart/mixed; boundary=E

--E
--E

--E
Content-Type: text/plain
--E
Content-Type: text/html

--E--
"""
    )
    assert sections(data) == {
        "1": (b"", b""),
        "2": (b"", b""),
        "3": (b"Content-Type: text/plain", b""),
        "4": (b"Content-Type: text/html\r\n", b""),
    }


def test_boundary_prefix_and_longest_match() -> None:
    # Like Dovecot: "--abcdef" is a delimiter for boundary "abc"; when nested
    # boundaries are prefixes of each other the longest match wins. Part 1 has
    # no epilogue, so the CRLF before "--xtra" ends its close delimiter line
    # and stays in its body (Dovecot counts it so too).
    data = msg(
        """Content-Type: multipart/mixed; boundary=x

--x
Content-Type: multipart/mixed; boundary=xy

--xy

inner
--xy--
--xtra
Content-Type: text/plain

second
--x--
"""
    )
    assert sections(data) == {
        "1": (
            b"Content-Type: multipart/mixed; boundary=xy\r\n\r\n",
            b"--xy\r\n\r\ninner\r\n--xy--\r\n",
        ),
        "1.1": (b"\r\n", b"inner"),
        "2": (b"Content-Type: text/plain\r\n\r\n", b"second"),
    }


def test_same_boundary_nested_belongs_to_innermost() -> None:
    data = msg(
        """Content-Type: multipart/mixed; boundary="a"

--a
Content-Type: multipart/mixed; boundary="a"

--a
Content-Type: text/plain

body
"""
    )
    assert sections(data) == {
        "1": (
            b'Content-Type: multipart/mixed; boundary="a"\r\n\r\n',
            b"--a\r\nContent-Type: text/plain\r\n\r\nbody\r\n",
        ),
        "1.1": (b"Content-Type: text/plain\r\n\r\n", b"body\r\n"),
    }


def test_digest_children_default_to_message_rfc822() -> None:
    data = msg(
        """Content-Type: multipart/digest; boundary=d

--d

Subject: one

first
--d
Content-Type: text/plain

explicit
--d--
"""
    )
    info = analyze(data)
    first, second = info.root.children
    assert first.kind == PartKind.MESSAGE and not first.content_type_given
    assert first.mime_type == "message/rfc822"
    assert first.message is not None and first.message.envelope is not None
    assert first.message.envelope.subject == "one"
    assert second.mime_type == "text/plain"
    assert sections(data, info)["1.1"] == (b"Subject: one\r\n\r\n", b"first")


def test_single_part_message_is_part_one() -> None:
    data = msg("Subject: s\nContent-Type: text/plain\n\nhello\n")
    info = analyze(data)
    assert sections(data, info) == {
        "1": (b"Subject: s\r\nContent-Type: text/plain\r\n\r\n", b"hello\r\n")
    }
    assert info.root.lines == 1
    assert info.root.size == 7


def test_empty_body() -> None:
    data = msg("Subject: s\n\n")
    info = analyze(data)
    assert (info.root.body_start, info.root.body_end) == (len(data), len(data))
    assert info.root.lines == 0


def test_header_only_message_without_blank_line() -> None:
    data = b"Subject: s\r\nFrom: a@b"
    info = analyze(data)
    assert info.root.body_start == info.root.body_end == len(data)
    assert info.envelope.subject == "s"
    assert info.envelope.from_[0].host == "b"


def test_message_without_header() -> None:
    data = msg("\nno header at all\n")
    info = analyze(data)
    assert sections(data, info) == {"1": (b"\r\n", b"no header at all\r\n")}
    assert info.envelope.subject is None


def test_empty_message() -> None:
    info = analyze(b"")
    assert info.size == 0
    assert (info.root.header_start, info.root.body_start, info.root.body_end) == (0, 0, 0)


def test_message_rfc822_is_parsed_whatever_the_encoding() -> None:
    data = msg("Content-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\nRnJvbQ==\n")
    info = analyze(data)
    inner = info.root.message
    assert inner is not None
    # the base64 line has no colon: a header line without a blank line after it
    assert data[inner.header_start : inner.body_start] == b"RnJvbQ==\r\n"
    assert inner.size == 0


def test_nesting_limit_makes_an_opaque_leaf() -> None:
    levels = MAX_DEPTH + 5
    parts = [b"Subject: deep\n"]
    for i in range(levels):
        parts.append(b"Content-Type: multipart/mixed; boundary=b%03d\n\n--b%03d\n" % (i, i))
    parts.append(b"Content-Type: text/plain\n\nleaf\n")
    parts.extend(b"--b%03d--\n" % i for i in reversed(range(levels)))
    info = analyze(msg(b"".join(parts)))
    depth, part = 0, info.root
    while part.kind == PartKind.MULTIPART:
        part = part.children[0]
        depth += 1
    assert depth == MAX_DEPTH
    assert part.kind == PartKind.LEAF and part.mime_type == "multipart/mixed"
    assert part.size > 0


def test_bare_lf_input_does_not_break() -> None:
    # The store normalises first; raw LF input still yields a result.
    data = b"Subject: s\nContent-Type: multipart/mixed; boundary=b\n\n--b\n\nx\n--b--\n"
    info = analyze(data)
    assert 0 <= info.root.body_start <= info.root.body_end == len(data)


def test_8bit_and_nul_in_body_are_kept() -> None:
    data = msg(
        b"Content-Type: multipart/mixed; boundary=J\n\n--J\nContent-Type: image/png\n\n\x89PNG\x00\xff\n--J--\n"
    )
    assert sections(data)["1"][1] == b"\x89PNG\x00\xff"


def test_long_boundaries_compare_80_octets() -> None:
    # Dovecot compares only the first 80 octets of a boundary.
    outer, inner = b"A" * 80 + b"X", b"A" * 80 + b"Y"
    data = msg(
        b'Content-Type: multipart/mixed; boundary="%s"\n\n--%s\n'
        b'Content-Type: multipart/mixed; boundary="%s"\n\n--%s\n\none\n--%s\n\ntwo\n--%s--\n'
        % (outer, outer, inner, inner, outer, outer)
    )
    info = analyze(data)
    assert len(info.root.children) == 1
    assert len(info.root.children[0].children) == 3  # "--AAA...X" lines count as inner
