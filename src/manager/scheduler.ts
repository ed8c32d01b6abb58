/**
 * Fair scheduling of requests onto executors: deficit round robin per tenant.
 *
 * Each tenant with waiting work sits in a ring. Visiting a tenant adds
 * `quantum × weight` to its deficit; it may start its head job when the
 * deficit covers the job's estimated cost (executor ms). When a job ends, the
 * difference between actual and estimated cost is charged, so a tenant whose
 * requests burn more CPU than estimated falls behind by exactly that much.
 *
 * Executors are shared by *share*: a tenant's share is `slots × weight / Σ
 * weight` over the tenants active in the last `shareWindowMs` (at least 1).
 * While a tenant below its share waits, only tenants below their share start
 * jobs, so nobody is given more than its share while others wait. A tenant at
 * or above its share still gets a free executor nobody below their share wants
 * (the node stays busy), but that job is a *loan*: the caller bounds its
 * deadline (the manager's `loanTimeoutMs`), because a running guest cannot be
 * paused and the executor must come back soon when others arrive. Two more
 * bounds: `maxConcurrency` executors per tenant, and a tenant at or above its
 * share never takes the last free executor while another tenant has been
 * active in the last `reserveWindowMs` (a flood of long jobs always leaves one
 * executor for everybody else; a tenant alone still gets them all).
 *
 * Jobs without an end in sight (services: `long`) wait in a queue of their
 * own and start only below their tenant's share and while fewer than
 * `maxLongSlots` of them run (half the executors by default), never as a
 * loan: whatever services hold, requests keep the rest of the executors.
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

/**
 * Why a job did not start. A queue timeout is `tenant_concurrency_timeout`
 * when, as it timed out, its tenant held `maxConcurrency` executors (its own
 * limit kept it waiting), else `queue_timeout` (the node was busy).
 */
export type RejectReason = "tenant_queue_full" | "node_queue_full" | "queue_timeout" | "tenant_concurrency_timeout" | "cancelled";

export class SchedulerRejection extends Error {
  constructor(readonly reason: RejectReason, message: string) {
    super(message);
    this.name = "SchedulerRejection";
  }
}

interface Job {
  cost: number;
  start: (grant: Grant) => void;
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

/** How a job got its executor. */
export interface Grant {
  /** Started while its tenant held its share or more: the caller should bound its deadline. */
  loan: boolean;
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
  /** Tenants that submitted work this recently count when shares are computed, ms. Default 60 000. */
  shareWindowMs?: number;
  /** Most executors held by long jobs (services) at once. Default: half the slots, rounded down. */
  maxLongSlots?: number;
}

export interface RunOptions<T> {
  /** Longest wait for an executor before SchedulerRejection("queue_timeout"). */
  queueTimeoutMs?: number;
  /** The job's actual cost from its result and wall time (default: the wall time). */
  actualCost?: (result: T | undefined, ms: number) => number;
  /** A job without an end in sight (a service): see the class comment. It is not charged to the round robin. */
  long?: boolean;
  /** Withdraws the job while it waits (SchedulerRejection "cancelled"); a started job is the caller's to end. */
  signal?: AbortSignal;
}

export interface SchedulerStats {
  running: number;
  queued: number;
  slots: number;
  /** Jobs started on a loaned executor (beyond their tenant's share), since start. */
  loans: number;
  /** Long jobs (services) running, and waiting for an executor. */
  long: { running: number; waiting: number; maxSlots: number };
  tenants: Record<string, { running: number; queued: number; deficit: number; share: number }>;
}

const NO_LOAN: Grant = Object.freeze({ loan: false });
const LOAN: Grant = Object.freeze({ loan: true });

export class FairScheduler {
  private readonly tenants = new Map<string, TenantState>();
  private readonly ring: TenantState[] = [];
  private cursor = 0;
  private running = 0;
  private queued = 0;
  private loans = 0;
  private longRunning = 0;
  private readonly longQueue: { t: TenantState; start: () => void }[] = [];
  /** Most executors long jobs (services) may hold at once. */
  readonly maxLongSlots: number;
  private readonly quantum: number;
  private readonly maxQueued: number;
  private readonly reserveWindowMs: number;
  private readonly shareWindowMs: number;
  /** The tenant that submitted work last, when, and the latest submission by any other tenant. */
  private lastTenant: TenantState | undefined;
  private lastActiveAt = -Infinity;
  private otherActiveAt = -Infinity;
  /** Σ weight of active tenants, recomputed at most every ACTIVE_WEIGHT_TTL_MS (shares need not be exact to the ms). */
  private activeWeight = 0;
  private activeWeightAt = -Infinity;
  /** Σ weight of the tenants busy now (see threadShare), recomputed at most every ACTIVE_WEIGHT_TTL_MS. */
  private busyWeight = 0;
  private busyWeightAt = -Infinity;
  slots: number;

