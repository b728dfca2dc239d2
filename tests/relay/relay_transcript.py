"""Drive the client engine through a transcript, feeding the server side in chunks.

A transcript is ``S:`` and ``C:`` lines (CRLF added). Consecutive ``S:`` lines are fed
together, cut into chunks of ``split`` bytes, the engine pumped after each chunk; at a
block of ``C:`` lines everything the client wrote since the last block must equal it.
``S: <close>`` closes the connection. Whenever the engine asks the driver something
(``Ready``, ``NeedBody``, ``StartTls``), the next action of ``actions`` answers; with
none left the driver waits for more server bytes.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Sequence

from postroom.smtp.client_protocol import (
    Closed,
    Event,
    NeedBody,
    NeedData,
    Ready,
    SessionFailed,
    SmtpClientProtocol,
    StartTls,
    TransactionDone,
)

Action = Callable[[SmtpClientProtocol], None]


def _blocks(script: str) -> list[tuple[str, bytes]]:
    blocks: list[tuple[str, bytes]] = []
    for raw in script.strip("\n").splitlines():
        line = raw.strip()
        if not line:
            continue
        who, _, text = line.partition(": ")
        if who not in ("S", "C"):
            who, text = line[0], line[3:]  # "C:" with nothing after it
        data = b"" if text == "<close>" else text.encode("utf-8") + b"\r\n"
        if text == "<close>":
            blocks.append(("X", b""))
        elif blocks and blocks[-1][0] == who:
            blocks[-1] = (who, blocks[-1][1] + data)
        else:
            blocks.append((who, data))
    return blocks


def run(
    engine: SmtpClientProtocol,
    script: str,
    actions: Sequence[Action],
    split: int | Sequence[int],
) -> list[Event]:
    """Returns the events that are not requests: TransactionDone, SessionFailed, Closed.
    ``split``: one chunk size, or sizes used in turn (cycling)."""
    sizes = itertools.cycle([split] if isinstance(split, int) else split)
    todo = deque(actions)
    seen: list[Event] = []

    def pump() -> None:
        while True:
            ev = engine.next_event()
            if isinstance(ev, NeedData):
                return
            if isinstance(ev, Ready | NeedBody | StartTls):
                if not todo:
                    return
                todo.popleft()(engine)
                continue
            if isinstance(ev, TransactionDone):
                seen.append(ev)
                continue
            assert isinstance(ev, SessionFailed | Closed)
            if not seen or seen[-1] != ev:
                seen.append(ev)
            return

    for who, data in _blocks(script):
        if who == "S":
            i = 0
            while i < len(data):
                n = next(sizes)
                engine.receive_data(data[i : i + n])
                i += n
                pump()
        elif who == "X":
            engine.receive_data(b"")
            pump()
        else:
            pump()
            out = engine.data_to_send()
            assert out == data, f"client wrote {out!r}, expected {data!r}"
    pump()
    assert engine.data_to_send() == b"", "client wrote more than the transcript shows"
    assert not todo, f"{len(todo)} action(s) not used"
    return seen


def every_split(
    factory: Callable[[], SmtpClientProtocol], script: str, actions: Callable[[], Sequence[Action]]
) -> list[Event]:
    """``run`` at every chunk size up to the longest server block; all must agree."""
    longest = max((len(d) for w, d in _blocks(script) if w == "S"), default=1)
    first: list[Event] | None = None
    for split in range(1, longest + 1):
        events = run(factory(), script, actions(), split)
        if first is None:
            first = events
        assert events == first, f"split {split} gave {events}, split 1 gave {first}"
    assert first is not None
    return first
