import type { ReactorHandle } from "./runner.js";
import type { Reservation } from "./budget.js";

export interface PooledInstance {
  id: string;
  handle: ReactorHandle;
  reservation: Reservation;
  startedAt: number;
  lastUsedAt: number;
  requests: number;
  busy: boolean;
  /** What the instance's extension providers know of the request it serves (see ExtensionScope). */
  call?: { chain: readonly string[] };
  /** Where it runs (placement.ts); absent: on an executor. */
  placement?: "inline" | "executor";
}

export interface PoolOptions {
  min: number;
  max: number;
  idleTimeoutMs: number;
  /** Starts one instance (cold start); throws a Refusal when the budget says no. `nested`: for a service call (see Invocation.chain). */
  create: (nested?: boolean) => Promise<PooledInstance>;
  /** Stops one instance and releases its reservation. */
  destroy: (inst: PooledInstance, why: string) => Promise<void>;
}

/**
 * Warm reactor instances of one app revision. It grows with demand up to
 * `max` (each growth is a cold start), shrinks back to `min` after
 * `idleTimeoutMs` without use (min 0 = scale to zero), and hands instances
 * out most-recently-used first so the idle tail can age out.
 */
export class ReactorPool {
  private readonly idle: PooledInstance[] = [];
  readonly all = new Set<PooledInstance>();
  private readonly waiters: { resolve: (i: PooledInstance) => void; reject: (e: Error) => void }[] = [];
  private creating = 0;
  private draining = false;

  constructor(private readonly opts: PoolOptions) {}

  /**
   * An instance for one request: the most recently used idle one (that
   * `usable` accepts, when given), else a new one below `max`, else the next
   * one released.
   */
  async acquire(usable?: (inst: PooledInstance) => boolean, nested?: boolean): Promise<{ instance: PooledInstance; cold: boolean }> {
    if (this.draining) throw new Error("pool is draining");
    let at = this.idle.length - 1;
    if (usable) while (at >= 0 && !usable(this.idle[at]!)) at--;
    const warm = at >= 0 ? this.idle.splice(at, 1)[0] : undefined;
    if (warm) {
      warm.busy = true;
      return { instance: warm, cold: false };
    }
    if (usable && this.idle.length > 0 && this.all.size + this.creating >= this.opts.max) {
      // At max with only unusable idle instances (on the caller's executor): one makes room for a usable one.
      const evict = this.idle.shift()!;
      this.all.delete(evict);
      void this.opts.destroy(evict, "replaced for a service call from its executor");
    }
    if (this.all.size + this.creating < this.opts.max) {
      this.creating++;
      let inst: PooledInstance;
      try {
        inst = await this.opts.create(nested);
      } finally {
        this.creating--;
      }
      this.all.add(inst);
      inst.busy = true;
      return { instance: inst, cold: true };
    }
    // At max: wait for a release (bounded by the scheduler's concurrency caps).
    const inst = await new Promise<PooledInstance>((resolve, reject) => this.waiters.push({ resolve, reject }));
    return { instance: inst, cold: false };
  }

  release(inst: PooledInstance, broken: boolean): void {
    inst.lastUsedAt = Date.now();
    if (broken || this.draining) {
      this.all.delete(inst);
      void this.opts.destroy(inst, broken ? "crashed" : "drained");
      // A waiter for a broken instance's slot can now create a fresh one.
      const w = this.waiters.shift();
      if (w && !this.draining) this.acquire().then((r) => w.resolve(r.instance), w.reject);
      else if (w) w.reject(new Error("pool is draining"));
      return;
    }
    const w = this.waiters.shift();
    if (w) {
      w.resolve(inst);
      return;
    }
    inst.busy = false;
    this.idle.push(inst);
  }

  /** Starts instances until `min` are live. */
  async warm(n = this.opts.min): Promise<void> {
    while (!this.draining && this.all.size + this.creating < Math.min(n, this.opts.max)) {
      this.creating++;
      let inst: PooledInstance;
      try {
        inst = await this.opts.create();
      } finally {
        this.creating--;
      }
      this.all.add(inst);
      this.release(inst, false);
    }
  }

  /** Stops idle instances above `min` that have been idle for idleTimeoutMs. */
  reap(now = Date.now()): number {
    let stopped = 0;
    for (let i = 0; i < this.idle.length && this.all.size > this.opts.min; ) {
      const inst = this.idle[i]!;
      if (now - inst.lastUsedAt >= this.opts.idleTimeoutMs) {
        this.idle.splice(i, 1);
        this.all.delete(inst);
        void this.opts.destroy(inst, "idle");
        stopped++;
      } else i++;
    }
    return stopped;
  }

  /** Stops one instance by id if it is idle; a busy one is stopped when released. */
  stop(id: string): boolean {
    for (const inst of this.all) {
      if (inst.id !== id) continue;
      const i = this.idle.indexOf(inst);
      if (i >= 0) {
        this.idle.splice(i, 1);
        this.all.delete(inst);
        void this.opts.destroy(inst, "stopped by API");
      } else {
        inst.busy = true;
        // Marked: released as broken so it is not reused.
        (inst as PooledInstance & { stopRequested?: boolean }).stopRequested = true;
      }
      return true;
    }
    return false;
  }

  /** No new work; idle instances stop now, busy ones when released. */
  drain(): void {
    this.draining = true;
    for (const inst of this.idle.splice(0)) {
      this.all.delete(inst);
      void this.opts.destroy(inst, "drained");
    }
    for (const w of this.waiters.splice(0)) w.reject(new Error("pool is draining"));
  }

  get size(): number {
    return this.all.size;
  }
}
