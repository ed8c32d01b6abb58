/**
 * An app's logs across the cluster. Each node keeps the lines of what ran
 * there (its SQLite, as on one node); reading an app's logs through any node
 * asks every node for its newest lines and merges them by time, and
 * following them listens to what every node publishes as it flushes (one
 * message per app per flush, dropped by NATS when nobody follows).
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { LogEntry, LogRepo } from "../store/index.js";

const READ = "uniwasm.logs.read";
const LIVE = "uniwasm.logs.live.";
/** Most bytes of log entries in one message (well below any max_payload). */
const MAX_BATCH = 256 * 1024;

/** A line with the node it was written on. */
export type ClusterLogEntry = LogEntry & { node: string };

export interface AppLogs {
  /** The newest `tail` lines of the app from every node, oldest first. */
  tail(appId: string, tail: number): Promise<ClusterLogEntry[]>;
  /** Lines of the app from every node as they are written; returns the unsubscribe function. */
  follow(appId: string, fn: (entries: ClusterLogEntry[]) => void): () => void;
}

/** Splits entries, in order, into batches of at most about MAX_BATCH bytes of JSON. */
function batches(entries: LogEntry[]): LogEntry[][] {
  const out: LogEntry[][] = [];
  let cur: LogEntry[] = [];
  let size = 0;
  for (const e of entries) {
    const n = e.line.length * 2 + 96; // worst case of its JSON, roughly
    if (size + n > MAX_BATCH && cur.length > 0) {
      out.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(e);
    size += n;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

export class ClusterLogs implements AppLogs {
  private sub: Subscription | undefined;
  private off: (() => void) | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly node: string,
    private readonly logs: LogRepo,
    /** Nodes to wait for when reading (the live members). */
    private readonly members: () => number,
    private readonly link: { connected: boolean },
  ) {}

  start(): void {
    this.sub = this.nc.subscribe(READ, {
      callback: (err, m) => {
        if (err || !m.reply) return;
        let r: { app: string; tail: number };
        try {
          r = m.json();
        } catch {
          return;
        }
        // One answer per node: the newest lines that fit in one message.
        const all = this.logs.read(r.app, { tail: Math.min(Math.max(0, r.tail), 10_000) });
        const newest = batches(all).at(-1) ?? [];
        m.respond(JSON.stringify({ node: this.node, entries: newest }));
      },
    });
    this.off = this.logs.subscribe((entries) => {
      if (!this.link.connected) return;
      const byApp = new Map<string, LogEntry[]>();
      for (const e of entries) {
        const list = byApp.get(e.appId);
        if (list) list.push(e);
        else byApp.set(e.appId, [e]);
      }
      for (const [appId, list] of byApp) {
        for (const b of batches(list)) {
          try {
            this.nc.publish(LIVE + appId, JSON.stringify({ node: this.node, entries: b }));
          } catch {
            // NATS away: followers elsewhere miss these lines; they stay in this node's logs
          }
        }
      }
    });
  }

  async tail(appId: string, tail: number): Promise<ClusterLogEntry[]> {
    const local = (): ClusterLogEntry[] => this.logs.read(appId, { tail }).map((e) => ({ ...e, node: this.node }));
    if (!this.link.connected) return local();
    const all: ClusterLogEntry[] = [];
    const seen = new Set<string>();
    try {
      const iter = await this.nc.requestMany(READ, JSON.stringify({ app: appId, tail }), { strategy: "count", maxMessages: Math.max(1, this.members()), maxWait: 2000 });
      for await (const m of iter) {
        const r = m.json<{ node: string; entries: LogEntry[] }>();
        if (seen.has(r.node)) continue;
        seen.add(r.node);
        for (const e of r.entries) all.push({ ...e, node: r.node });
      }
    } catch {
      // fall through: whatever answered, plus this node's own lines
    }
    if (!seen.has(this.node)) all.push(...local());
    all.sort((a, b) => a.ts - b.ts || (a.node < b.node ? -1 : a.node > b.node ? 1 : a.seq - b.seq));
    return tail === 0 ? [] : all.slice(-tail);
  }

  follow(appId: string, fn: (entries: ClusterLogEntry[]) => void): () => void {
    const sub = this.nc.subscribe(LIVE + appId, {
      callback: (err, m) => {
        if (err) return;
        try {
          const r = m.json<{ node: string; entries: LogEntry[] }>();
          fn(r.entries.map((e) => ({ ...e, node: r.node })));
        } catch {
          // not a batch of log entries
        }
      },
    });
    return () => sub.unsubscribe();
  }

  stop(): void {
    this.off?.();
    this.sub?.unsubscribe();
  }
}
