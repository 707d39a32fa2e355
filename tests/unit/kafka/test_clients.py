"""Every Kafka client parcours builds comes from `KafkaClients`, with the connection's security."""
from __future__ import annotations

import asyncio

import aiokafka
import aiokafka.admin
import pytest

from streams.config import Topics
from streams.kafka.clients import KafkaClients
from streams.kafka.security import KafkaSecurity

SASL = KafkaSecurity("SASL_PLAINTEXT", "SCRAM-SHA-256", "parcours", "s3cret")
CLIENTS = KafkaClients("kafka://b1:9092,b2:9092/", SASL)
SECURITY = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256",
            "sasl_plain_username": "parcours", "sasl_plain_password": "s3cret"}


class Refused(Exception):
    pass


@pytest.fixture
def built(monkeypatch) -> list[tuple[str, tuple, dict]]:
    """aiokafka's clients replaced by recorders whose `start` fails: (kind, topics, kwargs)."""
    calls: list[tuple[str, tuple, dict]] = []

    def recorder(kind: str):
        class Recorder:
            def __init__(self, *topics, **kwargs):
                calls.append((kind, topics, kwargs))

            async def start(self):
                raise Refused(kind)

            async def stop(self):
                pass

            async def close(self):
                pass

            def assignment(self):
                return set()

        return Recorder

    monkeypatch.setattr(aiokafka, "AIOKafkaConsumer", recorder("consumer"))
    monkeypatch.setattr(aiokafka, "AIOKafkaProducer", recorder("producer"))
    monkeypatch.setattr(aiokafka.admin, "AIOKafkaAdminClient", recorder("admin"))
    return calls


def refused(coro) -> None:
    with pytest.raises(Refused):
        asyncio.run(coro)


def test_brokers_alone_are_a_plaintext_connection():
    assert KafkaClients.at("kafka://h:1/").bootstrap == "h:1"
    assert KafkaClients.at(["h:1", "h:2"]) == KafkaClients("h:1,h:2")
    assert KafkaClients.at(CLIENTS) is CLIENTS
    assert KafkaClients.at("h:1").options() == {"bootstrap_servers": "h:1"}
    assert CLIENTS.options(client_id="x") == {"bootstrap_servers": "b1:9092,b2:9092", **SECURITY,
                                              "client_id": "x"}


def test_the_shells_clients_carry_the_security_options(built):
    from streams.embedded.worker_process import count_until
    from streams.kafka.admin import acreate_topics
    from streams.kafka.consumer import IngestConsumer
    from streams.kafka.patches import true_end_offsets
    from streams.kafka.producer import BatchProducer

    async def handle(topic, records):
        pass

    refused(IngestConsumer(CLIENTS, ["touchpoints"], "g", handle).run())
    refused(BatchProducer(CLIENTS, client_id="outputs").start())
    refused(acreate_topics(CLIENTS, {"t": 1}))
    refused(true_end_offsets(CLIENTS, [("t", 0)], timeout=1))
    refused(count_until(CLIENTS, ["t"], 1, timeout=1))
    assert [kind for kind, _, _ in built] == ["consumer", "producer", "admin", "consumer",
                                              "consumer"]
    for _kind, _topics, kwargs in built:
        assert kwargs["bootstrap_servers"] == "b1:9092,b2:9092"
        assert {k: kwargs[k] for k in SECURITY} == SECURITY
    assert built[0][2]["group_id"] == "g" and built[1][2]["client_id"] == "outputs"
    assert built[4][1] == ("t",)


def test_the_clis_clients_carry_the_security_options(built):
    from streams.cli.common import CliError, check_kafka
    from streams.cli.publish import send
    from streams.worker.forget import request_forget

    with pytest.raises(CliError, match="cannot reach Kafka at b1:9092,b2:9092: admin"):
        asyncio.run(check_kafka(CLIENTS, timeout=1))
    refused(send(CLIENTS, "reference.inventory", [(None, b"{}")]))
    refused(request_forget(CLIENTS, Topics(), "email:x", wait=1))
    assert [kind for kind, _, _ in built] == ["admin", "producer", "producer"]
    for _kind, _topics, kwargs in built:
        assert {k: kwargs[k] for k in SECURITY} == SECURITY


def test_a_string_still_works_where_a_connection_is_taken(built):
    from streams.kafka.consumer import IngestConsumer
    from streams.kafka.producer import BatchProducer

    async def handle(topic, records):
        pass

    refused(IngestConsumer("h:1", ["t"], "g", handle, client_options=SECURITY).run())
    refused(BatchProducer("h:1", client_options=SECURITY).start())
    for _kind, _topics, kwargs in built:
        assert kwargs["bootstrap_servers"] == "h:1"
        assert {k: kwargs[k] for k in SECURITY} == SECURITY
