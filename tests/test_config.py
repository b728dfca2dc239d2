from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from postroom.config import Config, ConfigError, config_path, load_config

ROOT = Path(__file__).resolve().parent.parent


def test_example_config_loads_and_documents_every_key() -> None:
    cfg = load_config(ROOT / "postroom.example.toml")
    assert cfg.hostname == "mail.example.com"
    assert set(cfg.listen) == {"smtp", "submission", "submissions", "imap", "imaps", "pop3",
                               "pop3s"}
    text = (ROOT / "postroom.example.toml").read_text()
    for section in (cfg.limits, cfg.relay, cfg.tls, cfg.auth, cfg.store):
        for f in dataclasses.fields(section):
            assert f"{f.name} " in text or f"{f.name}=" in text, f.name
    for f in dataclasses.fields(Config):
        if f.name not in ("source",):
            assert f.name in text, f.name


def test_all_problems_reported_together_naming_keys() -> None:
    with pytest.raises(ConfigError) as e:
        Config.from_dict({
            "hostname": "bad host",
            "listen": {"smtp": ["nope"], "gopher": ["1.2.3.4:70"]},
            "limits": {"message_size": 0, "max_recipients": "many"},
            "auth": {"plaintext_networks": ["300.1.1.1/8"]},
            "tls": {"cert": "/x.pem"},
            "relay": {"smarthost": "host-without-port"},
            "extra": 1,
        })
    text = "\n".join(e.value.problems)
    for key in ("hostname", "listen.smtp", "listen.gopher", "limits.message_size",
                "limits.max_recipients", "auth.plaintext_networks", "relay.smarthost",
                "extra"):
        assert key in text, key


def test_relative_paths_resolve_against_the_file(tmp_path: Path) -> None:
    f = tmp_path / "conf" / "p.toml"
    f.parent.mkdir()
    f.write_text('data_dir = "data"\n[auth]\nplaintext_networks = ["127.0.0.0/8"]\n')
    cfg = load_config(f)
    assert cfg.data_dir == tmp_path / "conf" / "data"
    assert cfg.auth.plaintext_allowed("127.0.0.5")
    assert not cfg.auth.plaintext_allowed("10.0.0.1")
    assert not cfg.auth.plaintext_allowed("garbage")


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("hostname = \n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "absent.toml")


def test_config_path_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POSTROOM_CONFIG", "/etc/p.toml")
    assert config_path("x.toml") == Path("x.toml")
    assert config_path(None) == Path("/etc/p.toml")
    monkeypatch.delenv("POSTROOM_CONFIG")
    assert config_path(None) == Path("postroom.toml")


def test_workers() -> None:
    import os

    from postroom.config import MAX_WORKERS

    assert Config.from_dict({}).workers == 1
    assert Config.from_dict({"workers": 3}).workers == 3
    assert Config.from_dict({"workers": "auto"}).workers == min(os.cpu_count() or 1, MAX_WORKERS)
    for bad in (0, -1, "two", 1.5, True, MAX_WORKERS + 1):
        with pytest.raises(ConfigError, match="workers"):
            Config.from_dict({"workers": bad})
