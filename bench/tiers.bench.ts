/**
 * Tiers side by side (issue 13, "Benchmark"): the same guests on the isolate
 * tier (worker threads), the process tier (bubblewrap + seccomp) and the
 * gvisor tier (runsc), in one run.
 *
 *   (a) cold start of one executor, spawn to ready, against `node -e 0` and
 *       bare `bwrap` (the same namespaces around /bin/true): what the sandbox
 *       adds to starting a Node process;
 *   (b) from a warm pool: a C hello round trip (request to result), and the
 *       time to the guest's first instruction; goal: process tier <= 5 ms;
 *   (c) a node's gateway, req/s of the reactor and the WAGI hello per tier
 *       (wrk, server pinned to one core, load on the other); goal: process
 *       >= 0.7x isolate (isolate on executors: the like-for-like placement;
 *       the default inline placement is shown beside it);
 *   (d) RSS of one executor process (the sandbox's whole process tree);
 *   (e) system calls: the allow-list's count, and the set strace saw a
 *       process-tier executor make while it ran the conformance programs,
 *       start-up and steady state apart (the number beside Solo5's 7).
 * A tier whose tool is missing is skipped with the reason.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, realpathSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BenchContext, BenchRow, BenchSection } from "./types.js";
import { compareRow, summarize } from "./measure.js";
import { HAVE_WRK, pinned, startJsonServer, wrk, type Load, type ServerProcess } from "./load.js";
import { ExecutorPool } from "../src/sandbox/executor-pool.js";
import { Executor } from "../src/sandbox/executor.js";
import { WasmImage } from "../src/sandbox/modules.js";
import { SandboxLauncher, executorFiles } from "../src/sandbox/tiers/sandbox-launcher.js";
import { processTreeRss } from "../src/sandbox/tiers/process-executor.js";
import { auditStrace, mergeUse } from "../src/sandbox/tiers/syscall-audit.js";
import { findExecutable, tierUnavailable, TIERS, type Tier } from "../src/sandbox/tiers/tier.js";
import { DEFAULT_EXECUTOR_HEAP_MB } from "../src/sandbox/executor-pool.js";
import { conformanceCases, runConformanceProgram } from "../test/kernel/conformance-programs.js";

const DIST_BENCH = dirname(fileURLToPath(import.meta.url));
type Sandboxed = Exclude<Tier, "isolate">;

function fixture(ctx: BenchContext, name: string): Uint8Array {
  return new Uint8Array(readFileSync(join(ctx.root, "test/fixtures/c-sandbox", name)));
}

const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;

/** Spawn to exit of a command, ms. */
function timeCommand(cmd: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const c = spawn(cmd, args, { stdio: "ignore" });
    c.on("error", reject);
    c.on("exit", (code) => (code === 0 ? resolve(ms(t0)) : reject(new Error(`${cmd} exited with ${code}`))));
  });
}

/** One executor of `tier`, spawn to ready (ms); it is closed after. */
async function coldStart(tier: Tier, launcher: SandboxLauncher | undefined): Promise<number> {
  const t0 = process.hrtime.bigint();
  if (tier === "isolate") {
    let done!: () => void;
    const ready = new Promise<void>((r) => (done = r));
    const ex = new Executor({ stackSizeMb: 4, heapMb: DEFAULT_EXECUTOR_HEAP_MB }, { idle: () => done(), dead: () => done() });
    await ready;
    const t = ms(t0);
    await ex.close();
    return t;
  }
  const p = launcher!.start();
  await p.whenReady();
  const t = ms(t0);
  if (!p.ready) throw new Error(`the ${tier} sandbox did not boot: ${p.exitWhy}`);
  p.kill();
  await p.closed();
  return t;
}

export async function run(ctx: BenchContext): Promise<BenchSection[]> {
  const available = TIERS.filter((t) => !tierUnavailable(t));
  const skipped = TIERS.filter((t) => tierUnavailable(t)).map((t) => `${t} tier skipped: ${tierUnavailable(t)}`);
  for (const s of skipped) ctx.log(s);
  const sections: BenchSection[] = [];
  sections.push(await coldStarts(ctx, available, skipped));
  sections.push(await warmPool(ctx, available));
  sections.push(await gateway(ctx, available));
  if (available.includes("process")) sections.push(await syscalls(ctx));
  return sections;
}

