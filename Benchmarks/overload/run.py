#!/usr/bin/env python3
"""Overload: a pipeline fed twice as fast as it can process, for two minutes, without and with backpressure.

    swift build -c release
    python3 Benchmarks/overload/run.py [--seconds 120] [--spin-us 40]

A local TCP server sends numbered lines to the `socket` source at twice the pipeline's measured capacity; the
pipeline maps each line through a C function that busy-waits `--spin-us` microseconds (a stage slow on purpose),
then counts per batch (socket -> map(slow) -> count -> files). The capacity is measured first (the same pipeline fed
as fast as it takes, with backpressure, for 20 s). Then the pipeline runs `--seconds` without backpressure and
`--seconds` with it, each from a fresh start. Every second the script samples the pipeline's RSS (/proc) and reads
the progress lines (records and total delay of each batch). It prints a table and writes an SVG chart of records/s,
total delay and RSS over time for both runs (docs/overload.svg with --chart, else bench-out/overload/overload.svg).

Nothing is dropped in either run: the socket source stops reading when its buffer is full (TCP back-pressure), so
what the pipeline cannot take waits in the kernel and the sender.
"""

import argparse
import pathlib
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent

PIPELINE = """\
name: overload
batch_interval: 500ms
{backpressure}
sources:
  lines:
    plugin: socket
    max_records_per_partition: 1000000
    config: {{port: {port}, max_buffered_records: 200000}}
stages:
  slowed: {{from: lines, op: map, function: slow.slow}}
  counted: {{from: slowed, op: count}}
  summed: {{from: slowed, op: reduce, function: sum}}
sinks:
  count: {{from: counted, plugin: files, config: {{prefix: out/count}}}}
  sum: {{from: summed, plugin: files, config: {{prefix: out/sum}}}}
"""

PROGRESS = re.compile(r"batch (\d+) at \S+: (\d+) records, scheduling delay ([0-9.]+) (ms|s)?.*?processing ([0-9.]+) ms, total delay ([0-9.]+) ms")


class Sender:
    """Accepts the source's connection and sends numbered lines at `rate` per second (0: as fast as it takes)."""

    def __init__(self, rate):
        self.rate = rate
        self.sent = 0
        self.stop = threading.Event()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        connection, _ = self.listener.accept()
        start = time.monotonic()
        chunk = 2000
        while not self.stop.is_set():
            if self.rate:
                due = start + self.sent / self.rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(min(delay, 0.05))
                    continue
            data = "".join(f"{n}\n" for n in range(self.sent, self.sent + chunk)).encode()
            try:
                connection.sendall(data)
            except OSError:
                return
            self.sent += chunk

    def close(self):
        self.stop.set()
        self.listener.close()


def rss_mib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def run(sluice, work, seconds, rate, backpressure):
    """Runs the pipeline for `seconds` against a sender at `rate`; returns per-second samples and batch figures."""
    shutil.rmtree(work, ignore_errors=True)
    (work / "out").mkdir(parents=True)
    shutil.copy(ROOT / "bench-out/overload/libslow.so", work)
    shutil.copy(HERE / "slow.functions.yaml", work)
    sender = Sender(rate)
    block = "backpressure: {initial_rate: 1000}" if backpressure else ""
    (work / "pipeline.yaml").write_text(PIPELINE.format(port=sender.port, backpressure=block))
    errors = open(work / "progress.log", "w")
    process = subprocess.Popen([str(sluice), "run", "pipeline.yaml", "--progress", "plain", "--plugin-dir", str(work)],
                               cwd=work, stdout=subprocess.DEVNULL, stderr=errors)
    samples = []
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        time.sleep(1)
        samples.append((time.monotonic() - start, rss_mib(process.pid), sender.sent))
        if process.poll() is not None:
            sys.exit(f"run.py: the pipeline ended early: {(work / 'progress.log').read_text()[-2000:]}")
    process.terminate()
    process.wait(timeout=60)
    sender.close()
    errors.close()
    batches = []
    for line in (work / "progress.log").read_text().splitlines():
        match = PROGRESS.search(line)
        if match:
            batches.append({"id": int(match.group(1)), "records": int(match.group(2)), "total": float(match.group(6)),
                            "processing": float(match.group(5))})
    # Lines are numbered 0, 1, 2, ... and a graceful stop commits the batch in flight: the batches processed the first
    # K lines exactly when their counts add up to K and their sums to K(K-1)/2 — a lost or doubled line breaks that.
    def total(prefix):
        return sum(int(line) for path in (work / "out").glob(prefix + "-*") for line in path.read_text().split())
    records, sums = total("count"), total("sum")
    if sums != records * (records - 1) // 2:
        sys.exit(f"run.py: records lost or doubled: {records} records summing to {sums}, not {records * (records - 1) // 2}")
    return samples, batches, records


def per_second(batches, interval_ms, seconds):
    """Records processed and the highest total delay per second of the run, each batch at the second it completed
    (its due time, id × interval, plus its total delay): a late batch keeps its due time, so bucketing by due time
    would pile an overloaded run's work into its first seconds."""
    rows = []
    for second in range(int(seconds)):
        inside = [b for b in batches if second * 1000 <= b["id"] * interval_ms + b["total"] < (second + 1) * 1000]
        records = sum(b["records"] for b in inside)
        delay = max((b["total"] for b in inside), default=None)
        rows.append((second, records, delay))
    return rows


