"""uvicorn's httptools protocol, sending a response's head and body in one write.

uvicorn writes the status line and headers as soon as the application sends
``http.response.start``, and the body in a second write. On a TCP_NODELAY
socket that is two segments, two send calls and, for the client, two
wake-ups for one answer; on a virtual machine each wake-up costs tens of µs.
Here the head is held until the body's first write (or a close) and goes out
with it. Nothing else changes: interim ``100 Continue`` answers pass at once,
and HEAD requests (whose answer has no body write) are not held.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_INTERIM = b"HTTP/1.1 1"


class HeadWithBody:
    """The transport as one request's response cycle sees it: the first
    write that is not an interim answer (uvicorn's head of the response) is
    held and sent with the next write or before a close; every later write
    passes straight through."""

    __slots__ = ("_held", "_state", "transport")

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self._held = b""
        self._state = 0  # 0: before the head; 1: holding it; 2: passing through

    def write(self, data: bytes) -> None:
        if self._state == 0 and not data.startswith(_INTERIM):
            self._held, self._state = bytes(data), 1
        elif self._state == 1:
            held, self._held, self._state = self._held, b"", 2
            self.transport.write(held + data)
        else:
            self.transport.write(data)

    def close(self) -> None:
        if self._state == 1:
            self.write(b"")
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def __getattr__(self, name: str) -> Any:  # anything else uvicorn may ask
        return getattr(self.transport, name)


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    """``uvicorn.Config(http=OneWriteHttpToolsProtocol)``."""

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        # a new cycle has not run yet (its task is only scheduled); an upgrade
        # or a refused request leaves no new cycle, or one for HEAD (no body)
        if cycle is not None and not cycle.response_started and \
                cycle.scope["method"] != "HEAD" and not isinstance(cycle.transport, HeadWithBody):
            cycle.transport = HeadWithBody(cycle.transport)  # type: ignore[assignment]
