"""The configuration: one TOML file loaded into one typed, validated object.

Theory of operation: ``load_config(path)`` reads the file, ``Config.from_dict`` walks
every section and collects *all* problems (each naming its key) before raising one
``ConfigError``. The resulting object is passed to constructors; nothing reads the file
or a global later (shared/STYLE.md habit 12). ``postroom.example.toml`` documents every
key; shared/DESIGN.md section 2 is the contract.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LISTENER_KINDS = ("smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s")


class ConfigError(Exception):
    """One or more configuration problems; ``problems`` lists them, each naming its key."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class TlsConfig:
    cert: Path | None = None
    key: Path | None = None


@dataclass(frozen=True)
class AuthConfig:
    plaintext_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    def plaintext_allowed(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(addr in net for net in self.plaintext_networks)


@dataclass(frozen=True)
class LimitsConfig:
    message_size: int = 52_428_800
    max_connections: int = 5000
    max_connections_per_ip: int = 50
    max_recipients: int = 1000


@dataclass(frozen=True)
class RelayConfig:
    smarthost: str = ""
    routes: dict[str, str] = field(default_factory=dict)
    dns_server: str = ""


@dataclass(frozen=True)
class StoreConfig:
    url: str = ""


MAX_WORKERS = 64


@dataclass(frozen=True)
class Config:
    hostname: str = field(default_factory=socket.getfqdn)
    data_dir: Path = Path("/var/lib/postroom")
    listen: dict[str, tuple[str, ...]] = field(default_factory=dict)
    tls: TlsConfig = TlsConfig()
    auth: AuthConfig = AuthConfig()
    limits: LimitsConfig = LimitsConfig()
    relay: RelayConfig = RelayConfig()
    store: StoreConfig = StoreConfig()
    subaddress_delimiter: str = "+"
    # Processes serving connections (postroom/workers.py); 1: everything in this one.
    workers: int = 1
    source: Path | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any], base: Path | None = None) -> Config:
        """Validate ``raw`` (parsed TOML). Relative paths resolve against ``base``."""
        problems: list[str] = []
        base_dir = base if base is not None else Path.cwd()

        def path(key: str, value: object) -> Path | None:
            if not isinstance(value, str) or not value:
                problems.append(f"{key}: expected a non-empty path string")
                return None
            p = Path(value).expanduser()
            return p if p.is_absolute() else base_dir / p

        def integer(key: str, value: object, minimum: int = 1) -> int | None:
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                problems.append(f"{key}: expected an integer >= {minimum}, got {value!r}")
                return None
            return value

        def table(key: str) -> dict[str, Any]:
            value = raw.get(key, {})
            if not isinstance(value, dict):
                problems.append(f"{key}: expected a table")
                return {}
            return value

        def unknown(section: str, got: dict[str, Any], known: set[str]) -> None:
            for k in sorted(set(got) - known):
                problems.append(f"{section}{k}: unknown key")

        unknown("", raw, {"hostname", "data_dir", "listen", "tls", "auth", "limits", "relay",
                          "store", "subaddress_delimiter", "workers"})
        kwargs: dict[str, Any] = {}
        if "hostname" in raw:
            h = raw["hostname"]
            if not isinstance(h, str) or not h or any(c.isspace() for c in h):
                problems.append("hostname: expected a host name")
            else:
                kwargs["hostname"] = h
        if "data_dir" in raw:
            p = path("data_dir", raw["data_dir"])
            if p is not None:
                kwargs["data_dir"] = p
        if "subaddress_delimiter" in raw:
            d = raw["subaddress_delimiter"]
            if not isinstance(d, str) or len(d) > 1 or d.isalnum() or d in "@.":
                problems.append("subaddress_delimiter: expected one punctuation character or \"\"")
            else:
                kwargs["subaddress_delimiter"] = d

        if "workers" in raw:
            w = raw["workers"]
            if w == "auto":
                kwargs["workers"] = max(1, min(os.cpu_count() or 1, MAX_WORKERS))
            elif (n := integer("workers", w)) is not None:
                if n > MAX_WORKERS:
                    problems.append(f"workers: at most {MAX_WORKERS}, got {n}")
                else:
                    kwargs["workers"] = n

        listen = table("listen")
        unknown("listen.", listen, set(LISTENER_KINDS))
        parsed_listen: dict[str, tuple[str, ...]] = {}
        for kind in LISTENER_KINDS:
            if kind not in listen:
                continue
            addrs = listen[kind]
            if isinstance(addrs, str):
                addrs = [addrs]
            if not isinstance(addrs, list):
                problems.append(f"listen.{kind}: expected a list of \"address:port\"")
                continue
            good = []
            for a in addrs:
                if not _valid_hostport(a):
                    problems.append(f"listen.{kind}: {a!r} is not \"address:port\"")
                else:
                    good.append(a)
            parsed_listen[kind] = tuple(good)
        kwargs["listen"] = parsed_listen

        tls = table("tls")
        unknown("tls.", tls, {"cert", "key"})
        cert = path("tls.cert", tls["cert"]) if "cert" in tls else None
        key = path("tls.key", tls["key"]) if "key" in tls else None
        if (cert is None) != (key is None) and not problems:
            problems.append("tls: set both cert and key, or neither")
        kwargs["tls"] = TlsConfig(cert, key)

        auth = table("auth")
        unknown("auth.", auth, {"plaintext_networks"})
        nets = []
        pn = auth.get("plaintext_networks", [])
        if not isinstance(pn, list):
            problems.append("auth.plaintext_networks: expected a list of networks")
            pn = []
        for n in pn:
            try:
                nets.append(ipaddress.ip_network(str(n), strict=False))
            except ValueError:
                problems.append(f"auth.plaintext_networks: {n!r} is not a network")
        kwargs["auth"] = AuthConfig(tuple(nets))

        limits = table("limits")
        known_limits = {"message_size", "max_connections", "max_connections_per_ip",
                        "max_recipients"}
        unknown("limits.", limits, known_limits)
        lim: dict[str, int] = {}
        for k in sorted(known_limits & set(limits)):
            v = integer(f"limits.{k}", limits[k])
            if v is not None:
                lim[k] = v
        kwargs["limits"] = LimitsConfig(**lim)

        relay = table("relay")
        unknown("relay.", relay, {"smarthost", "routes", "dns_server"})
        smarthost = relay.get("smarthost", "")
        if not isinstance(smarthost, str) or (smarthost and not _valid_hostport(smarthost)):
            problems.append("relay.smarthost: expected \"host:port\"")
            smarthost = ""
        routes = relay.get("routes", {})
        if not isinstance(routes, dict) or not all(
            isinstance(v, str) and _valid_hostport(v) for v in routes.values()
        ):
            problems.append("relay.routes: expected a table of domain = \"host:port\"")
            routes = {}
        dns_server = relay.get("dns_server", "")
        if not isinstance(dns_server, str) or (dns_server and not _valid_hostport(dns_server)):
            problems.append("relay.dns_server: expected \"address:port\"")
            dns_server = ""
        kwargs["relay"] = RelayConfig(smarthost, {k.lower(): v for k, v in routes.items()},
                                      dns_server)

        store = table("store")
        unknown("store.", store, {"url"})
        url = store.get("url", "")
        if not isinstance(url, str):
            problems.append("store.url: expected a string")
        elif url and not url.startswith(("postgresql://", "postgres://")):
            problems.append("store.url: expected \"\" (embedded) or a postgresql:// URL")
        elif url:
            problems.append("store.url: the PostgreSQL backend is not available yet")
        kwargs["store"] = StoreConfig(url if isinstance(url, str) else "")

        if problems:
            raise ConfigError(problems)
        return cls(**kwargs)


def _valid_hostport(value: object) -> bool:
    if not isinstance(value, str) or ":" not in value:
        return False
    host, _, port = value.rpartition(":")
    if not host or not (port.isascii() and port.isdigit()) or not 0 <= int(port) < 65536:
        return False
    return not any(c.isspace() for c in host)


def config_path(explicit: str | None) -> Path:
    """``-c FILE``, else ``$POSTROOM_CONFIG``, else ``./postroom.toml`` (DESIGN.md §2)."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("POSTROOM_CONFIG")
    if env:
        return Path(env)
    return Path("postroom.toml")


def load_config(path: Path) -> Config:
    """Read and validate ``path``. Raises ConfigError (also for unreadable/invalid TOML)."""
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such configuration file"]) from None
    except OSError as e:
        raise ConfigError([f"{path}: {e.strerror}"]) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"{path}: invalid TOML: {e}"]) from None
    except UnicodeDecodeError as e:
        raise ConfigError([f"{path}: not UTF-8 (byte {e.start})"]) from None
    cfg = Config.from_dict(raw, base=path.resolve().parent)
    return _with_source(cfg, path)


def _with_source(cfg: Config, path: Path) -> Config:
    import dataclasses

    return dataclasses.replace(cfg, source=path)
