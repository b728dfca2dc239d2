"""Fuzz target: the configuration loader (TOML file -> validated ``Config``). A bad
file gives ``ConfigError`` naming its problems - never another exception, never a
traceback for the user. ``python -m fuzz.config_loader --seconds N``."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from fuzz.engine import Target, main
from postroom.config import Config, ConfigError, load_config

_DIR = Path(tempfile.mkdtemp(prefix="postroom-fuzz-config-"))
_FILE = _DIR / "postroom.toml"
atexit.register(shutil.rmtree, _DIR, True)


def check(data: bytes) -> None:
    _FILE.write_bytes(data)
    try:
        config = load_config(_FILE)
    except ConfigError as e:
        assert e.args, "ConfigError without a message"
        return
    assert isinstance(config, Config)


DICTIONARY = (
    b"hostname = ", b"data_dir = ", b"subaddress_delimiter = ", b"[listen]\n", b"[tls]\n",
    b"[auth]\n", b"[limits]\n", b"[relay]\n", b"[store]\n", b"smtp = ", b"submission = ",
    b"imaps = ", b"pop3 = ", b"cert = ", b"key = ", b"plaintext_networks = ",
    b"message_size = ", b"max_connections = ", b"max_connections_per_ip = ",
    b"max_recipients = ", b"smarthost = ", b"routes = ", b"dns_server = ", b"url = ",
    b'"127.0.0.1:25"', b'["0.0.0.0:25"]', b'"[::1]:25"', b'"host:\xc2\xb2"', b'"h:\xd9\xa1"',
    b'"host:99999"', b'"127.0.0.0/8"', b'"::/200"', b"{ a = 1 }", b'{ "x.test" = "h:25" }',
    b"0", b"-1", b"1e3", b"true", b"[]", b'""', b'"+"', b"\n", b"=", b"#", b"\xff", b"'''",
    b"2024-01-01", b"inf", b"nan", b"9" * 30,
)

TARGET = Target("config_loader", check, DICTIONARY)

if __name__ == "__main__":
    raise SystemExit(main(TARGET))
