"""A clickhouse-connect client from `PARCOURS_CLICKHOUSE_URL`.

Accepted URLs:
- `chdb:///abs/path/dir` - the in-process chDB engine storing its data in that directory (created
  when missing);
- `chdb://./relative/dir` (or `chdb://../dir`) - the same, relative to the current directory. Any
  other `chdb://name/...` is refused as ambiguous: clickhouse-connect reads `chdb://data/ch` as the
  directory `./data` with database `ch`, not as the directory `data/ch` its author meant;
- `http://user:password@host:8123/db`, `https://...:8443/db` - a ClickHouse server. The database
  (optional, default: the user's default) is created when missing. Query options:
  `connect_timeout`, `send_receive_timeout` (seconds), `verify` (https: 0/1).

Every problem (malformed URL, unknown scheme, unreachable or refusing server, chDB directory held
by another process) raises `SinkConfigError` whose message is one line starting with
`PARCOURS_CLICKHOUSE_URL:`; passwords never appear in messages.

chDB hosts one engine per process, on one directory, and a directory can be opened by one process
(ClickHouse flocks `<dir>/status`). `connect()` therefore keeps one client per chDB directory for
the whole process and hands the same client to every caller, counting them; `close(client)` releases
one reference and closes the engine with the last one. Do not call `client.close()` on a shared chDB
client yourself. `close_all()` runs at interpreter exit. HTTP clients are not shared: each `connect`
returns a new one, which `close(client)` closes.
"""
from __future__ import annotations

import atexit
import os
import re
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote, urlsplit

import clickhouse_connect
from clickhouse_connect.driver.binding import quote_identifier

from streams.errors import ConfigError

ENV = "PARCOURS_CLICKHOUSE_URL"
USAGE = "use chdb:///path or http://user:pw@host:8123/db"
_DB_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")
_HTTP_OPTIONS = {"connect_timeout": float, "send_receive_timeout": float, "verify": bool}


class SinkConfigError(ConfigError):
    """The ClickHouse URL is unusable; the message is one line for the operator."""


@dataclass(frozen=True)
class Target:
    """A parsed ClickHouse URL."""

    scheme: str  # chdb, http or https
    path: str | None = None  # chdb: absolute, normalised directory
    host: str | None = None
    port: int | None = None
    username: str = "default"
    password: str = field(default="", repr=False)
    database: str | None = None
    options: dict = field(default_factory=dict)

    def display(self) -> str:
        """The URL without its password, for messages and logs."""
        if self.scheme == "chdb":
            return f"chdb://{self.path}"
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        db = f"/{self.database}" if self.database else ""
        return f"{self.scheme}://{self.username}@{host}:{self.port}{db}"


def _fail(message: str) -> SinkConfigError:
    return SinkConfigError(f"{ENV}: {message}")


def parse_url(url: str) -> Target:
    """Check and split a ClickHouse URL; relative chDB paths are resolved against the current
    dir."""
    raw = (url or "").strip()
    if not raw:
        raise _fail(f"is empty ({USAGE})")
    scheme, sep, _ = raw.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise _fail(f"{raw!r} is not a URL ({USAGE})")
    if scheme not in ("chdb", "http", "https"):
        raise _fail(f"unknown scheme {scheme!r} ({USAGE})")
    try:
        parts = urlsplit(raw)
    except ValueError as exc:
        raise _fail(f"malformed URL: {exc}") from None
    if scheme == "chdb":
        return _parse_chdb(raw, parts)
    return _parse_http(scheme, parts)


def _parse_chdb(raw: str, parts) -> Target:
    if parts.query or parts.fragment:
        raise _fail(f"chDB URLs take no options ({raw!r})")
    netloc, path = parts.netloc, unquote(parts.path)
    if netloc == "":
        if not path.startswith("/"):
            raise _fail(f"{raw!r} names no directory (use chdb:///abs/path or chdb://./relative/path)")
        location = path
    elif netloc in (".", ".."):
        location = netloc + path
    else:
        raise _fail(f"{raw!r} is ambiguous: use chdb:///abs/path for an absolute directory "
                    "or chdb://./relative/path for one under the current directory")
    location = os.path.normpath(os.path.abspath(location))
    if location == os.path.sep:
        raise _fail("the filesystem root cannot be a chDB directory")
    return Target(scheme="chdb", path=location)


def _parse_http(scheme: str, parts) -> Target:
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:  # a non-numeric or out-of-range port
        raise _fail(f"malformed URL: {exc}") from None
    if not host:
        raise _fail(f"no host in the {scheme} URL ({USAGE})")
    if parts.fragment:
        raise _fail("a URL fragment ('#...') has no meaning here")
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) > 1:
        raise _fail(f"the path must be a single database name, got {parts.path!r}")
    database = unquote(segments[0]) if segments else None
    if database is not None and not _DB_NAME.match(database):
        raise _fail(f"database name {database!r} must be letters, digits, '_' or '-'")
    options: dict = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        kind = _HTTP_OPTIONS.get(name)
        if kind is None:
            raise _fail(f"unknown option {name!r} (known: {', '.join(sorted(_HTTP_OPTIONS))})")
        if kind is bool:
            if value.lower() not in ("0", "1", "true", "false"):
                raise _fail(f"option {name}={value!r} must be 0 or 1")
            options[name] = value.lower() in ("1", "true")
        else:
            try:
                options[name] = float(value)
            except ValueError:
                raise _fail(f"option {name}={value!r} is not a number") from None
            if options[name] <= 0:
                raise _fail(f"option {name}={value!r} must be positive")
    return Target(
        scheme=scheme,
        host=host,
        port=port or (8443 if scheme == "https" else 8123),
        username=unquote(parts.username) if parts.username else "default",
        password=unquote(parts.password) if parts.password else "",
        database=database,
        options=options,
    )


