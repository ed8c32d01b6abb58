/**
 * The node's gateway (issue 5, "Benchmark"), side by side in one run, all on
 * 127.0.0.1 with the same load generator (wrk when installed, else
 * autocannon in a child process):
 *   (a) "hello" throughput and latency: a plain Node `http` server vs the
 *       gateway serving a WAGI hello (a fresh instance per request) and a
 *       reactor hello (a warm instance), both C modules in the executor pool;
 *   (b) fairness: tenant A's p99 (WAGI hello, 2 connections) alone, then while
 *       tenant B floods the node with CPU-bound requests (8 connections).
 * Goals (issue 5): reactor >= 70% of plain Node's req/s, WAGI >= 40%; A's p99 under
 * B's flood within 2x of A alone.
 */
import { createServer, type Server } from "node:http";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { startNode, type RunningNode } from "../src/server/node.js";
import type { BenchContext, BenchRow, BenchSection } from "./types.js";

interface Load {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

const HAVE_WRK = spawnSync("wrk", ["--version"]).error === undefined;

function wrkMs(v: string, unit: string): number {
  const n = Number(v);
  return unit === "us" ? n / 1000 : unit === "ms" ? n : unit === "s" ? n * 1000 : n / 60_000;
}

/** Runs the load generator against `url` with a Host header; resolves with its figures. */
function load(url: string, host: string, connections: number, seconds: number): Promise<Load> {
  return new Promise((resolve, reject) => {
    const args = HAVE_WRK
      ? ["-t", "1", "-c", String(connections), "-d", `${seconds}s`, "--latency", "-H", `Host: ${host}`, url]
      : [join(process.cwd(), "node_modules", "autocannon", "autocannon.js"), "-c", String(connections), "-d", String(seconds), "-j", "-H", `host=${host}`, url];
    const child = spawn(HAVE_WRK ? "wrk" : process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c) => (out += c));
    child.on("error", reject);
    child.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`load generator exited ${code}: ${out}`));
      if (HAVE_WRK) {
        const pct = (p: string) => {
          const m = new RegExp(`^\\s+${p}%\\s+([0-9.]+)(us|ms|s|m)`, "m").exec(out);
          return m ? wrkMs(m[1]!, m[2]!) : NaN;
        };
        const rps = Number(/Requests\/sec:\s+([0-9.]+)/.exec(out)?.[1]);
        const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
        const sockErr = /Socket errors:.*?(\d+).*?(\d+).*?(\d+).*?(\d+)/.exec(out);
        resolve({ rps, p50: pct("50"), p99: pct("99"), errors: non2xx + (sockErr ? sockErr.slice(1).reduce((a, b) => a + Number(b), 0) : 0) });
      } else {
        const j = JSON.parse(out) as { requests: { average: number }; latency: { p50: number; p99: number }; non2xx: number; errors: number };
        resolve({ rps: j.requests.average, p50: j.latency.p50, p99: j.latency.p99, errors: j.non2xx + j.errors });
      }
    });
  });
}

async function api(node: RunningNode, method: string, path: string, token: string, body?: unknown, type = "application/json") {
  const res = await fetch(node.apiUrl + path, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": type },
    ...(body !== undefined ? { body: body instanceof Uint8Array ? body : JSON.stringify(body) } : {}),
  });
  const json = (await res.json()) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function deployFixture(node: RunningNode, tenant: string, token: string, app: string, file: string, abi: string): Promise<void> {
  const bytes = new Uint8Array(readFileSync(file));
  const img = await api(node, "POST", `/v1/tenants/${tenant}/images?name=${app}`, token, bytes, "application/wasm");
  await api(node, "PUT", `/v1/tenants/${tenant}/apps/${app}`, token, { image: img.digest, abi, scale: { minInstances: 2, maxInstances: 4, idleTimeoutMs: 600_000 }, limits: { timeoutMs: 30_000 } });
}

