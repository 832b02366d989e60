"""Prometheus metrics of the bank (multi-process safe when the server sets
``PROMETHEUS_MULTIPROC_DIR``). They are the operator's: ``/metrics`` on the
API asks for an operator credential; ``--metrics-listen`` serves them apart."""

from __future__ import annotations

import os

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server

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


def registry() -> CollectorRegistry:
    """What to expose: every worker's figures when the server runs several
    (``PROMETHEUS_MULTIPROC_DIR``), this process's otherwise."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        return merged
    return REGISTRY


def serve_metrics(host: str, port: int) -> None:
    """Serve the figures on their own listener (``--metrics-listen``), for a
    scraper on the operator's network, on a thread of this process."""
    start_http_server(port, addr=host, registry=registry())