// ---- (a) cold start ----------------------------------------------------------

async function coldStarts(ctx: BenchContext, tiers: Tier[], skipped: string[]): Promise<BenchSection> {
  const rounds = ctx.quick ? 3 : 10;
  const launchers = new Map<Tier, SandboxLauncher>();
  for (const t of tiers) if (t !== "isolate") launchers.set(t, new SandboxLauncher(t, { spares: 0 }));
  const bwrap = findExecutable("bwrap");
  const node = executorFiles().node;
  // Bare bubblewrap: the same namespaces, the host's root read-only, /bin/true: bwrap's own cost.
  const bareBwrap = ["--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-net", "--ro-bind", "/", "/", "--die-with-parent", "--", "/bin/true"];
  const samples: Record<string, number[]> = { "node -e 0": [], ...(bwrap ? { "bare bwrap (/bin/true)": [] } : {}), ...Object.fromEntries(tiers.map((t) => [t, []])) };
  try {
    for (let r = 0; r < rounds + 1; r++) {
      const steps: [string, () => Promise<number>][] = [
        ["node -e 0", () => timeCommand(node, ["-e", "0"])],
        ...(bwrap ? [["bare bwrap (/bin/true)", () => timeCommand(bwrap, bareBwrap)] as [string, () => Promise<number>]] : []),
        ...tiers.map((t) => [t, () => coldStart(t, launchers.get(t))] as [string, () => Promise<number>]),
      ];
      for (const [name, step] of r % 2 === 0 ? steps : steps.reverse()) {
        const t = await step();
        if (r > 0) samples[name]!.push(t); // round 0 warms the page cache
      }
    }
  } finally {
    await Promise.all([...launchers.values()].map((l) => l.close()));
  }
  const rows: BenchRow[] = [];
  const base = { "node -e 0": summarize(samples["node -e 0"]!).median, ...(bwrap ? { "bare bwrap": summarize(samples["bare bwrap (/bin/true)"]!).median } : {}) };
  for (const t of tiers) {
    const s = summarize(samples[t]!);
    rows.push({ name: `${t} executor, spawn to ready`, metric: "median", unit: "ms", ours: s.median, baselines: t === "isolate" ? {} : base });
  }
  for (const [name, v] of Object.entries(samples)) if (!(TIERS as readonly string[]).includes(name)) rows.push({ name, metric: "median", unit: "ms", ours: summarize(v).median, baselines: {} });
  ctx.log(`cold start: ${Object.entries(samples).map(([k, v]) => `${k} ${summarize(v).median.toFixed(1)} ms`).join(", ")}`);
  return {
    title: "tiers (a): cold start of one executor",
    rows,
    notes: [
      `${rounds} rounds after one warm-up, interleaved (order alternating); spawn to the executor's "ready" (its worker thread has loaded the kernel), ms.`,
      "process: prlimit + bwrap (user/PID/IPC/UTS/net/cgroup/mount namespaces, node + libraries + dist bound read-only) + seccomp filter + node + the executor's worker thread. gvisor: runsc run of an OCI bundle (rootless, no network), then the same executor.",
      "A node pays this only when a pool starts or replaces an executor: the launcher keeps a booted spare, and requests go to warm executors ((b)).",
      ...skipped,
    ],
  };
}

// ---- (b) warm pool -----------------------------------------------------------

