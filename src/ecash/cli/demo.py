"""``ecash demo``: the whole system on 127.0.0.1 in under a minute (see
:mod:`ecash.demo`). Exit 0 when every step did what the story expects, 1 otherwise."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.panel import Panel

from .contract import console, fail


def demo(
    out: Annotated[Path | None, typer.Option(
        "--out", metavar="DIR", help="Write keys.json, spends/NNN.json and double-spend/"
                                     " (ECASH-1 section 8 JSON) here.")] = None,
    directory: Annotated[Path | None, typer.Option(
        "--dir", metavar="DIR", help="Keep the databases here (default: a temporary"
                                     " directory, removed at the end).")] = None,
) -> None:
    """Run a bank, two terminals and two wallets on 127.0.0.1: pay, settle, and
    catch a holder who copies the wallet file to spend a coin twice."""
    from .. import demo as story  # the bank and the terminal: their extras, imported here

    started = time.monotonic()

    def say(title: str, detail: str) -> None:
        console.print(Panel(detail, title=f"[bold]{title}[/]", title_align="left",
                            expand=False), highlight=False)

    try:
        with story.workdir(directory) as work:
            result = story.run(work, say, out)
    except story.DemoFailure as exc:
        fail("demo_failed", f"the demo went wrong: {exc}")
    console.print(f"[bold green]done[/] in {time.monotonic() - started:.1f} s:"
                  f" {result['transcripts']} spend transcripts, {result['fraud_cases']} double"
                  " spend(s) caught, every check passed", highlight=False)
