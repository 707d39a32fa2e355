"""The preference centre over HTTP, without a browser: every refusal, CSRF, rate limits, bodies
that are not forms, a fuzzed form body, and what the logs hold.

The app is the real one (streams/centre/app.py) on a local port; the person's stored state and
the topic are stand-ins (tests/unit/centre/server.py): the browser test runs it against the
embedded broker and a worker."""
from __future__ import annotations

import logging
import re
import time
from urllib.parse import urlencode

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.centre.choices import CHANNELS, FORM_FIELDS, MAX_PER_DAY, TOPICS
from streams.centre.limits import RateLimiter
from streams.centre.state import Pending, Person
from streams.centre.tokens import sign
from tests.unit.centre import server
from tests.unit.cli.test_cli import one_line_error, run

EMAIL = "email:" + "e" * 64
FORM_TYPE = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def centre():
    running, stop = server.start()
    yield running
    stop()


@pytest.fixture(autouse=True)
def _nothing_published_yet(centre):
    centre.published.clear()
    centre.people.by_identifier.clear()
    centre.centre.pending = Pending()


def _link(identifier=EMAIL, ttl=3600, secret=server.SECRET) -> str:
    return sign(identifier, int(time.time()) + ttl, secret)


def _bad_links() -> dict[str, str | None]:
    good = _link()
    version, payload, signature = good.split(".")
    other = _link("email:" + "f" * 64).split(".")[1]
    return {
        "missing": None,
        "malformed": "not-a-token",
        "expired": sign(EMAIL, int(time.time()) - 1, server.SECRET),
        "another secret": _link(secret=b"another-secret-of-forty-characters!!!!!"),
        "another person under a valid signature": f"{version}.{other}.{signature}",
        "altered signature": good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
    }


def _open(centre, token: str, lang: str = "") -> tuple[str, str]:
    """(cookie, csrf) of the page at `token`."""
    status, headers, body = centre.request("GET", f"/p/{token}{lang}")
    assert status == 200, body
    csrf = re.search(r'name="csrf" value="([^"]+)"', body.decode()).group(1)
    return headers["Set-Cookie"].split(";")[0], csrf


def _form(csrf: str, *channels: str, quiet=("22:00", "07:00"), most="2", topics=()) -> str:
    return urlencode([("csrf", csrf), *(("channel", c) for c in channels),
                      ("quiet_start", quiet[0]), ("quiet_end", quiet[1]), ("max_per_day", most),
                      *(("topic", t) for t in topics)])


def test_a_saved_form_becomes_preference_records_and_the_page_shows_it(centre):
    token = _link()
    cookie, csrf = _open(centre, token)
    status, headers, _ = centre.request("POST", f"/p/{token}", _form(csrf, "email", "app",
                                                                     topics=["electric"]),
                                        {**FORM_TYPE, "Cookie": cookie})
    assert status == 303 and headers["Location"] == f"/p/{token}?saved=1&lang=en"
    records = [(topic, key, orjson.loads(value)) for topic, key, value in centre.published]
    assert {topic for topic, _k, _v in records} == {"preferences"}
    assert {key for _t, key, _v in records} == {EMAIL.encode()}
    consent = {r["channel"]: r["opt_in"] for _t, _k, r in records if "channel" in r}
    assert consent == {ch: ch in ("email", "app") for ch in CHANNELS}
    assert [r["traits"] for _t, _k, r in records if "traits" in r] == [{"topics": ["electric"]}]
    # read your writes: the page shows the save before ClickHouse holds it
    status, _h, body = centre.request("GET", headers["Location"], headers={"Cookie": cookie})
    page = body.decode()
    assert 'role="status"' in page
    ticked = re.findall(r'value="(\w+)" id="(?:channel|topic)-\w+" checked', page)
    assert ticked == ["email", "app", "electric"]
    assert 'value="22:00"' in page and 'value="2"' in page


def test_the_page_speaks_french(centre):
    _status, _h, body = centre.request("GET", f"/p/{_link()}", headers={
        "Accept-Language": "fr-FR,fr;q=0.9"})
    assert '<html lang="fr">' in body.decode() and "Vos préférences" in body.decode()
    _status, _h, body = centre.request("GET", f"/p/{_link()}?lang=en",
                                       headers={"Accept-Language": "fr"})
    assert '<html lang="en">' in body.decode()


