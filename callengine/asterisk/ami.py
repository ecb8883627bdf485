"""A small AMI client on panoramisk: log in, start MixMonitor, close.

The engine needs AMI for one thing: MixMonitor into a FIFO (callengine/media/fifo.py), the
cheapest way to get a call's audio out of Asterisk (see docs/recording-taps.md). ARI stays the
engine's only call-control channel; this client sends actions and ignores events.

What panoramisk does and what this wrapper adds:
- panoramisk connects, logs in and, after a lost connection, reconnects and logs in again on its
  own (every `reconnect_timeout` s). It does not tell anyone whether a login failed, and it
  keeps reconnecting forever: `connect()` waits for the login answer, raises AmiError on bad
  credentials and stops the reconnect loop.
- panoramisk re-sends actions that were in flight when the connection dropped. That is wrong for
  MixMonitor (the tap has given up and removed its FIFO by then; a late MixMonitor writes a
  file), so MixMonitor is in `forgetable_actions`, and every action has a timeout.
- The secret is never logged: panoramisk logs raw actions in one error path ("Fail to send …"),
  so its logger goes through a filter that blanks any `Secret:` header.
- Values are checked for CR/LF (a header injection into the AMI stream) and MixMonitor's File
  for commas (MixMonitor joins "File,Options,Command" into one argument string).

Channel: AMI's MixMonitor looks the channel up with ast_channel_get_by_name(), which takes the
channel name (`PJSIP/agent1-00000001`, ARI's `channel.name`) and, failing that, the unique id
(ARI's channel id). Both were measured to work on Asterisk 22.10.1 (tests/recordings/test_fifo_tap.py);
the FIFO tap passes the channel name, which is what the AMI documentation promises.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from panoramisk import Manager
from panoramisk.message import Message

log = logging.getLogger(__name__)

# Actions panoramisk must never re-send after a reconnect (see the module docstring).
_FORGETABLE = ("ping", "login", "logoff", "mixmonitor")


class AmiError(Exception):
    """AMI answered an action with an error, or could not be reached / logged in to."""

    def __init__(self, action: str, message: str, *, unavailable: bool = False):
        super().__init__(f"AMI {action}: {message}")
        self.action = action
        self.message = message
        # Not an answer from Asterisk: not connected, not logged in, or no answer in time.
        self.unavailable = unavailable


class _RedactSecret(logging.Filter):
    """Blanks AMI secrets in panoramisk's log records: `Secret: x` header lines, `'Secret': 'x'`
    in an action's repr, and the literal secret of every AmiClient made in this process."""

    secrets: set[str] = set()
    _HEADER = re.compile(r"(?im)^(\s*secret\s*:\s*).*$")
    _REPR = re.compile(r"""(?i)(['"]secret['"]\s*:\s*)(['"]).*?\2""")

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to logging's own handling
            return True
        cleaned = self._HEADER.sub(r"\1********", message)
        cleaned = self._REPR.sub(r"\1\2********\2", cleaned)
        for secret in self.secrets:
            cleaned = cleaned.replace(secret, "********")
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_panoramisk_log = logging.getLogger(__name__ + ".panoramisk")
_panoramisk_log.addFilter(_RedactSecret())


class _Manager(Manager):
    """panoramisk's Manager, with a way to stop its reconnect loop for good."""

    closing = False

    def connect(self, *args: Any, **kwargs: Any):  # type: ignore[override]
        if self.closing:  # a reconnect scheduled before close(): do nothing
            return None
        return super().connect(*args, **kwargs)

    last_login: Any = None  # the last Login's answer (a refusal, answered at once, too)

    def login(self, future):  # type: ignore[override]
        if not future.cancelled() and future.exception() is None:
            self.last_login = future.result()
        return super().login(future)

    def ping(self):  # type: ignore[override]
        if not self.closing:  # a login answered after close() would restart the pinger
            super().ping()

    def connection_made(self, f):  # type: ignore[override]
        if self.closing:
            if not f.cancelled() and f.exception() is None:
                f.result()[0].close()
            return
        super().connection_made(f)


