"""Structured logs: one JSON object per line on stderr (python-json-logger),
with an ISO 8601 UTC time and, for every line logged while a request is
served, that request's id. uvicorn's own lines take the same form.

The id comes from :class:`RequestId` (a well-formed ``X-Request-ID`` sent by
the client or a proxy in front, else a new one) and goes back in the answer's
``X-Request-ID``, so one failed request can be found in the log from what the
client saw. Nothing secret is ever logged (credentials, keys and coin
secrets never reach a log call)."""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger import json as jsonlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID: ContextVar[str | None] = ContextVar("ecash_request_id", default=None)
_WELL_FORMED = re.compile(rb"[A-Za-z0-9._:-]{1,128}")


class RequestId:
    """Pure ASGI middleware: each HTTP request gets an id, in
    :data:`REQUEST_ID` while it is served and in the answer's ``X-Request-ID``.
    An incoming id is kept only if well-formed (at most 128 characters of
    ``A-Za-z0-9._:-``), so a client cannot write arbitrary text into the log."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")
        rid = given.decode() if _WELL_FORMED.fullmatch(given) else uuid.uuid4().hex
        raw = rid.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()),
                                                  (b"x-request-id", raw)]}
            await send(message)

        token = REQUEST_ID.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST_ID.reset(token)


class JsonFormatter(jsonlog.JsonFormatter):
    """python-json-logger's formatter with this project's field names (``time``,
    ``level`` in lower case, ``logger``, ``msg``, ``exc``) and the request id."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("timestamp", "time")
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger",
                                            "message": "msg", "exc_info": "exc"})
        super().__init__("{levelname}{name}{message}", *args, style="{", **kwargs)

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord,
                   message_dict: dict[str, Any]) -> None:
        super().add_fields(log_data, record, message_dict)
        log_data["level"] = record.levelname.lower()
        rid = REQUEST_ID.get()
        if rid is not None:
            log_data["request_id"] = rid


def uvicorn_log_config(level: str = "info") -> dict:
    """A ``logging.config.dictConfig`` for uvicorn and the bank, all in JSON."""
    handler = {"class": "logging.StreamHandler", "formatter": "json",
               "stream": "ext://sys.stderr"}
    return {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"json": {"()": "ecash.bank.logs.JsonFormatter"}},
        "handlers": {"default": handler},
        "loggers": {name: {"handlers": ["default"], "level": level.upper(), "propagate": False}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "ecash")},
    }
