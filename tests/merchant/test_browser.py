"""The point-of-sale page in a real headless browser (Debian's chromium and
chromium-driver, driven by Selenium; nothing is downloaded): the cashier keys
in an amount, a wallet pays the request shown through its pos_url, the page
turns to "refused" (in our words), "checking with the bank" or "paid".
Skipped only when chromedriver is missing outside CI."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from ecash.wire.text import request_from_text

from ..bankkit import pay_request
from .kit import decompose, post_payment, serving

CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(
    not CHROMEDRIVER.exists() and not os.environ.get("CI"),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium"
           " chromium-driver)")


@pytest.fixture
def browser(tmp_path, monkeypatch):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must not fetch anything

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--window-size=600,1000",
                f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)),
                              options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def test_keypad_qr_and_paid(browser, bank, holder, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    from ecash.merchant.page import refusal_words

    from .kit import Switch, new_terminal, switched

    switch = Switch()
    t = new_terminal(bank, tmp_path / "t.db", bank_factory=switched(switch))
    wait = WebDriverWait(browser, 15)
    coins = holder.withdraw(decompose(1250))
    with serving(t) as url:
        browser.get(url + "/")
        assert browser.find_element(By.ID, "fingerprint").text == t.keys.fingerprint
        for key in ("1", "2", "5", "0"):
            browser.find_element(By.CSS_SELECTOR, f'button[data-key="{key}"]').click()
        assert browser.find_element(By.ID, "display").text == "12.50 CNY"
        browser.find_element(By.ID, "charge").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "request-text"), "ecreq1:"))
        assert browser.find_elements(By.CSS_SELECTOR, "#qr svg")
        assert "Waiting" in browser.find_element(By.ID, "status").text
        browser.save_screenshot(str(tmp_path / "waiting.png"))

        # the wallet reads the request (here from the page's text form) and checks it
        env = request_from_text(browser.find_element(By.ID, "request-text").text)
        env.verify(bank.bank.master_public_key, now=int(bank.clock()))
        assert env.request.amount == 1250 and env.request.currency == "CNY"
        assert env.pos_url == f"{url}/pay/{env.request.request_id.hex()}"

        # a bad payment: the page shows why it was refused, in our words; the refusal
        # decided the sale (ECASH-1 5.1)
        bad = post_payment(env.pos_url, pay_request(holder, coins[1:], env.request))
        assert bad.status_code == 422 and bad.json()["code"] == "amount_mismatch"
        words = refusal_words("amount_mismatch")
        wait.until(ec.text_to_be_present_in_element((By.ID, "refusal"), words))
        wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "REFUSED"))
        assert browser.find_element(By.ID, "status").get_attribute("class") == "refused"

        # a new sale above the floor limit while the bank is down: checking with the bank
        browser.find_element(By.ID, "new-sale").click()
        amount = 16384 + 4096
        assert amount > t.keys.policy.floor_limit
        for key in str(amount):
            browser.find_element(By.CSS_SELECTOR, f'button[data-key="{key}"]').click()
        browser.find_element(By.ID, "charge").click()
        wait.until(lambda d: d.find_element(By.ID, "request-text").get_attribute(
            "data-request-id") not in (None, "", env.request.request_id.hex()))
        env = request_from_text(browser.find_element(By.ID, "request-text").text)
        big = pay_request(holder, holder.withdraw(decompose(amount)), env.request)
        switch.down = True
        assert post_payment(env.pos_url, big).status_code == 202
        wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "Checking with the bank"))
        assert browser.find_element(By.ID, "status").get_attribute("class") == "pending"
        browser.save_screenshot(str(tmp_path / "pending.png"))

        switch.down = False  # the identical payment again: the receipt
        ok = post_payment(env.pos_url, big)
        assert ok.status_code == 200, ok.text
        wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "PAID"))
        assert browser.find_element(By.ID, "status").get_attribute("class") == "paid"
        browser.save_screenshot(str(tmp_path / "paid.png"))

        browser.find_element(By.ID, "new-sale").click()
        assert browser.find_element(By.ID, "display").text == "0.00 CNY"

        browser.get(url + "/report")
        assert "204.80 CNY" in browser.find_element(By.ID, "row-accepted").text
        assert browser.find_element(By.ID, "fingerprint").text == t.keys.fingerprint
        browser.save_screenshot(str(tmp_path / "report.png"))
        assert httpx.get(f"{url}/api/report").json()["accepted"]["value"] == amount
    t.close()
