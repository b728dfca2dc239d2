"""Command parsing as transcripts: raw client bytes (received at every split) -> command."""

from __future__ import annotations

import datetime

import pytest
from imap_wire import parse, parse_error

from postroom.imap.commands import (
    Append,
    AppendMessage,
    Authenticate,
    Availability,
    Capability,
    Check,
    Close,
    Copy,
    Create,
    Delete,
    Enable,
    Expunge,
    Id,
    Idle,
    List,
    Login,
    Logout,
    Lsub,
    Move,
    Namespace,
    Noop,
    QresyncParams,
    Rename,
    Select,
    StartTls,
    Status,
    Store,
    Subscribe,
    Unselect,
    Unsubscribe,
    parse_command,
)
from postroom.imap.errors import ParseError
from postroom.imap.grammar import SequenceSet, normalize_inbox
from postroom.imap.receiver import Command

UTC = datetime.UTC


# --- tags, names, argument-less commands --------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"a1 CAPABILITY\r\n", Capability(tag="a1")),
        (b"a.2 noop\r\n", Noop(tag="a.2")),
        (b"]x LOGOUT\r\n", Logout(tag="]x")),
        (b"t STARTTLS\r\n", StartTls(tag="t")),
        (b"t NAMESPACE\r\n", Namespace(tag="t")),
        (b"t IDLE\r\n", Idle(tag="t")),
        (b"t CLOSE\r\n", Close(tag="t")),
        (b"t UNSELECT\r\n", Unselect(tag="t")),
        (b"t CHECK\r\n", Check(tag="t")),
        (b"t EXPUNGE\r\n", Expunge(tag="t")),
    ],
)
def test_commands_without_arguments(line: bytes, expected: object) -> None:
    assert parse(line) == expected


@pytest.mark.parametrize(
    ("line", "tag", "text"),
    [
        (b"a1 NOOP x\r\n", "a1", "Unexpected extra arguments at ' x'"),
        (b"a1 NOOP \r\n", "a1", "Unexpected extra arguments at ' '"),
        (b"a1\r\n", "a1", "Missing command"),
        (b"a1 FROB x\r\n", "a1", "Unknown command FROB"),
        (b"a1 UID\r\n", "a1", "Missing UID command"),
        (b"a1 UID CLOSE\r\n", "a1", "Unknown command UID CLOSE"),
        (b"+a NOOP\r\n", None, "Missing or invalid tag"),
        (b"a\x80 NOOP\r\n", None, "Missing or invalid tag"),
        (b"a1  NOOP\r\n", "a1", "Expected a command name at ' NOOP'"),
    ],
)
def test_bad_command_lines(line: bytes, tag: str | None, text: str) -> None:
    error = parse_error(line)
    assert (error.tag, error.status, error.text) == (tag, "BAD", text)


def test_availability() -> None:
    assert Login.available is Availability.NOT_AUTHENTICATED
    assert Select.available & Availability.SELECTED
    assert not Copy.available & Availability.AUTHENTICATED
    assert Capability.available & Availability.NOT_AUTHENTICATED


# --- not authenticated ---------------------------------------------------------------------


def test_login_with_atoms_quoted_and_literals() -> None:
    assert parse(b"a LOGIN bob s3cr]t\r\n") == Login(tag="a", username="bob", password="s3cr]t")
    assert parse(b'a LOGIN "b\\"o b" "p\\\\w"\r\n') == Login(
        tag="a", username='b"o b', password="p\\w"
    )
    assert parse(b'a LOGIN {5}\r\nj\xc3\xb6rg {4+}\r\n\r\n"x\r\n') == Login(
        tag="a", username="jörg", password='\r\n"x'
    )
    assert "password" not in repr(parse(b"a LOGIN bob secret\r\n")).replace("password=", "")
    assert "secret" not in repr(parse(b"a LOGIN bob secret\r\n"))


def test_login_errors() -> None:
    assert parse_error(b"a LOGIN bob\r\n").text == "Expected a space at end of line"
    assert parse_error(b"a LOGIN {1}\r\n\xff x\r\n").text == "User name and password must be UTF-8"
    assert parse_error(b'a LOGIN "bob\\x" y\r\n').text == "Invalid or unterminated quoted string"
    assert parse_error(b'a LOGIN "bob y\r\n').text == "Invalid or unterminated quoted string"
    assert parse_error(b"a LOGIN ~{1}\r\nx y\r\n").text.startswith("literal8")


