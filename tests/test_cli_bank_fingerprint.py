"""``ecash bank init`` and ``ecash bank serve`` print the master key's
fingerprint (issue 14, item 5), whole and on one line, so that a person can
compare it with what a wallet and a terminal show when they pin the bank.
The console script runs as a real subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ecash.serving.threaded import free_port
from ecash.wire.fingerprint import master_key_fingerprint

ECASH = Path(sys.executable).with_name("ecash")
ENV = {**os.environ, "COLUMNS": "60"}  # narrower than the fingerprint's line


def bank(*args: str) -> subprocess.CompletedProcess:
    r = subprocess.run([str(ECASH), "bank", *args], capture_output=True, text=True,
                       timeout=120, env=ENV)
    assert r.returncode == 0, r.stderr
    return r


def fingerprint_line(text: str) -> str:
    [line] = [ln for ln in text.splitlines() if "master key fingerprint" in ln]
    return line.split("master key fingerprint", 1)[1].strip()


def test_init_prints_the_master_key_fingerprint(tmp_path):
    db = ["--db", f"sqlite:///{tmp_path / 'a' / 'bank.db'}", "--keys", str(tmp_path / "a" / "k")]
    out = json.loads(bank("init", *db, "--json").stdout)
    master = bytes.fromhex(out["master_public_key"])
    assert out["master_key_fingerprint"] == master_key_fingerprint(master)

    db = ["--db", f"sqlite:///{tmp_path / 'b' / 'bank.db'}", "--keys", str(tmp_path / "b" / "k")]
    human = bank("init", *db).stdout
    [key] = re.findall(r"master public key\s+([0-9a-f]{64})$", human, re.M)
    assert fingerprint_line(human) == master_key_fingerprint(bytes.fromhex(key))


def test_serve_prints_its_url_and_the_master_key_fingerprint(tmp_path):
    db = ["--db", f"sqlite:///{tmp_path / 'bank.db'}", "--keys", str(tmp_path / "keys")]
    master = bytes.fromhex(json.loads(bank("init", *db, "--json").stdout)["master_public_key"])
    port = free_port()
    # the fingerprint is the database's: no signer needs to be up for it
    signer = ["--signer", str(tmp_path / "signer.sock")]
    proc = subprocess.Popen([str(ECASH), "bank", "serve", *db[:2], *signer, "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=ENV)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, "did not start"
                time.sleep(0.1)
    finally:
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert f"http://127.0.0.1:{port}" in out
    assert fingerprint_line(out) == master_key_fingerprint(master)
