/**
 * A serving thread (worker entry; the main thread's side is
 * serving-threads.ts). It accepts gateway connections on the node's listening
 * socket beside the main thread and answers them with its own Gateway:
 *
 * - apps the node placed inline run here, on this thread's own inline engine,
 *   admitted against the node's shared tenant meters (rate, CPU), so a
 *   tenant's quotas hold across every thread;
 * - everything else (apps on executors, and an inline request that used the
 *   node's budget) is sent to the main thread, whose manager runs it with
 *   the node's executors, fair scheduler and memory budget;
 * - what happened (requests, runs, refusals, log lines) goes back to the main
 *   thread in batches, for metrics, usage and logs.
 */
import { parentPort, workerData } from "node:worker_threads";
import { Gateway, type RequestFinished } from "./gateway.js";
import { ConnectionGuard, type ConnectionLimits } from "./connections.js";
import { EngineRunner } from "../manager/executor-pool-runner.js";
import { HeldOutput, type Invocation, type InvokeResult } from "../manager/manager.js";
import { CpuWindow, SharedTenantMeters, TokenBucket } from "../manager/rate.js";
import { Refusal, type RefusalCode } from "../manager/refusal.js";
import type { ReactorHandle, RunOutcome } from "../manager/runner.js";
import { encodeReactorRequest } from "../sandbox/reactor-abi.js";
import { InlineEngine } from "../sandbox/inline.js";
import type { AppRecord, TenantRecord, TenantQuotas } from "../store/types.js";
import type { FromServingThread, InlineApp, ServingEvent, ServingTable, ToServingThread } from "./serving-table.js";

export interface ServingThreadData {
  fd: number;
  port: number;
  inlineFuel: number;
  meters: { values: SharedArrayBuffer; locks: SharedArrayBuffer };
  connections?: ConnectionLimits;
  table: ServingTable;
}

interface TenantMeters {
  name: string;
  quotas: TenantQuotas;
  bucket: TokenBucket;
  cpu: CpuWindow;
}

const port = parentPort!;
const data = workerData as ServingThreadData;
const send = (m: FromServingThread): void => port.postMessage(m);

const meters = new SharedTenantMeters(undefined, data.meters);
const runner = new EngineRunner(new InlineEngine({ prepare: "worker", unguardedFuel: data.inlineFuel }), "inline", 1);

let apps = new Map<string, { app: AppRecord; tenant: TenantRecord }>();
let routes: ServingTable["routes"] = [];
let inline = new Map<string, InlineApp>();
const tenants = new Map<string, TenantMeters>();
const reactors = new Map<string, { revision: number; handle: Promise<ReactorHandle> }>();

function apply(table: ServingTable): void {
  routes = table.routes;
  apps = new Map(table.apps.map((a) => [a.app.id, a]));
  inline = new Map(table.inline.map((i) => [i.appId, i]));
  for (const t of table.tenants) {
    const cur = tenants.get(t.id);
    const burst = Math.max(1, t.quotas.requestsPerSecond);
    if (cur) {
      cur.quotas = t.quotas;
      cur.bucket.rate = t.quotas.requestsPerSecond;
      cur.bucket.burst = burst;
    } else {
      tenants.set(t.id, { name: t.name, quotas: t.quotas, bucket: new TokenBucket(t.quotas.requestsPerSecond, burst, Date.now(), meters.bucketCell(t.slot)), cpu: new CpuWindow(meters.cpuCell(t.slot)) });
    }
  }
  // A reactor of a revision that is gone (or no longer inline here) stops.
  for (const [appId, r] of reactors) {
    if (inline.get(appId)?.revision === r.revision) continue;
    reactors.delete(appId);
    void r.handle.then((h) => h.close()).catch(() => undefined);
  }
  gateway?.reload();
}

// ---- events back to the main thread, batched ----
let pending: ServingEvent[] = [];
let flushTimer: NodeJS.Timeout | undefined;
function emit(e: ServingEvent): void {
  pending.push(e);
  flushTimer ??= setTimeout(() => {
    flushTimer = undefined;
    const events = pending;
    pending = [];
    send({ type: "events", events });
  }, 20);
}

// ---- requests the main thread runs ----
let nextCall = 0;
const calls = new Map<number, { inv: Invocation; resolve: (r: InvokeResult) => void; reject: (e: unknown) => void }>();
function onMain(appId: string, inv: Invocation, moved?: string): Promise<InvokeResult> {
  const id = ++nextCall;
  return new Promise((resolve, reject) => {
    calls.set(id, { inv, resolve, reject });
    send({ type: "invoke", id, appId, env: inv.env, args: inv.args, body: inv.body, ...(moved ? { moved } : {}) });
  });
}

function refuse(t: TenantMeters, tenantId: string, appId: string, r: Refusal): never {
  emit({ k: "refused", tenantId, appId, code: r.code });
  throw r;
}

