"""A STAND-IN for a Confluent Schema Registry, for tests only: no registry server installs on this
machine (no Docker engine for confluentinc/cp-schema-registry, no JVM), so the tests talk to this
small aiohttp server instead. It is not Confluent's software and proves nothing about it beyond
the documented REST subset it implements, which is what parcours' client and confluent-kafka's
AvroSerializer / AvroDeserializer call:

- GET  /schemas/ids/{id}                 -> {"schema": "<text>"} (+ schemaType when not AVRO,
                                            references when any); 404 error_code 40403
- POST /subjects/{subject}/versions      -> {"id": n}: a schema text seen before keeps its id
- POST /subjects/{subject}               -> {"subject", "id", "version", "schema"}; 404 with
                                            40401 (no such subject) or 40403 (not under it)
- GET  /subjects                         -> ["subject", ...]
- GET  /subjects/{subject}/versions/latest -> {"subject", "id", "version", "schema"}; 404 40401

Error bodies are `{"error_code": ..., "message": ...}` as documented. Compatibility levels are
not enforced (every schema registers, as under compatibility NONE). Ids start at `first_id` (101
by default), so a test can tell them from parcours' local ids (1-9). Switches for outages:
`fail_with(503)` answers every request with that status (a registry error body), `refuse()`
closes the listening socket (connection refused) and `accept()` opens it again on the same port.
Optional HTTP basic auth (`username`, `password`) and TLS (`ssl_context`).

It runs on its own event loop in a thread, so synchronous clients (confluent-kafka) and worker
processes can use it; use it as a context manager (`with StandInRegistry() as registry:`).
"""
from __future__ import annotations

import asyncio
import base64
import json
import threading

from aiohttp import web

from streams.embedded.broker import free_port