export async function run(ctx: BenchContext): Promise<BenchSection[]> {
  const seconds = ctx.quick ? 3 : 10;
  const conns = 16;
  const dataDir = mkdtempSync(join(tmpdir(), "uniwasm-bench-node-"));
  const plain: Server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("hello\n");
  });
  await new Promise<void>((r) => plain.listen(0, "127.0.0.1", () => r()));
  const plainUrl = `http://127.0.0.1:${(plain.address() as { port: number }).port}/`;
  const executors = availableParallelism();
  const node = await startNode({
    dataDir,
    apiPort: 0,
    gatewayPort: 0,
    logger: false,
    executors,
    defaultQuotas: { requestsPerSecond: 10_000_000, cpuMsPerMinute: 1_000_000_000, maxQueue: 10_000, maxConcurrency: 64 },
  });
  try {
    const admin = node.bootstrap!.secret;
    const tokens: Record<string, string> = {};
    for (const t of ["hello", "a", "b"]) tokens[t] = (await api(node, "POST", "/v1/tenants", admin, { name: t })).token.secret;
    const fx = (p: string) => join(ctx.root, "test", "fixtures", p);
    await deployFixture(node, "hello", tokens["hello"]!, "wagi", fx("wagi/hello.wasm"), "wagi");
    await deployFixture(node, "hello", tokens["hello"]!, "reactor", fx("reactor/hello.wasm"), "reactor");
    await deployFixture(node, "a", tokens["a"]!, "light", fx("wagi/hello.wasm"), "wagi");
    await deployFixture(node, "b", tokens["b"]!, "heavy", fx("wagi/handler.wasm"), "wagi");
    const gw = node.gatewayUrl + "/";

    ctx.log(`node: ${node.manager.runner.name}; load: ${HAVE_WRK ? "wrk" : "autocannon"} -c ${conns} for ${seconds}s each`);
    await load(gw, "reactor.hello.localhost", 4, 1); // warm-up: JIT, instances
    await load(gw, "wagi.hello.localhost", 4, 1);
    await load(plainUrl, "x", 4, 1);
    const nodeHttp = await load(plainUrl, "x", conns, seconds);
    ctx.log(`plain node http: ${nodeHttp.rps.toFixed(0)} req/s`);
    const wagi = await load(gw, "wagi.hello.localhost", conns, seconds);
    ctx.log(`WAGI hello: ${wagi.rps.toFixed(0)} req/s`);
    const reactor = await load(gw, "reactor.hello.localhost", conns, seconds);
    ctx.log(`reactor hello: ${reactor.rps.toFixed(0)} req/s`);

    const helloRows: BenchRow[] = [];
    for (const [name, r, goal] of [
      ["reactor hello (warm instance)", reactor, 0.7],
      ["WAGI hello (instance per request)", wagi, 0.4],
    ] as const) {
      const ratio = r.rps / nodeHttp.rps;
      helloRows.push({ name, metric: "throughput", unit: "req/s", ours: r.rps, baselines: { "node http": nodeHttp.rps }, better: "higher", ratio, goal: `>= ${goal.toFixed(2)}x`, pass: ratio >= goal });
      helloRows.push({ name, metric: "p50", unit: "ms", ours: r.p50, baselines: { "node http": nodeHttp.p50 }, ratio: nodeHttp.p50 / r.p50 });
      helloRows.push({ name, metric: "p99", unit: "ms", ours: r.p99, baselines: { "node http": nodeHttp.p99 }, ratio: nodeHttp.p99 / r.p99 });
    }

    // (b) fairness
    const aAlone = await load(gw, "light.a.localhost", 2, seconds);
    ctx.log(`tenant A alone: p99 ${aAlone.p99} ms`);
    const flood = load(`${gw}cpu?5`, "heavy.b.localhost", 8, seconds + 2);
    await new Promise((r) => setTimeout(r, 1000));
    const aFlood = await load(gw, "light.a.localhost", 2, seconds);
    const b = await flood;
    ctx.log(`tenant A under B's flood: p99 ${aFlood.p99} ms (B: ${b.rps.toFixed(0)} req/s)`);
    const fairRatio = aAlone.p99 / aFlood.p99;
    const fairRows: BenchRow[] = [
      { name: "tenant A (WAGI hello) under B's CPU flood", metric: "p99", unit: "ms", ours: aFlood.p99, baselines: { "A alone": aAlone.p99 }, ratio: fairRatio, goal: ">= 0.50x (within 2x)", pass: fairRatio >= 0.5 },
      { name: "tenant A (WAGI hello) under B's CPU flood", metric: "p50", unit: "ms", ours: aFlood.p50, baselines: { "A alone": aAlone.p50 }, ratio: aAlone.p50 / aFlood.p50 },
      { name: "tenant A (WAGI hello) under B's CPU flood", metric: "throughput", unit: "req/s", ours: aFlood.rps, baselines: { "A alone": aAlone.rps }, better: "higher", ratio: aFlood.rps / aAlone.rps },
      { name: "tenant B flood (/cpu?5, 8 connections)", metric: "throughput", unit: "req/s", ours: b.rps, baselines: {}, better: "higher" },
    ];
    const errors = nodeHttp.errors + wagi.errors + reactor.errors + aAlone.errors + aFlood.errors;
    return [
      {
        title: "node gateway: hello req/s and latency vs plain Node http",
        rows: helloRows,
        notes: [
          `${HAVE_WRK ? "wrk -t1" : "autocannon (child process)"} -c ${conns}, ${seconds}s per case, 127.0.0.1, keep-alive; ${executors} executors (worker threads), machine: ${availableParallelism()} CPUs shared by the load generator, the node's main thread and the executors.`,
          "WAGI: a fresh instance of a C module per request (compiled-module cache); reactor: uniwasm_http_handle on a warm C instance. Both cross to a worker thread and back; the plain server answers on its own thread.",
          `non-2xx or socket errors across these runs: ${errors}`,
        ],
      },
      {
        title: "node fairness: tenant A's latency while tenant B floods with CPU-bound requests",
        rows: fairRows,
        notes: [
          "B's requests each run ~5 M xorshift rounds in C; the deficit-round-robin scheduler charges each tenant its measured executor time and keeps the last free executor for other active tenants.",
          "A's reactor apps would be pinned to the executor that created them (sandbox ExecutorPool); A uses a WAGI app here so that any free executor can serve it.",
        ],
      },
    ];
  } finally {
    await node.close();
    await new Promise<void>((r) => plain.close(() => r()));
    rmSync(dataDir, { recursive: true, force: true });
  }
}
