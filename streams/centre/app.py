"""The preference centre's web application (aiohttp): the page, its API, and what guards them.

    GET  /p/{token}            the page (HTML), in the person's language (?lang=en|fr)
    POST /p/{token}            the page's form: CSRF-checked, then published; 303 back to the page
    GET  /api/v1/preferences   the choices and last messages as JSON   (Authorization: Bearer T)
    PUT  /api/v1/preferences   change some choices (JSON body, every key optional)
    GET  /healthz              "ok"

Every refusal of a link (missing, malformed, expired, signed with another secret, tampered) is the
same 403 with the same body, whatever the reason and whether or not the person exists. A
request is refused with 429 past the limits per client address and per link. Forms are
`application/x-www-form-urlencoded` only, with only the known fields and values
(`choices.from_form`); API bodies are JSON objects with only the known keys. Bodies are at most
`MAX_BODY` bytes.

Nothing personal is logged, counted or put in a URL but the token itself: the access log names
the route, not the path, and metrics are labelled by route, status and refusal reason. Responses
carry a strict Content-Security-Policy, `Referrer-Policy: same-origin` (the link never leaks to
another site as a referrer; `no-referrer` would make browsers send `Origin: null` with the form,
and the origin check needs it) and `Cache-Control: no-store`.

A save becomes preference records on the `preferences` topic, keyed by the identifier
(`choices.records`), through `publish` (the worker applies them in order like any other). The
page's state: `state.py`.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable
from urllib.parse import urlsplit

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from streams.centre import choices as choice
from streams.centre import metrics
from streams.centre.limits import RateLimiter
from streams.centre.page import STYLE, forbidden_page, preference_page
from streams.centre.state import Pending, PersonReader
from streams.centre.texts import TEXTS, language
from streams.centre.tokens import Grant, TokenRefused, csrf_token, verify
from streams.preferences.records import preference_touchpoint

__all__ = ["MAX_BODY", "Centre", "CentreAccessLogger", "make_app"]

log = logging.getLogger(__name__)
MAX_BODY = 16 * 1024
NONCE_COOKIE = "pc_nonce"
_NONCE_LEN = 32
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "same-origin",  # no referrer to another site: the link stays here
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
Publish = Callable[[list[tuple[str, bytes, bytes]]], Awaitable[object]]


@dataclass
class Centre:
    """What the application needs: the secret, where to publish, what to read, what to offer."""

    secret: bytes
    publish: Publish
    reader: PersonReader
    defaults: choice.Choices
    topic: str = "preferences"
    topics_offered: tuple[str, ...] = choice.TOPICS
    public_url: str = "http://127.0.0.1:8080"
    per_address: RateLimiter = field(default_factory=lambda: RateLimiter(120, 30))
    per_link: RateLimiter = field(default_factory=lambda: RateLimiter(30, 10))
    pending: Pending = field(default_factory=Pending)
    clock: Callable[[], float] = time.time

    def grant(self, token: str | None) -> Grant:
        return verify(token, self.secret, self.clock())


class CentreAccessLogger(AbstractAccessLogger):
    """One line per request: method, route (never the path: it holds the token), status, time."""

    def log(self, request, response, time):  # noqa: A002 - aiohttp's signature
        route = request.match_info.route.resource
        name = route.canonical if route is not None else "unknown"
        self.logger.info("%s %s %s %.1fms", request.method, name, response.status, time * 1000)


KEY = web.AppKey("centre", Centre)


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unknown"


@web.middleware
async def _guard(request: web.Request, handler):
    centre = request.app[KEY]
    route = _route(request)
    if route not in ("/healthz", "/static/centre.css"):
        if not centre.per_address.allow(f"a:{request.remote}", time.monotonic()):
            metrics.REFUSED.labels("rate_address").inc()
            response = _busy(request)
            metrics.REQUESTS.labels(route, response.status).inc()
            return response
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # aiohttp's own answers (404, 405, 413...): same headers
        for name, value in _SECURITY_HEADERS.items():
            exc.headers.setdefault(name, value)
        metrics.REQUESTS.labels(route, exc.status).inc()
        raise
    for name, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    metrics.REQUESTS.labels(route, response.status).inc()
    return response


def _busy(request: web.Request) -> web.Response:
    lang = _lang(request)
    if request.path.startswith("/api/"):
        return _json({"error": "too many requests"}, 429, {"Retry-After": "60"})
    return _html(f'<!doctype html><html lang="{lang}"><title>429</title>'
                 f'<p role="alert">{TEXTS[lang]["busy"]}</p></html>', 429, {"Retry-After": "60"})


def _lang(request: web.Request, form_lang: str | None = None) -> str:
    return language(form_lang or request.query.get("lang"),
                    request.headers.get("Accept-Language"))


def _html(text: str, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8",
                        headers={**_SECURITY_HEADERS, **(headers or {})})


def _json(body, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json",
                        headers={**_SECURITY_HEADERS, **(headers or {})})


def _forbidden(request: web.Request, exc: TokenRefused, api: bool = False) -> web.Response:
    metrics.REFUSED.labels(exc.reason).inc()
    if api:
        return _json({"error": "forbidden"}, 403)
    return _html(forbidden_page(_lang(request)), 403)


def _link_key(token: str) -> str:
    return "l:" + hashlib.sha256(token.encode("ascii", "replace")).hexdigest()[:32]


def _granted(request: web.Request, token: str | None, api: bool = False) -> Grant | web.Response:
    """What `token` grants, or the answer that refuses it: 403 for a bad link, 429 past the
    link's rate limit."""
    centre = request.app[KEY]
    try:
        grant = centre.grant(token)
    except TokenRefused as exc:
        return _forbidden(request, exc, api=api)
    if not centre.per_link.allow(_link_key(token), time.monotonic()):
        metrics.REFUSED.labels("rate_link").inc()
        return _busy(request)
    return grant


