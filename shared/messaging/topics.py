"""Topic creation (`python -m shared.messaging.topics`): every topic of the contract, idempotently."""

from __future__ import annotations

import asyncio
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.config.settings import get_settings
from shared.contracts.topics import ALL_TOPICS

log = logging.getLogger(__name__)


async def ensure_topics(
    bootstrap: str, partitions: int = 6, timeout_s: float = 30.0, namespace: str = ""
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [namespace + t for t in ALL_TOPICS if namespace + t not in existing]
            if missing:
                try:
                    await admin.create_topics(
                        [NewTopic(name=t, num_partitions=partitions, replication_factor=1) for t in missing]
                    )
                except TopicAlreadyExistsError:
                    pass
            return
        except Exception:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)
        finally:
            await admin.close()


def main() -> None:
    settings = get_settings()
    asyncio.run(
        ensure_topics(
            settings.kafka_bootstrap_servers, settings.topic_partitions, namespace=settings.topic_namespace
        )
    )
    print(f"topics ready on {settings.kafka_bootstrap_servers}: {', '.join(ALL_TOPICS)}")


if __name__ == "__main__":
    main()
