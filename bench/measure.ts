/**
 * Measuring helpers shared by the benchmark files: interleaved rounds,
 * medians and percentiles, and ratios oriented so that >= 1 means "ours is
 * at least as good". Machines are noisy (2 shared cores here), so cases are
 * never measured one after the other in long blocks: every round runs each
 * case once, alternating the order (A B, B A, ...), and we report medians.
 */
import type { BenchRow, Better } from "./types.js";

export interface Summary {
  n: number;
  median: number;
  p99: number;
  min: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentile of sorted samples (p in 0..100). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function summarize(samples: readonly number[]): Summary {
  const s = [...samples].sort((a, b) => a - b);
  const n = s.length;
  const mid = n % 2 === 1 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
  return {
    n,
    median: n === 0 ? Number.NaN : mid,
    p99: percentile(s, 99),
    min: n === 0 ? Number.NaN : s[0]!,
    max: n === 0 ? Number.NaN : s[n - 1]!,
    mean: n === 0 ? Number.NaN : s.reduce((a, b) => a + b, 0) / n,
  };
}

/** Microseconds `fn` took, by the monotonic clock. */
export function timeUs(fn: () => unknown): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e3;
}

export interface InterleaveOptions {
  /** Rounds run first and thrown away (JIT tier-up, page cache, allocator). Default 0. */
  warmup?: number;
}

/**
 * Runs `rounds` rounds; each round calls every case once and records the
 * number it returns (its measurement). The order alternates between rounds
 * (A B C, C B A, ...), so that neither side always runs right after the other
 * and drift (thermal, other tenants) is spread evenly.
 */
export function interleave<K extends string>(rounds: number, cases: Record<K, () => number>, options: InterleaveOptions = {}): Record<K, number[]> {
  const keys = Object.keys(cases) as K[];
  const out = Object.fromEntries(keys.map((k) => [k, [] as number[]])) as Record<K, number[]>;
  const warmup = options.warmup ?? 0;
  for (let r = 0; r < warmup + rounds; r++) {
    const order = r % 2 === 0 ? keys : [...keys].reverse();
    for (const k of order) {
      const v = cases[k]();
      if (r >= warmup) out[k].push(v);
    }
  }
  return out;
}

/** The ratio oriented so that >= 1 means ours is as good as or better than the baseline. */
export function orientedRatio(ours: number, baseline: number, better: Better = "lower"): number {
  return better === "lower" ? baseline / ours : ours / baseline;
}

/**
 * A row with its ratio against the best baseline in it (the strictest
 * comparison) and, when `minRatio` is given, the goal "ratio >= minRatio" and
 * whether it is met. Baselines that are not finite (a baseline that crashed) are skipped.
 */
export function compareRow(row: Omit<BenchRow, "ratio" | "goal" | "pass">, minRatio?: number): BenchRow {
  const better = row.better ?? "lower";
  const values = Object.values(row.baselines).filter((v) => Number.isFinite(v) && v > 0);
  const out: BenchRow = { ...row };
  if (values.length > 0 && row.ours > 0) {
    const best = better === "lower" ? Math.min(...values) : Math.max(...values);
    out.ratio = orientedRatio(row.ours, best, better);
    if (minRatio !== undefined) {
      out.goal = `>= ${minRatio.toFixed(2)}x`;
      out.pass = out.ratio >= minRatio;
    }
  }
  return out;
}
