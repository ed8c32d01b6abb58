/**
 * The kernel against Node's built-in node:wasi, side by side in one run, on
 * the same compiled modules (issue 2, "Benchmark"):
 *   (a) start-to-exit of a C hello in this thread;
 *   (b) host-call overhead: ns per clock_time_get, looped inside the guest;
 *   (c) fd_write / fd_read throughput on a preopened host directory;
 *   (d) path resolution: path_filestat_get and open+close of a 6-component
 *       path in a preopened host directory (ours walks it by descriptor, one
 *       component at a time, openat-style; node:wasi resolves the string).
 *       With UNIWASM_BENCH_BEFORE=DIR (a copy of `dist/` built from the commit
 *       before a change, with node_modules reachable from it, as in
 *       node-gateway.bench.ts), that build runs in the same rounds ("before").
 * Ratios are oriented so that >= 1.00x means ours is at least as fast.
 *
 * node:wasi in two configurations. Node 20 implements node:wasi with V8 "fast
 * API calls", which crash the process (SIGSEGV) once a GC lands inside a fast
 * call (nodejs/node#46777, #52402, #53087) — here within ~1000 instances — and
 * make every instantiation compile fresh wrappers (~0.5 ms). So this file runs
 * with --no-turbo-fast-api-calls, interleaving node:wasi with ours in one
 * thread ("node:wasi" column); Node's default, fast calls on, is measured in a
 * separate process on the same modules ("node:wasi fast-calls" column), where
 * a crash costs only that figure. Each ratio is against the better of the two.
 */
import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statfsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { WASI } from "node:wasi";
import { InlineEngine, type RunModuleOptions, type RunResult } from "../src/sandbox/inline.js";
import type { PreparedModule } from "../src/sandbox/modules.js";
import { compileCheckedSync } from "../src/wasm/index.js";
import { compareRow, interleave, summarize } from "./measure.js";
import type { BenchContext, BenchRow, BenchSection } from "./types.js";

export const nodeFlags = ["--no-turbo-fast-api-calls"];

const NODE = "node:wasi";
const NODE_FAST = "node:wasi fast-calls";
/** The goal from issue 2: at least as fast as node:wasi on each figure. */
const GOAL = 1;
const MIB = 64;

interface Plan {
  helloRounds: number;
  helloWarmup: number;
  loopN: number;
  loopRounds: number;
  ioRounds: number;
  pathCalls: number;
  pathRounds: number;
}

function plan(quick: boolean): Plan {
  return quick
    ? { helloRounds: 300, helloWarmup: 50, loopN: 200_000, loopRounds: 10, ioRounds: 3, pathCalls: 500, pathRounds: 4 }
    : { helloRounds: 3000, helloWarmup: 300, loopN: 1_000_000, loopRounds: 40, ioRounds: 24, pathCalls: 2000, pathRounds: 16 };
}

/**
 * Ours runs through the engine's inline placement, from the module prepared
 * once (memory and table limits, grow hook, recyclable memory; compile not
 * timed), with no deadline: the kernel is what this file compares, and a
 * deadline watchdog would add its own ~0.1 ms per call. node:wasi gets the
 * original module, compiled once.
 */
const engine = new InlineEngine({ limits: { timeoutMs: Infinity, stdoutBytes: Infinity, stderrBytes: Infinity } });

interface Loaded {
  module: WebAssembly.Module;
  info: ReturnType<typeof compileCheckedSync>["info"];
  prepared: PreparedModule;
}

function load(guests: string, name: string): Loaded {
  const bytes = new Uint8Array(readFileSync(join(guests, name)));
  const { module, info } = compileCheckedSync(bytes);
  return { module, info, prepared: engine.prepareSync(bytes, engine.defaults) };
}

function ours(m: Loaded, options: RunModuleOptions): RunResult {
  const r = engine.runPrepared(m.prepared, options);
  if (r.exitCode !== 0) throw new Error(`uniwasm run ended with ${r.exitCode} (${r.reason}): ${r.message ?? new TextDecoder().decode(r.stderr)}`);
  return r;
}

interface NodeWasiOptions {
  args: string[];
  stdout: number;
  preopens?: Record<string, string>;
}

