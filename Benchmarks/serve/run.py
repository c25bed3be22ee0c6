#!/usr/bin/env python3
"""`sluice serve` against `sluice run`: the same word count, the same file, in one run; and /metrics with 20 pipelines.

    swift build -c release
    python3 Benchmarks/serve/run.py [--lines 1000000] [--rounds 5] [--pipelines 20]

Part 1 alternates rounds of `sluice run PIPELINE --until-idle` and the same pipeline submitted to a `sluice serve`
(POST /batches with args ["--until-idle", ...], polled every 50 ms until `success`) over the word-count benchmark's generated
file, and compares the time spent in batches (the sum of the batches' processing times: from the progress lines for
`run`, from /batches/{id}/streaming/batches for `serve`) and the wall time (process start to exit, and POST to
`success`). Every round's counts are checked against Python's own count of the file.

Part 2 submits N long-running pipelines (file-watch on an empty directory, 200 ms batches), waits until each has
completed batches, then times 100 scrapes of /metrics and checks the text with prometheus_client's parser when it is
installed (it is in scripts/test's venv: .build/test-venv/bin/python3).

Everything it writes goes to bench-out/serve (git-ignored).
"""

import argparse
import collections
import importlib.util
import json
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
# The word-count benchmark's generator, pipeline and helpers, loaded by path (both scripts are called run.py).
_spec = importlib.util.spec_from_file_location("wordcount_bench", HERE.parent / "wordcount" / "run.py")
wordcount = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(wordcount)

IDLE_PIPELINE = """\
name: idle-{n}
batch_interval: 200ms
sources:
  lines: {{plugin: file-watch, config: {{directory: idle, glob: "*.txt", start: earliest}}}}
stages:
  words: {{from: lines, plugin: split}}
  counts: {{from: words, op: countByValue}}
sinks:
  out: {{from: counts, plugin: console}}
"""