def test_authenticate() -> None:
    assert parse(b"a AUTHENTICATE plain\r\n") == Authenticate(tag="a", mechanism="PLAIN")
    assert parse(b"a AUTHENTICATE PLAIN =\r\n") == Authenticate(
        tag="a", mechanism="PLAIN", initial_response=b""
    )
    assert parse(b"a AUTHENTICATE PLAIN AGJvYgBzZWNyZXQ=\r\n") == Authenticate(
        tag="a", mechanism="PLAIN", initial_response=b"\x00bob\x00secret"
    )
    assert parse_error(b"a AUTHENTICATE PLAIN AGJvYgBzZWN@\r\n").text.startswith("Invalid")
    assert parse_error(b"a AUTHENTICATE PLAIN (x)\r\n").text.startswith("Expected a base64")
    assert parse_error(b"a AUTHENTICATE PLAIN AGJvYg\r\n").text.startswith("Invalid base64")


def test_enable_and_id() -> None:
    assert parse(b"a ENABLE condstore QRESYNC CONDSTORE\r\n") == Enable(
        tag="a", capabilities=("CONDSTORE", "QRESYNC")
    )
    assert parse_error(b"a ENABLE\r\n").text == "Expected a space at end of line"
    assert parse(b"a ID NIL\r\n") == Id(tag="a", params=None)
    assert parse(b"a ID ()\r\n") == Id(tag="a", params=())
    assert parse(b'a ID ("name" "Thunderbird" "version" NIL "x" {2}\r\n\xc3\xa9)\r\n') == Id(
        tag="a", params=(("name", "Thunderbird"), ("version", None), ("x", "é"))
    )
    assert parse_error(b'a ID ("name")\r\n').text == "Expected a space at ')'"
    pairs = b" ".join(b'"k%d" "v"' % i for i in range(65))
    assert parse_error(b"a ID (" + pairs + b")\r\n").code == "LIMIT"


# --- authenticated -------------------------------------------------------------------------


def test_select_and_examine() -> None:
    assert parse(b"a SELECT inbox\r\n") == Select(tag="a", mailbox="inbox")
    examine = parse(b'a EXAMINE "Sent Items" (CONDSTORE)\r\n')
    assert examine == Select(tag="a", mailbox="Sent Items", read_only=True, condstore=True)
    assert examine.name == "EXAMINE"
    assert parse_error(b"a SELECT x (FOO)\r\n").text == "Unknown or repeated SELECT parameter FOO"
    assert parse_error(b"a SELECT x ()\r\n").text.startswith("Expected a SELECT parameter")


def test_select_qresync() -> None:
    # RFC 7162 section 3.2.5 examples
    assert parse(b"A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211))\r\n") == (
        Select(
            tag="A02",
            mailbox="INBOX",
            qresync=QresyncParams(67890007, 20050715194045000, SequenceSet(((41, 41), (43, 211)))),
        )
    )
    full = parse(
        b"B04 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 "
        b"(5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976,29979,29982)) CONDSTORE)\r\n"
    )
    assert isinstance(full, Select) and full.condstore and full.qresync is not None
    assert full.qresync.seq_match is not None
    assert str(full.qresync.seq_match[0]) == "5000,7500,9000,9990:9999"
    only_match = parse(b"a SELECT x (QRESYNC (1 0 (1 2)))\r\n")
    assert isinstance(only_match, Select) and only_match.qresync == QresyncParams(
        1, 0, None, (SequenceSet.of(1), SequenceSet.of(2))
    )
    assert parse_error(b"a SELECT x (QRESYNC (1 2 1:*))\r\n").text.startswith("* is not")
    assert parse_error(b"a SELECT x (QRESYNC (0 2))\r\n").text == "Expected a non-zero number"
    assert parse_error(b"a SELECT x (QRESYNC (1))\r\n").text == "Expected a space at '))'"