async function warmPool(ctx: BenchContext, tiers: Tier[]): Promise<BenchSection> {
  const rounds = ctx.quick ? 200 : 1000;
  const hello = new WasmImage(fixture(ctx, "hello.wasm"));
  const first = new WasmImage(fixture(ctx, "first-instruction.wasm"));
  const rows: BenchRow[] = [];
  const notes: string[] = [];
  const results: Record<string, { rt: number; rtP99: number; inside: number; first: number; rss: number }> = {};
  for (const tier of tiers) {
    const launcher = tier === "isolate" ? undefined : new SandboxLauncher(tier, { spares: 0 });
    const pool = new ExecutorPool({ size: 1, ...(launcher ? { launcher } : {}) });
    try {
      await pool.whenReady();
      // The module's first run sends it and compiles it in the executor: not what a warm request pays.
      const firstRun = process.hrtime.bigint();
      await pool.run(hello, { stdout: "null" });
      const firstRunMs = ms(firstRun);
      for (let i = 0; i < rounds / 4; i++) await pool.run(hello, { stdout: "null" });
      const rt: number[] = [];
      const inside: number[] = [];
      const toFirst: number[] = [];
      for (let i = 0; i < rounds; i++) {
        const t0 = process.hrtime.bigint();
        const r = await pool.run(hello, { stdout: "null" });
        rt.push(ms(t0));
        inside.push(r.durationUs / 1000);
        if (r.reason !== "exit") throw new Error(`hello on ${tier}: ${r.reason} ${r.message}`);
        const f0 = process.hrtime.bigint();
        const f = await pool.run(first);
        if (f.stdout.length === 8) toFirst.push(Number(new DataView(f.stdout.buffer, f.stdout.byteOffset, 8).getBigUint64(0, true) - f0) / 1e6);
      }
      const pid = pool.processes()[0]?.pid;
      const rss = pid ? processTreeRss(pid) : 0;
      const s = summarize(rt);
      const ff = summarize(toFirst);
      results[tier] = { rt: s.median, rtP99: s.p99, inside: summarize(inside).median, first: ff.median, rss };
      ctx.log(`${tier}: hello round trip median ${s.median.toFixed(3)} ms p99 ${s.p99.toFixed(3)} ms (in the executor ${summarize(inside).median.toFixed(3)} ms), first instruction ${ff.median.toFixed(3)} ms, first run of the module ${firstRunMs.toFixed(1)} ms, RSS ${(rss / 2 ** 20).toFixed(1)} MiB`);
      notes.push(`${tier}: the module's first run on a fresh executor (sent, compiled inside) took ${firstRunMs.toFixed(1)} ms.`);
      // gVisor's CLOCK_MONOTONIC is its own kernel's: the first-instruction time read inside is not comparable there.
      if (tier === "gvisor" && !(ff.median > 0 && ff.median < s.median)) delete (results[tier] as Partial<typeof results[string]>).first;
    } finally {
      await pool.close();
      await launcher?.close();
    }
  }
  const iso = results["isolate"];
  for (const tier of tiers) {
    const r = results[tier]!;
    const vsIsolate: Record<string, number> = tier !== "isolate" && iso ? { isolate: iso.rt } : {};
    const row = compareRow({ name: `${tier}: C hello, warm pool to finished`, metric: "median", unit: "ms", ours: r.rt, baselines: vsIsolate });
    if (tier === "process") Object.assign(row, { goal: "<= 5 ms", pass: r.rt <= 5 });
    rows.push(row);
    rows.push({ name: `${tier}: C hello, warm pool to finished`, metric: "p99", unit: "ms", ours: r.rtP99, baselines: {} });
    if (r.first !== undefined) rows.push({ name: `${tier}: request to the guest's first instruction`, metric: "median", unit: "ms", ours: r.first, baselines: {} });
    if (tier !== "isolate") rows.push({ name: `${tier}: RSS of one executor process (its tree)`, metric: "idle after the runs", unit: "MiB", ours: r.rss / 2 ** 20, baselines: {} });
  }
  return {
    title: "tiers (b): from a warm pool — C hello round trip, first instruction, RSS per executor",
    rows,
    notes: [
      `${rounds} runs per tier after ${rounds / 4} warm-up runs, one executor, module already in the executor; round trip = pool.run() called to result, stdout dropped in the kernel.`,
      "First instruction: the guest reads CLOCK_MONOTONIC as its first act (test/fixtures/c-sandbox/first-instruction.wat); the host subtracts when it asked (gVisor: left out when its clock is not the host's).",
      "RSS: VmRSS of the executor's process and its descendants (process: bwrap + node; gvisor: the runsc process tree this node started), after the runs.",
      ...notes,
    ],
  };
}

// ---- (c) gateway -------------------------------------------------------------

interface GwCase {
  key: string;
  label: string;
  server: ServerProcess;
  host: string;
}

