"""One IMAP session: connection state, the selected mailbox, and command execution.

Theory of operation: ``execute`` checks the command against the state table (RFC 9051
section 3: not authenticated, authenticated, selected, logout) in one place, runs its
handler, then - before the tagged answer - reports what other sessions changed in the
selected mailbox, at the moments the RFC allows (``selected.py``): keywords new to the
mailbox (FLAGS) before the FETCH that shows them, RECENT after EXISTS and whenever its
count changed (IMAP4rev1), and under QRESYNC the new HIGHESTMODSEQ in the tagged OK of a
command that reported VANISHED. If the selected mailbox was deleted meanwhile, the
session ends with BYE. Handlers for mailbox
commands live in ``handlers/mailboxes.py``, message commands in ``handlers/messages.py``;
each takes the session and its parsed command and returns the tagged response.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from postroom.auth.authenticator import MalformedResponse, run_sasl
from postroom.auth.sasl import MECHANISMS, decode_sasl_base64, new_mechanism
from postroom.auth.steps import Failure
from postroom.imap import commands as c
from postroom.imap.commands.base import Availability, ImapCommand
from postroom.imap.errors import ConnectionClosed
from postroom.imap.fetch_items import flag_atoms
from postroom.imap.grammar.options import ParseOptions
from postroom.imap.receiver import Line, NeedData, NeedLiteral
from postroom.imap.responses import (
    CapabilityResponse,
    Continuation,
    EnabledResponse,
    ExistsResponse,
    ExpungeResponse,
    FetchResponse,
    FlagsResponse,
    IdResponse,
    NamespaceResponse,
    RecentResponse,
    ResponseCode,
    Tagged,
    Untagged,
    Value,
    VanishedResponse,
    bye,
)
from postroom.imap.selected import SelectedMailbox
from postroom.mime import MessageInfo
from postroom.store.feed import Subscription
from postroom.store.models import NotFound, User

if TYPE_CHECKING:
    from postroom.imap.server import Connection, ImapContext

log = logging.getLogger("postroom.imap")

VERSION = "0.1"


class State(enum.Enum):
    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


_AVAILABLE = {
    State.NOT_AUTHENTICATED: Availability.NOT_AUTHENTICATED,
    State.AUTHENTICATED: Availability.AUTHENTICATED,
    State.SELECTED: Availability.SELECTED,
}

# Commands during which EXPUNGE must not be sent (RFC 9051 section 7.5.1).
NO_EXPUNGE = {"FETCH", "STORE", "SEARCH"}


class StoreSource:
    """``MessageSource`` on the store, with a small cache of parsed analyses."""

    def __init__(self, session: ImapSession, size: int = 512) -> None:
        self.session = session
        self.cache: OrderedDict[int, MessageInfo] = OrderedDict()
        self.size = size

    async def info(self, message_id: int) -> MessageInfo:
        hit = self.cache.get(message_id)
        if hit is not None:
            self.cache.move_to_end(message_id)
            return hit
        raw = await self.session.store.message_info(message_id)
        info = MessageInfo.from_json(raw)
        self.cache[message_id] = info
        if len(self.cache) > self.size:
            self.cache.popitem(last=False)
        return info

    async def body(self, message_id: int, start: int = 0, end: int | None = None) -> bytes:
        return await self.session.store.read_message(message_id, start, end)

    async def imap_summary(self, message_id: int) -> tuple[bytes, bytes] | None:
        return await self.session.store.message_imap_summary(message_id)


class ImapSession:
    def __init__(self, ctx: ImapContext, conn: Connection) -> None:
        self.ctx = ctx
        self.conn = conn
        self.store = ctx.store
        self.state = State.NOT_AUTHENTICATED
        self.user: User | None = None
        self.selected: SelectedMailbox | None = None
        self.subscription: Subscription | None = None
        self.enabled: set[str] = set()
        self.condstore = False
        self.sent_vanished = False  # VANISHED sent during the current command
        self.recent_reported = 0  # the last RECENT count sent (IMAP4rev1)
        self.auth_failures = 0
        self.source = StoreSource(self)

    # ------------------------------------------------------------------ properties

    @property
    def rev2(self) -> bool:
        return "IMAP4REV2" in self.enabled

    @property
    def utf8(self) -> bool:
        return self.rev2 or "UTF8=ACCEPT" in self.enabled

    @property
    def qresync(self) -> bool:
        return "QRESYNC" in self.enabled

    @property
    def logged_out(self) -> bool:
        return self.state is State.LOGOUT

    @property
    def login_allowed(self) -> bool:
        return self.conn.info.tls or self.ctx.plaintext_auth_allowed(self.conn.info.peer_ip)

    def capabilities(self) -> list[str]:
        caps = ["IMAP4rev1", "IMAP4rev2"]
        if self.state is State.NOT_AUTHENTICATED:
            if not self.conn.info.tls and self.ctx.ssl_context is not None:
                caps.append("STARTTLS")
            if self.login_allowed:
                caps += [f"AUTH={m}" for m in MECHANISMS]
            else:
                caps.append("LOGINDISABLED")
            caps += ["SASL-IR", "ID", "ENABLE", "LITERAL+"]
            return caps
        return [*caps, "LITERAL+", "ID", "ENABLE", "IDLE", "NAMESPACE", "UNSELECT", "UIDPLUS", "MOVE", "CHILDREN", "LIST-EXTENDED", "LIST-STATUS", "SPECIAL-USE", "CREATE-SPECIAL-USE", "ESEARCH", "SEARCHRES", "CONDSTORE", "QRESYNC", "BINARY", "MULTIAPPEND", f"APPENDLIMIT={self.ctx.append_limit}", "STATUS=SIZE", "UTF8=ACCEPT", "QUOTA", "QUOTA=RES-STORAGE"]

    def greeting(self) -> Untagged:
        code = ResponseCode.capability(self.capabilities())
        return Untagged("OK", f"{self.ctx.hostname} Postroom IMAP ready", code)

    # ------------------------------------------------------------------ dispatch

    async def execute(self, cmd: ImapCommand) -> bool:
        """Run one command and send its responses. Returns False for a BAD answer."""
        if self.state is State.LOGOUT:
            return True
        allowed = _AVAILABLE[self.state]
        if not (cmd.available & allowed):
            self.conn.send(Tagged(cmd.tag, "BAD", f"{cmd.name} is not valid in the "
                                                   f"{self.state.value} state"))
            return False
        handler = handler_for(type(cmd))
        if handler is None:  # parsed but not served: say so rather than pretend
            self.conn.send(Tagged(cmd.tag, "BAD", f"{cmd.name} is not supported"))
            return False
        self.sent_vanished = False
        try:
            answer = await handler(self, cmd)
        except (ConnectionClosed, TimeoutError):
            raise  # the client left (IDLE, AUTHENTICATE): not a server failure
        except Exception:
            log.exception("imap %s: %s failed", self.conn.info.peer_ip, cmd.name)
            answer = Tagged(cmd.tag, "NO", "Internal error, try again later",
                            ResponseCode.SERVERBUG)
        if answer is None:  # the handler already sent its tagged answer (e.g. LOGOUT)
            return True
        if self.state is State.SELECTED and answer.status != "BAD":
            await self.report_updates(allow_expunge=cmd.name not in NO_EXPUNGE)
            self.flush_recent()
        if self.logged_out:  # the selected mailbox vanished: BYE was sent
            return True
        answer = self.with_highestmodseq(answer)
        self.conn.send(answer)
        return bool(answer.status != "BAD")

    def with_highestmodseq(self, answer: Tagged) -> Tagged:
        """Under QRESYNC, a command that reported expunges (VANISHED) ends with the new
        HIGHESTMODSEQ in its tagged OK, so that the client can store it (RFC 7162
        section 3.2.10; Dovecot does the same)."""
        sel = self.selected
        if (sel is None or not self.qresync or not self.sent_vanished
                or answer.status != "OK" or answer.code is not None):
            return answer
        return dataclasses.replace(answer, code=ResponseCode.highest_modseq(sel.known_modseq))

    def enable_condstore(self) -> None:
        """A CONDSTORE-enabling command (RFC 7162 section 3.1): from now on FETCH
        responses carry MODSEQ. Enabled while a mailbox is selected, the client learns
        the mailbox's HIGHESTMODSEQ at once (section 3.1, as Dovecot does)."""
        if self.condstore:
            return
        self.condstore = True
        if self.selected is not None:
            self.conn.send(Untagged("OK", "Highest",
                                    ResponseCode.highest_modseq(self.selected.known_modseq)))

    def announce_keywords(self) -> None:
        """FLAGS and PERMANENTFLAGS again when keywords new to the selected mailbox
        appeared (RFC 9051 section 7.3.5)."""
        sel = self.selected
        if sel is None or not sel.new_keywords:
            return
        sel.new_keywords = False
        flags = sel.flag_names()
        self.conn.send(FlagsResponse(tuple(flags)))
        if not sel.readonly:
            self.conn.send(Untagged("OK", "Flags permitted",
                                    ResponseCode.permanent_flags([*flags, "\\*"])))

    async def check_literal(self, ev: NeedLiteral) -> tuple[str, str, str] | None:
        """Refuse an announced literal before the client sends it: (status, code, text)."""
        if ev.command == "APPEND" and self.state is not State.NOT_AUTHENTICATED:
            if ev.size > self.ctx.append_limit:
                return ("NO", "TOOBIG", f"Message larger than APPENDLIMIT "
                                        f"{self.ctx.append_limit}")
            from postroom.imap.server import literal_target

            target = literal_target(ev, self.utf8)
            if target is not None and self.user is not None:
                mb = await self.store.get_mailbox(self.user.id, target)
                if mb is None:
                    return ("NO", "TRYCREATE", "No such mailbox")
        elif self.state is State.NOT_AUTHENTICATED and ev.size > 8192:
            return ("BAD", "TOOBIG", "Literal too big before authentication")
        return None

    # ------------------------------------------------------------------ updates

    def select(self, selected: SelectedMailbox) -> None:
        self.unselect()
        self.selected = selected
        self.subscription = self.store.feed.subscribe(selected.mailbox_id)
        # A change committed between the snapshot SELECT loaded and this subscription
        # woke nobody: look once (changes_since the snapshot's HIGHESTMODSEQ).
        self.subscription.mark_pending()
        self.state = State.SELECTED

    def unselect(self) -> None:
        if self.subscription is not None:
            self.subscription.close()
        self.subscription = None
        self.selected = None
        if self.state is State.SELECTED:
            self.state = State.AUTHENTICATED

    async def report_updates(self, allow_expunge: bool, force: bool = False) -> None:
        """Send what changed in the selected mailbox since we last looked."""
        sel, sub = self.selected, self.subscription
        if sel is None or sub is None:
            return
        if not (force or sub.pending() or (allow_expunge and sel.pending_expunge)):
            return
        sub.clear()
        try:
            changes = await self.store.changes_since(sel.mailbox_id, sel.known_modseq)
            recent = (0, 0)
            if not self.rev2 and changes.uidnext > sel.uidnext:
                recent = await self.store.claim_recent(sel.mailbox_id)
        except NotFound:  # another session deleted it: nothing sensible remains
            self.conn.send(bye("Selected mailbox was deleted, have to disconnect"))
            self.state = State.LOGOUT
            self.unselect()
            return
        up = sel.absorb(changes, allow_expunge, recent)
        if up.expunged_seqs:
            self._send_expunged(up.expunged_seqs, up.vanished_uids)
        if up.exists is not None:
            self.conn.send(ExistsResponse(up.exists))
            self.flush_recent(always=True)
        self.flush_recent()
        self.announce_keywords()
        for seq, entry in up.fetches:
            self.conn.send(FetchResponse(seq, self.flag_items(entry.uid)))

    def flag_items(self, uid: int, *, with_uid: bool = True) -> list[tuple[str, Value]]:
        """FETCH items reporting a message's flags: UID (when asked, and always under
        QRESYNC, RFC 7162 section 3.2.4), FLAGS, and MODSEQ once CONDSTORE is on."""
        sel = self.selected
        assert sel is not None
        i = sel.index_of(uid)
        assert i is not None
        entry = sel.entry_at(i)
        flags = flag_atoms(entry, recent=sel.is_recent(uid), rev1=not self.rev2)
        items: list[tuple[str, Value]] = []
        if with_uid or self.qresync:
            items.append(("UID", uid))
        items.append(("FLAGS", flags))
        if self.condstore:
            items.append(("MODSEQ", [entry.modseq]))
        return items

    def expunged_own(self, uids: list[int]) -> None:
        """This session removed ``uids`` (EXPUNGE, MOVE): drop them from the selected
        mailbox and say so (the new RECENT count follows before the tagged answer)."""
        sel = self.selected
        assert sel is not None
        seqs = sel.remove_own(uids)
        if seqs:
            self._send_expunged(seqs, uids)

    def flush_recent(self, always: bool = False) -> None:
        """IMAP4rev1: ``* n RECENT`` after EXISTS (``always``) and whenever the count
        changed, e.g. when recent messages were expunged (RFC 3501 section 7.3.2: it
        comes with changes of the mailbox size). Never twice with the same count in a
        row otherwise (a MOVE within the mailbox removes one and adds one)."""
        sel = self.selected
        if self.rev2 or sel is None:
            return
        if always or sel.recent_count != self.recent_reported:
            self.recent_reported = sel.recent_count
            self.conn.send(RecentResponse(self.recent_reported))

    def _send_expunged(self, seqs: list[int], uids: list[int]) -> None:
        if self.qresync:  # RFC 7162 section 3.2.10
            self.conn.send(VanishedResponse(sorted(uids)))
            self.sent_vanished = True
        else:
            for seq in seqs:
                self.conn.send(ExpungeResponse(seq))

    async def close(self) -> None:
        self.unselect()

    # ------------------------------------------------------------------ any state

    async def cmd_capability(self, cmd: c.Capability) -> Tagged:
        self.conn.send(CapabilityResponse(tuple(self.capabilities())))
        return Tagged(cmd.tag, "OK", "CAPABILITY completed")

    async def cmd_noop(self, cmd: c.Noop | c.Check) -> Tagged:
        if self.selected is not None:
            await self.report_updates(allow_expunge=True, force=True)
        return Tagged(cmd.tag, "OK", f"{cmd.name} completed")

    async def cmd_logout(self, cmd: c.Logout) -> None:
        self.conn.send(bye("Logging out"))
        self.conn.send(Tagged(cmd.tag, "OK", "LOGOUT completed"))
        self.state = State.LOGOUT
        self.unselect()

    async def cmd_id(self, cmd: c.Id) -> Tagged:
        self.conn.send(IdResponse([("name", "Postroom"), ("version", VERSION)]))
        return Tagged(cmd.tag, "OK", "ID completed")

    # ------------------------------------------------------------------ not authenticated

    async def cmd_starttls(self, cmd: c.StartTls) -> None:
        if self.conn.info.tls or self.ctx.ssl_context is None:
            self.conn.send(Tagged(cmd.tag, "BAD", "STARTTLS is not available now"))
            return
        # discards anything pipelined (RFC 9051 section 6.2.1), then the handshake
        await self.conn.start_tls(Tagged(cmd.tag, "OK", "Begin TLS negotiation now"))

    async def _logged_in(self, tag: str, address: str) -> Tagged:
        user = await self.store.get_user(address)
        if user is None:
            return Tagged(tag, "NO", "Account vanished", ResponseCode.SERVERBUG)
        self.user = user
        self.state = State.AUTHENTICATED
        self.ctx.throttle.record_success(self.conn.info.peer_ip)
        log.info("imap %s: %s logged in", self.conn.info.peer_ip, user.address)
        return Tagged(tag, "OK", "Logged in", ResponseCode.capability(self.capabilities()))

    async def _failed(self, tag: str, malformed: bool = False) -> Tagged:
        ip = self.conn.info.peer_ip
        if malformed:
            return Tagged(tag, "BAD", "Malformed authentication exchange")
        self.ctx.throttle.record_failure(ip)
        await asyncio.sleep(self.ctx.throttle.failure_delay(ip))
        self.auth_failures += 1
        if self.auth_failures >= self.ctx.max_auth_failures:
            self.conn.send(bye("Too many failed logins"))
            self.state = State.LOGOUT
        return Tagged(tag, "NO", "Authentication failed", ResponseCode.AUTHENTICATIONFAILED)

    async def _blocked(self, tag: str) -> Tagged:
        """A blocked address gets the answer a wrong password gets, after the delay, but
        the attempt does not count again: the block expires as SMTP's and POP3's do."""
        await asyncio.sleep(self.ctx.throttle.failure_delay(self.conn.info.peer_ip))
        return Tagged(tag, "NO", "Authentication failed", ResponseCode.AUTHENTICATIONFAILED)

    async def cmd_login(self, cmd: c.Login) -> Tagged:
        if not self.login_allowed:
            return Tagged(cmd.tag, "NO", "Use STARTTLS first",
                          ResponseCode.PRIVACYREQUIRED)
        if self.ctx.throttle.is_blocked(self.conn.info.peer_ip):
            return await self._blocked(cmd.tag)
        user = await self.ctx.authenticator.verify_password(cmd.username, cmd.password)
        if user is None:
            return await self._failed(cmd.tag)
        return await self._logged_in(cmd.tag, user)

    async def cmd_authenticate(self, cmd: c.Authenticate) -> Tagged:
        if not self.login_allowed:
            return Tagged(cmd.tag, "NO", "Use STARTTLS first",
                          ResponseCode.PRIVACYREQUIRED)
        mech = new_mechanism(cmd.mechanism)
        if mech is None:
            return Tagged(cmd.tag, "NO", f"Unsupported mechanism {cmd.mechanism}", "CANNOT")
        if self.ctx.throttle.is_blocked(self.conn.info.peer_ip):
            return await self._blocked(cmd.tag)

        async def ask(challenge: bytes) -> bytes | None:
            self.conn.send(Continuation.sasl(challenge) if challenge
                           else Continuation(""))
            await self.conn.flush()
            line = await self.conn.read_line(self.ctx.preauth_timeout)
            if line == b"*":
                return None
            decoded = decode_sasl_base64(line)
            if decoded is None:
                raise MalformedResponse("not base64")
            return decoded

        outcome = await run_sasl(mech, cmd.initial_response, ask, self.ctx.authenticator)
        if isinstance(outcome, Failure):
            if outcome.reason == "cancelled":
                return Tagged(cmd.tag, "BAD", "Authentication cancelled")
            return await self._failed(cmd.tag, outcome.malformed)
        return await self._logged_in(cmd.tag, outcome.user)

    # ------------------------------------------------------------------ authenticated

    async def cmd_enable(self, cmd: c.Enable) -> Tagged:
        known = {"IMAP4REV2", "CONDSTORE", "QRESYNC", "UTF8=ACCEPT"}
        newly = []
        for cap in cmd.capabilities:
            name = cap.upper()
            if name in known and name not in self.enabled:
                self.enabled.add(name)
                newly.append(cap)
                if name == "QRESYNC":
                    self.condstore = True
                    self.enabled.add("CONDSTORE")
                if name == "CONDSTORE":
                    self.condstore = True
        self.conn.options = ParseOptions(utf8=self.utf8)
        self.conn.send(EnabledResponse(tuple(newly)))
        return Tagged(cmd.tag, "OK", "ENABLE completed")

    async def cmd_namespace(self, cmd: c.Namespace) -> Tagged:
        self.conn.send(NamespaceResponse(utf8=self.utf8))
        return Tagged(cmd.tag, "OK", "NAMESPACE completed")

    async def cmd_idle(self, cmd: c.Idle) -> Tagged | None:
        """RFC 2177 / RFC 9051 section 6.3.13: report changes as they happen until DONE."""
        self.conn.send(Continuation("idling"))
        await self.report_updates(allow_expunge=True, force=True)
        await self.conn.flush()
        if self.logged_out:
            return None
        self.conn.receiver.expect_line()
        deadline = asyncio.get_running_loop().time() + self.ctx.idle_timeout
        read_task: asyncio.Task[None] | None = None
        try:
            while True:
                ev = self.conn.receiver.next_event()
                if isinstance(ev, Line):
                    if ev.data.strip().upper() != b"DONE":
                        return Tagged(cmd.tag, "BAD", "Expected DONE")
                    return Tagged(cmd.tag, "OK", "IDLE terminated")
                if not isinstance(ev, NeedData):
                    return Tagged(cmd.tag, "BAD", "Expected DONE")
                if read_task is None:
                    read_task = asyncio.ensure_future(self.conn.read_more(3600))
                waiters: set[asyncio.Future[object]] = {read_task}  # type: ignore[arg-type]
                sub_wait = None
                if self.subscription is not None:
                    sub_wait = asyncio.ensure_future(self.subscription.event.wait())
                    waiters.add(sub_wait)  # type: ignore[arg-type]
                remaining = deadline - asyncio.get_running_loop().time()
                done, _ = await asyncio.wait(waiters, timeout=max(remaining, 0),
                                             return_when=asyncio.FIRST_COMPLETED)
                if sub_wait is not None and not sub_wait.done():
                    sub_wait.cancel()
                if not done:
                    self.conn.send(bye("IDLE timed out"))
                    self.state = State.LOGOUT
                    return Tagged(cmd.tag, "OK", "IDLE terminated")
                if read_task in done:
                    read_task.result()  # raises ConnectionClosed on EOF
                    read_task = None
                    continue  # the receiver stays in line mode until the line is complete
                await self.report_updates(allow_expunge=True)
                await self.conn.flush()
                if self.logged_out:
                    return None
        finally:
            if read_task is not None and not read_task.done():
                read_task.cancel()