# ---- connecting -------------------------------------------------------------------------------

class _Shared:
    __slots__ = ("client", "refs")

    def __init__(self, client) -> None:
        self.client = client
        self.refs = 1


_lock = threading.Lock()
_chdb: dict[str, _Shared] = {}  # one engine per process: at most one entry in practice


def connect(url: str):
    """A clickhouse-connect client for `url` (see the module doc). Raises SinkConfigError."""
    target = parse_url(url)
    if target.scheme == "chdb":
        return _connect_chdb(target)
    return _connect_http(target)


def close(client) -> None:
    """Release a client from `connect`: a shared chDB client closes with its last user."""
    with _lock:
        for path, shared in list(_chdb.items()):
            if shared.client is client:
                shared.refs -= 1
                if shared.refs > 0:
                    return
                del _chdb[path]
                break
    client.close()


def close_all() -> None:
    """Close every chDB client this process opened (also run at interpreter exit)."""
    with _lock:
        clients = [shared.client for shared in _chdb.values()]
        _chdb.clear()
    for client in clients:
        try:
            client.close()
        except Exception:  # noqa: BLE001 - best effort at shutdown
            pass


atexit.register(close_all)


def _connect_chdb(target: Target):
    path = os.path.realpath(target.path)  # the spelling chDB compares (symlinks resolved)
    with _lock:
        for known, shared in list(_chdb.items()):
            if not shared.client.ping():
                del _chdb[known]  # closed behind our back (client.close()): forget it
        shared = _chdb.get(path)
        if shared is not None:
            shared.refs += 1
            return shared.client
        if _chdb:
            other = next(iter(_chdb))
            raise _fail(f"this process already has the chDB directory {other!r} open; "
                        "one process can open one chDB directory (close it before opening "
                        f"{path!r})")
        _make_directory(path)
        holder = lock_holder(path)
        if holder is not None and holder != os.getpid():
            raise _locked(path, holder)
        try:
            client = clickhouse_connect.get_client(interface="chdb", path=path)
        except Exception as exc:  # noqa: BLE001 - mapped to one line below
            raise _chdb_failure(path, exc) from exc
        _chdb[path] = _Shared(client)
        return client


def _make_directory(path: str) -> None:
    if os.path.exists(path) and not os.path.isdir(path):
        raise _fail(f"{path!r} exists and is not a directory")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise _fail(f"cannot create the chDB directory {path!r}: {exc.strerror or exc}") from None
    if not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        raise _fail(f"the chDB directory {path!r} is not writable by this user")


def lock_holder(path: str) -> int | None:
    """PID of the process holding the chDB directory `path` (0 if unknown), or None if free.

    ClickHouse takes an exclusive flock on `<dir>/status` (which holds `PID: n`) while the engine is
    open and removes the file at a clean shutdown; after a crash the file stays, unlocked.
    """
    import fcntl  # POSIX only, like chDB itself

    status = os.path.join(path, "status")
    try:
        fd = os.open(status, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            found = re.search(rb"PID:\s*(\d+)", os.read(fd, 4096))
            return int(found.group(1)) if found else 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _locked(path: str, pid: int) -> SinkConfigError:
    who = f"process {pid}" if pid else "another process"
    return _fail(f"the chDB directory {path!r} is in use by {who}; only one process may open a "
                 f"chDB directory (stop it, or give this process another directory)")


def _chdb_failure(path: str, exc: BaseException) -> SinkConfigError:
    text = str(exc)
    other = re.search(r"already initialized with path '([^']*)'", text)
    if other:
        return _fail(f"this process already has the chDB directory {other.group(1)!r} open; "
                     "one process can open one chDB directory (close it before opening "
                     f"{path!r})")
    holder = lock_holder(path)
    if holder is not None and holder != os.getpid():
        return _locked(path, holder)
    return _fail(f"cannot open the chDB directory {path!r}: {_reason(text)}")


def _connect_http(target: Target):
    where = target.display()
    try:
        client = clickhouse_connect.get_client(
            interface=target.scheme,
            host=target.host,
            port=target.port,
            username=target.username,
            password=target.password,
            connect_timeout=target.options.get("connect_timeout", 10.0),
            send_receive_timeout=target.options.get("send_receive_timeout", 300.0),
            verify=target.options.get("verify", True),
            # Sessions serialise queries: the sink thread and readers must not block each other.
            autogenerate_session_id=False,
        )
    except Exception as exc:  # noqa: BLE001 - mapped to one line
        raise _fail(f"cannot connect to ClickHouse at {where}: "
                    f"{_reason(str(exc), target.password)}") from exc
    if target.database:
        try:
            client.command(f"CREATE DATABASE IF NOT EXISTS {quote_identifier(target.database)}")
        except Exception as exc:  # noqa: BLE001 - mapped to one line
            client.close()
            raise _fail(f"cannot create database {target.database!r} at {where}: "
                        f"{_reason(str(exc), target.password)}") from exc
        client.database = target.database
    return client


def _reason(text: str, secret: str = "") -> str:
    """The useful part of a driver or server error, on one line."""
    if secret:
        text = text.replace(secret, "***")
    for pattern in (r"\[Errno -?\d+\] ([^\"'()]+)",  # socket: refused, unknown host, ...
                    r"DB::Exception: (.+?)(?: \(version [^)]*\))?\s*$",  # server-side error
                    r"(Read timed out|timed out)"):
        found = re.search(pattern, text, re.S)
        if found:
            text = found.group(1)
            break
    text = " ".join(text.split()).rstrip(". ")
    return text if len(text) <= 240 else text[:237] + "..."
