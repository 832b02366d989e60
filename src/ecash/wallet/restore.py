"""Restore from the seed phrase (ECASH-1 9.7, 9.4).

The bank's record of every answered withdrawal holds, per coin, the key, the
commitments, the challenges sent, the branch answered and ``r``. From the
seed and those the wallet re-derives the coin's secrets and blinding, checks
that they give the recorded challenge (so the coin is this seed's), and
finishes the coin. ``z`` is recomputed from the record itself
(``z = ((I*g2)^r / b)^(1/c)``), so keys that are no longer withdrawable after
a rotation restore too. Whether each coin was spent is learnt through the
bank's k-anonymous range query; coins it does not hold stay pending for ``T``
from the restore, since the lost wallet may have paid with them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx

from ..crypto import group
from ..crypto.errors import EcashError
from ..crypto.withdrawal import Commitment, user_blind, user_finish
from ..wire import binary
from . import secrets as ws
from .core import CLOCK_MARGIN_S, Clock, Progress, WalletBase, bank_errors


class RestoreMixin(WalletBase):
    @classmethod
    def restore(cls, path: Path, passphrase: str, phrase: str, bank_url: str,
                account_id: str, credential: str, *, master_key: bytes | None = None,
                kdf: ws.KdfParams | None = None, clock: Clock = time.time,
                transport: httpx.BaseTransport | None = None,
                progress: Progress | None = None):
        """A new wallet file from ``phrase``, with every coin the bank's records
        give back. Returns ``(wallet, summary)``; on failure no file is left."""
        wallet, _ = cls.create(path, passphrase, phrase=phrase, kdf=kdf, clock=clock,
                               transport=transport)
        try:
            wallet.register(bank_url, account_id, credential,  # type: ignore[attr-defined]
                            master_key=master_key)
            summary = wallet.rebuild(progress)
        except BaseException:
            wallet.close()
            for suffix in ("", "-wal", "-shm"):
                p = Path(str(path) + suffix)
                if p.exists():
                    os.unlink(p)
            raise
        return wallet, summary

    def _z_from_record(self, r: int, b: bytes, c: int) -> bytes:
        """``z`` from the bank's answer equation ``(I*g2)^r == z^c * b``."""
        return group.mul(group.sub(group.mul(self.I_g2, r), b), group.inverse(c))

    def rebuild(self, progress: Progress | None = None) -> dict:
        """Rebuild every coin of the account's withdrawals that this wallet lacks."""
        self.require_registered()
        with bank_errors():
            records = self.bank().withdrawal_records(self.account_id)
        now = self.now()
        known = {bytes(r[0]) for r in self.store.conn.execute("SELECT serial FROM coins")}
        total = sum(len(rec["coins"]) for rec in records)
        z_cache: dict[bytes, bytes] = {k: row.z for k, row in self._keys.items() if row.z}
        found, expired, foreign, done = [], 0, 0, 0
        for rec in records:
            sid = bytes.fromhex(rec["session_id"])
            for j, c in enumerate(rec["coins"]):
                done += 1
                if progress and (done % 50 == 0 or done == total):
                    progress(done, total)
                key_id = bytes.fromhex(c["key_id"])
                row = self._keys.get(key_id)
                if row is None or row.key.deposit_end <= now:
                    expired += 1
                    continue
                coin = self._rebuild_coin(sid, j, row.key, c, z_cache)
                if coin is None:
                    foreign += 1
                elif coin[0].coin_id not in known:
                    found.append(coin)
        spent, unknown = self.query_spent([(coin.coin_id, coin.key_id) for coin, _ in found])
        until = now + self.deposit_window + CLOCK_MARGIN_S
        rows = []
        for coin, cs in found:
            body = binary.coin_to_bytes(coin)
            value = self.key(coin.key_id).value
            state = ("spent" if coin.coin_id in spent else "expired" if coin.coin_id in unknown
                     else "pending")
            rows.append((coin.coin_id, coin.key_id, value, body,
                         self.seal_coin_secrets(body, value, cs), state, None,
                         until if state == "pending" else None, "restore", None, now))
        with self.store.tx() as conn:
            self.insert_coins(conn, rows)
            for key_id, z in z_cache.items():
                conn.execute("UPDATE keys SET z = ? WHERE key_id = ? AND z IS NULL",
                             (z, key_id))
            n_pending = sum(1 for r in rows if r[5] == "pending")
            self.store.event(now, "restore", sum(r[2] for r in rows if r[5] == "pending"),
                             f"{len(rows)} coins rebuilt, {n_pending} pending")
        self._load_keys()
        self._load_coins()
        pending = [r for r in rows if r[5] == "pending"]
        return {"coins": len(rows), "spent": sum(1 for r in rows if r[5] == "spent"),
                "pending": len(pending), "pending_value": sum(r[2] for r in pending),
                "pending_until": until if pending else None, "expired": expired,
                "unrecognised": foreign}

    def _rebuild_coin(self, sid: bytes, j: int, key, c: dict,
                      z_cache: dict[bytes, bytes]):
        try:
            cm = [bytes.fromhex(h) for h in c["commitments"]]
            commitments = (Commitment(cm[0], cm[1]), Commitment(cm[2], cm[3]))
            beta = int(c["beta"])
            if beta not in (0, 1):
                return None
            c_beta = group.decode_scalar(bytes.fromhex(c["challenges"][beta]))
            r = group.decode_scalar(bytes.fromhex(c["r"]))
            secrets, blinding = self._deriver.coin(sid, j, key.key_id, commitments)
            branch = commitments[beta]
            z = z_cache.get(key.key_id)
            for _attempt in range(2):
                if z is None:
                    z = self._z_from_record(r, branch.b, c_beta)
                st = user_blind(key, self.I, z, [branch], secrets, [blinding[beta]])
                if st.branches[0].c == c_beta:
                    coin, cs = user_finish(st, r, 0)
                    z_cache[key.key_id] = z
                    return coin, cs
                z = None  # a cached z that does not fit: recompute it from this record
            return None
        except (EcashError, ValueError, KeyError, TypeError, IndexError):
            return None
