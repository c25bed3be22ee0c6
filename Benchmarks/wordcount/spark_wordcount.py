"""The Spark Streaming peer of the word-count benchmark: the Spark guide's DStream word count, in Python.

    spark_wordcount.py WATCHED_DIR OUT_DIR

run.py starts it with the python of a virtual environment that has pyspark 3.5 (and JAVA_HOME set). It runs
`local[2]` with 1 s batches over `textFileStream(WATCHED_DIR)`: split each line on spaces and tabs, (word, 1),
reduceByKey. It talks to run.py through files in OUT_DIR:

- `started`: written once `StreamingContext.start()` has returned; holds the Unix time it did (start-up ends there).
- `batch-<batch ms>.tsv`: every non-empty batch's counts, word<TAB>count, written under a temporary name and renamed,
  so that a reader never sees half a file.
- `progress`: one line per non-empty batch, appended after its TSV is in place:
  "<batch ms> <words counted in the batch> <Unix time the counts were written>". run.py knows how many words the
  input has, so the line that brings the sum to that number marks the end of the run.
- `stop`: created by run.py; the job stops its streaming context (and Spark) when it sees it.

Spark only takes files whose modification time is later than the stream's start, so run.py moves the input in with
a fresh mtime after `started` appears.
"""

import operator
import os
import sys
import time

from pyspark import SparkConf, SparkContext
from pyspark.streaming import StreamingContext


def split_words(line):
    # The same separators as the C baseline and Sluice's `split` (" \t"); newlines are already gone.
    return [word for word in line.replace("\t", " ").split(" ") if word]


def write_atomically(path, text):
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as f:
        f.write(text)
    os.rename(temporary, path)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: spark_wordcount.py WATCHED_DIR OUT_DIR")
    watched, out = (os.path.abspath(path) for path in sys.argv[1:])
    for path in (watched, out):
        if not os.path.isdir(path):
            sys.exit(f"spark_wordcount.py: {path} is not a directory")

    # The web UI and the console progress bar are off: they serve no purpose here and cost start-up time, memory
    # and log output (leaving them out is in Spark's favour).
    conf = (SparkConf().setMaster("local[2]").setAppName("sluice-wordcount-peer")
            .set("spark.ui.enabled", "false").set("spark.ui.showConsoleProgress", "false"))
    sc = SparkContext(conf=conf)
    sc.setLogLevel("WARN")
    ssc = StreamingContext(sc, 1)

    def write_batch(batch_time, rdd):
        pairs = rdd.collect()
        if not pairs:
            return
        batch_ms = int(batch_time.timestamp() * 1000)
        write_atomically(os.path.join(out, f"batch-{batch_ms}.tsv"), "".join(f"{w}\t{n}\n" for w, n in pairs))
        words = sum(n for _, n in pairs)
        with open(os.path.join(out, "progress"), "a", encoding="utf-8") as f:
            f.write(f"{batch_ms} {words} {time.time():.6f}\n")

    lines = ssc.textFileStream("file://" + watched)
    counts = lines.flatMap(split_words).map(lambda word: (word, 1)).reduceByKey(operator.add)
    counts.foreachRDD(write_batch)
    ssc.start()
    write_atomically(os.path.join(out, "started"), f"{time.time():.6f}\n")

    stop = os.path.join(out, "stop")
    while not os.path.exists(stop):
        if ssc.awaitTerminationOrTimeout(0.05):
            sys.exit("spark_wordcount.py: the streaming context terminated before run.py asked it to stop")
    ssc.stop(True, False)  # and the SparkContext; without waiting for queued batches (there are none left)


if __name__ == "__main__":
    main()