class StandInRegistry:
    """See the module docstring: a stand-in, not a Confluent Schema Registry."""

    def __init__(self, *, username: str | None = None, password: str | None = None,
                 ssl_context=None, first_id: int = 101, host: str = "127.0.0.1"):
        self.username, self.password = username, password
        self.ssl_context = ssl_context
        self.host, self.port = host, free_port()
        self.next_id = first_id
        self.schemas: dict[int, dict] = {}  # id -> {"schema", "schemaType"?, "references"?}
        self.ids_by_text: dict[tuple, int] = {}
        self.subjects: dict[str, list[int]] = {}  # subject -> ids, one per version
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request received
        self.auth_headers: list[str | None] = []
        self.failure: int | None = None
        self.refusing = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    # -- control (from the test's thread) -------------------------------------------------------

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{self.host}:{self.port}"

    def start(self) -> "StandInRegistry":
        self._thread.start()
        self._call(self._start())
        return self

    def stop(self) -> None:
        if self._runner is not None:
            self._call(self._runner.cleanup())
            self._runner = None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def fail_with(self, status: int | None) -> None:
        """Answer every request with HTTP `status` (None: answer normally again)."""
        self.failure = status

    def refuse(self) -> None:
        """Close the listening socket: clients get "connection refused" (and a connection kept
        alive from before is cut at its next request)."""
        self.refusing = True
        if self._site is not None:
            self._call(self._site.stop())
            self._site = None

    def accept(self) -> None:
        """Listen again on the same port."""
        self.refusing = False
        if self._site is None:
            self._call(self._listen())

    def register(self, subject: str, schema: str | dict, schema_type: str = "AVRO",
                 references: list | None = None) -> int:
        """Register directly (as another team's producer would have): the schema's id."""
        text = schema if isinstance(schema, str) else json.dumps(schema)
        return self._register(subject, text, schema_type, references or [])

    def __enter__(self) -> "StandInRegistry":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    # -- the server -----------------------------------------------------------------------------

    async def _start(self) -> None:
        app = web.Application(middlewares=[self._gate])
        app.router.add_get("/schemas/ids/{id}", self._schema_by_id)
        app.router.add_post("/subjects/{subject}/versions", self._register_version)
        app.router.add_post("/subjects/{subject}", self._lookup)
        app.router.add_get("/subjects", self._list_subjects)
        app.router.add_get("/subjects/{subject}/versions/latest", self._latest)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await self._listen()

    async def _listen(self) -> None:
        self._site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl_context,
                                 reuse_address=True)
        await self._site.start()

    @web.middleware
    async def _gate(self, request: web.Request, handler):
        if self.refusing:  # a connection kept alive from before the outage: cut it
            request.transport.abort()
            return web.Response(status=503)  # never sent: the connection is gone
        self.requests.append((request.method, request.path))
        header = request.headers.get("Authorization")
        self.auth_headers.append(header)
        if self.failure is not None:
            return _error(self.failure, 50003 if self.failure >= 500 else self.failure,
                          "stand-in registry made unavailable by the test")
        if self.username is not None:
            expected = "Basic " + base64.b64encode(
                f"{self.username}:{self.password}".encode()).decode()
            if header != expected:
                return _error(401, 401, "Unauthorized")
        return await handler(request)

    def _register(self, subject: str, text: str, schema_type: str, references: list) -> int:
        key = (text, schema_type.upper(), json.dumps(references, sort_keys=True))
        sid = self.ids_by_text.get(key)
        if sid is None:
            sid, self.next_id = self.next_id, self.next_id + 1
            self.ids_by_text[key] = sid
            entry = {"schema": text}
            if schema_type.upper() != "AVRO":
                entry["schemaType"] = schema_type.upper()
            if references:
                entry["references"] = references
            self.schemas[sid] = entry
        versions = self.subjects.setdefault(subject, [])
        if sid not in versions:
            versions.append(sid)
        return sid

    async def _schema_by_id(self, request: web.Request) -> web.Response:
        try:
            sid = int(request.match_info["id"])
        except ValueError:
            return _error(404, 40403, "Schema not found")
        entry = self.schemas.get(sid)
        if entry is None:
            return _error(404, 40403, f"Schema {sid} not found")
        return _json(entry)

    async def _register_version(self, request: web.Request) -> web.Response:
        body = await _body(request)
        if body is None or not isinstance(body.get("schema"), str):
            return _error(422, 42201, "Invalid schema")
        sid = self._register(request.match_info["subject"], body["schema"],
                             body.get("schemaType") or "AVRO", body.get("references") or [])
        return _json({"id": sid})

    async def _lookup(self, request: web.Request) -> web.Response:
        subject = request.match_info["subject"]
        body = await _body(request)
        if subject not in self.subjects:
            return _error(404, 40401, f"Subject '{subject}' not found.")
        if body is None or not isinstance(body.get("schema"), str):
            return _error(422, 42201, "Invalid schema")
        key = (body["schema"], (body.get("schemaType") or "AVRO").upper(),
               json.dumps(body.get("references") or [], sort_keys=True))
        sid = self.ids_by_text.get(key)
        versions = self.subjects[subject]
        if sid not in versions:
            return _error(404, 40403, "Schema not found")
        return _json({"subject": subject, "id": sid, "version": versions.index(sid) + 1,
                      "schema": body["schema"]})

    async def _list_subjects(self, request: web.Request) -> web.Response:
        return _json(sorted(self.subjects))

    async def _latest(self, request: web.Request) -> web.Response:
        subject = request.match_info["subject"]
        versions = self.subjects.get(subject)
        if not versions:
            return _error(404, 40401, f"Subject '{subject}' not found.")
        sid = versions[-1]
        return _json({"subject": subject, "id": sid, "version": len(versions),
                      "schema": self.schemas[sid]["schema"]})


async def _body(request: web.Request):
    try:
        return json.loads(await request.read())
    except ValueError:
        return None


def _json(value, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(value).encode(),
                        content_type="application/vnd.schemaregistry.v1+json")


def _error(status: int, code: int, message: str) -> web.Response:
    return _json({"error_code": code, "message": message}, status)
