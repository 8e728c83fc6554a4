"""Reads a topic a `json-out` mirror writes, with a client scribe did not write.

confluent-kafka consumes the topic from the start (no group offsets used);
each value must be JSON text and each record must carry its metadata as
CloudEvents headers. Prints one JSON line per record (key, ce_id, ce_type,
value) and exits non-zero, naming the offset, at the first record that does
not conform.

    python read_json_mirror.py --bootstrap HOST:PORT --topic T --count N
"""

import argparse
import json
import sys


from topic_reader import messages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()

    seen = 0
    for message, where in messages(args.bootstrap, args.topic, "json-mirror-interop", args.count, args.timeout):
        headers = {k: v.decode() for k, v in (message.headers() or [])}
        try:
            value = json.loads(message.value())
        except ValueError as e:
            print(f"{where}: the value is not JSON: {e}", file=sys.stderr)
            return 1
        missing = [h for h in ("ce_id", "ce_type", "ce_source") if not headers.get(h)]
        if missing:
            print(f"{where}: missing headers {missing}", file=sys.stderr)
            return 1
        key = message.key().decode() if message.key() is not None else None
        print(json.dumps({"key": key, "ce_id": headers["ce_id"], "ce_type": headers["ce_type"], "value": value}, sort_keys=True))
        seen += 1
    if seen < args.count:
        print(f"read {seen} of {args.count} records in {args.timeout}s", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
