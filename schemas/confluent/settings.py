"""Where the schema registry is and how to reach it, from the environment, checked once at start.

| variable | meaning |
|---|---|
| PARCOURS_SCHEMA_REGISTRY_URL | http(s)://[user:password@]host:port[/path]; unset: no registry |
| PARCOURS_SCHEMA_REGISTRY_USERNAME, PARCOURS_SCHEMA_REGISTRY_PASSWORD | HTTP basic auth |
| PARCOURS_SCHEMA_REGISTRY_CA_FILE | CA bundle to verify an https registry (default: the system's) |
| PARCOURS_SCHEMA_REGISTRY_CERT_FILE, PARCOURS_SCHEMA_REGISTRY_KEY_FILE | client certificate |
| PARCOURS_SCHEMA_REGISTRY_AUTO_REGISTER | true (default): register output schemas; false: look up |
| PARCOURS_SCHEMA_REGISTRY_TIMEOUT_SECONDS | one request's time limit (default 10) |

The same shape as the Kafka security settings (streams/kafka/security.py): every mistake is one
`RegistryConfigError` line naming the variable, and the TLS context is built here, so a bad
certificate stops the worker at start rather than at its first Avro record. The URL kept in
`RegistrySettings.url` has no credentials: it is what log lines and errors show.
"""
from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from schemas.confluent import RegistryConfigError

PREFIX = "PARCOURS_SCHEMA_REGISTRY_"
URL = "PARCOURS_SCHEMA_REGISTRY_URL"
USERNAME = "PARCOURS_SCHEMA_REGISTRY_USERNAME"
PASSWORD = "PARCOURS_SCHEMA_REGISTRY_PASSWORD"
FILES = {"ca_file": "PARCOURS_SCHEMA_REGISTRY_CA_FILE",
         "cert_file": "PARCOURS_SCHEMA_REGISTRY_CERT_FILE",
         "key_file": "PARCOURS_SCHEMA_REGISTRY_KEY_FILE"}
AUTO_REGISTER = "PARCOURS_SCHEMA_REGISTRY_AUTO_REGISTER"
TIMEOUT = "PARCOURS_SCHEMA_REGISTRY_TIMEOUT_SECONDS"
DEFAULT_TIMEOUT_S = 10.0
UNKNOWN_TTL_S = 60.0  # an id the registry does not know is asked again after this long


@dataclass(frozen=True)
class RegistrySettings:
    url: str  # base URL, no credentials, no trailing slash
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    auto_register: bool = True
    timeout_s: float = DEFAULT_TIMEOUT_S
    unknown_ttl_s: float = UNKNOWN_TTL_S

    @property
    def uses_tls(self) -> bool:
        return self.url.startswith("https://")

    @cached_property
    def ssl_context(self) -> ssl.SSLContext | None:
        """Built once (it reads the CA, certificate and key files); None for http."""
        if not self.uses_tls:
            return None
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context


def _bool(env: dict, name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("true", "on", "yes", "1"):
        return True
    if raw in ("false", "off", "no", "0"):
        return False
    raise RegistryConfigError(f"{name}={env[name]!r}: expected true or false")


def _timeout(env: dict) -> float:
    name = TIMEOUT
    raw = (env.get(name) or "").strip()
    if not raw:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < 3600:
        raise RegistryConfigError(f"{name}={raw!r}: expected seconds, more than 0 (e.g. 10)")
    return value


def check_url(raw: str) -> tuple[str, str | None, str | None]:
    """`https://user:pw@host:8081/path/` -> ("https://host:8081/path", "user", "pw")."""
    name = URL
    text = raw.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise RegistryConfigError(f"{name}: {exc} (expected http(s)://host:port)") from None
    if parts.scheme not in ("http", "https"):
        raise RegistryConfigError(f"{name}: unknown scheme {parts.scheme or text!r} "
                                  "(expected http://host:port or https://host:port)")
    if not parts.hostname:
        raise RegistryConfigError(f"{name} names no host (expected {parts.scheme}://host:port)")
    if parts.query or parts.fragment:
        raise RegistryConfigError(f"{name}: a registry URL has no ?query or #fragment")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = host if port is None else f"{host}:{port}"
    base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return base, user, password


def from_env(env: dict) -> RegistrySettings | None:
    """The registry settings of `env`, or None when PARCOURS_SCHEMA_REGISTRY_URL is unset."""
    raw = env.get(URL) or ""
    if not raw.strip():
        others = sorted(k for k in env if k.startswith(PREFIX) and env[k])
        if others:
            raise RegistryConfigError(f"{others[0]} is set without {URL}")
        return None
    url, user, password = check_url(raw)
    env_user = env.get(USERNAME) or None
    env_password = env.get(PASSWORD) or None
    if (env_user or env_password) and (user or password):
        raise RegistryConfigError(f"credentials are in {URL} and in {USERNAME}/"
                                  "PASSWORD: give them once")
    user, password = (user, password) if user or password else (env_user, env_password)
    if bool(user) != bool(password):
        raise RegistryConfigError(f"{USERNAME} and {PASSWORD} go together (HTTP basic auth)")
    files = {}
    for key, name in FILES.items():
        value = env.get(name) or None
        if value and not Path(value).is_file():
            raise RegistryConfigError(f"{name}={value!r}: no such file")
        if value and not url.startswith("https://"):
            raise RegistryConfigError(f"{name} is set but {URL} is not https")
        files[key] = value
    if files["key_file"] and not files["cert_file"]:
        raise RegistryConfigError(f"{FILES['key_file']} is set without {FILES['cert_file']}")
    settings = RegistrySettings(url, user, password, **files,
                                auto_register=_bool(env, AUTO_REGISTER, True),
                                timeout_s=_timeout(env))
    try:
        settings.ssl_context  # noqa: B018 - built (and cached) now: a bad file stops here
    except (ssl.SSLError, OSError) as exc:
        raise RegistryConfigError(
            f"{PREFIX}CA_FILE / CERT_FILE / KEY_FILE: {' '.join(str(exc).split())}") from None
    return settings
