"""The bank's HTTP protocol sends a response's head and body in one write
(bank/oneshot.py), over real sockets on 127.0.0.1, without changing what
any kind of response looks like to a client."""

from __future__ import annotations

import asyncio
import socket
import struct
import time

import httpx
import pytest

from ecash.bank.server import ThreadedServer

TCP_INFO_DATA_SEGS_IN = 152  # offset of tcpi_data_segs_in in Linux's struct tcp_info


async def app(scope, receive, send) -> None:
    """Small answers, a slow stream, a body read after ``100 Continue``, and a
    failure after the head was sent."""
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/echo":
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        payload = b"got " + body
    elif path == "/stream":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"first;", "more_body": True})
        await asyncio.sleep(0.5)
        await send({"type": "http.response.body", "body": b"second", "more_body": False})
        return
    elif path == "/fail-after-head":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"100")]})
        raise RuntimeError("the body never comes")
    elif path == "/empty":
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    else:
        payload = b"x" * int(path.strip("/") or 10)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


@pytest.fixture(scope="module")
def url():
    with ThreadedServer(app) as u:
        yield u


def _exchange(url: str, request: bytes, until: bytes) -> tuple[bytes, int | None]:
    """Send ``request`` on a fresh connection, read until ``until`` has
    arrived, and count the data segments the client received (Linux)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as s:
        s.sendall(request)
        got = b""
        deadline = time.monotonic() + 10
        while until not in got and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        info = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    segs = (struct.unpack_from("I", info, TCP_INFO_DATA_SEGS_IN)[0]
            if len(info) >= TCP_INFO_DATA_SEGS_IN + 4 else None)
    return got, segs


@pytest.mark.parametrize("size", [10, 20_000])
def test_head_and_body_arrive_in_one_segment(url: str, size: int) -> None:
    got, segs = _exchange(url, f"GET /{size} HTTP/1.1\r\nhost: x\r\n\r\n".encode(),
                          b"x" * size)
    assert got.startswith(b"HTTP/1.1 200 OK\r\n")
    assert got.endswith(b"\r\n\r\n" + b"x" * size)
    if segs is None:
        pytest.skip("this kernel's TCP_INFO has no data segment count")
    assert segs == 1  # uvicorn alone sends the head and the body in two


def test_keep_alive_serves_many_answers(url: str) -> None:
    with httpx.Client(base_url=url) as c:
        for size in (1, 500, 70_000, 3):
            r = c.get(f"/{size}")
            assert r.status_code == 200 and r.content == b"x" * size


def test_head_request_is_answered(url: str) -> None:
    r = httpx.head(f"{url}/42", timeout=5)
    assert r.status_code == 200
    assert r.headers["content-length"] == "42" and r.content == b""


def test_no_content_is_answered(url: str) -> None:
    r = httpx.get(f"{url}/empty", timeout=5)
    assert r.status_code == 204 and r.content == b""


def test_a_stream_starts_before_it_ends(url: str) -> None:
    """The head goes with the first part of a body, not with the last."""
    with httpx.stream("GET", f"{url}/stream", timeout=5) as r:
        started = time.monotonic()
        parts = r.iter_raw()
        assert next(parts) == b"first;"
        assert time.monotonic() - started < 0.4
        assert b"".join(parts) == b"second"


def test_100_continue_is_not_held(url: str) -> None:
    """A client that waits for ``100 Continue`` before its body gets it."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n"
                  b"expect: 100-continue\r\n\r\n")
        interim = s.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n")
        s.sendall(b"hello")
        got = b""
        while b"got hello" not in got:
            chunk = s.recv(65536)
            assert chunk
            got += chunk
    assert got.startswith(b"HTTP/1.1 200 OK\r\n")


def test_failure_after_the_head_still_sends_it_then_closes(url: str) -> None:
    got, _ = _exchange(url, b"GET /fail-after-head HTTP/1.1\r\nhost: x\r\n\r\n", b"\0")
    assert got.startswith(b"HTTP/1.1 200 OK\r\n") and got.endswith(b"\r\n\r\n")
