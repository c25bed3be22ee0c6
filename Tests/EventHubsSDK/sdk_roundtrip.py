#!/usr/bin/env python3
"""Drives the official Azure Event Hubs SDK (azure-eventhub) against an Event Hubs endpoint and prints, as JSON
lines, what it sent and what it read back, for the Swift tests to check.

    sdk_roundtrip.py produce CONNECTION_STRING HUB          send the test's events; print what was sent
    sdk_roundtrip.py consume CONNECTION_STRING HUB COUNT    read every partition from the start until COUNT events
    sdk_roundtrip.py properties CONNECTION_STRING HUB       print every field of the hub's and each partition's properties
    sdk_roundtrip.py wrong-key CONNECTION_STRING HUB        try to send with a wrong key; print the error's class

Events sent by `produce`: to partition 0 a batch of 5 (application property "i"), to partition 1 one event sent
alone, by partition key "user-7" a batch of 3, and 1 event of 100 000 bytes to partition 2 (several frames).
"""

import datetime
import json
import sys
import threading
import time

from azure.eventhub import EventData, EventHubConsumerClient, EventHubProducerClient


def out(record):
    print(json.dumps(record, sort_keys=True), flush=True)


def produce(conn, hub):
    producer = EventHubProducerClient.from_connection_string(conn, eventhub_name=hub)
    with producer:
        batch = producer.create_batch(partition_id="0")
        for i in range(5):
            event = EventData(f"p0-event-{i}")
            event.properties = {"i": i, "kind": "batch"}
            batch.add(event)
        producer.send_batch(batch)
        for i in range(5):
            out({"sent": "partition", "partition": "0", "body": f"p0-event-{i}", "properties": {"i": i, "kind": "batch"}})

        single = EventData("alone")
        single.properties = {"kind": "single"}
        producer.send_event(single, partition_id="1")
        out({"sent": "single", "partition": "1", "body": "alone", "properties": {"kind": "single"}})

        keyed = producer.create_batch(partition_key="user-7")
        for i in range(3):
            keyed.add(EventData(f"keyed-{i}"))
        producer.send_batch(keyed)
        for i in range(3):
            out({"sent": "key", "partition_key": "user-7", "body": f"keyed-{i}"})

        big = producer.create_batch(partition_id="2")
        big.add(EventData(b"x" * 100_000))
        producer.send_batch(big)
        out({"sent": "big", "partition": "2", "size": 100_000})


def consume(conn, hub, count):
    consumer = EventHubConsumerClient.from_connection_string(conn, consumer_group="$Default", eventhub_name=hub)
    received = []
    done = threading.Event()

    def on_event(context, event):
        if event is None:
            return
        body = b"".join(event.body)
        record = {
            "partition": context.partition_id,
            "sequence_number": event.sequence_number,
            "offset": str(event.offset),
            "enqueued_time": event.enqueued_time.timestamp() if event.enqueued_time else None,
            "partition_key": event.partition_key.decode() if isinstance(event.partition_key, bytes) else event.partition_key,
            "properties": {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                           for k, v in (event.properties or {}).items()},
        }
        if len(body) > 1000:
            record["size"] = len(body)
        else:
            record["body"] = body.decode()
        received.append(record)
        out(record)
        if len(received) >= count:
            done.set()

    thread = threading.Thread(target=lambda: consumer.receive(on_event=on_event, starting_position="-1", max_wait_time=1), daemon=True)
    thread.start()
    ok = done.wait(60)
    consumer.close()
    if not ok:
        sys.exit(f"only {len(received)} of {count} events arrived within 60 s")


def printable(value):
    """A property as JSON can carry it: times as ISO 8601 text (what the SDK's datetime prints), ids as text."""
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode()
    return value


def properties(conn, hub):
    """Every field get_eventhub_properties and get_partition_properties return, as the SDK returns them."""
    client = EventHubConsumerClient.from_connection_string(conn, consumer_group="$Default", eventhub_name=hub)
    with client:
        hub_props = client.get_eventhub_properties()
        record = {key: printable(value) for key, value in hub_props.items() if key != "partition_ids"}
        record.update({"hub": hub_props["eventhub_name"], "partition_ids": list(hub_props["partition_ids"])})
        out(record)
        for pid in hub_props["partition_ids"]:
            p = client.get_partition_properties(pid)
            record = {key: printable(value) for key, value in p.items()}
            record.update({"partition": p["id"], "last_enqueued_offset": str(p["last_enqueued_offset"])})
            out(record)


def wrong_key(conn, hub):
    producer = EventHubProducerClient.from_connection_string(conn, eventhub_name=hub, retry_total=0)
    try:
        with producer:
            producer.send_event(EventData("nope"), partition_id="0")
        out({"error": None})
    except Exception as error:  # the class is what the test checks
        out({"error": type(error).__name__, "message": str(error)[:300]})


def main():
    command, conn, hub = sys.argv[1], sys.argv[2], sys.argv[3]
    started = time.monotonic()
    if command == "produce":
        produce(conn, hub)
    elif command == "consume":
        consume(conn, hub, int(sys.argv[4]))
    elif command == "properties":
        properties(conn, hub)
    elif command == "wrong-key":
        wrong_key(conn, hub)
    else:
        sys.exit(f"unknown command {command}")
    print(f"# {command} took {time.monotonic() - started:.2f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
