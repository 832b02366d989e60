"""The serving layer on uvicorn's public API: request ids on every log line
(JSON, ISO 8601 UTC times), and ``ecash bank serve`` as a real process that
prints the URL it serves, logs uvicorn's lines as JSON too, and refuses a
port that another server holds instead of sharing it."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx

from ecash.bank.logs import JsonFormatter, RequestId
from ecash.bank.service import Bank
from ecash.serving.threaded import ThreadedServer, free_port

from ..bankkit import signer_process


def served_with_log(requests) -> list[dict]:  # type: ignore[no-untyped-def]
    """Serve an app that logs twice per request (yielding to other requests
    in between), run ``requests(url)``, and return the JSON log lines."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("ecash.test_serving")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False

    async def app(scope, receive, send):  # type: ignore[no-untyped-def]
        log.info("serving %s", scope["path"])
        await asyncio.sleep(0.01)  # other requests run meanwhile
        log.info("answering %s", scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    try:
        log.info("outside any request")
        with ThreadedServer(RequestId(app)) as url:
            requests(url)
    finally:
        log.removeHandler(handler)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_each_request_has_an_id_on_its_log_lines_and_in_its_answer():
    answers: dict[str, httpx.Response] = {}

    def requests(url: str) -> None:
        answers["given"] = httpx.get(f"{url}/given", headers={"X-Request-ID": "till-7.run:42"})
        answers["none"] = httpx.get(f"{url}/none")
        answers["bad"] = httpx.get(f"{url}/bad", headers={"X-Request-ID": "x" * 200})
        with ThreadPoolExecutor(8) as pool:  # concurrent requests keep their own ids
            for i, r in enumerate(pool.map(lambda i: httpx.get(
                    f"{url}/c{i}", headers={"X-Request-ID": f"c{i}"}), range(16))):
                answers[f"c{i}"] = r

    records = served_with_log(requests)
    assert answers["given"].headers["x-request-id"] == "till-7.run:42"
    assert re.fullmatch(r"[0-9a-f]{32}", answers["none"].headers["x-request-id"])
    assert re.fullmatch(r"[0-9a-f]{32}", answers["bad"].headers["x-request-id"])
    for name, answer in answers.items():
        lines = [r for r in records if r["msg"].endswith(f" /{name}")]
        assert len(lines) == 2, (name, records)
        assert {r["request_id"] for r in lines} == {answer.headers["x-request-id"]}
    outside, = [r for r in records if r["msg"] == "outside any request"]
    assert "request_id" not in outside
    now = datetime.now(UTC)
    for r in records:
        when = datetime.fromisoformat(r["time"])
        assert when.utcoffset() == timedelta(0) and abs(now - when) < timedelta(minutes=5), r
        assert r["level"] == "info" and r["logger"] == "ecash.test_serving"


def serve_code(db: str, socket: str, port: int) -> str:
    return ("from ecash.bank.server import serve;"
            f" serve({db!r}, {socket!r}, port={port})")


def test_serve_prints_its_url_and_a_second_one_on_its_port_fails_at_once(tmp_path):
    db = f"sqlite:///{tmp_path / 'bank.db'}"
    bank, _ = Bank.init(db, tmp_path / "keys")
    bank.engine.dispose()
    other = f"sqlite:///{tmp_path / 'other.db'}"
    Bank.init(other, tmp_path / "other-keys")[0].engine.dispose()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with signer_process(tmp_path / "keys", tmp_path / "signer.sock"):
        first = subprocess.Popen([sys.executable, "-c", serve_code(
            db, str(tmp_path / "signer.sock"), port)], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        try:
            for _ in range(600):
                try:
                    httpx.get(f"{url}/v1/health", timeout=2).raise_for_status()
                    break
                except httpx.HTTPError:
                    assert first.poll() is None, first.communicate()[1]
                    time.sleep(0.1)
            keyset = httpx.get(f"{url}/v1/keyset").json()
            started = time.monotonic()
            second = subprocess.run([sys.executable, "-c", serve_code(
                other, str(tmp_path / "other.sock"), port)], capture_output=True, text=True,
                timeout=60)
            assert time.monotonic() - started < 30  # at once, not after a start-up
            assert second.returncode != 0
            assert second.stderr.strip().splitlines() == [
                f"error: cannot listen on 127.0.0.1:{port}: Address already in use"]
            for _ in range(12):  # the first server still answers every request
                assert httpx.get(f"{url}/v1/keyset").json() == keyset
        finally:
            first.terminate()
            out, err = first.communicate(timeout=30)
    assert out.splitlines()[0] == f"ecash bank: serving {url}/ with 1 worker"
    uvicorn_lines = [json.loads(line) for line in err.splitlines()
                     if line.startswith("{") and '"uvicorn' in line]
    assert uvicorn_lines, err  # uvicorn's own lines are JSON with ISO times too
    for r in uvicorn_lines:
        assert datetime.fromisoformat(r["time"]).utcoffset() == timedelta(0)
