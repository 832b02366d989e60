"""The terminal's server (``ecash.merchant.serve.serve``, what ``ecash merchant
serve`` runs) in a process of its own, over real sockets: an idle kept-alive
connection and a slow body are closed after their deadlines, an ordinary request is served,
and a client hanging up mid-body is one brief line in the log."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from ecash.serving.threaded import free_port

from ..bank.test_edges import closed_while_trickling
from ..bankkit import served_process
from .kit import new_terminal


@contextmanager
def terminal_process(store: Path) -> Iterator[tuple[str, list[str]]]:
    """The terminal served with half-second deadlines: ``(url, log lines)``,
    the log complete once the block has ended."""
    port = free_port()
    code = ("import logging; from ecash.merchant import Terminal;"
            " from ecash.merchant.serve import serve;"
            f" serve(Terminal.open({str(store)!r}), port={port}, deposit_every=0,"
            " header_timeout=0.5, body_timeout=0.5)")
    url = f"http://127.0.0.1:{port}"
    with served_process(code, f"{url}/health") as lines:
        yield url, lines


@pytest.fixture
def served(bank, tmp_path) -> Iterator[tuple[str, list[str]]]:
    store = tmp_path / "terminal.db"
    new_terminal(bank, store).close()
    with terminal_process(store) as running:
        yield running


def test_idle_connections_and_slow_bodies_are_closed_after_their_deadlines(served):
    url, _log = served
    # a kept-alive connection idle after its answer (a slow head is not bounded:
    # see ecash.serving.deadlines)
    assert closed_while_trickling(url, b"GET /health HTTP/1.1\r\nHost: till\r\n\r\n", b"",
                                  steps=30)
    body = (b"POST /pay/" + b"00" * 16 + b" HTTP/1.1\r\nHost: till\r\n"
            b"Content-Type: application/json\r\nContent-Length: 300\r\n\r\n{")
    assert closed_while_trickling(url, body, b" ")
    assert httpx.get(f"{url}/health").status_code == 200


def test_a_client_hanging_up_mid_body_is_one_brief_line(bank, tmp_path):
    store = tmp_path / "terminal.db"
    with new_terminal(bank, store) as t:  # a request the terminal knows: it reads the body
        request_id = t.create_request(300).request.request_id.hex().encode()
    with terminal_process(store) as (url, log):
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"POST /pay/" + request_id + b" HTTP/1.1\r\nHost: till\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 300\r\n\r\n{")
            s.shutdown(socket.SHUT_WR)
            s.settimeout(30)
            while s.recv(4096):  # until the terminal has seen the hang-up and closed
                pass
        assert httpx.get(f"{url}/health").status_code == 200
    gone = [line for line in log if "disconnected before the body was complete" in line]
    assert len(gone) == 1 and " INFO " in gone[0], "\n".join(log)
    assert not [line for line in log if "ERROR" in line or "Traceback" in line], log
