"""A small async client of the Confluent Schema Registry REST API (aiohttp, installed with Faust).

Only the calls parcours makes:
- `schema(id)`: GET /schemas/ids/{id} -> {"schema": "<.avsc text>", "schemaType"?, "references"?}
  (a writer schema of the input);
- `register(subject, schema)`: POST /subjects/{subject}/versions -> the schema's id (an output
  schema, under TopicNameStrategy's `<topic>-value`; registering it again returns the same id);
- `lookup(subject, schema)`: POST /subjects/{subject} -> the id it is registered with there
  (PARCOURS_SCHEMA_REGISTRY_AUTO_REGISTER=false).

Every failure is one of the errors of `schemas.confluent`, told apart by what the caller does
next: `SchemaNotFound` (HTTP 404 with the documented error_code 40401 / 40403: the answer is "no"),
`RegistryUnavailable` (no answer, timeout, 5xx, 429, or an answer that is not the registry's JSON,
such as a proxy's 404 page: try again later) and `RegistryError` (any other refusal, e.g. 401,
409 incompatible, 422 invalid schema). Basic auth and TLS come from `RegistrySettings`; one
session is opened on first use, in the caller's event loop, and kept until `close()`.
"""
from __future__ import annotations

import asyncio
import base64
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from schemas.confluent import RegistryError, RegistryUnavailable, SchemaNotFound
from schemas.confluent.settings import RegistrySettings

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
ACCEPT = "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, " \
         "application/json"
NOT_FOUND_CODES = frozenset({40401, 40403})  # subject not found, schema not found
RETRY_STATUSES = frozenset({408, 425, 429})  # and every 5xx


class RegistryClient:
    """The REST calls above against `settings.url`; `close()` when done."""

    def __init__(self, settings: RegistrySettings):
        self.settings = settings
        self.url = settings.url  # no credentials: safe to log
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"Accept": ACCEPT}
            if self.settings.username:
                pair = f"{self.settings.username}:{self.settings.password or ''}".encode()
                headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s), headers=headers,
                raise_for_status=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def schema(self, schema_id: int) -> dict:
        """The registry's answer for a schema id (GET /schemas/ids/{id})."""
        answer = await self._request("GET", f"/schemas/ids/{int(schema_id)}")
        if not isinstance(answer, dict) or not isinstance(answer.get("schema"), str):
            raise RegistryUnavailable(f"schema registry at {self.url}: the answer for schema id "
                                      f"{schema_id} has no schema text")
        return answer

    async def register(self, subject: str, schema: str) -> int:
        """Register `schema` (.avsc text) under `subject`: its id (the same if it already is)."""
        return self._id(await self._request("POST", f"/subjects/{quote(subject, safe='')}/versions",
                                            {"schema": schema}), subject)

    async def lookup(self, subject: str, schema: str) -> int:
        """The id `schema` is registered with under `subject`; `SchemaNotFound` when it is not."""
        return self._id(await self._request("POST", f"/subjects/{quote(subject, safe='')}",
                                            {"schema": schema}), subject)

    def _id(self, answer: Any, subject: str) -> int:
        sid = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(sid, int) or isinstance(sid, bool) or not 0 <= sid < 2**31:
            raise RegistryUnavailable(f"schema registry at {self.url}: no schema id in its answer "
                                      f"for subject {subject!r}")
        return sid

    async def _request(self, method: str, path: str, body: dict | None = None) -> Any:
        session = self._open()
        data = None if body is None else orjson.dumps(body)
        headers = {"Content-Type": CONTENT_TYPE} if body is not None else None
        where = f"schema registry at {self.url}"
        try:
            async with session.request(method, self.url + path, data=data, headers=headers,
                                       ssl=self.settings.ssl_context or True) as response:
                status, raw = response.status, await response.read()
        except asyncio.TimeoutError:
            raise RegistryUnavailable(f"{where}: no answer within {self.settings.timeout_s:g} s "
                                      f"({method} {path})") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise RegistryUnavailable(f"{where} is unreachable ({method} {path}): "
                                      f"{type(exc).__name__}: {_line(exc)}") from None
        try:
            answer = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            answer = None
            if 200 <= status < 300:
                raise RegistryUnavailable(f"{where}: {method} {path} answered {status} with a "
                                          "body that is not JSON") from None
        if 200 <= status < 300:
            return answer
        code = answer.get("error_code") if isinstance(answer, dict) else None
        message = answer.get("message") if isinstance(answer, dict) else None
        text = f"{where}: {method} {path} -> HTTP {status}" + (
            f" error_code {code}: {_line(message)}" if code is not None else "")
        if status == 404 and code in NOT_FOUND_CODES:
            raise SchemaNotFound(text, status, code)
        if status >= 500 or status in RETRY_STATUSES or code is None:
            # no registry error body: a proxy or another service answered, not the registry
            raise RegistryUnavailable(text, status, code)
        raise RegistryError(text, status, code)


def _line(value: Any, limit: int = 200) -> str:
    line = " ".join(str(value).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
