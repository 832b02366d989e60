"""The till in a real headless browser (Debian's chromium and chromium-driver,
driven by Selenium; nothing is downloaded): every state of a sale with its
text and ARIA attributes, Cancel, the limit refusal, the Chinese page, the
customer's own payment text, the day close and the receipt. Each state is
photographed at 1024 px and 390 px wide into ``$ECASH_SCREENSHOTS`` (default:
a pytest temporary directory). One browser for the whole module. Skipped only
when chromedriver is missing outside CI."""

from __future__ import annotations

import datetime as dt
import os
import re
import struct
from pathlib import Path

import pytest

from ecash.merchant import TerminalConfig
from ecash.merchant.http import create_app
from ecash.merchant.pages.words import refusal_words
from ecash.merchant.requests import envelope_of, pay_url
from ecash.serving.threaded import ThreadedServer, free_port
from ecash.wallet.request_source import resolve_request
from ecash.wire.text import payment_to_text
from ecash.wire.uri import is_payment_uri

from ..bankkit import pay_request
from .kit import Switch, decompose, new_terminal, post_payment, serving, switched

CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM = Path("/usr/bin/chromium")
WIDTHS = {1024: 900, 390: 844}  # width: height of the screenshots' viewport

pytestmark = pytest.mark.skipif(
    not CHROMEDRIVER.exists() and not os.environ.get("CI"),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium"
           " chromium-driver)")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not fetch anything
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tmp_path_factory.mktemp("chromium-profile")
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--window-size=1024,900", "--lang=en-US",
                "--hide-scrollbars", f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"intl.accept_languages": "en-US,en"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)),
                              options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    where = os.environ.get("ECASH_SCREENSHOTS")
    path = Path(where) if where else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def shoot(browser, shots: Path, name: str) -> None:
    """The page as it is now at each width: a PNG exactly that wide."""
    for width, height in WIDTHS.items():
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1,
            "mobile": width < 600})
        path = shots / f"{name}-{width}.png"
        assert browser.save_screenshot(str(path))
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
        assert struct.unpack(">I", data[16:20])[0] == width, path
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def by_id(browser, element_id: str):
    from selenium.webdriver.common.by import By

    return browser.find_element(By.ID, element_id)


def waiter(browser):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, 15, poll_frequency=0.1)


def type_amount(browser, text: str) -> None:
    from selenium.webdriver.common.by import By

    for key in text:
        browser.find_element(By.CSS_SELECTOR, f'button[data-key="{key}"]').click()


def state(browser) -> str:
    return browser.execute_script("return document.body.dataset.state")


def wait_state(browser, name: str) -> None:
    waiter(browser).until(lambda d: state(d) == name)


def current(browser, t):
    """The sale on the screen, as the terminal stored it."""
    rid = bytes.fromhex(by_id(browser, "payment").get_attribute("data-request-id"))
    return envelope_of(t, t.store.request(rid))


def assert_live_status(browser) -> None:
    status = by_id(browser, "status")
    assert status.get_attribute("role") == "status"
    assert status.get_attribute("aria-live") == "polite"
    assert status.get_attribute("aria-atomic") == "true"


def new_sale(browser, amount: str) -> None:
    by_id(browser, "new-sale").click()
    type_amount(browser, amount)
    old = by_id(browser, "payment").get_attribute("data-request-id")
    by_id(browser, "charge").click()
    waiter(browser).until(lambda d: by_id(d, "payment").get_attribute("data-request-id")
                          not in (None, "", old) and state(d) == "waiting")