def test_create_with_special_use_and_mailbox_name_encodings() -> None:
    assert parse(b"a CREATE &U,BTFw-/&ZeVnLIqe- (USE (\\drafts \\X-Mine))\r\n") == Create(
        tag="a", mailbox="台北/日本語", special_use=("\\Drafts", "\\X-Mine")
    )
    assert parse(b"a CREATE foo (USE ())\r\n") == Create(tag="a", mailbox="foo")
    # Not modified UTF-7: refused, as Dovecot does - kept as typed, LIST would show it
    # back as "a&-b", a name the client never created (RFC 3501 section 5.1.3).
    err = parse_error(b"a CREATE a&b\r\n")
    assert (err.status, err.code) == ("NO", "CANNOT")
    assert parse_error(b"a RENAME x a&b\r\n").status == "NO"
    assert parse(b"a DELETE a&b\r\n") == Delete(tag="a", mailbox="a&b")  # lookups stay lenient
    # UTF-8 sessions take names as UTF-8; "&" is then an ordinary character.
    assert parse(b'a CREATE "&U,BTFw-"\r\n', utf8=True) == Create(tag="a", mailbox="&U,BTFw-")
    assert parse(b'a CREATE "\xe5\x8f\xb0"\r\n', utf8=True) == Create(tag="a", mailbox="台")
    assert parse(b"a CREATE \xe5\x8f\xb0\r\n") == Create(tag="a", mailbox="台")  # lenient
    assert parse_error(b'a CREATE "\xff"\r\n', utf8=True).text == "Mailbox name is not valid UTF-8"
    assert parse_error(b"a CREATE {3}\r\na\tb\r\n").text.startswith("Mailbox name contains")
    assert parse_error(b"a CREATE x (FOO)\r\n").text == "Unknown or repeated CREATE parameter FOO"
    assert parse_error(b"a CREATE x (USE (Drafts))\r\n").text.startswith("Expected a special-use")


def test_mailbox_commands() -> None:
    assert parse(b"a DELETE {3+}\r\nfoo\r\n") == Delete(tag="a", mailbox="foo")
    assert parse(b'a RENAME "a b" c\r\n') == Rename(tag="a", mailbox="a b", new_name="c")
    assert parse(b"a SUBSCRIBE x\r\n") == Subscribe(tag="a", mailbox="x")
    assert parse(b"a UNSUBSCRIBE x\r\n") == Unsubscribe(tag="a", mailbox="x")
    assert parse_error(b"a RENAME a\r\n").text == "Expected a space at end of line"
    assert parse_error(b"a DELETE a*\r\n").text == "Unexpected extra arguments at '*'"


def test_normalize_inbox() -> None:
    assert normalize_inbox("inBox") == "INBOX"
    assert normalize_inbox("inbox/x", "/") == "INBOX/x"
    assert normalize_inbox("inbox/x") == "inbox/x"
    assert normalize_inbox("inboxes", "/") == "inboxes"


def test_list_basic_and_lsub() -> None:
    assert parse(b'a LIST "" *\r\n') == List(tag="a", reference="", patterns=("*",))
    assert parse(b"a LIST ~/Mail/ %]\r\n") == List(tag="a", reference="~/Mail/", patterns=("%]",))
    assert parse(b'a LSUB "#news." "comp.%"\r\n') == Lsub(
        tag="a", reference="#news.", pattern="comp.%"
    )
    assert parse(b'a LIST "" &ZeVnLIqe-*\r\n') == List(tag="a", reference="", patterns=("日本語*",))


def test_list_extended() -> None:
    # RFC 5258 section 5, RFC 6154 section 5.1, RFC 5819 section 2
    command = parse(
        b'a LIST (REMOTE SUBSCRIBED RECURSIVEMATCH) "" ("%" {4}\r\nx/%*) '
        b"RETURN (CHILDREN special-use STATUS (MESSAGES UNSEEN) SUBSCRIBED)\r\n"
    )
    assert command == List(
        tag="a",
        reference="",
        patterns=("%", "x/%*"),
        select_subscribed=True,
        select_remote=True,
        select_recursive_match=True,
        return_subscribed=True,
        return_children=True,
        return_special_use=True,
        return_status=("MESSAGES", "UNSEEN"),
        extended=True,
    )
    assert parse(b'a LIST () "" %\r\n') == List(
        tag="a", reference="", patterns=("%",), extended=True
    )
    assert parse(b'a LIST "" % RETURN ()\r\n') == List(
        tag="a", reference="", patterns=("%",), extended=True
    )
    special = parse(b'a LIST (SPECIAL-USE) "" *\r\n')
    assert isinstance(special, List) and special.select_special_use


