"""The till's pages: server-rendered HTML in the reader's language, a little
vanilla JavaScript for the sale screen, print styles for the day close and
receipts."""

from __future__ import annotations

from .day import day_page
from .layout import Ctx
from .pos import pos_page
from .receipt import receipt_page
from .report import ROWS, report_page
from .words import GENERAL_REFUSAL, PENDING_WORDS, REFUSAL_WORDS, error_words, refusal_words

__all__ = ["GENERAL_REFUSAL", "PENDING_WORDS", "REFUSAL_WORDS", "ROWS", "Ctx", "day_page",
           "error_words", "pos_page", "receipt_page", "refusal_words", "report_page"]
