"""Helpers shared by the older CLI modules: secrets from env/file/prompt, output.

New code reports through :mod:`ecash.cli.contract` (one JSON shape, the
contract's exit codes); these stay for the callers not yet moved, on the same
consoles.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import typer

from .contract import console, err_console


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def read_secret(env: str, file: Path | None, prompt: str) -> str:
    """A credential from ``$env``, a file, or a hidden prompt; never from argv."""
    if os.environ.get(env):
        return os.environ[env].strip()
    if file is not None:
        try:
            return file.read_text().strip()
        except OSError as exc:
            fail(f"cannot read {file}: {exc.strerror}")
    if not sys.stdin.isatty():
        fail(f"no credential: set {env} or pass a file")
    return typer.prompt(prompt, hide_input=True).strip()


def emit(data: Any, as_json: bool, human: str | None = None) -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        console.print(human if human is not None else data, highlight=False)
