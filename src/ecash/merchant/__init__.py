"""The merchant terminal: signed payment requests, offline acceptance (online
above the floor limit), settlement at the bank, and a point-of-sale page.

    from ecash.merchant import Terminal, init_terminal
    t = init_terminal("shop.db", "https://bank.example", credential)
    envelope = t.create_request(1250)          # show request_to_text(envelope)
    receipt = t.accept(request_id, spends)     # or POST <pos_url> {"spends": [...]}
    # ... or Refusal (its .signed when ECASH-1 5.1 allows), or PaymentPending
    t.deposit(); t.report()
"""

from .errors import MerchantError, NotInitialised, PaymentPending, Refusal, RequestNotFound
from .setup import init_terminal, sync
from .store import TerminalStore, open_store
from .terminal import Terminal, TerminalConfig

__all__ = ["MerchantError", "NotInitialised", "PaymentPending", "Refusal", "RequestNotFound",
           "Terminal", "TerminalConfig", "TerminalStore", "init_terminal", "open_store", "sync"]
