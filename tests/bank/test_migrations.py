"""Alembic migrations of the bank's database, on SQLite and PostgreSQL.

A database written by revision 1 (spent coins keyed by ``A``) is upgraded to
revision 2 (``coin_id``); the coins it held are then the same coins to the
deposit: one spent again at another request is a double spend that names its
holder. The transcripts are ``revision2.json``'s, on ``denomination.json``'s
keys, for ``registration.json``'s holder.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import insert, select

import ecash.bank.store as store
from ecash.bank.config import BankConfig
from ecash.bank.keyring import Generation, KeyRing, write_secret
from ecash.bank.schema import fraud_cases, metadata, spent_coins
from ecash.bank.service import Bank
from ecash.crypto import group
from ecash.crypto.keys import DenominationSecret
from ecash.wire import binary
from ecash.wire import json as wj
from ecash.wire.spentset import bucket_of

from ..bankkit import ENGINES, Clock, fresh_database

VECTORS = Path(__file__).parent.parent / "vectors"
REV2 = json.loads((VECTORS / "revision2.json").read_text())
MIGRATIONS = Path(store.__file__).parent / "migrations"


def migrate(engine, target: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, target)


def revision_1_tables():
    """The tables as revision 0001 creates them (frozen in that migration)."""
    spec = importlib.util.spec_from_file_location(
        "bank_migration_0001", MIGRATIONS / "versions" / "0001_initial.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def vector_keys() -> list[DenominationSecret]:
    den = json.loads((VECTORS / "denomination.json").read_text())
    return [DenominationSecret(group.decode_scalar(bytes.fromhex(d["x"])), wj.key_from_json({
        "key_id": d["key_id"], "h": d["h"], "value": d["value"], "currency": d["currency"],
        "withdraw_start": d["withdraw_start"], "withdraw_end": d["withdraw_end"],
        "deposit_end": d["deposit_end"], "signature": d["master_signature"]}))
        for d in den["denominations"]]


def spend(step: dict):
    return wj.spend_from_json(step["spend"])


def revision_1_bank(url: str, keys_dir: Path, stored: list[tuple[dict, str]],
                    cases: list[tuple[dict, dict]]) -> dict[str, int]:
    """A bank database at revision 0001 holding ``stored`` (vector steps, each
    deposited by the named merchant, in revision 1's layout: keyed by ``A``)
    and fraud ``cases`` (pairs of steps); returns the merchants' account ids."""
    engine = store.make_engine(url)
    migrate(engine, "0001")
    old = revision_1_tables()
    keys = vector_keys()
    KeyRing.create(keys_dir)
    write_secret(keys_dir / "generation-0001.json", Generation(1, keys).to_json())
    identity = bytes.fromhex(REV2["shared_A_deposits"]["registered_I"])
    merchants = sorted({m for _, m in stored} | {"kiosk-7", "café-Zürich"})
    k = keys[0].public
    with engine.begin() as conn:
        conn.execute(insert(old.settings).values(name="config",
                                                 value=json.dumps(BankConfig().__dict__)))
        conn.execute(insert(old.generations).values(
            generation=1, withdraw_start=k.withdraw_start, withdraw_end=k.withdraw_end,
            deposit_end=k.deposit_end, prefix_bits=8))
        conn.execute(insert(old.denomination_keys), [
            {"key_id": d.public.key_id, "generation": 1, "denomination": i,
             "value": d.public.value, "currency": d.public.currency, "h": d.public.h,
             "withdraw_start": k.withdraw_start, "withdraw_end": k.withdraw_end,
             "deposit_end": k.deposit_end, "signature": d.public.signature}
            for i, d in enumerate(keys)])
        store.ensure_partition(conn, 1)
        accounts = {}
        for name in ["holder", *merchants]:
            accounts[name] = conn.execute(insert(old.accounts).values(
                account_id=f"acct-{len(accounts)}", holder=name, kind="holder",
                status="active", balance=0, identity=identity if name == "holder" else None,
                merchant_id=None if name == "holder" else name, daily_load_limit=0,
                net_load_limit=0, created_at=0)).inserted_primary_key[0]
        for step, merchant in stored:
            sp = spend(step)
            conn.execute(insert(old.spent_coins).values(
                generation=1, serial=sp.coin.A, bucket=bucket_of(sp.coin.A), denomination=0,
                depositor=accounts[merchant], redeemed=False, deposited_at=0,
                spend=binary.spend_to_bytes(sp), request=binary.request_to_bytes(sp.request)))
        for first, second in cases:
            s1, s2 = spend(first), spend(second)
            conn.execute(insert(old.fraud_cases).values(
                generation=1, serial=s1.coin.A, digest=bytes(32),
                spend1=binary.spend_to_bytes(s1), request1=binary.request_to_bytes(s1.request),
                spend2=binary.spend_to_bytes(s2), request2=binary.request_to_bytes(s2.request),
                identity=identity, account=accounts["holder"], depositor=accounts["kiosk-7"],
                value=0, from_balance=0, receivable=0, alarm=False, created_at=0))
    engine.dispose()
    return accounts


@pytest.mark.parametrize("engine_name", ENGINES)
def test_revision_1_database_upgraded_to_coin_ids(engine_name, tmp_path):
    shared = REV2["shared_A_deposits"]["steps"]
    same = REV2["same_coin_deposits"]["steps"]
    with fresh_database(engine_name, tmp_path) as url:
        # revision 1 held shared_A[1] (kiosk-7) and same_coin[0] (shop-42), and a
        # fraud case keyed by A
        accounts = revision_1_bank(url, tmp_path / "keys",
                                   [(shared[0], "kiosk-7"), (same[0], "shop-42")],
                                   [(same[0], same[3])])
        clock = Clock()
        bank = Bank.open(url, tmp_path / "keys", clock=clock)
        try:
            with bank.engine.connect() as conn:
                rows = conn.execute(select(spent_coins.c.coin_id, spent_coins.c.bucket)).all()
                case_coin = conn.execute(select(fraud_cases.c.coin_id)).scalar_one()
            want = {spend(shared[0]).coin.coin_id, spend(same[0]).coin.coin_id}
            assert {r.coin_id for r in rows} == want
            assert all(r.bucket == bucket_of(r.coin_id) for r in rows)
            assert case_coin == spend(same[0]).coin.coin_id

            def deposit(step: dict) -> dict:
                clock.frozen = step["now_ms"] / 1000
                return bank.deposit(accounts[step["depositor"]], [spend(step)])[0].to_json()

            # the same coin at another request: a double spend naming the holder
            v = deposit(same[3])
            assert v["status"] == "double_spent"
            assert bank.fraud_case(v["fraud_case"])["account_id"] == "acct-0"
            # the stored coin again, byte for byte: a replay
            assert deposit(same[1])["replay"]
            # the other coin with that A is a coin of its own (revision 1 refused
            # it), and that one spent twice names the holder too
            v = deposit(shared[1])
            assert (v["status"], v["replay"], v["credited"]) == ("accepted", False, 500)
            v = deposit(shared[2])
            assert v["status"] == "double_spent"
            assert bank.fraud_case(v["fraud_case"])["account_id"] == "acct-0"
        finally:
            bank.engine.dispose()


@pytest.mark.parametrize("engine_name", ENGINES)
def test_fresh_database_reaches_the_schema_module(engine_name, tmp_path):
    """0001 is frozen, so schema.py is reached only through every revision: a
    fresh database migrated to the head has the tables schema.py describes."""
    with fresh_database(engine_name, tmp_path) as url:
        engine = store.make_engine(url)
        store.upgrade(engine)
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), metadata)
        engine.dispose()
    ours = {"spent_coins", "fraud_cases", "generations"}
    assert [d for d in diffs if _table_of(d) in ours] == []


def _table_of(diff) -> str | None:  # type: ignore[no-untyped-def]
    item = diff[0] if isinstance(diff, list) else diff
    for part in item[1:]:
        name = getattr(part, "name", None) if not isinstance(part, str) else part
        table = getattr(part, "table", None)
        if table is not None:
            return table.name
        if name in {"spent_coins", "fraud_cases", "generations"}:
            return name
    return None
