"""Differential IMAP testing: run the same command script against Postroom and Dovecot,
reduce both transcripts to what the RFCs fix, compare.

Theory of operation: a ``Scenario`` is a list of ``Step``s, each one command sent on one
of several sessions of the same account (sessions start authenticated, in IMAP4rev1 mode:
Dovecot 2.3 has no IMAP4rev2). ``run_scenario`` drives any ``Wire`` (a Postroom socket,
a Dovecot ``imap`` process on a pipe) and returns every step's response lines, literals
inlined. ``normalize`` turns one step's lines into a canonical list of units:

- the tagged answer keeps its status and response code, never its text;
- untagged responses are parsed (FETCH items sorted, flag and attribute lists sorted,
  sequence sets expanded, mailbox names as plain strings) and sorted: the RFCs fix no
  order between them, except the few rules tested on Postroom alone;
- a run of EXPUNGE responses becomes the set of message numbers it removed, as the
  numbers were before the command (ascending ``1 1 1`` and descending ``3 2 1`` both say
  "1, 2 and 3 went");
- FETCH responses for the same message within one command are merged (RFC 9051 section
  7.5.2 lets a server split them: Dovecot sends an implicit flag change apart);
- UIDVALIDITY values become ``V1``, ``V2``... by first appearance; every MODSEQ value
  becomes ``M``: servers allocate mod-sequences differently (Dovecot gives messages
  appended before CONDSTORE the same one), so only where they appear is compared here -
  what they mean (CHANGEDSINCE, UNCHANGEDSINCE, MODIFIED) shows in the answers' other
  data, and ``test_imap_modseq.py`` checks Postroom's ordering rules;
- CAPABILITY and ID data, and greeting texts, are dropped.

The fixture ``fixtures/dovecot_imap_diff.json`` holds Dovecot's raw lines per scenario;
``fixtures/imap_diff_harness.py`` regenerates it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Step:
    """One command (without tag) on ``session``. ``<<name>>`` in the text is replaced by
    a value captured earlier: ``uidvalidity`` and ``highestmodseq`` are the last seen in
    any answer; ``save="x"`` stores this step's as ``x.uidvalidity``/``x.highestmodseq``."""

    command: str
    session: int = 0
    save: str | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    steps: tuple[Step, ...]
    doc: str = ""


def steps(*items: str | Step | tuple[int, str]) -> tuple[Step, ...]:
    out = []
    for it in items:
        if isinstance(it, Step):
            out.append(it)
        elif isinstance(it, tuple):
            out.append(Step(it[1], session=it[0]))
        else:
            out.append(Step(it))
    return tuple(out)


# ---------------------------------------------------------------------- driving a server


class Wire(Protocol):
    def write(self, data: bytes) -> None: ...
    def readline(self) -> bytes: ...
    def read(self, n: int) -> bytes: ...


_LITERAL_AT_END = re.compile(rb"~?\{(\d+)\+?\}\r\n\Z")
_SYNC_LITERAL = re.compile(rb"\{(\d+)\}\r\n")


def read_response(wire: Wire) -> bytes:
    """One response with its literals inlined (``{n}\\r\\n`` kept, the data after it),
    without the final CRLF."""
    out = b""
    while True:
        line = wire.readline()
        if not line:
            raise EOFError("server closed the connection")
        out += line
        m = _LITERAL_AT_END.search(line)
        if m is None:
            return out.rstrip(b"\r\n")
        n = int(m.group(1))
        data = b""
        while len(data) < n:
            chunk = wire.read(n - len(data))
            if not chunk:
                raise EOFError("server closed the connection in a literal")
            data += chunk
        out += data


class Closed(Exception):
    """The server closed the session; ``lines`` is what it sent before."""

    def __init__(self, lines: list[bytes]) -> None:
        super().__init__("connection closed")
        self.lines = lines


