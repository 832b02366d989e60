"""Prometheus metrics of the bank (multi-process safe when the server sets
``PROMETHEUS_MULTIPROC_DIR``)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

WITHDRAWN_COINS = Counter("ecash_withdrawn_coins", "Coins answered in withdrawals and exchanges")
# the group operations' share of the bank's CPU, measured where they run, on
# the same CPU at the same moment: the machine's speed cancels out of the ratio
COMMITMENT_GROUP_CPU = Counter(
    "ecash_commitment_group_cpu_seconds",
    "Thread CPU time of the withdrawal commitments' group operations"
    " (two fixed-base and two variable-base per coin)")
DEPOSITS = Counter("ecash_deposit_transcripts", "Deposited transcripts by verdict", ["verdict"])
DOUBLE_SPENDS = Counter("ecash_double_spends", "Fraud cases opened")
ALARMS = Counter("ecash_alarms", "Double spends naming no registered identity")
LATENCY = Histogram("ecash_request_seconds", "HTTP request latency", ["route"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
