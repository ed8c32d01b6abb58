/**
 * On a node, the serving thread's work for a tenant's KV writes (SQLite, on
 * the thread that also serves every other tenant) is charged to that tenant:
 * its usage shows more CPU time than its guests spent on executors.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { call, deploy, gw, tenant, testNode } from "./helpers.js";
import type { CommandRequest, RunOutcome } from "../../src/manager/runner.js";

type Node = Awaited<ReturnType<typeof testNode>>;

let node: Node;
/** Executor time of every run, as the runner reported it to the manager. */
let executorMs = 0;

before(async () => {
  node = await testNode({ executors: 1 });
  const runner = node.manager.runner;
  const runCommand = runner.runCommand.bind(runner);
  runner.runCommand = async (req: CommandRequest): Promise<RunOutcome> => {
    const outcome = await runCommand(req);
    executorMs += outcome.durationMs;
    return outcome;
  };
});

after(async () => {
  await node.close();
});

test("a tenant whose guest makes many KV writes has their serving-thread time in its cpuMsLastMinute, beyond its executor time", async (ctx) => {
  const t = await tenant(node, "writer", { kvMaxTotalBytes: 16 << 20 });
  const r = await deploy(node, t, "filler", "ext/kv.wasm", { extensions: { grants: ["uniwasm:kv"] } });
  assert.ok(r.status === 200 || r.status === 201, `deploy: ${r.status} ${r.text}`);
  // Preparing the module was charged too: only what the requests add is compared.
  const before = (await call(node.apiUrl, "GET", "/v1/tenants/writer/usage", t.token)).json.live.cpuMsLastMinute as number;
  executorMs = 0;
  const writes = 1500;
  for (let i = 0; i < 2; i++) {
    const out = await gw(node, "writer", "filler", `/?fill&${writes}&256`);
    assert.equal(out.status, 200, out.text);
    assert.equal(out.text, `fill: ${writes} written, errno 0\n`);
  }
  const usage = await call(node.apiUrl, "GET", "/v1/tenants/writer/usage", t.token);
  assert.equal(usage.status, 200, usage.text);
  const cpu = (usage.json.live.cpuMsLastMinute as number) - before;
  // Each write is a SQLite transaction and a message on the serving thread: tens of microseconds (about 70 measured).
  const floor = 2 * writes * 0.02;
  ctx.diagnostic(`cpuMsLastMinute grew ${cpu.toFixed(1)}, executor time ${executorMs.toFixed(1)} ms`);
  assert.ok(executorMs > 0, "the runs were seen");
  assert.ok(cpu >= executorMs + floor, `cpuMsLastMinute grew ${cpu.toFixed(1)} should exceed the executor time ${executorMs.toFixed(1)} ms by the provider time (at least ${floor} ms)`);
  // The extra is what the providers took, not a second count of the executor time.
  assert.ok(cpu < 2 * executorMs, `cpuMsLastMinute grew ${cpu.toFixed(1)} counts more than the executor time twice (${executorMs.toFixed(1)} ms)`);
  // The day's usage and the metric get it within a second or so (the manager reports it once a second).
  let charged = 0;
  for (let i = 0; i < 40 && charged * 1000 < floor; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const metrics = await call(node.apiUrl, "GET", "/metrics", node.admin);
    charged = Number(/^uniwasm_serving_thread_seconds_total\{tenant="writer"\} ([0-9.e-]+)$/m.exec(metrics.text)?.[1] ?? 0);
  }
  assert.ok(charged * 1000 >= floor, `uniwasm_serving_thread_seconds_total{tenant="writer"} is ${charged} s, expected the provider time (at least ${floor} ms)`);
});