class AmiClient:
    """One logged-in AMI session. Use `async with AmiClient(...) as ami:` or connect()/close().

    Credentials come from the caller (the engine reads the secret from a file or the
    environment); this class never logs them.
    """

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        secret: str,
        *,
        action_timeout: float = 5.0,
        connect_timeout: float = 10.0,
        reconnect_timeout: int = 2,
    ):
        self.host = host
        self.port = port
        self.username = username
        self._secret = secret
        if len(secret) >= 8:  # (a shorter "secret" would blank random words in the log)
            _RedactSecret.secrets.add(secret)
        self._action_timeout = action_timeout
        self._connect_timeout = connect_timeout
        self._reconnect_timeout = reconnect_timeout
        self._manager: _Manager | None = None

    def __repr__(self) -> str:  # no secret in reprs either
        return f"AmiClient({self.host}:{self.port}, user={self.username!r})"

    async def __aenter__(self) -> AmiClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        """Connected and logged in right now (panoramisk may be reconnecting otherwise)."""
        m = self._manager
        return bool(m is not None and m._connected and m.authenticated
                    and m.protocol is not None and not m.protocol.closed)

    async def connect(self) -> None:
        """Connect and log in; returns once logged in. Raises AmiError if the login is refused
        or does not succeed within connect_timeout (Asterisk down, AMI disabled)."""
        if self._manager is not None:
            raise RuntimeError("AmiClient.connect() called twice")
        manager = _Manager(
            loop=asyncio.get_running_loop(),
            host=self.host,
            port=self.port,
            username=self.username,
            secret=self._secret,
            events="off",  # we send actions only; events would be parsed for nothing
            ping_delay=10,
            ping_interval=10,
            reconnect_timeout=self._reconnect_timeout,
            forgetable_actions=_FORGETABLE,
            log=_panoramisk_log,
        )
        self._manager = manager
        try:
            async with asyncio.timeout(self._connect_timeout):
                # Not awaited: a refused connection is panoramisk's to retry (its done-callback
                # schedules the next attempt); we wait for the login answer below.
                manager.connect()
                while True:
                    future = manager.authenticated_future
                    if future is not None:
                        response = await asyncio.shield(future)
                        if not response.success:
                            raise AmiError("Login", response.get("Message") or "login refused")
                        return
                    if manager.authenticated:
                        return
                    refused = manager.last_login
                    if refused is not None and not refused.success:  # answered between polls
                        raise AmiError("Login", refused.get("Message") or "login refused")
                    await asyncio.sleep(0.05)  # not connected yet (or refused and retrying)
        except TimeoutError:
            await self.close()
            raise AmiError(
                "Login", f"no AMI login at {self.host}:{self.port} within {self._connect_timeout:g} s",
                unavailable=True,
            ) from None
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        manager, self._manager = self._manager, None
        if manager is None:
            return
        manager.closing = True  # before anything else: no reconnect from here on
        try:
            if manager._connected and manager.protocol is not None and not manager.protocol.closed:
                manager.protocol.send({"Action": "Logoff"})  # polite; its answer is not awaited
        finally:
            manager.close()

    async def action(self, fields: dict[str, str]) -> Message:
        """Send one action; return its (single) response. Raises AmiError on `Response: Error`,
        when not connected/logged in, or when no answer comes within action_timeout."""
        name = fields.get("Action", "?")
        for key, value in fields.items():
            if "\r" in key or "\n" in key or "\r" in str(value) or "\n" in str(value):
                raise ValueError(f"AMI {name}: a line break in {key!r} would inject AMI headers")
        if self._manager is None:
            raise RuntimeError("AmiClient used before connect()")
        if not self.connected:
            raise AmiError(name, "not connected to AMI (reconnecting)", unavailable=True)
        try:
            async with asyncio.timeout(self._action_timeout):
                response = await self._manager.send_action(dict(fields))
        except TimeoutError:
            raise AmiError(
                name, f"no answer within {self._action_timeout:g} s", unavailable=True
            ) from None
        if isinstance(response, list):  # a multi-message answer: the first is the response
            response = response[0]
        if not response.success:
            raise AmiError(name, response.get("Message") or f"Response: {response.get('Response')}")
        return response

    async def mix_monitor(self, channel: str, file: str, options: str = "") -> None:
        """Start MixMonitor on `channel` (name, e.g. PJSIP/agent1-00000001, or unique id)
        writing to `file` (a path as Asterisk sees it; its extension picks the format).

        Asterisk answers Success as soon as the audiohook is attached: the file is opened
        later, by MixMonitor's own thread, so a path it cannot open is not an error here
        (the FIFO tap notices it from the bytes it receives)."""
        if "," in file:
            raise ValueError("MixMonitor's File must not contain a comma (it splits the arguments)")
        fields = {"Action": "MixMonitor", "Channel": channel, "File": file}
        if options:
            fields["Options"] = options
        await self.action(fields)
