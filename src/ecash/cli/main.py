"""The ``ecash`` command. Subcommands live in sibling modules and are added here."""

from __future__ import annotations

import typer

from . import bank, demo, merchant, verify, wallet

app = typer.Typer(help="ecash: anonymous offline electronic cash (ECASH-1).",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(verify.app, name="verify")
app.add_typer(bank.app, name="bank")
app.add_typer(merchant.app, name="merchant")
app.add_typer(wallet.app, name="wallet")
app.command("demo")(demo.demo)
