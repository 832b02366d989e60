"use strict";
// The sale screen. Amounts after the entry are the server's text (one money
// module); Intl.NumberFormat only echoes the digits as they are typed.
const B = document.body.dataset;
const EXP = Number(B.exponent), CUR = B.currency, LOCALE = B.locale;
const LIMIT = BigInt(B.limit);
const W = JSON.parse(document.getElementById("words").textContent);
const FINAL = ["paid", "refused", "expired", "cancelled"];
const $ = (id) => document.getElementById(id);
let entry = "", sale = null, poller = null, ticker = null, deadline = 0, lastAttempt = "";

function minor(text) {  // the typed major units as minor units (BigInt)
  const [whole, frac = ""] = text.split(".");
  return BigInt(whole || "0") * 10n ** BigInt(EXP) + BigInt((frac + "0".repeat(EXP)).slice(0, EXP) || "0");
}
function shownEntry() {
  const [whole, frac] = entry.split(".");
  const decimals = frac === undefined ? 0 : frac.length;
  const nf = new Intl.NumberFormat(LOCALE, {style: "currency", currency: CUR,
    minimumFractionDigits: decimals, maximumFractionDigits: Math.max(decimals, 0)});
  let out = nf.format(Number(whole || "0") + (decimals ? Number("0." + frac) : 0));
  if (frac === "") out += nf.formatToParts(1.5).find((p) => p.type === "decimal").value;
  return out;
}
function showEntry() {
  $("display").textContent = shownEntry();
  const value = minor(entry);
  const over = value > LIMIT;
  $("amount-error").textContent = over ? W.over_limit.replace("{limit}", B.limitText) : "";
  $("charge").disabled = value <= 0n || over;
}
function press(k) {
  if (sale) return;
  $("amount-error").textContent = "";
  if (k === "clear") entry = "";
  else if (k === "back") entry = entry.slice(0, -1);
  else if (k === ".") { if (EXP > 0 && !entry.includes(".")) entry = (entry || "0") + "."; }
  else {
    const next = (entry + k).replace(/^0+(?=\d)/, "");
    const [whole, frac] = next.split(".");
    if (whole.length <= 12 && (frac === undefined || frac.length <= EXP)) entry = next;
  }
  showEntry();
}
function setState(state, detail) {
  document.body.dataset.state = state;
  const st = $("status");
  st.className = state;
  $("status-title").textContent = state === "paid" ? W.paid + " " + sale.amount_text : W[state];
  $("status-detail").textContent = detail !== undefined ? detail : (W[state + "_detail"] || "");
  if (FINAL.includes(state)) finish(state);
  else if (state === "pending") {  // a payment claimed the sale: no other, no cancel
    clearInterval(ticker); ticker = null;
    $("qr").innerHTML = ""; $("qr-block").hidden = true;
    $("cancel").hidden = true; $("customer-pays").hidden = true;
  }
}
function finish(state) {
  clearInterval(poller); clearInterval(ticker); poller = ticker = null;
  $("qr").innerHTML = ""; $("qr-block").hidden = true;
  $("cancel").hidden = true; $("customer-pays").hidden = true; $("attempt").textContent = "";
  $("new-sale").hidden = false;
  if (state === "paid") {
    $("receipt-link").href = "/receipt/" + sale.request_id; $("receipt-link").hidden = false;
  }
}
function show(body) {  // a status answer from the server
  if (!sale || FINAL.includes(document.body.dataset.state)) return;
  if (body.refusal && body.status === "open") {
    const key = body.refusal.at_ms + ":" + body.refusal.count;
    if (key !== lastAttempt) {
      lastAttempt = key;
      $("attempt").textContent = W.attempt.replace("{words}", body.refusal.words);
    }
  }
  if (body.state === "waiting") return;
  if (body.state === "refused") setState("refused", body.reason.words);
  else setState(body.state);
}
function tick() {
  const left = deadline - Date.now();
  if (left <= 0) { setState("expired"); return; }
  const s = Math.ceil(left / 1000);
  $("countdown").textContent = W.expires_in.replace(
    "{time}", Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0"));
}
async function api(path, body) {
  const init = body === undefined ? {} : {method: "POST",
    headers: {"content-type": "application/json"}, body: JSON.stringify(body)};
  const r = await fetch(path, init);
  return {ok: r.ok, status: r.status, body: await r.json()};
}
async function charge() {
  if (sale || $("charge").disabled) return;
  $("charge").disabled = true;
  const desc = $("description") ? $("description").value : "";
  let r;
  try { r = await api("/api/requests", {amount_text: entry, description: desc}); }
  catch (e) { $("amount-error").textContent = W.unreachable; showEntry(); return; }
  if (!r.ok) { showEntry(); $("amount-error").textContent = r.body.words || r.body.detail; return; }
  sale = r.body; lastAttempt = "";
  deadline = Date.now() + sale.lifetime_ms;  // the till's clock, from the stated lifetime
  $("keypad").hidden = true; $("payment").hidden = false;
  $("payment").dataset.requestId = sale.request_id;
  $("pay-amount").textContent = sale.amount_text;
  $("pay-description").textContent = sale.description || "";
  $("qr").innerHTML = sale.svg; $("qr").dataset.kind = sale.qr_kind;
  $("qr").dataset.text = sale.qr_text; $("qr-block").hidden = false;
  $("cancel").hidden = false; $("customer-pays").hidden = false; $("customer-pays").open = false;
  $("new-sale").hidden = true; $("receipt-link").hidden = true;
  $("payment-text").value = ""; $("attempt").textContent = "";
  setState("waiting");
  tick();
  ticker = setInterval(tick, 250);
  poller = setInterval(poll, 500);
}
async function poll() {
  if (!sale) return;
  try { show((await api("/api/requests/" + sale.request_id)).body); } catch (e) { /* next time */ }
}
async function cancelSale() {
  if (!sale) return;
  const r = await api("/api/requests/" + sale.request_id + "/cancel", {});
  if (r.ok) { show(r.body); } else { $("attempt").textContent = r.body.words || r.body.detail; poll(); }
}
async function takePayment() {
  if (!sale) return;
  const text = $("payment-text").value;
  if (!text.trim()) return;
  $("submit-payment").disabled = true;  // the bank may take a few seconds above the floor limit
  try {
    const r = await api("/api/requests/" + sale.request_id + "/payment", {text: text});
    show(r.body.sale || r.body);
  } catch (e) {
    $("attempt").textContent = W.unreachable;
  } finally {
    $("submit-payment").disabled = false;
  }
}
function reset() {
  clearInterval(poller); clearInterval(ticker); poller = ticker = null;
  sale = null; entry = ""; document.body.dataset.state = "entry";
  $("keypad").hidden = false; $("payment").hidden = true;
  if ($("description")) $("description").value = "";
  showEntry();
}
document.querySelectorAll("[data-key]").forEach(
  (b) => b.addEventListener("click", () => press(b.dataset.key)));
$("charge").addEventListener("click", charge);
$("new-sale").addEventListener("click", reset);
$("cancel").addEventListener("click", cancelSale);
$("submit-payment").addEventListener("click", takePayment);
document.addEventListener("keydown", (e) => {
  if (e.target.closest && e.target.closest("input,textarea")) {
    if (e.key === "Enter" && e.target.id === "description") charge();
    return;
  }
  if (/^[0-9]$/.test(e.key)) press(e.key);
  else if (e.key === "." || e.key === ",") press(".");
  else if (e.key === "Backspace") press("back");
  else if (e.key === "Escape") { if (sale && FINAL.includes(document.body.dataset.state)) reset(); else if (!sale) press("clear"); }
  else if (e.key === "Enter") charge();
});
showEntry();
