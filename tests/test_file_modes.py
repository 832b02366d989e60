"""Every file the bank, a terminal and a wallet create holds money state or
personal data: each is 0600 and each directory made for one 0700, under the
usual umask 022. The real commands run as subprocesses (the bank also serves
a while, so SQLite's WAL and SHM files exist), then every created file is
walked."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path

import httpx

from ecash.demo import ecash_command
from ecash.files import private_sqlite, write_private
from ecash.serving.threaded import free_port

PASSPHRASE = "correct horse battery staple"


def ecash(*args: str, env: dict[str, str] | None = None) -> dict:
    """One command under umask 022; its ``--json`` output."""
    r = subprocess.run([*ecash_command(), *args, "--json"], capture_output=True, text=True,
                       timeout=120, umask=0o022,
                       env={**os.environ, "ECASH_WALLET_PASSPHRASE": PASSPHRASE, **(env or {})})
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return json.loads(r.stdout)


def modes(root: Path) -> dict[str, int]:
    """Every path under ``root`` (``root`` itself included) and its mode."""
    out = {str(root): stat.S_IMODE(root.stat().st_mode)}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            out[str(p.relative_to(root.parent))] = stat.S_IMODE(p.lstat().st_mode)
    return out


def loose(root: Path) -> dict[str, str]:
    """Whatever under ``root`` is not owner-only (files 0600, directories 0700)."""
    bad = {}
    for path, mode in modes(root).items():
        want = 0o700 if Path(root.parent, path).is_dir() else 0o600
        if mode != want:
            bad[path] = oct(mode)
    return bad


def wait_until_serving(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{url}/v1/health", timeout=2).raise_for_status()
            return
        except httpx.HTTPError:
            assert proc.poll() is None, "the bank exited"
            assert time.monotonic() < deadline, "the bank did not start"
            time.sleep(0.1)


def test_every_file_of_bank_terminal_and_wallet_is_owner_only(tmp_path):
    data = tmp_path / "data"  # made by the commands themselves, with their parents
    bank_db = data / "bank" / "db" / "bank.db"
    keys = data / "bank" / "keys"
    store = data / "shop" / "terminal" / "shop.db"
    wallet = data / "wallet" / "alice" / "wallet.db"
    out = data / "payments" / "out" / "payment.txt"
    db = ["--db", f"sqlite:///{bank_db}", "--keys", str(keys)]

    master = ecash("bank", "init", *db)["master_public_key"]
    alice = ecash("bank", "open-account", "--holder", "Alice", *db)
    ecash("bank", "credit", alice["account_id"], "5000.00", "--reference", "pay-in-1", *db)
    shop = ecash("bank", "open-account", "--holder", "The Shop", *db)
    merchant = ecash("bank", "register-merchant", shop["account_id"], "--merchant-id", "shop",
                     *db)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    sock = tmp_path / "run" / "signer.sock"  # the socket is group-shared: not under data
    signer = subprocess.Popen([*ecash_command(), "bank", "signer", "--keys", str(keys),
                               "--socket", str(sock)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, umask=0o022)
    server = subprocess.Popen([*ecash_command(), "bank", "serve", *db[:2], "--signer", str(sock),
                               "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, umask=0o022)
    try:
        wait_until_serving(url, server)
        while not sock.exists():  # the signer listens once its socket is there
            assert signer.poll() is None, "the signer exited"
            time.sleep(0.05)
        ecash("merchant", "init", "--bank", url, "--store", str(store), "--master-key", master,
              env={"ECASH_MERCHANT_CREDENTIAL": merchant["credential"]})
        request = ecash("merchant", "request", "300", "--store", str(store))["text"]
        ecash("wallet", "init", "--kdf", "interactive", "--wallet", str(wallet))
        ecash("wallet", "register", "--bank", url, "--account", alice["account_id"],
              "--wallet", str(wallet), env={"ECASH_WALLET_CREDENTIAL": alice["credential"]})
        ecash("wallet", "load", "1000", "--wallet", str(wallet))
        paid = ecash("wallet", "pay", request, "--out", str(out), "--yes", "--wallet",
                     str(wallet))
        assert paid["status"] == "answered" and out.read_text().strip()
        # while the bank serves, its database has its WAL and SHM files
        created = modes(data)
        assert any(p.endswith("bank.db-wal") for p in created), created
        assert any(p.endswith("bank.db-shm") for p in created), created
        assert loose(data) == {}
    finally:
        server.terminate()
        server.wait(30)
        signer.terminate()
        signer.wait(30)
    assert loose(data) == {}


def test_a_database_left_readable_by_an_older_release_is_tightened(tmp_path):
    db = tmp_path / "bank.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").write_bytes(b"")
        os.chmod(f"{db}{suffix}", 0o644)
    private_sqlite(db)
    assert {oct(stat.S_IMODE(os.stat(f"{db}{s}").st_mode)) for s in ("", "-wal", "-shm")} \
        == {"0o600"}


def test_an_output_file_is_owner_only_even_if_it_existed(tmp_path):
    out = tmp_path / "payment.txt"
    out.write_text("old")
    os.chmod(out, 0o644)
    write_private(out, "new\n")
    assert out.read_text() == "new\n" and stat.S_IMODE(out.stat().st_mode) == 0o600
