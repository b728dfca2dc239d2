"""Command handlers: one module per command family, each handler taking the session and
its parsed command and returning the tagged answer.

The core handlers are listed in ``session._handlers``; extension modules register here,
in ``HANDLERS`` (command type -> handler), which ``session.handler_for`` merges in.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from postroom.imap import commands as c
from postroom.imap.handlers import quota
from postroom.imap.responses import Tagged

HANDLERS: dict[type, Callable[[Any, Any], Awaitable[Tagged | None]]] = {
    # QUOTA, RFC 9208 section 4.1
    c.GetQuota: quota.cmd_getquota,
    c.GetQuotaRoot: quota.cmd_getquotaroot,
    c.SetQuota: quota.cmd_setquota,
}