async function gateway(ctx: BenchContext, tiers: Tier[]): Promise<BenchSection> {
  const title = "tiers (c): a node's gateway, req/s per tier (reactor and WAGI hello)";
  if (!HAVE_WRK) return { title, rows: [], notes: ["skipped: wrk is not installed (apt-get install wrk)"] };
  const cpus = availableParallelism();
  const serverCores = cpus >= 2 ? "0" : undefined;
  const loadCores = cpus >= 2 ? "1" : undefined;
  const rounds = ctx.quick ? 1 : 3;
  const seconds = ctx.quick ? 3 : 5;
  const servers: ServerProcess[] = [];
  const cases: GwCase[] = [];
  try {
    const start = async (label: string, options: Record<string, unknown>): Promise<ServerProcess> => {
      const s = await startJsonServer(...pinned(serverCores, process.execPath, [join(DIST_BENCH, "servers", "uniwasm-node.js"), JSON.stringify({ executors: 1, ...options })]));
      servers.push(s);
      ctx.log(`${label}: ${String(s.info["runner"])}`);
      return s;
    };
    const inline = await start("isolate (inline)", {});
    const exec = await start("isolate (executors)", { inlineFuel: 0 });
    cases.push({ key: "isolate-inline/reactor", label: "isolate, inline: reactor", server: inline, host: "reactor.hello.localhost" });
    cases.push({ key: "isolate-inline/wagi", label: "isolate, inline: WAGI", server: inline, host: "wagi.hello.localhost" });
    cases.push({ key: "isolate/reactor", label: "isolate: reactor", server: exec, host: "reactor.hello.localhost" });
    cases.push({ key: "isolate/wagi", label: "isolate: WAGI", server: exec, host: "wagi.hello.localhost" });
    for (const t of tiers) {
      if (t === "isolate") continue;
      const s = await start(t, { tier: t });
      cases.push({ key: `${t}/reactor`, label: `${t}: reactor`, server: s, host: "reactor.hello.localhost" });
      cases.push({ key: `${t}/wagi`, label: `${t}: WAGI`, server: s, host: "wagi.hello.localhost" });
    }
    for (const c of cases) await wrk(c.server.url + "/", c.host, 16, 2, c.server.pid, loadCores); // warm-up
    const runs: Record<string, Load[]> = Object.fromEntries(cases.map((c) => [c.key, []]));
    for (let r = 0; r < rounds; r++) {
      for (const c of r % 2 === 0 ? cases : [...cases].reverse()) {
        const l = await wrk(c.server.url + "/", c.host, 16, seconds, c.server.pid, loadCores);
        runs[c.key]!.push(l);
        ctx.log(`round ${r + 1}: ${c.key}: ${l.rps.toFixed(0)} req/s, p99 ${l.p99} ms, ${l.errors} errors, ${l.cpuUs.toFixed(1)} µs CPU/request`);
      }
    }
    const median = (k: string): Load => {
      const ls = [...runs[k]!].sort((a, b) => a.rps - b.rps);
      return ls[Math.floor(ls.length / 2)]!;
    };
    const rows: BenchRow[] = [];
    for (const abi of ["reactor", "wagi"] as const) {
      const isoExec = median(`isolate/${abi}`);
      const isoInline = median(`isolate-inline/${abi}`);
      rows.push({ name: `isolate, inline: ${abi} hello`, metric: "req/s", unit: "req/s", ours: isoInline.rps, baselines: {}, better: "higher" });
      rows.push({ name: `isolate: ${abi} hello`, metric: "req/s", unit: "req/s", ours: isoExec.rps, baselines: {}, better: "higher" });
      rows.push({ name: `isolate: ${abi} hello`, metric: "CPU/request", unit: "µs", ours: isoExec.cpuUs, baselines: {} });
      for (const t of tiers) {
        if (t === "isolate") continue;
        const l = median(`${t}/${abi}`);
        rows.push(compareRow({ name: `${t}: ${abi} hello`, metric: "req/s", unit: "req/s", ours: l.rps, baselines: { "isolate (executors)": isoExec.rps }, better: "higher" }, t === "process" ? 0.7 : undefined));
        rows.push({ name: `${t}: ${abi} hello`, metric: "p99", unit: "ms", ours: l.p99, baselines: { "isolate (executors)": isoExec.p99 } });
        // The node's process tree: the executor processes (and gVisor's sandbox) are its descendants.
        rows.push({ name: `${t}: ${abi} hello`, metric: "CPU/request", unit: "µs", ours: l.cpuUs, baselines: { "isolate (executors)": isoExec.cpuUs } });
        if (l.errors > 0) ctx.log(`${t}/${abi}: ${l.errors} errors`);
      }
    }
    return {
      title,
      rows,
      notes: [
        `Each node its own process pinned to core ${serverCores ?? "any"} with one executor (--executors 1; a sandboxed tier: one executor process + a booted spare); wrk -t1 -c16 on core ${loadCores ?? "any"}; ${rounds} interleaved round(s) of ${seconds} s, median round.`,
        "The goal (process >= 0.7x) is against the isolate tier on executors, the same placement; the isolate tier's default (inline on the serving thread, no executor hop) is shown above it.",
        "On a sandboxed tier a request's module, options and result cross a socketpair to the executor process (the job slot's encoding), instead of shared memory.",
      ],
    };
  } finally {
    for (const s of servers) await s.stop();
  }
}

