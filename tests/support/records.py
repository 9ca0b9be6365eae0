"""Stand-ins for aiokafka's ConsumerRecord, for driving ConsumerLoop.process directly."""

from __future__ import annotations

from shared.contracts.topics import APPLICATIONS


class FakeRecord:
    """The fields of a ConsumerRecord the loop reads."""

    def __init__(self, value: bytes, offset: int, key: bytes = b"k", topic: str = APPLICATIONS,
                 partition: int = 0) -> None:
        self.value, self.offset, self.key = value, offset, key
        self.topic, self.partition = topic, partition
