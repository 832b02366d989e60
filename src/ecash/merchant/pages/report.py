"""The settlement page: what the bank has been sent and has said (all days)."""

from __future__ import annotations

from html import escape

from ...wire.payee import shown
from .layout import Ctx, foot, head, header
from .words import N_

ROWS = [("accepted", N_("Accepted (all coins taken)")), ("pending", N_("Pending deposit")),
        ("deposited", N_("Deposited")), ("credited", N_("Credited by the bank")),
        ("refused", N_("Refused by the bank")), ("double_spent", N_("Double-spent")),
        ("compensated", N_("Compensated (double spends)")),
        ("unsold", N_("Taken online for refused payments"))]
TOTALS = {"sales": N_("Sales"), "credited": N_("Credited"), "outstanding": N_("Outstanding"),
          "lost": N_("Lost")}


def report_page(ctx: Ctx, rep: dict, terminal: str) -> str:
    _ = ctx._
    cur = rep["currency"]
    body = "".join(
        f'<tr id="row-{name}"><td>{escape(_(label))}</td><td class="n">{rep[name]["count"]}'
        f'</td><td class="n">{escape(ctx.money(rep[name]["value"], cur))}</td></tr>'
        for name, label in ROWS)
    totals = "".join(f'<tr><td>{escape(_(TOTALS.get(k, k)))}</td><td class="n">'
                     f'{escape(ctx.money(v, cur))}</td></tr>' for k, v in rep["totals"].items())
    d = rep["deadlines"]
    warn = ""
    if d["overdue"]["count"]:
        warn += ('<p class="warn">' + escape(_("Transcripts past their deposit deadline: {n}.")
                                             .format(n=d["overdue"]["count"])) + "</p>")
    if d["due_soon"]["count"]:
        warn += ('<p class="warn">' + escape(
            _("Transcripts to deposit within {h} h: {n}.").format(
                h=d["warn_before_s"] // 3600 or 1, n=d["due_soon"]["count"])) + "</p>")
    codes = ", ".join(f"{escape(k)}: {v}" for k, v in sorted(rep["refused_codes"].items()))
    pay = rep["payments"]
    payments = _("Paid {paid} ({value}), open {open}, expired {expired}, checking with the"
                 " bank {pending}, refused {declined}, cancelled {cancelled}, refused attempts"
                 " {attempts}.").format(
        paid=pay["paid"]["count"], value=ctx.money(pay["paid"]["value"], cur), open=pay["open"],
        expired=pay["expired"], pending=pay["pending"]["count"], declined=pay["declined"],
        cancelled=pay.get("cancelled", 0), attempts=pay["refused"]["count"])
    fp = escape(rep["keyset_fingerprint"])
    return (head(ctx, f"{shown(rep['merchant_id'])} · {_('Settlement')}")
            + header(ctx, rep["merchant_id"], terminal, "/report")
            + f'<main class="broad"><section class="card"><h1>{escape(_("Settlement"))}</h1>'
            + warn + f'<table><tr><th></th><th class="n">{escape(_("Coins"))}</th>'
            f'<th class="n">{escape(_("Value"))}</th></tr>{body}</table>'
            + (f"<p>{escape(_('Refused by the bank'))}: {codes}</p>" if codes else "")
            + f"<h2>{escape(_('Totals'))}</h2><table>{totals}</table>"
            f"<h2>{escape(_('Payments'))}</h2><p>{escape(payments)}</p>"
            f'<p class="fp">{escape(_("Bank keys"))}: <span id="fingerprint">{fp}</span></p>'
            "</section></main>" + foot())
