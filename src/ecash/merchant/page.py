"""The point-of-sale pages' words, for code that imports them from here.

The pages themselves are in :mod:`ecash.merchant.pages` (one module per page);
the words are English msgids of the gettext catalogues (:mod:`.i18n`).
"""

from __future__ import annotations

from .pages import GENERAL_REFUSAL, PENDING_WORDS, REFUSAL_WORDS, ROWS, refusal_words

__all__ = ["GENERAL_REFUSAL", "PENDING_WORDS", "REFUSAL_WORDS", "ROWS", "refusal_words"]
