"""SASLprep (RFC 4013): the examples of RFC 4013 §3, then the rules one by one."""

from __future__ import annotations

import pytest

from postroom.auth.saslprep import SaslprepError, saslprep


@pytest.mark.parametrize(
    ("given", "prepared"),
    [
        ("I\u00adX", "IX"),  # 1: SOFT HYPHEN mapped to nothing
        ("user", "user"),  # 2: no transformation
        ("USER", "USER"),  # 3: case preserved
        ("\u00aa", "a"),  # 4: output is NFKC
        ("\u2168", "IX"),  # 5: ROMAN NUMERAL NINE, NFKC; matches #1
    ],
)
def test_rfc4013_examples(given: str, prepared: str) -> None:
    assert saslprep(given) == prepared


@pytest.mark.parametrize(
    "refused",
    [
        "\u0007",  # 6: prohibited character (control)
        "\u0627\u0031",  # 7: bidirectional check (RandALCat first, digit last)
    ],
)
def test_rfc4013_refused_examples(refused: str) -> None:
    with pytest.raises(SaslprepError):
        saslprep(refused)


def test_non_ascii_space_becomes_space() -> None:
    assert saslprep("a\u00a0b\u3000c") == "a b c"  # §2.1, table C.1.2


def test_ligature_is_normalised() -> None:
    assert saslprep("\ufb01sh") == "fish"  # §2.2 NFKC


@pytest.mark.parametrize(
    "refused",
    [
        "\x00",  # C.2.1 ASCII control
        "a\u0085b",  # C.2.2 non-ASCII control
        "\ue000",  # C.3 private use
        "\ufdd0",  # C.4 non-character
        "\ufff9",  # C.6 inappropriate for plain text
        "\u2ff0",  # C.7 inappropriate for canonical representation
        "\u200e",  # C.8 LEFT-TO-RIGHT MARK
        "\U000e0001",  # C.9 tagging character
        "\u05d0a\u05d0",  # RFC 3454 §6: RandALCat with LCat
    ],
)
def test_prohibited_output(refused: str) -> None:
    with pytest.raises(SaslprepError):
        saslprep(refused, allow_unassigned=True)


def test_right_to_left_string_alone_is_fine() -> None:
    assert saslprep("\u05d0\u05d1") == "\u05d0\u05d1"


def test_unassigned_refused_when_stored_allowed_in_queries() -> None:
    unassigned = "\u0221"  # unassigned in Unicode 3.2 (table A.1)
    with pytest.raises(SaslprepError):
        saslprep(unassigned)
    assert saslprep(unassigned, allow_unassigned=True) == unassigned


def test_error_is_a_value_error() -> None:
    assert issubclass(SaslprepError, ValueError)
