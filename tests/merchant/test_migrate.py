"""A terminal store written by the code before ECASH-1 revision 2 (schema
version 1: transcripts keyed on ``A``, the payment's digest a SHA-256 of its
request and spends, the refusal log with free text) opens with today's code:
it is migrated once, keeps its payments, and keys coins on ``coin_id``."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
)

from ecash.crypto.keys import certify_merchant
from ecash.crypto.payment import PaymentRequest, make_receipt, sign_request
from ecash.crypto.sign import SigningKey
from ecash.merchant import Terminal, open_store
from ecash.merchant.keycache import KeyCache
from ecash.merchant.schema import REFUSALS_KEPT, SCHEMA_VERSION
from ecash.wire import json as wj
from ecash.wire.binary import request_to_bytes, spend_to_bytes

from ..bankkit import fresh_database
from .kit import counts, serving
from .test_vectors import MASTER, NOW, REQUEST0, VALID, vector_keyset


def _v1_tables() -> MetaData:
    """The tables exactly as version 1 of the terminal declared them."""
    md = MetaData()
    Table("settings", md, Column("name", String(64), primary_key=True),
          Column("value", Text, nullable=False))
    Table("signing_keys", md, Column("public_key", LargeBinary(32), primary_key=True),
          Column("seed", LargeBinary(32), nullable=False),
          Column("certificate", Text, nullable=False),
          Column("valid_until", BigInteger, nullable=False),
          Column("created_ms", BigInteger, nullable=False))
    Table("requests", md, Column("request_id", LargeBinary(32), primary_key=True),
          Column("nonce", LargeBinary(16), nullable=False, unique=True),
          Column("merchant_id", String(64), nullable=False),
          Column("amount", BigInteger, nullable=False),
          Column("currency", String(3), nullable=False),
          Column("timestamp_ms", BigInteger, nullable=False),
          Column("expires_ms", BigInteger, nullable=False),
          Column("pos_url", Text, nullable=False),
          Column("public_key", LargeBinary(32), ForeignKey("signing_keys.public_key"),
                 nullable=False),
          Column("signature", LargeBinary(64), nullable=False),
          Column("terminal", String(64), nullable=False),
          Column("status", String(8), nullable=False),
          Column("online", Boolean, nullable=False, default=False),
          Column("paid_ms", BigInteger), Column("payment_digest", LargeBinary(32)),
          Column("coins", Integer), Column("receipt", LargeBinary(64)))
    tx = Table("transcripts", md, Column("serial", LargeBinary(32), primary_key=True),
               Column("request_id", LargeBinary(32), ForeignKey("requests.request_id"),
                      nullable=False),
               Column("key_id", LargeBinary(32), nullable=False),
               Column("value", BigInteger, nullable=False),
               Column("spend", LargeBinary(288), nullable=False),
               Column("sale", Boolean, nullable=False),
               Column("accepted_ms", BigInteger, nullable=False),
               Column("deposit_by_ms", BigInteger, nullable=False),
               Column("verdict", String(20)), Column("code", String(40)),
               Column("credited", BigInteger), Column("replay", Boolean),
               Column("fraud_case", BigInteger), Column("settled_ms", BigInteger),
               Column("attempts", Integer, nullable=False, default=0),
               Column("last_error", Text))
    Index("transcripts_pending", tx.c.verdict, tx.c.deposit_by_ms)
    Index("transcripts_request", tx.c.request_id)
    ref = Table("refusals", md, Column("id", BigInteger().with_variant(Integer, "sqlite"),
                                       primary_key=True, autoincrement=True),
                Column("request_id", LargeBinary(32)),
                Column("code", String(40), nullable=False),
                Column("detail", Text, nullable=False),
                Column("coins", Integer, nullable=False),
                Column("at_ms", BigInteger, nullable=False))
    Index("refusals_request", ref.c.request_id, ref.c.id)
    return md


HOSTILE = "<b>call 555-0100</b>"


def _version_1_store(url: str) -> tuple[SigningKey, list, bytes]:
    """A store as version 1 left it: REQUEST0 paid with the vectors' payment
    (not yet deposited), another request open with many refusals."""
    sk = SigningKey.generate()
    cert = certify_merchant(MASTER, "shop-42", sk.public_key, int(NOW) + 365 * 86_400)
    keys = KeyCache.of(vector_keyset(), MASTER.public_key)
    spends = [wj.spend_from_json(s) for s in VALID]
    old_digest = hashlib.sha256(b"".join(sorted(
        request_to_bytes(s.request) + spend_to_bytes(s) for s in spends))).digest()
    receipt = make_receipt(sk, REQUEST0)
    other = PaymentRequest("shop-42", 100, "EUR", REQUEST0.timestamp_ms, bytes(16))
    md = _v1_tables()
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    md.create_all(engine)
    t = md.tables
    settings = {"merchant_id": "shop-42", "bank_url": "http://127.0.0.1:9", "credential": "x",
                "master_public_key": MASTER.public_key.hex(), "keyset": keys.to_text(),
                "keyset_fingerprint": keys.fingerprint, "schema_version": "1"}
    with engine.begin() as db:
        db.execute(t["settings"].insert(), [{"name": k, "value": v} for k, v in settings.items()])
        db.execute(t["signing_keys"].insert().values(
            public_key=sk.public_key, seed=sk.seed, certificate=wj.dumps(
                wj.certificate_to_json(cert)), valid_until=cert.valid_until, created_ms=0))
        for req, paid in ((REQUEST0, True), (other, False)):
            db.execute(t["requests"].insert().values(
                request_id=req.request_id, nonce=req.nonce, merchant_id=req.merchant_id,
                amount=req.amount, currency=req.currency, timestamp_ms=req.timestamp_ms,
                expires_ms=req.timestamp_ms + 900_000, pos_url="", public_key=sk.public_key,
                signature=sign_request(sk, cert, req).signature, terminal="till",
                status="paid" if paid else "open", online=False,
                paid_ms=req.timestamp_ms if paid else None,
                payment_digest=old_digest if paid else None,
                coins=len(spends) if paid else None,
                receipt=receipt.signature if paid else None))
        for s in spends:
            key = keys.by_id[s.coin.key_id]
            db.execute(t["transcripts"].insert().values(
                serial=s.coin.A, request_id=REQUEST0.request_id, key_id=key.key_id,
                value=key.value, spend=spend_to_bytes(s), sale=True,
                accepted_ms=REQUEST0.timestamp_ms,
                deposit_by_ms=REQUEST0.timestamp_ms + 7 * 86_400_000, attempts=0))
        db.execute(t["refusals"].insert(), [
            {"request_id": other.request_id, "code": "not_json", "detail": HOSTILE, "coins": 0,
             "at_ms": i} for i in range(REFUSALS_KEPT + 4)])
    engine.dispose()
    return sk, spends, other.request_id


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_a_version_1_store_opens_migrated(engine, tmp_path):
    with fresh_database(engine, tmp_path) as url:
        _opens_migrated(url)


def _opens_migrated(store: str) -> None:
    sk, spends, other = _version_1_store(store)
    t = Terminal(open_store(store, create=False), clock=lambda: NOW, name="vectors")
    assert t.store.settings()["schema_version"] == SCHEMA_VERSION
    # coins keyed on coin_id, computed from the stored spends
    assert {p.coin_id for p in t.store.pending(10)} == {s.coin.coin_id for s in spends}
    assert all(s.coin.coin_id != s.coin.A for s in spends)
    # the identical payment still gets its receipt: the digest is now 5.1's
    with serving(t) as url:
        r = httpx.post(f"{url}/pay/{REQUEST0.request_id.hex()}",
                       json={"spends": VALID[::-1]})
        assert r.status_code == 200, r.text
        wj.receipt_from_json(r.json()["receipt"]).verify(sk.public_key)
        status = httpx.get(f"{url}/api/requests/{other.hex()}")
        assert HOSTILE not in status.text  # the free text is gone
        assert status.json()["refusal"]["count"] == REFUSALS_KEPT + 4
    log = t.store.refusal_log(other)
    assert len(log.last) == REFUSALS_KEPT and log.count == REFUSALS_KEPT + 4
    assert counts(t) == (2, 1)
    t.close()
    # opening again changes nothing
    again = Terminal(open_store(store, create=False), clock=lambda: NOW, name="vectors")
    assert {p.coin_id for p in again.store.pending(10)} == {s.coin.coin_id for s in spends}
    again.close()
