/**
 * The cluster (issue 14, "Benchmark"): three `uniwasm serve --cluster`
 * processes and a nats-server on this machine.
 *
 *   (a) gateway req/s and latency for a reactor hello through the node that
 *       runs the replica (local) and through a node that forwards every
 *       request over NATS (forwarded), wrk rounds interleaved in one run;
 *   (b) deploy-to-ready: PUT of an app with replicas "all" until the third
 *       node reports its replica ready (the API answers then);
 *   (c) failover: kill -9 of the node running an app's only replica, while a
 *       probe asks through another node every 20 ms, until the app answers
 *       again (re-placed on a live node).
 *
 * Uses the tests' nats-server launcher and node spawner (test/cluster).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { BenchContext, BenchRow, BenchSection } from "./types.js";
import { HAVE_WRK, cpuOf, wrk, type Load } from "./load.js";
import { startNats, SKIP_NO_NATS } from "../test/cluster/nats.js";
import { startClusterNode, http, waitUntil, type ClusterNode } from "../test/cluster/helpers.js";

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function run(ctx: BenchContext): Promise<BenchSection[]> {
  if (SKIP_NO_NATS) return [{ title: "cluster", rows: [], notes: [`skipped: ${SKIP_NO_NATS}`] }];
  const nats = await startNats();
  let nodes: ClusterNode[] = [];
  try {
    const n1 = await startClusterNode(nats, "n1", { extraArgs: ["--log-level", "warn"] });
    nodes = [n1, ...(await Promise.all([startClusterNode(nats, "n2", { extraArgs: ["--log-level", "warn"] }), startClusterNode(nats, "n3", { extraArgs: ["--log-level", "warn"] })]))];
    const admin = n1.bootstrap!;
    const t = await http(n1.apiUrl, "POST", "/v1/tenants", { token: admin, body: { name: "bench", quotas: { requestsPerSecond: 1_000_000, maxConcurrency: 64, maxQueue: 4096 } } });
    const token = t.json.token.secret as string;
    const reactor = readFileSync(join(ctx.root, "test", "fixtures", "reactor", "hello.wasm"));
    const up = await http(n1.apiUrl, "POST", "/v1/tenants/bench/images?name=hello&abi=reactor", { token, body: reactor, headers: { "content-type": "application/wasm" } });
    if (up.status !== 201) throw new Error(`upload: ${up.status} ${up.text}`);
    const deploy = (app: string, body: Record<string, unknown>) => http(n1.apiUrl, "PUT", `/v1/tenants/bench/apps/${app}`, { token, body: { image: "hello", abi: "reactor", ...body } });
    const view = async (app: string) => (await http(n1.apiUrl, "GET", `/v1/tenants/bench/apps/${app}`, { token })).json;
    const readyOn = async (app: string): Promise<string[]> => {
      const v = await view(app);
      return v.replicas.filter((r: { state: string; revision: number }) => r.state === "ready" && r.revision === v.revision).map((r: { node: string }) => r.node);
    };
    const sections: BenchSection[] = [];

    // (a) forwarded vs local
    if (HAVE_WRK) {
      const d = await deploy("fwd", { scale: { minInstances: 1, maxInstances: 4, idleTimeoutMs: 600_000 } });
      if (d.status !== 201) throw new Error(`deploy: ${d.status} ${d.text}`);
      const host = (await readyOn("fwd"))[0]!;
      const local = nodes.find((n) => n.name === host)!;
      const away = nodes.find((n) => n.name !== host)!;
      const rounds = ctx.quick ? 1 : 3;
      const seconds = ctx.quick ? 3 : 5;
      const runs: Record<"local" | "forwarded", Load[]> = { local: [], forwarded: [] };
      const cpu: Record<"local" | "forwarded", number[]> = { local: [], forwarded: [] };
      const cases = [
        { key: "local" as const, node: local, pids: [local.proc.pid!] },
        // Forwarded: the entry node, the serving node and nats-server all work for each request.
        { key: "forwarded" as const, node: away, pids: [away.proc.pid!, local.proc.pid!, nats.pid] },
      ];
      const cpuNow = (pids: number[]) => pids.reduce((n, p) => n + cpuOf(p).all, 0);
      for (const c of cases) await wrk(c.node.gatewayUrl + "/", "fwd.bench.localhost", 4, 1, c.node.proc.pid!);
      for (let r = 0; r < rounds; r++) {
        for (const c of r % 2 === 0 ? cases : [...cases].reverse()) {
          const before = cpuNow(c.pids);
          const l = await wrk(c.node.gatewayUrl + "/", "fwd.bench.localhost", 16, seconds, c.node.proc.pid!);
          const us = (cpuNow(c.pids) - before) / Math.max(1, l.requests);
          runs[c.key].push(l);
          cpu[c.key].push(us);
          ctx.log(`round ${r + 1}: ${c.key} via ${c.node.name}: ${l.rps.toFixed(0)} req/s, p50 ${l.p50} ms, p99 ${l.p99} ms, ${us.toFixed(0)} µs CPU/request (cluster processes), errors ${l.errors}`);
        }
      }
      const pick = (ls: Load[]) => [...ls].sort((a, b) => a.rps - b.rps)[Math.floor(ls.length / 2)]!;
      const loc = pick(runs.local);
      const fwd = pick(runs.forwarded);
      const rows: BenchRow[] = [
        { name: "reactor hello through a node that forwards every request", metric: "throughput", unit: "req/s", ours: fwd.rps, baselines: { "served locally": loc.rps }, better: "higher", ratio: fwd.rps / loc.rps },
        { name: "reactor hello through a node that forwards every request", metric: "p50", unit: "ms", ours: fwd.p50, baselines: { "served locally": loc.p50 }, ratio: loc.p50 / fwd.p50 },
        { name: "reactor hello through a node that forwards every request", metric: "p99", unit: "ms", ours: fwd.p99, baselines: { "served locally": loc.p99 }, ratio: loc.p99 / fwd.p99 },
        { name: "reactor hello through a node that forwards every request", metric: "CPU/request (nodes + nats-server)", unit: "µs", ours: median(cpu.forwarded), baselines: { "served locally": median(cpu.local) }, ratio: median(cpu.local) / median(cpu.forwarded) },
      ];
      sections.push({
        title: "cluster: gateway req/s, forwarded over NATS vs served locally",
        rows,
        notes: [
          `3 nodes (1 executor each) and nats-server on this machine, all unpinned; wrk -t1 -c16 keep-alive for ${seconds}s, ${rounds} interleaved round(s), the median round shown; errors: local ${runs.local.reduce((n, l) => n + l.errors, 0)}, forwarded ${runs.forwarded.reduce((n, l) => n + l.errors, 0)}.`,
          "A forwarded request crosses: entry gateway -> NATS request (queue group of the app) -> serving node -> its gateway over a Unix socket -> reply chunks -> entry gateway. On one 2-core machine both nodes, nats-server and wrk share the cores, so the forwarded case pays for two nodes' CPU.",
        ],
      });
    } else ctx.log("forwarded vs local skipped: wrk is not installed");

    // (b) deploy-to-ready across 3 nodes
    const deployRounds = ctx.quick ? 2 : 5;
    const deployMs: number[] = [];
    for (let i = 0; i < deployRounds; i++) {
      const started = performance.now();
      const d = await deploy(`all-${i}`, { replicas: "all" });
      if (d.status !== 201) throw new Error(`deploy all: ${d.status} ${d.text}`);
      await waitUntil("3 ready replicas", async () => (await readyOn(`all-${i}`)).length === 3, 60_000, 5);
      deployMs.push(performance.now() - started);
      ctx.log(`deploy ${i + 1}: ready on 3 nodes in ${deployMs.at(-1)!.toFixed(0)} ms`);
    }

    // (c) failover: death to answering elsewhere
    const failRounds = ctx.quick ? 1 : 3;
    const failMs: number[] = [];
    const lostMs: number[] = [];
    for (let i = 0; i < failRounds; i++) {
      const app = `solo-${i}`;
      const d = await deploy(app, {});
      if (d.status !== 201) throw new Error(`deploy solo: ${d.status} ${d.text}`);
      const host = (await readyOn(app))[0]!;
      const victim = nodes.find((n) => n.name === host)!;
      const probe = nodes.find((n) => n.name !== host)!;
      const killedAt = performance.now();
      await victim.kill();
      let firstFail = NaN;
      await waitUntil(
        "answered again",
        async () => {
          const r = await http(probe.gatewayUrl, "GET", "/", { host: `${app}.bench.localhost`, timeoutMs: 10_000 }).catch(() => ({ status: 0 }));
          if (r.status !== 200 && Number.isNaN(firstFail)) firstFail = performance.now() - killedAt;
          return r.status === 200 && !Number.isNaN(firstFail);
        },
        60_000,
        20,
      );
      failMs.push(performance.now() - killedAt);
      lostMs.push(firstFail);
      ctx.log(`failover ${i + 1}: ${host} killed; ${app} answered again through ${probe.name} after ${failMs.at(-1)!.toFixed(0)} ms`);
      const back = await startClusterNode(nats, host, { dataDir: victim.dataDir, extraArgs: ["--log-level", "warn"] });
      nodes = nodes.map((n) => (n.name === host ? back : n));
      await waitUntil("the node is live again", async () => (await http(back.apiUrl, "GET", "/v1/cluster", { token: admin })).json.members.filter((m: { live: boolean }) => m.live).length === 3, 30_000);
    }
    sections.push({
      title: "cluster: deploy-to-ready and failover (3 nodes)",
      rows: [
        { name: 'deploy with replicas "all": PUT until ready on 3 nodes', metric: "median", unit: "ms", ours: median(deployMs), baselines: {} },
        { name: 'deploy with replicas "all": PUT until ready on 3 nodes', metric: "max", unit: "ms", ours: Math.max(...deployMs), baselines: {} },
        { name: "kill -9 of the only replica's node until it answers elsewhere", metric: "median", unit: "ms", ours: median(failMs), baselines: {}, goal: "< 10 s", pass: median(failMs) < 10_000 },
        { name: "kill -9 of the only replica's node until it answers elsewhere", metric: "max", unit: "ms", ours: Math.max(...failMs), baselines: {} },
      ],
      notes: [
        `reactor hello (warm instance started before a replica reports ready). Deploy: ${deployRounds} apps, each PUT through node n1 with replicas "all" and timed until the third replica reports ready; the PUT itself returns once every replica has reported.`,
        `Failover: ${failRounds} round(s); a probe asks through another node every 20 ms from the kill until it gets 200. It is bounded by the heartbeat timeout (a node is dead after 4 heartbeats of 1 s), then placement, blob fetch and the replica's start. First failed probe after the kill: ${lostMs.map((x) => x.toFixed(0)).join(", ")} ms.`,
      ],
    });
    return sections;
  } finally {
    await Promise.all(nodes.map((n) => n.stop().catch(() => undefined)));
    await nats.stop();
  }
}