@pytest.mark.parametrize(
    ("line", "text"),
    [
        (b'a LIST (RECURSIVEMATCH) "" %\r\n', "RECURSIVEMATCH needs another selection option"),
        (
            b'a LIST (REMOTE RECURSIVEMATCH) "" %\r\n',
            "RECURSIVEMATCH needs another selection option",
        ),
        (b'a LIST (FOO) "" %\r\n', "Unknown LIST selection option FOO"),
        (b'a LIST "" % RETURN (FOO)\r\n', "Unknown or repeated LIST return option FOO"),
        (b'a LIST "" % RETURN (STATUS (BAR))\r\n', "Unknown STATUS item BAR"),
        (b'a LIST "" % EXTRA (x)\r\n', "Expected RETURN"),
        (b'a LIST "" ()\r\n', "Expected a mailbox pattern at ')'"),
        (b'a LIST ""\r\n', "Expected a space at end of line"),
    ],
)
def test_list_errors(line: bytes, text: str) -> None:
    assert parse_error(line).text == text


def test_status() -> None:
    assert parse(
        b"a STATUS blurdybloop (UIDNEXT messages SIZE HIGHESTMODSEQ APPENDLIMIT RECENT UIDNEXT)\r\n"
    ) == Status(
        tag="a",
        mailbox="blurdybloop",
        items=("UIDNEXT", "MESSAGES", "SIZE", "HIGHESTMODSEQ", "APPENDLIMIT", "RECENT"),
    )
    assert parse_error(b"a STATUS x ()\r\n").text == "Expected at least one a status item"
    assert parse_error(b"a STATUS x (FOO)\r\n").text == "Unknown STATUS item FOO"
    assert parse_error(b"a STATUS x MESSAGES\r\n").text == "Expected ( at 'MESSAGES'"


def test_append() -> None:
    # RFC 9051 section 6.3.12 example
    message = b"Date: Mon, 7 Feb 1994 21:52:25 -0800 (PST)\r\nSubject: x\r\n\r\nHello\r\n"
    command = parse(
        b'A003 APPEND saved-messages (\\Seen $Forwarded) "07-Feb-1994 21:52:25 -0800" {%d}\r\n'
        % len(message)
        + message
        + b"\r\n"
    )
    assert command == Append(
        tag="A003",
        mailbox="saved-messages",
        messages=(
            AppendMessage(
                message,
                ("\\Seen", "$Forwarded"),
                datetime.datetime(
                    1994, 2, 7, 21, 52, 25, tzinfo=datetime.timezone(datetime.timedelta(hours=-8))
                ),
            ),
        ),
    )
    assert isinstance(command, Append) and command.messages[0].data is not message  # received


def test_multiappend_binary_and_utf8() -> None:
    data = (
        b'a APPEND INBOX {1+}\r\nA () " 1-Jan-2024 00:00:00 +0000" ~{2+}\r\n\x00B '
        b"(\\Draft) UTF8 (~{1+}\r\nC)\r\n"
    )
    command = parse(data)
    assert isinstance(command, Append)
    assert command.messages == (
        AppendMessage(b"A"),
        AppendMessage(b"\x00B", (), datetime.datetime(2024, 1, 1, tzinfo=UTC), binary=True),
        AppendMessage(b"C", ("\\Draft",), binary=True, utf8=True),
    )


@pytest.mark.parametrize(
    ("line", "text"),
    [
        (b"a APPEND x\r\n", "Expected a space at end of line"),
        (b"a APPEND x (\\Seen)\r\n", "Expected a space at end of line"),
        (
            b'a APPEND x "bad date" {1}\r\nA\r\n',
            'Expected a date-time like "01-Feb-2024 10:00:00 +0000"',
        ),
        (b'a APPEND x "31-Feb-2024 00:00:00 +0000" {1}\r\nA\r\n', "Invalid date-time"),
        (b'a APPEND x "01-Feb-2024 00:00:00 +0090" {1}\r\nA\r\n', "Invalid date-time"),
        (b"a APPEND x CATENATE (TEXT {1}\r\nA)\r\n", "Unsupported APPEND data CATENATE"),
        (b"a APPEND x UTF8 ({1}\r\nA)\r\n", "UTF8 APPEND data must be a literal8"),
        (b"a APPEND x {1}\r\nA \r\n", "Expected a message literal at end of line"),
        (b"a APPEND x {1}\r\nAB\r\n", "Expected a space at 'B'"),
        (b"a APPEND x ((\\Seen) {1}\r\nA\r\n", "Expected a flag at '(\\Seen) {1}'"),
    ],
)
def test_append_errors(line: bytes, text: str) -> None:
    assert parse_error(line).text == text


