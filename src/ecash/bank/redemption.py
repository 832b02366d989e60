"""The bank's check that a redemption is credited only into the account it is
bound to (see :mod:`ecash.wire.redemption` for the binding and why it holds).

Both ways coins are redeemed use it: ``/redemptions`` (a close's coins, one
verdict per transcript) and an exchange's ``redeem`` (all or nothing)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Engine, select

from ..crypto.payment import Spend
from ..wire.redemption import is_bound_to
from .schema import accounts

NOT_BOUND = "redemption_not_bound"
NOT_BOUND_DETAIL = "this redemption is bound to another account"


def account_id_of(engine: Engine, account_pk: int) -> str:
    """The public id of an account (what a redemption is bound to)."""
    with engine.connect() as conn:
        return conn.execute(select(accounts.c.account_id).where(
            accounts.c.id == account_pk)).scalar_one()


def unbound(spends: Sequence[Spend], account_id: str) -> list[int]:
    """The indexes of the spends whose request is not bound to ``account_id``."""
    return [i for i, s in enumerate(spends) if not is_bound_to(s.request, account_id)]
