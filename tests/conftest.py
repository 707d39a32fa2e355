"""Shared fixtures. End-to-end fixtures start the embedded broker themselves (or testcontainers'
Kafka when PARCOURS_TEST_CONTAINERS=1 and a Docker engine answers) and stop it afterwards."""
from __future__ import annotations

import os
import shutil

import pytest


def _docker_available() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        import docker

        docker.from_env().ping()
        return True
    except Exception:
        return False


def _use_containers() -> bool:
    return os.environ.get("PARCOURS_TEST_CONTAINERS") == "1" and _docker_available()


@pytest.fixture(scope="session")
def _clickhouse_server():
    """A ClickHouse server container for the session (only with PARCOURS_TEST_CONTAINERS=1)."""
    if not _use_containers():
        yield None
        return
    from testcontainers.community.clickhouse import ClickHouseContainer

    with ClickHouseContainer("clickhouse/clickhouse-server:25.8", username="parcours",
                             password="parcours") as server:
        host, port = server.get_container_host_ip(), server.get_exposed_port(8123)
        yield f"http://parcours:parcours@{host}:{port}"


@pytest.fixture
def ch_url(tmp_path, _clickhouse_server):
    """Factory of ClickHouse URLs, one database per name: chDB directories by default, databases
    of the ClickHouse container with PARCOURS_TEST_CONTAINERS=1."""
    import uuid

    def make(name: str = "ch") -> str:
        if _clickhouse_server is None:
            return f"chdb://{tmp_path / name}"
        return f"{_clickhouse_server}/t_{uuid.uuid4().hex[:12]}_{name.replace('-', '_')}"

    return make


@pytest.fixture
def kafka():
    """A fresh Kafka-protocol broker per test (topics and offsets never leak between tests):
    `.bootstrap`, `.url`, `.create_topics({name: n})`."""
    if _use_containers():
        from tests.containers import ContainerKafka

        with ContainerKafka() as broker:
            yield broker
        return
    from streams.embedded.broker import EmbeddedKafka

    with EmbeddedKafka() as broker:
        yield broker


@pytest.fixture(autouse=True)
def _close_chdb():
    """chDB allows one open directory per process: every test leaves the engine closed."""
    yield
    from sinks.clickhouse import close_all

    close_all()
