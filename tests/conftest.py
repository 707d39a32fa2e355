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


@pytest.fixture
def kafka():
    """A fresh Kafka-protocol broker per test (topics and offsets never leak between tests): `.bootstrap`, `.url`, `.create_topics({name: n})`."""
    if os.environ.get("PARCOURS_TEST_CONTAINERS") == "1" and _docker_available():
        from tests.containers import ContainerKafka

        with ContainerKafka() as broker:
            yield broker
        return
    from streams.embedded import EmbeddedKafka

    with EmbeddedKafka() as broker:
        yield broker


@pytest.fixture(autouse=True)
def _close_chdb():
    """chDB allows one open directory per process: every test leaves the engine closed."""
    yield
    from sinks.clickhouse import close_all

    close_all()