// ---- (e) system calls ----------------------------------------------------------

async function syscalls(ctx: BenchContext): Promise<BenchSection> {
  const policy = JSON.parse(readFileSync(join(ctx.root, "resources/seccomp/x86_64.json"), "utf8")) as { executor: { filter: { syscall: string }[] } };
  const entries = policy.executor.filter.length;
  const allowed = new Set(policy.executor.filter.map((f) => f.syscall));
  const root = realpathSync(mkdtempSync(join(tmpdir(), "uniwasm-bench-strace-")));
  const tracePrefix = join(root, "trace");
  const dirs = join(root, "dirs");
  execFileSync("mkdir", ["-p", dirs]);
  const launcher = new SandboxLauncher("process", { spares: 0, strace: tracePrefix, dirs: [{ host: dirs, readonly: false }] });
  const pool = new ExecutorPool({ size: 1, launcher });
  let programs = 0;
  try {
    await pool.whenReady();
    // The conformance programs (every host call's behaviours) on host directories, one after the other.
    for (const { name, directives, backends } of conformanceCases()) {
      for (const backend of backends) {
        if (backend === "memory") continue;
        await runConformanceProgram(name, directives, backend, (bytes, options) => pool.run(bytes, options as Parameters<ExecutorPool["run"]>[1]), dirs).catch(() => undefined);
        programs++;
      }
    }
  } finally {
    await pool.close();
    await launcher.close();
  }
  const use = mergeUse(launcher.traces.map((t) => auditStrace(t.path, t.proc.readyAt)));
  rmSync(root, { recursive: true, force: true });
  const startup = new Set(use.startup.keys());
  const steady = new Set(use.steady.keys());
  const used = new Set([...startup, ...steady]);
  const unusedAllowed = [...allowed].filter((s) => !used.has(s)).sort();
  const usedNotAllowed = [...used].filter((s) => !allowed.has(s)).sort();
  ctx.log(`strace: ${programs} programs; start-up ${startup.size} distinct calls, steady ${steady.size}; allowed but unused: ${unusedAllowed.join(" ") || "none"}`);
  return {
    title: "tiers (e): host system calls of a process-tier executor — allowed and used",
    rows: [
      { name: "seccomp allow-list entries (resources/seccomp/x86_64.json)", metric: "count", unit: "entries", ours: entries, baselines: { "Solo5 spt": 7 } },
      { name: "distinct system calls allowed", metric: "count", unit: "calls", ours: allowed.size, baselines: { "Solo5 spt": 7 } },
      { name: "distinct calls used, start-up to ready (node + kernel)", metric: "count", unit: "calls", ours: startup.size, baselines: {} },
      { name: "distinct calls used, steady state (serving the programs)", metric: "count", unit: "calls", ours: steady.size, baselines: { "Solo5 spt": 7 } },
      { name: "distinct calls used, either", metric: "count", unit: "calls", ours: used.size, baselines: {} },
    ],
    notes: [
      `strace -f -qq -ttt of one process-tier executor (bwrap's own set-up before it executes node left out) while it ran ${programs} conformance programs on a granted host directory; split at the executor's "ready".`,
      `Steady-state set: ${[...steady].sort().join(" ")}.`,
      `Allowed but not used in this run: ${unusedAllowed.join(" ") || "none"} (each entry's reason is in the JSON: e.g. calls only a limit's path, a failure or another host call makes).`,
      `Used but not on the list (the filter would have killed the process): ${usedNotAllowed.join(" ") || "none"}.`,
      ...(use.failed.size > 0 ? [`Calls that failed with EPERM/ENOSYS/EACCES (by the kernel or the filter's errno rules): ${[...use.failed].map(([n, c]) => `${n}×${c}`).join(" ")}.`] : []),
    ],
  };
}