def test_every_state_of_a_sale(browser, shots, bank, holder, tmp_path):
    switch = Switch()
    t = new_terminal(bank, tmp_path / "t.db", name="front", bank_factory=switched(switch))
    with serving(t) as url:
        browser.get(url + "/")
        assert by_id(browser, "shop").text == "shop-1"
        assert "front" in by_id(browser, "terminal-name").text
        assert t.keys.fingerprint not in browser.page_source  # the shop, not a key hash
        type_amount(browser, "1234.5")
        assert by_id(browser, "display").text == "CN¥1,234.5"  # grouped as typed
        assert by_id(browser, "charge").get_attribute("disabled")  # above the limit
        assert by_id(browser, "amount-error").text == (
            "Above the bank's limit for one payment: at most CN¥500.00.")
        assert by_id(browser, "amount-error").get_attribute("role") == "alert"
        shoot(browser, shots, "limit")
        by_id(browser, "keypad").find_element("css selector", '[data-key="clear"]').click()
        type_amount(browser, "12.5")
        assert by_id(browser, "display").text == "CN¥12.5"
        assert not by_id(browser, "amount-error").text
        shoot(browser, shots, "entry")
        by_id(browser, "description").send_keys("2 coffees")
        by_id(browser, "charge").click()
        wait_state(browser, "waiting")
        assert_live_status(browser)
        assert by_id(browser, "status-title").text == "Waiting for payment"
        assert by_id(browser, "pay-amount").text == "CN¥12.50"
        assert by_id(browser, "pay-description").text == "2 coffees"
        assert browser.find_elements("css selector", "#qr svg")
        # no public URL: the QR holds the whole request, and the page says so
        assert by_id(browser, "qr").get_attribute("data-kind") == "offline"
        assert "For this till only" in by_id(browser, "qr-note").text
        assert re.fullmatch(r"Expires in (10:00|9:[0-5]\d)", by_id(browser, "countdown").text)
        shoot(browser, shots, "waiting")

        # the customer's wallet reads the QR's text and checks it
        resolved = resolve_request(by_id(browser, "qr").get_attribute("data-text"))
        env = resolved.envelope
        env.verify(bank.bank.master_public_key, now=int(bank.clock()))
        assert env.request.amount == 1250 and resolved.description == "2 coffees"

        # a bad payment decides the sale: NOT PAID, with the reason in our words
        bad = post_payment(pay_url(url, env.request.request_id),
                           pay_request(holder, holder.withdraw([1024]), env.request))
        assert bad.status_code == 422 and bad.json()["code"] == "amount_mismatch"
        wait_state(browser, "refused")
        assert by_id(browser, "status-title").text == "NOT PAID"
        assert by_id(browser, "status-detail").text == refusal_words("amount_mismatch")
        assert "amount_mismatch" not in by_id(browser, "payment").text
        assert by_id(browser, "status").get_attribute("class") == "refused"
        assert not browser.find_elements("css selector", "#qr svg")
        shoot(browser, shots, "not-paid")

        # above the floor limit while the bank is down: checking with the bank
        new_sale(browser, "204.8")
        env = current(browser, t)
        big = pay_request(holder, holder.withdraw(decompose(20480)), env.request)
        switch.down = True
        assert post_payment(pay_url(url, env.request.request_id), big).status_code == 202
        wait_state(browser, "pending")
        assert by_id(browser, "status-title").text == "Checking with the bank…"
        assert by_id(browser, "status-detail").text == "Do not hand over the goods yet."
        # a payment claimed the sale: no QR for another, no Cancel
        assert not browser.find_elements("css selector", "#qr svg")
        assert not by_id(browser, "cancel").is_displayed()
        assert_live_status(browser)
        shoot(browser, shots, "pending")

        switch.down = False  # the identical payment again: the receipt
        assert post_payment(pay_url(url, env.request.request_id), big).status_code == 200
        wait_state(browser, "paid")
        assert by_id(browser, "status-title").text == "PAID CN¥204.80"
        assert by_id(browser, "status").get_attribute("class") == "paid"
        assert by_id(browser, "status").value_of_css_property("background-color") == \
            "rgba(31, 122, 111, 1)"  # green
        assert not browser.find_elements("css selector", "#qr svg")
        assert not by_id(browser, "cancel").is_displayed()
        shoot(browser, shots, "paid")

        by_id(browser, "receipt-link").click()
        waiter(browser).until(lambda d: "/receipt/" in d.current_url)
        assert by_id(browser, "receipt-amount").text == "CN¥204.80"
        assert by_id(browser, "receipt-shop").text == "shop-1"
        assert by_id(browser, "receipt-coins").text == str(len(decompose(20480)))
        assert len(by_id(browser, "receipt-fingerprint").text.split()) == 4
        assert browser.find_elements("css selector", "#receipt-qr svg")
        shoot(browser, shots, "receipt")
    t.close()


def test_cancel_and_expiry(browser, shots, bank, holder, tmp_path):
    t = new_terminal(bank, tmp_path / "t.db", config=TerminalConfig(request_ttl_s=3))
    with serving(t) as url:
        browser.get(url + "/")
        type_amount(browser, "3")
        by_id(browser, "charge").click()
        wait_state(browser, "waiting")
        env = current(browser, t)
        by_id(browser, "cancel").click()
        wait_state(browser, "cancelled")
        assert by_id(browser, "status-title").text == "Cancelled"
        assert by_id(browser, "status-detail").text == "This request can no longer be paid."
        assert not browser.find_elements("css selector", "#qr svg")
        shoot(browser, shots, "cancelled")
        # a wallet that read the request before the cancel: refused, signed
        r = post_payment(pay_url(url, env.request.request_id),
                         pay_request(holder, holder.withdraw([2, 1]), env.request))
        assert r.status_code == 422 and r.json()["code"] == "request_cancelled"
        assert r.json()["refusal"]["code"] == "request_cancelled"

        # expiry on the page's own clock, from the lifetime the server states
        new_sale(browser, "4")
        assert browser.find_elements("css selector", "#qr svg")
        waiter(browser).until(lambda d: state(d) == "expired")
        assert not browser.find_elements("css selector", "#qr svg")  # gone at once
        assert by_id(browser, "status-title").text == "Expired"
        shoot(browser, shots, "expired")
    t.close()


