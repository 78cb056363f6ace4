"""uvicorn's httptools HTTP protocol with deadlines for slow clients (``keel server``,
``keel serve``).

uvicorn waits for ever on a client that sends half its request head, or pauses in the
middle of a body: every such connection holds a socket and a parser, and a few hundred of
them (slowloris) starve the server. :class:`SlowClientTimeouts` adds two clocks:

* the **head clock** (``header_timeout_s``, keel.yml ``server.header_timeout_s``): from
  the moment the connection opens, or the previous response ends, the client has this long
  to finish the next request's head (request line and headers). A connection with part of
  a request is answered ``408`` and closed; an idle one is just closed.
* the **body clock** (``body_timeout_s``, ``server.body_timeout_s``): while a request's body
  is arriving, no pause between two pieces may be longer. Past it the connection is answered
  ``408`` (unless the answer already started) and closed; the app's ``receive()`` then sees
  ``http.disconnect``, as if the client had gone. The clock stands still while uvicorn
  itself stopped reading (the app is behind, or requests are queued): only the client's
  slowness counts.

Everything else is uvicorn's own behaviour (keep-alive, pipelining, flow control). One
timer per connection watches both clocks; a request moves deadlines (attribute writes),
and the timer is re-armed only when it fires or a deadline comes sooner: nothing runs per
byte, and a busy keep-alive connection schedules no timer per request.

keel pins httptools (a dependency), so ``keel server`` and ``keel serve`` pass this class
as uvicorn's ``http=`` explicitly; uvicorn's h11 protocol is not used by either.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

if TYPE_CHECKING:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

#: defaults of keel.yml's server.header_timeout_s and server.body_timeout_s (and keel serve's)
HEADER_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 30.0

#: the most a request head (request line and headers) may take; Node allows 16 KB, nginx
#: 32 KB: past it the connection is answered 431 and closed (httptools itself has no bound)
MAX_HEAD_BYTES = 64 * 1024

# where the parser is in the current request: between requests, in its head, in its body
_IDLE, _HEAD, _BODY = "idle", "head", "body"


class SlowClientTimeouts(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` that closes connections of clients too slow to send a
    request (see the module's docstring). Subclass per settings: :func:`protocol_class`."""

    header_timeout_s: ClassVar[float] = HEADER_TIMEOUT_S
    body_timeout_s: ClassVar[float] = BODY_TIMEOUT_S

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._part = _IDLE
        # when the head or the body is due (loop time; None: no deadline running). One timer
        # per connection watches both and is moved only when a deadline comes sooner, so a
        # busy keep-alive connection costs attribute writes, not timers, per request.
        self._head_due: float | None = None
        self._body_due: float | None = None
        self._watch: asyncio.TimerHandle | None = None
        self._head_bytes = 0  # bytes received since the current request head began

    # --- the connection ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head_clock()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_clocks()
        super().connection_lost(exc)

    def handle_websocket_upgrade(self) -> None:
        self._stop_clocks()  # the websocket protocol takes the connection over
        super().handle_websocket_upgrade()

    def data_received(self, data: bytes) -> None:
        if self._part != _BODY:
            self._head_bytes += len(data)
        super().data_received(data)
        # still in the head after all of it: a chunk that ended the head is not held against it
        if self._part == _HEAD and self._head_bytes > MAX_HEAD_BYTES:
            self._head_too_large()

    # --- the parser's callbacks -------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._part = _HEAD

    def on_headers_complete(self) -> None:
        # the body clock starts here; a request without a body completes in the same
        # parse (on_message_complete stops it), so no header needs looking at
        self._head_due = None
        self._head_bytes = 0
        self._part = _BODY
        super().on_headers_complete()
        self._body_due = self.loop.time() + self.body_timeout_s
        self._watch_until(self._body_due)

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._body_due = self.loop.time() + self.body_timeout_s  # pauses count from here

    def on_message_complete(self) -> None:
        self._body_due = None
        self._part = _IDLE
        super().on_message_complete()
        if self.cycle is not None and self.cycle.response_complete:
            # answered before the body ended: the next request's head is due from now
            self._start_head_clock()

    def on_response_complete(self) -> None:
        queued = bool(self.pipeline)  # the next request's head is already here
        super().on_response_complete()
        if not queued and self._part != _BODY and not self.transport.is_closing():
            self._start_head_clock()

    # --- the clocks -------------------------------------------------------------------------

    def _start_head_clock(self) -> None:
        self._head_due = self.loop.time() + self.header_timeout_s
        self._watch_until(self._head_due)

    def _watch_until(self, due: float) -> None:
        """Make sure the watch fires by ``due`` (it may fire sooner, and then looks again)."""
        if self._watch is not None:
            if self._watch.when() <= due:
                return
            self._watch.cancel()
        self._watch = self.loop.call_at(due, self._look)

    def _stop_clocks(self) -> None:
        self._head_due = self._body_due = None
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None

    def _look(self) -> None:
        """The watch fired: end the connection if a deadline passed, else watch on."""
        self._watch = None
        if self.transport.is_closing():
            return
        now = self.loop.time()
        if self._head_due is not None and now >= self._head_due:
            self._head_too_slow()
            return
        if self._body_due is not None and now >= self._body_due:
            if not self.flow.read_paused:
                self._body_too_slow()
                return
            # uvicorn stopped reading (the app is behind), not the client: wait on
            self._body_due = now + self.body_timeout_s
        pending = [due for due in (self._head_due, self._body_due) if due is not None]
        if pending:
            self._watch_until(min(pending))

    def _head_too_slow(self) -> None:
        self._stop_clocks()
        if self._part == _HEAD:  # part of a request came: say why it ends
            message = (
                f"the request's headers did not arrive within {self.header_timeout_s:g} s "
                "(server.header_timeout_s); send the whole request head at once"
            )
            self._log(message)
            self._send_408(message)
        self.transport.close()  # an idle connection just closes, like uvicorn's keep-alive

    def _head_too_large(self) -> None:
        self._stop_clocks()
        message = (
            f"the request's headers are larger than {MAX_HEAD_BYTES // 1024} KB, the most "
            "this server reads: send fewer or shorter headers"
        )
        self._log(message)
        self._send_error(b"431 Request Header Fields Too Large", message)
        self.transport.close()

    def _body_too_slow(self) -> None:
        self._stop_clocks()
        message = (
            f"the request's body paused for more than {self.body_timeout_s:g} s "
            "(server.body_timeout_s); send the body without long pauses"
        )
        self._log(message)
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if not cycle.response_started:
                self._send_408(message)
            # the app's receive() answers http.disconnect and its send() does nothing from now
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()

    def _send_408(self, message: str) -> None:
        self._send_error(b"408 Request Timeout", message)

    def _send_error(self, status: bytes, message: str) -> None:
        body = message.encode("utf-8")
        head = [b"HTTP/1.1 " + status + b"\r\n"]
        defaults = self.server_state.default_headers  # date, server
        head += [name + b": " + value + b"\r\n" for name, value in defaults]
        head += [
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)

    def _log(self, message: str) -> None:
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        self.logger.info("closing the connection of %s: %s", client, message)


def protocol_class(
    header_timeout_s: float = HEADER_TIMEOUT_S, body_timeout_s: float = BODY_TIMEOUT_S
) -> type[SlowClientTimeouts]:
    """:class:`SlowClientTimeouts` with these deadlines, for uvicorn's ``http=``.

    uvicorn makes one protocol object per connection from the class it is given, and passes
    it nothing of keel's: the deadlines travel as class attributes of a subclass."""
    if header_timeout_s <= 0 or body_timeout_s <= 0:
        from keel.errors import ConfigError

        raise ConfigError(
            f"server.header_timeout_s ({header_timeout_s}) and server.body_timeout_s "
            f"({body_timeout_s}) must be more than 0 s: a slow client must end"
        )
    return type(
        "SlowClientTimeouts",
        (SlowClientTimeouts,),
        {"header_timeout_s": header_timeout_s, "body_timeout_s": body_timeout_s},
    )
