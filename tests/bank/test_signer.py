"""The bank's secrets live in the signer process alone (issue 15): the HTTP
workers never read a key file nor hold ``x``; the signer enforces ECASH-1 9.1
itself (one challenge list per nonce, across its restarts); a signer down is
a clear 503 that changes nothing; key files and the signer's state are private."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from ecash.bank.client import BankClient, BankUnreachable
from ecash.bank.errors import BankError
from ecash.bank.keyring import KeyRing
from ecash.bank.schema import withdraw_sessions
from ecash.bank.signer import SignerClient
from ecash.bank.signer_local import LocalSigner
from ecash.crypto import group
from ecash.crypto import registration as reg
from ecash.crypto.coin import verify_coin
from ecash.crypto.withdrawal import user_finish
from ecash.serving.threaded import free_port
from ecash.wire.redemption import REDEMPTION_PAYEE

from ..bankkit import (
    SIGNER_CODE,
    DroppingTransport,
    SignerProcess,
    balance_of,
    holder_at,
    refused,
    running_bank,
    served_process,
    signer_backed_server,
    signer_process,
    signer_socket,
    token_of,
)
from ..rediskit import redis_server


@pytest.fixture
def sock():
    with signer_socket() as path:
        yield path


def session_nonce(env, session_id: str) -> tuple[bytes, bytes]:
    with env.bank.engine.connect() as conn:
        row = conn.execute(select(withdraw_sessions.c.nonce, withdraw_sessions.c.key_ids).where(
            withdraw_sessions.c.id == bytes.fromhex(session_id))).one()
    return bytes(row.nonce), bytes(row.key_ids)


def unpack(blob: bytes) -> list[tuple[int, int]]:
    """The signer's ``beta || r`` per coin, as the client returns answers."""
    return [(blob[i], group.decode_scalar(blob[i + 1:i + 33])) for i in range(0, len(blob), 33)]


def packed(challenges: list[tuple[int, int]]) -> bytes:
    return b"".join(group.encode_scalar(c) for pair in challenges for c in pair)


# --- the secrets never reach a worker ------------------------------------------

def secret_forms(keys_dir: Path) -> dict[str, list[bytes]]:
    """Every secret of the key directory, in each form a process could hold
    it: bytes, hex text, and for each ``x`` CPython's int layout (30-bit
    digits, each a little-endian uint32)."""
    ring = KeyRing.load(keys_dir)
    out = {"master seed": [ring.master.seed, ring.master.seed.hex().encode()],
           "nonce key": [ring.nonce_key, ring.nonce_key.hex().encode()]}
    for key_id, k in ring.by_id.items():
        enc = group.encode_scalar(k.x)
        digits, x = b"", k.x
        while x:
            digits += (x & (2**30 - 1)).to_bytes(4, "little")
            x >>= 30
        out[f"x of {key_id.hex()[:8]}"] = [digits, enc, enc.hex().encode()]
    return out


def memory_of(pid: int) -> list[bytes]:
    """Every readable mapping of a process (tests run as root)."""
    chunks = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            if "r" not in fields[1] or (len(fields) > 5 and fields[5] in ("[vvar]",
                                                                          "[vsyscall]")):
                continue
            lo, hi = (int(v, 16) for v in fields[0].split("-"))
            try:
                mem.seek(lo)
                chunks.append(mem.read(hi - lo))
            except OSError:
                continue  # a device mapping, gone meanwhile
    return chunks


