"""Revision 2 in the wallet: coins are recorded under their ``coin_id``
(ECASH-1 4.1), and a wallet file of format 1 (whose serial column held ``A``)
is migrated when it is opened; ``register --master-key`` refuses a key other
than the one pinned and shows the whole key's fingerprint."""

from __future__ import annotations

import sqlite3

import pytest

from ecash.crypto.coin import compute_coin_id
from ecash.wallet import KeysetRefused, TerminalError, Wallet, WalletError
from ecash.wallet.store import FORMAT, FORMAT_1
from ecash.wire.fingerprint import master_key_fingerprint

from .kit import PASS, Terminal, holder, run_cli


def _serials(path) -> dict[int, tuple[bytes, bytes]]:
    conn = sqlite3.connect(path)
    try:
        return {r[0]: (bytes(r[1]), bytes(r[2]))
                for r in conn.execute("SELECT id, serial, body FROM coins")}
    finally:
        conn.close()


def test_coins_are_recorded_under_their_coin_id(env, tmp_path):
    h = holder(env)
    w = h.wallet(tmp_path / "w.db")
    try:
        w.load(500)
        rows = _serials(tmp_path / "w.db")
        assert rows and all(serial == compute_coin_id(body[0:32], body[32:64], body[64:96])
                            for serial, body in rows.values())
    finally:
        h.close()


def _make_format_1(path) -> None:
    """What a wallet of format 1 looked like: A in the serial column, no
    columns for a payment's request, refusal or dispute."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.execute("UPDATE coins SET serial = substr(body, 33, 32)")
    for column in ("envelope", "refusal", "dispute", "description"):
        conn.execute(f"ALTER TABLE payments DROP COLUMN {column}")
    conn.execute("UPDATE meta SET value = ? WHERE name = 'format'", (FORMAT_1,))
    conn.execute("COMMIT")
    conn.close()


def test_a_format_1_wallet_is_migrated_on_open(env, tmp_path):
    h = holder(env)
    path = tmp_path / "w.db"
    w = h.wallet(path)
    shop = Terminal(env, "shop")
    try:
        w.load(1_000)
        offline = w.pay(shop.request(100, pos=False))  # pending, settled after the migration
        w.close()
        h.wallets.remove(w)
        _make_format_1(path)
        assert all(s == body[32:64] for s, body in _serials(path).values())

        w = Wallet.open(path, PASS, clock=env.clock)
        h.wallets.append(w)
        assert w.store.meta("format") == FORMAT
        assert all(s == compute_coin_id(b[0:32], b[32:64], b[64:96])
                   for s, b in _serials(path).values())
        assert w.audit()["ok"]
        shop.deposit(offline.spends)
        out = w.sync()  # the spent-set query finds the coins by coin_id
        assert out["settled"]["spent"] == len(offline.spends)
        assert w.pay(shop.request(200)).status == "confirmed"
        assert w.balance()["spendable"] == 700
    finally:
        shop.close()
        h.close()


def test_an_interrupted_migration_leaves_format_1(env, tmp_path, monkeypatch):
    h = holder(env)
    path = tmp_path / "w.db"
    w = h.wallet(path)
    w.load(300)
    w.close()
    h.wallets.remove(w)
    _make_format_1(path)
    before = _serials(path)

    def broken(body: bytes) -> bytes:
        raise RuntimeError("power cut")

    monkeypatch.setattr("ecash.wallet.store.coin_id_of_body", broken)
    with pytest.raises(RuntimeError):
        Wallet.open(path, PASS, clock=env.clock)
    assert _serials(path) == before  # nothing half-done
    monkeypatch.undo()
    w = Wallet.open(path, PASS, clock=env.clock)
    assert w.store.meta("format") == FORMAT
    w.close()
    h.close()


def test_register_refuses_a_master_key_other_than_the_pinned_one(env, tmp_path):
    h = holder(env)
    w = h.wallet(tmp_path / "w.db", register=False)
    try:
        with pytest.raises(WalletError):  # a failed attempt (a wrong credential) pins the key
            w.register(env.url, h.account_id, "not-the-credential")
        bank_key = env.operator.keyset().master_public_key
        other = bytes(32 - len(b"other")) + b"other"
        with pytest.raises(KeysetRefused) as refused:
            w.register(env.url, h.account_id, h.credential, master_key=other)
        assert refused.value.code == "master_key_mismatch"
        assert master_key_fingerprint(bank_key) in str(refused.value)
        assert master_key_fingerprint(other) in str(refused.value)
        assert w.account_id is None
        out = w.register(env.url, h.account_id, h.credential, master_key=bank_key)
        assert out["master_key_fingerprint"] == master_key_fingerprint(bank_key)
    finally:
        h.close()


def test_register_shows_the_whole_fingerprint(env, tmp_path):
    h = holder(env)
    path = tmp_path / "w.db"
    assert run_cli(["init", "--wallet", str(path), "--kdf", "interactive"]).returncode == 0
    bank_key = env.operator.keyset().master_public_key
    r = run_cli(["register", "--wallet", str(path), "--bank", env.url, "--account",
                 h.account_id, "--master-key", bank_key.hex()],
                env_extra={"ECASH_WALLET_CREDENTIAL": h.credential})
    assert r.returncode == 0, r.stderr
    assert master_key_fingerprint(bank_key) in r.stdout
    wrong = run_cli(["register", "--wallet", str(path), "--bank", env.url, "--account",
                     h.account_id, "--master-key", "ab" * 32, "--json"],
                    env_extra={"ECASH_WALLET_CREDENTIAL": h.credential})
    assert wrong.returncode == 1 and '"master_key_mismatch"' in wrong.stdout
    assert master_key_fingerprint(bank_key) in " ".join(wrong.stderr.split())


def test_released_coins_pay_again_without_an_audit_problem(env, tmp_path):
    h = holder(env)
    w = h.wallet(tmp_path / "w.db")
    shop = Terminal(env, "shop")
    try:
        w.load(100)
        shop.refuse, shop.refusal_key = "terminal_closed", shop.key
        with pytest.raises(TerminalError):
            w.pay(shop.request(100))
        shop.refuse = None
        assert w.pay(shop.request(100)).status == "confirmed"
        assert w.audit()["ok"], w.audit()
    finally:
        shop.close()
        h.close()
