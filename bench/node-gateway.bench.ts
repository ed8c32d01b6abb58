/**
 * The node's gateway against its peers (issue 11, "Benchmark"), side by side
 * in one run with the same core budget:
 *
 *   plain Node http hello                          (the ceiling for a Node server)
 *   workerd, a wasm export call per request        (reactor hello, see servers/workerd.ts)
 *   workerd, a fresh wasm instance per request     (WAGI hello)
 *   uniwasm reactor hello                          (a warm instance, uniwasm_http_handle)
 *   uniwasm WAGI hello                             (a fresh instance per request, CGI over WASI)
 *
 * Each server is its own process pinned with taskset to the same core(s)
 * (SERVER_CORES); wrk and the constant-rate generator run pinned to the
 * other core (LOAD_CORES). Rounds are interleaved (every case once per round,
 * the order alternating) and the median round is reported, with the ratios
 * taken from the same run: on a shared machine absolute req/s drift with
 * everybody else's load, ratios much less.
 *
 * Sections:
 *   (a) peak: wrk -t1 -c16, req/s, p50, p99, CPU µs per request (server
 *       process, all threads; and its serving thread);
 *   (b) latency at 80% of each server's own peak: constant rate (rate-load.ts,
 *       wrk2's method: latency from the scheduled send time), p50/p99/p99.9;
 *   (c) fairness: tenant A's p99 alone, then while tenant B floods the node.
 * Before/after: with UNIWASM_BENCH_BEFORE=DIR (a copy of `dist/` built from
 * the commit before a change, with node_modules reachable from it), a second
 * uniwasm node from that build runs in the same rounds, and rows compare the
 * two ("reactor (before)", "WAGI (before)").
 * Goals (issue 11): reactor >= 2x workerd's export call and >= 0.5x plain
 * Node; WAGI >= 1.5x workerd's fresh instance; p99 <= 2 ms at 80% of peak.
 */
import { availableParallelism, loadavg } from "node:os";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BenchContext, BenchRow, BenchSection } from "./types.js";
import { constantRate, HAVE_TASKSET, HAVE_WRK, pinned, startJsonServer, startPolledServer, threadCount, wrk, type Load, type ServerProcess } from "./load.js";
import type { RateResult } from "./rate-load.js";
import { ensureWorkerd, writeWorkerdConfig, WORKERD_VERSION } from "./servers/workerd.js";

const DIST_BENCH = dirname(fileURLToPath(import.meta.url));

interface Case {
  key: string;
  label: string;
  server: ServerProcess;
  url: string;
  host: string;
}

/**
 * Requests per second one fully used core would serve: 10^6 / CPU µs per
 * request. On a machine shared with other work, req/s measures how much CPU
 * each server was given as much as what it does with it (the scheduler shares
 * a contended core per thread, so a server with more busy threads gets more
 * of it); CPU per request does not depend on that share.
 */
function capacityRow(name: string, ours: Load, base: Load, label: string, goal?: number): BenchRow {
  const o = 1e6 / ours.cpuUs;
  const b = 1e6 / base.cpuUs;
  const ratio = o / b;
  return { name, metric: "capacity (10^6 / CPU µs per request)", unit: "req/s/core", ours: o, baselines: { [label]: b }, better: "higher", ratio, ...(goal ? { goal: `>= ${goal.toFixed(2)}x`, pass: ratio >= goal } : {}) };
}

const median = (ls: Load[]): Load => [...ls].sort((a, b) => a.rps - b.rps)[Math.floor(ls.length / 2)]!;
const spread = (ls: Load[]) => `${Math.min(...ls.map((l) => l.rps)).toFixed(0)}-${Math.max(...ls.map((l) => l.rps)).toFixed(0)}`;