def send_command(wire: Wire, tag: str, command: bytes) -> list[bytes]:
    """Send ``tag command`` and return every response up to the tagged one. A
    synchronizing literal waits for the continuation; a refusal ends the command.
    Raises ``Closed`` if the server hangs up."""
    parts = _SYNC_LITERAL.split(command)
    texts, sizes = parts[0::2], parts[1::2]  # split() interleaves the literal sizes
    out: list[bytes] = []
    done = tag.encode() + b" "
    try:
        for i, text in enumerate(texts):
            prefix = done if i == 0 else b""
            if i == len(sizes):
                wire.write(prefix + text + b"\r\n")
                break
            wire.write(prefix + text + b"{" + sizes[i] + b"}\r\n")
            while True:
                resp = read_response(wire)
                if resp.startswith(b"+"):
                    break
                out.append(resp)
                if resp.startswith(done):
                    return out
        while True:
            resp = read_response(wire)
            if resp.startswith(b"+"):  # a continuation nobody asked for: cancel it
                wire.write(b"*\r\n")
                continue
            out.append(resp)
            if resp.startswith(done):
                return out
    except (EOFError, OSError) as e:
        raise Closed(out) from e


CLOSED = b"* <closed>"
_MODSEQ_CAPTURE = re.compile(rb"HIGHESTMODSEQ (\d+)")
_UIDVALIDITY_CAPTURE = re.compile(rb"UIDVALIDITY (\d+)")


def run_scenario(scenario: Scenario, connect: Callable[[int], Wire]) -> list[list[bytes]]:
    """Every step's responses. ``connect(i)`` opens session ``i`` (authenticated)."""
    wires: dict[int, Wire] = {}
    values: dict[str, str] = {}
    result = []
    for n, step in enumerate(scenario.steps):
        if step.session not in wires:
            wires[step.session] = connect(step.session)
        text = step.command
        for name in re.findall(r"<<([\w.]+)>>", text):
            text = text.replace(f"<<{name}>>", values[name])
        try:
            lines = send_command(wires[step.session], f"s{n}", text.encode("utf-8"))
        except Closed as e:  # the next step on this session opens a new one
            lines = [*e.lines, CLOSED]
            del wires[step.session]
        result.append(lines)
        joined = b"\n".join(lines)
        for key, rx in (("uidvalidity", _UIDVALIDITY_CAPTURE),
                        ("highestmodseq", _MODSEQ_CAPTURE)):
            found = rx.findall(joined)
            if found:
                values[key] = found[-1].decode()
                if step.save:
                    values[f"{step.save}.{key}"] = found[-1].decode()
    for w in wires.values():
        try:
            send_command(w, "zz", b"LOGOUT")
        except Closed:
            pass
    return result


# ---------------------------------------------------------------------- parsing responses


@dataclass(frozen=True)
class Str:
    """A quoted string or a literal (the two spell the same value)."""

    value: bytes

    def __repr__(self) -> str:
        return repr(self.value.decode("latin-1"))


