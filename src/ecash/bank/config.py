"""The bank's tunable numbers, with the defaults of a CNY deployment (fen)."""

from __future__ import annotations

from dataclasses import dataclass, field

DAY = 86_400


def power_of_two_ladder(smallest: int = 1, largest: int = 65_536) -> list[int]:
    out, v = [], smallest
    while v <= largest:
        out.append(v)
        v *= 2
    return out


@dataclass(frozen=True)
class BankConfig:
    currency: str = "CNY"
    bank_merchant_id: str = "bank"  # the payee of redemptions
    denominations: list[int] = field(default_factory=power_of_two_ladder)
    deposit_window_s: int = 7 * DAY
    floor_limit: int = 20_000
    holding_limit: int = 200_000
    single_payment_limit: int = 50_000
    daily_offline_limit: int = 100_000
    consecutive_offline_limit: int = 10
    withdraw_period_s: int = 90 * DAY  # a generation's withdrawal window
    spend_period_s: int = 180 * DAY  # deposit_end - withdraw_end
    session_ttl_s: int = 300
    max_coins_per_session: int = 256
    max_outstanding_coins: int = 1024  # open, unanswered commitments per account
    daily_load_limit: int = 1_000_000
    net_load_limit: int = 3_000_000  # loaded minus redeemed over the deposit window
    max_deposit_batch: int = 1000
    certificate_validity_s: int = 365 * DAY
