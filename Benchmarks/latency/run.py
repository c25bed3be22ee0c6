#!/usr/bin/env python3
"""Latency: from a line's send to the commit of the batch that holds it, with a 100 ms batch interval.

    swift build -c release --scratch-path .build-release
    python3 Benchmarks/latency/run.py [--rounds 3] [--seconds 20] [--peak-seconds 10] [--modes checkpointed,plain]

A local TCP server feeds the `socket` source; the pipeline writes every line to the `files` sink as it is
(socket -> files, batch_interval 100ms). Each line is `<seq> <send time ns>`, the send time read from
CLOCK_REALTIME (time.time_ns()) just before its burst is written to the socket: the clock the scheduler reads for
batch times and delays, so the two sides compare without translation.

The committed instant of a batch is its completion as the scheduler reports it (`--log-format json`, the record
`batch N completed` with `batch_time_ms` and `total_delay_ms`): batch time + total delay is the moment after the
sinks committed (the files sink renamed the batch's file into place), the checkpoint was written and the source
was told, i.e. the moment from which a crash can no longer lose or repeat the batch. A fresh run has no schedule
offset, so batch time + total delay is that instant on CLOCK_REALTIME.

The files sink names each batch's file after its batch time (`lines-<batch time ms>`), so the lines of a file are
the batch's lines. Lines in a file are consecutive numbers (one partition, in order): the file's first and last
line and its line count place every line, and the files together must hold 0 .. sent-1 each exactly once
(consecutive, non-overlapping, count = last - first + 1 in each file), else the benchmark fails.

Steps, each with a fresh `sluice run` and output directory:
1. peak: lines sent as fast as the sender goes for --peak-seconds; the peak is the records per second of the
   batches committed after the first second (their records over the time between their commits).
2. 25 %, 50 % and 90 % of that peak, paced (a burst every millisecond of what is due), --seconds each. Lines
   sent in the first second are left out of the percentiles (start-up: connecting, the first log segment) but
   not out of the exactly-once check.

With --rounds N the whole of it runs N times, the modes' order alternating, and the median p99 per mode and
fraction is printed last. Two modes by default: `checkpointed` (a checkpoint directory, so the socket source's write-ahead log is on and
fsync'd before each batch is planned, and the files sink fsyncs each file: the exactly-once set-up) and `plain`
(no checkpoint: no log, no checkpoint commit; the files sink still fsyncs).
"""

import argparse
import bisect
import json
import os
import pathlib
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
INTERVAL_MS = 100
WARMUP_S = 1.0

PIPELINE = """\
name: latency
batch_interval: {interval}ms
{checkpoint}
sources:
  lines:
    plugin: socket
    max_records_per_partition: 50000000
    config: {{port: {port}}}
sinks:
  out: {{from: lines, plugin: files, config: {{prefix: out/lines}}}}
"""


