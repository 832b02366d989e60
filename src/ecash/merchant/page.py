"""The point-of-sale pages: server-rendered HTML, a little vanilla JavaScript,
nothing from another site (no CDN, no fonts, no images but the inline QR)."""

from __future__ import annotations

from html import escape

from ..wire.payee import shown
from .money import exponent, fmt

PENDING_WORDS = "Checking with the bank…"

# What the cashier reads for a refusal: our words for our codes. A payer
# chooses the body of a payment, never these words (a code we do not know
# gets the general one).
REFUSAL_WORDS = {
    "amount_mismatch": "The coins do not add up to the amount.",
    "currency_mismatch": "The coins are in another currency.",
    "wrong_merchant": "The payment is for another shop.",
    "request_mismatch": "The payment answers another sale.",
    "unknown_key": "The coins are not from our bank's current keys.",
    "past_spend_deadline": "The coins are too old to be taken.",
    "duplicate_coin": "The same coin was sent twice.",
    "already_accepted": "A coin of this payment was taken before.",
    "already_paid": "This sale was already paid.",
    "already_refused": "This sale refused an earlier payment; start a new sale.",
    "other_payment_pending": "Another payment for this sale is being checked with the bank.",
    "request_expired": "The sale timed out; start a new sale.",
    "bank_refused": "The bank refused the coins.",
    "bank_error": "The bank did not take the payment.",
    "empty_payment": "The payment had no coins.",
    "too_many_coins": "The payment had too many coins.",
    "spend_equation": "A coin's signature does not check out.",
}
GENERAL_REFUSAL = "The payment was not valid."


def refusal_words(code: str) -> str:
    return REFUSAL_WORDS.get(code, GENERAL_REFUSAL)


CSS = """
*{box-sizing:border-box}body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;
color:#111}header{background:#1d3557;color:#fff;padding:.6rem 1rem;display:flex;
justify-content:space-between;align-items:center;flex-wrap:wrap;gap:.5rem}header a{color:#fff}
main{max-width:30rem;margin:1rem auto;padding:0 1rem}.card{background:#fff;border-radius:.6rem;
padding:1rem;box-shadow:0 1px 3px #0002;margin-bottom:1rem}#display{font-size:2.4rem;
text-align:right;font-variant-numeric:tabular-nums;padding:.4rem .2rem}.keys{display:grid;
grid-template-columns:repeat(3,1fr);gap:.5rem}.keys button,.wide{font-size:1.5rem;
padding:.8rem;border:1px solid #ccd;border-radius:.5rem;background:#fafbff;cursor:pointer}
.wide{width:100%;margin-top:.6rem;background:#2a9d8f;color:#fff;border:0}
.wide.secondary{background:#6c757d}#qr svg{width:100%;max-width:20rem;height:auto;
display:block;margin:auto}#status{font-size:1.6rem;text-align:center;margin:.6rem 0}
#status.paid{color:#fff;background:#2a9d8f;border-radius:.5rem;padding:1rem;font-size:2.4rem}
#status.expired,#status.refused{color:#b00}#status.pending{color:#8a5a00}#refusal{color:#b00;text-align:center;min-height:1.2em}
#request-text{font-family:monospace;font-size:.6rem;word-break:break-all;color:#555}
table{border-collapse:collapse;width:100%}td,th{padding:.35rem .5rem;border-bottom:1px solid #eee;
text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}.warn{color:#b00;
font-weight:bold}.fp{font-family:monospace}[hidden]{display:none!important}
"""

POS_JS = """
"use strict";
const EXP = Number(document.body.dataset.exponent), CUR = document.body.dataset.currency;
let digits = "", current = null, timer = null, lastRefusal = "";
const $ = (id) => document.getElementById(id);
function money(n) {
  if (EXP === 0) return n + " " + CUR;
  const s = String(n).padStart(EXP + 1, "0");
  return s.slice(0, -EXP) + "." + s.slice(-EXP) + " " + CUR;
}
function amount() { return Number(digits || "0"); }
function show() { $("display").textContent = money(amount()); $("charge").disabled = !amount(); }
function press(k) {
  if (current) return;
  if (k === "clear") digits = "";
  else if (k === "back") digits = digits.slice(0, -1);
  else if ((digits + k).replace(/^0+/, "").length <= 12) digits = (digits + k).replace(/^0+/, "");
  show();
}
async function charge() {
  if (!amount() || current) return;
  $("charge").disabled = true;
  const r = await fetch("api/requests", {method: "POST",
    headers: {"content-type": "application/json"}, body: JSON.stringify({amount: amount()})});
  const body = await r.json();
  if (!r.ok) { $("refusal").textContent = body.code + ": " + body.detail; show(); return; }
  current = body;
  $("keypad").hidden = true; $("payment").hidden = false;
  $("pay-amount").textContent = money(body.amount);
  $("qr").innerHTML = body.svg;
  $("request-text").textContent = body.text;
  $("request-text").dataset.requestId = body.request_id;
  setStatus("Waiting for payment…", "");
  $("refusal").textContent = ""; lastRefusal = "";
  timer = setInterval(poll, 400);
}
function setStatus(text, cls) { $("status").textContent = text; $("status").className = cls; }
async function poll() {
  if (!current) return;
  let body;
  try { body = await (await fetch("api/requests/" + current.request_id)).json(); }
  catch (e) { return; }
  if (body.refusal && body.refusal.at_ms + ":" + body.refusal.count !== lastRefusal) {
    lastRefusal = body.refusal.at_ms + ":" + body.refusal.count;
    $("refusal").textContent = "Refused: " + body.refusal.words;
  }
  if (body.status === "paid") {
    clearInterval(timer); setStatus("PAID " + money(current.amount), "paid");
    $("refusal").textContent = ""; $("qr").innerHTML = "";
  } else if (body.status === "pending") {
    setStatus(body.words, "pending");
  } else if (body.status === "refused") {
    clearInterval(timer); setStatus("REFUSED: " + body.reason.words, "refused");
    $("qr").innerHTML = "";
  } else if (body.status === "expired") {
    clearInterval(timer); setStatus("Expired", "expired");
  }
}
function reset() {
  clearInterval(timer); current = null; digits = "";
  $("keypad").hidden = false; $("payment").hidden = true; $("refusal").textContent = "";
  show();
}
document.querySelectorAll("[data-key]").forEach(
  (b) => b.addEventListener("click", () => press(b.dataset.key)));
$("charge").addEventListener("click", charge);
$("new-sale").addEventListener("click", reset);
document.addEventListener("keydown", (e) => {
  if (/^[0-9]$/.test(e.key)) press(e.key);
  else if (e.key === "Backspace") press("back");
  else if (e.key === "Escape") { if (current) reset(); else press("clear"); }
  else if (e.key === "Enter") charge();
});
show();
"""


