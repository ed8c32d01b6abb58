/**
 * The replica agent, on every node: it makes this node run exactly the apps
 * the placements give it, at the revision its control state holds, and says
 * how each went (the replicas bucket). Once a replica is ready the node
 * answers the app's forwarded requests; when the placement moves away the
 * node stops answering, then stops the app (its in-flight requests finish).
 */
import type { KV } from "@nats-io/kv";
import type { AppRecord, ControlState } from "../store/index.js";
import { CoalescedPass } from "./coalesced.js";
import type { WatchedBucket } from "./kv.js";
import type { PlacementRecord, ReplicaStatus } from "./scheduler.js";

/** What the agent needs of the node it runs on. */
export interface LocalRuntime {
  /** Starts this revision of the app here (or rolls the running one over to it); throws when it cannot start. */
  start(app: AppRecord): Promise<void>;
  /** Stops the app here; in-flight requests finish first. */
  stop(appId: string): Promise<void>;
  /** The revision running here, if any. */
  running(appId: string): number | undefined;
  /** Apps running here. */
  runningApps(): string[];
}

/** Where forwarded requests for an app reach this node. */
export interface RequestSink {
  /** Resolves once the servers route the app's requests here. */
  serve(appId: string): Promise<void>;
  unserve(appId: string): void;
}

export interface AgentDeps {
  node: string;
  placements: WatchedBucket<PlacementRecord>;
  replicas: KV;
  state: ControlState;
  runtime: LocalRuntime;
  sink: RequestSink;
  /** Seconds before a revision that failed to start here is tried again. */
  retryFailedMs?: number;
  onEvent?: (appId: string, line: string) => void;
  onError?: (err: Error) => void;
}

export class ReplicaAgent {
  private stopped = false;
  private readonly passes = new CoalescedPass(() => this.reconcile(), () => !this.stopped, (err) => this.deps.onError?.(err));
  private readonly failed = new Map<string, { revision: number; at: number }>();
  private readonly served = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private offs: (() => void)[] = [];

  constructor(private readonly deps: AgentDeps) {}

  start(resyncMs: number): void {
    this.offs.push(this.deps.placements.onChange(() => this.poke()));
    this.offs.push(
      this.deps.state.onChange((c) => {
        if (c.command.op.startsWith("app.") || c.command.op === "tenant.delete" || c.command.op === "image.put") this.poke();
      }),
    );
    this.timer = setInterval(() => this.poke(), resyncMs);
    this.timer.unref();
    this.poke();
  }

  /** Apps the placements give this node. */
  assigned(): Set<string> {
    const out = new Set<string>();
    for (const e of this.deps.placements.entries.values()) if (e.value.nodes.includes(this.deps.node)) out.add(e.value.app);
    return out;
  }

  poke(): void {
    this.passes.poke();
  }

  private async report(app: AppRecord, state: ReplicaStatus["state"], message?: string): Promise<void> {
    const s: ReplicaStatus = { app: app.id, node: this.deps.node, revision: app.revision, state, ...(message ? { message } : {}), at: Date.now() };
    await this.deps.replicas.put(`${app.id}.${this.deps.node}`, JSON.stringify(s)).catch(() => undefined);
  }

  private async reconcile(): Promise<void> {
    const { runtime, sink, state } = this.deps;
    const want = this.assigned();
    for (const appId of want) {
      if (this.stopped) return;
      const app = state.apps.get(appId);
      if (!app) continue; // this node's copy of the control state has not caught up yet
      if (runtime.running(appId) !== app.revision) {
        const f = this.failed.get(appId);
        if (f && f.revision === app.revision && Date.now() - f.at < (this.deps.retryFailedMs ?? 30_000)) continue;
        await this.report(app, "starting");
        try {
          await runtime.start(app);
          this.failed.delete(appId);
        } catch (err) {
          const message = (err as Error).message;
          this.failed.set(appId, { revision: app.revision, at: Date.now() });
          this.deps.onEvent?.(appId, `revision ${app.revision} did not start on node ${this.deps.node}: ${message}`);
          await this.report(app, "failed", message);
          continue;
        }
        // Ready only once forwarded requests reach it: a deploy that returns is served everywhere.
        await this.serve(app);
        await this.report(app, "ready");
      }
      await this.serve(app);
    }
    for (const appId of new Set([...runtime.runningApps(), ...this.served])) {
      if (want.has(appId) && state.apps.get(appId)) continue; // (gone from the control state: the app was deleted)
      if (this.served.delete(appId)) sink.unserve(appId);
      if (runtime.running(appId) !== undefined) await runtime.stop(appId);
      await this.deps.replicas.delete(`${appId}.${this.deps.node}`).catch(() => undefined);
    }
  }

  private async serve(app: AppRecord): Promise<void> {
    if (app.config.abi === "service" || this.served.has(app.id)) return;
    this.served.add(app.id);
    await this.deps.sink.serve(app.id).catch(() => undefined);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    for (const off of this.offs.splice(0)) off();
  }
}
