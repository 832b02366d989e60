"""The sale screen: amount entry, then one unmistakable state at a time.

States (``#status``, a ``role=status`` live region, so a screen reader
announces each change): waiting (the QR), checking with the bank, PAID,
NOT PAID with the reason in words, expired (the QR goes at once) and
cancelled. The script only displays: every amount shown after the entry is
formatted by the server, and the server refuses what the page lets through.
"""

from __future__ import annotations

import json
from html import escape

from ...money import exponent
from ...wire.description import MAX_CHARS
from ...wire.payee import shown
from .layout import Ctx, asset, foot, head, header
from .words import PENDING_WORDS, Gettext


def js_words(_: Gettext) -> dict[str, str]:
    """Everything the script writes on the page, in the page's language."""
    return {
        "waiting": _("Waiting for payment"),
        "waiting_detail": _("The customer scans the code with their wallet."),
        "pending": _(PENDING_WORDS),
        "pending_detail": _("Do not hand over the goods yet."),
        "paid": _("PAID"),
        "refused": _("NOT PAID"),
        "expired": _("Expired"),
        "expired_detail": _("The customer can no longer pay this request. Start a new sale."),
        "cancelled": _("Cancelled"),
        "cancelled_detail": _("This request can no longer be paid."),
        "expires_in": _("Expires in {time}"),
        "attempt": _("A payment was refused: {words}"),
        "unreachable": _("The till does not answer. Check that it is running."),
        "over_limit": _("Above the bank's limit for one payment: at most {limit}."),
    }


def pos_page(ctx: Ctx, *, merchant_id: str, terminal: str, currency: str, limit: int,
             networked: bool) -> str:
    _ = ctx._
    keys = [("1", "1"), ("2", "2"), ("3", "3"), ("4", "4"), ("5", "5"), ("6", "6"),
            ("7", "7"), ("8", "8"), ("9", "9"),
            ("." if exponent(currency) else "00", "." if exponent(currency) else "00"),
            ("0", "0"), ("back", "⌫")]
    pad = "".join(
        f'<button type="button" data-key="{k}"'
        + (f' aria-label="{escape(_("Delete last digit"))}"' if k == "back" else "")
        + f">{label}</button>" for k, label in keys)
    limit_text = ctx.money(limit, currency)
    limit_note = _("At most {limit} per payment (the bank's limit).").format(limit=limit_text)
    note = (_("Scan with the customer's wallet.") if networked else
            _("For this till only: the code holds the whole request, so a wallet without"
              " network can read it and pay offline. Paste the customer's payment text"
              " below."))
    attrs = (f' data-currency="{escape(currency)}" data-exponent="{exponent(currency)}"'
             f' data-locale="{ctx.html_lang}" data-limit="{limit}"'
             f' data-limit-text="{escape(limit_text)}" data-networked="{int(networked)}"'
             ' data-state="entry"')
    describe = (f'<label for="description">{escape(_("What is being bought (optional)"))}'
                f'</label><input type="text" id="description" maxlength="{MAX_CHARS}"'
                f' autocomplete="off" placeholder="{escape(_("e.g. 2 coffees"))}">')
    words = json.dumps(js_words(_), ensure_ascii=False).replace("</", "<\\/")
    return (head(ctx, f"{shown(merchant_id)} · {_('Sale')}", body_attrs=attrs)
            + header(ctx, merchant_id, terminal, "/")
            + '<main><section class="card" id="keypad" aria-labelledby="amount-label">'
            f'<label id="amount-label" for="display">{escape(_("Amount"))}</label>'
            '<output id="display" aria-live="off"></output>'
            f'<p id="limit-note">{escape(limit_note)}</p>'
            '<p id="amount-error" class="error" role="alert"></p>'
            f'<div class="keys">{pad}</div>'
            f'<button type="button" class="wide secondary" data-key="clear">'
            f'{escape(_("Clear"))}</button>{describe}'
            f'<button type="button" class="wide" id="charge" disabled>{escape(_("Charge"))}'
            '</button></section>'
            '<section class="card" id="payment" hidden>'
            '<div id="pay-amount"></div><div id="pay-description"></div>'
            '<div id="status" class="waiting" role="status" aria-live="polite"'
            ' aria-atomic="true"><span id="status-title"></span>'
            '<span id="status-detail"></span></div>'
            f'<div id="qr-block"><div id="qr" role="img" aria-label="'
            f'{escape(_("Payment code"))}"></div><p id="qr-note">{escape(note)}</p>'
            '<p id="countdown"></p></div>'
            '<p id="attempt" aria-live="polite"></p>'
            f'<details id="customer-pays"><summary>{escape(_("Customer pays from their side"))}'
            f'</summary><label for="payment-text">{escape(_("The customer’s payment text"))}'
            '</label><textarea id="payment-text" spellcheck="false" autocomplete="off"'
            ' placeholder="ecpay1:…"></textarea><button type="button" class="wide"'
            f' id="submit-payment">{escape(_("Take this payment"))}</button></details>'
            f'<button type="button" class="wide danger" id="cancel">{escape(_("Cancel sale"))}'
            '</button><a id="receipt-link" class="wide secondary" hidden href="#">'
            f'{escape(_("Receipt"))}</a>'
            f'<button type="button" class="wide secondary" id="new-sale" hidden>'
            f'{escape(_("New sale"))}</button></section></main>'
            f'<script type="application/json" id="words">{words}</script>'
            f"<script>{asset('pos.js')}</script>" + foot())