def test_every_bad_link_gets_the_same_403_on_every_route(centre):
    centre.people.by_identifier[EMAIL] = Person([], [])  # the person exists: nothing tells
    answers = {}
    for why, token in _bad_links().items():
        path = "/p/" if token is None else f"/p/{token}"
        auth = {} if token is None else {"Authorization": f"Bearer {token}"}
        got = (centre.request("GET", path),
               centre.request("POST", path, "csrf=x", FORM_TYPE),
               centre.request("GET", "/api/v1/preferences", headers=auth),
               centre.request("PUT", "/api/v1/preferences", b'{"channels": {"push": false}}',
                              {**auth, "Content-Type": "application/json"}))
        if token is None:  # no token in the path: no page route at all
            assert got[0][0] == got[1][0] == 404
            got = got[2:]
        assert all(status == 403 for status, _h, _b in got), (why, [g[0] for g in got])
        answers[why] = [got[-2][2], got[-1][2]] + ([got[0][2]] if token is not None else [])
    assert centre.published == []
    api = {tuple(bodies[:2]) for bodies in answers.values()}
    assert api == {(b'{"error":"forbidden"}', b'{"error":"forbidden"}')}
    pages = {bodies[2] for bodies in answers.values() if len(bodies) == 3}
    assert len(pages) == 1 and b"not valid" in pages.pop()


def test_a_form_without_its_csrf_token_is_refused(centre):
    token = _link()
    cookie, csrf = _open(centre, token)
    other_cookie, other_csrf = _open(centre, _link("user:u-2"))
    attempts = [
        (_form(csrf, "push"), {}),  # no cookie
        (_form("forged", "push"), {"Cookie": cookie}),
        (_form(other_csrf, "push"), {"Cookie": other_cookie}),  # another link's pair
        (_form(csrf, "push"), {"Cookie": cookie, "Origin": "https://evil.example"}),
        (_form(csrf, "push"), {"Cookie": "pc_nonce=" + "0" * 32}),
    ]
    for body, headers in attempts:
        status, _h, _b = centre.request("POST", f"/p/{token}", body, {**FORM_TYPE, **headers})
        assert status == 403, headers
    assert centre.published == []
    same = {"Cookie": cookie, "Origin": centre.url}
    assert centre.request("POST", f"/p/{token}", _form(csrf, "push"),
                          {**FORM_TYPE, **same})[0] == 303


def test_bodies_that_are_not_the_form_are_refused(centre):
    token = _link()
    cookie, csrf = _open(centre, token)
    with_cookie = {**FORM_TYPE, "Cookie": cookie}
    assert centre.request("POST", f"/p/{token}", _form(csrf), {"Cookie": cookie,
                          "Content-Type": "application/json"})[0] == 415
    assert centre.request("POST", f"/p/{token}", "x=" + "a" * 20_000, with_cookie)[0] == 413
    status, _h, body = centre.request("POST", f"/p/{token}", _form(csrf) + "&admin=1",
                                      with_cookie)
    assert status == 400 and b'role="alert"' in body and b"admin" not in body
    auth = {"Authorization": f"Bearer {token}"}
    assert centre.request("PUT", "/api/v1/preferences", b"{}", auth)[0] == 415
    for body in (b"not json", b"[]", b'{"channels": {"push": "no"}}', b'{"admin": true}'):
        status, _h, answer = centre.request("PUT", "/api/v1/preferences", body,
                                            {**auth, "Content-Type": "application/json"})
        assert status == 400 and b"error" in answer, body
    assert centre.published == []


def test_the_api_reads_and_changes_choices(centre):
    token = _link()
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    status, _h, body = centre.request("GET", "/api/v1/preferences", headers=auth)
    assert status == 200
    assert orjson.loads(body)["choices"]["channels"]["push"] is False
    status, _h, body = centre.request("PUT", "/api/v1/preferences",
                                      b'{"channels": {"push": true}, "max_per_day": 1}', auth)
    assert status == 200 and orjson.loads(body)["choices"]["max_per_day"] == 1
    status, _h, body = centre.request("GET", "/api/v1/preferences", headers=auth)
    assert orjson.loads(body)["choices"]["channels"]["push"] is True
    assert len(centre.published) == len(CHANNELS) + 1


def test_every_answer_carries_the_security_headers(centre):
    for path in (f"/p/{_link()}", "/p/bad", "/api/v1/preferences", "/nowhere"):
        _status, headers, _b = centre.request("GET", path)
        assert headers["Referrer-Policy"] == "same-origin"
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert headers["Cache-Control"] == "no-store"
        assert headers["X-Content-Type-Options"] == "nosniff"