def found_in(pid: int, forms: dict[str, list[bytes]]) -> dict[str, list[int]]:
    """For each secret, which of its forms occur in ``pid``'s memory."""
    pattern = re.compile(b"|".join(re.escape(f) for fs in forms.values() for f in fs))
    seen = {m.group() for chunk in memory_of(pid) for m in pattern.finditer(chunk)}
    return {name: [i for i, f in enumerate(fs) if f in seen] for name, fs in forms.items()}


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants."""
    parents = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                raw = Path(f"/proc/{p}/stat").read_text()
            except OSError:
                continue
            parents[int(p)] = int(raw[raw.rindex(")") + 2:].split()[1])
    tree, grew = {root}, True
    while grew:
        new = {p for p, pp in parents.items() if pp in tree} - tree
        tree |= new
        grew = bool(new)
    return sorted(tree)


@pytest.mark.parametrize("workers", [1, 2])
def test_workers_never_hold_a_secret(tmp_path, sock, workers):
    """``ecash bank serve --signer`` (one worker, and two sharing their rate
    limits in redis) withdraws and deposits beside a real signer; no byte of
    any secret is in a serve process's memory, while the same scan finds
    them all in the signer's."""
    with contextlib.ExitStack() as stack:
        env = stack.enter_context(running_bank("sqlite", tmp_path))
        signer = stack.enter_context(signer_process(env.keys_dir, sock))
        args = ["bank", "serve", "--db", env.db_url, "--signer", str(sock),
                "--port", str(free_port())]
        if workers > 1:
            args += ["--workers", str(workers), "--rate-limit-storage",
                     stack.enter_context(redis_server(tmp_path))]
        url = f"http://127.0.0.1:{args[7]}"
        code = f"from ecash.cli.main import app; app({args!r})"
        with served_process(code, f"{url}/v1/health"):
            serve_pid = serve_process_of(args[7])
            alice = holder_at(env, url)
            shop = BankClient(url, token_of(env.merchant("shop")))
            coins = alice.withdraw([1, 2, 4, 8, 16, 32])
            coins += alice.withdraw([64, 128])
            assert [v["status"] for v in shop.deposit(alice.pay(coins[:3], "shop"))] == \
                ["accepted"] * 3
            alice.client.redeem(alice.account_id, alice.pay(coins[3:4], REDEMPTION_PAYEE))
            forms = secret_forms(env.keys_dir)
            processes = process_tree(serve_pid)
            assert len(processes) >= 1 + (workers if workers > 1 else 0), processes
            for pid in processes:
                assert found_in(pid, forms) == {name: [] for name in forms}, pid
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    with contextlib.suppress(FileNotFoundError):  # closed meanwhile
                        target = os.readlink(f"/proc/{pid}/fd/{fd}")
                        assert not target.startswith(str(env.keys_dir)), target
            in_signer = found_in(signer.pid, forms)
            assert all(in_signer.values()), in_signer  # the scan does find secrets
            assert all(0 in in_signer[n] for n in forms if n.startswith("x of")), in_signer
            alice.client.close()
            shop.close()


def serve_process_of(port: str) -> int:
    """The ``ecash bank serve`` process listening on ``port`` (the served
    process's own pid is the ``python -c`` that is it)."""
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{p}/cmdline").read_bytes()
        except OSError:
            continue
        if b"'serve'" in cmd and f"'{port}'".encode() in cmd:
            return int(p)
    raise AssertionError("no serve process")


# --- 9.1 across signer restarts ---------------------------------------------

def test_withdrawal_survives_signer_restart(env, sock):
    """Commitments before a restart of the signer, the answer after it; the
    answer's reply lost and asked again: the same coins; the signer itself
    refuses other challenges on that nonce, as a compromised worker would ask."""
    with signer_process(env.keys_dir, sock) as signer, \
            signer_backed_server(env, sock) as url:
        alice = holder_at(env, url)
        before = balance_of(env, alice.account_id)
        offer, states = alice.start([1, 2, 4])
        signer.restart()
        transport = DroppingTransport()
        lossy = BankClient(url, token_of(alice.client), transport=transport)
        challenges = [s.challenges for s in states]
        transport.drop = 1
        with pytest.raises(BankUnreachable):
            lossy.answer(alice.account_id, offer["session_id"], challenges)
        assert balance_of(env, alice.account_id) == before - 7  # the bank did answer
        signer.restart()
        answers = lossy.answer(alice.account_id, offer["session_id"], challenges)
        coins = [user_finish(s, r, beta) for s, (beta, r) in zip(states, answers, strict=True)]
        ks = alice.client.keyset()
        for coin, _ in coins:
            verify_coin(coin, ks.key(coin.key_id))
        assert balance_of(env, alice.account_id) == before - 7  # debited once

        # a worker asking the signer directly: the same request gets the same
        # answer (also after a restart), other challenges on the nonce nothing
        nonce, key_ids = session_nonce(env, offer["session_id"])
        direct = SignerClient(sock, timeout=5)
        blob = direct.respond(nonce, key_ids, packed(challenges))
        assert unpack(blob) == answers
        other = [(c1, c0) for c0, c1 in challenges]
        with pytest.raises(BankError) as info:
            direct.respond(nonce, key_ids, packed(other))
        assert (info.value.code, info.value.status) == ("challenges_mismatch", 409)
        signer.restart()
        with pytest.raises(BankError) as info:
            direct.respond(nonce, key_ids, packed(other))
        assert info.value.code == "challenges_mismatch"
        # a nonce the signer did not issue is refused, even if well formed
        forged = nonce[:16] + bytes(16)
        with pytest.raises(BankError) as info:
            direct.respond(forged, key_ids, packed(challenges))
        assert info.value.code == "bad_nonce"
        direct.close()
        lossy.close()
        alice.client.close()


def test_signer_refuses_a_second_answer_before_the_bank_stored_one(env, sock):
    """The signer answered but the bank did not store it (a worker that went
    wrong): the signer alone still refuses other challenges for that nonce,
    and the bank's answer with the first challenges is the signer's."""
    with signer_process(env.keys_dir, sock), signer_backed_server(env, sock) as url:
        alice = holder_at(env, url)
        offer, states = alice.start([2, 8])
        challenges = [s.challenges for s in states]
        nonce, key_ids = session_nonce(env, offer["session_id"])
        direct = SignerClient(sock, timeout=5)
        blob = direct.respond(nonce, key_ids, packed(challenges))
        with pytest.raises(BankError) as info:
            direct.respond(nonce, key_ids, packed([(c0 + 1, c1) for c0, c1 in challenges]))
        assert info.value.code == "challenges_mismatch"
        answers = alice.client.answer(alice.account_id, offer["session_id"], challenges)
        assert unpack(blob) == answers
        direct.close()
        alice.client.close()


