"""The registry client (schemas/confluent/client.py) against the STAND-IN registry of
tests/schema_registry.py (no real registry installs here: no Docker engine): answers, the errors
that tell "no such schema" from "try again later", basic auth and TLS."""
from __future__ import annotations

import asyncio
import base64
import json
import ssl
import subprocess

import pytest
from aiohttp import web

from schemas.confluent import RegistryError, RegistryUnavailable, SchemaNotFound
from schemas.confluent.client import RegistryClient
from schemas.confluent.settings import RegistrySettings
from streams.config import load
from streams.embedded.broker import free_port
from tests.schema_registry import StandInRegistry

SCHEMA = json.dumps({"type": "record", "name": "T", "fields": [{"name": "x", "type": "long"}]})


def _run(settings: RegistrySettings, call):
    async def go():
        client = RegistryClient(settings)
        try:
            return await call(client)
        finally:
            await client.close()

    return asyncio.run(go())


@pytest.fixture
def stand_in():
    with StandInRegistry() as registry:
        yield registry


def test_schema_by_id_register_and_lookup(stand_in):
    sid = stand_in.register("touchpoints-value", SCHEMA)
    settings = RegistrySettings(stand_in.url)
    assert _run(settings, lambda c: c.schema(sid)) == {"schema": SCHEMA}
    assert _run(settings, lambda c: c.register("out-value", SCHEMA)) == sid  # same text, same id
    assert _run(settings, lambda c: c.lookup("out-value", SCHEMA)) == sid
    other = _run(settings, lambda c: c.register("triggers.push-value", SCHEMA.replace("T", "U")))
    assert other == sid + 1 and "triggers.push-value" in stand_in.subjects
    assert ("POST", "/subjects/triggers.push-value/versions") in stand_in.requests


def test_not_found_is_told_from_unavailable(stand_in):
    settings = RegistrySettings(stand_in.url, timeout_s=2)
    with pytest.raises(SchemaNotFound) as info:
        _run(settings, lambda c: c.schema(4242))
    assert (info.value.status, info.value.error_code) == (404, 40403)
    assert str(info.value) == (f"schema registry at {stand_in.url}: GET /schemas/ids/4242 -> "
                               "HTTP 404 error_code 40403: Schema 4242 not found")
    with pytest.raises(SchemaNotFound) as info:
        _run(settings, lambda c: c.lookup("nobody-value", SCHEMA))
    assert info.value.error_code == 40401
    stand_in.register("out-value", SCHEMA)
    with pytest.raises(SchemaNotFound) as info:
        _run(settings, lambda c: c.lookup("out-value", SCHEMA.replace("T", "V")))
    assert info.value.error_code == 40403
    for status in (500, 503, 429):
        stand_in.fail_with(status)
        with pytest.raises(RegistryUnavailable) as info:
            _run(settings, lambda c: c.schema(4242))
        assert info.value.status == status and "\n" not in str(info.value)
    stand_in.fail_with(None)
    stand_in.refuse()
    with pytest.raises(RegistryUnavailable, match="is unreachable .*GET /schemas/ids/1"):
        _run(settings, lambda c: c.schema(1))
    stand_in.accept()
    assert _run(settings, lambda c: c.register("again-value", SCHEMA)) > 0


def test_a_404_that_is_not_the_registrys_answer_is_not_taken_for_unknown():
    """A proxy's 404 page (a wrong path prefix) must not dead-letter every record as unknown."""
    async def page(request):
        return web.Response(status=404, text="<h1>nope</h1>")

    async def main():
        app = web.Application()
        app.router.add_get("/{tail:.*}", page)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        client = RegistryClient(RegistrySettings(f"http://127.0.0.1:{port}"))
        try:
            await client.schema(1)
        finally:
            await client.close()
            await runner.cleanup()

    with pytest.raises(RegistryUnavailable, match="HTTP 404$"):
        asyncio.run(main())


def test_a_timeout_is_unavailable():
    async def main():
        async def slow(request):
            await asyncio.sleep(1)
            return web.Response(text="{}")

        app = web.Application()
        app.router.add_get("/{tail:.*}", slow)
        runner = web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        client = RegistryClient(RegistrySettings(f"http://127.0.0.1:{port}", timeout_s=0.2))
        try:
            await client.schema(1)
        finally:
            await client.close()
            await runner.cleanup()

    with pytest.raises(RegistryUnavailable, match="no answer within 0.2 s"):
        asyncio.run(main())


@pytest.mark.parametrize("how", ["env", "url"])
def test_basic_auth_is_sent(how):
    with StandInRegistry(username="sr-user", password="p@ss:w/rd") as registry:
        sid = registry.register("s-value", SCHEMA)
        host = registry.url.removeprefix("http://")
        env = ({"PARCOURS_SCHEMA_REGISTRY_URL": registry.url,
                "PARCOURS_SCHEMA_REGISTRY_USERNAME": "sr-user",
                "PARCOURS_SCHEMA_REGISTRY_PASSWORD": "p@ss:w/rd"} if how == "env" else
               {"PARCOURS_SCHEMA_REGISTRY_URL": f"http://sr-user:p%40ss%3Aw%2Frd@{host}"})
        settings = load(env).schema_registry
        assert settings.url == registry.url  # credentials never in the URL that is logged
        assert "p@ss" not in repr(settings)
        assert _run(settings, lambda c: c.schema(sid))["schema"] == SCHEMA
        expected = "Basic " + base64.b64encode(b"sr-user:p@ss:w/rd").decode()
        assert registry.auth_headers[-1] == expected
        with pytest.raises(RegistryError) as info:  # wrong password: refused, not "not found"
            _run(RegistrySettings(registry.url, "sr-user", "wrong"), lambda c: c.schema(sid))
        assert info.value.status == 401 and not isinstance(info.value, SchemaNotFound)


@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate for 127.0.0.1 (openssl), as a private CA would issue."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def test_https_with_the_ca_file_and_without_it(certificate):
    cert, key = certificate
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    with StandInRegistry(ssl_context=server) as registry:
        sid = registry.register("s-value", SCHEMA)
        assert registry.url.startswith("https://")
        settings = load({"PARCOURS_SCHEMA_REGISTRY_URL": registry.url,
                         "PARCOURS_SCHEMA_REGISTRY_CA_FILE": str(cert)}).schema_registry
        assert settings.ssl_context is not None
        assert _run(settings, lambda c: c.schema(sid))["schema"] == SCHEMA
        # the system's CAs do not know this certificate: unavailable (retried), never "unknown"
        with pytest.raises(RegistryUnavailable, match="CERTIFICATE_VERIFY_FAILED|certificate"):
            _run(RegistrySettings(registry.url), lambda c: c.schema(sid))