def _head(title: str) -> str:
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport"'
            f' content="width=device-width,initial-scale=1"><title>{escape(title)}</title>'
            f"<style>{CSS}</style></head>")


def _header(merchant_id: str, fingerprint: str) -> str:
    return (f"<header><strong>{escape(shown(merchant_id))}</strong>"
            '<span>keyset <span id="fingerprint"'
            f' class="fp">{escape(fingerprint)}</span></span><nav><a href="./">Sale</a> · '
            f'<a href="report">Settlement</a></nav></header>')


def pos_page(merchant_id: str, currency: str, fingerprint: str) -> str:
    keys = "".join(f'<button type="button" data-key="{k}">{label}</button>' for k, label in
                   [("1", "1"), ("2", "2"), ("3", "3"), ("4", "4"), ("5", "5"), ("6", "6"),
                    ("7", "7"), ("8", "8"), ("9", "9"), ("00", "00"), ("0", "0"),
                    ("back", "⌫")])
    return (_head(f"{shown(merchant_id)} · point of sale")
            + f'<body data-currency="{escape(currency)}" data-exponent="{exponent(currency)}">'
            + _header(merchant_id, fingerprint)
            + '<main><section class="card" id="keypad"><div id="display"></div>'
            f'<div class="keys">{keys}</div>'
            '<button type="button" class="wide secondary" data-key="clear">Clear</button>'
            '<button type="button" class="wide" id="charge">Charge</button></section>'
            '<section class="card" id="payment" hidden><div id="pay-amount"'
            ' style="font-size:2rem;text-align:center"></div><div id="qr"></div>'
            '<div id="status"></div><div id="refusal"></div><p id="request-text"></p>'
            '<button type="button" class="wide secondary" id="new-sale">New sale</button>'
            f"</section></main><script>{POS_JS}</script></body></html>")


ROWS = [("accepted", "Accepted (all coins taken)"), ("pending", "Pending deposit"),
        ("deposited", "Deposited"), ("credited", "Credited by the bank"),
        ("refused", "Refused by the bank"), ("double_spent", "Double-spent"),
        ("compensated", "Compensated (double spends)"),
        ("unsold", "Taken online for refused payments")]


def report_page(rep: dict) -> str:
    cur = rep["currency"]
    body = "".join(
        f'<tr id="row-{name}"><td>{label}</td><td class="n">{rep[name]["count"]}</td>'
        f'<td class="n">{escape(fmt(rep[name]["value"], cur))}</td></tr>' for name, label in ROWS)
    totals = "".join(f'<tr><td>{escape(k)}</td><td class="n">{escape(fmt(v, cur))}</td></tr>'
                     for k, v in rep["totals"].items())
    d = rep["deadlines"]
    warn = ""
    if d["overdue"]["count"]:
        warn += (f'<p class="warn">{d["overdue"]["count"]} transcript(s) are past their deposit'
                 " deadline.</p>")
    if d["due_soon"]["count"]:
        warn += (f'<p class="warn">{d["due_soon"]["count"]} transcript(s) must be deposited'
                 f' within {d["warn_before_s"] // 3600 or 1} h.</p>')
    codes = ", ".join(f"{escape(k)}: {v}" for k, v in sorted(rep["refused_codes"].items()))
    pay = rep["payments"]
    return (_head(f"{shown(rep['merchant_id'])} · settlement") + "<body>"
            + _header(rep["merchant_id"], rep["keyset_fingerprint"])
            + '<main style="max-width:44rem"><section class="card"><h2>Settlement</h2>' + warn
            + f"<table><tr><th></th><th>coins</th><th>value</th></tr>{body}</table>"
            + (f"<p>Refused by the bank: {codes}</p>" if codes else "")
            + f"<h3>Totals</h3><table>{totals}</table><h3>Payments</h3><p>paid"
            f' {pay["paid"]["count"]} ({escape(fmt(pay["paid"]["value"], cur))}), open'
            f' {pay["open"]}, expired {pay["expired"]}, checking with the bank'
            f' {pay["pending"]["count"]}, refused {pay["declined"]}, refused attempts'
            f' {pay["refused"]["count"]}</p></section></main></body></html>')