def test_append_message_limit() -> None:
    data = b"a APPEND x" + b" {1+}\r\nA" * 3 + b"\r\n"
    assert parse_error(data, max_append_messages=2).code == "LIMIT"


# --- selected ------------------------------------------------------------------------------


def test_store() -> None:
    assert parse(b"a STORE 2:4 +FLAGS (\\deleted)\r\n") == Store(
        tag="a", sequence_set=SequenceSet(((2, 4),)), mode="add", flags=("\\Deleted",)
    )
    assert parse(b"a UID STORE 1,* -flags.silent \\Seen foo NIL \\Seen\r\n") == Store(
        tag="a",
        uid=True,
        sequence_set=SequenceSet(((1, 1), (None, None))),
        mode="remove",
        silent=True,
        flags=("\\Seen", "foo", "NIL"),
    )
    assert parse(b"a STORE $ (UNCHANGEDSINCE 0) FLAGS ()\r\n") == Store(
        tag="a",
        sequence_set=SequenceSet(saved=True),
        mode="replace",
        flags=(),
        unchanged_since=0,
    )
    assert parse(b"a STORE 1 FLAGS (\\X-Ext $MDNSent)\r\n") == Store(
        tag="a", sequence_set=SequenceSet.of(1), mode="replace", flags=("\\X-Ext", "$MDNSent")
    )


@pytest.mark.parametrize(
    ("line", "text"),
    [
        (b"a STORE 1 +FLAGS\r\n", "Expected a space at end of line"),
        (b"a STORE 1 FLAG (x)\r\n", "Unknown STORE item FLAG"),
        (b"a STORE 1 (FOO 1) FLAGS x\r\n", "Unknown or repeated STORE modifier FOO"),
        (b"a STORE 1 FLAGS (x\r\n", "Expected a space at end of line"),
        (b"a STORE 1 FLAGS (\\)\r\n", "Expected a flag name at ')'"),
        (b"a STORE 0 FLAGS x\r\n", "Number in sequence set out of range (1 to 4294967295)"),
        (b"a STORE 1 FLAGS x]\r\n", "Unexpected extra arguments at ']'"),
    ],
)
def test_store_errors(line: bytes, text: str) -> None:
    assert parse_error(line).text == text


def test_copy_move_expunge() -> None:
    assert parse(b"a COPY 2:4 MEETING\r\n") == Copy(
        tag="a", sequence_set=SequenceSet(((2, 4),)), mailbox="MEETING"
    )
    move = parse(b"a UID MOVE 42:69 foo\r\n")
    assert move == Move(tag="a", sequence_set=SequenceSet(((42, 69),)), mailbox="foo", uid=True)
    assert move.name == "UID MOVE"
    assert parse(b"a UID EXPUNGE 3000:3002\r\n") == Expunge(
        tag="a", uids=SequenceSet(((3000, 3002),))
    )
    assert parse(b"a UID EXPUNGE 3000:3002\r\n").name == "UID EXPUNGE"
    assert parse_error(b"a UID EXPUNGE\r\n").text == "Expected a space at end of line"
    assert parse_error(b"a COPY 1:2\r\n").text == "Expected a space at end of line"


# --- sequence sets -------------------------------------------------------------------------


def test_sequence_sets() -> None:
    seq = parse(b"a COPY 5:3,*,7:*,*:2,10 x\r\n")
    assert isinstance(seq, Copy)
    assert seq.sequence_set.ranges == ((5, 3), (None, None), (7, None), (None, 2), (10, 10))
    assert str(seq.sequence_set) == "5:3,*,7:*,*:2,10"
    assert seq.sequence_set.resolve(8) == [(2, 8), (10, 10)]
    assert seq.sequence_set.resolve(0) == [(0, 7), (10, 10)]
    assert list(SequenceSet(((1, 3), (6, None))).iter(7, limit=6)) == [1, 2, 3, 6]
    assert SequenceSet(((559, None),)).contains(100, 100)  # RFC 9051 section 6.4.9
    with pytest.raises(ValueError):
        SequenceSet(saved=True).resolve(1)


