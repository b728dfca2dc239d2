"""Property tests: whatever the bytes and however they are cut, the receiver frames them
the same way and the parser answers with a command or a ParseError - nothing else."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from imap_wire import run

from postroom.imap.commands import ImapCommand, parse_command
from postroom.imap.errors import ParseError
from postroom.imap.grammar import ParseOptions
from postroom.imap.receiver import (
    Command,
    CommandReceiver,
    Event,
    NeedData,
    NeedLiteral,
    ReceiverConfig,
)

SMALL = ReceiverConfig(
    max_line=64, max_literal=40, max_command=300, max_append_literal=100, max_raw_line=32
)
# POSTROOM_FUZZ_EXAMPLES=5000 for a longer run.
FUZZ = settings(
    max_examples=int(os.environ.get("POSTROOM_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def cut(data: bytes, points: list[int]) -> list[bytes]:
    marks = sorted({p % (len(data) + 1) for p in points})
    pieces, last = [], 0
    for m in marks:
        pieces.append(data[last:m])
        last = m
    pieces.append(data[last:])
    return pieces


def decide(event: NeedLiteral) -> bool:
    return event.size % 3 != 2  # deterministic, so every split takes the same decisions


def parse_or_error(command: Command, utf8: bool) -> ImapCommand | ParseError:
    try:
        return parse_command(command, ParseOptions(utf8=utf8))
    except ParseError as exc:
        assert exc.status in ("BAD", "NO") and exc.text
        if command.tag is not None and exc.text != "Missing or invalid tag":
            assert exc.tag == command.tag
        return exc


@FUZZ
@given(st.binary(max_size=400), st.lists(st.integers(min_value=0), max_size=8), st.booleans())
def test_random_bytes(data: bytes, points: list[int], utf8: bool) -> None:
    whole = run([data], config=SMALL, decide=decide)
    assert run(cut(data, points), config=SMALL, decide=decide) == whole
    for event in whole:
        if isinstance(event, Command):
            parse_or_error(event, utf8)


VOCABULARY = [
    b" ",
    b" ",
    b" ",
    b"(",
    b")",
    b"[",
    b"]",
    b"<0.10>",
    b'"',
    b'"q \\" s"',
    b"\\Seen",
    b"\\",
    b"*",
    b"$",
    b"%",
    b"1",
    b"0",
    b"4294967296",
    b"1:*",
    b"2,4:7",
    b"NIL",
    b"INBOX",
    b"&U,BTFw-",
    b"&Jjo",
    b"\xc3\xa9",
    b"\xff",
    b"UTF-8",
    b"X-BAD",
    b"1-Feb-2024",
    b'"01-Feb-2024 10:00:00 +0100"',
    b"{3}\r\nabc",
    b"{0+}\r\n",
    b"~{2+}\r\n\x00x",
    b"{5+}\r\n\r\nx\r\n",
]
_KEYWORD_TEXT = (
    "SELECT EXAMINE CREATE DELETE RENAME SUBSCRIBE UNSUBSCRIBE LIST LSUB STATUS APPEND SEARCH "
    "FETCH STORE COPY MOVE EXPUNGE UID LOGIN AUTHENTICATE ENABLE ID NOOP IDLE NAMESPACE "
    "CONDSTORE QRESYNC USE RETURN CHARSET SUBSCRIBED REMOTE RECURSIVEMATCH SPECIAL-USE "
    "CHILDREN MESSAGES UIDNEXT UNSEEN SIZE ALL MIN MAX COUNT SAVE OR NOT FROM HEADER BODY "
    "TEXT SINCE BEFORE LARGER MODSEQ KEYWORD OLDER BODY.PEEK BINARY BINARY.SIZE HEADER.FIELDS "
    "HEADER.FIELDS.NOT MIME FLAGS +FLAGS -FLAGS.SILENT UNCHANGEDSINCE CHANGEDSINCE VANISHED "
    "ENVELOPE BODYSTRUCTURE RFC822 FAST FULL priv all UTF8"
)
KEYWORDS = _KEYWORD_TEXT.split()
TOKENS = st.one_of(
    st.sampled_from(VOCABULARY),
    st.sampled_from(KEYWORDS).map(str.encode),
    st.binary(max_size=4),
)
COMMANDS = [c.encode() for c in KEYWORDS[:25]] + [b"UID FETCH", b"UID SEARCH", b"UID STORE"]


@FUZZ
@given(
    st.lists(
        st.tuples(st.sampled_from(COMMANDS), st.lists(TOKENS, max_size=25)), min_size=1, max_size=4
    ),
    st.booleans(),
)
def test_token_soup_commands(commands: list[tuple[bytes, list[bytes]]], utf8: bool) -> None:
    data = b"".join(
        b"t%d %s %s\r\n" % (i, name, b"".join(tokens)) for i, (name, tokens) in enumerate(commands)
    )
    for event in run([data], config=ReceiverConfig(), decide=decide):
        if isinstance(event, Command):
            parse_or_error(event, utf8)


@FUZZ
@given(st.binary(max_size=200), st.lists(st.booleans(), max_size=20))
def test_raw_line_mode_interleaved(data: bytes, raw_after: list[bool]) -> None:
    """Switching to raw line mode after commands never breaks framing."""
    receiver = CommandReceiver(SMALL)
    receiver.feed(data)
    flags = iter(raw_after)
    consumed: list[Event] = []
    while True:
        event = receiver.next_event()
        if isinstance(event, NeedData):
            break
        consumed.append(event)
        if isinstance(event, NeedLiteral):
            receiver.accept_literal() if decide(event) else receiver.reject_literal()
        elif receiver.idle and next(flags, False):
            receiver.expect_line()
    assert len(consumed) <= len(data) + 1


# --- valid commands from the grammar, then mutated ------------------------------------------

NUMBER = st.integers(min_value=1, max_value=2**32 - 1).map(lambda n: b"%d" % n)
SEQ_ELEMENT = st.one_of(
    NUMBER, st.just(b"*"), st.tuples(NUMBER, st.one_of(NUMBER, st.just(b"*"))).map(b":".join)
)
SEQUENCE_SET = st.one_of(
    st.just(b"$"), st.lists(SEQ_ELEMENT, min_size=1, max_size=5).map(b",".join)
)
ATOM = st.text(alphabet="abcXYZ019.-_$&+,~", min_size=1, max_size=8).map(str.encode)


def _quoted(text: bytes) -> bytes:
    return b'"' + text.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def _literal(data: bytes, plus: bool) -> bytes:
    return b"{%d%s}\r\n%s" % (len(data), b"+" if plus else b"", data)


ASTRING = st.one_of(
    ATOM,
    st.text(alphabet='ab "\\é', max_size=6).map(lambda t: _quoted(t.encode())),
    st.tuples(st.text(min_size=1, max_size=6).map(str.encode), st.booleans()).map(
        lambda a: _literal(*a)
    ),
)
MAILBOX = st.one_of(ATOM, st.sampled_from([b"INBOX", b"&U,BTFw-", b'"Sent Items"', b"a/b"]))
FLAG = st.one_of(st.sampled_from([b"\\Seen", b"\\deleted", b"\\Draft", b"$Junk", b"NIL"]), ATOM)
FLAG_LIST = st.lists(FLAG, max_size=4).map(lambda fs: b"(" + b" ".join(fs) + b")")
DATE = st.dates(min_value=__import__("datetime").date(1900, 1, 1)).map(
    lambda d: d.strftime("%d-%b-%Y").encode()
)


def _search_leaf() -> st.SearchStrategy[bytes]:
    simple = st.sampled_from(
        [b"ALL", b"SEEN", b"unseen", b"NEW", b"OLD", b"RECENT", b"DRAFT", b"SAVEDATESUPPORTED"]
    )
    with_string = st.tuples(
        st.sampled_from([b"FROM", b"TO", b"CC", b"BCC", b"SUBJECT", b"BODY", b"TEXT"]), ASTRING
    ).map(b" ".join)
    return st.one_of(
        simple,
        with_string,
        st.tuples(st.just(b"HEADER"), ATOM, ASTRING).map(b" ".join),
        st.tuples(
            st.sampled_from([b"SINCE", b"BEFORE", b"ON", b"SENTON", b"SAVEDSINCE"]), DATE
        ).map(b" ".join),
        st.tuples(st.sampled_from([b"LARGER", b"SMALLER", b"MODSEQ"]), NUMBER).map(b" ".join),
        st.tuples(st.sampled_from([b"KEYWORD", b"UNKEYWORD"]), FLAG).map(b" ".join),
        st.tuples(st.just(b"UID"), SEQUENCE_SET).map(b" ".join),
        SEQUENCE_SET,
        st.just(b'MODSEQ "/flags/\\\\seen" priv 5'),
    )


SEARCH_KEY = st.recursive(
    _search_leaf(),
    lambda child: st.one_of(
        child.map(lambda k: b"NOT " + k),
        st.tuples(child, child).map(lambda ks: b"OR " + b" ".join(ks)),
        st.lists(child, min_size=1, max_size=3).map(lambda ks: b"(" + b" ".join(ks) + b")"),
    ),
    max_leaves=12,
)
SECTION = st.one_of(
    st.sampled_from([b"", b"HEADER", b"TEXT", b"1", b"1.2.MIME", b"2.TEXT", b"3.HEADER"]),
    st.lists(ATOM, min_size=1, max_size=3).map(
        lambda fs: b"HEADER.FIELDS (" + b" ".join(fs) + b")"
    ),
)
PARTIAL = st.one_of(st.just(b""), st.tuples(NUMBER, NUMBER).map(lambda p: b"<%s.%s>" % p))
FETCH_ITEM = st.one_of(
    st.sampled_from([b"FLAGS", b"UID", b"ENVELOPE", b"BODYSTRUCTURE", b"RFC822.SIZE", b"MODSEQ"]),
    st.tuples(st.sampled_from([b"BODY", b"BODY.PEEK"]), SECTION, PARTIAL).map(
        lambda t: b"%s[%s]%s" % t
    ),
    st.tuples(
        st.sampled_from([b"BINARY", b"BINARY.PEEK"]), st.sampled_from([b"", b"1", b"2.3"]), PARTIAL
    ).map(lambda t: b"%s[%s]%s" % t),
)
VALID = st.one_of(
    st.tuples(st.sampled_from([b"SEARCH", b"UID SEARCH"]), SEARCH_KEY).map(b" ".join),
    st.tuples(SEARCH_KEY, st.sampled_from([b"", b"RETURN (MIN COUNT) ", b"CHARSET UTF-8 "])).map(
        lambda t: b"UID SEARCH " + t[1] + t[0]
    ),
    st.tuples(SEQUENCE_SET, st.lists(FETCH_ITEM, min_size=1, max_size=4)).map(
        lambda t: b"FETCH " + t[0] + b" (" + b" ".join(t[1]) + b")"
    ),
    st.tuples(
        SEQUENCE_SET, st.sampled_from([b"FLAGS", b"+FLAGS.SILENT", b"-FLAGS"]), FLAG_LIST
    ).map(lambda t: b"STORE " + b" ".join(t)),
    st.tuples(st.sampled_from([b"COPY", b"UID MOVE"]), SEQUENCE_SET, MAILBOX).map(b" ".join),
    st.tuples(MAILBOX, st.one_of(FLAG_LIST, st.just(b"")), st.binary(max_size=20)).map(
        lambda t: b"APPEND " + t[0] + b" " + (t[1] + b" " if t[1] else b"") + _literal(t[2], True)
    ),
    st.tuples(st.sampled_from([b"SELECT", b"EXAMINE", b"DELETE", b"SUBSCRIBE"]), MAILBOX).map(
        b" ".join
    ),
    st.tuples(ASTRING, ASTRING).map(lambda t: b"LOGIN " + b" ".join(t)),
    st.tuples(MAILBOX, st.lists(MAILBOX, min_size=1, max_size=3)).map(
        lambda t: b"LIST (SUBSCRIBED) " + t[0] + b" (" + b" ".join(t[1]) + b") RETURN (CHILDREN)"
    ),
)


@FUZZ
@given(VALID, st.integers(min_value=0), st.booleans())
def test_valid_commands_parse_at_any_split(command: bytes, point: int, utf8: bool) -> None:
    data = b"v1 " + command + b"\r\n"
    whole = [e for e in run([data]) if isinstance(e, Command)]
    assert len(whole) == 1
    assert [e for e in run(cut(data, [point])) if isinstance(e, Command)] == whole
    result = parse_or_error(whole[0], utf8)
    assert isinstance(result, ImapCommand), (data, result)


@FUZZ
@given(VALID, st.lists(st.tuples(st.integers(min_value=0), st.binary(max_size=2)), max_size=3))
def test_mutated_commands_parse_or_fail_cleanly(
    command: bytes, edits: list[tuple[int, bytes]]
) -> None:
    data = b"m1 " + command
    for point, insert in edits:
        at = point % (len(data) + 1)
        data = data[:at] + insert + data[at + 1 :]
    for event in run([data + b"\r\n"], config=SMALL, decide=decide):
        if isinstance(event, Command):
            parse_or_error(event, False)
