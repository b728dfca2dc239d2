"""Fuzz target: sequence sets - parse, resolve, membership, bounded iteration and the
compact form that goes back out (COPYUID, ESEARCH, VANISHED).
``python -m fuzz.imap_sequence --seconds N``."""

from __future__ import annotations

import itertools
import zlib

from fuzz._imap import one_line
from fuzz.engine import Target, main
from postroom.imap.errors import ParseError
from postroom.imap.grammar.sequence import compact, parse_sequence_set
from postroom.imap.responses import error_response


def check(data: bytes) -> None:
    largest = zlib.crc32(data) % 50
    try:
        seq = parse_sequence_set(data, max_ranges=5000)
    except ParseError as e:
        assert e.status == "BAD"
        one_line(error_response(e))  # the text quotes the input: still one line
        return
    if seq.saved:
        return
    ranges = seq.resolve(largest)
    for (a, b), (c, _) in itertools.pairwise(ranges):
        assert a <= b < c - 1, ranges  # sorted, merged
    members = [n for n in range(1, largest + 1) if seq.contains(n, largest)]
    assert members == [n for n in range(1, largest + 1) if any(a <= n <= b for a, b in ranges)]
    listed = list(seq.iter(largest, limit=1000))
    assert len(listed) <= 1000 and listed == sorted(set(listed))
    if members:
        text = compact(members)
        again = parse_sequence_set(text.encode())
        assert [n for n in range(1, largest + 1) if again.contains(n, largest)] == members


DICTIONARY = (b"1", b"2", b":", b",", b"*", b"$", b"4294967295", b"4294967296", b"0", b"1:*",
              b"*:1", b"5:3", b"1,1,1,1,", b"00000000001", b" ", b"\xff")

TARGET = Target("imap_sequence", check, DICTIONARY, max_size=60000)

if __name__ == "__main__":
    raise SystemExit(main(TARGET))
