/**
 * The contract between the benchmark driver (bench/run.ts) and a benchmark
 * file (bench/NAME.bench.ts). A benchmark file exports
 *
 *   export async function run(ctx: BenchContext): Promise<BenchSection | BenchSection[]>
 *
 * and the driver prints each section as a table and writes them all to
 * bench/results/latest.json. See bench/README.md.
 */

/** What the driver hands to a benchmark file. */
export interface BenchContext {
  /** `--quick`: fewer rounds and smaller inputs, for a smoke run (figures are rougher). */
  readonly quick: boolean;
  /** The repository root (guests are in `${root}/bench/guests`). */
  readonly root: string;
  /** Absolute path of a file under bench/guests, e.g. `guest("hello.wasm")`. */
  guest(name: string): string;
  /** Progress lines, printed to stderr (tables go to stdout). */
  log(message: string): void;
}

/**
 * Which way is better for a figure. Ratios are always oriented so that
 * ratio >= 1 means ours is at least as good as the baseline:
 * "lower" (times, latencies): ratio = baseline / ours;
 * "higher" (throughput): ratio = ours / baseline.
 */
export type Better = "lower" | "higher";

export interface BenchRow {
  /** The case, e.g. "C hello start-to-exit (stdout /dev/null)". */
  name: string;
  /** Which statistic, e.g. "median", "p99", "mean". */
  metric: string;
  /** Unit of `ours` and every baseline, e.g. "µs", "ns/call", "MB/s". */
  unit: string;
  /** Our figure. */
  ours: number;
  /** Baselines measured in the same run, by label (e.g. "node:wasi"). May be empty. */
  baselines: Record<string, number>;
  /** Default "lower" (a time). Decides the ratio's direction. */
  better?: Better;
  /** Against the best baseline in the row; >= 1 means ours is as good or better (see Better). */
  ratio?: number;
  /** The goal in words, e.g. ">= 1.00x" or "< 5 ms". */
  goal?: string;
  /** Whether the goal is met; omitted when there is no goal. */
  pass?: boolean;
}

export interface BenchSection {
  /** Table title; `npm run bench -- WORD` selects files by name, not by title. */
  title: string;
  rows: BenchRow[];
  /** How it was measured and what to keep in mind, printed under the table. */
  notes?: string[];
}

/** What a benchmark file exports. */
export type BenchFile = {
  run(ctx: BenchContext): Promise<BenchSection | BenchSection[]>;
  /**
   * Node/V8 flags for the process the file runs in (each file runs in its own
   * child process, so one file's flags, heap and JIT state never affect another's).
   */
  nodeFlags?: readonly string[];
};
