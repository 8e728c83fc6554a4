"""Writes or reads a topic through a Confluent Schema Registry with
confluent-kafka's own AvroSerializer and AvroDeserializer.

    python registry_avro.py produce --bootstrap B --topic T --registry URL \
        --schema FILE [--strategy topic|record|topic_record] < lines
        Each stdin line is {"key": "...", "value": {...}}; the serializer
        registers the schema (auto.register.schemas) under the strategy's
        subject and frames each value: byte 0, schema id, datum.
    python registry_avro.py consume --bootstrap B --topic T --registry URL --count N
        Prints one JSON line per record: key, schema_id (read from the
        framing) and the value the deserializer decoded with the writer's
        schema, which it fetches from the registry by that id.
    python registry_avro.py subject --registry URL --subject S
        Prints the subject's latest version: {"version", "id", "schema"}.

--user and --password add HTTP basic authentication; --ca trusts a PEM CA.
"""

import argparse
import json
import struct
import sys

from confluent_kafka import SerializingProducer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext, StringSerializer
from confluent_kafka.schema_registry import (
    record_subject_name_strategy,
    topic_record_subject_name_strategy,
    topic_subject_name_strategy,
)

from topic_reader import messages

STRATEGIES = {
    "topic": topic_subject_name_strategy,
    "record": record_subject_name_strategy,
    "topic_record": topic_record_subject_name_strategy,
}


def client(args):
    conf = {"url": args.registry}
    if args.user:
        conf["basic.auth.user.info"] = f"{args.user}:{args.password}"
    if args.ca:
        conf["ssl.ca.location"] = args.ca
    return SchemaRegistryClient(conf)


def produce(args):
    with open(args.schema) as f:
        schema = f.read()
    serializer = AvroSerializer(
        client(args),
        schema,
        conf={"auto.register.schemas": True, "subject.name.strategy": STRATEGIES[args.strategy]},
    )
    producer = SerializingProducer({
        "bootstrap.servers": args.bootstrap,
        "key.serializer": StringSerializer("utf_8"),
        "value.serializer": serializer,
        "enable.idempotence": True,
    })
    failed = []
    sent = 0
    for line in sys.stdin:
        if not line.strip():
            continue
        record = json.loads(line)
        producer.produce(
            args.topic,
            key=record.get("key"),
            value=record["value"],
            on_delivery=lambda err, _msg: err and failed.append(str(err)),
        )
        sent += 1
    producer.flush(30)
    if failed:
        print(f"not delivered: {failed[:3]}", file=sys.stderr)
        return 1
    print(json.dumps({"sent": sent}))
    return 0


def consume(args):
    deserializer = AvroDeserializer(client(args))
    seen = 0
    for message, where in messages(args.bootstrap, args.topic, "registry-interop", args.count, args.timeout):
        raw = message.value()
        if len(raw) < 5 or raw[0] != 0:
            print(f"{where}: not in the registry's framing (first byte {raw[:1]!r})", file=sys.stderr)
            return 1
        (schema_id,) = struct.unpack(">I", raw[1:5])
        value = deserializer(raw, SerializationContext(message.topic(), MessageField.VALUE))
        key = message.key().decode() if message.key() is not None else None
        print(json.dumps({"key": key, "schema_id": schema_id, "value": value}), flush=True)
        seen += 1
    if seen < args.count:
        print(f"read {seen} of {args.count} records", file=sys.stderr)
        return 1
    return 0


def subject(args):
    latest = client(args).get_latest_version(args.subject)
    print(json.dumps({
        "version": latest.version,
        "id": latest.schema_id,
        "schema": json.loads(latest.schema.schema_str),
    }))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["produce", "consume", "subject"])
    parser.add_argument("--bootstrap")
    parser.add_argument("--topic")
    parser.add_argument("--registry", required=True)
    parser.add_argument("--user")
    parser.add_argument("--password", default="")
    parser.add_argument("--ca")
    parser.add_argument("--schema")
    parser.add_argument("--strategy", choices=sorted(STRATEGIES), default="topic")
    parser.add_argument("--subject")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    return {"produce": produce, "consume": consume, "subject": subject}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