class Feed:
    """The TCP server the source connects to. Sends numbered, time-stamped lines at `rate` per second (None: as fast
    as the socket takes them) and keeps each burst as (first seq, count, send time ns)."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.bursts = []
        self.sent = 0
        self.blocked = 0.0  # seconds spent inside sendall beyond a burst's own copy: TCP holding the sender
        self.done = threading.Event()
        self.failure = None

    def start(self, rate, seconds):
        self.thread = threading.Thread(target=self._run, args=(rate, seconds), daemon=True)
        self.thread.start()

    def _run(self, rate, seconds):
        try:
            self.listener.settimeout(30)
            connection, _ = self.listener.accept()
        except OSError as error:
            self.failure = f"the source did not connect: {error}"
            self.done.set()
            return
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        start = time.monotonic()
        self.started = start
        try:
            while True:
                now = time.monotonic()
                if now - start >= seconds:
                    break
                if rate is None:
                    count = 20_000
                else:
                    count = int((now - start) * rate) - self.sent
                    if count <= 0:
                        time.sleep(0.0005)
                        continue
                    # Behind (a slow sendall, or Python slower than the rate): catch up in bursts of the usual size,
                    # each stamped when it is made, so a line's time is never older than its own burst's making.
                    count = min(count, 20_000)
                stamp = time.time_ns()
                tail = b" %d\n" % stamp
                data = tail.join([b"%d" % seq for seq in range(self.sent, self.sent + count)]) + tail
                before = time.monotonic()
                connection.sendall(data)
                self.blocked += time.monotonic() - before
                self.bursts.append((self.sent, count, stamp))
                self.sent += count
            self.elapsed = time.monotonic() - start
        except OSError as error:
            self.failure = f"sending failed after {self.sent} lines: {error}"
        finally:
            self.done.set()
            # The connection stays open until the run ends: a closed connection makes the source reconnect and log.
            self.connection = connection

    def close(self):
        if getattr(self, "connection", None):
            self.connection.close()
        self.listener.close()


def completed_batches(log_path):
    """The `batch N completed` records of a --log-format json log: {batch time ms: (commit ms, records, processing
    ms, scheduling delay ms)}."""
    batches = {}
    try:
        text = log_path.read_text()
    except OSError:
        return batches
    for line in text.splitlines():
        if '"batch_time_ms"' not in line or "completed" not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line being written
        if "total_delay_ms" in record:
            batches[int(record["batch_time_ms"])] = (record["batch_time_ms"] + record["total_delay_ms"], int(record["records"]),
                                                     record["processing_ms"], record["scheduling_delay_ms"])
    return batches


def stage_times(events_path):
    """{batch time ms: (source read ms, sink ms)} from the batch events `sluice run --events-fd` writes (the figures
    `sluice serve` shows per stage): the sink's time covers its writes, its fsync and its commit; the rest of a
    batch's processing is planning (with the write-ahead log's fsync), the checkpoint commit and the source commit."""
    times = {}
    for line in events_path.read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") != "batchCompleted":
            continue
        stages = {stage["stage"]: stage["milliseconds"] for stage in event.get("stages", [])}
        times[int(event["timeMilliseconds"])] = (stages.get("lines", 0.0), stages.get("out", 0.0))
    return times


def scheduler_ns(pid):
    """Nanoseconds the threads of `pid` ran on a CPU and waited in a run queue for one, summed (/proc/PID/task/*/
    schedstat; threads that already ended are not counted): how much a loaded machine kept sluice waiting."""
    ran = waited = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0, 0
    for task in tasks:
        try:
            fields = open(f"/proc/{pid}/task/{task}/schedstat").read().split()
        except OSError:
            continue
        ran += int(fields[0])
        waited += int(fields[1])
    return ran, waited


def run(sluice, work, rate, seconds, checkpointed, settings=()):
    """One fresh run: sends for `seconds` at `rate`, waits until every line is committed, stops sluice. Returns the
    feed and the batches (see completed_batches); the feed gets `ran` and `waited`, sluice's CPU and run-queue
    seconds over the run."""
    shutil.rmtree(work, ignore_errors=True)
    (work / "out").mkdir(parents=True)
    feed = Feed()
    (work / "pipeline.yaml").write_text(
        PIPELINE.format(interval=INTERVAL_MS, port=feed.port, checkpoint="checkpoint: state" if checkpointed else ""))
    log_path = work / "log.jsonl"
    with open(log_path, "w") as log, open(work / "events.jsonl", "w") as events:
        overrides = [argument for setting in settings for argument in
                     (("--parallelism", setting[len("parallelism="):]) if setting.startswith("parallelism=") else ("--set", setting))]
        process = subprocess.Popen([str(sluice), "run", "pipeline.yaml", "--log-format", "json",
                                    "--events-fd", str(events.fileno()), *overrides], cwd=work,
                                   stdout=subprocess.DEVNULL, stderr=log, pass_fds=(events.fileno(),))
        try:
            feed.start(rate, seconds)
            if not feed.done.wait(seconds + 60):
                sys.exit("run.py: the sender did not finish")
            if feed.failure:
                sys.exit(f"run.py: {feed.failure}\n{log_path.read_text()[-2000:]}")
            deadline = time.monotonic() + 120
            while sum(batch[1] for batch in completed_batches(log_path).values()) < feed.sent:
                if process.poll() is not None:
                    sys.exit(f"run.py: sluice ended early:\n{log_path.read_text()[-2000:]}")
                if time.monotonic() > deadline:
                    sys.exit(f"run.py: not every line was committed within 120 s of the last send ({feed.sent} sent)")
                time.sleep(0.1)
            ran, waited = scheduler_ns(process.pid)
            feed.ran, feed.waited = ran / 1e9, waited / 1e9
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
            feed.close()
    return feed, completed_batches(log_path)


def placed_batches(work, feed, batches):
    """Each non-empty batch as (first seq, last seq, commit ms), checking that the files hold every sent line
    exactly once."""
    placed = []
    for path in (work / "out").iterdir():
        name = path.name
        if not name.startswith("lines-") or "." in name:
            continue  # a temporary file, if any was left
        data = path.read_bytes()
        if not data:
            continue
        count = data.count(b"\n")
        first = int(data[:data.index(b" ")])
        last = int(data[data.rindex(b"\n", 0, len(data) - 1) + 1:].split(b" ")[0]) if count > 1 else first
        if last - first + 1 != count:
            sys.exit(f"run.py: {path} holds {count} lines numbered {first}..{last}: lines lost or doubled")
        time_ms = int(name[len("lines-"):])
        if time_ms not in batches:
            sys.exit(f"run.py: {path} has no completed batch in the log")
        commit, records = batches[time_ms][:2]
        if records != count:
            sys.exit(f"run.py: batch at {time_ms} reports {records} records, its file holds {count}")
        placed.append((first, last, commit, time_ms))
    placed.sort()
    expected = 0
    for first, last, _, _ in placed:
        if first != expected:
            sys.exit(f"run.py: lines {expected}..{first - 1} are missing or doubled (a file starts at {first})")
        expected = last + 1
    if expected != feed.sent:
        sys.exit(f"run.py: {feed.sent} lines sent, {expected} committed")
    return placed


def latencies(feed, placed, batches):
    """Per line, commit of its batch − its send time, as (latency ms, lines) runs; lines of the warm-up left out.
    Also the lines that missed a batch: sent before some earlier batch was planned (its time + scheduling delay)
    and yet not in it — they were still in the kernel's socket buffer or the source's receiving thread (or, with the
    write-ahead log, not yet written to it) when that batch asked what was available."""
    firsts = [first for first, _, _, _ in placed]
    plans = sorted(time_ms + batch[3] for time_ms, batch in batches.items())
    warmup_end = feed.bursts[0][2] + WARMUP_S * 1e9 if feed.bursts else 0
    runs = []
    missed = 0
    for first, count, stamp in feed.bursts:
        if stamp < warmup_end:
            continue
        seq, end = first, first + count
        index = bisect.bisect_right(firsts, seq) - 1
        # The first batch planned after the line was sent: the one it should be in.
        due = plans[min(bisect.bisect_right(plans, stamp / 1e6), len(plans) - 1)]
        while seq < end:
            batch_first, batch_last, commit, time_ms = placed[index]
            upto = min(end, batch_last + 1)
            runs.append((commit - stamp / 1e6, upto - seq))
            if time_ms + batches[time_ms][3] > due:
                missed += upto - seq
            seq = upto
            index += 1
    return runs, missed


def percentile(runs, fraction):
    total = sum(count for _, count in runs)
    target = fraction * total
    seen = 0
    for latency, count in runs:
        seen += count
        if seen >= target:
            return latency
    return runs[-1][0]


def measure(sluice, work, mode, args, fractions):
    """One round of one mode: the peak, then each fraction of it. Returns a row per fraction."""
    checkpointed = mode == "checkpointed"
    feed, batches = run(sluice, work, None, args.peak_seconds, checkpointed, args.set)
    placed = placed_batches(work, feed, batches)
    commits = sorted((commit, last - first + 1) for first, last, commit, _ in placed
                     if commit >= feed.bursts[0][2] / 1e6 + WARMUP_S * 1000)
    peak = sum(n for _, n in commits[1:]) / (commits[-1][0] - commits[0][0]) * 1000
    sender = feed.sent / feed.elapsed
    print(f"{mode}: peak {peak:,.0f} lines/s through the pipeline ({feed.sent:,} lines in {args.peak_seconds:.0f} s; "
          f"the sender offered {sender:,.0f}/s and spent {feed.blocked / feed.elapsed * 100:.0f} % of its time in "
          f"sendall; all {feed.sent:,} committed exactly once; load average {os.getloadavg()[0]:.1f})", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    rows = []
    for fraction in fractions:
        feed, batches = run(sluice, work, fraction * peak, args.seconds, checkpointed, args.set)
        placed = placed_batches(work, feed, batches)
        runs, missed = latencies(feed, placed, batches)
        runs.sort()
        measured = sum(count for _, count in runs)
        p50, p99, worst = percentile(runs, 0.5), percentile(runs, 0.99), runs[-1][0]
        # Where the time goes, over the batches after the warm-up: processing (plan, read, write, sink commit,
        # checkpoint) and scheduling delay (a batch starting late because the one before ran past its turn).
        warm = feed.bursts[0][2] / 1e6 + WARMUP_S * 1000
        steady = [batch[2:] for time_ms, batch in batches.items() if time_ms >= warm]
        processing = sorted(p for p, _ in steady)
        late = max(s for _, s in steady)
        # The three slowest batches, with the time in the sink's calls (writes, fsync, rename) and in the source's reads
        # (summed over the tasks that ran them, so together they may exceed the batch's wall time).
        stages = stage_times(work / "events.jsonl")
        slowest = sorted(((batch[2], time_ms) for time_ms, batch in batches.items() if time_ms >= warm), reverse=True)[:3]
        split = ", ".join(f"{total:.0f} ms (sink {stages.get(t, (0, 0))[1]:.0f}, read {stages.get(t, (0, 0))[0]:.0f})"
                          for total, t in slowest)
        row = {"mode": mode, "fraction": fraction, "rate": feed.sent / feed.elapsed, "sent": feed.sent, "p50": p50,
               "p99": p99, "max": worst, "proc50": processing[len(processing) // 2], "procmax": processing[-1],
               "wait": feed.waited / max(feed.ran, 1e-9)}
        rows.append(row)
        print(f"{mode} {fraction * 100:.0f} %: {feed.sent:,} lines sent at {row['rate']:,.0f}/s, "
              f"{feed.sent:,} committed exactly once in {len(placed)} batches; p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
              f"max {worst:.1f} ms over {measured:,} lines, {missed / measured * 100:.2f} % of them in a later batch than the "
              f"first planned after their send; batch processing median {row['proc50']:.1f} ms, max "
              f"{row['procmax']:.1f} ms; scheduling delay max {late:.1f} ms; sluice ran {feed.ran:.1f} s on a CPU and "
              f"waited {feed.waited:.1f} s for one; load average {os.getloadavg()[0]:.1f}; slowest batches {split}",
              flush=True)
        shutil.rmtree(work, ignore_errors=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20, help="seconds of sending at each paced rate")
    parser.add_argument("--peak-seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=1, help="rounds, the modes' order alternating")
    parser.add_argument("--fractions", default="0.25,0.5,0.9")
    parser.add_argument("--modes", default="checkpointed,plain")
    parser.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="passed on to sluice run, e.g. sinks.out.config.fsync=false or "
                             "sources.lines.config.wal_sync_ms=20 (to see where the time goes); parallelism=N "
                             "becomes --parallelism N")
    parser.add_argument("--sluice", default=str(ROOT / ".build-release/release/sluice"))
    args = parser.parse_args()
    sluice = pathlib.Path(args.sluice).resolve()
    if not sluice.exists():
        sys.exit(f"run.py: {sluice} not found; build it with: swift build -c release --scratch-path .build-release")
    fractions = [float(f) for f in args.fractions.split(",")]
    modes = args.modes.split(",")
    for mode in modes:
        if mode not in ("checkpointed", "plain"):
            sys.exit(f"run.py: --modes: unknown mode '{mode}' (checkpointed, plain)")
    rows = []
    for round_index in range(args.rounds):
        print(f"round {round_index + 1}", flush=True)
        for mode in (modes if round_index % 2 == 0 else modes[::-1]):
            rows += [dict(row, round=round_index + 1) for row in measure(sluice, ROOT / "bench-out/latency" / mode, mode, args, fractions)]

    print()
    print(f"latency from send to batch commit, batch interval {INTERVAL_MS} ms, first {WARMUP_S:.0f} s of each run left out"
          + (f"; --set {' '.join(args.set)}" if args.set else ""))
    print(f"{'round':>5} {'mode':<13} {'of peak':>7} {'lines/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'p99/interval':>12} {'proc p50':>8} {'proc max':>8} {'CPU wait/run':>12}")
    for row in sorted(rows, key=lambda r: (modes.index(r["mode"]), r["fraction"], r["round"])):
        print(f"{row['round']:>5} {row['mode']:<13} {row['fraction'] * 100:>6.0f}% {row['rate']:>11,.0f} {row['p50']:>8.1f} "
              f"{row['p99']:>8.1f} {row['max']:>8.1f} {row['p99'] / INTERVAL_MS:>11.2f}x {row['proc50']:>8.1f} "
              f"{row['procmax']:>8.1f} {row['wait']:>11.1f}x")
    if args.rounds > 1:
        print()
        for mode in modes:
            for fraction in fractions:
                p99s = sorted(r["p99"] for r in rows if r["mode"] == mode and r["fraction"] == fraction)
                print(f"{mode} {fraction * 100:.0f} %: p99 median {statistics.median(p99s):.1f} ms over {len(p99s)} rounds "
                      f"({p99s[0]:.1f}-{p99s[-1]:.1f}), {statistics.median(p99s) / INTERVAL_MS:.2f}x the interval")


if __name__ == "__main__":
    main()