  constructor(opts: SchedulerOptions) {
    this.slots = Math.max(1, opts.slots);
    this.quantum = opts.quantum ?? 1;
    this.maxQueued = opts.maxQueued ?? 10_000;
    this.reserveWindowMs = opts.reserveWindowMs ?? 1000;
    this.shareWindowMs = opts.shareWindowMs ?? 60_000;
    this.maxLongSlots = opts.maxLongSlots ?? Math.floor(this.slots / 2);
  }

  /**
   * Runs `task` when the tenant's turn comes, telling it whether its executor
   * is a loan. `cost` is the estimated executor time; `actualCost` (from the
   * task's result) corrects it when the job ends.
   */
  async run<T>(share: TenantShare, cost: number, task: (grant: Grant) => Promise<T>, opts: RunOptions<T> = {}): Promise<T> {
    const t = this.state(share);
    if (opts.long) return this.runLong(t, task, opts.signal);
    cost = Math.max(cost, 0.001);
    let grant: Grant;
    // The uncontended path (nobody waiting, a slot free for this tenant)
    // starts at once: no job record, promise or queue timer. It leaves the
    // tenant's deficit exactly as the round robin below would.
    // (Nobody waiting means every queue is empty; a zero maxQueue still refuses, as admit does.)
    if (this.ring.length === 0 && t.share.maxQueue > 0 && this.maxQueued > 0 && this.mayStart(t)) {
      t.deficit = t.deficit >= cost ? Math.min(t.deficit - cost, 0) : 0;
      grant = this.take(t);
    } else {
      grant = await this.admit(t, cost, opts.queueTimeoutMs);
    }
    const started = performance.now();
    let result: T | undefined;
    try {
      result = await task(grant);
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

  private async runLong<T>(t: TenantState, task: (grant: Grant) => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) throw new SchedulerRejection("cancelled", "withdrawn before it started");
    if (this.longQueue.length > 0 || !this.mayStartLong(t)) {
      await new Promise<void>((resolve, reject) => {
        const entry = { t, start: resolve };
        this.longQueue.push(entry);
        signal?.addEventListener("abort", () => {
          const i = this.longQueue.indexOf(entry);
          if (i < 0) return;
          this.longQueue.splice(i, 1);
          reject(new SchedulerRejection("cancelled", "withdrawn while it waited for an executor"));
        }, { once: true });
        this.startLongs();
      });
    } else {
      this.takeLong(t);
    }
    try {
      return await task(NO_LOAN);
    } finally {
      t.running--;
      this.running--;
      this.longRunning--;
      this.startLongs();
      if (this.ring.length > 0) this.dispatch();
    }
  }

  /** A long job may start: a free executor, below the long-job cap, its tenant below its share and cap. */
  private mayStartLong(t: TenantState): boolean {
    return this.running < this.slots && this.longRunning < this.maxLongSlots && t.running < t.share.maxConcurrency && t.running < this.shareOf(t);
  }

  private takeLong(t: TenantState): void {
    t.running++;
    this.running++;
    this.longRunning++;
  }

  /** Starts waiting long jobs that may start now, oldest first. */
  private startLongs(): void {
    for (let i = 0; i < this.longQueue.length && this.running < this.slots && this.longRunning < this.maxLongSlots; ) {
      const e = this.longQueue[i]!;
      if (!this.mayStartLong(e.t)) {
        i++;
        continue;
      }
      this.longQueue.splice(i, 1);
      this.takeLong(e.t);
      e.start();
    }
  }

  /** Gives `t` an executor; a loan when it already holds its share. */
  private take(t: TenantState): Grant {
    const loan = t.running > 0 && t.running >= this.shareOf(t);
    t.running++;
    this.running++;
    if (!loan) return NO_LOAN;
    this.loans++;
    return LOAN;
  }

  /** `t`'s fair share of executors: slots × its weight / the weight of every active tenant (at least 1). */
  private shareOf(t: TenantState): number {
    const now = performance.now();
    if (now - this.activeWeightAt > ACTIVE_WEIGHT_TTL_MS) {
      const since = now - this.shareWindowMs;
      let w = 0;
      for (const u of this.tenants.values()) if (u.running > 0 || u.queue.length > 0 || u.lastActive >= since) w += u.share.weight;
      this.activeWeight = w;
      this.activeWeightAt = now;
    }
    // `t` is active (it is asking); count it even when the cached sum predates it.
    const total = Math.max(this.activeWeight, t.share.weight);
    return Math.max(1, (this.slots * t.share.weight) / total);
  }

  /**
   * `share`'s part of a serving thread now, in (0, 1]: its weight over the
   * weight of the tenants with work running or waiting or submitted in the
   * last `reserveWindowMs` (1 when it is alone). See pacing.ts.
   */
  threadShare(share: TenantShare): number {
    const now = performance.now();
    const since = now - this.reserveWindowMs;
    if (now - this.busyWeightAt > ACTIVE_WEIGHT_TTL_MS) {
      let w = 0;
      for (const u of this.tenants.values()) if (busySince(u, since)) w += u.share.weight;
      this.busyWeight = w;
      this.busyWeightAt = now;
    }
    // `share` is busy (it is being charged): counted even when the sum left it out.
    const me = this.tenants.get(share.id);
    return share.weight / (this.busyWeight + (me && busySince(me, since) ? 0 : share.weight));
  }

  /** Whether `t` may take a free executor now (its concurrency cap, and the last executor kept for others). */
  private mayStart(t: TenantState): boolean {
    if (this.running >= this.slots || t.running >= t.share.maxConcurrency) return false;
    return !(this.slots > 1 && this.running === this.slots - 1 && t.running > 0 && t.running >= this.shareOf(t) && this.othersActive(t));
  }

  private state(share: TenantShare): TenantState {
    let t = this.tenants.get(share.id);
    if (!t) {
      t = { share, queue: [], deficit: 0, running: 0, inRing: false, lastActive: 0 };
      this.tenants.set(share.id, t);
      this.activeWeightAt = this.busyWeightAt = -Infinity; // a new tenant changes every share
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

  private admit(t: TenantState, cost: number, queueTimeoutMs?: number): Promise<Grant> {
    if (t.queue.length >= t.share.maxQueue) {
      return Promise.reject(new SchedulerRejection("tenant_queue_full", `tenant ${t.share.id} has ${t.queue.length} requests waiting (quota maxQueue ${t.share.maxQueue})`));
    }
    if (this.queued >= this.maxQueued) {
      return Promise.reject(new SchedulerRejection("node_queue_full", `the node has ${this.queued} requests waiting`));
    }
    return new Promise<Grant>((resolve, reject) => {
      const job: Job = {
        cost,
        start: (grant) => {
          if (job.timer) clearTimeout(job.timer);
          resolve(grant);
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
            reject(
              t.running >= t.share.maxConcurrency
                ? new SchedulerRejection("tenant_concurrency_timeout", `waited ${queueTimeoutMs} ms for an executor while tenant ${t.share.id} held ${t.running} (its quota maxConcurrency ${t.share.maxConcurrency})`)
                : new SchedulerRejection("queue_timeout", `waited ${queueTimeoutMs} ms for an executor`),
            );
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

  /** Starts waiting jobs while executors are free and some tenant may take one. */
  private dispatch(): void {
    if (this.longQueue.length > 0) this.startLongs();
    while (this.running < this.slots && this.ring.length > 0) {
      const t = this.pick();
      if (!t) break; // every waiting tenant is at a cap: the next job end dispatches again
      const head = t.queue.shift()!;
      this.queued--;
      t.deficit -= head.cost;
      const grant = this.take(t);
      if (t.queue.length === 0) this.leaveRing(t);
      head.start(grant);
    }
  }

  /**
   * The tenant whose head job starts next, or undefined when every waiting
   * tenant is at a cap. Candidates are the waiting tenants that may take an
   * executor now; while any of them is below its share, only those compete.
   * Among them, deficit round robin: the tenant under the cursor is being
   * visited and goes on while its deficit covers its head job; otherwise the
   * round robin moves on, crediting each tenant it visits, and the first whose
   * deficit then covers wins. The rounds that takes are credited all at once,
   * so a pass is O(ring) and never gives up while a candidate could start.
   */
  private pick(): TenantState | undefined {
    for (let i = 0; i < this.ring.length; ) {
      const t = this.ring[i]!;
      if (t.queue.length > 0) i++;
      else this.leaveRing(t); // its jobs timed out in the queue
    }
    const n = this.ring.length;
    if (n === 0) return undefined;
    if (this.cursor >= n) this.cursor = 0;
    // Visiting order: the tenants after the cursor, then the one under it (its next visit).
    const candidates: TenantState[] = [];
    let underShare = false;
    for (let k = 1; k <= n; k++) {
      const t = this.ring[(this.cursor + k) % n]!;
      if (!this.mayStart(t)) continue;
      const under = t.running < this.shareOf(t);
      if (under && !underShare) {
        underShare = true;
        candidates.length = 0; // tenants at or above their share wait while one below it does
      }
      if (under || !underShare) candidates.push(t);
    }
    if (candidates.length === 0) return undefined;
    const current = this.ring[this.cursor]!;
    if (candidates[candidates.length - 1] === current && current.deficit >= current.queue[0]!.cost) return current;
    let best = 0;
    let bestRounds = Infinity;
    for (let k = 0; k < candidates.length; k++) {
      const t = candidates[k]!;
      const need = t.queue[0]!.cost - t.deficit;
      const rounds = Math.max(1, Math.ceil(need / (this.quantum * t.share.weight))); // a visit credits before it looks
      if (rounds < bestRounds) {
        best = k;
        bestRounds = rounds;
      }
    }
    // Those visited before the winner in its round got that round's credit too; those after did not.
    for (let k = 0; k < candidates.length; k++) {
      const t = candidates[k]!;
      t.deficit += (k <= best ? bestRounds : bestRounds - 1) * this.quantum * t.share.weight;
    }
    const winner = candidates[best]!;
    this.cursor = this.ring.indexOf(winner);
    return winner;
  }

  private leaveRing(t: TenantState): void {
    const i = this.ring.indexOf(t);
    if (i < 0) return;
    this.ring.splice(i, 1);
    if (i < this.cursor) this.cursor--;
    t.inRing = false;
    t.deficit = Math.min(t.deficit, 0); // an idle tenant banks no credit, but keeps its debt
  }

  /** Whether a tenant other than `t` submitted work recently, has work waiting or running (it may need the last executor). O(1). */
  private othersActive(t: TenantState): boolean {
    if (this.running - t.running > 0 || this.queued - t.queue.length > 0) return true;
    const since = performance.now() - this.reserveWindowMs;
    return (this.lastTenant === t ? this.otherActiveAt : this.lastActiveAt) >= since;
  }

  /** Charges a tenant `ms` of work done outside a job (preparing its module): it waits that much longer under contention. */
  charge(share: TenantShare, ms: number): void {
    const t = this.tenants.get(share.id) ?? this.state(share);
    t.deficit -= ms;
  }

  stats(): SchedulerStats {
    const tenants: SchedulerStats["tenants"] = {};
    for (const [id, t] of this.tenants) tenants[id] = { running: t.running, queued: t.queue.length, deficit: t.deficit, share: Math.round(this.shareOf(t) * 100) / 100 };
    return { running: this.running, queued: this.queued, slots: this.slots, loans: this.loans, long: { running: this.longRunning, waiting: this.longQueue.length, maxSlots: this.maxLongSlots }, tenants };
  }

  queuedFor(tenantId: string): number {
    return this.tenants.get(tenantId)?.queue.length ?? 0;
  }
}

const ACTIVE_WEIGHT_TTL_MS = 20;

/** Whether a tenant has work running or waiting, or submitted some since `since`. */
function busySince(u: TenantState, since: number): boolean {
  return u.running > 0 || u.queue.length > 0 || u.lastActive >= since;
}
