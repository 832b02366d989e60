"""Changing the bank's policy while it runs: a new signed policy, and every
worker picking it up.

``policy set`` (local or through the operator API) checks the settings
(``policy_file.check_config``), has the master key sign the new policy
through the signer, and stores both in one transaction. What takes effect
when:

- the signed policy (limits a wallet applies offline, the deposit window) is
  served in ``/v1/keyset`` at once by the worker that stored it, and by every
  other worker within ``RELOAD_S`` seconds (each re-reads the settings before
  a request once they are that old);
- caps and session lifetimes apply to the next request a worker serves after
  it has re-read them;
- the load limits apply to every holder account still on the old default (an
  account given limits of its own keeps them) and to accounts opened later;
- denominations and the generation periods apply from the next key
  generation (``ecash bank keys rotate``): coins already issued keep theirs.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from typing import Any

from sqlalchemy import select, update

from ..crypto.keys import Policy
from ..wire import json as wj
from .config import BankConfig
from .errors import BankError
from .policy_file import PolicyError, check_config, config_from_json, policy_json
from .schema import accounts, settings

RELOAD_S = 5.0


def make_policy(config: BankConfig, issued_at: int) -> Policy:
    """The signed part of the settings (ECASH-1 3.4)."""
    return Policy(config.currency, config.deposit_window_s, config.floor_limit,
                  config.holding_limit, config.single_payment_limit,
                  config.daily_offline_limit, config.consecutive_offline_limit, issued_at)


class PolicyMixin:
    _settings_read_at: float = 0.0

    def policy_settings(self) -> dict[str, Any]:  # type: ignore[misc]
        """Every setting (minor units) and the signed policy's date and signature."""
        policy, signature = self.policy()
        return {**policy_json(self.config), "issued_at": policy.issued_at,
                "policy_signature": signature.hex()}

    def set_policy(self, config: BankConfig) -> dict[str, Any]:  # type: ignore[misc]
        """Store ``config`` and a new policy signed by the master key; refused
        (``bad_policy``, naming the key) with nothing changed if it does not hold."""
        old = self.config
        try:
            check_config(config)
        except PolicyError as exc:
            raise BankError("bad_policy", str(exc), key=exc.key) from None
        if (config.currency, config.bank_merchant_id) != (old.currency, old.bank_merchant_id):
            raise BankError("bad_policy", "the currency and the redemptions' payee are fixed"
                            " when the bank is made", key="currency")
        previous, _ = self.policy()
        policy = make_policy(config, max(self.now(), previous.issued_at + 1))
        signature = self.signer.sign_policy(policy)
        with self.engine.begin() as conn:
            for name, value in (("config", json.dumps(asdict(config))),
                                ("policy", policy.canonical_json().decode()),
                                ("policy_signature", signature.hex())):
                conn.execute(update(settings).where(settings.c.name == name).values(value=value))
            for column in ("daily_load_limit", "net_load_limit"):
                col = accounts.c[column]
                conn.execute(update(accounts).where(
                    accounts.c.kind == "holder", col == getattr(old, column)).values(
                        {column: getattr(config, column)}))
        self.config, self._policy = config, (policy, signature)
        self._settings_read_at = time.monotonic()
        return self.policy_settings()

    def set_policy_json(self, data: dict[str, Any]) -> dict[str, Any]:  # type: ignore[misc]
        """:meth:`set_policy` from the settings in minor units (the operator API)."""
        try:
            config = config_from_json(data, self.config)
        except PolicyError as exc:
            raise BankError("bad_policy", str(exc), key=exc.key) from None
        return self.set_policy(config)

    def refresh_settings(self, max_age_s: float = RELOAD_S) -> None:  # type: ignore[misc]
        """Re-read the settings and the signed policy if this worker read them
        more than ``max_age_s`` ago (another worker or the CLI may have
        changed them). Call it outside any transaction."""
        now = time.monotonic()
        if now - self._settings_read_at < max_age_s:
            return
        self._settings_read_at = now
        with self.engine.connect() as conn:
            rows = dict(conn.execute(select(settings.c.name, settings.c.value).where(
                settings.c.name.in_(("config", "policy", "policy_signature")))).all())
        if "config" not in rows:
            return
        config = BankConfig(**json.loads(rows["config"]))
        if config != self.config:
            self.config = config
        self._policy = (wj.policy_from_json(json.loads(rows["policy"])),
                        bytes.fromhex(rows["policy_signature"]))
