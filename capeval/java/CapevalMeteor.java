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
 * The paraphrase table (a 60 MB gz read by ParaphraseTransducer's constructor, the longest serial step
 * of start-up) is read by ParaphraseTable below instead: inflated on one thread, parsed on another while
 * the main thread builds the rest of the scorer, into the very same structure (checked field by field
 * against the jar's reader by `--check-paraphrase-table`). If anything about the jar differs from what
 * it expects, the jar's own reader is used.
 *
 * Usage: java -cp meteor-1.5.jar:DIR CapevalMeteor THREADS - - -stdio -l en -norm
 *        java -cp meteor-1.5.jar:DIR CapevalMeteor --check-paraphrase-table - - -l en -norm
 */

import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.net.URL;
import java.net.URLConnection;
import java.net.URLStreamHandler;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Hashtable;
import java.util.Properties;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.FutureTask;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.zip.GZIPInputStream;
import java.util.zip.GZIPOutputStream;

import edu.cmu.meteor.aligner.ParaphraseTransducer;
import edu.cmu.meteor.scorer.MeteorConfiguration;
import edu.cmu.meteor.util.Constants;
import edu.cmu.meteor.scorer.MeteorScorer;
import edu.cmu.meteor.scorer.MeteorStats;

public final class CapevalMeteor {

	private static final String SEPARATOR = "\\|\\|\\|";
	/** The answer to a line that overflows the heap even when scored alone (capeval's wrapper names its id). */
	private static final String OUT_OF_MEMORY = "Error: out of memory";
	/** Lines are scored under its read lock; a line that ran out of heap beside others is retried under its write lock, alone. */
	private static final ReentrantReadWriteLock ALONE = new ReentrantReadWriteLock();

	public static void main(String[] args) throws Exception {
		String[] meteorArgs = Arrays.copyOfRange(args, 1, args.length);
		Properties props = Meteor.createPropertiesFromArgs(meteorArgs, 2);
		if (args[0].equals("--check-paraphrase-table")) {
			URL table = new MeteorConfiguration(props).getParaDirURL();
			System.out.println(ParaphraseTable.differences(ParaphraseTable.load(table), new ParaphraseTransducer(table)));
			System.exit(0);
		}
		int threads = Math.max(1, Integer.parseInt(args[0]));
		MeteorScorer first = newScorer(props);
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

	/** new MeteorScorer(config), its paraphrase table read by ParaphraseTable meanwhile; the jar's way if that fails. */
	private static MeteorScorer newScorer(Properties props) {
		MeteorConfiguration config = new MeteorConfiguration(props);
		URL table = config.getParaDirURL();
		if (!config.getModules().contains(Constants.MODULE_PARAPHRASE))
			return new MeteorScorer(config);
		FutureTask<ParaphraseTransducer> loading = new FutureTask<ParaphraseTransducer>(() -> ParaphraseTable.load(table));
		try {
			daemon(loading, "capeval-paraphrase-parser").start();
			config.setParaFileURL(ParaphraseTable.EMPTY);
			MeteorScorer scorer = new MeteorScorer(config);
			ParaphraseTable.setField(ParaphraseTable.field(scorer, "aligner"), "paraphrase", loading.get());
			return scorer;
		} catch (Throwable e) {
			loading.cancel(true);
			System.err.println("capeval: reading the paraphrase table with the jar's reader instead (" + e + ")");
			config.setParaFileURL(table);
			return new MeteorScorer(config);
		}
	}

	private static Thread daemon(Runnable task, String name) {
		Thread thread = new Thread(task, name);
		thread.setDaemon(true);
		return thread;
	}

	/**
	 * The jar's answer to one line; OUT_OF_MEMORY for one too long for the heap. The jar would die of the
	 * OutOfMemoryError; here the other threads' lines are unharmed, and a line that ran out of heap while
	 * others were scored is first scored once more alone, so that only a line that alone does not fit is
	 * refused (and not one that merely allocated while a huge one filled the heap).
	 */
	private static String answer(String line, BlockingQueue<MeteorScorer> scorers) throws InterruptedException {
		ALONE.readLock().lock();
		try {
			return answerWith(line, scorers);
		} catch (OutOfMemoryError beside) {
			// retried below, once this thread holds no lock
		} finally {
			ALONE.readLock().unlock();
		}
		ALONE.writeLock().lock();
		try {
			return answerWith(line, scorers);
		} catch (OutOfMemoryError alone) {
			return OUT_OF_MEMORY + " (" + alone + ")";
		} finally {
			ALONE.writeLock().unlock();
		}
	}

	/** The jar's answer to one stdio line (Meteor.scoreStdio of meteor-1.5.jar, line for line). */
	private static String answerWith(String line, BlockingQueue<MeteorScorer> scorers) throws InterruptedException {
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

	/**
	 * ParaphraseTransducer(URL) of meteor-1.5.jar, faster: its file is lines in threes (probability,
	 * phrase, paraphrase), words numbered in order of first appearance, each paraphrase's words stored
	 * as an int[] (index = its triple's number) and each phrase a path in a trie of States whose last
	 * State lists, in file order, the numbers of its paraphrases. The jar decodes every line to a
	 * String, tokenizes it and looks each word up in a synchronized Hashtable, and copies a State's list
	 * on every addition; here one thread inflates while another splits bytes, numbers words through a
	 * byte-keyed table (a String is made once per distinct word), and adds each run of triples sharing
	 * a phrase (the file is grouped by phrase) to the trie at once with the jar's own State.addPath.
	 */
	static final class ParaphraseTable {

		/** A valid gzip stream holding nothing: ParaphraseTransducer(EMPTY) is an empty table to fill. */
		static final URL EMPTY;
		static {
			try {
				ByteArrayOutputStream nothing = new ByteArrayOutputStream();
				new GZIPOutputStream(nothing).close();
				byte[] gzip = nothing.toByteArray();
				URLStreamHandler handler = new URLStreamHandler() {
					@Override
					protected URLConnection openConnection(URL url) {
						return new URLConnection(url) {
							@Override
							public void connect() {
							}

							@Override
							public InputStream getInputStream() {
								return new ByteArrayInputStream(gzip);
							}
						};
					}
				};
				// MeteorConfiguration copies URLs through their string: the scheme must be known by name
				URL.setURLStreamHandlerFactory(protocol -> protocol.equals("capeval-empty") ? handler : null);
				EMPTY = new URL("capeval-empty:paraphrase-table.gz");
			} catch (IOException e) {
				throw new ExceptionInInitializerError(e);
			}
		}

		private static final byte[] END = new byte[0];
		private static final int BLOCK = 1 << 20;

		private final ParaphraseTransducer table = new ParaphraseTransducer(EMPTY);
		private final Words words;
		private final ArrayList<int[]> paraphrases;
		private final Trie trie;
		private byte[] line = new byte[1 << 12];
		private int length; // of the line being read
		private long lines; // lines ended so far
		private byte[] phrase = new byte[0]; // the last phrase line, its word ids, where its run began
		private int[] phraseIds;
		private int runStart;

		@SuppressWarnings("unchecked")
		private ParaphraseTable() throws ReflectiveOperationException {
			words = new Words((Hashtable<String, Integer>) field(table, "vocab"));
			paraphrases = (ArrayList<int[]>) field(table, "paraphrase");
			trie = new Trie(field(table, "reference"));
		}

		/** What new ParaphraseTransducer(url) returns, read on two threads. */
		static ParaphraseTransducer load(URL url) throws Exception {
			BlockingQueue<byte[]> blocks = new ArrayBlockingQueue<byte[]>(32);
			FutureTask<Void> inflating = new FutureTask<Void>(() -> {
				try (InputStream in = new GZIPInputStream(url.openStream(), 1 << 16)) {
					int n;
					do {
						byte[] block = new byte[BLOCK];
						n = 0;
						for (int read; n < BLOCK && (read = in.read(block, n, BLOCK - n)) > 0; n += read)
							;
						if (n > 0)
							blocks.put(n == BLOCK ? block : Arrays.copyOf(block, n));
					} while (n == BLOCK);
				} finally {
					blocks.put(END);
				}
				return null;
			});
			daemon(inflating, "capeval-paraphrase-inflater").start();
			ParaphraseTable parser = new ParaphraseTable();
			try {
				for (byte[] block = blocks.take(); block != END; block = blocks.take())
					for (byte c : block)
						parser.read(c);
			} catch (Throwable e) { // stop the inflater: interrupted, and never blocked on a full queue
				inflating.cancel(true);
				blocks.clear();
				throw e;
			}
			inflating.get(); // rethrows a read error
			return parser.finish(url);
		}

		private void read(byte c) throws IOException {
			if (c == '\n') {
				endLine();
			} else if (c == '\r') { // readLine() ends a line here too; the jar's file has none
				throw new IOException("carriage return in the paraphrase table");
			} else {
				if (length == line.length)
					line = Arrays.copyOf(line, 2 * length);
				line[length++] = c;
			}
		}

		private void endLine() {
			long kind = lines++ % 3; // 0: probability (unused), 1: phrase, 2: paraphrase
			int triple = paraphrases.size();
			if (kind == 1 && (phraseIds == null || length != phrase.length || !sameBytes(line, 0, phrase, 0, length))) {
				if (phraseIds != null)
					trie.add(phraseIds, runStart, triple - runStart);
				phrase = Arrays.copyOf(line, length);
				phraseIds = words.ids(line, length);
				runStart = triple;
			} else if (kind == 2) {
				paraphrases.add(words.ids(line, length));
			}
			length = 0;
		}

		private ParaphraseTransducer finish(URL url) throws Exception {
			if (length > 0)
				endLine(); // a last line without a newline, as readLine() returns it
			if (lines % 3 != 0) // the jar's reader would fail with a NullPointerException
				throw new IOException(url + " does not end with a whole triple of lines");
			if (phraseIds != null)
				trie.add(phraseIds, runStart, paraphrases.size() - runStart);
			setField(table, "nextWord", words.count);
			setField(table, "nextIdx", paraphrases.size());
			return table;
		}

		/** Word ids as the jar's map() numbers them, looked up by the word's bytes. */
		static final class Words {
			private final Hashtable<String, Integer> vocab;
			int count;
			private int[] buffer = new int[64];
			// open addressing: slot -> word (offset, length in `bytes`), its hash and id (-1: empty)
			private int[] offset, size, hash, id;
			private byte[] bytes = new byte[1 << 22];
			private int used, entries;

			Words(Hashtable<String, Integer> vocab) {
				this.vocab = vocab;
				allocate(1 << 20);
			}

			/** The ids of a line's words; StringTokenizer's delimiters (the line has no \n or \r). */
			int[] ids(byte[] line, int length) {
				int n = 0;
				for (int i = 0; i < length;) {
					while (i < length && delimiter(line[i]))
						i++;
					int start = i;
					while (i < length && !delimiter(line[i]))
						i++;
					if (i > start) {
						if (n == buffer.length)
							buffer = Arrays.copyOf(buffer, 2 * n);
						buffer[n++] = id(line, start, i - start);
					}
				}
				return Arrays.copyOf(buffer, n);
			}

			private static boolean delimiter(byte c) {
				return c == ' ' || c == '\t' || c == '\f';
			}

			private int id(byte[] word, int start, int length) {
				int h = 0x811c9dc5; // FNV-1a
				for (int i = start; i < start + length; i++)
					h = (h ^ word[i]) * 0x01000193;
				int mask = id.length - 1;
				int slot = (h ^ (h >>> 16)) & mask;
				for (; id[slot] >= 0; slot = (slot + 1) & mask)
					if (hash[slot] == h && size[slot] == length && sameBytes(bytes, offset[slot], word, start, length))
						return id[slot];
				// a new byte sequence: map() keys by the decoded String (malformed bytes decode alike)
				String text = new String(word, start, length, StandardCharsets.UTF_8);
				Integer known = vocab.get(text);
				if (known == null) {
					known = count++;
					vocab.put(text, known);
				}
				if (used + length > bytes.length)
					bytes = Arrays.copyOf(bytes, Math.max(2 * bytes.length, used + length));
				System.arraycopy(word, start, bytes, used, length);
				offset[slot] = used;
				size[slot] = length;
				hash[slot] = h;
				id[slot] = known;
				used += length;
				if (2 * ++entries > id.length)
					rehash();
				return known;
			}

			private void allocate(int slots) {
				offset = new int[slots];
				size = new int[slots];
				hash = new int[slots];
				id = new int[slots];
				Arrays.fill(id, -1);
			}

			private void rehash() {
				int[] oldOffset = offset, oldSize = size, oldHash = hash, oldId = id;
				allocate(2 * oldId.length);
				int mask = id.length - 1;
				for (int old = 0; old < oldId.length; old++) {
					if (oldId[old] < 0)
						continue;
					int h = oldHash[old], slot = (h ^ (h >>> 16)) & mask;
					while (id[slot] >= 0)
						slot = (slot + 1) & mask;
					offset[slot] = oldOffset[old];
					size[slot] = oldSize[old];
					hash[slot] = h;
					id[slot] = oldId[old];
				}
			}
		}

		/** The transducer's trie, grown with the jar's own State.addPath. */
		static final class Trie {
			private final Object root;
			private final Method addPath;
			private final Field trans, emit;

			Trie(Object root) throws ReflectiveOperationException {
				this.root = root;
				Class<?> state = root.getClass();
				addPath = state.getDeclaredMethod("addPath", int[].class, int.class, int.class);
				addPath.setAccessible(true);
				trans = state.getDeclaredField("trans");
				trans.setAccessible(true);
				emit = state.getDeclaredField("emit");
				emit.setAccessible(true);
			}

			/** addPath(phrase, 0, i) for i in first .. first+count-1, with one copy of the State's list. */
			void add(int[] phrase, int first, int count) {
				try {
					addPath.invoke(root, phrase, 0, first);
					if (count == 1)
						return;
					Object state = root;
					for (int word : phrase)
						state = ((Hashtable<?, ?>) trans.get(state)).get(word);
					int[] list = (int[]) emit.get(state);
					int n = list.length;
					list = Arrays.copyOf(list, n + count - 1);
					for (int i = 1; i < count; i++)
						list[n + i - 1] = first + i;
					emit.set(state, list);
				} catch (ReflectiveOperationException e) {
					throw new IllegalStateException(e);
				}
			}
		}

		/** Arrays.equals over ranges, which Java 8 lacks. */
		private static boolean sameBytes(byte[] a, int aFrom, byte[] b, int bFrom, int length) {
			for (int i = 0; i < length; i++)
				if (a[aFrom + i] != b[bFrom + i])
					return false;
			return true;
		}

		static Object field(Object owner, String name) throws ReflectiveOperationException {
			Field field = owner.getClass().getDeclaredField(name);
			field.setAccessible(true);
			return field.get(owner);
		}

		static void setField(Object owner, String name, Object value) throws ReflectiveOperationException {
			Field field = owner.getClass().getDeclaredField(name);
			field.setAccessible(true);
			field.set(owner, value);
		}

		/** "same", or the first difference between two transducers' contents. */
		static String differences(ParaphraseTransducer ours, ParaphraseTransducer jars) throws ReflectiveOperationException {
			for (String name : new String[] { "vocab", "nextWord", "nextIdx" })
				if (!field(ours, name).equals(field(jars, name)))
					return "different " + name;
			@SuppressWarnings("unchecked")
			ArrayList<int[]> a = (ArrayList<int[]>) field(ours, "paraphrase"), b = (ArrayList<int[]>) field(jars, "paraphrase");
			if (a.size() != b.size())
				return "different number of paraphrases";
			for (int i = 0; i < a.size(); i++)
				if (!Arrays.equals(a.get(i), b.get(i)))
					return "different paraphrase " + i;
			return sameTrie(field(ours, "reference"), field(jars, "reference")) ? "same" : "different trie";
		}

		private static boolean sameTrie(Object a, Object b) throws ReflectiveOperationException {
			if (!Arrays.equals((int[]) field(a, "emit"), (int[]) field(b, "emit")))
				return false;
			Hashtable<?, ?> x = (Hashtable<?, ?>) field(a, "trans"), y = (Hashtable<?, ?>) field(b, "trans");
			if (!x.keySet().equals(y.keySet()))
				return false;
			for (Object key : x.keySet())
				if (!sameTrie(x.get(key), y.get(key)))
					return false;
			return true;
		}
	}
}