export async function run(ctx: BenchContext): Promise<BenchSection[]> {
  if (!HAVE_WRK) return [{ title: "node gateway vs plain Node and workerd", rows: [], notes: ["skipped: wrk is not installed (apt-get install wrk)"] }];
  const cpus = availableParallelism();
  const serverCores = cpus >= 2 ? "0" : undefined;
  const loadCores = cpus >= 2 ? "1" : undefined;
  const rounds = ctx.quick ? 1 : 3;
  const roundSeconds = ctx.quick ? 3 : 5;
  const conns = 16;
  const servers: ServerProcess[] = [];
  const workDir = mkdtempSync(join(tmpdir(), "uniwasm-bench-gw-"));
  try {
    const node = process.execPath;
    const plain = await startJsonServer(...pinned(serverCores, node, [join(DIST_BENCH, "servers", "plain-http.js"), "1"]));
    servers.push(plain);
    const uw = await startJsonServer(...pinned(serverCores, node, [join(DIST_BENCH, "servers", "uniwasm-node.js"), JSON.stringify({ executors: 1 })]));
    servers.push(uw);
    // The same node with inline placement off: every guest on an executor (the placement before issue 11's fast path).
    const wantExec = !process.env["UNIWASM_BENCH_CASES"] || /-exec\b/.test(process.env["UNIWASM_BENCH_CASES"]);
    const exec = wantExec ? await startJsonServer(...pinned(serverCores, node, [join(DIST_BENCH, "servers", "uniwasm-node.js"), JSON.stringify({ executors: 1, inlineFuel: 0 })])) : undefined;
    if (exec) servers.push(exec);
    const beforeDir = process.env["UNIWASM_BENCH_BEFORE"];
    let before: ServerProcess | undefined;
    if (beforeDir) {
      before = await startJsonServer(...pinned(serverCores, node, [join(beforeDir, "bench", "servers", "uniwasm-node.js"), JSON.stringify({ executors: 1, root: ctx.root })]));
      servers.push(before);
    }
    const wd = ensureWorkerd(ctx.log);
    let workerd: ServerProcess | undefined;
    if (wd.bin) {
      const port = 20000 + Math.floor(Math.random() * 20000);
      const config = writeWorkerdConfig(workDir, ctx.root, port);
      workerd = await startPolledServer(...pinned(serverCores, wd.bin, ["serve", config]), `http://127.0.0.1:${port}/wagi`, workDir);
      servers.push(workerd);
    } else ctx.log(`workerd baseline skipped: ${wd.why}`);

    const cases: Case[] = [
      { key: "plain", label: "node http", server: plain, url: plain.url + "/", host: "x" },
      ...(workerd
        ? [
            { key: "wd-export", label: "workerd export call", server: workerd, url: workerd.url + "/reactor", host: "x" },
            { key: "wd-fresh", label: "workerd fresh instance", server: workerd, url: workerd.url + "/wagi", host: "x" },
          ]
        : []),
      { key: "reactor", label: "uniwasm reactor", server: uw, url: uw.url + "/", host: "reactor.hello.localhost" },
      { key: "wagi", label: "uniwasm WAGI", server: uw, url: uw.url + "/", host: "wagi.hello.localhost" },
      ...(exec
        ? [
            { key: "reactor-exec", label: "uniwasm reactor on an executor", server: exec, url: exec.url + "/", host: "reactor.hello.localhost" },
            { key: "wagi-exec", label: "uniwasm WAGI on an executor", server: exec, url: exec.url + "/", host: "wagi.hello.localhost" },
          ]
        : []),
      ...(before
        ? [
            { key: "reactor-before", label: "reactor (before)", server: before, url: before.url + "/", host: "reactor.hello.localhost" },
            { key: "wagi-before", label: "WAGI (before)", server: before, url: before.url + "/", host: "wagi.hello.localhost" },
          ]
        : []),
    ];
    // For quick before/after runs: UNIWASM_BENCH_CASES=reactor,wagi,reactor-before,... keeps only those (ours always stay).
    const only = process.env["UNIWASM_BENCH_CASES"]?.split(",");
    if (only) for (let i = cases.length - 1; i >= 0; i--) if (!only.includes(cases[i]!.key) && cases[i]!.key !== "reactor" && cases[i]!.key !== "wagi") cases.splice(i, 1);
    const peakOnly = process.env["UNIWASM_BENCH_PEAK_ONLY"] === "1";
    const load0 = loadavg();
    ctx.log(`servers on core(s) ${serverCores ?? "any"}, load on ${loadCores ?? "any"}; uniwasm: ${String(uw.info["runner"])}; ${rounds} interleaved round(s) of ${roundSeconds}s; load average ${load0.map((l) => l.toFixed(2)).join(" ")}`);
    for (const c of cases) await wrk(c.url, c.host, conns, 2, c.server.pid, loadCores); // warm-up at full concurrency: JIT tiers, reactor pools grown, modules in every executor

    // (a) peak
    const runs: Record<string, Load[]> = Object.fromEntries(cases.map((c) => [c.key, []]));
    for (let r = 0; r < rounds; r++) {
      for (const c of r % 2 === 0 ? cases : [...cases].reverse()) {
        const l = await wrk(c.url, c.host, conns, roundSeconds, c.server.pid, loadCores);
        runs[c.key]!.push(l);
        ctx.log(`round ${r + 1}: ${c.key}: ${l.rps.toFixed(0)} req/s, p50 ${l.p50} ms, p99 ${l.p99} ms, ${l.cpuUs.toFixed(1)} µs CPU/request (${l.mainCpuUs.toFixed(1)} serving thread)`);
      }
    }
    const peak = Object.fromEntries(cases.map((c) => [c.key, median(runs[c.key]!)]));

    // (b) latency at 80% of each server's own peak, interleaved too
    const rated: Record<string, RateResult[]> = Object.fromEntries(cases.map((c) => [c.key, []]));
    const rateRounds = peakOnly ? 0 : ctx.quick ? 1 : 2;
    for (let r = 0; r < rateRounds; r++) {
      for (const c of r % 2 === 0 ? cases : [...cases].reverse()) {
        const target = 0.8 * peak[c.key]!.rps;
        const res = await constantRate(DIST_BENCH, c.url, c.host, target, roundSeconds, 32, loadCores);
        rated[c.key]!.push(res);
        ctx.log(`80% round ${r + 1}: ${c.key}: ${res.rps.toFixed(0)} of ${target.toFixed(0)} req/s, p50 ${res.p50.toFixed(3)} ms, p99 ${res.p99.toFixed(3)} ms (${res.sentP99.toFixed(3)} from the send), p99.9 ${res.p999.toFixed(3)} ms (generator lag p99 ${res.lagP99.toFixed(3)} ms, errors ${res.errors})`);
      }
    }
    const at80 = (key: string): RateResult => (rated[key]!.length === 0 ? { sent: 0, done: 0, errors: 0, rps: NaN, p50: NaN, p99: NaN, p999: NaN, max: NaN, lagP99: NaN, sentP50: NaN, sentP99: NaN } : [...rated[key]!].sort((a, b) => a.p99 - b.p99)[Math.floor(rated[key]!.length / 2)]!);
    const load1 = loadavg();

    const rows: BenchRow[] = [];
    const has = (k: string) => cases.some((c) => c.key === k);
    const cmp = (name: string, ours: Load, baseKey: string, goal?: number) => {
      if (!has(baseKey)) return;
      const base = peak[baseKey]!;
      const label = cases.find((c) => c.key === baseKey)!.label;
      const ratio = ours.rps / base.rps;
      rows.push({ name, metric: "throughput", unit: "req/s", ours: ours.rps, baselines: { [label]: base.rps }, better: "higher", ratio, ...(goal ? { goal: `>= ${goal.toFixed(2)}x`, pass: ratio >= goal } : {}) });
      rows.push(capacityRow(name, ours, base, label, goal));
    };
    const detail = (name: string, ours: Load, baseKeys: string[]) => {
      const b = (f: (l: Load) => number) => Object.fromEntries(baseKeys.filter(has).map((k) => [cases.find((c) => c.key === k)!.label, f(peak[k]!)]));
      for (const [metric, unit, f] of [
        ["p50 at peak", "ms", (l: Load) => l.p50],
        ["p99 at peak", "ms", (l: Load) => l.p99],
        ["CPU/request, all threads", "µs", (l: Load) => l.cpuUs],
        ["CPU/request, serving thread", "µs", (l: Load) => l.mainCpuUs],
      ] as const) {
        const base = b(f);
        const first = Object.values(base)[0];
        rows.push({ name, metric, unit, ours: f(ours), baselines: base, ...(first !== undefined ? { ratio: first / f(ours) } : {}) });
      }
    };
    cmp("reactor hello (warm instance)", peak["reactor"]!, "wd-export", 2);
    cmp("reactor hello (warm instance)", peak["reactor"]!, "plain", 0.5);
    detail("reactor hello (warm instance)", peak["reactor"]!, ["wd-export", "plain"]);
    cmp("WAGI hello (instance per request)", peak["wagi"]!, "wd-fresh", 1.5);
    cmp("WAGI hello (instance per request)", peak["wagi"]!, "plain");
    detail("WAGI hello (instance per request)", peak["wagi"]!, ["wd-fresh", "plain"]);
    if (exec) {
      cmp("reactor hello inline vs on an executor", peak["reactor"]!, "reactor-exec");
      detail("reactor hello inline vs on an executor", peak["reactor"]!, ["reactor-exec"]);
      cmp("WAGI hello inline vs on an executor", peak["wagi"]!, "wagi-exec");
      detail("WAGI hello inline vs on an executor", peak["wagi"]!, ["wagi-exec"]);
    }
    if (before) {
      cmp("reactor hello vs the build before", peak["reactor"]!, "reactor-before");
      detail("reactor hello vs the build before", peak["reactor"]!, ["reactor-before"]);
      cmp("WAGI hello vs the build before", peak["wagi"]!, "wagi-before");
      detail("WAGI hello vs the build before", peak["wagi"]!, ["wagi-before"]);
    }

    const latencyRows: BenchRow[] = [];
    for (const [name, key, baseKey] of [
      ["reactor hello at 80% of its peak", "reactor", "wd-export"],
      ["WAGI hello at 80% of its peak", "wagi", "wd-fresh"],
    ] as const) {
      const o = at80(key);
      const label = has(baseKey) ? cases.find((c) => c.key === baseKey)!.label + " at 80% of its peak" : undefined;
      const b = label ? at80(baseKey) : undefined;
      latencyRows.push({ name, metric: "p99", unit: "ms", ours: o.p99, baselines: b && label ? { [label]: b.p99 } : {}, ...(b ? { ratio: b.p99 / o.p99 } : {}), goal: "<= 2 ms", pass: o.p99 <= 2 });
      latencyRows.push({ name, metric: "p50", unit: "ms", ours: o.p50, baselines: b && label ? { [label]: b.p50 } : {}, ...(b ? { ratio: b.p50 / o.p50 } : {}) });
      latencyRows.push({ name, metric: "p99.9", unit: "ms", ours: o.p999, baselines: b && label ? { [label]: b.p999 } : {}, ...(b ? { ratio: b.p999 / o.p999 } : {}) });
      latencyRows.push({ name, metric: "p99 from the actual send", unit: "ms", ours: o.sentP99, baselines: b && label ? { [label]: b.sentP99 } : {}, ...(b ? { ratio: b.sentP99 / o.sentP99 } : {}) });
      latencyRows.push({ name, metric: "rate achieved", unit: "req/s", ours: o.rps, baselines: b && label ? { [label]: b.rps } : {}, better: "higher" });
    }
    if (has("plain")) latencyRows.push({ name: "node http at 80% of its peak", metric: "p99", unit: "ms", ours: at80("plain").p99, baselines: {} });

    // (c) fairness: a node with two executors on the same core, so that the OS can time-slice A's run in beside B's
    if (peakOnly) return [{ title: "node gateway (1 core): hello req/s and latency (peak only)", rows, notes: [`load average ${load0[0]!.toFixed(2)} before, ${load1[0]!.toFixed(2)} after; req/s per round: ${cases.map((c) => `${c.key} ${spread(runs[c.key]!)}`).join(", ")}`] }];
    const uw2 = await startJsonServer(...pinned(serverCores, node, [join(DIST_BENCH, "servers", "uniwasm-node.js"), JSON.stringify({ executors: 2 })]));
    servers.push(uw2);
    const fair = await fairness(ctx, uw2, roundSeconds * 2, loadCores);
    // (d) two cores: every server may use both, and so does wrk (this box has no third core)
    const two = cpus >= 2 ? await twoCores(ctx, servers, wd.bin, workDir, rounds, roundSeconds, conns) : undefined;

    const errors = Object.values(runs).flat().reduce((n, l) => n + l.errors, 0);
    const rateErrors = Object.values(rated).flat().reduce((n, l) => n + l.errors, 0);
    const pin = HAVE_TASKSET && serverCores ? `every server pinned (taskset) to core ${serverCores}, wrk and the rate generator to core ${loadCores}` : "no pinning (taskset missing or one CPU): servers and load share every CPU";
    return [
      {
        title: "node gateway (1 core): hello req/s and latency vs plain Node http and workerd",
        rows,
        notes: [
          `${pin}. wrk -t1 -c ${conns}, keep-alive, 127.0.0.1; after a 2 s warm-up per case at the same concurrency, ${rounds} round(s) of ${roundSeconds}s per case, interleaved (order alternating per round); the median round is shown. req/s per round: ${cases.map((c) => `${c.key} ${spread(runs[c.key]!)}`).join(", ")}.`,
          `1-min load average ${load0[0]!.toFixed(2)} before, ${load1[0]!.toFixed(2)} after, on ${cpus} CPUs shared with other work: absolute req/s are noisy, the ratios come from the same rounds.`,
          `uniwasm: one node process (${String(uw.info["runner"])}, ${threadCount(uw.pid)} threads) serving both apps: the gateway parses HTTP on the main thread and runs both hello guests inline there (placement: fuel-bounded, no hop); the "on an executor" cases are the same node with --inline-fuel 0, every request crossing to the executor (a worker thread) and back. workerd ${WORKERD_VERSION} (npm package, fetched into a cache on first use) runs the same two C guests with a minimal WASI host in the worker (servers/workerd.ts); it has no per-request limits, accounting or capability checks.`,
          "CPU/request is the server process's CPU (all threads, /proc) over the round divided by its requests: what each request costs. Capacity = 10^6 / CPU µs per request, the req/s one whole core would give: on a shared machine req/s also measures how much of the contended core each server got (Linux shares it per thread, so uniwasm's two busy threads get more of it than plain Node's one), so read the goals on both rows and trust capacity when they disagree.",
          `non-2xx or socket errors across these runs: ${errors}`,
        ],
      },
      {
        title: "node gateway (1 core): latency at 80% of each server's own peak (constant rate)",
        rows: latencyRows,
        notes: [
          `Each server gets 80% of its own median peak req/s from section (a), at a constant rate for ${roundSeconds}s, ${rateRounds} interleaved round(s) (the median p99 round shown), 32 keep-alive connections, by rate-load.ts (wrk2's method, which Debian does not package: each latency runs from the request's scheduled send time, so a stall counts against every request it delayed).`,
          "\"p99 from the actual send\" leaves out the time a request waited for the generator itself (or for a free connection): what a closed-loop tool would report; the gap between the two rows is the generator's (and the machine's) share.",
          `Generator lag p99 (how late it sent, its own noise floor): ${cases.map((c) => `${c.key} ${at80(c.key).lagP99.toFixed(3)} ms`).join(", ")}. Requests not answered within 2 s after the run count as errors: ${rateErrors}.`,
        ],
      },
      fair,
      ...(two ? [two] : []),
    ];
  } finally {
    for (const s of servers) await s.stop().catch(() => undefined);
    rmSync(workDir, { recursive: true, force: true });
  }
}

