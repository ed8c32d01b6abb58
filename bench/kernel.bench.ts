/**
 * The kernel against Node's built-in node:wasi, side by side in one run, on
 * the same compiled modules (issue 2, "Benchmark"):
 *   (a) start-to-exit of a C hello in this thread;
 *   (b) host-call overhead: ns per clock_time_get, looped inside the guest;
 *   (c) fd_write / fd_read throughput on a preopened host directory.
 * Ratios are oriented so that >= 1.00x means ours is at least as fast.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WASI } from "node:wasi";
import { runCommand, type RunResult } from "../src/sandbox/instance.js";
import type { KernelOptions } from "../src/kernel/options.js";
import { compileChecked, type CheckedModule } from "../src/wasm/index.js";
import { compareRow, interleave, summarize } from "./measure.js";
import type { BenchContext, BenchRow, BenchSection } from "./types.js";

const NODE = "node:wasi";
/** The goal from issue 2: at least as fast as node:wasi on each figure. */
const GOAL = 1;

async function load(ctx: BenchContext, name: string): Promise<CheckedModule> {
  return compileChecked(new Uint8Array(readFileSync(ctx.guest(name))));
}

function ours(m: CheckedModule, options: KernelOptions): RunResult {
  const r = runCommand(m.module, m.info, options);
  if (r.exitCode !== 0) throw new Error(`uniwasm run ended with ${r.exitCode} (${r.reason}): ${r.message ?? new TextDecoder().decode(r.stderr)}`);
  return r;
}

interface NodeWasiOptions {
  args: string[];
  stdout: number;
  preopens?: Record<string, string>;
}

/** node:wasi the way its docs run a command; an instance per run, like ours. */
function nodeWasi(m: CheckedModule, o: NodeWasiOptions): void {
  const wasi = new WASI({ version: "preview1", args: o.args, env: {}, preopens: o.preopens ?? {}, returnOnExit: true, stdout: o.stdout });
  const instance = new WebAssembly.Instance(m.module, wasi.getImportObject() as WebAssembly.Imports);
  const code = wasi.start(instance);
  if (code !== 0) throw new Error(`node:wasi run ended with ${code}`);
}

/** Microseconds that `fn` took. */
function us(fn: () => unknown): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e3;
}

function timeRows(name: string, unit: string, oursSamples: number[], nodeSamples: number[]): BenchRow[] {
  const a = summarize(oursSamples);
  const b = summarize(nodeSamples);
  return [
    compareRow({ name, metric: "median", unit, ours: a.median, baselines: { [NODE]: b.median } }, GOAL),
    compareRow({ name, metric: "p99", unit, ours: a.p99, baselines: { [NODE]: b.p99 } }, GOAL),
  ];
}

// ---- (a) start-to-exit ----

async function startToExit(ctx: BenchContext, devNull: number): Promise<{ rows: BenchRow[]; notes: string[] }> {
  const hello = await load(ctx, "hello.wasm");
  const args = ["hello"];
  const rounds = ctx.quick ? 300 : 3000;
  const warmup = ctx.quick ? 50 : 300;
  ctx.log(`start-to-exit: ${rounds} rounds of 4 cases (+${warmup} warm-up)`);
  const s = interleave(rounds, {
    fd: () => us(() => ours(hello, { args, stdout: { fd: devNull } })),
    null: () => us(() => ours(hello, { args, stdout: "null" })),
    buffer: () => us(() => ours(hello, { args, stdout: "buffer" })),
    node: () => us(() => nodeWasi(hello, { args, stdout: devNull })),
  }, { warmup });
  return {
    rows: [
      ...timeRows("C hello start-to-exit, stdout -> /dev/null fd", "µs", s.fd, s.node),
      ...timeRows('C hello start-to-exit, ours stdout "null"', "µs", s.null, s.node),
      ...timeRows('C hello start-to-exit, ours stdout "buffer"', "µs", s.buffer, s.node),
    ],
    notes: [
      `start-to-exit: new kernel/WASI + link + instantiate + _start + result, from one compiled module shared by both (compile not timed); ${rounds} interleaved rounds`,
      "the like-for-like row is \"-> /dev/null fd\": both sides write(2) the guest's stdout to the same open /dev/null descriptor; node:wasi is always that baseline. \"null\" drops the bytes in the kernel, \"buffer\" keeps them in memory for the result (what the sandbox does)",
    ],
  };
}

// ---- (b) host-call overhead ----

