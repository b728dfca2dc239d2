"""What the administration commands do, reusable from the CLI and from tests.

Each function takes an open store and plain values, returns plain data, and raises
``AdminError`` (or a ``StoreError``) with a one-line message for the user.
"""

from __future__ import annotations

import re
from typing import Any

from postroom.auth.passwords import hash_password, make_scram_credentials
from postroom.store.models import Alias, Mailbox, User
from postroom.store.sqlite import SqliteStore

MIN_PASSWORD = 8


class AdminError(Exception):
    pass


_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]?)i?b?\s*$", re.I)


def parse_size(text: str) -> int:
    """``"500M"`` -> 524288000; ``"0"`` = unlimited. Binary units (K, M, G, T)."""
    m = _SIZE.match(text)
    if not m:
        raise AdminError(f"not a size: {text!r} (examples: 0, 1048576, 500M, 2G)")
    power: int = " kmgt".index((m.group(2) or " ").lower())
    return int(m.group(1)) << (10 * power)


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AdminError(f"password too short (at least {MIN_PASSWORD} characters)")
    if any(c in password for c in "\r\n\0"):
        raise AdminError("password contains a line break or NUL")


def credentials(password: str) -> tuple[str, str]:
    """(argon2id hash, SCRAM-SHA-256 stored key) for a new password."""
    check_password(password)
    return hash_password(password), make_scram_credentials(password)


async def add_user(store: SqliteStore, address: str, password: str, quota: int = 0) -> User:
    pw_hash, scram = credentials(password)
    return await store.add_user(address, pw_hash, scram, quota)


async def set_password(store: SqliteStore, address: str, password: str) -> None:
    pw_hash, scram = credentials(password)
    await store.set_password(address, pw_hash, scram)


def user_json(u: User) -> dict[str, Any]:
    return {"address": u.address, "quota": u.quota, "used": u.used}


def alias_json(a: Alias) -> dict[str, Any]:
    return {"alias": a.address, "targets": list(a.targets)}


async def mailboxes_json(store: SqliteStore, address: str) -> list[dict[str, Any]]:
    user = await store.get_user(address)
    if user is None:
        raise AdminError(f"no user {address}")
    out = []
    for mb in await store.list_mailboxes(user.id):
        st = await store.status(mb.id)
        out.append(_mailbox_row(mb, st.messages, st.unseen, st.size))
    return out


def _mailbox_row(mb: Mailbox, messages: int, unseen: int, size: int) -> dict[str, Any]:
    return {"name": mb.name, "special_use": mb.special_use, "subscribed": mb.subscribed,
            "messages": messages, "unseen": unseen, "size": size,
            "uidvalidity": mb.uidvalidity, "uidnext": mb.uidnext}