def request(base, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json", "X-Requested-By": "bench"})
    with urllib.request.urlopen(req, timeout=60) as answer:
        return answer.read()


def get_json(base, path):
    return json.loads(request(base, "GET", path))


def start_server(sluice, data_dir, allow):
    process = subprocess.Popen(
        [str(sluice), "serve", "--address", "127.0.0.1:0", "--data-dir", str(data_dir), "--allow-dir", str(allow)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    match = re.search(r"listening on (\S+)", line)
    if not match:
        process.kill()
        sys.exit(f"run.py: the server did not start: {line!r}")
    return process, match.group(1)


def wait_state(base, batch_id, wanted, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = get_json(base, f"/batches/{batch_id}/state")["state"]
        if state == wanted:
            return
        if state in ("dead", "killed", "success") and state != wanted:
            sys.exit(f"run.py: batch {batch_id} ended {state}: {get_json(base, f'/batches/{batch_id}')}")
        time.sleep(0.05)
    sys.exit(f"run.py: batch {batch_id} not {wanted} after {timeout} s")


def counts_of(directory):
    return wordcount.read_counts(sorted(directory.glob("batch-*.tsv")))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pipelines", type=int, default=20)
    parser.add_argument("--scrapes", type=int, default=100)
    parser.add_argument("--sluice", default=str(ROOT / ".build/release/sluice"))
    parser.add_argument("--out", default=str(ROOT / "bench-out/serve"))
    args = parser.parse_args()

    sluice = pathlib.Path(args.sluice).resolve()
    if not sluice.exists():
        sys.exit(f"run.py: {sluice} not found; build it first with: swift build -c release")
    out = pathlib.Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    (ROOT / "bench-out/wordcount").mkdir(parents=True, exist_ok=True)
    data = wordcount.generate_words(ROOT / "bench-out/wordcount", args.lines)
    expected = collections.Counter(data.read_text(encoding="utf-8").split())

    pipeline_dir = out / "pipeline"
    (pipeline_dir / "input").mkdir(parents=True)
    os.link(data, pipeline_dir / "input" / "words.txt")
    pipeline = pipeline_dir / "pipeline.yaml"
    pipeline.write_text(wordcount.PIPELINE.format(interval="100ms", max_records=250_000))
    bounded = ["--until-idle", "--idle-batches", "1"]

    server, base = start_server(sluice, out / "serve-data", pipeline_dir)
    try:
        results = {"run": [], "serve": []}
        for number in range(1, args.rounds + 1):
            shutil.rmtree(pipeline_dir / "counts", ignore_errors=True)
            (pipeline_dir / "counts").mkdir()
            wall, _, _, stderr = wordcount.timed([str(sluice), "run", str(pipeline)] + bounded + ["--progress", "plain"])
            busy = sum(float(ms) for ms in re.findall(r"processing ([0-9.]+) ms", stderr)) / 1000.0
            if counts_of(pipeline_dir / "counts") != expected:
                sys.exit(f"run.py: round {number}: sluice run counted wrong")
            results["run"].append((wall, busy))

            shutil.rmtree(pipeline_dir / "counts", ignore_errors=True)
            (pipeline_dir / "counts").mkdir()
            start = time.perf_counter()
            batch = json.loads(request(base, "POST", "/batches", {"file": str(pipeline), "args": bounded}))
            wait_state(base, batch["id"], "success")
            wall = time.perf_counter() - start
            batches = get_json(base, f"/batches/{batch['id']}/streaming/batches?size=1000")["batches"]
            busy = sum(b.get("processingMilliseconds") or 0 for b in batches) / 1000.0
            if counts_of(pipeline_dir / "counts") != expected:
                sys.exit(f"run.py: round {number}: sluice serve counted wrong")
            results["serve"].append((wall, busy))
            print(f"round {number}: run {results['run'][-1][0]:.2f} s ({results['run'][-1][1]:.2f} s in batches), "
                  f"serve {wall:.2f} s ({busy:.2f} s in batches), counts match", flush=True)

        print()
        print(f"input: {data} — {data.stat().st_size / 1e6:.1f} MB, {args.lines} lines")
        print(f"{'':14}{'wall s':>8}{'in batches s':>14}{'lines/s in batches':>20}")
        medians = {}
        for name in ("run", "serve"):
            wall = statistics.median(w for w, _ in results[name])
            busy = statistics.median(b for _, b in results[name])
            medians[name] = (wall, busy)
            print(f"{'sluice ' + name:14}{wall:8.2f}{busy:14.2f}{args.lines / busy:20,.0f}")
        print(f"serve / run time in batches: {medians['serve'][1] / medians['run'][1]:.3f}; "
              f"wall: {medians['serve'][0] / medians['run'][0]:.3f} (medians of {args.rounds} alternating rounds; "
              f"serve's wall time is POST to success, polled every 50 ms)")

        # Part 2: /metrics with N pipelines running.
        (pipeline_dir / "idle").mkdir()
        ids = []
        for n in range(args.pipelines):
            path = pipeline_dir / f"idle-{n}.yaml"
            path.write_text(IDLE_PIPELINE.format(n=n))
            ids.append(json.loads(request(base, "POST", "/batches", {"file": str(path)}))["id"])
        for batch_id in ids:
            wait_state(base, batch_id, "running")
        deadline = time.monotonic() + 120
        while any(get_json(base, f"/batches/{i}/streaming/statistics")["batchesCompleted"] < 3 for i in ids):
            if time.monotonic() > deadline:
                sys.exit("run.py: the idle pipelines did not complete 3 batches each in 120 s")
            time.sleep(0.2)
        times = []
        body = b""
        for _ in range(args.scrapes):
            start = time.perf_counter()
            body = request(base, "GET", "/metrics")
            times.append(time.perf_counter() - start)
        text = body.decode()
        try:
            from prometheus_client.parser import text_string_to_metric_families
            families = list(text_string_to_metric_families(text))
            parsed = f"parsed by prometheus_client: {len(families)} families, {sum(len(f.samples) for f in families)} samples"
        except ImportError:
            parsed = "prometheus_client not installed: not parsed"
        labelled = {m for m in re.findall(r'pipeline="([^"]+)"', text)}
        times.sort()
        print()
        print(f"/metrics with {args.pipelines} pipelines running: {len(body) / 1024:.0f} KiB, "
              f"{len(labelled)} pipelines labelled; {parsed}")
        print(f"scrape time over {args.scrapes} scrapes: median {statistics.median(times) * 1000:.2f} ms, "
              f"p99 {times[int(len(times) * 0.99) - 1] * 1000:.2f} ms, max {times[-1] * 1000:.2f} ms")
    finally:
        server.terminate()
        server.wait(timeout=120)


if __name__ == "__main__":
    main()
