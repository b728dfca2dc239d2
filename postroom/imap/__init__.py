"""IMAP4rev2 / IMAP4rev1 server (RFC 9051, RFC 3501 and extensions).

The protocol layer is sans-IO and knows no store:

- ``receiver``: bytes -> ``Command`` events (literals, LITERAL+/-, limits, raw lines);
- ``commands``: ``parse_command(Command) -> ImapCommand`` (one module per command);
- ``grammar``: the reader primitives, sequence sets, parse options and limits;
- ``responses``: response objects that serialise themselves (``chunks()``);
- ``mutf7``: modified UTF-7 mailbox names;
- ``errors``: ``ParseError``, which carries the BAD/NO answer.
"""
