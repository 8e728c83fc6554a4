"""Reads records a scribe node wrote, with clients scribe did not write.

confluent-kafka consumes the topic; fastavro checks and decodes each value
as Avro single-object encoding: the C3 01 marker, the CRC-64-AVRO
fingerprint fastavro computes itself from the .avsc file, then the datum.
Prints one JSON line per record (key, CloudEvents headers, value) and exits
non-zero, naming the offset, at the first record that does not conform.

    python read_with_fastavro.py --bootstrap HOST:PORT --topic T --schema F.avsc --count N
"""

import argparse
import io
import json
import sys
import time

import fastavro
from confluent_kafka import Consumer, TopicPartition

REQUIRED_HEADERS = ("ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time", "content-type")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--schema", required=True, help="the writer's .avsc file")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()

    with open(args.schema) as f:
        schema = fastavro.parse_schema(json.load(f))
    fingerprint = bytes.fromhex(fastavro.schema.fingerprint(fastavro.schema.to_parsing_canonical_form(schema), "CRC-64-AVRO"))
    full_name = schema["name"]

    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": "fastavro-interop",
        "enable.auto.commit": False,
    })
    metadata = consumer.list_topics(args.topic, timeout=10)
    partitions = metadata.topics[args.topic].partitions
    consumer.assign([TopicPartition(args.topic, p, 0) for p in partitions])

    seen = 0
    deadline = time.monotonic() + args.timeout
    while seen < args.count and time.monotonic() < deadline:
        message = consumer.poll(0.2)
        if message is None:
            continue
        if message.error():
            print(f"consumer error: {message.error()}", file=sys.stderr)
            continue
        where = f"{message.topic()}/{message.partition()}@{message.offset()}"
        value = message.value()
        if value[:2] != b"\xc3\x01":
            print(f"{where}: no single-object marker", file=sys.stderr)
            return 1
        if value[2:10] != fingerprint:
            print(f"{where}: fingerprint {value[2:10].hex()} is not the schema's {fingerprint.hex()}", file=sys.stderr)
            return 1
        datum = io.BytesIO(value[10:])
        record = fastavro.schemaless_reader(datum, schema, schema)
        if datum.read():
            print(f"{where}: bytes left over after the datum", file=sys.stderr)
            return 1
        headers = {k: v.decode() for k, v in (message.headers() or [])}
        missing = [h for h in REQUIRED_HEADERS if h not in headers]
        if missing:
            print(f"{where}: missing headers {missing}", file=sys.stderr)
            return 1
        if headers["ce_type"] != full_name:
            print(f"{where}: ce_type {headers['ce_type']} is not {full_name}", file=sys.stderr)
            return 1
        key = message.key().decode() if message.key() is not None else None
        print(json.dumps({"key": key, "headers": headers, "value": record}, sort_keys=True))
        seen += 1
    consumer.close()
    if seen < args.count:
        print(f"read {seen} of {args.count} records in {args.timeout}s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
