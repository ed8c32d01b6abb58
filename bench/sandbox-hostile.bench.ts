/**
 * Hostile modules against the host's memory (issue 8, "a 1.5 KB module
 * crashes the whole node"): what the process holds while a guest tries to make
 * V8 allocate outside its limits, and that the process is still there after.
 * Figures are peak RSS of a process, not guest-visible numbers, so they live
 * here and not in a unit test.
 *
 * - `uniwasm run --max-memory 16M --timeout 5s table-grow.wasm` (100 empty
 *   tables, each grown by 10,000,000): before tables were bounded it printed
 *   deadline_exceeded, ran on for ~40 s and aborted at 7.7 GB RSS (exit 134).
 * - the same module run 20 times through one ExecutorPool;
 * - executors whose V8 heap fills up (1,000,000-element tables in warm
 *   reactors): each ends alone, the process goes on.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ExecutorPool, ReactorStartError, type Reactor } from "../src/sandbox/executor-pool.js";
import type { BenchContext, BenchSection } from "./types.js";

const MB = 1024 * 1024;

/** Peak RSS (MB), exit status and wall time of a child process, from GNU time. */
function timed(cmd: string[], cwd: string): { status: number | null; wallS: number; peakMb: number; stderr: string } {
  const t0 = performance.now();
  if (existsSync("/usr/bin/time")) {
    const r = spawnSync("/usr/bin/time", ["-f", "@@%M", ...cmd], { cwd, encoding: "utf8", timeout: 120_000 });
    const m = /@@(\d+)\s*$/.exec(r.stderr);
    return { status: r.status, wallS: (performance.now() - t0) / 1000, peakMb: m ? Number(m[1]) / 1024 : Number.NaN, stderr: r.stderr.replace(/@@\d+\s*$/, "") };
  }
  const r = spawnSync(cmd[0]!, cmd.slice(1), { cwd, encoding: "utf8", timeout: 120_000 });
  return { status: r.status, wallS: (performance.now() - t0) / 1000, peakMb: Number.NaN, stderr: r.stderr };
}

export async function run(ctx: BenchContext): Promise<BenchSection> {
  const fixture = (name: string): string => join(ctx.root, "test/fixtures/hostile", name);
  const rows: BenchSection["rows"] = [];
  const notes: string[] = [];

  // 1. The CLI, as the issue ran it.
  const cli = timed([process.execPath, "bin/uniwasm.js", "run", "--max-memory", "16M", "--timeout", "5s", fixture("table-grow.wasm")], ctx.root);
  const hello = timed([process.execPath, "bin/uniwasm.js", "run", join(ctx.root, "examples/hello.wasm")], ctx.root);
  rows.push(
    { name: "uniwasm run --max-memory 16M --timeout 5s table-grow.wasm: peak RSS", metric: "max", unit: "MB", ours: cli.peakMb, baselines: { "uniwasm run hello.wasm": hello.peakMb }, goal: "<= 2x hello", pass: cli.peakMb <= 2 * hello.peakMb },
    { name: "same: wall time", metric: "once", unit: "s", ours: cli.wallS, baselines: { "uniwasm run hello.wasm": hello.wallS } },
    { name: "same: exit status (0: every grow refused, nothing allocated)", metric: "once", unit: "status", ours: cli.status ?? -1, baselines: {}, goal: "0", pass: cli.status === 0 },
  );
  if (cli.status !== 0) notes.push(`table-grow.wasm stderr: ${cli.stderr.trim().slice(0, 300)}`);

  // 2. Through one pool, many times: RSS must not grow with the runs.
  const bytes = new Uint8Array(readFileSync(fixture("table-grow.wasm")));
  const pool = new ExecutorPool({ size: 2 });
  try {
    await pool.run(bytes, { limits: { maxMemoryBytes: 16 * MB } });
    const rss0 = process.memoryUsage.rss();
    let peak = rss0;
    const poll = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 10);
    const reasons = new Map<string, number>();
    const n = ctx.quick ? 5 : 20;
    for (let i = 0; i < n; i++) {
      const r = await pool.run(bytes, { limits: { maxMemoryBytes: 16 * MB, timeoutMs: 5000 } });
      reasons.set(r.reason, (reasons.get(r.reason) ?? 0) + 1);
    }
    clearInterval(poll);
    rows.push({ name: `ExecutorPool: ${n} runs of table-grow.wasm, RSS growth of the process`, metric: "max", unit: "MB", ours: (peak - rss0) / MB, baselines: {}, goal: "<= 64 MB", pass: (peak - rss0) / MB <= 64 });
    notes.push(`Pool runs ended: ${[...reasons].map(([k, v]) => `${k} x${v}`).join(", ")}.`);
  } finally {
    await pool.close();
  }

  // 3. Executors whose heap fills up: each ends alone with a named reason and is replaced.
  const small = new ExecutorPool({ size: 1, executorHeapMb: 64 });
  const reactors: Reactor[] = [];
  try {
    const big = new Uint8Array(readFileSync(fixture("big-table-reactor.wasm")));
    const rss0 = process.memoryUsage.rss();
    let peak = rss0;
    let kills = 0;
    let reason = "";
    const t0 = performance.now();
    for (let i = 0; i < (ctx.quick ? 12 : 40); i++) {
      try {
        reactors.push(await small.reactor(big));
      } catch (err) {
        if (!(err instanceof ReactorStartError)) throw err;
        kills++;
        reason = err.outcome.reason;
      }
      peak = Math.max(peak, process.memoryUsage.rss());
    }
    const ms = performance.now() - t0;
    const after = await small.run(new Uint8Array(readFileSync(fixture("table-small.wasm"))));
    rows.push(
      { name: "executor heap 64 MiB filled by 1,000,000-element tables: executors ended (process alive)", metric: "count", unit: "executors", ours: small.stats().heapKills, baselines: {}, better: "higher", goal: ">= 1", pass: small.stats().heapKills >= 1 && after.exitCode === 0 },
      { name: "same: peak RSS growth of the process", metric: "max", unit: "MB", ours: (peak - rss0) / MB, baselines: {}, goal: "<= 256 MB", pass: (peak - rss0) / MB <= 256 },
    );
    notes.push(`Heap case: ${kills} reactor starts ended with ${reason || "nothing"} over ${(ms / 1000).toFixed(1)} s; a run afterwards exited ${after.exitCode}.`);
  } finally {
    await Promise.all(reactors.map((r) => r.close()));
    await small.close();
  }
  notes.push("Peak RSS of child processes from GNU time (%M); in-process figures poll process.memoryUsage.rss() every 10 ms.");
  return { title: "sandbox: hostile modules against host memory", rows, notes };
}