@pytest.mark.parametrize(
    "bad", [b"0", b"1:0", b"4294967296", b"1,,2", b"1:", b":1", b"1:2:3", b"$,1", b"1,", b"**"]
)
def test_invalid_sequence_sets(bad: bytes) -> None:
    assert parse_error(b"a COPY " + bad + b" x\r\n").status == "BAD"


def test_big_sequence_sets_parse_but_are_bounded() -> None:
    elements = b",".join(b"%d" % (2 * i + 1) for i in range(100_000))
    command = Command("a", "UID FETCH", (b"a UID FETCH " + elements + b" FLAGS",))
    fetched = parse_command(command)
    assert len(fetched.sequence_set.ranges) == 100_000  # type: ignore[attr-defined]
    too_many = Command("a", "UID FETCH", (b"a UID FETCH " + elements + b",1 FLAGS",))
    from postroom.imap.grammar import ParseLimits, ParseOptions

    with pytest.raises(ParseError) as info:
        parse_command(too_many, ParseOptions(limits=ParseLimits(max_sequence_ranges=100_000)))
    assert (info.value.code, info.value.tag) == ("LIMIT", "a")


def test_append_mailbox_before_the_literal() -> None:
    # The shell may refuse an APPEND before the message is sent (NO [TRYCREATE]/[TOOBIG]).
    from postroom.imap.commands import append_mailbox
    from postroom.imap.receiver import CommandReceiver, NeedLiteral

    receiver = CommandReceiver()
    receiver.feed(b'a APPEND "Entw&APw-rfe" (\\Seen) {310}\r\n')
    event = receiver.next_event()
    assert isinstance(event, NeedLiteral)
    assert event.line == b'a APPEND "Entw&APw-rfe" (\\Seen) {310}'
    assert append_mailbox(event.line) == "Entwürfe"
    assert append_mailbox(b"a APPEND {5}") is None
    assert append_mailbox(b"a LOGIN x {5}") is None
    assert append_mailbox(b"+ APPEND x {5}") is None
    assert append_mailbox(b'a APPEND "x {5}') is None


SAMPLES = {
    "AUTHENTICATE": b"AUTHENTICATE PLAIN",
    "LOGIN": b"LOGIN a b",
    "ENABLE": b"ENABLE X",
    "ID": b"ID NIL",
    "SELECT": b"SELECT x",
    "EXAMINE": b"EXAMINE x",
    "CREATE": b"CREATE x",
    "DELETE": b"DELETE x",
    "RENAME": b"RENAME x y",
    "SUBSCRIBE": b"SUBSCRIBE x",
    "UNSUBSCRIBE": b"UNSUBSCRIBE x",
    "LIST": b'LIST "" *',
    "LSUB": b'LSUB "" *',
    "STATUS": b"STATUS x (SIZE)",
    "APPEND": b"APPEND x {1+}\r\nm",
    "SEARCH": b"SEARCH ALL",
    "FETCH": b"FETCH 1 UID",
    "STORE": b"STORE 1 FLAGS x",
    "COPY": b"COPY 1 x",
    "MOVE": b"MOVE 1 x",
    "GETQUOTA": b'GETQUOTA ""',
    "GETQUOTAROOT": b"GETQUOTAROOT x",
    "SETQUOTA": b'SETQUOTA "" ()',
    "UID COPY": b"UID COPY 1 x",
    "UID MOVE": b"UID MOVE 1 x",
    "UID FETCH": b"UID FETCH 1 UID",
    "UID SEARCH": b"UID SEARCH ALL",
    "UID STORE": b"UID STORE 1 FLAGS x",
    "UID EXPUNGE": b"UID EXPUNGE 1",
}


def test_every_command_knows_its_name() -> None:
    from postroom.imap.commands import PARSERS

    for name in PARSERS:
        line = SAMPLES.get(name, name.encode())
        command = parse(b"t " + line + b"\r\n")
        assert command.name == name and command.tag == "t"
