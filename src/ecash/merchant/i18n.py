"""The till's languages: English (the source text) and Simplified Chinese.

Why gettext catalogues: translators work on ``.po`` files with the usual tools,
and a missing translation falls back to the English text instead of breaking
the page. The ``.po`` files are committed under ``locale/``; the binary ``.mo``
form is compiled in memory when a catalogue is first used (Babel's
``read_po``/``write_mo``), so no build step can forget it.

The language comes from, in order: ``?lang=`` (the page's switch, then kept in
a cookie), the cookie, the browser's ``Accept-Language``; English otherwise.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from importlib.resources import files

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LANGUAGES = ("en", "zh_CN")
DEFAULT = "en"
COOKIE = "ecash_lang"
# the Babel locale each language formats numbers, money and dates with
FORMAT_LOCALE = {"en": "en_US", "zh_CN": "zh_CN"}
# what the page's <html lang> says (BCP 47)
HTML_LANG = {"en": "en", "zh_CN": "zh-CN"}
# the switch shows each language in its own words
NATIVE_NAME = {"en": "English", "zh_CN": "中文"}
_TRADITIONAL = ("zh-tw", "zh-hk", "zh-mo", "zh-hant")


def catalogue_path(lang: str):
    """The committed ``.po`` file of ``lang`` (a Traversable)."""
    return files("ecash.merchant") / "locale" / lang / "LC_MESSAGES" / "messages.po"


@functools.cache
def translations(lang: str) -> NullTranslations:
    """The catalogue of ``lang``, compiled from its ``.po`` once per process."""
    if lang == DEFAULT or lang not in LANGUAGES:
        return NullTranslations()
    with catalogue_path(lang).open("rb") as f:
        catalog = read_po(f, locale=lang)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


def gettext_for(lang: str) -> Callable[[str], str]:
    return translations(lang).gettext


def normalise(tag: str | None) -> str | None:
    """A language tag (``zh-CN``, ``zh_cn``, ``en-GB``, ``zh``) as one of
    :data:`LANGUAGES`, or None when the till does not speak it."""
    if not tag:
        return None
    t = tag.strip().lower().replace("_", "-")
    if t == "zh" or (t.startswith("zh-") and not t.startswith(_TRADITIONAL)):
        return "zh_CN"
    if t == "en" or t.startswith("en-"):
        return "en"
    return None


def from_accept_language(header: str | None) -> str | None:
    """The best language of an ``Accept-Language`` header that the till speaks."""
    ranked = []
    for i, part in enumerate((header or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        for p in params.split(";"):
            name, _, value = p.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if tag and q > 0:
            ranked.append((-q, i, tag))
    for _, _, tag in sorted(ranked):
        lang = normalise(tag)
        if lang:
            return lang
    return None


def choose(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    """The page's language: the switch, then the cookie, then the browser's."""
    return (normalise(query) or normalise(cookie) or from_accept_language(accept_language)
            or DEFAULT)