# --- the signer down ----------------------------------------------------------

def test_signer_down_is_a_clear_503(env, sock):
    """No signer: the start is refused (503 signer_unavailable), no session is
    made; a signer stopped between start and answer: 503, nothing debited,
    and once it is back the same session is answered."""
    signer = SignerProcess(env.keys_dir, sock)
    with signer_backed_server(env, sock) as url:
        alice = holder_at(env, url)
        before = balance_of(env, alice.account_id)
        with refused(503, "signer_unavailable"):
            alice.start([1])
        with env.bank.engine.connect() as conn:
            assert conn.execute(select(withdraw_sessions.c.id)).all() == []
        signer.start()
        try:
            offer, states = alice.start([1, 4])
            signer.stop()
            challenges = [s.challenges for s in states]
            with refused(503, "signer_unavailable"):
                alice.client.answer(alice.account_id, offer["session_id"], challenges)
            assert balance_of(env, alice.account_id) == before
            signer.start()
            assert len(alice.client.answer(alice.account_id, offer["session_id"],
                                           challenges)) == 2
            assert balance_of(env, alice.account_id) == before - 5
        finally:
            signer.stop()
        alice.client.close()


# --- files and the socket -------------------------------------------------------

def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_key_files_and_state_are_private(env, sock):
    """Key files and the signer's state (with its SQLite side files) 0600, the
    key directory 0700, the socket 0660 in a directory made 0700."""
    with signer_process(env.keys_dir, sock), signer_backed_server(env, sock) as url:
        alice = holder_at(env, url)
        alice.withdraw([1, 2])
        alice.client.close()
        assert mode(env.keys_dir) == 0o700
        files = sorted(p.name for p in env.keys_dir.iterdir())
        assert {"master.seed", "nonce.key", "generation-0001.json", "signer.sqlite"} <= set(files)
        assert {p.name: mode(p) for p in env.keys_dir.iterdir()} == {f: 0o600 for f in files}
        assert stat.S_ISSOCK(sock.stat().st_mode) and mode(sock) == 0o660
        assert mode(sock.parent) == 0o700


def test_one_signer_per_socket(env, sock):
    """A second signer on a live signer's socket refuses to start; a socket a
    killed signer left behind is taken over."""
    with signer_process(env.keys_dir, sock) as first:
        second = subprocess.run(
            [sys.executable, "-c", SIGNER_CODE, "bank", "signer", "--keys", str(env.keys_dir),
             "--socket", str(sock)], capture_output=True, text=True, timeout=60)
        assert second.returncode != 0
        assert re.search("already listening", second.stderr + second.stdout)
        SignerClient(sock).public_info()  # the first one still serves
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait()
        assert sock.is_socket()
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with pytest.raises(ConnectionRefusedError):
            probe.connect(str(sock))
        probe.close()
        first.start()  # over the stale file
        assert SignerClient(sock).public_info().master_public_key == env.bank.master_public_key


def test_signer_client_reports_a_missing_socket(tmp_path):
    with pytest.raises(BankError) as info:
        SignerClient(tmp_path / "nothing.sock").public_info()
    assert (info.value.code, info.value.status) == ("signer_unavailable", 503)


def test_old_nonces_are_refused_and_their_records_pruned(tmp_path):
    """A nonce older than the signer's window is refused (410), and the
    record of its answer is pruned: an answer is never needed again once
    its nonce is refused."""
    now = [time.time()]
    keys_dir = tmp_path / "keys"
    first = LocalSigner.create(keys_dir, window_s=600, clock=lambda: now[0])
    t = int(now[0])
    [key] = first.new_generation(1, [1], "CNY", t - 10, t + 10**6, t + 2 * 10**6)
    identity = reg.identity_of(group.random_scalar())
    challenges = packed([(group.random_scalar() >> 8 or 1, 5)])
    old = first.commit(identity, key.key_id).nonce
    blob = first.respond(old, key.key_id, challenges)
    assert first.respond(old, key.key_id, challenges) == blob
    first.close()
    now[0] += 601
    later = LocalSigner(keys_dir, window_s=600, clock=lambda: now[0])
    with pytest.raises(BankError) as info:
        later.respond(old, key.key_id, challenges)
    assert (info.value.code, info.value.status) == ("session_expired", 410)
    fresh = later.commit(identity, key.key_id).nonce
    later.respond(fresh, key.key_id, challenges)
    later.close()
    with sqlite3.connect(keys_dir / "signer.sqlite") as db:
        assert [bytes(n) for (n,) in db.execute("SELECT nonce FROM answers")] == [fresh]
