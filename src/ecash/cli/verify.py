"""``ecash verify``: third-party checks of coins, spends and double spends."""

from __future__ import annotations

import typer

app = typer.Typer(help="Verify coins, spends and double spends (ECASH-1), offline.",
                  no_args_is_help=True)
