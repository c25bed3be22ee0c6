/*
 * The JVM Spark Streaming peer of the word-count benchmark: the same DStream word count as spark_wordcount.py, with
 * the functions running in the JVM instead of in Python workers. run.py compiles it with javac against the jars of
 * the pyspark package and runs it with that package's spark-submit:
 *
 *   spark-submit --class SparkWordCount sparkwordcount.jar WATCHED_DIR OUT_DIR
 *
 * local[2], 1 s batches, textFileStream -> split on spaces and tabs -> (word, 1) -> reduceByKey. It speaks the same
 * file protocol with run.py as spark_wordcount.py (see there): OUT_DIR/started, batch-<ms>.tsv, progress, stop.
 */
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

import org.apache.spark.SparkConf;
import org.apache.spark.streaming.Durations;
import org.apache.spark.streaming.api.java.JavaPairDStream;
import org.apache.spark.streaming.api.java.JavaStreamingContext;

import scala.Tuple2;

public final class SparkWordCount {
    private SparkWordCount() {}

    /** The same separators as the C baseline and Sluice's `split` (" \t"); newlines are already gone. */
    static List<String> split(String line) {
        List<String> words = new ArrayList<>();
        int start = 0;
        for (int i = 0; i <= line.length(); i++) {
            if (i == line.length() || line.charAt(i) == ' ' || line.charAt(i) == '\t') {
                if (i > start) words.add(line.substring(start, i));
                start = i + 1;
            }
        }
        return words;
    }

    static String now() {
        Instant now = Instant.now();
        return String.format("%d.%06d", now.getEpochSecond(), now.getNano() / 1000);
    }

    /** Writes under a temporary name and renames, so that run.py never reads half a file. */
    static void writeAtomically(Path path, String text) throws IOException {
        Path temporary = path.resolveSibling(path.getFileName() + ".tmp");
        Files.write(temporary, text.getBytes(StandardCharsets.UTF_8));
        Files.move(temporary, path, StandardCopyOption.ATOMIC_MOVE);
    }

    static void writeBatch(String out, long batchMilliseconds, List<Tuple2<String, Integer>> pairs) throws IOException {
        if (pairs.isEmpty()) return;
        StringBuilder text = new StringBuilder();
        long words = 0;
        for (Tuple2<String, Integer> pair : pairs) {
            text.append(pair._1()).append('\t').append(pair._2()).append('\n');
            words += pair._2();
        }
        writeAtomically(Paths.get(out, "batch-" + batchMilliseconds + ".tsv"), text.toString());
        String line = batchMilliseconds + " " + words + " " + now() + "\n";
        Files.write(Paths.get(out, "progress"), line.getBytes(StandardCharsets.UTF_8),
                    StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: SparkWordCount WATCHED_DIR OUT_DIR");
            System.exit(2);
        }
        String watched = Paths.get(args[0]).toAbsolutePath().toString();
        // A String, not a Path: the output function is part of the DStream graph, which Spark may serialise.
        String out = Paths.get(args[1]).toAbsolutePath().toString();
        for (String directory : new String[] {watched, out}) {
            if (!Files.isDirectory(Paths.get(directory))) {
                System.err.println("SparkWordCount: " + directory + " is not a directory");
                System.exit(2);
            }
        }
        // As in spark_wordcount.py: no web UI, no console progress bar (in Spark's favour).
        SparkConf conf = new SparkConf().setMaster("local[2]").setAppName("sluice-wordcount-peer-jvm")
            .set("spark.ui.enabled", "false").set("spark.ui.showConsoleProgress", "false");
        JavaStreamingContext ssc = new JavaStreamingContext(conf, Durations.seconds(1));
        ssc.sparkContext().setLogLevel("WARN");

        JavaPairDStream<String, Integer> counts = ssc.textFileStream("file://" + watched)
            .flatMap(line -> split(line).iterator())
            .mapToPair(word -> new Tuple2<>(word, 1))
            .reduceByKey(Integer::sum);
        counts.foreachRDD((rdd, time) -> writeBatch(out, time.milliseconds(), rdd.collect()));
        ssc.start();
        writeAtomically(Paths.get(out, "started"), now() + "\n");

        Path stop = Paths.get(out, "stop");
        while (!Files.exists(stop)) {
            if (ssc.awaitTerminationOrTimeout(50)) {
                System.err.println("SparkWordCount: the streaming context terminated before run.py asked it to stop");
                System.exit(1);
            }
        }
        ssc.stop(true, false);
    }
}
