"""The IMAP grammar's building blocks: the command cursor, sequence sets, options."""

from postroom.imap.grammar.options import ParseLimits, ParseOptions
from postroom.imap.grammar.reader import Reader, decode_mailbox_name, normalize_inbox
from postroom.imap.grammar.sequence import SequenceSet, compact, parse_sequence_set

__all__ = [
    "ParseLimits",
    "ParseOptions",
    "Reader",
    "SequenceSet",
    "compact",
    "decode_mailbox_name",
    "normalize_inbox",
    "parse_sequence_set",
]