class Tokens:
    """A cursor over one response line."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.i = 0

    def at_end(self) -> bool:
        return self.i >= len(self.data)

    def peek(self) -> bytes:
        return self.data[self.i : self.i + 1]

    def skip_space(self) -> None:
        while self.peek() == b" ":
            self.i += 1

    def rest(self) -> bytes:
        return self.data[self.i :]

    def value(self) -> Any:
        """A list, Str, None (NIL), int or atom text."""
        self.skip_space()
        c = self.peek()
        if c == b"(":
            self.i += 1
            items = []
            while True:
                self.skip_space()
                if self.peek() == b")":
                    self.i += 1
                    return items
                if self.at_end():
                    raise ValueError(f"unclosed list in {self.data!r}")
                items.append(self.value())
        if c == b'"':
            j = self.i + 1
            buf = bytearray()
            while self.data[j : j + 1] != b'"':
                if self.data[j : j + 1] == b"\\":
                    j += 1
                buf += self.data[j : j + 1]
                j += 1
            self.i = j + 1
            return Str(bytes(buf))
        if c in (b"{", b"~") and re.match(rb"~?\{\d+\+?\}\r\n", self.rest()):
            m = re.match(rb"~?\{(\d+)\+?\}\r\n", self.rest())
            assert m is not None
            start = self.i + m.end()
            self.i = start + int(m.group(1))
            return Str(self.data[start : self.i])
        j = self.i
        depth = 0
        while j < len(self.data):
            ch = self.data[j : j + 1]
            if ch == b"[":
                depth += 1
            elif ch == b"]":
                depth -= 1
            elif depth == 0 and ch in (b" ", b"(", b")"):
                break
            j += 1
        word = self.data[self.i : j].decode("latin-1")
        self.i = j
        if word.upper() == "NIL":
            return None
        if word.isdigit():
            return int(word)
        return word

    def values(self) -> list[Any]:
        out = []
        while True:
            self.skip_space()
            if self.at_end():
                return out
            out.append(self.value())


def expand_set(text: str) -> tuple[int, ...]:
    """``1:3,7`` -> (1, 2, 3, 7); order kept for APPENDUID/COPYUID pairs."""
    out: list[int] = []
    for part in text.split(","):
        if ":" in part:
            a, b = (int(x) for x in part.split(":"))
            step = 1 if b >= a else -1
            out.extend(range(a, b + step, step))
        elif part:
            out.append(int(part))
    return tuple(out)


def _as_text(v: Any) -> str:
    if isinstance(v, Str):
        return v.value.decode("latin-1")
    return str(v)


class Symbols:
    """UIDVALIDITY values to V1, V2... (first appearance)."""

    def __init__(self) -> None:
        self.uidvalidity: dict[int, str] = {}

    def v(self, n: int) -> str:
        return self.uidvalidity.setdefault(n, f"V{len(self.uidvalidity) + 1}")


@dataclass(frozen=True)
class ModSeq:
    """A mod-sequence (compared as ``M``)."""

    value: int


def _status_code(code: str, sym: Symbols) -> tuple[Any, ...]:
    t = Tokens(code.encode("latin-1"))
    name = t.value()
    assert isinstance(name, str)
    name = name.upper()
    args = t.values()
    if name == "UIDVALIDITY":
        return (name, sym.v(args[0]))
    if name in ("APPENDUID", "COPYUID"):
        rest = [expand_set(str(a)) for a in args[1:]]
        return (name, sym.v(args[0]), *rest)
    if name in ("HIGHESTMODSEQ", "NOMODSEQ"):
        return (name, *(ModSeq(a) for a in args))
    if name == "MODIFIED":
        return (name, tuple(sorted(expand_set(str(args[0])))))
    if name in ("PERMANENTFLAGS", "CAPABILITY"):
        if name == "CAPABILITY":
            return (name,)
        return (name, tuple(sorted((a for a in args[0]), key=str.lower)))
    return (name, *(tuple(a) if isinstance(a, list) else a for a in args))


def _fetch_items(items: list[Any]) -> tuple[tuple[str, Any], ...]:
    out = []
    for k in range(0, len(items), 2):
        name = str(items[k]).upper()
        value = items[k + 1] if k + 1 < len(items) else None
        if name == "FLAGS":
            value = tuple(sorted(value, key=str.lower))
        elif name == "MODSEQ":
            value = ModSeq(value[0])
        out.append((name, _freeze(value)))
    return tuple(sorted(out, key=lambda kv: kv[0]))


def _freeze(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_freeze(x) for x in v)
    return v


def parse_untagged(line: bytes, sym: Symbols) -> tuple[Any, ...] | None:
    """One untagged response as a comparable tuple; None for data that legitimately
    differs between servers (CAPABILITY, ID)."""
    t = Tokens(line[2:])
    first = t.value()
    if isinstance(first, int):
        kind = str(t.value()).upper()
        if kind == "FETCH":
            return ("FETCH", first, _fetch_items(t.value()))
        return (kind, first)
    kind = str(first).upper()
    if kind in ("OK", "NO", "BAD", "BYE", "PREAUTH"):
        return (kind, *_resp_code(t, sym))
    if kind in ("CAPABILITY", "ID"):
        return None
    if kind in ("LIST", "LSUB"):
        attrs = tuple(sorted(t.value(), key=str.lower))
        delim = _as_text(t.value())
        name = _as_text(t.value())
        ext = _freeze(t.values())
        return (kind, name, attrs, delim, ext) if ext else (kind, name, attrs, delim)
    if kind == "STATUS":
        name = _as_text(t.value())
        items = t.value()
        pairs = []
        for k in range(0, len(items), 2):
            key, val = str(items[k]).upper(), items[k + 1]
            if key == "UIDVALIDITY":
                val = sym.v(val)
            elif key == "HIGHESTMODSEQ":
                val = ModSeq(val)
            pairs.append((key, val))
        return ("STATUS", name, tuple(sorted(pairs)))
    if kind == "FLAGS":
        return ("FLAGS", tuple(sorted(t.value(), key=str.lower)))
    if kind == "SEARCH":
        rest = t.values()
        nums = tuple(sorted(x for x in rest if isinstance(x, int)))
        mod = [x for x in rest if isinstance(x, list)]
        if mod:
            return ("SEARCH", nums, ModSeq(mod[0][1]))
        return ("SEARCH", nums)
    if kind == "ESEARCH":
        rest = t.values()
        out: list[Any] = ["ESEARCH"]
        if rest and isinstance(rest[0], list):
            out.append(("TAG", _as_text(rest[0][1])))
            rest = rest[1:]
        if rest and str(rest[0]).upper() == "UID":
            out.append("UID")
            rest = rest[1:]
        data = []
        for k in range(0, len(rest), 2):
            key = str(rest[k]).upper()
            val = rest[k + 1]
            if key == "ALL":
                val = tuple(sorted(expand_set(str(val))))
            elif key == "MODSEQ":
                val = ModSeq(val)
            data.append((key, val))
        out.append(tuple(sorted(data)))
        return tuple(out)
    if kind == "VANISHED":
        rest = t.values()
        earlier = bool(rest and isinstance(rest[0], list))
        uids = tuple(sorted(expand_set(str(rest[-1]))))
        return ("VANISHED", "EARLIER" if earlier else "", uids)
    if kind == "ENABLED":
        return ("ENABLED", tuple(sorted(str(x).upper() for x in t.values())))
    return (kind, *_freeze(t.values()))


def _resp_code(t: Tokens, sym: Symbols) -> tuple[Any, ...]:
    t.skip_space()
    if t.peek() != b"[":
        return ()
    end = t.data.index(b"]", t.i)
    # a code's arguments may hold "]" only inside PERMANENTFLAGS - none does here
    code = t.data[t.i + 1 : end].decode("latin-1")
    t.i = end + 1
    return (_status_code(code, sym),)


def _expunged_positions(seqs: Iterable[int]) -> tuple[int, ...]:
    """Message numbers (as before the command) removed by EXPUNGE responses in order."""
    remaining = list(range(1, 100_000))
    gone = []
    for s in seqs:
        gone.append(remaining.pop(s - 1))
    return tuple(sorted(gone))


def normalize_step(lines: list[bytes], tag: str, sym: Symbols) -> list[Any]:
    """One step's responses as comparable units; the tagged answer last."""
    units: list[Any] = []
    expunges: list[int] = []
    tagged: Any = None
    for line in lines:
        if line.startswith(tag.encode() + b" "):
            t = Tokens(line[len(tag) + 1 :])
            status = str(t.value()).upper()
            tagged = ("TAGGED", status, *_resp_code(t, sym))
            continue
        if not line.startswith(b"* "):
            units.append(("RAW", line.decode("latin-1")))
            continue
        u = parse_untagged(line, sym)
        if u is None:
            continue
        if u[0] == "EXPUNGE":
            expunges.append(u[1])
            continue
        units.append(u)
    if expunges:
        units.append(("EXPUNGED", _expunged_positions(expunges)))
    units = _merge_fetches(units)
    units.sort(key=repr)
    units.append(tagged)
    return units


