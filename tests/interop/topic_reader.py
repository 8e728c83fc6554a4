"""Reads a topic from its start with confluent-kafka, shared by the interop readers."""

import sys
import time

from confluent_kafka import Consumer, TopicPartition


def messages(bootstrap, topic, group, count, timeout):
    """Yields up to `count` records of every partition of `topic`, each as
    (message, "topic/partition@offset"), until `timeout` seconds pass; no
    group offsets are used or committed."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
    })
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = metadata.topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        seen = 0
        deadline = time.monotonic() + timeout
        while seen < count and time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None:
                continue
            if message.error():
                print(f"consumer error: {message.error()}", file=sys.stderr)
                continue
            seen += 1
            yield message, f"{message.topic()}/{message.partition()}@{message.offset()}"
    finally:
        consumer.close()