/**
 * The hello cases again with two cores per server: plain Node as a cluster of
 * two workers, uniwasm with two serving threads (serve --serving-threads 2:
 * the hello apps run inline on whichever thread took the connection) and one
 * executor, beside the same node with one serving thread and two executors,
 * workerd as one process (how it is deployed; its JavaScript runs on one
 * thread). wrk shares the same two
 * cores, so this measures whole-machine throughput.
 */
async function twoCores(ctx: BenchContext, servers: ServerProcess[], workerdBin: string | undefined, workDir: string, rounds: number, seconds: number, conns: number): Promise<BenchSection> {
  const cores = "0,1";
  const node = process.execPath;
  const plain = await startJsonServer(...pinned(cores, node, [join(DIST_BENCH, "servers", "plain-http.js"), "2"]));
  servers.push(plain);
  const uw = await startJsonServer(...pinned(cores, node, [join(DIST_BENCH, "servers", "uniwasm-node.js"), JSON.stringify({ executors: 1, servingThreads: 2 })]));
  servers.push(uw);
  const one = await startJsonServer(...pinned(cores, node, [join(DIST_BENCH, "servers", "uniwasm-node.js"), JSON.stringify({ executors: 2 })]));
  servers.push(one);
  let wd: ServerProcess | undefined;
  if (workerdBin) {
    const dir = join(workDir, "two");
    mkdirSync(dir);
    const port = 20000 + Math.floor(Math.random() * 20000);
    wd = await startPolledServer(...pinned(cores, workerdBin, ["serve", writeWorkerdConfig(dir, ctx.root, port)]), `http://127.0.0.1:${port}/wagi`, dir);
    servers.push(wd);
  }
  const cases: Case[] = [
    { key: "plain", label: "node http (cluster of 2)", server: plain, url: plain.url + "/", host: "x" },
    ...(wd
      ? [
          { key: "wd-export", label: "workerd export call", server: wd, url: wd.url + "/reactor", host: "x" },
          { key: "wd-fresh", label: "workerd fresh instance", server: wd, url: wd.url + "/wagi", host: "x" },
        ]
      : []),
    { key: "reactor", label: "uniwasm reactor", server: uw, url: uw.url + "/", host: "reactor.hello.localhost" },
    { key: "wagi", label: "uniwasm WAGI", server: uw, url: uw.url + "/", host: "wagi.hello.localhost" },
    { key: "reactor-1t", label: "uniwasm reactor, one serving thread", server: one, url: one.url + "/", host: "reactor.hello.localhost" },
    { key: "wagi-1t", label: "uniwasm WAGI, one serving thread", server: one, url: one.url + "/", host: "wagi.hello.localhost" },
  ];
  for (const c of cases) await wrk(c.url, c.host, conns, 2, c.server.pid, cores);
  const runs: Record<string, Load[]> = Object.fromEntries(cases.map((c) => [c.key, []]));
  const load0 = loadavg()[0]!;
  for (let r = 0; r < rounds; r++) {
    for (const c of r % 2 === 0 ? cases : [...cases].reverse()) {
      const l = await wrk(c.url, c.host, conns, seconds, c.server.pid, cores);
      runs[c.key]!.push(l);
      ctx.log(`2 cores, round ${r + 1}: ${c.key}: ${l.rps.toFixed(0)} req/s, p99 ${l.p99} ms, ${l.cpuUs.toFixed(1)} µs CPU/request`);
    }
  }
  const peak = Object.fromEntries(cases.map((c) => [c.key, median(runs[c.key]!)]));
  const rows: BenchRow[] = [];
  const row = (name: string, key: string, baseKey: string, goal?: number) => {
    const base = peak[baseKey];
    if (!base) return;
    const label = cases.find((c) => c.key === baseKey)!.label;
    const ratio = peak[key]!.rps / base.rps;
    rows.push({ name, metric: "throughput", unit: "req/s", ours: peak[key]!.rps, baselines: { [label]: base.rps }, better: "higher", ratio, ...(goal ? { goal: `>= ${goal.toFixed(2)}x`, pass: ratio >= goal } : {}) });
    rows.push(capacityRow(name, peak[key]!, base, label, goal));
  };
  row("reactor hello, 2 cores", "reactor", "wd-export", 2);
  row("reactor hello, 2 cores", "reactor", "plain", 0.5);
  row("WAGI hello, 2 cores", "wagi", "wd-fresh", 1.5);
  row("reactor hello, 2 cores: two serving threads vs one", "reactor", "reactor-1t");
  row("WAGI hello, 2 cores: two serving threads vs one", "wagi", "wagi-1t");
  const ours = (k: string) => k === "reactor" || k === "wagi";
  for (const k of ["reactor", "wagi"]) {
    const base = Object.fromEntries(cases.filter((c) => !ours(c.key)).map((c) => [c.label, peak[c.key]!.p99]));
    rows.push({ name: `${k === "reactor" ? "reactor" : "WAGI"} hello, 2 cores`, metric: "p99 at peak", unit: "ms", ours: peak[k]!.p99, baselines: base });
    rows.push({ name: `${k === "reactor" ? "reactor" : "WAGI"} hello, 2 cores`, metric: "CPU/request, all threads", unit: "µs", ours: peak[k]!.cpuUs, baselines: Object.fromEntries(cases.filter((c) => !ours(c.key)).map((c) => [c.label, peak[c.key]!.cpuUs])) });
  }
  return {
    title: "node gateway (2 cores): the same hello cases, servers and wrk on both cores",
    rows,
    notes: [
      `Every server pinned to cores ${cores}, and wrk too (there is no third core): whole-machine throughput, ${rounds} interleaved round(s) of ${seconds}s, median round; 1-min load average ${load0.toFixed(2)}. req/s per round: ${cases.map((c) => `${c.key} ${spread(runs[c.key]!)}`).join(", ")}.`,
      "Plain Node runs as a cluster of two workers (the primary hands out connections); uniwasm runs with --serving-threads 2 and one executor (the hello apps run inline on the thread that took the connection), beside the same node with one serving thread and two executors; workerd is one process.",
    ],
  };
}