async function hostCall(ctx: BenchContext, devNull: number): Promise<{ rows: BenchRow[]; notes: string[] }> {
  const clock = await load(ctx, "clock-loop.wasm");
  const empty = await load(ctx, "empty-loop.wasm");
  const n = ctx.quick ? 200_000 : 1_000_000;
  const rounds = ctx.quick ? 10 : 40;
  const args = ["loop", String(n)];
  ctx.log(`host call: ${rounds} rounds of clock_time_get x ${n} and an empty loop x ${n}, on each side`);
  const s = interleave(rounds, {
    oursClock: () => us(() => ours(clock, { args, stdout: "null" })),
    oursEmpty: () => us(() => ours(empty, { args, stdout: "null" })),
    nodeClock: () => us(() => nodeWasi(clock, { args, stdout: devNull })),
    nodeEmpty: () => us(() => nodeWasi(empty, { args, stdout: devNull })),
  }, { warmup: 2 });
  // Per round: (clock loop - empty loop) / N, so start-up and loop cost cancel.
  const perCall = (c: number[], e: number[]) => c.map((t, i) => ((t - e[i]!) * 1e3) / n);
  const oursLoop = summarize(s.oursEmpty).median;
  const nodeLoop = summarize(s.nodeEmpty).median;
  return {
    rows: timeRows("clock_time_get(MONOTONIC), called from a wasm loop", "ns/call", perCall(s.oursClock, s.oursEmpty), perCall(s.nodeClock, s.nodeEmpty)),
    notes: [
      `host call: per round, (run of clock-loop.wat N=${n} - run of empty-loop.wat N=${n}) / N; ${rounds} interleaved rounds. Empty-loop runs took ${oursLoop.toFixed(0)} µs (ours) and ${nodeLoop.toFixed(0)} µs (${NODE}) in median`,
    ],
  };
}

// ---- (c) fd_write / fd_read throughput ----

async function throughput(ctx: BenchContext): Promise<{ rows: BenchRow[]; notes: string[] }> {
  const io = await load(ctx, "io.wasm");
  const mib = 64;
  const rounds = ctx.quick ? 3 : 12;
  const dir = mkdtempSync(join(tmpdir(), "uniwasm-bench-"));
  const outDir = mkdtempSync(join(tmpdir(), "uniwasm-bench-out-"));
  const args = ["io", "/data/bench.bin", String(mib)];
  ctx.log(`fd throughput: ${rounds} rounds of write+read ${mib} MiB in 64 KiB chunks under ${dir}`);
  /** The guest prints "write_ns read_ns written read". */
  const parse = (text: string): { write: number; read: number } => {
    const [w, r, written, read] = text.trim().split(/\s+/).map(Number);
    if (!(written === mib * 1048576 && read === written && w! > 0 && r! > 0)) throw new Error(`io guest printed ${JSON.stringify(text)}`);
    return { write: w!, read: r! };
  };
  const oursW: number[] = [];
  const oursR: number[] = [];
  const nodeW: number[] = [];
  const nodeR: number[] = [];
  try {
    interleave(rounds, {
      ours: () => {
        const r = ours(io, { args, preopens: [{ guest: "/data", host: dir }], stdout: "buffer" });
        const t = parse(new TextDecoder().decode(r.stdout));
        oursW.push(t.write);
        oursR.push(t.read);
        return 0;
      },
      node: () => {
        const out = join(outDir, "stdout");
        const fd = openSync(out, "w");
        try {
          nodeWasi(io, { args, stdout: fd, preopens: { "/data": dir } });
        } finally {
          closeSync(fd);
        }
        const t = parse(readFileSync(out, "utf8"));
        nodeW.push(t.write);
        nodeR.push(t.read);
        return 0;
      },
    }, { warmup: 1 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(outDir, { recursive: true, force: true });
  }
  // The first sample is the warm-up round.
  for (const a of [oursW, oursR, nodeW, nodeR]) a.shift();
  const bytes = mib * 1048576;
  const mbps = (ns: number) => bytes / 1e6 / (ns / 1e9);
  const rows = (name: string, a: number[], b: number[]): BenchRow[] => {
    const sa = summarize(a);
    const sb = summarize(b);
    return [
      compareRow({ name, metric: "median", unit: "MB/s", better: "higher", ours: mbps(sa.median), baselines: { [NODE]: mbps(sb.median) } }, GOAL),
      compareRow({ name, metric: "p99 (slow end)", unit: "MB/s", better: "higher", ours: mbps(sa.p99), baselines: { [NODE]: mbps(sb.p99) } }, GOAL),
    ];
  };
  return {
    rows: [...rows(`fd_write ${mib} MiB, 64 KiB chunks, preopened host dir`, oursW, nodeW), ...rows(`fd_read ${mib} MiB, 64 KiB chunks, preopened host dir`, oursR, nodeR)],
    notes: [
      `throughput: timed inside the guest (CLOCK_MONOTONIC around open+write...+close, then open+read...+close), so start-up is excluded; reads come from the page cache; MB = 10^6 bytes; ${rounds} interleaved rounds; p99 is the throughput at the p99 (slowest) phase time`,
    ],
  };
}

export async function run(ctx: BenchContext): Promise<BenchSection> {
  const devNull = openSync("/dev/null", "w");
  try {
    const a = await startToExit(ctx, devNull);
    const b = await hostCall(ctx, devNull);
    const c = await throughput(ctx);
    return {
      title: `kernel vs ${NODE} (same modules, same thread, one run)`,
      rows: [...a.rows, ...b.rows, ...c.rows],
      notes: [...a.notes, ...b.notes, ...c.notes, `${NODE} is not a sandbox (its docs say so); ours enforces grants, rights and bounds on every call`],
    };
  } finally {
    closeSync(devNull);
  }
}
