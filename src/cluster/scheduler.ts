/**
 * The cluster scheduler: on the elected node only, it turns the apps of the
 * control state and the live members into placements (a KV entry per app
 * listing its nodes), whenever either changes and once per heartbeat. The
 * nodes' agents start and stop replicas from those entries.
 *
 * A node is declared dead only when this scheduler's own view is fresh: it
 * has been connected for `deadAfterMs` (after a NATS outage every heartbeat
 * is old), and it sees its own latest heartbeat (a watch that stalled, as
 * after a server restart, shows every node silent). Nobody loses its
 * replicas for a problem of the scheduler's.
 */
import type { AppRecord, ControlReads } from "../store/index.js";
import { CoalescedPass } from "./coalesced.js";
import type { WatchedBucket } from "./kv.js";
import type { Membership } from "./membership.js";
import { place, type PlacementApp, type PlacementNode } from "./placement.js";

export const PLACEMENTS_BUCKET = "uniwasm-placements";
export const REPLICAS_BUCKET = "uniwasm-replicas";

export interface PlacementRecord {
  app: string;
  nodes: string[];
  wanted: number;
  short?: string;
  at: number;
}

/** What a node reports about its replica of an app (key `<app>.<node>` in the replicas bucket). */
export interface ReplicaStatus {
  app: string;
  node: string;
  revision: number;
  state: "starting" | "ready" | "failed";
  message?: string;
  at: number;
}

/** Memory one replica of an app needs on a node: its limit times its warm instances (at least one). */
export function replicaNeedMiB(app: AppRecord): number {
  return Math.ceil(app.config.limits.maxMemoryBytes / (1024 * 1024)) * Math.max(1, app.config.scale.minInstances);
}

export function replicasWanted(app: AppRecord): number | "all" {
  return app.config.replicas ?? 1;
}

export interface SchedulerDeps {
  placements: WatchedBucket<PlacementRecord>;
  replicas: WatchedBucket<ReplicaStatus>;
  membership: Membership;
  state: ControlReads;
  deadAfterMs: number;
  heartbeatMs: number;
  /** When this node's NATS connection was last (re)established, ms. */
  connectedSince: () => number;
  onError?: (err: Error) => void;
}

export class ClusterScheduler {
  private leader = false;
  private readonly passes = new CoalescedPass(() => this.pass(), () => this.leader, (err) => this.deps.onError?.(err));

  constructor(private readonly deps: SchedulerDeps) {}

  setLeader(on: boolean): void {
    this.leader = on;
    if (on) this.poke();
  }

  get isLeader(): boolean {
    return this.leader;
  }

  /** Schedules a pass soon (coalesced: one pass at a time, one more if poked meanwhile). */
  poke(): void {
    this.passes.poke();
  }

  private async pass(): Promise<void> {
    const { placements, replicas, membership, state } = this.deps;
    const now = Date.now();
    const self = membership.members.get(membership.name);
    const settled = now - this.deps.connectedSince() >= this.deps.deadAfterMs && self !== undefined && now - self.seenAt <= 2 * this.deps.heartbeatMs + 500;
    // Until this scheduler has watched heartbeats for deadAfterMs, every member it knows of counts as live.
    const members = settled ? membership.live(now) : membership.all().map((e) => e.value);
    const nodes: PlacementNode[] = members.map((m) => ({ name: m.name, zone: m.zone, memoryMiB: m.memoryMiB }));
    const apps = state.apps.list();
    const demand: PlacementApp[] = apps.map((a) => ({ id: a.id, replicas: replicasWanted(a), needMiB: replicaNeedMiB(a) }));
    const current = new Map<string, string[]>();
    for (const [key, e] of placements.entries) current.set(key, e.value.nodes);
    const next = place(demand, nodes, current);

    for (const [appId, p] of next) {
      const cur = placements.get(appId);
      const same = cur && cur.value.nodes.join(",") === p.nodes.join(",") && cur.value.wanted === p.wanted && cur.value.short === p.short;
      if (same) continue;
      const rec: PlacementRecord = { app: appId, nodes: p.nodes, wanted: p.wanted, ...(p.short ? { short: p.short } : {}), at: now };
      try {
        // On the revision this scheduler saw: a second scheduler (a lease changing hands) cannot overwrite blindly.
        if (cur) await placements.kv.update(appId, JSON.stringify(rec), cur.revision);
        else await placements.kv.create(appId, JSON.stringify(rec));
      } catch {
        // changed under us: the next pass sees the new entry
      }
    }
    for (const key of placements.entries.keys()) if (!next.has(key)) await placements.kv.delete(key).catch(() => undefined);
    // Forget replica reports of nodes that no longer hold the app.
    for (const [key, e] of replicas.entries) {
      const p = next.get(e.value.app);
      if (!p || !p.nodes.includes(e.value.node)) await replicas.kv.delete(key).catch(() => undefined);
    }
  }
}