async function fairness(ctx: BenchContext, uw: ServerProcess, seconds: number, loadCores: string | undefined): Promise<BenchSection> {
  const gw = uw.url + "/";
  const aAlone = await wrk(gw, "light.a.localhost", 2, seconds, uw.pid, loadCores);
  ctx.log(`tenant A alone: p99 ${aAlone.p99} ms`);
  const flood = wrk(`${gw}cpu?5`, "heavy.b.localhost", 8, seconds + 2, uw.pid, loadCores);
  await new Promise((r) => setTimeout(r, 1000));
  const aFlood = await wrk(gw, "light.a.localhost", 2, seconds, uw.pid, loadCores);
  const b = await flood;
  ctx.log(`tenant A under B's flood: p99 ${aFlood.p99} ms (B: ${b.rps.toFixed(0)} req/s)`);
  const fairRatio = aAlone.p99 / aFlood.p99;
  return {
    title: "node fairness (1 core): tenant A's latency while tenant B floods with CPU-bound requests",
    rows: [
      { name: "tenant A (WAGI hello) under B's CPU flood", metric: "p99", unit: "ms", ours: aFlood.p99, baselines: { "A alone": aAlone.p99 }, ratio: fairRatio, goal: ">= 0.50x (within 2x)", pass: fairRatio >= 0.5 },
      { name: "tenant A (WAGI hello) under B's CPU flood", metric: "p50", unit: "ms", ours: aFlood.p50, baselines: { "A alone": aAlone.p50 }, ratio: aAlone.p50 / aFlood.p50 },
      { name: "tenant A (WAGI hello) under B's CPU flood", metric: "throughput", unit: "req/s", ours: aFlood.rps, baselines: { "A alone": aAlone.rps }, better: "higher", ratio: aFlood.rps / aAlone.rps },
      { name: "tenant B flood (/cpu?5, 8 connections)", metric: "throughput", unit: "req/s", ours: b.rps, baselines: {}, better: "higher" },
    ],
    notes: [
      "A node like the one above on the same core, with two executors (worker threads) so that the OS time-slices A's run in beside B's. B's requests each run ~5 M xorshift rounds in C; the deficit-round-robin scheduler charges each tenant its measured executor time and keeps the last free executor for other active tenants.",
    ],
  };
}
