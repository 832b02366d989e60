"""How the bank's routes read a request body: bounded in size and parsed by
the wire's strict JSON parser before FastAPI validates it against the model.

FastAPI's own parser accepts what ECASH-1 section 8 refuses (a repeated key,
``NaN``) and reads bodies of any size; this route class (FastAPI's documented
extension point, a custom ``APIRoute`` with its ``Request``) reads the body
once, bounded, parses it with :func:`ecash.wire.json.loads`, and hands FastAPI
the result. A refusal here is a problem document like any other: the
exception handlers see it, since it is raised before FastAPI's body parsing.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope

from ..wire import json as wj

MAX_BODY = 2 * 1024 * 1024


class BodyTooLarge(Exception):
    pass


def header(scope: Scope, name: bytes) -> str:
    """The first value of a request header (lowercase ``name``), or ``""``."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return ""


async def read_body(scope: Scope, receive: Receive) -> bytes:
    """The request body, bounded in size (the declared length is checked first,
    so a body declared too large is refused before a byte of it is read)."""
    declared = header(scope, b"content-length")
    if declared and (not declared.isdigit() or int(declared) > MAX_BODY):
        raise BodyTooLarge()
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise BodyTooLarge()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class WireRequest(Request):
    """A request whose body was read and parsed already (by :class:`WireRoute`)."""

    raw: bytes = b""
    parsed: Any = None

    async def body(self) -> bytes:
        return self.raw

    async def json(self) -> Any:
        return self.parsed


class WireRoute(APIRoute):
    """Routes with a body read it bounded and parse it strictly first."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def with_wire_body(request: Request) -> Response:
            wire = WireRequest(request.scope, request.receive)
            wire.raw = await read_body(request.scope, request.receive)
            wire.parsed = wj.loads(wire.raw)
            return await handler(wire)

        return with_wire_body
