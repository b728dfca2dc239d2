"""SASLprep: the stringprep profile for user names and passwords (RFC 4013).

Theory of operation: both sides of a password check must prepare the string the same
way, or "ﬁ" typed on one keyboard and "fi" on another are different passwords. RFC 4013
fixes the steps: map (§2.1), normalise with NFKC (§2.2), refuse prohibited output
(§2.3), check bidirectional text (§2.4) and, for *stored* strings only, refuse code
points unassigned in Unicode 3.2 (§2.5, RFC 3454 §7). The tables are the stdlib's
``stringprep`` module, which is RFC 3454's appendices verbatim.

``saslprep(text)`` is for strings being stored (a new password); pass
``allow_unassigned=True`` for strings being checked against a stored value ("queries"
in RFC 3454 terms), so a newer client's character does not turn a login into an error.
"""

from __future__ import annotations

import stringprep
import unicodedata
from collections.abc import Callable

__all__ = ["SaslprepError", "saslprep"]


class SaslprepError(ValueError):
    """The string cannot be prepared; RFC 4013 says the check then fails."""


# RFC 4013 §2.3: prohibited output (C.1.2, C.2.1, C.2.2, C.3 to C.9).
_PROHIBITED: tuple[tuple[Callable[[str], bool], str], ...] = (
    (stringprep.in_table_c12, "non-ASCII space"),
    (stringprep.in_table_c21_c22, "control character"),
    (stringprep.in_table_c3, "private use character"),
    (stringprep.in_table_c4, "non-character code point"),
    (stringprep.in_table_c5, "surrogate code point"),
    (stringprep.in_table_c6, "character inappropriate for plain text"),
    (stringprep.in_table_c7, "character inappropriate for canonical representation"),
    (stringprep.in_table_c8, "change-display-property or deprecated character"),
    (stringprep.in_table_c9, "tagging character"),
)


def saslprep(text: str, *, allow_unassigned: bool = False) -> str:
    """Prepare ``text`` per RFC 4013; raise ``SaslprepError`` if it is not allowed.

    The result may be empty (e.g. a string of soft hyphens); callers decide whether an
    empty name or password is acceptable (RFC 4616 §2 says verification fails).
    """
    # §2.1 Mapping: non-ASCII spaces (C.1.2) become SPACE, B.1 maps to nothing.
    mapped = "".join(
        " " if stringprep.in_table_c12(ch) else ch for ch in text if not stringprep.in_table_b1(ch)
    )
    # §2.2 Normalization: Unicode form KC, as of Unicode 3.2 (RFC 3454 §4).
    prepared = unicodedata.ucd_3_2_0.normalize("NFKC", mapped)

    for ch in prepared:
        for in_table, what in _PROHIBITED:
            if in_table(ch):
                raise SaslprepError(f"prohibited {what} U+{ord(ch):04X}")
        # §2.5 / RFC 3454 §7: unassigned code points are refused in stored strings.
        if not allow_unassigned and stringprep.in_table_a1(ch):
            raise SaslprepError(f"unassigned code point U+{ord(ch):04X}")

    _check_bidi(prepared)
    return prepared


def _check_bidi(text: str) -> None:
    """RFC 3454 §6, required by RFC 4013 §2.4 (C.8 was refused above)."""
    if not any(stringprep.in_table_d1(ch) for ch in text):
        return
    # A string with any RandALCat character contains no LCat character ...
    if any(stringprep.in_table_d2(ch) for ch in text):
        raise SaslprepError("mixes right-to-left and left-to-right characters")
    # ... and starts and ends with a RandALCat character.
    if not (stringprep.in_table_d1(text[0]) and stringprep.in_table_d1(text[-1])):
        raise SaslprepError("right-to-left string must start and end with RandALCat")
