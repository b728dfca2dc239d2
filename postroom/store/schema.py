"""The embedded store's SQLite schema and its forward migrations.

``MIGRATIONS[i]`` takes a database at version ``i`` to ``i + 1``; ``PRAGMA user_version``
records where a database stands. A database newer than this code is refused. Migrations
only ever append: released steps are never edited.
"""

from __future__ import annotations

import sqlite3

MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: the first release.
    """
    CREATE TABLE domains (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE COLLATE NOCASE
    );
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        localpart TEXT NOT NULL COLLATE NOCASE,
        domain_id INTEGER NOT NULL REFERENCES domains(id),
        password_hash TEXT NOT NULL,
        scram TEXT NOT NULL DEFAULT '',
        quota INTEGER NOT NULL DEFAULT 0,
        used INTEGER NOT NULL DEFAULT 0,
        created REAL NOT NULL,
        UNIQUE (localpart, domain_id)
    );
    CREATE TABLE aliases (
        id INTEGER PRIMARY KEY,
        localpart TEXT NOT NULL COLLATE NOCASE,   -- '' = catch-all for the domain
        domain_id INTEGER NOT NULL REFERENCES domains(id),
        target TEXT NOT NULL,
        UNIQUE (localpart, domain_id, target)
    );
    CREATE TABLE mailboxes (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id),
        name TEXT NOT NULL,
        uidvalidity INTEGER NOT NULL,
        uidnext INTEGER NOT NULL DEFAULT 1,
        highestmodseq INTEGER NOT NULL DEFAULT 1,
        recent_uid INTEGER NOT NULL DEFAULT 1,    -- first UID not yet shown as \\Recent
        special_use TEXT,
        subscribed INTEGER NOT NULL DEFAULT 0,
        UNIQUE (user_id, name)
    );
    CREATE TABLE messages (
        id INTEGER PRIMARY KEY,
        size INTEGER NOT NULL,
        internaldate REAL NOT NULL,
        body BLOB,                 -- inline body, or NULL when ``blob`` names a file
        blob TEXT,                 -- file name under blobs/ for large bodies
        info BLOB NOT NULL,        -- parse-once analysis (postroom.mime JSON)
        refs INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE entries (
        mailbox_id INTEGER NOT NULL,
        uid INTEGER NOT NULL,
        message_id INTEGER NOT NULL,
        flags INTEGER NOT NULL DEFAULT 0,
        keywords TEXT NOT NULL DEFAULT '',
        modseq INTEGER NOT NULL,
        savedate REAL NOT NULL,
        PRIMARY KEY (mailbox_id, uid)
    ) WITHOUT ROWID;
    CREATE INDEX entries_modseq ON entries (mailbox_id, modseq);
    CREATE TABLE expunged (
        mailbox_id INTEGER NOT NULL,
        uid INTEGER NOT NULL,
        modseq INTEGER NOT NULL,
        PRIMARY KEY (mailbox_id, uid)
    ) WITHOUT ROWID;
    CREATE TABLE queue (
        id INTEGER PRIMARY KEY,
        message_id INTEGER NOT NULL,
        mail_from TEXT NOT NULL,
        envid TEXT NOT NULL DEFAULT '',
        ret TEXT NOT NULL DEFAULT '',
        created REAL NOT NULL
    );
    CREATE TABLE queue_recipients (
        id INTEGER PRIMARY KEY,
        queue_id INTEGER NOT NULL REFERENCES queue(id),
        address TEXT NOT NULL,
        notify TEXT NOT NULL DEFAULT '',
        orcpt TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL DEFAULT 'pending',   -- pending | delivered | failed
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt REAL NOT NULL,
        last_reply TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX queue_recipients_due ON queue_recipients (state, next_attempt);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # 1 -> 2: the relay counts an item's pending recipients after each attempt.
    """
    CREATE INDEX queue_recipients_item ON queue_recipients (queue_id, state);
    """,
    # 2 -> 3: an entry carries its message's size and internal date, so SELECT, STATUS
    # and FETCH FLAGS never touch the (large) messages table: listing a 100,000-message
    # mailbox through the join jumped across every body page.
    """
    ALTER TABLE entries ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE entries ADD COLUMN internaldate REAL NOT NULL DEFAULT 0;
    UPDATE entries SET
        size = (SELECT m.size FROM messages m WHERE m.id = entries.message_id),
        internaldate = (SELECT m.internaldate FROM messages m WHERE m.id = entries.message_id);
    """,
    # 3 -> 4: subscriptions are names, not mailbox properties: they outlive DELETE and
    # may name mailboxes that do not exist (RFC 9051 section 6.3.7).
    """
    CREATE TABLE subscriptions (
        user_id INTEGER NOT NULL,
        name TEXT NOT NULL,
        PRIMARY KEY (user_id, name)
    ) WITHOUT ROWID;
    INSERT INTO subscriptions (user_id, name)
        SELECT user_id, name FROM mailboxes WHERE subscribed = 1;
    """,
    # 4 -> 5: the IMAP ENVELOPE and BODYSTRUCTURE of a message, rendered once when it is
    # stored (FETCH of them then costs a point query instead of a JSON parse and a
    # render, about 80 us a message). NULL for messages stored before: rendered from
    # ``info`` when asked.
    """
    ALTER TABLE messages ADD COLUMN imap_envelope BLOB;
    ALTER TABLE messages ADD COLUMN imap_bodystructure BLOB;
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


class SchemaTooNew(Exception):
    pass


def migrate(conn: sqlite3.Connection) -> int:
    """Bring ``conn`` to SCHEMA_VERSION; return the version found before."""
    (found,) = conn.execute("PRAGMA user_version").fetchone()
    if found > SCHEMA_VERSION:
        raise SchemaTooNew(
            f"the data folder was written by a newer Postroom (schema {found}, "
            f"this one knows {SCHEMA_VERSION})"
        )
    for version in range(found, SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        for stmt in _statements(MIGRATIONS[version]):
            conn.execute(stmt)
        conn.execute(f"PRAGMA user_version = {version + 1}")
        conn.execute("COMMIT")
    return int(found)


def _statements(script: str) -> list[str]:
    out: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        stripped = line.split("--", 1)[0] if "--" in line else line
        buf += stripped
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out
