/**
 * Fair scheduling of requests onto executors: deficit round robin per tenant.
 *
 * Each tenant with waiting work sits in a ring. Visiting a tenant adds
 * `quantum × weight` to its deficit; it may start its head job when the
 * deficit covers the job's estimated cost (executor ms). When a job ends, the
 * difference between actual and estimated cost is charged, so a tenant whose
 * requests burn more CPU than estimated falls behind by exactly that much.
 * A tenant also never holds more than `maxConcurrency` executors, and while
 * another tenant has been active in the last `reserveWindowMs`, not the last
 * free executor either: a flood of long jobs then always leaves one executor
 * for everybody else (a tenant alone still gets them all).
 */

export interface TenantShare {
  id: string;
  /** Relative share under contention (1 = normal). */
  weight: number;
  /** Most executors this tenant may hold at once. */
  maxConcurrency: number;
  /** Most jobs waiting; the next one is rejected. */
  maxQueue: number;
}

export type RejectReason = "tenant_queue_full" | "node_queue_full" | "queue_timeout";

export class SchedulerRejection extends Error {
  constructor(readonly reason: RejectReason, message: string) {
    super(message);
    this.name = "SchedulerRejection";
  }
}

interface Job {
  cost: number;
  start: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

interface TenantState {
  share: TenantShare;
  queue: Job[];
  deficit: number;
  running: number;
  inRing: boolean;
  lastActive: number;
}

export interface SchedulerOptions {
  /** Executors: jobs that may run at once node-wide. */
  slots: number;
  /** Cost credited per round, in the unit of job costs (ms). Default 1. */
  quantum?: number;
  /** Most jobs waiting node-wide. Default 10 000. */
  maxQueued?: number;
  /** How recently another tenant must have submitted work for the last executor to be kept for it, ms. Default 1000. */
  reserveWindowMs?: number;
}

export interface RunOptions<T> {
  /** Longest wait for an executor before SchedulerRejection("queue_timeout"). */
  queueTimeoutMs?: number;
  /** The job's actual cost from its result and wall time (default: the wall time). */
  actualCost?: (result: T | undefined, ms: number) => number;
}

export interface SchedulerStats {
  running: number;
  queued: number;
  slots: number;
  tenants: Record<string, { running: number; queued: number; deficit: number }>;
}

export class FairScheduler {
  private readonly tenants = new Map<string, TenantState>();
  private readonly ring: TenantState[] = [];
  private cursor = 0;
  private running = 0;
  private queued = 0;
  private readonly quantum: number;
  private readonly maxQueued: number;
  private readonly reserveWindowMs: number;
  /** The tenant that submitted work last, when, and the latest submission by any other tenant. */
  private lastTenant: TenantState | undefined;
  private lastActiveAt = -Infinity;
  private otherActiveAt = -Infinity;
  slots: number;

  constructor(opts: SchedulerOptions) {
    this.slots = Math.max(1, opts.slots);
    this.quantum = opts.quantum ?? 1;
    this.maxQueued = opts.maxQueued ?? 10_000;
    this.reserveWindowMs = opts.reserveWindowMs ?? 1000;
  }

  /**
   * Runs `task` when the tenant's turn comes. `cost` is the estimated executor
   * time; `charge` (returned by the task's result via `actualCost`) corrects it.
   */
  async run<T>(share: TenantShare, cost: number, task: () => Promise<T>, opts: RunOptions<T> = {}): Promise<T> {
    const t = this.state(share);
    cost = Math.max(cost, 0.001);
    // The uncontended path (nobody waiting, a slot free for this tenant)
    // starts at once: no job record, promise or queue timer. It leaves the
    // tenant's deficit exactly as the round robin below would.
    // (Nobody waiting means every queue is empty; a zero maxQueue still refuses, as admit does.)
    if (this.ring.length === 0 && t.share.maxQueue > 0 && this.maxQueued > 0 && this.mayStart(t)) {
      t.deficit = t.deficit >= cost ? Math.min(t.deficit - cost, 0) : 0;
      t.running++;
      this.running++;
    } else {
      await this.admit(t, cost, opts.queueTimeoutMs);
    }
    const started = performance.now();
    let result: T | undefined;
    try {
      result = await task();
      return result;
    } finally {
      const ms = performance.now() - started;
      const actual = opts.actualCost ? opts.actualCost(result, ms) : ms;
      t.deficit -= actual - cost;
      t.running--;
      this.running--;
      if (this.ring.length > 0) this.dispatch();
    }
  }

