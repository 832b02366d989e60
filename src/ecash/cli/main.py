"""The ``ecash`` command. Subcommands live in sibling modules and are added here.

Each role's libraries (web server, database drivers) are an extra of the
package (``ecash[bank]``, ``ecash[merchant]``) and are imported only inside
the commands that need them, so the wallet and ``ecash verify`` run without
them; a command whose extra is missing says which one to install.
"""

from __future__ import annotations

import sys

import typer

from . import bank, demo, merchant, verify, wallet

app = typer.Typer(help="ecash: anonymous offline electronic cash (ECASH-1).",
                  no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(verify.app, name="verify")
app.add_typer(bank.app, name="bank")
app.add_typer(merchant.app, name="merchant")
app.add_typer(wallet.app, name="wallet")
app.command("demo")(demo.demo)

# the top-level modules each extra brings, and the extra to install for them
EXTRA_OF = {name: "bank" for name in ("sqlalchemy", "psycopg", "alembic", "prometheus_client",
                                      "limits", "redis", "structlog", "pythonjsonlogger",
                                      "orjson")}
EXTRA_OF.update({name: "bank,merchant" for name in ("fastapi", "starlette", "uvicorn",
                                                     "httptools", "uvloop")})
EXTRA_OF["segno"] = "merchant"


def main() -> None:
    """The console script: ``app``, with a missing extra reported in one line."""
    try:
        app()
    except ModuleNotFoundError as exc:
        extra = EXTRA_OF.get((exc.name or "").partition(".")[0])
        if extra is None:
            raise
        print(f"error: this command needs the {extra} extra: pip install 'ecash[{extra}]'"
              f" (missing module {exc.name})", file=sys.stderr)
        sys.exit(2)
