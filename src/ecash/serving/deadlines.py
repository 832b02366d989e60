"""Read deadlines and a connection cap for the bank's and the terminal's HTTP
servers, on uvicorn's documented settings and ASGI only.

Without bounds a client holds a connection, a descriptor and a little memory
for as long as it likes by sending a request a byte at a time (slowloris).
What is bounded, and how:

- **body timeout** (:class:`BodyDeadline`, ASGI middleware): from the end
  of the head, the whole body must have arrived within it. An application
  waiting for the body past the deadline sees the client as gone
  (``http.disconnect``) and the client gets ``408`` with
  ``Connection: close``, on which uvicorn closes the connection. An answer
  sent before the body is complete (a request refused at once) carries
  ``Connection: close`` too, so a body nobody reads is never waited for.
- **keep-alive**: an idle connection between requests is closed by uvicorn's
  ``timeout_keep_alive`` (the smaller of :data:`KEEP_ALIVE_S` and the
  header timeout).
- **connection cap**: uvicorn's ``limit_concurrency``: once ``max_connections``
  are open, a further request is answered ``503`` and its connection closed.

What is lost against the earlier protocol subclass (uvicorn has no public
hook before a request's head is complete, and no setting for it):

- a **head** sent slowly (a byte at a time), or a connection that never sends
  a byte, is not closed by the server: the header timeout bounds only the
  idle wait of a kept-alive connection for its next request. Deploy behind a
  reverse proxy with a header timeout (nginx ``client_header_timeout``) when
  the port is reachable by untrusted clients;
- the cap acts once a request's head has arrived (a ``503`` and a close), not
  as a connection is accepted: connections that send nothing are not counted
  out.
"""

from __future__ import annotations

import asyncio
import logging
import resource

from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


def bounded(config: dict, header_timeout: float, max_connections: int) -> dict:
    """uvicorn settings with the keep-alive bound and the connection cap above.
    uvicorn counts the requesting connection itself against
    ``limit_concurrency``, hence the one more."""
    return {**config, "timeout_keep_alive": max(1, min(KEEP_ALIVE_S, int(header_timeout))),
            "limit_concurrency": max_connections + 1}


def _has_body(scope: Scope) -> bool:
    for key, value in scope["headers"]:
        if key == b"content-length":
            return value.strip() not in (b"0", b"")
        if key == b"transfer-encoding":
            return True
    return False


class BodyDeadline:
    """ASGI middleware: a request's body must arrive within ``body_timeout``
    seconds of its head (see the module's docstring)."""

    def __init__(self, app: ASGIApp, body_timeout: float = BODY_TIMEOUT_S) -> None:
        self.app = app
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.body_timeout
        state = {"complete": False, "answered": False, "started": False}

        async def bounded_receive() -> Message:
            if state["complete"] or state["answered"]:
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                if not state["started"]:  # else its answer already says Connection: close
                    await self._refuse(scope, send, state)
                return {"type": "http.disconnect"}
            if message["type"] != "http.request" or not message.get("more_body", False):
                state["complete"] = True
            return message

        async def closing_send(message: Message) -> None:
            if state["answered"]:
                return  # the deadline answered already: the application's is dropped
            if message["type"] == "http.response.start":
                state["started"] = True
                if not state["complete"]:
                    message = {**message, "headers": [*message.get("headers", ()),
                                                      (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, bounded_receive, closing_send)
        except Exception:
            if not state["answered"]:
                raise
            # the application failed for want of the body it was told is gone
            log.debug("after a body timeout", exc_info=True)

    async def _refuse(self, scope: Scope, send: Send, state: dict) -> None:
        state["answered"] = True
        client = scope.get("client")
        log.info("closed a connection from %s: the request's body did not arrive within %g s",
                 client[0] if client else "?", self.body_timeout)
        await send({"type": "http.response.start", "status": 408,
                    "headers": [(b"content-type", b"text/plain"), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": b"request body timeout"})
