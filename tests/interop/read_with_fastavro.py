"""Reads records a scribe node wrote, with clients scribe did not write.

confluent-kafka consumes the topic; fastavro checks and decodes each value
as Avro single-object encoding: the C3 01 marker, the CRC-64-AVRO
fingerprint fastavro computes itself from the .avsc file, then the datum.
The record's metadata comes either in one `scribe_envelope` header (a
`scribe.Envelope` record, single-object encoded the same way, schema in
runtime/avro/envelope.avsc) or as CloudEvents headers; both are read here
into the CloudEvents names. A topic of several record types is read with
one --schema per type: each value by the schema its fingerprint names, its
ce_type that schema's full name. Prints one JSON line per record (key, the
form the metadata came in, the metadata, value) and exits non-zero, naming
the offset, at the first record that does not conform.

    python read_with_fastavro.py --bootstrap HOST:PORT --topic T --schema F.avsc \
        [--schema G.avsc ...] --envelope-schema runtime/avro/envelope.avsc --count N
"""

import argparse
import io
import json
import sys

import fastavro

from topic_reader import messages

REQUIRED_HEADERS = ("ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time", "content-type")
# The envelope's fields under the CloudEvents header names.
ENVELOPE_NAMES = {
    "id": "ce_id",
    "type": "ce_type",
    "source": "ce_source",
    "time": "ce_time",
    "correlation_id": "correlation_id",
    "causation_id": "causation_id",
    "traceparent": "traceparent",
    "tracestate": "tracestate",
}


def single_object(value, schema, fingerprint, what):
    """Decodes one single-object encoded datum, or raises ValueError naming what is wrong."""
    if value[:2] != b"\xc3\x01":
        raise ValueError(f"{what}: no single-object marker")
    if value[2:10] != fingerprint:
        raise ValueError(f"{what}: fingerprint {value[2:10].hex()} is not the schema's {fingerprint.hex()}")
    datum = io.BytesIO(value[10:])
    record = fastavro.schemaless_reader(datum, schema, schema)
    if datum.read():
        raise ValueError(f"{what}: bytes left over after the datum")
    return record


def load(path):
    with open(path) as f:
        schema = fastavro.parse_schema(json.load(f))
    canonical = fastavro.schema.to_parsing_canonical_form(schema)
    return schema, bytes.fromhex(fastavro.schema.fingerprint(canonical, "CRC-64-AVRO"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--schema", required=True, action="append", help="a writer's .avsc file (one per type)")
    parser.add_argument("--envelope-schema", required=True, help="runtime/avro/envelope.avsc")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()

    writers = {}
    for path in args.schema:
        schema, fingerprint = load(path)
        writers[fingerprint] = schema
    envelope_schema, envelope_fingerprint = load(args.envelope_schema)

    seen = 0
    for message, where in messages(args.bootstrap, args.topic, "fastavro-interop", args.count, args.timeout):
        raw = dict(message.headers() or [])
        try:
            value = message.value()
            schema = writers.get(value[2:10])
            if schema is None:
                raise ValueError(f"{where}: fingerprint {value[2:10].hex()} is none of the given schemas")
            full_name = schema["name"]
            record = single_object(value, schema, value[2:10], where)
            if "scribe_envelope" in raw:
                form = "compact"
                fields = single_object(raw["scribe_envelope"], envelope_schema, envelope_fingerprint, f"{where} scribe_envelope")
                headers = {ENVELOPE_NAMES[k]: v for k, v in fields.items() if v is not None}
                required = [ENVELOPE_NAMES[k] for k in ("id", "type", "source", "time", "correlation_id")]
            else:
                form = "cloudevents"
                headers = {k: v.decode() for k, v in raw.items()}
                required = REQUIRED_HEADERS
        except ValueError as e:
            print(e, file=sys.stderr)
            return 1
        missing = [h for h in required if not headers.get(h)]
        if missing:
            print(f"{where}: missing {missing}", file=sys.stderr)
            return 1
        if headers["ce_type"] != full_name:
            print(f"{where}: ce_type {headers['ce_type']} is not {full_name}", file=sys.stderr)
            return 1
        key = message.key().decode() if message.key() is not None else None
        print(json.dumps({"key": key, "envelope": form, "headers": headers, "value": record}, sort_keys=True))
        seen += 1
    if seen < args.count:
        print(f"read {seen} of {args.count} records in {args.timeout}s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
