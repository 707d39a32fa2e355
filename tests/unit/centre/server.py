"""A preference centre on a free local port, in a thread of its own, for the tests' HTTP clients.

`people` stands in for ClickHouse's answer (the unit tests of `streams.centre.state` read real
chDB); `published` collects what a save sends to the `preferences` topic (the browser test sends
it to the embedded broker)."""
from __future__ import annotations

import asyncio
import http.client
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aiohttp import web

from streams.centre.app import Centre, CentreAccessLogger, make_app
from streams.centre.choices import defaults
from streams.centre.limits import RateLimiter
from streams.centre.state import Person
from streams.preferences.config import GateConfig

SECRET = b"s" * 40
GATE = GateConfig(default_opt_in={"email": False, "push": False, "web": True, "app": True,
                                  "display": True}, max_per_day=3)


class People:
    """`PersonReader`'s interface over a dict: identifier -> Person."""

    def __init__(self) -> None:
        self.by_identifier: dict[str, Person] = {}

    async def read(self, identifier: str) -> Person:
        return self.by_identifier.get(identifier, Person([], []))


@dataclass
class Running:
    url: str
    centre: Centre
    people: People
    published: list = field(default_factory=list)

    def request(self, method: str, path: str, body: bytes | str | None = None,
                headers: dict | None = None) -> tuple[int, dict, bytes]:
        parts = urlsplit(self.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()


def start(*, per_address=None, per_link=None, fail_publish=False):
    """(Running, stop): the app on 127.0.0.1 with the tests' secret."""
    people = People()
    published: list = []

    async def publish(records):
        if fail_publish:
            raise ConnectionError("broker down")
        published.extend(records)

    unlimited = RateLimiter(10**5, 10**5)
    centre = Centre(secret=SECRET, publish=publish, reader=people, defaults=defaults(GATE),
                    per_address=unlimited if per_address is None else per_address,
                    per_link=RateLimiter(10**5, 10**5) if per_link is None else per_link)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict = {}

    async def serve():
        runner = web.AppRunner(make_app(centre), access_log_class=CentreAccessLogger)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        box["runner"] = runner
        box["port"] = site._server.sockets[0].getsockname()[1]
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(serve()),
                                              loop.run_forever()), daemon=True)
    thread.start()
    assert ready.wait(10)

    def stop():
        asyncio.run_coroutine_threadsafe(box["runner"].cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()

    running = Running(f"http://127.0.0.1:{box['port']}", centre, people, published)
    return running, stop