async function runInline(row: InlineApp, tenantId: string, inv: Invocation): Promise<InvokeResult> {
  const t = tenants.get(tenantId);
  if (!t) throw new Refusal("app_unavailable", `tenant of app ${row.appId} is gone`);
  // The same admission as the manager's, on the shared meters.
  const wait = t.bucket.take();
  if (wait > 0) refuse(t, tenantId, row.appId, new Refusal("tenant_rate_limited", `tenant ${t.name} is over ${t.quotas.requestsPerSecond} requests/s`, Math.ceil(wait)));
  if (t.cpu.used() >= t.quotas.cpuMsPerMinute) refuse(t, tenantId, row.appId, new Refusal("tenant_cpu_exhausted", `tenant ${t.name} used its ${t.quotas.cpuMsPerMinute} ms of CPU time for this minute`, t.cpu.retryAfter(t.quotas.cpuMsPerMinute)));
  if (t.quotas.maxQueue <= 0 || t.quotas.maxConcurrency <= 0) refuse(t, tenantId, row.appId, new Refusal("tenant_overloaded", `tenant ${t.name} may not run requests now (quota maxQueue ${t.quotas.maxQueue}, maxConcurrency ${t.quotas.maxConcurrency})`, 1));
  const held = new HeldOutput();
  let outcome: RunOutcome;
  let start: "cold" | "warm" = "cold";
  if (row.abi === "reactor") {
    let r = reactors.get(row.appId);
    if (r) start = "warm";
    else {
      r = { revision: row.revision, handle: runner.startReactor({ ...row.grants, placement: "inline", module: row.module, args: row.args, env: row.env, limits: row.limits }) };
      reactors.set(row.appId, r);
    }
    let handle: ReactorHandle;
    try {
      handle = await r.handle;
    } catch (err) {
      reactors.delete(row.appId);
      throw err;
    }
    outcome = await handle.handle(encodeReactorRequest(inv.env, inv.body), held, row.limits);
    if (outcome.reason !== "exit") {
      // Broken (a trap, a limit): a fresh instance next time.
      if (reactors.get(row.appId) === r) reactors.delete(row.appId);
      void handle.close().catch(() => undefined);
    }
  } else {
    outcome = await runner.runCommand({ ...row.grants, placement: "inline", module: row.module, args: inv.args, env: inv.env, stdin: inv.body, limits: row.limits, onStdout: held.onStdout, onStderr: held.onStderr });
  }
  if (outcome.reason === "fuel_exhausted" && !row.placement.ownFuel) {
    // Past the node's budget: the app moves to executors and the main thread runs this request there.
    inline.delete(row.appId);
    return onMain(row.appId, inv, `a request used the inline fuel budget (${row.placement.fuel} instructions)`);
  }
  t.cpu.add(outcome.durationMs);
  held.sendTo(inv.sinks);
  emit({ k: "ran", appId: row.appId, kind: row.abi === "reactor" ? "reactor" : "command", start, outcome });
  return { ...outcome, deadlineMs: row.limits.timeoutMs, loaned: false };
}

const manager = {
  async invoke(appId: string, inv: Invocation): Promise<InvokeResult> {
    const row = inline.get(appId);
    const rec = apps.get(appId);
    if (row && rec && !inv.chain?.length) return runInline(row, rec.tenant.id, inv);
    return onMain(appId, inv);
  },
  deployment: () => undefined,
};

const guard = data.connections ? new ConnectionGuard("gateway", data.connections, () => undefined, (e) => emit({ k: "warn", message: `gateway (serving thread): shed ${e.count} connection(s) at the ${e.reason} cap of ${e.limit}` })) : undefined;
let gateway: Gateway | undefined;
apply(data.table);
gateway = new Gateway({
  store: {
    apps: { routes: () => routes, get: (id: string) => apps.get(id)?.app },
    tenants: { find: (id: string) => [...apps.values()].find((a) => a.tenant.id === id)?.tenant },
  },
  manager,
  ...(guard ? { connections: guard } : {}),
  hooks: {
    finished: (e: RequestFinished) => {
      const { tenant, app, ...rest } = e;
      emit({ k: "request", tenantId: tenant.id, appId: app.id, e: rest });
    },
    stderr: (appId, chunk) => emit({ k: "stderr", appId, chunk }),
    event: (appId, line) => emit({ k: "event", appId, line }),
    log: { warn: (obj, msg) => emit({ k: "warn", message: `${msg}: ${JSON.stringify(obj)}` }) },
  },
});

port.on("message", (m: ToServingThread) => {
  switch (m.type) {
    case "table":
      apply(m.table);
      send({ type: "applied", version: m.table.version });
      return;
    case "reply": {
      const c = calls.get(m.id);
      if (!c) return;
      calls.delete(m.id);
      if (m.refusal) return c.reject(new Refusal(m.refusal.code as RefusalCode, m.refusal.message, m.refusal.retryAfter));
      if (m.error !== undefined) return c.reject(new Error(m.error));
      for (const o of m.output) (o.stream === "stdout" ? c.inv.sinks.onStdout : c.inv.sinks.onStderr)(o.chunk);
      c.resolve(m.result!);
      return;
    }
    case "close":
      void (async () => {
        // The listening descriptor is the main thread's: closing it here would close its number twice (by
        // then maybe another file's). This thread stops taking connections and keeps the handle until the
        // process exits (the main thread unrefs it).
        gateway!.server.prependListener("connection", (socket) => socket.destroy());
        await gateway!.drain();
        guard?.close();
        for (const r of reactors.values()) await r.handle.then((h) => h.close()).catch(() => undefined);
        await runner.close();
        if (flushTimer) clearTimeout(flushTimer);
        if (pending.length > 0) send({ type: "events", events: pending });
        send({ type: "closed" });
        port.close();
      })();
      return;
  }
});

await gateway.listenOnHandle(data.fd, data.port);
send({ type: "ready" });
