#!/usr/bin/env python3
"""Event Hubs source throughput: Sluice's `eventhubs` source against the official Python consumer, reading the same
1 KB events from the same emulator in the same run.

    swift build -c release --scratch-path .build-release
    .build/test-venv/bin/python3 Benchmarks/eventhubs/run.py [--events 100000] [--size 1000] [--rounds 3]

(scripts/test creates .build/test-venv with azure-eventhub 5.15.1.)

Starts `sluice-eventhubs-emulator` with two hubs, `bench4` (4 partitions) and `bench32` (32 partitions), puts
`--events` events of `--size` bytes into each (spread evenly over its partitions), then for each hub alternates
rounds of
  sluice     `sluice run` of eventhubs -> count -> console, from the earliest event, until idle; the time is the
             sum of the batches' processing times (reading included), so start-up and the batch clock are left out;
  official   `EventHubConsumerClient.receive` over all partitions from the start until every event arrived
             (azure-eventhub 5.15.1, pyamqp), timed from the first event callback's connection to the last event.
Each round checks the count: Sluice's must equal the events produced. Prints events/s and MB/s for both and the
ratio (medians over the rounds), then the CPU each side used per event (medians): the `sluice run` process (all of
it, start-up included), the official consumer (this Python process, its receiving threads included) and the emulator
while serving each. Everything goes to bench-out/eventhubs/ (git-ignored).
"""

import argparse
import os
import pathlib
import re
import resource
import statistics
import subprocess
import sys
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent

PIPELINE = """\
name: eventhubs-bench
batch_interval: 100ms
sources:
  events:
    plugin: eventhubs
    max_records_per_partition: 100000
    config:
      eventhubs.namespace: "127.0.0.1:{port}"
      eventhubs.name: [{hub}]
      eventhubs.policyname: RootManageSharedAccessKey
      eventhubs.policykey: SAS_KEY_VALUE
      eventhubs.useDevelopmentEmulator: true
      eventhubs.startingPosition: earliest
      eventhubs.maxRate: 20000
stages:
  total: {{from: events, op: count}}
sinks:
  out: {{from: total, plugin: console, config: {{header: false}}}}
"""


