"""What the parser needs besides the bytes: the session's string mode and the limits."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """Bounds on what one command may ask for; over them the command fails with BAD.

    They protect the server from a command that parses into a huge structure from a
    moderate line (the receiver bounds the bytes themselves).
    """

    max_search_depth: int = 50  # nested parentheses / NOT / OR in SEARCH
    max_search_keys: int = 10_000  # search keys in one SEARCH
    max_sequence_ranges: int = 200_000  # elements of one sequence set
    max_section_parts: int = 32  # BODY[1.2.3...] part numbers
    max_fetch_items: int = 256  # FETCH attributes (after macro expansion)
    max_header_fields: int = 1_000  # HEADER.FIELDS (...) names
    max_flags: int = 1_000  # flags in one flag list
    max_list_patterns: int = 100  # LIST-EXTENDED patterns
    max_append_messages: int = 1_000  # MULTIAPPEND messages
    max_id_pairs: int = 64  # ID field/value pairs (RFC 2971 section 3.3 says 30)
    max_enable: int = 64  # ENABLE capabilities


@dataclass(frozen=True, slots=True)
class ParseOptions:
    """Session facts the grammar depends on.

    ``utf8``: the session has enabled IMAP4rev2 or UTF8=ACCEPT, so mailbox names are
    UTF-8 (RFC 9051 section 5.1; RFC 6855 section 3); otherwise they are modified UTF-7
    (RFC 3501 section 5.1.3), decoded leniently.
    """

    utf8: bool = False
    limits: ParseLimits = field(default_factory=ParseLimits)