def _handlers() -> dict[type, Handler]:
    from postroom.imap.handlers import mailboxes as mbx
    from postroom.imap.handlers import messages as msg

    S = ImapSession
    return {
        c.Capability: S.cmd_capability, c.Noop: S.cmd_noop, c.Check: S.cmd_noop,
        c.Logout: S.cmd_logout, c.Id: S.cmd_id, c.StartTls: S.cmd_starttls,
        c.Login: S.cmd_login, c.Authenticate: S.cmd_authenticate, c.Enable: S.cmd_enable,
        c.Namespace: S.cmd_namespace, c.Idle: S.cmd_idle,
        c.Select: mbx.cmd_select, c.Create: mbx.cmd_create, c.Delete: mbx.cmd_delete,
        c.Rename: mbx.cmd_rename, c.Subscribe: mbx.cmd_subscribe,
        c.Unsubscribe: mbx.cmd_subscribe, c.List: mbx.cmd_list, c.Lsub: mbx.cmd_lsub,
        c.Status: mbx.cmd_status, c.Append: mbx.cmd_append,
        c.Close: msg.cmd_close, c.Unselect: msg.cmd_unselect, c.Expunge: msg.cmd_expunge,
        c.Fetch: msg.cmd_fetch, c.Store: msg.cmd_store, c.Copy: msg.cmd_copy,
        c.Move: msg.cmd_copy, c.Search: msg.cmd_search,
    }


Handler = Callable[["ImapSession", Any], Awaitable[Tagged | None]]
_HANDLERS: dict[type, Handler] = {}


def handler_for(cmd_type: type) -> Handler | None:
    if not _HANDLERS:
        from postroom.imap.handlers import HANDLERS  # extension modules (QUOTA)

        _HANDLERS.update(_handlers())
        _HANDLERS.update(HANDLERS)
    return _HANDLERS.get(cmd_type)
