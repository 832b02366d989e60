"""The day's sales and the day close, printable (the print style hides the
navigation and buttons)."""

from __future__ import annotations

from html import escape

from ...wire.payee import shown
from .layout import Ctx, foot, head, header
from .words import N_, refusal_words

STATE_WORDS = {"waiting": N_("Waiting"), "pending": N_("Checking with the bank"),
               "paid": N_("Paid"), "refused": N_("Not paid"), "expired": N_("Expired"),
               "cancelled": N_("Cancelled")}


def _totals_rows(ctx: Ctx, t: dict, cur: str, prefix: str) -> str:
    _ = ctx._
    rows = [("sales", _("Sales (paid)"), t["paid"]["count"], t["paid"]["value"]),
            ("deposited", _("Deposited with the bank"), None, t["deposited"]),
            ("awaiting", _("Paid, not yet deposited"), None, t["awaiting_deposit"]),
            ("pending", _("Checking with the bank"), t["pending"]["count"], t["pending"]["value"]),
            ("refused", _("Not paid (refused)"), t["refused"]["count"], t["refused"]["value"]),
            ("cancelled", _("Cancelled"), t["cancelled"]["count"], t["cancelled"]["value"]),
            ("expired", _("Expired unpaid"), t["expired"]["count"], t["expired"]["value"]),
            ("waiting", _("Waiting for payment"), t["waiting"]["count"], t["waiting"]["value"])]
    return "".join(
        f'<tr id="{prefix}-{key}"><td>{escape(label)}</td><td class="n">'
        f'{"" if n is None else n}</td><td class="n">{escape(ctx.money(v, cur))}</td></tr>'
        for key, label, n, v in rows)


def _table(ctx: Ctx, totals: dict, cur: str, prefix: str) -> str:
    _ = ctx._
    return (f'<table><tr><th></th><th class="n">{escape(_("Sales"))}</th><th class="n">'
            f'{escape(_("Value"))}</th></tr>{_totals_rows(ctx, totals, cur, prefix)}</table>')


def day_page(ctx: Ctx, close: dict, merchant_id: str, terminal: str) -> str:
    _ = ctx._
    cur = close["currency"]
    sales = "".join(
        f'<tr data-state="{s["state"]}"><td>{escape(ctx.time(s["created_ms"]))}</td>'
        f'<td>{escape(shown(s["terminal"]))}</td>'
        f'<td class="n">{escape(ctx.money(s["amount"], cur))}</td>'
        f'<td>{escape(_(STATE_WORDS.get(s["state"], s["state"])))}'
        + (f' — {escape(refusal_words(s["reason"], _))}' if s["reason"] else "")
        + "</td><td>" + escape(s["description"] or "") + "</td><td>"
        + (f'<a href="/receipt/{s["request_id"]}">{escape(_("Receipt"))}</a>'
           if s["state"] == "paid" else "") + "</td></tr>" for s in close["sales"])
    per_terminal = "".join(
        f'<h3>{escape(_("Till"))}: {escape(shown(name))}</h3>'
        + _table(ctx, totals, cur, f"till-{i}")
        for i, (name, totals) in enumerate(sorted(close["terminals"].items())))
    title = _("Day close {date}").format(date=close["date"])
    return (head(ctx, f"{shown(merchant_id)} · {title}")
            + header(ctx, merchant_id, terminal, "/day")
            + f'<main class="broad"><section class="card"><h1 id="day-title">{escape(title)}</h1>'
            f'<p>{escape(_("Times are in UTC; the day runs from 00:00 to 24:00 UTC."))}</p>'
            + _day_form(ctx, close["date"])
            + f'<h2>{escape(_("The whole shop"))}</h2>'
            + _table(ctx, close["store"], cur, "store") + per_terminal
            + f'<h2>{escape(_("Sales"))}</h2><div class="scroll"><table id="sales"><tr>'
            f'<th>{escape(_("Time"))}</th><th>{escape(_("Till"))}</th><th class="n">'
            f'{escape(_("Amount"))}</th><th>{escape(_("State"))}</th><th>'
            f'{escape(_("Description"))}</th><th></th></tr>{sales}</table></div>'
            "</section></main>" + foot())


def day_error_page(ctx: Ctx, words: str, merchant_id: str, terminal: str) -> str:
    """A day the till cannot show (a date that is not one): the words and the
    form to try again, instead of a JSON error in the cashier's face."""
    _ = ctx._
    return (head(ctx, f"{shown(merchant_id)} · {_('Day')}")
            + header(ctx, merchant_id, terminal, "/day")
            + f'<main class="broad"><section class="card"><p class="error" role="alert">'
            f'{escape(words)}</p>' + _day_form(ctx, None)
            + "</section></main>" + foot())


def _day_form(ctx: Ctx, date: str | None) -> str:
    """The form that asks for another day: on a day's page it holds that date
    and a Print button (and is not printed); on the error page it is empty."""
    _ = ctx._
    field = (f' value="{escape(date)}" pattern="\\d{{4}}-\\d{{2}}-\\d{{2}}"' if date
             else ' placeholder="2026-12-03"')
    printing = (f' <button type="button" onclick="window.print()">{escape(_("Print"))}</button>'
                if date else "")
    hidden_in_print = ' class="noprint"' if date else ""
    return (f'<form{hidden_in_print} method="get" action="/day">'
            f'<label for="date">{escape(_("Day"))}</label><input type="text" id="date"'
            f' name="date"{field}> <button type="submit">{escape(_("Show"))}</button>'
            f'{printing}</form>')
