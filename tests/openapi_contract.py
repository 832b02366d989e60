"""The bank's responses against its own ``/openapi.json``: every response a
test provokes is recorded (:class:`Recorder`, a pure ASGI middleware) and
checked when the test's bank stops (:func:`violations`), so the document and
the code cannot drift apart unnoticed."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import jsonschema_rs
from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass
class Recorded:
    method: str
    path: str  # the route's template, "" when no route matched
    status: int
    content_type: str
    body: bytes


@dataclass
class Recorder:
    """Stores (method, route template, status, body) of each HTTP response."""

    app: ASGIApp
    records: list[Recorded] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: dict = {}
        chunks: list[bytes] = []

        async def keep(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, keep)
        finally:
            if start:
                headers = dict(start.get("headers", ()))
                self.records.append(Recorded(
                    scope["method"], getattr(scope.get("route"), "path", ""), start["status"],
                    headers.get(b"content-type", b"").decode(), b"".join(chunks)))


def _validator(doc: dict, schema: dict) -> jsonschema_rs.Validator:
    root = {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": doc.get("components", {}), "allOf": [schema]}
    return jsonschema_rs.Draft202012Validator(root)


def violations(doc: dict, records: list[Recorded], cache: dict | None = None) -> list[str]:
    """Each recorded response of a documented operation that its document does
    not describe: an undocumented status or media type, or a body that does
    not validate against the response's schema ($refs resolved)."""
    out: list[str] = []
    cache = {} if cache is None else cache  # the validators of this document
    for r in records:
        op = doc["paths"].get(r.path, {}).get(r.method.lower())
        if op is None:  # no route (404, 405) or an undocumented one (/metrics)
            continue
        label = f"{r.method} {r.path} -> {r.status}"
        response = op["responses"].get(str(r.status))
        if response is None:
            out.append(f"{label}: status not documented: {r.body[:200]!r}")
            continue
        media = r.content_type.split(";")[0].strip()
        content = response.get("content", {}).get(media)
        if content is None:
            out.append(f"{label}: media type {media!r} not documented")
            continue
        key = (r.method, r.path, str(r.status), media)
        if key not in cache:
            cache[key] = _validator(doc, content["schema"])
        try:
            body = json.loads(r.body)
        except ValueError:
            out.append(f"{label}: not JSON: {r.body[:200]!r}")
            continue
        errors = [e.message for e in cache[key].iter_errors(body)]
        if errors:
            out.append(f"{label}: {'; '.join(errors)[:400]} in {r.body[:300]!r}")
    return out
