"""The ``ecash`` command. Subcommands live in sibling modules and are added here.

Each role's libraries (web server, database drivers) are an extra of the
package (``ecash[bank]``, ``ecash[merchant]``) and are imported only inside
the commands that need them, so the wallet and ``ecash verify`` run without
them; a command whose extra is missing says which one to install.

Whatever escapes a command is a bug, not the user's doing: :func:`main` says
so in one line (exit 1) instead of a traceback, which ``ECASH_DEBUG=1`` shows.
"""

from __future__ import annotations

import json
import os
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any, NoReturn

import typer
from typer import rich_utils

from . import bank, demo, merchant, verify, wallet
from .contract import EXIT_REFUSED, EXIT_USAGE

DEBUG_ENV = "ECASH_DEBUG"
EXIT_INTERRUPTED = 130

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


def package_version() -> str:
    """The installed package's version (its metadata, the one ``pip`` shows)."""
    try:
        return version("ecash")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree
        return "unknown (not installed)"


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"ecash {package_version()}")
        raise typer.Exit()


@app.callback()
def root(version_: Annotated[bool, typer.Option(
        "--version", callback=_show_version, is_eager=True,
        help="Show the version and exit.")] = False) -> None:
    """ecash: anonymous offline electronic cash (ECASH-1)."""


def main() -> None:
    """The console script: ``app``, with a missing extra and any unexpected
    error reported in one line (``ECASH_DEBUG=1`` shows the traceback)."""
    debug = os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        code = app(standalone_mode=False)
    except ModuleNotFoundError as exc:
        extra = EXTRA_OF.get((exc.name or "").partition(".")[0])
        if extra is None:
            _internal(exc, debug)
        print(f"error: this command needs the {extra} extra: pip install 'ecash[{extra}]'"
              f" (missing module {exc.name})", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # the last line of defence, by design
        if _is_usage_error(exc):  # a bad option, a missing argument
            _usage(exc)
        if type(exc).__name__ == "Abort":  # a confirmation answered "no"
            print("aborted", file=sys.stderr)
            sys.exit(EXIT_REFUSED)
        _internal(exc, debug)
    sys.exit(code if isinstance(code, int) else 0)


def _is_usage_error(exc: Exception) -> bool:
    """Click's own errors (Typer ships its copy of Click, whose classes it does
    not export): they carry an exit code and a message for the user."""
    return isinstance(getattr(exc, "exit_code", None), int) and callable(
        getattr(exc, "format_message", None)) and callable(getattr(exc, "show", None))


def _usage(exc: Any) -> NoReturn:
    """Click's usage error as Typer shows it, and as the contract's JSON with ``--json``."""
    if "--json" in sys.argv[1:]:
        print(json.dumps({"error": "usage", "message": exc.format_message(),
                          "exit": exc.exit_code}, ensure_ascii=False))
    rich_utils.rich_format_error(exc)
    sys.exit(exc.exit_code)


def _internal(exc: BaseException, debug: bool) -> NoReturn:
    if debug:
        raise exc
    what = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    print(f"error: internal error: {what[:300]}; run with {DEBUG_ENV}=1 for the traceback",
          file=sys.stderr)
    sys.exit(EXIT_REFUSED)
