"""The preference centre in a real browser, end to end: headless Chromium (Debian's chromium and
chromium-driver) driven by Selenium, against `parcours serve`, the embedded broker and a
`parcours worker`.

A person opts in to push in the app and gets the near-store offer. Their link opens a page that
shows push on (read from the worker's ClickHouse) and the offer with its reason; they switch push
off and save; the next near-store moment is suppressed with `opt_out`. A tampered link gets 403.

chDB allows one process per directory, so the worker stops (drained) before the server reads
its ClickHouse, and starts again (same state) after the server stops; a ClickHouse server would
let both run together. Without the browser, the test skips with one line saying what is missing.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson
import pytest

from streams.embedded.broker import free_port
from streams.embedded.worker_process import WorkerProcess
from streams.moments.rules.loader import load_default
from tests.e2e.test_moments import _wait
from tests.e2e.test_worker import TOPICS, _produce, _read_topic

pytestmark = pytest.mark.e2e
PARIS = ZoneInfo("Europe/Paris")
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
IDS = {"device": "d-pc", "user": "u-pc"}
SECRET = "preference-centre-test-secret-0123456789"
AT_STORE = {"store_id": "paris-15", "lat": 48.8437, "lon": 2.2958, "tz": "Europe/Paris"}


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install '.[test]')"
    if not CHROMIUM or not DRIVER:
        return "no browser: apt-get install chromium chromium-driver"
    return None


def _event(event_id: str, when: datetime, type_: str, channel: str, props: dict,
           context: dict | None = None) -> bytes:
    return orjson.dumps({"event_id": event_id, "event_time": int(when.timestamp() * 1000),
                         "type": type_, "channel": channel, "ids": IDS,
                         "context": context or {"tz": "Europe/Paris"}, "properties": props})


def _browser(profile_dir):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile_dir}", "--lang=en-US"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(DRIVER), options=options)


class Server:
    """`parcours serve` as a process of its own."""

    def __init__(self, env: dict, log_path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env, "PARCOURS_PREFERENCES_URL": self.url}
        self.log_path = log_path

    def __enter__(self):
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "serve", "--port",
                                      str(self.port)], env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                if urllib.request.urlopen(f"{self.url}/healthz", timeout=2).status == 200:
                    return self
            except (urllib.error.URLError, ConnectionError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                pytest.fail(f"parcours serve did not start:\n{self.log_path.read_text()}")
            time.sleep(0.2)

    def link(self, identifier: str) -> str:
        done = subprocess.run([sys.executable, "-m", "streams.cli", "preferences", "link",
                               "--identifier", identifier], env=self.env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def __exit__(self, *_exc):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()


def _status(url: str) -> int:
    try:
        return urllib.request.urlopen(url, timeout=10).status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_switching_push_off_in_the_browser_suppresses_the_next_offer(kafka, tmp_path, ch_url):
    missing = _missing()
    if missing:
        pytest.skip(missing)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    kafka.create_topics({TOPICS.touchpoints: 2, TOPICS.stitch: 1, TOPICS.inventory: 1,
                         TOPICS.preferences: 1})
    url = ch_url()
    common = dict(app_id="e2e-centre", log_path=tmp_path / "worker.log")
    day = datetime(2026, 11, 10, tzinfo=PARIS)
    before = [_event("pc-1", day.replace(hour=10), "app_open", "app", {}),
              _event("pc-2", day.replace(hour=10, minute=1), "consent", "app",
                     {"channel": "push", "opt_in": True, "source": "app-onboarding"}),
              _event("pc-3", day.replace(hour=12), "geofence_enter", "store",
                     {"geofence_id": "gf-paris-15"}, AT_STORE),
              _event("pc-4", day.replace(hour=12, minute=30), "app_open", "app", {})]
    with WorkerProcess(kafka.url, url, tmp_path / "data", **common) as worker:
        asyncio.run(_produce(kafka.bootstrap, before))
        _wait(kafka, worker, ["triggers.push"], 1)
        _wait(kafka, worker, [TOPICS.stitched], len(before))
    # the worker stopped drained: its ClickHouse holds the consent and the offer
    (offer,) = [orjson.loads(r.value) for r in asyncio.run(_read_topic(kafka.bootstrap,
                                                                       "triggers.push"))]
    assert (offer["rule"], offer["event_id"]) == ("near_store_offer", "pc-3")

    env = {"PARCOURS_KAFKA_URL": kafka.url, "PARCOURS_CLICKHOUSE_URL": url,
           "PARCOURS_PREFERENCES_SECRET": SECRET}
    with Server(env, tmp_path / "serve.log") as server:
        link = server.link("user:u-pc")
        browser = _browser(tmp_path / "chromium")
        try:
            browser.get(link)
            assert browser.find_element(By.TAG_NAME, "h1").text == \
                "Your communication preferences"
            push = browser.find_element(By.ID, "channel-push")
            assert push.is_selected()  # the in-app opt-in, read from ClickHouse
            assert not browser.find_element(By.ID, "channel-email").is_selected()
            history = browser.find_element(By.ID, "messages").text
            description = next(r.description for r in load_default().rules
                               if r.id == "near_store_offer")
            assert f"You received this because: {description}" in history
            browser.find_element(By.CSS_SELECTOR, "label[for=channel-push]").click()
            assert not push.is_selected()
            browser.find_element(By.ID, "save").click()
            notice = WebDriverWait(browser, 20).until(
                ready.presence_of_element_located((By.ID, "notice")))
            assert notice.get_attribute("role") == "status" and "saved" in notice.text
            assert not browser.find_element(By.ID, "channel-push").is_selected()
            assert "/p/" in browser.current_url and "saved=1" in browser.current_url

            tampered = link[:-1] + ("A" if link[-1] != "A" else "B")
            browser.get(tampered)
            assert browser.find_element(By.TAG_NAME, "h1").text == "Link not valid"
            assert _status(tampered) == 403 and _status(link) == 200
        finally:
            browser.quit()

    # the save is preference records on the topic, keyed by the link's identifier
    saved = [orjson.loads(r.value) for r in asyncio.run(_read_topic(kafka.bootstrap,
                                                                    TOPICS.preferences))]
    push_off = [r for r in saved if r.get("channel") == "push"]
    assert [(r["ids"], r["opt_in"]) for r in push_off] == [({"user": "u-pc"}, False)]

    after = [_event("pc-5", day.replace(day=12, hour=12), "geofence_enter", "store",
                    {"geofence_id": "gf-paris-15"}, AT_STORE),
             _event("pc-6", day.replace(day=12, hour=12, minute=30), "app_open", "app", {})]
    with WorkerProcess(kafka.url, url, tmp_path / "data", **common) as worker:
        _wait(kafka, worker, [TOPICS.stitched], len(before) + len(saved))  # the save applied
        asyncio.run(_produce(kafka.bootstrap, after))
        _wait(kafka, worker, [TOPICS.suppressions], 1)
        held = [orjson.loads(r.value) for r in asyncio.run(_read_topic(kafka.bootstrap,
                                                                       TOPICS.suppressions))]
        pushes = asyncio.run(_read_topic(kafka.bootstrap, "triggers.push"))
    assert [(s["rule"], s["event_id"], s["reason"]) for s in held] == [
        ("near_store_offer", "pc-5", "opt_out")], worker.log_tail(40)
    assert {orjson.loads(r.value)["trigger_id"] for r in pushes} == {offer["trigger_id"]}
