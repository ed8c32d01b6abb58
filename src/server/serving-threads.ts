/**
 * The multi-core gateway (`serve --serving-threads N`): N-1 worker threads
 * (serving-thread.ts) accept gateway connections on the main thread's
 * listening socket beside it (Node 20 lets a worker listen on a descriptor
 * the main thread opened; the kernel spreads connections across them).
 *
 * What stays one, on the main thread: the control plane (API, store,
 * deployer), the manager (fair scheduler, executors, memory budget, warm
 * pools of apps on executors), metrics, usage and logs. What each serving
 * thread has of its own: an HTTP server, a Gateway, and an inline engine for
 * the apps the manager placed inline. What they share: the tenant meters
 * (rate, CPU) in a SharedArrayBuffer (manager/rate.ts), so a tenant's
 * quotas hold across every thread. A serving thread sends the requests it
 * does not run itself to the main thread, and its events back in batches.
 *
 * The routing and placement table is sent whole on every change; an API
 * call that changes it answers only once every thread has applied it, so a
 * deploy that returned is served by every thread.
 */
import { Worker } from "node:worker_threads";
import type { NodeStore } from "../store/index.js";
import type { ResourceManager, RunOutcome } from "../manager/index.js";
import { Refusal } from "../manager/index.js";
import type { SharedTenantMeters } from "../manager/rate.js";
import type { ConnectionLimits } from "./connections.js";
import type { RequestFinished } from "./gateway.js";
import type { FromServingThread, InlineApp, ServingEvent, ServingTable, ToServingThread } from "./serving-table.js";
import type { ServingThreadData } from "./serving-thread.js";

export interface ServingThreadsOptions {
  /** Serving threads beside the main thread. */
  count: number;
  /** The gateway's listening descriptor and port. */
  fd: number;
  port: number;
  store: NodeStore;
  manager: ResourceManager;
  meters: SharedTenantMeters;
  inlineFuel: number;
  connections?: ConnectionLimits;
  /** The main gateway's hooks: a serving thread's requests are reported through them. */
  finished(e: RequestFinished): void;
  stderr(appId: string, chunk: Uint8Array): void;
  event(appId: string, line: string): void;
  warn(message: string): void;
}

interface Thread {
  worker: Worker;
  applied: number;
  /** Requests this thread answered. */
  requests: number;
  closed?: () => void;
}

export class ServingThreads {
  private readonly threads: Thread[] = [];
  private version = 0;
  private readonly waiters: { version: number; resolve: () => void }[] = [];
  private closing = false;
  /** The records of the routed apps as last published: a thread's request reports are resolved here, not in SQLite. */
  private records = new Map<string, ServingTable["apps"][number]>();

  constructor(private readonly opts: ServingThreadsOptions) {}

  /** Starts the threads; resolves once every one accepts connections. */
  async start(): Promise<void> {
    const table = this.table();
    await Promise.all(
      Array.from({ length: this.opts.count }, () => {
        const data: ServingThreadData = { fd: this.opts.fd, port: this.opts.port, inlineFuel: this.opts.inlineFuel, meters: this.opts.meters.buffers, table, ...(this.opts.connections ? { connections: this.opts.connections } : {}) };
        const worker = new Worker(new URL("./serving-thread.js", import.meta.url), { workerData: data });
        const t: Thread = { worker, applied: table.version, requests: 0 };
        this.threads.push(t);
        return new Promise<void>((resolve, reject) => {
          worker.once("error", reject);
          worker.on("message", (m: FromServingThread) => {
            if (m.type === "ready") resolve();
            else this.onMessage(t, m);
          });
        });
      }),
    );
    for (const t of this.threads) t.worker.on("error", (err) => this.opts.warn(`serving thread failed: ${err.message}`));
  }

  /** Requests answered by each serving thread (the main thread's are not counted here). */
  requests(): number[] {
    return this.threads.map((t) => t.requests);
  }

