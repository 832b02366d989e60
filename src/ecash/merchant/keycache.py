"""The bank's keys as the terminal trusts them: checked once against the
pinned master key and ECASH-1 9.6, then held in memory for offline use."""

from __future__ import annotations

from dataclasses import dataclass

from ..crypto.keys import DenominationKey, Keyset, Policy
from ..wire import json as wj


@dataclass(frozen=True)
class KeyCache:
    keyset: Keyset
    fingerprint: str
    by_id: dict[bytes, DenominationKey]

    @classmethod
    def of(cls, keyset: Keyset, pinned_master: bytes) -> KeyCache:
        """Raise :class:`~ecash.crypto.KeysetInvalid` unless every key and the
        policy are signed by ``pinned_master`` and 9.6 holds."""
        keyset.check(pinned_master)
        return cls(keyset, wj.keyset_fingerprint(keyset), {k.key_id: k for k in keyset.keys})

    @classmethod
    def from_text(cls, text: str, pinned_master: bytes) -> KeyCache:
        return cls.of(wj.keyset_from_json(wj.loads(text)), pinned_master)

    @property
    def policy(self) -> Policy:
        return self.keyset.policy

    @property
    def currency(self) -> str:
        return self.keyset.policy.currency

    @property
    def window_s(self) -> int:
        """``T``, the deposit window of 9.4."""
        return self.keyset.policy.deposit_window_s

    def spend_deadline(self, key: DenominationKey) -> int:
        """9.4: the terminal refuses the key's coins after ``deposit_end - T``."""
        return key.spend_deadline(self.window_s)

    def to_text(self) -> str:
        return wj.dumps(wj.keyset_to_json(self.keyset))
