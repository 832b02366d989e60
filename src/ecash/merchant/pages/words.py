"""What the till says, in English: the msgids of the gettext catalogues.

Why codes never reach the cashier: a refusal's code is for programs and a
decoder's message may be text a payer chose; the cashier reads our own words
for our own codes (a code we do not know gets the general words), in the
page's language. ``N_`` marks a text for the catalogue without translating it
(it is translated where it is shown, in the reader's language).
"""

from __future__ import annotations

from collections.abc import Callable

Gettext = Callable[[str], str]


def N_(text: str) -> str:
    """Mark ``text`` for extraction into the catalogue; translated later."""
    return text


def english(text: str) -> str:
    return text


PENDING_WORDS = N_("Checking with the bank…")

REFUSAL_WORDS = {
    "amount_mismatch": N_("The coins do not add up to the amount."),
    "currency_mismatch": N_("The coins are in another currency."),
    "wrong_merchant": N_("The payment is for another shop."),
    "request_mismatch": N_("The payment answers another sale."),
    "unknown_key": N_("The coins are not from our bank's current keys."),
    "past_spend_deadline": N_("The coins are too old to be taken."),
    "duplicate_coin": N_("The same coin was sent twice."),
    "already_accepted": N_("A coin of this payment was taken before."),
    "already_paid": N_("This sale was already paid."),
    "already_refused": N_("This sale refused an earlier payment; start a new sale."),
    "other_payment_pending": N_("Another payment for this sale is being checked with the"
                                " bank."),
    "request_expired": N_("The sale timed out; start a new sale."),
    "request_cancelled": N_("The cashier cancelled this sale."),
    "bank_refused": N_("The bank refused the coins."),
    "bank_error": N_("The bank did not take the payment."),
    "empty_payment": N_("The payment had no coins."),
    "too_many_coins": N_("The payment had too many coins."),
    "spend_equation": N_("A coin's signature does not check out."),
}
GENERAL_REFUSAL = N_("The payment was not valid.")

# why the till would not start a sale or take a step, by code
SALE_ERROR_WORDS = {
    "bad_amount": N_("That is not an amount. Type digits, such as 12.50."),
    "over_limit": N_("Above the bank's limit for one payment: at most {limit}."),
    "bad_description": N_("The description has characters a wallet cannot show. Use"
                          " letters, digits and punctuation (at most 140)."),
    "certificate_expired": N_("The till's certificate has expired: connect to the bank and"
                              " sync the till."),
    "cannot_cancel": N_("This sale is decided already; it cannot be cancelled."),
    "unknown_request": N_("This sale is not known at this till."),
    "not_paid": N_("This sale is not paid: there is no receipt."),
    "bad_date": N_("That is not a date. Use the form 2026-12-03."),
}
GENERAL_ERROR = N_("The till could not do that. Try again.")


def refusal_words(code: str, _: Gettext = english) -> str:
    """Our words for a refusal ``code``, in the language of ``_``."""
    return _(REFUSAL_WORDS.get(code, GENERAL_REFUSAL))


def error_words(code: str, _: Gettext = english, **values: str) -> str:
    return _(SALE_ERROR_WORDS.get(code, GENERAL_ERROR)).format(**values)

# Words the page modules use inside f-strings, where Python 3.11's tokenizer hides
# them from message extraction: listed here so that extraction (keyword N_) finds
# them. tests/merchant/test_i18n.py fails when one is missing.
IN_TEMPLATES = (
    N_("Bank keys"),
    N_("Cancel sale"),
    N_("Charge"),
    N_("Clear"),
    N_("Customer pays from their side"),
    N_("Day"),
    N_("Delete last digit"),
    N_("Language"),
    N_("New sale"),
    N_("Pages"),
    N_("Payment code"),
    N_("Payments"),
    N_("Print"),
    N_("Receipt"),
    N_("Receipt code"),
    N_("Sale"),
    N_("Settlement"),
    N_("Show"),
    N_("State"),
    N_("Take this payment"),
    N_("The customer’s payment text"),
    N_("The whole shop"),
    N_("Time"),
    N_("Times are in UTC; the day runs from 00:00 to 24:00 UTC."),
    N_("Totals"),
    N_("Value"),
    N_("What is being bought (optional)"),
    N_("e.g. 2 coffees"),
)
