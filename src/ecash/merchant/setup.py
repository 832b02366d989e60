"""Setting a terminal up (``init``) and keeping it current (``sync``).

``init`` learns the ``merchant_id`` from the bank, creates the terminal's
Ed25519 key pair, has the bank certify it (ECASH-1 3.3) and downloads the
keyset, checked against the pinned master key and 9.6. The master key is
pinned on first use unless given; a given key the bank's keyset does not
match is refused, both keys shown by :func:`master_key_fingerprint` (what
``ecash bank init`` prints) so a person can tell which is which.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from ..bank.client import BankClient, BankHTTPError, BankUnreachable
from ..crypto.errors import EcashError
from ..crypto.keys import MerchantCertificate
from ..crypto.sign import SigningKey
from ..wire import json as wj
from ..wire.fingerprint import master_key_fingerprint
from .errors import MerchantError
from .keycache import KeyCache
from .store import StoredKey, open_store
from .terminal import BankFactory, Terminal, TerminalConfig, default_bank_factory


def _call(what: str, fn: Callable, *args):
    try:
        return fn(*args)
    except BankUnreachable as exc:
        raise MerchantError("bank_unreachable", f"{what}: {exc}") from None
    except BankHTTPError as exc:
        raise MerchantError("bank_refused", f"{what}: the bank said {exc.status} {exc.code}:"
                            f" {exc.detail}") from None
    except EcashError as exc:
        raise MerchantError(exc.code, f"{what}: {exc}") from None


def _merchant_id(bank: BankClient) -> str:
    info = _call("asking the bank who we are", bank.merchant)
    merchant_id = info.get("merchant_id")
    if not merchant_id:
        raise MerchantError("not_a_merchant", "the credential's account is not a merchant")
    return merchant_id


def _keys(bank: BankClient, pinned: bytes | None) -> KeyCache:
    keyset = _call("downloading the keyset", bank.keyset)
    if pinned is not None and keyset.master_public_key != pinned:
        # both fingerprints, whole-key, as `ecash bank init` prints them
        theirs = master_key_fingerprint(keyset.master_public_key)
        raise MerchantError("master_key_changed", "the bank's keyset is signed by the master"
                            f" key with fingerprint {theirs}, not the pinned one,"
                            f" {master_key_fingerprint(pinned)}")
    try:
        return KeyCache.of(keyset, pinned or keyset.master_public_key)
    except EcashError as exc:
        raise MerchantError(exc.code, f"the bank's keyset is refused: {exc}") from None


def _new_key(bank: BankClient, merchant_id: str, master: bytes, now: float) -> StoredKey:
    sk = SigningKey.generate()
    cert: MerchantCertificate = _call("certifying the terminal key", bank.certify, sk.public_key)
    try:
        cert.verify(master)
    except EcashError:
        raise MerchantError("bad_certificate", "the certificate is not signed by the"
                            " master key") from None
    if cert.merchant_id != merchant_id or cert.public_key != sk.public_key:
        raise MerchantError("bad_certificate", "the certificate is for another merchant or key")
    if cert.valid_until <= now:
        raise MerchantError("bad_certificate", "the certificate has already expired")
    return StoredKey(sk.public_key, sk.seed, wj.dumps(wj.certificate_to_json(cert)),
                     cert.valid_until, int(now * 1000))


def init_terminal(location: str | Path, bank_url: str, credential: str, *,
                  master_public_key: bytes | None = None,
                  clock: Callable[[], float] = time.time, name: str | None = None,
                  config: TerminalConfig | None = None,
                  bank_factory: BankFactory | None = None) -> Terminal:
    """Create the terminal in the store at ``location`` (a path or URL)."""
    factory = bank_factory or default_bank_factory
    store = open_store(location)
    try:
        if store.initialised():
            raise MerchantError("already_initialised", "this store already holds a terminal"
                                " (use `ecash merchant sync` to refresh it)")
        bank = factory(bank_url, credential, (config or TerminalConfig()).bank_timeout_s)
        try:
            merchant_id = _merchant_id(bank)
            keys = _keys(bank, master_public_key)
            key = _new_key(bank, merchant_id, keys.keyset.master_public_key, clock())
        finally:
            bank.close()
        store.initialise({"merchant_id": merchant_id, "bank_url": bank_url.rstrip("/"),
                          "credential": credential,
                          "master_public_key": keys.keyset.master_public_key.hex(),
                          "keyset": keys.to_text(), "keyset_fingerprint": keys.fingerprint,
                          "synced_ms": str(int(clock() * 1000))}, key)
        return Terminal(store, clock=clock, name=name, config=config, bank_factory=bank_factory)
    except BaseException:
        store.close()
        raise


def sync(t: Terminal) -> dict:
    """Refresh the keyset and policy, and renew the certificate when it nears expiry.

    A keyset the pinned master key did not sign, or that breaks 9.6, is
    refused and the old one kept.
    """
    bank = t.bank()
    if _merchant_id(bank) != t.merchant_id:
        raise MerchantError("merchant_changed", "the credential now belongs to another merchant")
    keys = _keys(bank, t.master_public_key)
    old = t.keys.fingerprint
    now = t.now()
    values = {"synced_ms": str(int(now * 1000))}
    if keys.fingerprint != old:
        values.update(keyset=keys.to_text(), keyset_fingerprint=keys.fingerprint)
    t.store.set_settings(values)
    _, cert = t.current_key()
    renewed = False
    if cert.valid_until - now < t.config.renew_before_s:
        t.store.add_key(_new_key(bank, t.merchant_id, t.master_public_key, now))
        renewed = True
    t.reload()
    _, cert = t.current_key()
    return {"merchant_id": t.merchant_id, "keyset_fingerprint": keys.fingerprint,
            "keyset_changed": keys.fingerprint != old, "keys": len(keys.keyset.keys),
            "currency": keys.currency, "floor_limit": keys.policy.floor_limit,
            "deposit_window_s": keys.window_s, "certificate_valid_until": cert.valid_until,
            "certificate_renewed": renewed}