def start_emulator(binary, out):
    process = subprocess.Popen(
        [str(binary), "--port", "0", "--hub", "bench4:4", "--hub", "bench32:32", "--quiet"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(out / "emulator.err", "w"), text=True, bufsize=1,
    )
    first = process.stdout.readline()
    match = re.search(r"127\.0\.0\.1:(\d+)", first)
    if not match:
        sys.exit(f"run.py: the emulator did not start: {first!r}")
    process.stdout.readline()  # the connection string
    return process, int(match.group(1))


def command(emulator, line):
    emulator.stdin.write(line + "\n")
    emulator.stdin.flush()
    answer = emulator.stdout.readline().strip()
    if answer != f"ok {line}":
        sys.exit(f"run.py: emulator answered {answer!r} to {line[:60]!r}")


def process_cpu(pid):
    """User + system CPU seconds of a running process, from /proc."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_sluice(sluice, work, port, hub):
    (work / "p.yaml").write_text(PIPELINE.format(port=port, hub=hub))
    process = subprocess.Popen([str(sluice), "run", str(work / "p.yaml"), "--until-idle", "--idle-batches", "5", "--progress", "plain"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = process.communicate()
    (work / f"sluice-{hub}.err").write_text(stderr)
    if process.returncode != 0:
        sys.exit(f"run.py: sluice failed:\n{stderr[-3000:]}")
    seconds = sum(float(ms) for records, ms in re.findall(r": (\d+) records, .*?processing ([0-9.]+) ms", stderr) if int(records) > 0) / 1000
    counted = sum(int(n) for n in re.findall(r"^(\d+)$", stdout, re.M))
    return seconds, counted


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_official(port, hub, expected):
    from azure.eventhub import EventHubConsumerClient
    conn = f"Endpoint=sb://127.0.0.1:{port};SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true"
    client = EventHubConsumerClient.from_connection_string(conn, consumer_group="$Default", eventhub_name=hub)
    lock = threading.Lock()
    state = {"count": 0, "first": None, "last": None}
    done = threading.Event()

    def on_event_batch(context, events):
        now = time.perf_counter()
        with lock:
            if state["first"] is None:
                state["first"] = now
            state["count"] += len(events)
            state["last"] = now
            if state["count"] >= expected:
                done.set()

    started = time.perf_counter()
    thread = threading.Thread(target=lambda: client.receive_batch(on_event_batch=on_event_batch, starting_position="-1",
                                                                  max_batch_size=300, prefetch=300), daemon=True)
    thread.start()
    if not done.wait(600):
        sys.exit(f"run.py: the official consumer got {state['count']} of {expected} events in 600 s")
    client.close()
    return state["last"] - started, state["count"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000, help="events per hub (default 100000)")
    parser.add_argument("--size", type=int, default=1000, help="event body bytes (default 1000)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--build", default=str(ROOT / ".build-release/release"), help="directory with sluice and the emulator")
    parser.add_argument("--out", default=str(ROOT / "bench-out/eventhubs"), help="working directory")
    args = parser.parse_args()

    build = pathlib.Path(args.build)
    sluice, emulator_binary = build / "sluice", build / "sluice-eventhubs-emulator"
    for binary in (sluice, emulator_binary):
        if not binary.exists():
            sys.exit(f"run.py: {binary} not found; build first with: swift build -c release --scratch-path .build-release")
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    emulator, port = start_emulator(emulator_binary, out)
    try:
        body = ("e{i}-" + "x" * args.size)[: args.size]
        for hub, partitions in (("bench4", 4), ("bench32", 32)):
            for partition in range(partitions):
                command(emulator, f"produce {hub} {partition} {args.events // partitions} {body}")
        print(f"{args.events} events of {args.size} bytes in each hub (bench4: 4 partitions, bench32: 32)\n", flush=True)
        rows = []
        for hub, partitions in (("bench4", 4), ("bench32", 32)):
            expected = (args.events // partitions) * partitions
            times = {"sluice": [], "official": []}
            cpu = {key: [] for key in ("sluice", "official", "emulator-sluice", "emulator-official")}
            for round_number in range(1, args.rounds + 1):
                before, emulator_before = children_cpu(), process_cpu(emulator.pid)
                seconds, counted = run_sluice(sluice, out, port, hub)
                cpu["sluice"].append(children_cpu() - before)
                cpu["emulator-sluice"].append(process_cpu(emulator.pid) - emulator_before)
                if counted != expected:
                    sys.exit(f"run.py: sluice counted {counted} events in {hub}, not {expected}")
                times["sluice"].append(seconds)
                before, emulator_before = time.process_time(), process_cpu(emulator.pid)
                seconds, counted = run_official(port, hub, expected)
                cpu["official"].append(time.process_time() - before)
                cpu["emulator-official"].append(process_cpu(emulator.pid) - emulator_before)
                times["official"].append(seconds)
                print(f"{hub} round {round_number}: sluice {times['sluice'][-1]:.2f} s, official {seconds:.2f} s", flush=True)
            rows.append((hub, partitions, expected, statistics.median(times["sluice"]), statistics.median(times["official"]),
                         {key: statistics.median(values) / expected * 1e6 for key, values in cpu.items()}))
        print()
        print(f"{'hub':10}{'partitions':>11}{'sluice ev/s':>14}{'MB/s':>8}{'official ev/s':>15}{'MB/s':>8}{'ratio':>8}")
        for hub, partitions, events, s, o, _ in rows:
            mb = events * args.size / 1e6
            print(f"{hub:10}{partitions:>11}{events / s:>14,.0f}{mb / s:>8.1f}{events / o:>15,.0f}{mb / o:>8.1f}{o / s:>8.1f}")
        print(f"(medians of {args.rounds} alternating rounds; ratio = Sluice's throughput over the official consumer's)")
        print()
        print(f"{'CPU µs/event':14}{'sluice':>8}{'emulator':>10}{'official':>10}{'emulator':>10}")
        for hub, _, _, _, _, c in rows:
            print(f"{hub:14}{c['sluice']:>8.2f}{c['emulator-sluice']:>10.2f}{c['official']:>10.2f}{c['emulator-official']:>10.2f}")
        print("(the emulator's columns: while it served the run on their left)")
    finally:
        emulator.kill()


if __name__ == "__main__":
    main()
