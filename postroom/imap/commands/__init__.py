"""Parsed IMAP commands: one module per command (family), and the dispatcher.

``parse_command`` takes a ``receiver.Command`` and returns the typed command (a subclass
of ``ImapCommand``), or raises ``ParseError`` carrying the tagged answer: BAD for syntax
errors and unknown commands (RFC 9051 section 7.1.3), rarely NO (``BADCHARSET``).
"""

from __future__ import annotations

from collections.abc import Callable

from postroom.imap.commands.append import Append, AppendMessage, append_mailbox, parse_append
from postroom.imap.commands.authenticate import Authenticate, parse_authenticate
from postroom.imap.commands.base import Availability, ImapCommand
from postroom.imap.commands.copy import Copy, Move, parse_copy
from postroom.imap.commands.create import Create, parse_create
from postroom.imap.commands.enable import Enable, parse_enable
from postroom.imap.commands.expunge import Expunge, parse_expunge
from postroom.imap.commands.fetch import (
    Fetch,
    FetchAttribute,
    FetchBinary,
    FetchBinarySize,
    FetchBody,
    FetchItem,
    Section,
    parse_fetch,
)
from postroom.imap.commands.id import Id, parse_id
from postroom.imap.commands.list import List, Lsub, parse_list, parse_lsub
from postroom.imap.commands.login import Login, parse_login
from postroom.imap.commands.mailbox import (
    Delete,
    Rename,
    Subscribe,
    Unsubscribe,
    parse_delete,
    parse_rename,
    parse_subscribe,
)
from postroom.imap.commands.quota import (
    GetQuota,
    GetQuotaRoot,
    SetQuota,
    parse_getquota,
    parse_getquotaroot,
    parse_setquota,
)
from postroom.imap.commands.search import (
    Search,
    SearchAge,
    SearchAll,
    SearchAnd,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchModSeq,
    SearchNot,
    SearchOr,
    SearchSaveDateSupported,
    SearchSet,
    SearchSize,
    SearchText,
    parse_search,
)
from postroom.imap.commands.select import QresyncParams, Select, parse_select
from postroom.imap.commands.simple import (
    NAMES as SIMPLE_NAMES,
)
from postroom.imap.commands.simple import (
    Capability,
    Check,
    Close,
    Idle,
    Logout,
    Namespace,
    Noop,
    StartTls,
    Unselect,
    parse_simple,
)
from postroom.imap.commands.status import Status, parse_status
from postroom.imap.commands.store import Store, parse_store
from postroom.imap.errors import ParseError
from postroom.imap.grammar.options import ParseOptions
from postroom.imap.grammar.reader import TAG_RE, Reader
from postroom.imap.receiver import Command

Parser = Callable[[Reader, str, str], ImapCommand]

PARSERS: dict[str, Parser] = {name: parse_simple for name in SIMPLE_NAMES}
PARSERS.update(
    {
        "AUTHENTICATE": parse_authenticate,
        "LOGIN": parse_login,
        "ENABLE": parse_enable,
        "ID": parse_id,
        "SELECT": parse_select,
        "EXAMINE": parse_select,
        "CREATE": parse_create,
        "DELETE": parse_delete,
        "RENAME": parse_rename,
        "SUBSCRIBE": parse_subscribe,
        "UNSUBSCRIBE": parse_subscribe,
        "LIST": parse_list,
        "LSUB": parse_lsub,
        "STATUS": parse_status,
        "APPEND": parse_append,
        "EXPUNGE": parse_expunge,
        "SEARCH": parse_search,
        "FETCH": parse_fetch,
        "STORE": parse_store,
        "COPY": parse_copy,
        "MOVE": parse_copy,
        # RFC 9208 section 4.1
        "GETQUOTA": parse_getquota,
        "GETQUOTAROOT": parse_getquotaroot,
        "SETQUOTA": parse_setquota,
        # RFC 9051 section 6.4.9 (and RFC 4315 section 2.1 for UID EXPUNGE)
        "UID COPY": parse_copy,
        "UID MOVE": parse_copy,
        "UID FETCH": parse_fetch,
        "UID SEARCH": parse_search,
        "UID STORE": parse_store,
        "UID EXPUNGE": parse_expunge,
    }
)


def parse_command(command: Command, options: ParseOptions | None = None) -> ImapCommand:
    """The typed command for a received ``Command``.

    Raises ``ParseError`` (with ``tag`` set when the tag was valid) for anything else;
    never another exception, whatever the bytes.
    """
    reader = Reader(command.segments, command.literals, options)
    tag_bytes = reader.match(TAG_RE)
    if tag_bytes is None or reader.peek() not in (0x20, -1):
        raise ParseError("Missing or invalid tag")
    tag = tag_bytes.decode("ascii")
    reader.tag = tag
    if reader.at_end:
        raise reader.fail("Missing command")
    reader.sp()
    name = reader.keyword("a command name")
    if name == "UID":
        if not reader.take(b" "):
            raise reader.fail("Missing UID command")
        name = "UID " + reader.keyword("a command name")
    parser = PARSERS.get(name)
    if parser is None:
        raise reader.fail(f"Unknown command {name[:40]}")
    return parser(reader, tag, name)


__all__ = [
    "PARSERS",
    "Append",
    "AppendMessage",
    "Authenticate",
    "Availability",
    "Capability",
    "Check",
    "Close",
    "Copy",
    "Create",
    "Delete",
    "Enable",
    "Expunge",
    "Fetch",
    "FetchAttribute",
    "FetchBinary",
    "FetchBinarySize",
    "FetchBody",
    "FetchItem",
    "GetQuota",
    "GetQuotaRoot",
    "Id",
    "Idle",
    "ImapCommand",
    "List",
    "Login",
    "Logout",
    "Lsub",
    "Move",
    "Namespace",
    "Noop",
    "QresyncParams",
    "Rename",
    "Search",
    "SearchAge",
    "SearchAll",
    "SearchAnd",
    "SearchDate",
    "SearchFlag",
    "SearchHeader",
    "SearchKey",
    "SearchModSeq",
    "SearchNot",
    "SearchOr",
    "SearchSaveDateSupported",
    "SearchSet",
    "SearchSize",
    "SearchText",
    "Section",
    "Select",
    "SetQuota",
    "StartTls",
    "Status",
    "Store",
    "Subscribe",
    "Unselect",
    "Unsubscribe",
    "append_mailbox",
    "parse_command",
]
