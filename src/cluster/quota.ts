/**
 * Tenant quotas across the cluster. Each node admits requests with its own
 * token bucket and CPU window per tenant (no network on the request path);
 * every `intervalMs` it tells the others what it admitted and spent per
 * tenant, and each node charges those to its own buckets and windows. So
 * every node's bucket follows the tenant's cluster-wide rate, and over any
 * second the cluster admits at most the tenant's rate plus what the other
 * nodes admitted during one gossip interval (plus one burst per node when the
 * buckets start full): the stated tolerance, measured in the cluster tests.
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import type { CpuWindow, TokenBucket } from "../manager/index.js";

const SUBJECT = "uniwasm.usage";

interface Report {
  /** Sender instance (a node ignores its own reports). */
  from: string;
  /** tenant id -> [requests admitted, executor ms]. */
  t: Record<string, [number, number]>;
}

export interface TenantMeters {
  tenant(id: string): { bucket: TokenBucket; cpu: CpuWindow } | undefined;
}

export class QuotaGossip {
  private pending = new Map<string, [number, number]>();
  private timer: NodeJS.Timeout | undefined;
  private sub: Subscription | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly instance: string,
    private readonly meters: TenantMeters,
    private readonly intervalMs = 200,
  ) {}

  start(): void {
    this.sub = this.nc.subscribe(SUBJECT, {
      callback: (err, msg) => {
        if (err) return;
        let r: Report;
        try {
          r = msg.json<Report>();
        } catch {
          return;
        }
        if (r.from === this.instance) return;
        const now = Date.now();
        for (const [tenantId, [requests, cpuMs]] of Object.entries(r.t)) {
          const m = this.meters.tenant(tenantId);
          if (!m) continue;
          if (requests > 0) m.bucket.charge(requests, now);
          if (cpuMs > 0) m.cpu.add(cpuMs, now);
        }
      },
    });
    this.timer = setInterval(() => this.flush(), this.intervalMs);
    this.timer.unref();
  }

  /** A run finished on this node: one admitted request (unless a service run) and its executor time. */
  ran(tenantId: string, request: boolean, cpuMs: number): void {
    let p = this.pending.get(tenantId);
    if (!p) {
      p = [0, 0];
      this.pending.set(tenantId, p);
    }
    if (request) p[0]++;
    p[1] += cpuMs;
  }

  private flush(): void {
    if (this.pending.size === 0) return;
    const r: Report = { from: this.instance, t: Object.fromEntries(this.pending) };
    this.pending = new Map();
    try {
      this.nc.publish(SUBJECT, JSON.stringify(r));
    } catch {
      // NATS is away: each node enforces its own share meanwhile
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.sub?.unsubscribe();
  }
}