  /** Sends the current table to every thread; resolves when all have applied it (or after 2 s). */
  publish(): Promise<void> {
    if (this.closing || this.threads.length === 0) return Promise.resolve();
    const table = this.table();
    for (const t of this.threads) t.worker.postMessage({ type: "table", table } satisfies ToServingThread);
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000);
      this.waiters.push({
        version: table.version,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  private table(): ServingTable {
    const { store, manager, meters } = this.opts;
    const routes = store.apps.routes();
    const apps: ServingTable["apps"] = [];
    const inline: InlineApp[] = [];
    for (const appId of new Set(routes.map((r) => r.appId))) {
      const app = store.apps.get(appId);
      const tenant = app && store.tenants.find(app.tenantId);
      if (!app || !tenant) continue;
      apps.push({ app, tenant });
      const d = manager.deployment(appId);
      if (!d || !d.inline || d.draining || (d.abi !== "wagi" && d.abi !== "reactor")) continue;
      const grants: InlineApp["grants"] = {};
      if (d.grants.preopens) grants.preopens = d.grants.preopens;
      if (d.grants.capabilities) grants.capabilities = d.grants.capabilities;
      inline.push({ appId, revision: d.app.revision, abi: d.abi, module: d.module, grants, limits: d.inlineLimits, placement: d.placement, args: d.app.config.args, env: d.app.config.env });
    }
    const tenants = store.tenants.list().map((t) => ({ id: t.id, name: t.name, slot: meters.slotOf(t.id), quotas: manager.quotasOf(t.id) }));
    this.records = new Map(apps.map((a) => [a.app.id, a]));
    return { version: ++this.version, routes, apps, inline, tenants };
  }

  /** An app not in the last table (deleted since, say). */
  private lookup(appId: string): ServingTable["apps"][number] | undefined {
    const app = this.opts.store.apps.get(appId);
    const tenant = app && this.opts.store.tenants.find(app.tenantId);
    return app && tenant ? { app, tenant } : undefined;
  }

  private onMessage(t: Thread, m: FromServingThread): void {
    switch (m.type) {
      case "applied":
        t.applied = m.version;
        for (let i = this.waiters.length - 1; i >= 0; i--) {
          const w = this.waiters[i]!;
          if (this.threads.every((x) => x.applied >= w.version)) {
            this.waiters.splice(i, 1);
            w.resolve();
          }
        }
        return;
      case "invoke":
        void this.invoke(t, m);
        return;
      case "events":
        for (const e of m.events) this.onEvent(t, e);
        return;
      case "closed":
        t.closed?.();
        return;
    }
  }

  private async invoke(t: Thread, m: Extract<FromServingThread, { type: "invoke" }>): Promise<void> {
    const output: { stream: "stdout" | "stderr"; chunk: Uint8Array }[] = [];
    let reply: ToServingThread;
    try {
      if (m.moved) await this.opts.manager.moveAppToExecutors(m.appId, m.moved);
      const result = await this.opts.manager.invoke(m.appId, {
        env: m.env,
        args: m.args,
        body: m.body,
        sinks: { onStdout: (chunk) => void output.push({ stream: "stdout", chunk }), onStderr: (chunk) => void output.push({ stream: "stderr", chunk }) },
      });
      reply = { type: "reply", id: m.id, result, output };
    } catch (err) {
      reply =
        err instanceof Refusal
          ? { type: "reply", id: m.id, output, refusal: { code: err.code, message: err.message, retryAfter: err.retryAfter } }
          : { type: "reply", id: m.id, output, error: (err as Error).message };
    }
    t.worker.postMessage(reply);
  }

  private onEvent(t: Thread, e: ServingEvent): void {
    const { manager } = this.opts;
    switch (e.k) {
      case "request": {
        t.requests++;
        const rec = this.records.get(e.appId) ?? this.lookup(e.appId);
        if (rec) this.opts.finished({ ...e.e, app: rec.app, tenant: rec.tenant });
        return;
      }
      case "ran":
        void manager.recordServedElsewhere(e.appId, e.kind, e.start, e.outcome as RunOutcome);
        return;
      case "refused":
        manager.refusedElsewhere(e.tenantId, e.appId, e.code);
        return;
      case "stderr":
        this.opts.stderr(e.appId, e.chunk);
        return;
      case "event":
        this.opts.event(e.appId, e.line);
        return;
      case "warn":
        this.opts.warn(e.message);
        return;
    }
  }

  /**
   * Stops the threads taking connections and lets their requests finish.
   * The threads themselves stay (unref'd) until the process exits: they hold
   * the main thread's listening descriptor, which only the main thread closes.
   */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(
      this.threads.map(
        (t) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, 5000);
            t.closed = () => {
              clearTimeout(timer);
              resolve();
            };
            t.worker.postMessage({ type: "close" } satisfies ToServingThread);
          }),
      ),
    );
    for (const t of this.threads) t.worker.unref();
  }
}