def _merge_fetches(units: list[Any]) -> list[Any]:
    merged: dict[int, dict[str, Any]] = {}
    out = []
    for u in units:
        if u[0] == "FETCH":
            if u[1] not in merged:
                merged[u[1]] = {}
                out.append(("FETCH", u[1]))
            merged[u[1]].update(dict(u[2]))
        else:
            out.append(u)
    return [("FETCH", u[1], tuple(sorted(merged[u[1]].items())))
            if u[0] == "FETCH" else u for u in out]


def _opaque_modseqs(v: Any) -> Any:
    if isinstance(v, ModSeq):
        return "M"
    if isinstance(v, tuple):
        return tuple(_opaque_modseqs(x) for x in v)
    if isinstance(v, list):
        return [_opaque_modseqs(x) for x in v]
    return v


def normalize(transcript: list[list[bytes]]) -> list[list[Any]]:
    """Every step of one scenario, normalized (see the module docstring)."""
    sym = Symbols()
    return [_opaque_modseqs(normalize_step(lines, f"s{n}", sym))
            for n, lines in enumerate(transcript)]


@dataclass
class Difference:
    scenario: str
    step: int
    command: str
    dovecot: list[Any]
    postroom: list[Any]
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (f"{self.scenario} step {self.step}: {self.command}\n"
                f"  dovecot:  {self.dovecot}\n  postroom: {self.postroom}")
