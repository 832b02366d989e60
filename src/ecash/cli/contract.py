"""The one contract every ``ecash`` command keeps (README, "The command line").

Exit codes, the same in every role:

- ``0`` done;
- ``1`` refused or invalid (the bank, a terminal or a check said no);
- ``2`` usage or unreadable input (a bad option, a missing file, a bad amount);
- ``3`` pending or unreachable (the outcome is not known yet: try again later).

With ``--json`` a command prints exactly one JSON object on stdout:

- a result is the command's own object; when it holds amounts, they are
  integers in minor units and the object says so with ``"amount_unit":
  "minor"`` beside its ``"currency"``;
- an error is ``{"error": CODE, "message": WORDS, "exit": N}`` (CODE is
  stable, WORDS are for people), and the same words go to stderr.

Without ``--json``, results go to stdout for people and errors are one line
on stderr, ``error: ...``: never a traceback for anything a user can cause.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

import typer
from rich.console import Console

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2
EXIT_PENDING = 3

AMOUNT_UNIT = "minor"

console = Console()
err_console = Console(stderr=True)


class CommandError(Exception):
    """A failure a command reports to its user: a stable code, words, an exit code."""

    def __init__(self, code: str, message: str, exit_code: int = EXIT_REFUSED,
                 **extra: Any) -> None:
        super().__init__(message)
        self.code, self.message, self.exit_code, self.extra = code, message, exit_code, extra


def with_amount_unit(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` marked as counting its amounts in minor units (for ``--json``)."""
    return {**data, "amount_unit": AMOUNT_UNIT}


def emit(data: Any, as_json: bool, human: Any = None) -> None:
    """A command's result: ``data`` as one JSON object, or ``human`` for people."""
    if as_json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        console.print(human if human is not None else data, highlight=False, soft_wrap=True)


def fail(code: str, message: str, as_json: bool = False, exit_code: int = EXIT_REFUSED,
         **extra: Any) -> NoReturn:
    """Report a failure the contract's way and leave with ``exit_code``.

    ``message`` is printed as plain text (never read as Rich markup: a payee
    name or a path may hold brackets).
    """
    if as_json:
        typer.echo(json.dumps({"error": code, "message": message, "exit": exit_code, **extra},
                              ensure_ascii=False))
    label = _label(code, exit_code, extra)
    err_console.print(f"[bold {'red' if label == 'error' else 'yellow'}]{label}:[/] ",
                      end="", highlight=False)
    err_console.print(message, markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(exit_code)


def _label(code: str, exit_code: int, extra: dict[str, Any]) -> str:
    """The word before an error line: ``pending`` for an outcome not known yet
    (a payment made but not confirmed), ``unreachable`` for a server or a
    database that did not answer (exit 3 both), ``error`` otherwise."""
    if exit_code != EXIT_PENDING:
        return "error"
    return "pending" if "pending" in code or extra.get("outcome") == "pending" else "unreachable"


def report(exc: CommandError, as_json: bool = False) -> NoReturn:
    """:func:`fail` for a raised :class:`CommandError`."""
    fail(exc.code, exc.message, as_json, exc.exit_code, **exc.extra)
