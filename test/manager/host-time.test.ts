/**
 * Serving-thread time is charged to the tenant it was spent for: extension
 * provider calls made by its guests (run by the pool's host-call handler on
 * the node's thread) and the relay of its guests' output to the gateway
 * count in its CPU window (cpuMsPerMinute) and its fair-scheduling debt,
 * beyond the executor time of its runs.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { ResourceManager, Refusal, type InstanceRunner, type CommandRequest, type RunOutcome } from "../../src/manager/index.js";
import type { OutputSinks, PrepareReport } from "../../src/manager/runner.js";
import { HostCallSessions } from "../../src/sandbox/host-calls.js";
import { appRecord as app } from "./helpers.js";

/** Keeps this thread busy for `ms` (what a SQLite write or a socket write does to the serving thread). */
function burn(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

/**
 * A runner that plays a guest on an executor: it makes env.CALLS provider
 * calls through the sandbox's real host-call table (as the pool does for a
 * parked guest), writes env.CHUNKS chunks of output, and reports env.COST ms
 * of executor time.
 */
class HostCallingRunner implements InstanceRunner {
  readonly name = "host-calling";
  readonly executors = 2;
  readonly sessions = new HostCallSessions();
  async prepare(): Promise<PrepareReport> {
    return { prepared: false, wallMs: 0 };
  }
  async runCommand(req: CommandRequest): Promise<RunOutcome> {
    const session = req.extensions ? this.sessions.open(req.extensions) : undefined;
    try {
      for (let i = 0; i < Number(req.env["CALLS"] ?? 0); i++) this.sessions.handler({ session: session!.session, ext: "uniwasm:kv", method: "set", args: [], tag: 0 });
      for (let i = 0; i < Number(req.env["CHUNKS"] ?? 0); i++) req.onStdout(new Uint8Array(16));
    } finally {
      this.sessions.close(session);
    }
    return { reason: "exit", exitCode: 0, durationMs: Number(req.env["COST"] ?? 0) };
  }
  async startReactor(): Promise<never> {
    throw new Error("not used");
  }
  async close(): Promise<void> {}
}


const PROVIDER_MS = 20;
const SINK_MS = 10;

/** A manager whose apps get a kv provider that takes PROVIDER_MS of this thread per call. */
async function managerWith(quotas: Record<string, Record<string, number>>): Promise<ResourceManager> {
  const m = new ResourceManager({
    runner: new HostCallingRunner(),
    extensions: () => ({ grants: ["uniwasm:kv"], providers: { "uniwasm:kv": { set: () => burn(PROVIDER_MS) } } }),
  });
  for (const [id, q] of Object.entries(quotas)) {
    m.setTenant({ id, name: id, weight: 1, quotas: q });
    await m.deploy(app(`${id}-app`, id), { digest: `sha256:${id}`, bytes: new Uint8Array() });
  }
  return m;
}

const quietSinks: OutputSinks = { onStdout: () => undefined, onStderr: () => undefined };
const run = (env: Record<string, string>, sinks = quietSinks) => ({ env, args: [], body: new Uint8Array(), sinks });

test("provider calls a tenant's guest makes count in its CPU time beyond its executor time, and not in another tenant's", async () => {
  const m = await managerWith({ busy: {}, quiet: {} });
  try {
    await m.invoke("busy-app", run({ CALLS: "6", COST: "1" }));
    await m.invoke("quiet-app", run({ COST: "1" }));
    const busy = m.tenantUsage("busy").cpuMsLastMinute;
    assert.ok(busy >= 1 + 6 * PROVIDER_MS, `busy: ${busy} ms, expected its 1 ms on the executor plus 6 × ${PROVIDER_MS} ms of provider calls`);
    // Counted once, not twice (a loaded machine stretches each burn a little, never by 6 × PROVIDER_MS in all).
    assert.ok(busy < 1 + 12 * PROVIDER_MS, `busy: ${busy} ms: its provider time was counted more than once`);
    assert.equal(m.tenantUsage("quiet").cpuMsLastMinute, 1);
  } finally {
    await m.close();
  }
});

test("a tenant whose provider work alone spends its CPU quota is refused with tenant_cpu_exhausted", async () => {
  const m = await managerWith({ kvflood: { cpuMsPerMinute: 30 } });
  try {
    // No executor time at all: only the serving thread's work for its provider calls.
    await m.invoke("kvflood-app", run({ CALLS: "8", COST: "0" }));
    await assert.rejects(m.invoke("kvflood-app", run({ COST: "0" })), (err: unknown) => err instanceof Refusal && err.code === "tenant_cpu_exhausted");
  } finally {
    await m.close();
  }
});

test("relaying a tenant's output to the gateway is charged to its CPU time and its scheduling debt", async () => {
  const m = await managerWith({ flood: {} });
  try {
    const slowSink = { onStdout: () => burn(SINK_MS), onStderr: () => undefined };
    await m.invoke("flood-app", run({ CHUNKS: "3", COST: "0" }, slowSink));
    const cpu = m.tenantUsage("flood").cpuMsLastMinute;
    assert.ok(cpu >= 3 * SINK_MS, `flood: ${cpu} ms, expected at least 3 × ${SINK_MS} ms of relaying`);
    // Its first (uncontended) request left it 1 ms of credit at most; the relay is debt on top of that.
    const deficit = m.scheduler.stats().tenants["flood"]!.deficit;
    assert.ok(deficit <= 1 - 3 * SINK_MS, `flood's scheduler deficit is ${deficit}, expected its relay time as debt`);
  } finally {
    await m.close();
  }
});
