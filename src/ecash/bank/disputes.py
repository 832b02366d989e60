"""Holders' disputes: a merchant's signed refusal against its own deposit
(ECASH-1 5.1, rev. 2, and 9.5).

A terminal signs a refusal only when it holds none of the payment's
transcripts and will never deposit one, so the wallet may release the coins
at once. If the merchant deposits one of them anyway, the holder who spends
the released coin again is named as a double spender. The holder then shows
the bank the signed request (with its certificate), the refused spends and
the refusal. The bank checks all three against the master key and its own
spent table; if the certificate's merchant deposited a transcript among the
spends, the dispute is upheld:

- a case is opened against the merchant (``merchant_cases``), listing the
  refused transcripts it deposited and their value; what its balance covers
  of that value is taken back at once (as from a named holder, 9.5);
- every double-spend case naming the disputing holder on one of those
  transcripts is voided: what it took from the holder's balance is returned,
  and the account is unfrozen if no other case holds it and the operator
  did not freeze it;
- the transcripts are remembered (``disputed_spends``), so that a later
  deposit of the same coin that conflicts with one of them names nobody
  (:func:`holder_cleared`, called from the deposit's double-spend path).

Money: the holder's refund comes from ``receivable`` (the bank's claim moves
from the holder to the merchant) and the merchant's repayment goes to it; a
merchant case's ``receivable`` is that net movement, which the audit adds to
the double-spend cases'.

A dispute is keyed by ``(account, request_id, payment_digest)``: the same one
again answers as before once upheld. A rejected one is examined anew when it
is sent again (the merchant may deposit the transcript later), keeping its id.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from ..crypto.errors import EcashError
from ..crypto.payment import SignedRequest, Spend
from ..crypto.refusal import Refusal, check_code, payment_digest
from ..wire import binary
from ..wire import json as wj
from ..wire.spentset import bucket_of
from .errors import BankError
from .freeze import after_cases_voided
from .ledger import post
from .schema import (
    accounts,
    disputed_spends,
    disputes,
    fraud_cases,
    merchant_cases,
    spent_coins,
    voided_fraud_cases,
)
from .store import retrying

log = logging.getLogger("ecash.bank")


def transcript_digest(spend: bytes, request: bytes) -> bytes:
    """What identifies one transcript: as ``fraud_cases.digest``."""
    return hashlib.sha256(spend + request).digest()


def holder_cleared(conn: Connection, coin_id: bytes, *digests: bytes) -> bool:
    """Whether a double spend of the coin ``coin_id`` involves a transcript that
    an upheld dispute showed its merchant had refused (``digests`` of both
    transcripts of the pair): then it names no holder (ECASH-1 5.1)."""
    return conn.execute(select(disputed_spends.c.merchant_case).where(
        disputed_spends.c.coin_id == coin_id,
        disputed_spends.c.digest.in_(digests)).limit(1)).first() is not None


@dataclass(frozen=True)
class _Deposited:
    """A refused transcript the merchant deposited."""

    coin_id: bytes
    digest: bytes
    generation: int
    value: int
    spend: bytes
    request: bytes


@dataclass(frozen=True)
class _Evidence:
    envelope: SignedRequest
    spends: Sequence[Spend]
    refusal: Refusal
    request_id: bytes
    digest: bytes
    items: list[bytes]

    def stored(self) -> dict:
        """The evidence as stored: JSON in ASCII, so that any text the holder
        sent (a refusal's code is checked only by its signature) is storable."""
        return {"envelope": json.dumps(wj.envelope_to_json(self.envelope)),
                "refusal": json.dumps(wj.refusal_to_json(self.refusal)),
                "spends": binary.payment_to_bytes(list(self.spends))}


class DisputeMixin:
    def dispute(self, account_pk: int, envelope: SignedRequest,  # type: ignore[misc]
                spends: Sequence[Spend], refusal: Refusal) -> dict:
        """Weigh a holder's dispute; ``{"dispute", "status", "reason", "case"}``."""
        ev = self._evidence(envelope, spends, refusal)
        reason = self._signatures_fail(ev)

        def attempt() -> dict:
            try:
                return self._decide(account_pk, ev, reason)
            except IntegrityError:  # the same dispute, decided meanwhile: read it
                return self._decide(account_pk, ev, reason)

        return retrying(attempt)

    def _evidence(self, envelope: SignedRequest, spends: Sequence[Spend],  # type: ignore[misc]
                  refusal: Refusal) -> _Evidence:
        """Bad input (not a dispute at all) is an error that stores nothing."""
        if not spends:
            raise BankError("bad_dispute", "a dispute shows the refused spends")
        request = envelope.request
        if any(s.request != request for s in spends):
            raise BankError("bad_dispute", "every spend must answer the envelope's request")
        if len({s.coin.coin_id for s in spends}) != len(spends):
            raise BankError("bad_dispute", "the same coin twice")
        try:
            check_code(refusal.code)
        except (EcashError, UnicodeError):
            raise BankError("bad_dispute", "a refusal's code is 1 to 64 of [a-z0-9_]") from None
        try:
            request_id = request.request_id
            items = binary.payment_items(list(spends))
        except (EcashError, ValueError) as exc:
            raise BankError("bad_dispute", str(exc)) from None
        return _Evidence(envelope, spends, refusal, request_id,
                         payment_digest(request_id, items), items)

    def _signatures_fail(self, ev: _Evidence) -> str | None:  # type: ignore[misc]
        """Why the signed evidence does not hold, or ``None``. The certificate
        may have expired since: it was valid when the merchant signed."""
        try:
            ev.envelope.verify(self.master_public_key)
        except EcashError as exc:
            return f"the signed request does not check against the bank's master key: {exc}"
        try:
            ev.refusal.verify(ev.envelope.certificate.public_key, ev.request_id, ev.items)
        except EcashError as exc:
            return f"the refusal does not check: {exc}"
        return None

    def _decide(self, account_pk: int, ev: _Evidence,  # type: ignore[misc]
                reason: str | None) -> dict:
        now = self.now()
        with self.engine.begin() as conn:
            self.account_row(conn, account_pk, lock=True)  # one dispute of an account at a time
            old = conn.execute(select(disputes).where(
                disputes.c.account == account_pk, disputes.c.request_id == ev.request_id,
                disputes.c.payment_digest == ev.digest)).first()
            if old is not None and old.status == "upheld":
                return _answer(old.id, old.status, old.reason, old.merchant_case)
            merchant = conn.execute(select(accounts.c.id).where(
                accounts.c.merchant_id == ev.envelope.certificate.merchant_id)).scalar()
            found: list[_Deposited] = []
            if reason is None and merchant is None:
                reason = "the certificate names no merchant of this bank"
            if reason is None:
                found = self._deposited_by(conn, merchant, ev.spends)
                if not found:
                    reason = ("the merchant deposited none of these transcripts (or not"
                              " yet, or its generation is closed)")
            row = {"merchant": merchant, "status": "rejected" if reason else "upheld",
                   "reason": reason or "the merchant deposited a transcript of a payment"
                   " it had refused", "updated_at": now, **ev.stored()}
            if old is None:
                dispute_id = conn.execute(disputes.insert().values(
                    account=account_pk, request_id=ev.request_id, payment_digest=ev.digest,
                    created_at=now, **row)).inserted_primary_key[0]
            else:
                dispute_id = old.id
                conn.execute(update(disputes).where(disputes.c.id == dispute_id).values(**row))
            case = None
            if reason is None:
                case = self._uphold(conn, dispute_id, account_pk, merchant, found, now)
                conn.execute(update(disputes).where(disputes.c.id == dispute_id).values(
                    merchant_case=case))
            return _answer(dispute_id, row["status"], row["reason"], case)

    def _deposited_by(self, conn: Connection, merchant: int,  # type: ignore[misc]
                      spends: Sequence[Spend]) -> list[_Deposited]:
        """The transcripts among ``spends`` that ``merchant`` deposited: in the
        spent table, or as the second transcript of a double-spend case."""
        wanted = {}
        for s in spends:
            key = self.key(s.coin.key_id, conn)
            if key is None:
                continue
            spend, request = binary.spend_to_bytes(s), binary.request_to_bytes(s.request)
            wanted[(key.generation, s.coin.coin_id)] = _Deposited(
                s.coin.coin_id, transcript_digest(spend, request), key.generation,
                key.public.value, spend, request)
        if not wanted:
            return []
        out = {}
        for r in conn.execute(select(spent_coins.c.generation, spent_coins.c.coin_id,
                                     spent_coins.c.spend, spent_coins.c.request).where(
                tuple_(spent_coins.c.generation, spent_coins.c.bucket, spent_coins.c.coin_id)
                .in_([(g, bucket_of(c), c) for g, c in wanted]),
                spent_coins.c.depositor == merchant, spent_coins.c.redeemed.is_(False))):
            d = wanted[(r.generation, r.coin_id)]
            if (r.spend, r.request) == (d.spend, d.request):
                out[d.coin_id] = d
        for r in conn.execute(select(fraud_cases.c.generation, fraud_cases.c.coin_id).where(
                tuple_(fraud_cases.c.coin_id, fraud_cases.c.digest).in_(
                    [(d.coin_id, d.digest) for d in wanted.values()]),
                fraud_cases.c.depositor == merchant)):
            out[r.coin_id] = wanted[(r.generation, r.coin_id)]
        return list(out.values())

    def _uphold(self, conn: Connection, dispute_id: int, holder: int,  # type: ignore[misc]
                merchant: int, found: list[_Deposited], now: int) -> int:
        """Open (or find) the merchant's case, then clear the holder."""
        known = {(r.coin_id, r.digest): r.merchant_case for r in conn.execute(
            select(disputed_spends).where(tuple_(
                disputed_spends.c.coin_id, disputed_spends.c.digest).in_(
                    [(d.coin_id, d.digest) for d in found])))}
        new = [d for d in found if (d.coin_id, d.digest) not in known]
        if new:
            case = self._open_case(conn, dispute_id, merchant, new, now)
            known.update({(d.coin_id, d.digest): case for d in new})
        else:  # another dispute showed these transcripts first: its case
            case = known[(found[0].coin_id, found[0].digest)]
        self._clear_holder(conn, dispute_id, holder, found, known, now)
        return case

    def _open_case(self, conn: Connection, dispute_id: int, merchant: int,  # type: ignore[misc]
                   found: list[_Deposited], now: int) -> int:
        value = sum(d.value for d in found)
        row = self.account_row(conn, merchant, lock=True)
        from_balance = min(max(row.balance, 0), value)
        case = conn.execute(merchant_cases.insert().values(
            dispute=dispute_id, merchant=merchant, value=value, from_balance=from_balance,
            refunded=0, receivable=-from_balance, created_at=now)).inserted_primary_key[0]
        conn.execute(disputed_spends.insert(), [
            {"coin_id": d.coin_id, "digest": d.digest, "merchant_case": case,
             "generation": d.generation, "value": d.value, "spend": d.spend,
             "request": d.request} for d in found])
        if from_balance:
            post(conn, now, "dispute_debit", f"acct:{merchant}", "receivable", from_balance,
                 f"merchant_case:{case}")
            conn.execute(update(accounts).where(accounts.c.id == merchant).values(
                balance=accounts.c.balance - from_balance))
        log.warning("dispute %s upheld: merchant case %s against %r (deposited refused"
                    " transcripts worth %s minor units)", dispute_id, case, row.merchant_id,
                    value)
        return case

    def _clear_holder(self, conn: Connection, dispute_id: int, holder: int,  # type: ignore[misc]
                      found: list[_Deposited], case_of: dict, now: int) -> None:
        """Void the double-spend cases naming ``holder`` on a refused
        transcript; unfreeze the account if no other case holds it."""
        digests = {(d.coin_id, d.digest) for d in found}
        for fc in conn.execute(select(fraud_cases).where(
                fraud_cases.c.account == holder,
                fraud_cases.c.coin_id.in_([d.coin_id for d in found]),
                fraud_cases.c.id.not_in(select(voided_fraud_cases.c.fraud_case)))).all():
            pair = {(fc.coin_id, fc.digest),
                    (fc.coin_id, transcript_digest(fc.spend1, fc.request1))}
            shown = pair & digests
            if not shown:
                continue  # a double spend of two transcripts the merchant did not refuse
            conn.execute(voided_fraud_cases.insert().values(
                fraud_case=fc.id, dispute=dispute_id, refunded=fc.from_balance, voided_at=now))
            if fc.from_balance:
                post(conn, now, "dispute_refund", "receivable", f"acct:{holder}",
                     fc.from_balance, f"case:{fc.id}")
                conn.execute(update(accounts).where(accounts.c.id == holder).values(
                    balance=accounts.c.balance + fc.from_balance))
                conn.execute(update(merchant_cases).where(
                    merchant_cases.c.id == case_of[next(iter(shown))]).values(
                        refunded=merchant_cases.c.refunded + fc.from_balance,
                        receivable=merchant_cases.c.receivable + fc.from_balance))
        holding = list(conn.execute(select(fraud_cases.c.id).where(
            fraud_cases.c.account == holder, fraud_cases.c.id.not_in(
                select(voided_fraud_cases.c.fraud_case)))).scalars())
        after_cases_voided(conn, holder, holding, dispute_id, now)

    # --- operator views -------------------------------------------------------
    def dispute_list(self) -> list[dict]:  # type: ignore[misc]
        with self.engine.connect() as conn:
            rows = conn.execute(_LISTED.order_by(disputes.c.id)).all()
        return [_summary(r) for r in rows]

    def dispute_info(self, dispute_id: int) -> dict:  # type: ignore[misc]
        """The dispute with its evidence, the merchant's case and what it voided."""
        if not 0 <= dispute_id < 2**63:
            raise BankError("not_found", "no such dispute", 404)
        with self.engine.connect() as conn:
            r = conn.execute(_LISTED.where(disputes.c.id == dispute_id)).first()
            if r is None:
                raise BankError("not_found", "no such dispute", 404)
            out = _summary(r)
            spends = binary.payment_from_bytes(r.spends)
            out["evidence"] = {"envelope": wj.loads(r.envelope),
                               "spends": [wj.spend_to_json(s) for s in spends],
                               "refusal": wj.loads(r.refusal)}
            out["voided_fraud_cases"] = list(conn.execute(
                select(voided_fraud_cases.c.fraud_case).where(
                    voided_fraud_cases.c.dispute == dispute_id)
                .order_by(voided_fraud_cases.c.fraud_case)).scalars())
            out["merchant_case"] = None
            if r.merchant_case is not None:
                out["merchant_case"] = _case(conn, r.merchant_case)
        return out

    def fraud_overview(self) -> list[dict]:  # type: ignore[misc]
        """The double-spend cases, each with ``voided_by``: the dispute that
        voided it, or ``None``."""
        with self.engine.connect() as conn:
            voided = dict(conn.execute(select(voided_fraud_cases.c.fraud_case,
                                              voided_fraud_cases.c.dispute)).all())
        return [{**c, "voided_by": voided.get(c["case"])} for c in self.fraud_list()]


_holder = accounts.alias("holder")
_merchant = accounts.alias("merchant")
_LISTED = select(disputes, _holder.c.account_id.label("holder_id"),
                 _merchant.c.merchant_id.label("merchant_id")).select_from(
    disputes.join(_holder, _holder.c.id == disputes.c.account).outerjoin(
        _merchant, _merchant.c.id == disputes.c.merchant))


def _answer(dispute_id: int, status: str, reason: str, case: int | None) -> dict:
    return {"dispute": dispute_id, "status": status, "reason": reason, "case": case}


def _summary(r) -> dict:  # type: ignore[no-untyped-def]
    return {**_answer(r.id, r.status, r.reason, r.merchant_case), "account_id": r.holder_id,
            "merchant_id": r.merchant_id, "request_id": r.request_id.hex(),
            "payment_digest": r.payment_digest.hex(), "created_at": r.created_at,
            "updated_at": r.updated_at}


def _case(conn: Connection, case: int) -> dict:
    c = conn.execute(select(merchant_cases).where(merchant_cases.c.id == case)).one()
    rows = conn.execute(select(disputed_spends).where(
        disputed_spends.c.merchant_case == case).order_by(disputed_spends.c.coin_id)).all()
    return {"case": c.id, "dispute": c.dispute, "value": c.value,
            "from_balance": c.from_balance, "refunded": c.refunded,
            "receivable": c.receivable, "created_at": c.created_at,
            "deposited": [{"coin_id": r.coin_id.hex(), "generation": r.generation,
                           "value": r.value, "spend": wj.spend_to_json(binary.spend_from_bytes(
                               r.spend, binary.request_from_bytes(r.request)))}
                          for r in rows]}
