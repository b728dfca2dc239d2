"""Parse-once MIME analysis for the store and IMAP.

On delivery the store calls :func:`normalize_crlf` then :func:`analyze`, and keeps
``info.to_json()``; IMAP reads :meth:`MessageInfo.from_json` and answers FETCH
ENVELOPE / BODY / BODYSTRUCTURE with :func:`envelope_to_imap` /
:func:`bodystructure_to_imap`, BODY[section] and BINARY with the ``*_range``
functions, :func:`header_fields` and :func:`decode_transfer`, and SEARCH / SORT from
``info.search`` and the sort-key functions, without parsing the message again.
Reference behaviour is Dovecot 2.3's (see ``tests/mime/test_mime_dovecot.py``).
"""

from postroom.mime.crlf import normalize_crlf
from postroom.mime.headers import header_fields
from postroom.mime.imap import (
    bodystructure_to_imap,
    envelope_to_imap,
    imap_string,
)
from postroom.mime.model import (
    FORMAT_VERSION,
    Address,
    Envelope,
    MessageInfo,
    Part,
    PartKind,
    SearchFields,
    unfold,
)
from postroom.mime.parser import MAX_DEPTH, MAX_PARTS, analyze
from postroom.mime.search import (
    address_sort_key,
    base_subject,
    decode_words,
    display_sort_key,
)
from postroom.mime.sections import (
    body_range,
    header_range,
    mime_range,
    part_by_section,
    section_range,
    text_range,
)
from postroom.mime.transfer import decode_text, decode_transfer

__all__ = [
    "FORMAT_VERSION",
    "MAX_DEPTH",
    "MAX_PARTS",
    "Address",
    "Envelope",
    "MessageInfo",
    "Part",
    "PartKind",
    "SearchFields",
    "address_sort_key",
    "analyze",
    "base_subject",
    "body_range",
    "bodystructure_to_imap",
    "decode_text",
    "decode_transfer",
    "decode_words",
    "display_sort_key",
    "envelope_to_imap",
    "header_fields",
    "header_range",
    "imap_string",
    "mime_range",
    "normalize_crlf",
    "part_by_section",
    "section_range",
    "text_range",
    "unfold",
]
