"""testcontainers-backed Kafka with the same small interface as EmbeddedKafka.

Used only when PARCOURS_TEST_CONTAINERS=1 and a Docker engine answers; the embedded broker is the
default everywhere else (this machine and CI have no Docker engine).
"""
from __future__ import annotations

from streams.kafka.admin import create_topics


class ContainerKafka:
    def __init__(self, image: str = "apache/kafka:3.9.0"):
        from testcontainers.community.kafka import KafkaContainer

        self._container = KafkaContainer(image).with_kraft()
        self.bootstrap = ""

    @property
    def url(self) -> str:
        return f"kafka://{self.bootstrap}"

    def __enter__(self):
        self._container.start()
        self.bootstrap = self._container.get_bootstrap_server()
        return self

    def __exit__(self, *exc):
        self._container.stop()

    def create_topics(self, topics: dict[str, int]) -> None:
        create_topics(self.bootstrap, topics)
