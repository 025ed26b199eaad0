/*
 * capeval's multi-threaded front end to Meteor 1.5 (compiled against the official meteor-1.5.jar).
 *
 * It speaks the jar's own stdio protocol (what `java -jar meteor-1.5.jar - - -stdio ...` does: one
 * SCORE / EVAL / SING line in, one answer line out, EVAL answering each segment and then the
 * aggregate) with the same configuration, built by the jar's own argument parser. The difference:
 * the tables are loaded once and shared by several scorers (Meteor's `new MeteorScorer(scorer)`,
 * which gives each its own stemmer), so N threads score N lines at a time in one JVM instead of
 * N JVMs each loading ~1 GB of tables. Answers are written in input order.
 *
 * Usage: java -cp meteor-1.5.jar:DIR CapevalMeteor THREADS - - -stdio -l en -norm
 */

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Properties;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;

import edu.cmu.meteor.scorer.MeteorConfiguration;
import edu.cmu.meteor.scorer.MeteorScorer;
import edu.cmu.meteor.scorer.MeteorStats;

public final class CapevalMeteor {

	private static final String SEPARATOR = "\\|\\|\\|";

	public static void main(String[] args) throws Exception {
		int threads = Math.max(1, Integer.parseInt(args[0]));
		String[] meteorArgs = Arrays.copyOfRange(args, 1, args.length);
		Properties props = Meteor.createPropertiesFromArgs(meteorArgs, 2);
		MeteorScorer first = new MeteorScorer(new MeteorConfiguration(props));
		// one segment before the threads start: lazily loaded static state (the normalizer's
		// non-breaking prefixes) is then loaded once, by one thread
		ArrayList<String> warmUp = new ArrayList<String>();
		warmUp.add("a warm-up reference .");
		first.getMeteorStats("a warm-up test .", warmUp);

		BlockingQueue<MeteorScorer> scorers = new ArrayBlockingQueue<MeteorScorer>(threads);
		scorers.add(first);
		for (int i = 1; i < threads; i++)
			scorers.add(new MeteorScorer(first));
		ExecutorService pool = Executors.newFixedThreadPool(threads, runnable -> {
			Thread t = new Thread(runnable, "capeval-meteor-scorer");
			t.setDaemon(true);
			return t;
		});

		// answers in input order: the reader queues one future per line, the writer waits on each
		BlockingQueue<Future<String>> answers = new LinkedBlockingQueue<Future<String>>(4 * 4096);
		Future<String> end = pool.submit(() -> null);
		Thread writer = new Thread(() -> {
			try {
				Writer out = new BufferedWriter(new OutputStreamWriter(System.out, StandardCharsets.UTF_8), 1 << 16);
				while (true) {
					Future<String> next = answers.take();
					if (next == end)
						break;
					if (!next.isDone())
						out.flush(); // about to wait: the caller can read what is ready meanwhile
					out.write(next.get());
					out.write('\n');
					if (answers.isEmpty())
						out.flush();
				}
				out.flush();
			} catch (Throwable e) {
				// as the jar does on an error it cannot answer: report and exit, the caller restarts us
				e.printStackTrace();
				System.exit(1);
			}
		}, "capeval-meteor-writer");
		writer.start();

		BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
		String line;
		while ((line = in.readLine()) != null) {
			final String request = line;
			answers.put(pool.submit(() -> answer(request, scorers)));
		}
		answers.put(end);
		writer.join();
		System.exit(0);
	}

	/** The jar's answer to one stdio line (Meteor.scoreStdio of meteor-1.5.jar, line for line). */
	private static String answer(String line, BlockingQueue<MeteorScorer> scorers) throws InterruptedException {
		MeteorScorer scorer = scorers.take();
		try {
			if (line.startsWith("SCORE") || line.startsWith("score")) {
				String[] part = line.split(SEPARATOR);
				if (part.length < 3)
					return "Error: specify hypothesis and at least one reference";
				ArrayList<String> refs = new ArrayList<String>();
				for (int i = 1; i < part.length - 1; i++)
					refs.add(part[i].trim());
				String test = part[part.length - 1].trim();
				return scorer.getMeteorStats(test, refs).toString();
			}
			if (line.startsWith("EVAL") || line.startsWith("eval")) {
				String[] part = line.split(SEPARATOR);
				if (part.length < 2)
					return "Error: specify Meteor stats";
				StringBuilder out = new StringBuilder();
				MeteorStats total = new MeteorStats();
				for (int i = 1; i < part.length; i++) {
					MeteorStats stats = new MeteorStats(part[i].trim());
					scorer.computeMetrics(stats);
					out.append(stats.score).append('\n');
					total.addStats(stats);
				}
				scorer.computeMetrics(total);
				return out.append(total.score).toString();
			}
			if (line.startsWith("SING") || line.startsWith("sing")) {
				String[] part = line.split(SEPARATOR);
				if (part.length != 2)
					return "Error: specify Meteor stats";
				MeteorStats stats = new MeteorStats(part[1].trim());
				scorer.computeMetrics(stats);
				return String.valueOf(stats.score);
			}
			return "Error: specify SCORE or EVAL or SING";
		} finally {
			scorers.put(scorer);
		}
	}
}
