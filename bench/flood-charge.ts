/**
 * How much of an output flood's serving-thread cost is charged to its tenant:
 * a node runs the SaaS example's hostile guest, curl (a process of its own)
 * asks /output N times (16 MiB each, then the response is cut), and the
 * script compares the node's main-thread CPU time (/proc, 10 ms ticks) with
 * uniwasm_serving_thread_seconds_total{tenant} (the timed provider calls and
 * output sinks, docs/node.md "Serving-thread time").
 *
 *   npm run build && node dist/bench/flood-charge.js [N]
 *
 * Linux only (/proc/self/task). The gap is what the timing does not see:
 * taking each piece from the executor's output ring, socket writes libuv
 * finishes later (most of them in the kernel). Pacing counts it with a cost
 * per byte measured here (manager/pacing.ts, RELAY_MS_PER_BYTE).
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { call, tenant, testNode } from "../test/server/helpers.js";

const run = promisify(execFile);
const N = Number(process.argv[2] ?? 8);

// Inline placement off: this guest (no grants, 16 MiB in under 10M instructions) would run on the
// serving thread itself, where its whole run is charged as run time; here it is relayed from an executor.
const node = await testNode({ executors: 2, inlineFuel: 0 });
try {
  const t = await tenant(node, "mallory");
  const wasm = readFileSync("examples/multi-tenant-saas/mallory/hostile.wasm");
  const up = await call(node.apiUrl, "POST", "/v1/tenants/mallory/images?name=plugin", t.token, wasm, { "content-type": "application/wasm" });
  const d = await call(node.apiUrl, "PUT", "/v1/tenants/mallory/apps/plugin", t.token, { image: up.json.digest, limits: { timeoutMs: 5000, stdoutBytes: 16 * 1024 * 1024 } });
  if (d.status > 201) throw new Error(`deploy: ${d.status} ${d.text}`);

  /** The main thread's CPU time, ms (utime + stime of the task whose id is the pid). */
  const mainThreadMs = (): number => {
    const f = readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(f[11]) + Number(f[12])) * 10;
  };
  const charged = async (): Promise<number> => {
    const m = await call(node.apiUrl, "GET", "/metrics", node.admin);
    return Number(/^uniwasm_serving_thread_seconds_total\{tenant="mallory"\} (\S+)$/m.exec(m.text)?.[1] ?? 0) * 1000;
  };
  // One shell runs the n curls (a spawn per flood would cost this thread ~18 ms each); curl exits
  // non-zero: the node resets the connection when the guest goes over its output limit.
  const floods = (n: number) => run("sh", ["-c", `for i in $(seq ${n}); do curl -s -o /dev/null -H 'host: plugin.mallory.localhost' '${node.gatewayUrl}/output'; done; true`]);
  const settle = () => new Promise((r) => setTimeout(r, 1300)); // the manager reports charged time once a second

  await floods(1); // warm: the module compiled, the first instance
  await settle();
  const charged0 = await charged();
  const cpu0 = mainThreadMs();
  const started = performance.now();
  await floods(N);
  const wall = performance.now() - started;
  const cpu = mainThreadMs() - cpu0;
  await settle();
  const chargedMs = (await charged()) - charged0;
  console.log(`${N} output floods of 16 MiB: wall ${wall.toFixed(0)} ms; node main-thread CPU ${cpu} ms (${(cpu / N).toFixed(1)} per flood); charged to mallory as serving-thread time ${chargedMs.toFixed(1)} ms (${(chargedMs / N).toFixed(1)} per flood, ${((100 * chargedMs) / Math.max(cpu, 1)).toFixed(0)}%)`);
} finally {
  await node.close();
}
