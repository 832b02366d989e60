"""``sync``: new keys, a renewed certificate, and a keyset the pinned master key
did not sign (refused, the old one kept)."""

from __future__ import annotations

import dataclasses

import pytest

from ecash.bank.client import BankClient
from ecash.crypto.keys import Keyset
from ecash.crypto.sign import SigningKey
from ecash.merchant import MerchantError, Terminal, TerminalConfig

from ..bankkit import pay_request
from .kit import new_terminal


def test_sync_learns_new_keys_and_other_processes_notice(bank, tmp_path):
    t = new_terminal(bank, tmp_path / "t.db")
    other = Terminal.open(tmp_path / "t.db", config=TerminalConfig(recheck_keys_s=0))
    before = t.keys.fingerprint
    n = len(t.keys.keyset.keys)
    assert t.sync()["keyset_changed"] is False
    bank.bank.add_generation()
    out = t.sync()
    assert out["keyset_changed"] and out["keys"] == 2 * n
    assert t.keys.fingerprint != before and other.keys.fingerprint == t.keys.fingerprint
    t.close()
    other.close()


def test_sync_renews_a_certificate_near_its_end(bank, holder, tmp_path):
    t = new_terminal(bank, tmp_path / "t.db",
                     config=TerminalConfig(renew_before_s=400 * 86_400))
    old = t.create_request(3)
    out = t.sync()
    assert out["certificate_renewed"]
    new = t.create_request(3)
    assert new.certificate.public_key != old.certificate.public_key
    new.verify(bank.bank.master_public_key)
    # the old request is still paid with a receipt of the key that signed it
    receipt = t.accept(old.request.request_id,
                       pay_request(holder, holder.withdraw([2, 1]), old.request))
    receipt.verify(old.certificate.public_key)
    t.close()


class ForgedKeyset(BankClient):
    def keyset(self) -> Keyset:
        ks = super().keyset()
        forger = SigningKey.generate()
        policy = dataclasses.replace(ks.policy, floor_limit=10**9)
        return dataclasses.replace(ks, master_public_key=forger.public_key, policy=policy,
                                   policy_signature=policy.sign(forger))


def test_a_keyset_of_another_master_key_is_refused(bank, tmp_path):
    t = new_terminal(bank, tmp_path / "t.db")
    before = t.keys.fingerprint
    t.bank_factory = lambda url, cred, timeout: ForgedKeyset(url, cred, timeout=timeout)
    t._clients.clear()
    with pytest.raises(MerchantError) as info:
        t.sync()
    assert info.value.code == "master_key_changed"
    t.reload()
    assert t.keys.fingerprint == before
    t.close()
