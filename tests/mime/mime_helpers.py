"""Helpers for the MIME tests: messages written as text, structures shown as
section -> (MIME header, body) transcripts."""

from __future__ import annotations

import pathlib

from postroom.mime import MessageInfo, Part, PartKind, analyze, normalize_crlf

CORPUS = pathlib.Path(__file__).resolve().parents[3] / "shared" / "corpus" / "mime"
if not CORPUS.is_dir():  # the shared folder beside the work tree
    CORPUS = pathlib.Path("/work/shared/corpus/mime")


def msg(text: str | bytes) -> bytes:
    """A test message written with LF line endings, stored as CRLF."""
    raw = text.encode() if isinstance(text, str) else text
    return normalize_crlf(raw)


def sections(data: bytes, info: MessageInfo | None = None) -> dict[str, tuple[bytes, bytes]]:
    """Every numbered section -> (BODY[sec.MIME], BODY[sec]) octets."""
    info = info or analyze(data)
    out: dict[str, tuple[bytes, bytes]] = {}

    def visit(part: Part, prefix: str, at_message: bool) -> None:
        if part.kind == PartKind.MESSAGE and not at_message:
            assert part.message is not None
            visit(part.message, prefix, True)
            return
        if part.kind == PartKind.MULTIPART:
            for i, child in enumerate(part.children, 1):
                sec = f"{prefix}.{i}" if prefix else str(i)
                out[sec] = (
                    data[child.header_start : child.body_start],
                    data[child.body_start : child.body_end],
                )
                visit(child, sec, False)
        elif at_message:
            sec = f"{prefix}.1" if prefix else "1"
            out[sec] = (
                data[part.header_start : part.body_start],
                data[part.body_start : part.body_end],
            )
            if part.kind == PartKind.MESSAGE:
                visit(part, sec, False)

    visit(info.root, "", True)
    return out


def corpus_files() -> list[pathlib.Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(CORPUS.rglob("*.eml"))


def load_corpus() -> dict[str, bytes]:
    """Corpus file name (relative) -> message as stored (CRLF)."""
    return {str(p.relative_to(CORPUS)): normalize_crlf(p.read_bytes()) for p in corpus_files()}