/** node:wasi the way its docs run a command; an instance per run, like ours. */
function nodeWasi(m: Loaded, o: NodeWasiOptions): void {
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

/** Per round: (clock loop - empty loop) / N ns, so start-up and loop cost cancel. */
function perCallNs(clockUs: number[], emptyUs: number[], n: number): number[] {
  return clockUs.map((t, i) => ((t - emptyUs[i]!) * 1e3) / n);
}

/** The io guest prints "write_ns read_ns written read". */
function parseIo(text: string): { write: number; read: number } {
  const [w, r, written, read] = text.trim().split(/\s+/).map(Number);
  if (!(written === MIB * 1048576 && read === written && w! > 0 && r! > 0)) throw new Error(`io guest printed ${JSON.stringify(text)}`);
  return { write: w!, read: r! };
}

/**
 * Removes the previous run's file, untimed: otherwise the next run's O_TRUNC
 * frees 64 MiB of page cache inside the timed open, and dirty-page writeback
 * of the previous run dominates what is measured.
 */
function freshFile(dir: string): void {
  rmSync(join(dir, "bench.bin"), { force: true });
}

function nodeIo(io: Loaded, dir: string, outDir: string): { write: number; read: number } {
  freshFile(dir);
  const out = join(outDir, "stdout");
  const fd = openSync(out, "w");
  try {
    nodeWasi(io, { args: ["io", "/data/bench.bin", String(MIB)], stdout: fd, preopens: { "/data": dir } });
  } finally {
    closeSync(fd);
  }
  return parseIo(readFileSync(out, "utf8"));
}

/** Where the preopened directory lives: $UNIWASM_BENCH_DIR, else the OS temp dir. */
function benchParent(): string {
  return process.env["UNIWASM_BENCH_DIR"] || tmpdir();
}

/** "ext4", "tmpfs", ... for the notes: the filesystem decides much of the throughput. */
function fsType(path: string): string {
  const types: Record<number, string> = { 0xef53: "ext4", 0x01021994: "tmpfs", 0x58465342: "xfs", 0x9123683e: "btrfs", 0x794c7630: "overlayfs" };
  try {
    const t = statfsSync(path).type;
    return types[t] ?? `fs type 0x${t.toString(16)}`;
  } catch {
    return "unknown fs";
  }
}

function withTempDirs<T>(fn: (dir: string, outDir: string) => T): T {
  const dir = mkdtempSync(join(benchParent(), "uniwasm-bench-"));
  const outDir = mkdtempSync(join(tmpdir(), "uniwasm-bench-out-"));
  try {
    return fn(dir, outDir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(outDir, { recursive: true, force: true });
  }
}

// ---- node:wasi with fast calls, in its own process ----

type FastCase = "hello" | "clock" | "io";
type FastResult = { hello: number[] } | { clockNs: number[] } | { write: number[]; read: number[] };

/** Runs in the separate process: one case, node:wasi only, prints JSON. */
function fastCallsChild(guests: string, what: FastCase, p: Plan): FastResult {
  const devNull = openSync("/dev/null", "w");
  if (what === "hello") {
    const hello = load(guests, "hello.wasm");
    // Fewer rounds than in-process: each instance risks the fast-call crash.
    const s = interleave(Math.min(p.helloRounds, 300), { node: () => us(() => nodeWasi(hello, { args: ["hello"], stdout: devNull })) }, { warmup: 20 });
    return { hello: s.node };
  }
  if (what === "clock") {
    const clock = load(guests, "clock-loop.wasm");
    const empty = load(guests, "empty-loop.wasm");
    const args = ["loop", String(p.loopN)];
    const s = interleave(p.loopRounds, {
      clock: () => us(() => nodeWasi(clock, { args, stdout: devNull })),
      empty: () => us(() => nodeWasi(empty, { args, stdout: devNull })),
    }, { warmup: 2 });
    return { clockNs: perCallNs(s.clock, s.empty, p.loopN) };
  }
  const io = load(guests, "io.wasm");
  const write: number[] = [];
  const read: number[] = [];
  withTempDirs((dir, outDir) => {
    for (let r = 0; r <= p.ioRounds; r++) {
      const t = nodeIo(io, dir, outDir);
      if (r === 0) continue; // warm-up
      write.push(t.write);
      read.push(t.read);
    }
  });
  return { write, read };
}

/** Spawns this file with Node's default flags to measure one case; a crash is reported, not fatal. */
function fastCalls(ctx: BenchContext, what: FastCase): { result?: FastResult; failure?: string } {
  const self = fileURLToPath(import.meta.url);
  const r = spawnSync(process.execPath, ["--turbo-fast-api-calls", self, "--fast-calls-child", what, ctx.guest("."), ctx.quick ? "quick" : "full"], {
    encoding: "utf8",
    maxBuffer: 64 << 20,
  });
  if (r.status === 0) return { result: JSON.parse(r.stdout) as FastResult };
  const how = r.signal ? `crashed with ${r.signal}` : `exited with ${r.status}: ${r.stderr.trim().split("\n").slice(-1)[0]}`;
  ctx.log(`${NODE_FAST} ${what}: ${how}`);
  return { failure: how };
}

// ---- the sections ----

function timeRows(name: string, unit: string, oursSamples: number[], base: Record<string, number[] | undefined>): BenchRow[] {
  const a = summarize(oursSamples);
  const s = Object.entries(base).map(([k, v]) => [k, v ? summarize(v) : undefined] as const);
  const pick = (f: "median" | "p99") => Object.fromEntries(s.map(([k, v]) => [k, v ? v[f] : Number.NaN]));
  return [
    compareRow({ name, metric: "median", unit, ours: a.median, baselines: pick("median") }, GOAL),
    compareRow({ name, metric: "p99", unit, ours: a.p99, baselines: pick("p99") }, GOAL),
  ];
}

function startToExit(ctx: BenchContext, p: Plan, devNull: number): { rows: BenchRow[]; notes: string[] } {
  const hello = load(ctx.guest("."), "hello.wasm");
  const args = ["hello"];
  ctx.log(`start-to-exit: ${p.helloRounds} rounds of 4 cases (+${p.helloWarmup} warm-up)`);
  const s = interleave(p.helloRounds, {
    fd: () => us(() => ours(hello, { args, stdout: { fd: devNull } })),
    null: () => us(() => ours(hello, { args, stdout: "null" })),
    buffer: () => us(() => ours(hello, { args, stdout: "buffer" })),
    node: () => us(() => nodeWasi(hello, { args, stdout: devNull })),
  }, { warmup: p.helloWarmup });
  ctx.log(`start-to-exit: ${NODE_FAST} in its own process`);
  const fast = fastCalls(ctx, "hello");
  const fastHello = fast.result && "hello" in fast.result ? fast.result.hello : undefined;
  const base = { [NODE]: s.node, [NODE_FAST]: fastHello };
  return {
    rows: [
      ...timeRows("C hello start-to-exit, stdout -> /dev/null fd", "µs", s.fd, base),
      ...timeRows('C hello start-to-exit, ours stdout "null"', "µs", s.null, base),
      ...timeRows('C hello start-to-exit, ours stdout "buffer"', "µs", s.buffer, base),
    ],
    notes: [
      `start-to-exit: new Kernel / new WASI + link + instantiate + _start + result, from one compiled module shared by both sides (compile not timed); ${p.helloRounds} interleaved rounds`,
      `fairness: the like-for-like row is "-> /dev/null fd", where both sides write(2) the guest's stdout to the same open /dev/null descriptor; ${NODE} always writes there. "null" drops the bytes in the kernel; "buffer" keeps them for the result, as the sandbox does`,
      `${NODE_FAST}: ${fastHello ? `${fastHello.length} rounds in its own process` : `no figure (${fast.failure})`}; each instantiation compiles fast-call wrappers, and long runs crash (see the file's header)`,
    ],
  };
}

function hostCall(ctx: BenchContext, p: Plan, devNull: number): { rows: BenchRow[]; notes: string[] } {
  const clock = load(ctx.guest("."), "clock-loop.wasm");
  const empty = load(ctx.guest("."), "empty-loop.wasm");
  const args = ["loop", String(p.loopN)];
  ctx.log(`host call: ${p.loopRounds} rounds of clock_time_get x ${p.loopN} and an empty loop x ${p.loopN}, on each side`);
  const s = interleave(p.loopRounds, {
    oursClock: () => us(() => ours(clock, { args, stdout: "null" })),
    oursEmpty: () => us(() => ours(empty, { args, stdout: "null" })),
    nodeClock: () => us(() => nodeWasi(clock, { args, stdout: devNull })),
    nodeEmpty: () => us(() => nodeWasi(empty, { args, stdout: devNull })),
  }, { warmup: 2 });
  ctx.log(`host call: ${NODE_FAST} in its own process`);
  const fast = fastCalls(ctx, "clock");
  const fastNs = fast.result && "clockNs" in fast.result ? fast.result.clockNs : undefined;
  return {
    rows: timeRows("clock_time_get(MONOTONIC), called from a wasm loop", "ns/call", perCallNs(s.oursClock, s.oursEmpty, p.loopN), {
      [NODE]: perCallNs(s.nodeClock, s.nodeEmpty, p.loopN),
      [NODE_FAST]: fastNs,
    }),
    notes: [
      `host call: per round, (run of clock-loop.wat N=${p.loopN} - run of empty-loop.wat N=${p.loopN}) / N; ${p.loopRounds} interleaved rounds; empty-loop runs took ${summarize(s.oursEmpty).median.toFixed(0)} µs (ours) and ${summarize(s.nodeEmpty).median.toFixed(0)} µs (${NODE}) in median${fastNs ? "" : `; ${NODE_FAST}: no figure (${fast.failure})`}`,
    ],
  };
}

function throughput(ctx: BenchContext, p: Plan): { rows: BenchRow[]; notes: string[] } {
  const io = load(ctx.guest("."), "io.wasm");
  const args = ["io", "/data/bench.bin", String(MIB)];
  ctx.log(`fd throughput: ${p.ioRounds} rounds of write+read ${MIB} MiB in 64 KiB chunks`);
  const oursT: { write: number; read: number }[] = [];
  const nodeT: { write: number; read: number }[] = [];
  withTempDirs((dir, outDir) => {
    interleave(p.ioRounds + 1, {
      ours: () => {
        freshFile(dir);
        const r = ours(io, { args, preopens: [{ guest: "/data", host: dir }], stdout: "buffer" });
        oursT.push(parseIo(new TextDecoder().decode(r.stdout)));
        return 0;
      },
      node: () => {
        nodeT.push(nodeIo(io, dir, outDir));
        return 0;
      },
    });
  });
  // Round 0 was the warm-up.
  oursT.shift();
  nodeT.shift();
  ctx.log(`fd throughput: ${NODE_FAST} in its own process`);
  const fast = fastCalls(ctx, "io");
  const fastIo = fast.result && "write" in fast.result ? fast.result : undefined;
  const mbps = (ns: number) => (MIB * 1048576) / 1e6 / (ns / 1e9);
  const rows = (name: string, phase: "write" | "read"): BenchRow[] => {
    const sa = summarize(oursT.map((t) => t[phase]));
    const sb = summarize(nodeT.map((t) => t[phase]));
    const sc = fastIo ? summarize(fastIo[phase]) : undefined;
    const row = (metric: string, f: "median" | "p99") =>
      compareRow({ name, metric, unit: "MB/s", better: "higher", ours: mbps(sa[f]), baselines: { [NODE]: mbps(sb[f]), [NODE_FAST]: sc ? mbps(sc[f]) : Number.NaN } }, GOAL);
    return [row("median", "median"), row("p99 (slow end)", "p99")];
  };
  return {
    rows: [...rows(`fd_write ${MIB} MiB, 64 KiB chunks, preopened host dir`, "write"), ...rows(`fd_read ${MIB} MiB, 64 KiB chunks, preopened host dir`, "read")],
    notes: [
      `throughput: timed inside the guest (CLOCK_MONOTONIC around open + write()s + close, then open + read()s + close), so start-up is excluded; a fresh file each run in ${benchParent()} (${fsType(benchParent())}; set UNIWASM_BENCH_DIR to choose); reads come from the page cache; MB = 10^6 bytes; ${p.ioRounds} interleaved rounds; "p99" is the throughput of the slowest (p99) phase time${fastIo ? "" : `; ${NODE_FAST}: no figure (${fast.failure})`}`,
    ],
  };
}

/** The paths guest prints "stat_ns open_ns" per call. */
function parsePaths(text: string): { stat: number; open: number } {
  const [stat, open] = text.trim().split(/\s+/).map(Number);
  if (!(stat! > 0 && open! > 0)) throw new Error(`paths guest printed ${JSON.stringify(text)}`);
  return { stat: stat!, open: open! };
}

/** A before-build's in-thread runner (its src/sandbox/instance.js, from before the one engine). */
type RunCommand = (module: WebAssembly.Module, info: unknown, options: RunModuleOptions) => RunResult;

async function pathResolution(ctx: BenchContext, p: Plan): Promise<{ rows: BenchRow[]; notes: string[] }> {
  const paths = load(ctx.guest("."), "paths.wasm");
  const args = ["paths", "/data", String(p.pathCalls)];
  const beforeDir = process.env["UNIWASM_BENCH_BEFORE"];
  const beforeRun: RunCommand | undefined = beforeDir
    ? ((await import(pathToFileURL(join(resolve(beforeDir), "src", "sandbox", "instance.js")).href)) as { runCommand: RunCommand }).runCommand
    : undefined;
  const beforeT: { stat: number; open: number }[] = [];
  ctx.log(`path resolution: ${p.pathRounds} rounds of ${p.pathCalls} stat + ${p.pathCalls} open/close of a/b/c/d/e/f.txt`);
  const oursT: { stat: number; open: number }[] = [];
  const nodeT: { stat: number; open: number }[] = [];
  withTempDirs((dir, outDir) => {
    const cases: Record<string, () => number> = {
      ours: () => {
        const r = ours(paths, { args, preopens: [{ guest: "/data", host: dir }], stdout: "buffer" });
        oursT.push(parsePaths(new TextDecoder().decode(r.stdout)));
        return 0;
      },
      node: () => {
        const out = join(outDir, "stdout");
        const fd = openSync(out, "w");
        try {
          nodeWasi(paths, { args, stdout: fd, preopens: { "/data": dir } });
        } finally {
          closeSync(fd);
        }
        nodeT.push(parsePaths(readFileSync(out, "utf8")));
        return 0;
      },
    };
    if (beforeRun) {
      cases["before"] = () => {
        const r = beforeRun(paths.module, paths.info, { args, preopens: [{ guest: "/data", host: dir }], stdout: "buffer" });
        beforeT.push(parsePaths(new TextDecoder().decode(r.stdout)));
        return 0;
      };
    }
    interleave(p.pathRounds + 1, cases);
  });
  oursT.shift(); // warm-up round
  nodeT.shift();
  beforeT.shift();
  const rows = (name: string, phase: "stat" | "open"): BenchRow[] =>
    timeRows(name, "ns/call", oursT.map((t) => t[phase]), {
      ...(beforeRun ? { before: beforeT.map((t) => t[phase]) } : {}),
      [NODE]: nodeT.map((t) => t[phase]),
      [NODE_FAST]: undefined,
    });
  return {
    rows: [...rows("path_filestat_get a/b/c/d/e/f.txt, preopened host dir", "stat"), ...rows("path_open + fd_close a/b/c/d/e/f.txt, preopened host dir", "open")],
    notes: [
      `path resolution: timed inside the guest (CLOCK_MONOTONIC around ${p.pathCalls} calls); ours opens each of the 5 directories by descriptor (O_PATH|O_DIRECTORY|O_NOFOLLOW through /proc/self/fd) and closes it, where ${NODE} hands the joined string to one syscall, which is why it is faster and why it is not safe against a directory swapped for a symlink meanwhile (issue 8); ${p.pathRounds} interleaved rounds; ${NODE_FAST} not measured here${beforeRun ? `; "before": the build in ${beforeDir}, same rounds` : ""}`,
    ],
  };
}

export async function run(ctx: BenchContext): Promise<BenchSection> {
  const p = plan(ctx.quick);
  const devNull = openSync("/dev/null", "w");
  try {
    const a = startToExit(ctx, p, devNull);
    const b = hostCall(ctx, p, devNull);
    const c = throughput(ctx, p);
    const d = await pathResolution(ctx, p);
    return {
      title: `kernel vs ${NODE} (same modules, one run)`,
      rows: [...a.rows, ...b.rows, ...c.rows, ...d.rows],
      notes: [
        ...a.notes,
        ...b.notes,
        ...c.notes,
        ...d.notes,
        `"${NODE}": Node's WASI in this process, run with --no-turbo-fast-api-calls and interleaved with ours; "${NODE_FAST}": Node's default (V8 fast API calls), in a separate process because it segfaults under many instantiations (nodejs/node#46777)`,
        `${NODE} is not a sandbox (its docs say so); ours checks grants, rights and bounds on every call`,
      ],
    };
  } finally {
    closeSync(devNull);
  }
}

// `node kernel.bench.js --fast-calls-child CASE GUESTS quick|full`: the separate process above.
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href && process.argv[2] === "--fast-calls-child") {
  const [what, guests, mode] = process.argv.slice(3) as [FastCase, string, string];
  process.stdout.write(JSON.stringify(fastCallsChild(guests, what, plan(mode === "quick"))) + "\n");
}
