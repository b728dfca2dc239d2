"""Import rules from shared/DESIGN.md: protocol engines never import the store, asyncio
or sockets; the store never imports a protocol."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "postroom"

ENGINES = [
    "smtp/server_protocol.py", "smtp/client_protocol.py", "smtp/codes.py", "smtp/address.py",
    "smtp/params.py", "smtp/data.py", "pop3/protocol.py", "imap/receiver.py",
    "imap/responses.py", "imap/mutf7.py", "auth/sasl.py", "auth/scram.py",
]
ENGINE_DIRS = ["imap/commands", "imap/grammar", "mime"]
FORBIDDEN_IN_ENGINES = ("postroom.store", "asyncio", "socket", "ssl", "sqlite3")
PROTOCOLS = ("postroom.smtp", "postroom.imap", "postroom.pop3", "postroom.queue")


def imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def engine_files() -> list[Path]:
    files = [ROOT / f for f in ENGINES]
    for d in ENGINE_DIRS:
        files += sorted((ROOT / d).rglob("*.py"))
    return files


def test_engines_do_no_io_and_know_no_store() -> None:
    for f in engine_files():
        assert f.exists(), f
        bad = {m for m in imports(f) if m.startswith(FORBIDDEN_IN_ENGINES)}
        assert not bad, f"{f.relative_to(ROOT)} imports {bad}"


def test_store_imports_no_protocol() -> None:
    for f in sorted((ROOT / "store").rglob("*.py")):
        bad = {m for m in imports(f) if m.startswith(PROTOCOLS)}
        assert not bad, f"{f.relative_to(ROOT)} imports {bad}"
