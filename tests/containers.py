"""testcontainers-backed Kafka with the same small interface as EmbeddedKafka.

Used only when PARCOURS_TEST_CONTAINERS=1 and a Docker engine answers; the embedded broker is the
default everywhere else (this machine and CI have no Docker engine).
"""
from __future__ import annotations

import asyncio


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
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic

        async def create():
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
            await admin.start()
            try:
                await admin.create_topics([NewTopic(name, n, 1) for name, n in topics.items()])
            finally:
                await admin.close()

        asyncio.run(create())
