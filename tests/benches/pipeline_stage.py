"""One stage of the benchmark pipeline, as the Python stacks scribe
replaces write it: confluent-kafka consumes a batch, fastavro decodes each
value (Avro single-object encoding), the stage adds one hop, fastavro
encodes it again, confluent-kafka produces it under the same key, and each
input offset is stored for the periodic commit once its output is
delivered (commit after delivery).

Ends once RECORDS outputs are delivered, then prints its CPU time since its
first record and its peak RSS:

    child cpu_s=X maxrss_kb=Y

    python pipeline_stage.py --bootstrap HOST:PORT --input T --output T \
        --group G --records N --schema JSON
"""

import argparse
import io
import json
import resource

import fastavro
from confluent_kafka import Consumer, Producer, TopicPartition

# The single-object header: the C3 01 marker and the 8-byte fingerprint.
HEADER = 10


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("--bootstrap", "--input", "--output", "--group", "--schema"):
        parser.add_argument(name, required=True)
    parser.add_argument("--records", type=int, required=True)
    args = parser.parse_args()

    schema = fastavro.parse_schema(json.loads(args.schema))
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "auto.offset.reset": "earliest",
        "enable.auto.offset.store": False,
        "fetch.wait.max.ms": 5,
    })
    consumer.subscribe([args.input])
    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "enable.idempotence": True,
        "linger.ms": 5,
    })
    delivered = 0

    def on_delivery(error, message, source):
        nonlocal delivered
        if error is None:
            consumer.store_offsets(offsets=[source])
            delivered += 1

    started = None
    handled = 0
    while handled < args.records:
        for message in consumer.consume(num_messages=500, timeout=0.1):
            if message.error():
                continue
            if started is None:
                started = cpu_seconds()
            value = message.value()
            payload = fastavro.schemaless_reader(io.BytesIO(value[HEADER:]), schema, schema)
            payload["hops"] += 1
            out = io.BytesIO()
            out.write(value[:HEADER])
            fastavro.schemaless_writer(out, schema, payload)
            source = TopicPartition(message.topic(), message.partition(), message.offset() + 1)
            while True:
                try:
                    producer.produce(
                        args.output,
                        out.getvalue(),
                        message.key(),
                        on_delivery=lambda e, m, s=source: on_delivery(e, m, s),
                    )
                    break
                except BufferError:
                    producer.poll(0.001)
            handled += 1
        producer.poll(0)
    while delivered < args.records:
        producer.poll(0.01)
    consumer.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"child cpu_s={cpu_seconds() - (started or 0.0):.6f} maxrss_kb={peak}", flush=True)


if __name__ == "__main__":
    main()