def chart(path, series, seconds):
    """Three stacked panels (records/s, total delay, RSS) of two runs each, as an SVG drawn here."""
    width, height, left, panel, gap = 900, 720, 80, 190, 40
    colours = {"without backpressure": "#c0392b", "with backpressure": "#2471a3"}
    panels = [("records/s", 1), ("total delay (s)", 2), ("RSS (MiB)", 3)]
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           '<rect width="100%" height="100%" fill="white"/>']
    for index, (title, column) in enumerate(panels):
        top = 30 + index * (panel + gap)
        values = [v for s in series.values() for row in s for v in [row[column]] if v is not None]
        top_value = max(values) * 1.1 if values else 1
        out.append(f'<text x="{left}" y="{top - 8}" font-weight="bold">{title}</text>')
        out.append(f'<line x1="{left}" y1="{top + panel}" x2="{width - 20}" y2="{top + panel}" stroke="#888"/>')
        out.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + panel}" stroke="#888"/>')
        for tick in range(5):
            value = top_value * tick / 4
            y = top + panel - panel * tick / 4
            label = f"{value:,.0f}" if top_value >= 10 else f"{value:.1f}"
            out.append(f'<text x="{left - 6}" y="{y + 4}" text-anchor="end">{label}</text>')
        for name, rows in series.items():
            points = [(left + (width - 20 - left) * row[0] / seconds, top + panel - panel * row[column] / top_value)
                      for row in rows if row[column] is not None]
            path_data = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            out.append(f'<polyline fill="none" stroke="{colours[name]}" stroke-width="1.5" points="{path_data}"/>')
    for tick in range(0, int(seconds) + 1, max(1, int(seconds) // 6)):
        x = left + (width - 20 - left) * tick / seconds
        out.append(f'<text x="{x}" y="{height - 20}" text-anchor="middle">{tick} s</text>')
    for i, (name, colour) in enumerate(colours.items()):
        out.append(f'<rect x="{left + 10 + i * 220}" y="{height - 12}" width="12" height="4" fill="{colour}"/>')
        out.append(f'<text x="{left + 28 + i * 220}" y="{height - 7}">{name}</text>')
    out.append("</svg>")
    path.write_text("\n".join(out) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--spin-us", type=int, default=40)
    parser.add_argument("--sluice", default=str(ROOT / ".build/release/sluice"))
    parser.add_argument("--chart", action="store_true", help="write the chart to docs/overload.svg")
    args = parser.parse_args()
    sluice = pathlib.Path(args.sluice).resolve()
    if not sluice.exists():
        sys.exit(f"run.py: {sluice} not found; build it first with: swift build -c release")
    out = ROOT / "bench-out/overload"
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(["gcc", "-std=c11", "-O2", "-shared", "-fPIC", "-fvisibility=hidden", f"-DSLOW_NS={args.spin_us * 1000}",
                    "-o", str(out / "libslow.so"), str(HERE / "slow.c")], check=True)

    # Capacity: fed as fast as it takes, with backpressure, the rate it settles at.
    _, batches, _ = run(sluice, out / "calibrate", 20, 0, True)
    settled = [b for b in batches if b["processing"] > 0][len(batches) // 2:]
    capacity = sum(b["records"] for b in settled) / sum(b["processing"] for b in settled) * 1000
    rate = 2 * capacity
    print(f"capacity: {capacity:,.0f} records/s (spin {args.spin_us} µs per record); sending at {rate:,.0f} records/s", flush=True)

    series = {}
    for name, backpressure in (("without backpressure", False), ("with backpressure", True)):
        samples, batches, exact = run(sluice, out / name.replace(" ", "-"), args.seconds, rate, backpressure)
        seconds = per_second(batches, 500, args.seconds)
        rows = []
        for (t, rss, _), (_, records, delay) in zip(samples, seconds):
            rows.append((t, records, None if delay is None else delay / 1000, rss))
        series[name] = rows
        delays = [r[2] for r in rows if r[2] is not None]
        rss = [r[3] for r in rows if r[3] is not None]
        done = sum(b["records"] for b in batches)
        print(f"{name}: {done:,} records in {len(batches)} batches ({done / args.seconds:,.0f}/s); total delay "
              f"median {statistics.median(delays):.2f} s, last {delays[-1]:.2f} s, max {max(delays):.2f} s; "
              f"RSS first {rss[0]:.0f} MiB, last {rss[-1]:.0f} MiB, max {max(rss):.0f} MiB", flush=True)
        late = [r for r in rss[20:]]
        settled = [r[2] for r in rows[:20] if r[2] is not None]
        print(f"  the first {exact:,} lines processed exactly once (counts and sums agree); after 20 s RSS "
              f"{min(late):.0f}-{max(late):.0f} MiB ({(max(late) - min(late)) / statistics.median(late) * 100:.0f} % of its median)"
              + (f"; total delay in the first 20 s at most {max(settled):.2f} s" if settled else ""), flush=True)
    path = ROOT / "docs/overload.svg" if args.chart else out / "overload.svg"
    chart(path, series, args.seconds)
    print(f"chart: {path}")


if __name__ == "__main__":
    main()
