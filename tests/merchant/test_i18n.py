"""The till in English and Simplified Chinese: every word of the pages is in
the zh_CN catalogue, the language follows the switch, the cookie and the
browser's Accept-Language, and amounts read as the locale writes them."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

import ecash.merchant
from ecash.merchant import i18n
from ecash.merchant.pages.words import REFUSAL_WORDS, refusal_words

from ..bankkit import pay_request
from .kit import post_payment, serving

SOURCE = Path(ecash.merchant.__file__).parent
LITERAL = re.compile(r"\bN?_\(\s*\"((?:[^\"\\]|\\.)*)\"\s*\)")


def _extracted() -> set[str]:
    return {msg for _, _, msg, _, _ in extract_from_dir(
        str(SOURCE), method_map=[("**.py", "python")], keywords={"_": None, "N_": None})}


def test_every_word_of_the_pages_is_in_the_chinese_catalogue():
    extracted = _extracted()
    # a word written inside an f-string is invisible to extraction: it must be
    # listed in pages/words.py too
    in_code = {m for p in SOURCE.rglob("*.py") for m in LITERAL.findall(p.read_text())}
    assert in_code - extracted == set()
    with i18n.catalogue_path("zh_CN").open("rb") as f:
        catalog = read_po(f, locale="zh_CN")
    translated = {m.id: m.string for m in catalog if m.id}
    assert extracted - set(translated) == set()
    assert all(translated[m] and translated[m] != m for m in extracted)
    # the placeholders survive translation
    for msgid, text in translated.items():
        assert set(re.findall(r"\{\w+\}", msgid)) == set(re.findall(r"\{\w+\}", text)), msgid
    zh = i18n.gettext_for("zh_CN")
    assert zh("PAID") == "已付款" and zh("NOT PAID") == "未付款"
    assert all(refusal_words(code, zh) != refusal_words(code) for code in REFUSAL_WORDS)
    assert refusal_words("no_such_code", zh) == zh("The payment was not valid.")


def test_the_language_the_browser_asks_for():
    assert i18n.choose(None, None, "zh-CN,zh;q=0.9,en;q=0.8") == "zh_CN"
    assert i18n.choose(None, None, "fr-FR, en-GB;q=0.5, zh;q=0.4") == "en"
    assert i18n.choose(None, None, "de, zh-Hans;q=0.3") == "zh_CN"
    assert i18n.choose(None, None, "zh-TW") == "en"  # no Traditional catalogue yet
    assert i18n.choose(None, None, "en;q=0, zh") == "zh_CN"
    assert i18n.choose(None, None, None) == "en"
    assert i18n.choose("en", "zh_CN", "zh-CN") == "en"  # the switch first
    assert i18n.choose(None, "zh_CN", "en-US") == "zh_CN"  # then the cookie
    assert i18n.choose("xx", "bogus", "zh-cn") == "zh_CN"


def test_pages_and_answers_in_chinese(bank, terminal, holder):
    zh = {"accept-language": "zh-CN,zh;q=0.9"}
    with serving(terminal) as url:
        r = httpx.get(url + "/", headers=zh)
        assert '<html lang="zh-CN">' in r.text and r.headers["content-language"] == "zh-CN"
        assert "收款" in r.text and "每笔付款最多 ¥500.00（银行限额）。" in r.text
        assert httpx.get(url + "/report", headers=zh).text.count("结算") >= 1
        # the switch: ?lang= wins and is kept in a cookie
        with httpx.Client(base_url=url) as c:
            r = c.get("/", params={"lang": "en"}, headers=zh)
            assert '<html lang="en">' in r.text and c.cookies.get(i18n.COOKIE) == "en"
            assert '<html lang="en">' in c.get("/", headers=zh).text
        sale = httpx.post(f"{url}/api/requests", json={"amount_text": "20.48"},
                          headers=zh).json()
        assert sale["amount_text"] == "¥20.48" and sale["amount"] == 2048
        over = httpx.post(f"{url}/api/requests", json={"amount_text": "500.01"}, headers=zh)
        assert over.status_code == 400 and over.json()["code"] == "over_limit"
        assert over.json()["words"] == "超过银行的单笔付款限额：最多 ¥500.00。"
        en = httpx.post(f"{url}/api/requests", json={"amount_text": "1,000"})
        assert en.json()["words"] == ("Above the bank's limit for one payment: at most"
                                      " CN¥500.00.")
        bad = httpx.post(f"{url}/api/requests", json={"amount_text": "12.345"})
        assert bad.status_code == 400 and bad.json()["code"] == "bad_amount"
        env = terminal.store.request(bytes.fromhex(sale["request_id"]))
        wrong = pay_request(holder, holder.withdraw([2048 // 2]), env.request)
        assert post_payment(f"{url}/pay/{sale['request_id']}", wrong).status_code == 422
        state = httpx.get(f"{url}/api/requests/{sale['request_id']}", headers=zh).json()
        assert state["state"] == "refused"
        assert state["reason"]["words"] == "硬币总额与金额不符。"
