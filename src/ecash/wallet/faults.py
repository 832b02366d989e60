"""Crash points for the recovery tests.

When ``ECASH_WALLET_CRASH_AT`` names a point, the process kills itself with
SIGKILL there (no cleanup, no flush: what a power cut or ``kill -9`` does).
Unset, each point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "ECASH_WALLET_CRASH_AT"

# The points, in the order a load or a payment passes them.
LOAD_POINTS = ("load.intent", "load.offer", "load.challenges", "load.answered", "load.stored")
PAY_POINTS = ("pay.recorded", "pay.sent", "pay.confirmed")
EXCHANGE_POINTS = ("exchange.intent", "exchange.offer", "exchange.challenges",
                   "exchange.answered", "exchange.stored")
REDEEM_POINTS = ("redeem.recorded",)


def point(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
