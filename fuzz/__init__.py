"""Fuzz targets, one module per parser (see ``fuzz/engine.py`` for how they run).

Run one: ``python -m fuzz.smtp_command --seconds 600`` (hypothesis) or with
``--engine atheris`` (coverage-guided; ``pip install atheris``). Run all:
``python -m fuzz --all --seconds 600``. Replay the seed corpus: ``--replay``.
"""

TARGETS = (
    "smtp_command",
    "smtp_reply",
    "smtp_data",
    "imap_receiver",
    "imap_command",
    "imap_search",
    "imap_fetch",
    "imap_sequence",
    "pop3_command",
    "sasl",
    "mime_structure",
    "mutf7",
    "config_loader",
)