  /** Whether `t` may take a free executor now (its concurrency cap, and the last executor kept for others). */
  private mayStart(t: TenantState): boolean {
    if (this.running >= this.slots || t.running >= t.share.maxConcurrency) return false;
    return !(this.slots > 1 && this.running === this.slots - 1 && t.running > 0 && this.othersActive(t));
  }

  private state(share: TenantShare): TenantState {
    let t = this.tenants.get(share.id);
    if (!t) {
      t = { share, queue: [], deficit: 0, running: 0, inRing: false, lastActive: 0 };
      this.tenants.set(share.id, t);
    } else {
      t.share = share; // quotas may change at runtime
    }
    const now = performance.now();
    t.lastActive = now;
    if (this.lastTenant !== t) {
      // The most recent activity of any tenant other than the newly latest one (see othersActive).
      this.otherActiveAt = this.lastActiveAt;
      this.lastTenant = t;
    }
    this.lastActiveAt = now;
    return t;
  }

  private admit(t: TenantState, cost: number, queueTimeoutMs?: number): Promise<void> {
    if (t.queue.length >= t.share.maxQueue) {
      return Promise.reject(new SchedulerRejection("tenant_queue_full", `tenant ${t.share.id} has ${t.queue.length} requests waiting (quota maxQueue ${t.share.maxQueue})`));
    }
    if (this.queued >= this.maxQueued) {
      return Promise.reject(new SchedulerRejection("node_queue_full", `the node has ${this.queued} requests waiting`));
    }
    return new Promise<void>((resolve, reject) => {
      const job: Job = {
        cost,
        start: () => {
          if (job.timer) clearTimeout(job.timer);
          resolve();
        },
        reject,
        timer: undefined,
      };
      if (queueTimeoutMs !== undefined && Number.isFinite(queueTimeoutMs)) {
        job.timer = setTimeout(() => {
          const i = t.queue.indexOf(job);
          if (i >= 0) {
            t.queue.splice(i, 1);
            this.queued--;
            reject(new SchedulerRejection("queue_timeout", `waited ${queueTimeoutMs} ms for an executor`));
          }
        }, queueTimeoutMs);
        job.timer.unref?.();
      }
      t.queue.push(job);
      this.queued++;
      if (!t.inRing) {
        t.inRing = true;
        this.ring.push(t);
      }
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.running < this.slots && this.ring.length > 0) {
      // Visit tenants round-robin; give up this pass when every tenant in the
      // ring is at its concurrency cap (bounded: each visit adds a quantum).
      let started = false;
      let blocked = 0;
      while (!started && blocked < this.ring.length) {
        if (this.cursor >= this.ring.length) this.cursor = 0;
        const t = this.ring[this.cursor]!;
        const head = t.queue[0];
        if (!head) {
          this.ring.splice(this.cursor, 1);
          t.inRing = false;
          t.deficit = Math.min(t.deficit, 0); // an idle tenant banks no credit, but keeps its debt
          continue;
        }
        if (t.running >= t.share.maxConcurrency || (this.slots > 1 && this.running === this.slots - 1 && t.running > 0 && this.othersActive(t))) {
          blocked++;
          this.cursor++;
          continue;
        }
        if (t.deficit >= head.cost) {
          t.queue.shift();
          this.queued--;
          t.deficit -= head.cost;
          t.running++;
          this.running++;
          started = true;
          head.start();
          if (t.queue.length === 0) {
            this.ring.splice(this.cursor, 1);
            t.inRing = false;
            t.deficit = Math.min(t.deficit, 0);
          }
        } else {
          t.deficit += this.quantum * t.share.weight;
          // Stay on this tenant while its deficit grows toward the head's cost
          // only if nobody else is waiting; otherwise move on (the round robin).
          if (this.ring.length > 1) this.cursor++;
        }
      }
      if (!started) break;
    }
  }

  /** Whether a tenant other than `t` submitted work recently, has work waiting or running (it may need the last executor). O(1). */
  private othersActive(t: TenantState): boolean {
    if (this.running - t.running > 0 || this.queued - t.queue.length > 0) return true;
    const since = performance.now() - this.reserveWindowMs;
    return (this.lastTenant === t ? this.otherActiveAt : this.lastActiveAt) >= since;
  }

  stats(): SchedulerStats {
    const tenants: SchedulerStats["tenants"] = {};
    for (const [id, t] of this.tenants) tenants[id] = { running: t.running, queued: t.queue.length, deficit: t.deficit };
    return { running: this.running, queued: this.queued, slots: this.slots, tenants };
  }

  queuedFor(tenantId: string): number {
    return this.tenants.get(tenantId)?.queue.length ?? 0;
  }
}
