"""The Kafka producer every service uses (only the outbox relay publishes)."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer


def make_producer(bootstrap: str, client_id: str) -> AIOKafkaProducer:
    # No idempotent producer or transactions: the embedded broker lacks InitProducerId, and
    # the outbox + inbox give exactly-once effects without them.
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=False,
        linger_ms=2,
        max_batch_size=256 * 1024,
        request_timeout_ms=15_000,
    )