async def _choices(centre: Centre, grant: Grant):
    person = await centre.reader.read(grant.identifier)
    events = centre.pending.merged(grant.identifier, person.events)
    return choice.current(events, centre.defaults), person.messages


def _nonce(request: web.Request) -> str | None:
    value = request.cookies.get(NONCE_COOKIE, "")
    ok = len(value) == _NONCE_LEN and all(c in "0123456789abcdef" for c in value)
    return value if ok else None


async def _page(request: web.Request, grant: Grant, token: str, *, lang: str,
                notice: tuple[str, str] | None = None, status: int = 200) -> web.Response:
    centre = request.app[KEY]
    current, messages = await _choices(centre, grant)
    nonce = _nonce(request) or secrets.token_hex(_NONCE_LEN // 2)
    text = preference_page(lang=lang, choices=current, topics=centre.topics_offered,
                           csrf=csrf_token(centre.secret, token, nonce),
                           action=f"/p/{token}", messages=messages, notice=notice)
    response = _html(text, status)
    response.set_cookie(NONCE_COOKIE, nonce, httponly=True, samesite="Strict", path="/p/",
                        secure=urlsplit(centre.public_url).scheme == "https")
    return response


async def get_page(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    grant = _granted(request, token)
    if isinstance(grant, web.Response):
        return grant
    lang = _lang(request)
    notice = ("status", TEXTS[lang]["saved"]) if request.query.get("saved") == "1" else None
    return await _page(request, grant, token, lang=lang, notice=notice)


def _same_origin(request: web.Request, public_url: str) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:  # an older browser, or a same-origin navigation that sent none
        return True
    public = urlsplit(public_url)
    return origin in (f"{public.scheme}://{public.netloc}", f"{request.scheme}://{request.host}")


async def post_page(request: web.Request) -> web.Response:
    centre, token = request.app[KEY], request.match_info["token"]
    grant = _granted(request, token)
    if isinstance(grant, web.Response):
        return grant
    nonce = _nonce(request)
    if request.content_type != "application/x-www-form-urlencoded":
        return web.Response(status=415, text="forms are application/x-www-form-urlencoded")
    try:
        form = await request.post()
    except web.HTTPRequestEntityTooLarge:
        return web.Response(status=413, text=f"a form is at most {MAX_BODY} bytes")
    except (ValueError, UnicodeDecodeError, web.HTTPException):
        return web.Response(status=400, text="unreadable form")
    fields = [(k, v) for k, v in form.items()]
    if any(not isinstance(v, str) for _k, v in fields):
        return web.Response(status=400, text="unreadable form")
    given = form.get("csrf")
    lang = _lang(request, form.get("lang") if form.get("lang") in TEXTS else None)
    if (nonce is None or not isinstance(given, str) or not _same_origin(request, centre.public_url)
            or not hmac.compare_digest(given.encode(), csrf_token(centre.secret, token,
                                                                   nonce).encode())):
        metrics.REFUSED.labels("csrf").inc()
        return _html(forbidden_page(lang), 403)
    try:
        chosen = choice.from_form(fields, centre.topics_offered)
    except choice.ChoicesRefused as exc:
        metrics.REFUSED.labels("form").inc()
        notice = ("alert", TEXTS[lang]["refused"].format(reason=str(exc)))
        return await _page(request, grant, token, lang=lang, notice=notice, status=400)
    if not await _save(centre, grant, chosen):
        return await _page(request, grant, token, lang=lang, status=503,
                           notice=("alert", TEXTS[lang]["unavailable"]))
    return web.Response(status=303, headers={"Location": f"/p/{token}?saved=1&lang={lang}"})


async def _save(centre: Centre, grant: Grant, chosen: choice.Choices) -> bool:
    records = choice.records(grant.identifier, chosen, int(centre.clock() * 1000))
    key = grant.identifier.encode()
    try:
        await centre.publish([(centre.topic, key, orjson.dumps(r)) for r in records])
    except Exception as exc:  # noqa: BLE001 - the person is told; nothing was half-applied
        log.warning("preference records could not be published: %s", type(exc).__name__)
        metrics.SAVES.labels("failed").inc()
        return False
    centre.pending.add(grant.identifier, [
        (tp["event_time"], tp["event_id"], tp["type"], tp["properties"])
        for tp in map(preference_touchpoint, records)])
    metrics.SAVES.labels("saved").inc()
    return True


def _bearer(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


async def api_get(request: web.Request) -> web.Response:
    centre, token = request.app[KEY], _bearer(request)
    grant = _granted(request, token, api=True)
    if isinstance(grant, web.Response):
        return grant
    current, messages = await _choices(centre, grant)
    return _json({"choices": current.as_json(), "messages": messages})


async def api_put(request: web.Request) -> web.Response:
    centre, token = request.app[KEY], _bearer(request)
    grant = _granted(request, token, api=True)
    if isinstance(grant, web.Response):
        return grant
    if request.content_type != "application/json":
        return _json({"error": "the body is application/json"}, 415)
    try:
        body = orjson.loads(await request.read())
    except web.HTTPRequestEntityTooLarge:
        return _json({"error": f"a body is at most {MAX_BODY} bytes"}, 413)
    except orjson.JSONDecodeError:
        return _json({"error": "the body is not JSON"}, 400)
    current, _messages = await _choices(centre, grant)
    try:
        chosen = choice.from_json(body, current, centre.topics_offered)
    except choice.ChoicesRefused as exc:
        metrics.REFUSED.labels("form").inc()
        return _json({"error": str(exc)}, 400)
    if not await _save(centre, grant, chosen):
        return _json({"error": "not saved, try again later"}, 503)
    return _json({"choices": chosen.as_json()})


async def healthz(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def style(_request: web.Request) -> web.Response:
    return web.Response(text=STYLE, content_type="text/css",
                        headers={"Cache-Control": "max-age=3600"})


def make_app(centre: Centre) -> web.Application:
    app = web.Application(middlewares=[_guard], client_max_size=MAX_BODY)
    app[KEY] = centre
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/static/centre.css", style)
    app.router.add_get("/p/{token}", get_page)
    app.router.add_post("/p/{token}", post_page)
    app.router.add_get("/api/v1/preferences", api_get)
    app.router.add_put("/api/v1/preferences", api_put)
    return app