def test_requests_past_the_limits_get_429():
    running, stop = server.start(per_link=RateLimiter(60, 3), per_address=RateLimiter(60, 8))
    try:
        token = _link()
        statuses = [running.request("GET", f"/p/{token}")[0] for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        # another link from the same address: its own budget, until the address runs out
        others = [running.request("GET", f"/p/{_link('user:u-%d' % i)}")[0] for i in range(5)]
        assert others[:4] == [200] * 4 and others[4] == 429
        status, headers, _b = running.request("GET", "/api/v1/preferences",
                                              headers={"Authorization": f"Bearer {token}"})
        assert status == 429 and headers["Retry-After"] == "60"
        assert running.request("GET", "/healthz")[0] == 200  # probes are not limited
    finally:
        stop()


def test_a_save_the_broker_does_not_take_says_so():
    running, stop = server.start(fail_publish=True)
    try:
        token = _link()
        cookie, csrf = _open(running, token)
        status, _h, body = running.request("POST", f"/p/{token}", _form(csrf, "push"),
                                           {**FORM_TYPE, "Cookie": cookie})
        assert status == 503 and b'role="alert"' in body
        status, _h, _b = running.request("PUT", "/api/v1/preferences", b'{"max_per_day": 1}',
                                         {"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/json"})
        assert status == 503
    finally:
        stop()


def test_no_personal_data_in_the_logs(centre, caplog):
    caplog.set_level(logging.DEBUG)
    token = _link()
    cookie, csrf = _open(centre, token)
    centre.request("POST", f"/p/{token}", _form(csrf, "push"), {**FORM_TYPE, "Cookie": cookie})
    centre.request("GET", f"/p/{token[:-3]}abc")
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "/p/{token}" in text  # the access log names the route...
    assert "e" * 64 not in text and token.split(".")[1] not in text  # ...never the person


_FIELD = st.one_of(st.sampled_from(sorted(FORM_FIELDS)), st.text(max_size=12))
_VALUE = st.one_of(st.sampled_from([*CHANNELS, *TOPICS, "", "22:00", "07:00", "0",
                                    str(MAX_PER_DAY), "fr", "en", "on"]),
                   st.text(max_size=70), st.integers(-5, 99).map(str))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(_FIELD, _VALUE), max_size=14), st.booleans())
def test_a_fuzzed_form_body_is_refused_or_saved_with_known_values_only(centre, pairs, valid):
    token = _link()
    cookie, csrf = _open(centre, token)
    centre.published.clear()
    fields = [("csrf", csrf)] * valid + [(k, v) for k, v in pairs if not (k == "csrf" and valid)]
    status, _h, body = centre.request("POST", f"/p/{token}", urlencode(fields),
                                      {**FORM_TYPE, "Cookie": cookie})
    assert status in (303, 400, 403), (status, body[:200])
    if status != 303:
        assert centre.published == []
        return
    for _topic, _key, value in centre.published:
        record = orjson.loads(value)
        assert set(record) <= {"ids", "channel", "opt_in", "quiet_hours", "max_per_day",
                               "updated_at", "traits"}
        if "channel" in record:
            assert record["channel"] in CHANNELS and type(record["opt_in"]) is bool
            assert 0 <= record["max_per_day"] <= MAX_PER_DAY
            assert re.fullmatch(r"(\d\d:\d\d-\d\d:\d\d)?", record["quiet_hours"])
        else:
            assert set(record["traits"]["topics"]) <= set(TOPICS)


def test_the_server_refuses_to_start_without_a_secret():
    env = {"PARCOURS_PREFERENCES_SECRET": ""}
    one_line_error(run("serve", env=env), "PARCOURS_PREFERENCES_SECRET is not set")
    one_line_error(run("serve", env={"PARCOURS_PREFERENCES_SECRET": "short"}), "at least 32")
    one_line_error(run("preferences", "link", "--identifier", "user:u-1", env=env),
                   "PARCOURS_PREFERENCES_SECRET")
    secret = {"PARCOURS_PREFERENCES_SECRET": "k" * 40, "PARCOURS_PREFERENCES_URL": "ftp://x"}
    one_line_error(run("serve", env=secret), "PARCOURS_PREFERENCES_URL")


def test_a_printed_link_opens_the_page(centre):
    env = {"PARCOURS_PREFERENCES_SECRET": server.SECRET.decode(),
           "PARCOURS_PREFERENCES_URL": "https://prefs.example.com/"}
    done = run("preferences", "link", "--identifier", "email:Martin@Example.com", "--ttl", "2d",
               env=env)
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    assert line.startswith("https://prefs.example.com/p/p1.") and "martin" not in line.lower()
    token = line.rsplit("/", 1)[1]
    grant = centre.centre.grant(token)
    assert grant.kind == "email" and len(grant.value) == 64
    assert 2 * 86400 - 60 < grant.expires - time.time() <= 2 * 86400
    assert centre.request("GET", f"/p/{token}")[0] == 200
    one_line_error(run("preferences", "link", "--identifier", "user:u", "--ttl", "400d",
                       env=env), "--ttl")