def test_chinese_till_networked_customer_pays_and_day_close(browser, shots, bank, holder,
                                                            tmp_path):
    from selenium.webdriver.common.by import By

    t = new_terminal(bank, tmp_path / "t.db", name="前台")
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    with ThreadedServer(create_app(t, public_url=public), port=port) as url:
        browser.get(url + "/")
        browser.find_element(By.CSS_SELECTOR, '#languages a[data-lang="zh_CN"]').click()
        waiter(browser).until(
            lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN")
        assert by_id(browser, "charge").text == "收款"
        assert by_id(browser, "limit-note").text == "每笔付款最多 ¥500.00（银行限额）。"
        type_amount(browser, "600")
        assert by_id(browser, "amount-error").text == "超过银行的单笔付款限额：最多 ¥500.00。"
        shoot(browser, shots, "limit-zh")
        by_id(browser, "keypad").find_element(By.CSS_SELECTOR, '[data-key="clear"]').click()
        type_amount(browser, "20.48")
        by_id(browser, "description").send_keys("2 杯咖啡")
        by_id(browser, "charge").click()
        wait_state(browser, "waiting")
        assert by_id(browser, "status-title").text == "等待付款"
        assert by_id(browser, "pay-amount").text == "¥20.48"
        # a public URL: the QR is the short link a phone opens
        link = by_id(browser, "qr").get_attribute("data-text")
        assert by_id(browser, "qr").get_attribute("data-kind") == "uri"
        assert is_payment_uri(link) and len(link) < 120
        shoot(browser, shots, "waiting-zh")

        # the customer's phone cannot reach the till: it pays offline and the
        # cashier pastes the payment text it shows
        resolved = resolve_request(link)  # fetched from the till, checked against the hash
        assert resolved.description == "2 杯咖啡"
        text = payment_to_text(pay_request(holder, holder.withdraw(decompose(2048)),
                                           resolved.envelope.request))
        by_id(browser, "customer-pays").find_element(By.TAG_NAME, "summary").click()
        browser.execute_script("arguments[0].value = arguments[1]", by_id(browser,
                               "payment-text"), "\n".join(text[i:i + 64]
                                                          for i in range(0, len(text), 64)))
        shoot(browser, shots, "customer-pays-zh")
        by_id(browser, "submit-payment").click()
        wait_state(browser, "paid")
        assert by_id(browser, "status-title").text == "已付款 ¥20.48"
        shoot(browser, shots, "paid-zh")

        # a second sale, not paid by a wrong payment text: the reason in Chinese
        new_sale(browser, "1")
        by_id(browser, "customer-pays").find_element(By.TAG_NAME, "summary").click()
        by_id(browser, "payment-text").send_keys("ecpay1:not-a-payment")
        by_id(browser, "submit-payment").click()
        waiter(browser).until(lambda d: "一笔付款被拒绝" in by_id(d, "attempt").text)
        assert "not-a-payment" not in by_id(browser, "attempt").text
        shoot(browser, shots, "refused-attempt-zh")

        today = dt.datetime.fromtimestamp(t.now(), dt.UTC).date().isoformat()
        browser.get(f"{url}/day?date={today}")
        assert browser.find_element(By.TAG_NAME, "h1").text == f"{today} 日结"
        assert by_id(browser, "store-sales").text == "销售（已付款） 1 ¥20.48"
        assert by_id(browser, "store-waiting").text == "等待付款 1 ¥1.00"
        assert by_id(browser, "store-expired").text == "过期未付 0 ¥0.00"
        assert "前台" in browser.page_source
        shoot(browser, shots, "day-zh")
        browser.get(f"{url}/day?date={today}&lang=en")
        assert "CN¥20.48" in by_id(browser, "store-sales").text
        assert "Sales (paid)" in by_id(browser, "store-sales").text
        shoot(browser, shots, "day")
    t.close()
