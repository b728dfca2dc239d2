"""The ``postroom`` command (shared/DESIGN.md section 2 is the contract).

Every failure is one line on stderr and a non-zero exit: 1 for an error, 2 for usage.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from postroom import admin
from postroom.config import Config, ConfigError, config_path, load_config
from postroom.store.models import StoreError
from postroom.store.sqlite import SqliteStore

DEV_PORTS = {"smtp": 2525, "submission": 2587, "submissions": 2465, "imap": 2143,
             "imaps": 2993, "pop3": 2110, "pop3s": 2995}
DEV_DOMAIN = "example.test"
DEV_USER = f"user@{DEV_DOMAIN}"


class CliError(Exception):
    pass


class _Formatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))


def setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="postroom",
        description="Postroom: a complete mail server (SMTP, submission, IMAP, POP3) in one "
                    "program.",
        epilog="The configuration file is -c FILE, else $POSTROOM_CONFIG, else "
               "./postroom.toml. See postroom.example.toml for every key.")
    p.add_argument("-c", "--config", metavar="FILE", help="configuration file (TOML)")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    sub.add_parser("serve", help="run every configured listener until SIGTERM/SIGINT")

    dev = sub.add_parser("dev", help="quick start: loopback, high ports, self-signed TLS, "
                                     f"domain {DEV_DOMAIN} and a user")
    dev.add_argument("--data", metavar="DIR", default="postroom-dev",
                     help="data folder (default ./postroom-dev; created on first run)")

    dom = sub.add_parser("domain", help="local domains").add_subparsers(dest="action",
                                                                        metavar="ACTION")
    dom.required = True
    dom.add_parser("add", help="add a local domain").add_argument("name")
    dom.add_parser("remove", help="remove a domain (it must have no users)").add_argument("name")
    _json(dom.add_parser("list", help="list local domains"))

    usr = sub.add_parser("user", help="accounts").add_subparsers(dest="action",
                                                                 metavar="ACTION")
    usr.required = True
    ua = usr.add_parser("add", help="add an account (password from --password-stdin or a "
                                    "prompt)")
    ua.add_argument("address")
    ua.add_argument("--password-stdin", action="store_true", help="read the password from "
                                                                  "standard input")
    ua.add_argument("--quota", default="0", help="bytes, or with a unit: 500M, 2G (0: none)")
    up = usr.add_parser("passwd", help="set an account's password")
    up.add_argument("address")
    up.add_argument("--password-stdin", action="store_true")
    uq = usr.add_parser("quota", help="set an account's quota")
    uq.add_argument("address")
    uq.add_argument("quota", help="bytes, or with a unit: 500M, 2G (0: none)")
    ul = usr.add_parser("list", help="list accounts")
    ul.add_argument("--domain")
    _json(ul)
    usr.add_parser("remove", help="remove an account and all its mail").add_argument("address")

    al = sub.add_parser("alias", help="aliases; '@domain' is a catch-all").add_subparsers(
        dest="action", metavar="ACTION")
    al.required = True
    aa = al.add_parser("add", help="add an alias to one or more targets")
    aa.add_argument("alias")
    aa.add_argument("targets", nargs="+", metavar="TARGET")
    ar = al.add_parser("remove", help="remove an alias, or some of its targets")
    ar.add_argument("alias")
    ar.add_argument("targets", nargs="*", metavar="TARGET")
    all_ = al.add_parser("list", help="list aliases")
    all_.add_argument("--domain")
    _json(all_)

    mb = sub.add_parser("mailbox", help="an account's mailboxes").add_subparsers(
        dest="action", metavar="ACTION")
    mb.required = True
    ml = mb.add_parser("list", help="list an account's mailboxes with counts")
    ml.add_argument("address")
    _json(ml)

    q = sub.add_parser("queue", help="the outbound queue").add_subparsers(dest="action",
                                                                         metavar="ACTION")
    q.required = True
    _json(q.add_parser("list", help="list queued messages"))
    qs = q.add_parser("show", help="a queued message: recipients, states, last replies")
    qs.add_argument("id", type=int)
    _json(qs)
    q.add_parser("retry", help="make pending recipients due now (all, or one message)"
                 ).add_argument("id", type=int, nargs="?")
    q.add_parser("remove", help="remove a queued message").add_argument("id", type=int)

    dk = sub.add_parser("dkim", help="DKIM signing keys").add_subparsers(dest="action",
                                                                        metavar="ACTION")
    dk.required = True
    dg = dk.add_parser("generate", help="make a signing key for a local domain")
    dg.add_argument("domain")
    dg.add_argument("--algorithm", choices=["rsa", "ed25519"], default="rsa",
                    help="rsa (2048 bits, default) or ed25519 (RFC 8463)")
    dg.add_argument("--selector", help="DNS selector (default: postroom / postroom-ed25519)")
    dg.add_argument("--force", action="store_true", help="replace an existing key")
    dns = sub.add_parser("dns", help="the DNS records to publish for a domain (MX, SPF, "
                                     "DKIM, DMARC, autoconfig)")
    dns.add_argument("domain")
    return p


def _json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")


def fail(message: str, code: int = 1) -> NoReturn:
    print(f"postroom: {message}", file=sys.stderr)
    raise SystemExit(code)


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise CliError("no terminal to ask for a password: use --password-stdin")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise CliError("the passwords differ")
    return first


def with_store(config: Config, fn: Callable[[SqliteStore], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        store = await SqliteStore.open(config.data_dir)
        try:
            return await fn(store)
        finally:
            await store.close()

    return asyncio.run(main())


def print_rows(rows: Sequence[dict[str, Any]], as_json: bool, columns: Sequence[str]) -> None:
    if as_json:
        print(json.dumps(list(rows), indent=2))
        return
    for row in rows:
        print("  ".join(_fmt(row[c]) for c in columns))


def _fmt(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(value)
    if value is None:
        return "-"
    return str(value)


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    try:
        run(args)
    except (CliError, ConfigError, StoreError, admin.AdminError) as e:
        fail(str(e))
    except Exception as e:  # a library's error (e.g. DkimError): one line, no traceback
        if type(e).__name__.endswith("Error"):
            fail(str(e))
        raise
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except OSError as e:
        fail(f"{e.filename + ': ' if e.filename else ''}{e.strerror or e}")


def run(args: argparse.Namespace) -> None:
    if args.command == "dev":
        return run_dev(Path(args.data))
    config = load_config(config_path(args.config))
    if args.command == "serve":
        from postroom.app import serve

        return serve(config)
    cmd = (args.command, getattr(args, "action", None))
    if cmd == ("domain", "add"):
        with_store(config, lambda s: s.add_domain(args.name))
    elif cmd == ("domain", "remove"):
        with_store(config, lambda s: s.remove_domain(args.name))
    elif cmd == ("domain", "list"):
        domains = with_store(config, lambda s: s.list_domains())
        print_rows([{"name": d.name} for d in domains], args.json, ["name"])
    elif cmd == ("user", "add"):
        quota = admin.parse_size(args.quota)
        password = read_password(args.password_stdin)
        with_store(config, lambda s: admin.add_user(s, args.address, password, quota))
    elif cmd == ("user", "passwd"):
        password = read_password(args.password_stdin)
        with_store(config, lambda s: admin.set_password(s, args.address, password))
    elif cmd == ("user", "quota"):
        quota = admin.parse_size(args.quota)
        with_store(config, lambda s: s.set_quota(args.address, quota))
    elif cmd == ("user", "list"):
        users = with_store(config, lambda s: s.list_users(args.domain))
        print_rows([admin.user_json(u) for u in users], args.json, ["address", "quota", "used"])
    elif cmd == ("user", "remove"):
        with_store(config, lambda s: s.remove_user(args.address))
    elif cmd == ("alias", "add"):
        with_store(config, lambda s: s.add_alias(args.alias, args.targets))
    elif cmd == ("alias", "remove"):
        with_store(config, lambda s: s.remove_alias(args.alias, args.targets))
    elif cmd == ("alias", "list"):
        aliases = with_store(config, lambda s: s.list_aliases(args.domain))
        print_rows([admin.alias_json(a) for a in aliases], args.json, ["alias", "targets"])
    elif cmd == ("mailbox", "list"):
        rows = with_store(config, lambda s: admin.mailboxes_json(s, args.address))
        print_rows(rows, args.json, ["name", "special_use", "messages", "unseen", "size"])
    elif cmd == ("queue", "list"):
        items = with_store(config, lambda s: s.list_queue())
        rows = [{"id": i.id, "from": i.mail_from or "<>",
                 "recipients": [r.address for r in i.recipients],
                 "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(i.created))}
                for i in items]
        print_rows(rows, args.json, ["id", "created", "from", "recipients"])
    elif cmd == ("queue", "remove"):
        with_store(config, lambda s: s.remove_queued(args.id))
    elif cmd == ("queue", "show"):
        show_queue_item(config, args.id, args.json)
    elif cmd == ("queue", "retry"):
        from postroom.queue.sqlite_queue import SqliteQueueStore

        n = with_store(config, lambda s: SqliteQueueStore(s).retry_now(time.time(), args.id))
        print(f"{n} recipient(s) due now; a running server delivers them at its next pass")
    elif args.command == "dkim":
        from postroom import dkim

        key = dkim.generate_key(config.data_dir / "dkim", args.domain,
                                algorithm=args.algorithm, selector=args.selector,
                                overwrite=args.force)
        print(f"{key.record_name}. IN TXT {dkim._txt_strings(key.txt_record())}")
    elif args.command == "dns":
        from postroom import dkim

        keys = dkim.load_keys(config.data_dir / "dkim", args.domain)
        print("\n".join(dkim.zone_lines(dkim.dns_records(args.domain, config.hostname,
                                                          keys))))
        if not keys:
            print(f"; no DKIM key yet: postroom dkim generate {args.domain}", file=sys.stderr)
    else:  # pragma: no cover - argparse guards this
        raise CliError(f"unknown command {args.command}")


def show_queue_item(config: Config, queue_id: int, as_json: bool) -> None:
    from postroom.queue.sqlite_queue import SqliteQueueStore

    async def q(store: SqliteStore) -> Any:
        item = await SqliteQueueStore(store).get(queue_id)
        if item is None:
            raise CliError(f"no queued message {queue_id}")
        head = await store.read_message(item.message_id, 0, 4096)
        return item, head

    item, head = with_store(config, q)
    row = {"id": item.id, "from": item.mail_from or "<>", "size": item.size,
           "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(item.created)),
           "recipients": [{"address": r.address, "state": r.state, "attempts": r.attempts,
                           "next_attempt": r.next_attempt, "last_reply": r.last_reply}
                          for r in item.recipients]}
    if as_json:
        print(json.dumps(row, indent=2))
        return
    print(f"id {row['id']}  from {row['from']}  {row['size']} bytes  queued {row['created']}")
    for r in item.recipients:
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(r.next_attempt))
        print(f"  {r.address}  {r.state}  attempts {r.attempts}  next {when}"
              f"  {r.last_reply or '-'}")
    end = head.find(b"\r\n\r\n")
    print(head[: end if end >= 0 else len(head)].decode("utf-8", "replace"))


def dev_config_text(data: Path) -> str:
    listen = "\n".join(f'{k} = ["127.0.0.1:{v}"]' for k, v in DEV_PORTS.items())
    return (
        "# Written by `postroom dev`: a loopback-only development server.\n"
        'hostname = "localhost"\n'
        f'data_dir = "{data.resolve()}"\n\n'
        f"[listen]\n{listen}\n\n"
        "[auth]\n"
        "# Loopback clients may log in without TLS here (never do this on a real server).\n"
        'plaintext_networks = ["127.0.0.0/8"]\n'
    )


def run_dev(data: Path) -> None:
    """Create (first run) or reuse a development data folder, then serve."""
    cfg_file = data / "postroom.toml"
    cred_file = data / "credentials.txt"
    first = not cfg_file.exists()
    if first:
        data.mkdir(parents=True, exist_ok=True)
        cfg_file.write_text(dev_config_text(data))
    config = load_config(cfg_file)
    password = ""
    if first:
        password = secrets.token_urlsafe(12)

        async def provision(store: SqliteStore) -> None:
            if DEV_DOMAIN not in [d.name for d in await store.list_domains()]:
                await store.add_domain(DEV_DOMAIN)
            if await store.get_user(DEV_USER) is None:
                await admin.add_user(store, DEV_USER, password)

        with_store(config, provision)
        fd = os.open(cred_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"{DEV_USER} {password}\n")
    elif cred_file.exists():
        password = cred_file.read_text().split()[-1]
    p = DEV_PORTS
    print(f"""Postroom development server ({'created' if first else 'reusing'} {data}/)

  user      {DEV_USER}
  password  {password or '(see ' + str(cred_file) + ')'}

  IMAP      127.0.0.1:{p['imap']} (STARTTLS)   IMAPS 127.0.0.1:{p['imaps']}
  POP3      127.0.0.1:{p['pop3']} (STLS)       POP3S 127.0.0.1:{p['pop3s']}
  SMTP      127.0.0.1:{p['smtp']} (MX, no auth)
  Submit    127.0.0.1:{p['submission']} (STARTTLS, AUTH)  127.0.0.1:{p['submissions']} (TLS)

  The certificate is self-signed: accept it in your mail client. Loopback clients may
  also log in without TLS. Manage it with: postroom -c {cfg_file} user add ...
  Stop with Ctrl-C.
""", flush=True)
    from postroom.app import serve

    serve(config)


if __name__ == "__main__":  # pragma: no cover
    main()
