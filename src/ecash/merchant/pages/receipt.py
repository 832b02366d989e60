"""A paid sale's receipt as the customer sees it, with a QR of the data that
proves it (the terminal's signature over the request id and amount)."""

from __future__ import annotations

from html import escape

from ...wire.payee import shown
from .. import qr
from .layout import Ctx, foot, head, header


def receipt_page(ctx: Ctx, view: dict, terminal: str) -> str:
    _ = ctx._
    rows = [("shop", _("Shop"), shown(view["merchant_id"])),
            ("till", _("Till"), shown(view["terminal"])),
            ("amount", _("Amount"), ctx.money(view["amount"], view["currency"])),
            ("time", _("Paid at"), ctx.time(view["paid_ms"])),
            ("coins", _("Coins"), str(view["coins"])),
            ("fingerprint", _("Receipt signature fingerprint"), view["fingerprint"]),
            ("request", _("Sale number"), view["request_id"])]
    if view["description"]:
        rows.insert(3, ("description", _("Description"), view["description"]))
    items = "".join(f'<dt>{escape(label)}</dt><dd id="receipt-{key}"'
                    + (' class="fp"' if key in ("fingerprint", "request") else "")
                    + f">{escape(value)}</dd>" for key, label, value in rows)
    return (head(ctx, f"{shown(view['merchant_id'])} · {_('Receipt')}")
            + header(ctx, view["merchant_id"], terminal, f"/receipt/{view['request_id']}")
            + f'<main><section class="card receipt"><h1>{escape(_("Receipt"))}</h1>'
            f"<dl>{items}</dl>"
            f'<div id="receipt-qr" role="img" aria-label="{escape(_("Receipt code"))}">'
            f'{qr.svg(view["verification"])}</div><p>'
            + escape(_("The code holds the receipt and the till's key, so the customer's"
                       " wallet can check the till's signature."))
            + f'</p><button type="button" class="wide noprint" onclick="window.print()">'
            f'{escape(_("Print"))}</button></section></main>' + foot())
