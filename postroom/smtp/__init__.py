"""SMTP: the receiving server (MX and submission) and the vocabulary the relay client
shares with it.

Modules: ``codes`` (replies), ``address`` (paths and mailboxes), ``params`` (ESMTP
parameters, xtext), ``data`` (dot-stuffing both ways, bare CR/LF policy),
``server_events`` and ``server_protocol`` (the sans-IO server engine), ``spool``
(message content on its way to the store), ``received`` (the trace header),
``backend`` (what the server asks of the store), ``server`` (the asyncio shell).
The relay client (``client_protocol``, ``client``) reuses ``codes``, ``address``,
``params`` and ``data``.
"""
