"""Read deadlines and a connection cap for the bank's and the terminal's HTTP
servers (uvicorn has a keep-alive timeout, but no header or body timeout).

Without them a client holds a connection, a descriptor and a little memory
for as long as it likes by sending a request's head or body a byte at a
time (slowloris): 20,000 such connections exhaust a server's descriptors.
Here each connection is bounded:

- **header timeout**: from a connection's first byte, or a kept-alive
  connection's next byte, the request's head must be complete within it
  (a connection that sends nothing at all is closed after it too);
- **body timeout**: from the end of the head, the whole body must have
  arrived within it, whether or not the application reads it;
- **keep-alive**: an idle connection between requests is closed by
  uvicorn's own ``timeout_keep_alive``;
- **connection cap**: a connection beyond ``max_connections`` open at once
  in this process is closed as it is accepted, which frees its descriptor
  (uvicorn's public ``limit_concurrency`` is no such cap: it answers 503 to
  requests but keeps every connection it accepted open).

A connection past a deadline is closed: an application still waiting for
the body sees the client as gone (``http.disconnect``).

One timer per connection, re-armed only when it fires: a request costs a
clock reading at each phase, not a timer of its own.
"""

from __future__ import annotations

import asyncio
import logging
import resource

from .oneshot import OneWriteHttpToolsProtocol

log = logging.getLogger("ecash.http")

HEADER_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 30.0
KEEP_ALIVE_S = 5
DESCRIPTORS_KEPT = 256  # for the database, files and the listening sockets


def default_max_connections() -> int:
    """What this process can hold open: its descriptor limit less a reserve."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 16_384
    return max(64, soft - DESCRIPTORS_KEPT)


class DeadlineHttpProtocol(OneWriteHttpToolsProtocol):
    """``uvicorn.Config(http=deadline_protocol(...))``: the one-write protocol
    with the deadlines above (see :func:`deadline_protocol` for the values)."""

    header_timeout: float = HEADER_TIMEOUT_S
    body_timeout: float = BODY_TIMEOUT_S
    max_connections: int = 16_384

    _deadline: float | None = None  # when the current phase must have ended
    _phase = ""  # "head" or "body", for the log
    _timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            log.warning("connection refused: %d connections open (the cap)",
                        len(self.connections) - 1)
            transport.close()
            return
        self._expect("head", self.header_timeout)

    def data_received(self, data: bytes) -> None:
        if self._deadline is None:  # the first byte after an answer: a new head
            self._expect("head", self.header_timeout)
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # a pipelined request, in the same bytes
            self._expect("head", self.header_timeout)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._expect("body", self.body_timeout, replace=True)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._deadline = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._deadline = None
        super().connection_lost(exc)

    def _expect(self, phase: str, within: float, *, replace: bool = False) -> None:
        if self._deadline is not None and not replace:
            return
        self._phase, self._deadline = phase, self.loop.time() + within
        if self._timer is not None and self._timer.when() <= self._deadline:
            return  # it fires first, and moves itself on to the deadline
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_at(self._deadline, self._check)

    def _check(self) -> None:
        self._timer = None
        if self._deadline is None or self.transport.is_closing():
            return
        now = self.loop.time()
        if now < self._deadline:  # the deadline moved on since the timer was set
            self._timer = self.loop.call_at(self._deadline, self._check)
            return
        within = self.header_timeout if self._phase == "head" else self.body_timeout
        log.info("closed a connection from %s: the request's %s did not arrive within %g s",
                 self.client[0] if self.client else "?", self._phase, within)
        self._deadline = None
        self.transport.close()


def deadline_protocol(*, header_timeout: float = HEADER_TIMEOUT_S,
                      body_timeout: float = BODY_TIMEOUT_S,
                      max_connections: int | None = None) -> type[DeadlineHttpProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)`` with these bounds."""
    return type("DeadlineHttpProtocol", (DeadlineHttpProtocol,), {
        "header_timeout": header_timeout, "body_timeout": body_timeout,
        "max_connections": max_connections or default_max_connections()})
