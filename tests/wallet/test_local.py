"""The wallet file on its own: passphrase, integrity, permissions, derivation."""

from __future__ import annotations

import os
import stat

import pytest

from ecash.crypto import group
from ecash.crypto.withdrawal import Commitment
from ecash.wallet import TEST_KDF, CorruptWallet, Wallet, WalletExists, WrongPassphrase
from ecash.wallet.derive import Deriver
from ecash.wallet.errors import WalletError
from ecash.wallet.secrets import phrase_to_seed

from .kit import PASS


def test_create_open_and_wrong_passphrase(tmp_path):
    path = tmp_path / "w.db"
    w, phrase = Wallet.create(path, PASS, kdf=TEST_KDF)
    assert len(phrase.split()) == 24
    u1 = w.u1
    w.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with Wallet.open(path, PASS) as again:
        assert again.u1 == u1
    with pytest.raises(WrongPassphrase):
        Wallet.open(path, PASS + "!")
    with pytest.raises(WalletExists):
        Wallet.create(path, PASS, kdf=TEST_KDF)
    # the seed phrase alone gives the same identity
    w2, _ = Wallet.create(tmp_path / "copy.db", "other", phrase=phrase, kdf=TEST_KDF)
    assert w2.u1 == u1
    w2.close()
    with pytest.raises(WalletError) as bad:
        Wallet.create(tmp_path / "bad.db", PASS, phrase=phrase.replace(phrase.split()[3],
                                                                       "zoo", 1)
                      if phrase.split()[3] != "zoo" else phrase + " zoo", kdf=TEST_KDF)
    assert bad.value.code == "bad_phrase"
    assert not (tmp_path / "bad.db").exists()


def test_corrupt_files_are_detected(tmp_path):
    path = tmp_path / "w.db"
    Wallet.create(path, PASS, kdf=TEST_KDF)[0].close()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(os.urandom(8192))
    os.chmod(garbage, 0o600)
    with pytest.raises(CorruptWallet):
        Wallet.open(garbage, PASS)
    damaged = tmp_path / "damaged.db"
    data = bytearray(path.read_bytes())
    for i in range(100, len(data), 512):  # scribble over every page's header area
        data[i] = data[i] ^ 0xFF
    damaged.write_bytes(bytes(data))
    os.chmod(damaged, 0o600)
    with pytest.raises(CorruptWallet):
        Wallet.open(damaged, PASS)
    os.chmod(path, 0o644)
    with pytest.raises(WalletError) as unsafe:
        Wallet.open(path, PASS)
    assert unsafe.value.code == "unsafe_permissions"


def test_a_tampered_coin_record_is_refused(tmp_path):
    w, _ = Wallet.create(tmp_path / "w.db", PASS, kdf=TEST_KDF)
    body = bytes(range(224))
    from ecash.crypto.coin import CoinSecrets

    sealed = w.seal_coin_secrets(body, 4, CoinSecrets(1, 2, 3))
    assert w.open_coin_secrets(body, 4, sealed) == CoinSecrets(1, 2, 3)
    with pytest.raises(CorruptWallet):
        w.open_coin_secrets(body, 8, sealed)  # the value column was edited
    with pytest.raises(CorruptWallet):
        w.open_coin_secrets(body[:-1] + b"\0", 4, sealed)  # the coin body was edited
    w.close()


def test_per_coin_secrets_mix_in_the_withdrawal():
    seed = phrase_to_seed("abandon " * 23 + "art")
    d = Deriver(seed)
    cm = lambda: (Commitment(group.base_mul(group.random_scalar()),  # noqa: E731
                             group.base_mul(group.random_scalar())),
                  Commitment(group.base_mul(group.random_scalar()),
                             group.base_mul(group.random_scalar())))
    one, two = cm(), cm()
    sid, kid = b"s" * 16, b"k" * 32
    a, blind_a = d.coin(sid, 0, kid, one)
    assert d.coin(sid, 0, kid, one) == (a, blind_a)  # re-derivable for a restore
    assert d.coin(sid, 0, kid, two)[0].s != a.s  # other commitments: other coin
    assert d.coin(sid, 1, kid, one)[0].s != a.s  # other index
    assert d.coin(b"t" * 16, 0, kid, one)[0].s != a.s  # other session
    assert len({a.s, a.x1, a.x2, *blind_a[0], *blind_a[1]}) == 7
    assert Deriver(seed).u1() == d.u1() != a.s


def _keyset(master, keys, currency="CNY"):
    from ecash.crypto.keys import Keyset, Policy

    policy = Policy(currency, 7 * 86_400, 20_000, 200_000, 50_000, 100_000, 10, 1)
    return Keyset(master.public_key, tuple(keys), policy, policy.sign(master))


def test_keysets_are_checked_and_the_master_key_pinned(tmp_path):
    import dataclasses

    from ecash.crypto.keys import make_denomination_key
    from ecash.crypto.sign import SigningKey
    from ecash.wallet import KeysetRefused

    master, rogue = SigningKey.generate(), SigningKey.generate()

    def key(m, value, start, end):
        return make_denomination_key(m, group.random_scalar(), value, "CNY", start, end,
                                     end + 1000).public

    w, _ = Wallet.create(tmp_path / "w.db", PASS, kdf=TEST_KDF)
    good = [key(master, 1, 0, 100), key(master, 2, 0, 100), key(master, 1, 100, 200)]
    fp = w.accept_keyset(_keyset(master, good))
    assert len(fp) == 16 and w.master_fingerprint
    cases = {
        "overlapping_keys": _keyset(master, [*good, key(master, 2, 50, 150)]),  # 9.6
        "master_key_changed": _keyset(rogue, [key(rogue, 1, 0, 100)]),
        "bad_signature": _keyset(master, [dataclasses.replace(good[0],
                                                              signature=bytes(64))]),
        "key_id_mismatch": _keyset(master, [dataclasses.replace(good[0], value=5)]),
        "currency_changed": _keyset(master, [key(master, 1, 0, 100)], currency="EUR"),
    }
    for code, ks in cases.items():
        if code == "currency_changed":
            ks = dataclasses.replace(ks, keys=())
        with pytest.raises(KeysetRefused) as info:
            w.accept_keyset(ks)
        assert info.value.code == code, (code, info.value)
    assert w.accept_keyset(_keyset(master, good)) == fp  # the same keyset again
    w.close()
    # a wallet told which master key to expect refuses another on first use
    w2, _ = Wallet.create(tmp_path / "w2.db", PASS, kdf=TEST_KDF)
    with pytest.raises(KeysetRefused):
        w2.accept_keyset(_keyset(master, good), expect_master=rogue.public_key)
    assert w2.master_fingerprint is None
    w2.close()
