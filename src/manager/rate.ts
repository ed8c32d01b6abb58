/**
 * Where a meter (TokenBucket, CpuWindow) keeps its numbers: memory of its
 * own, or a slot of the node's shared tenant table (SharedTenantMeters), so
 * that every serving thread admits against the same numbers. Updates hold a
 * lock word (they take well under a microsecond): a short spin, then a futex
 * wait, so that a holder descheduled on a busy machine costs a waiter a
 * sleep, not a time slice of spinning. A local cell's lock is never contended.
 */
export class MeterCell {
  constructor(
    readonly values: Float64Array,
    private readonly lockWord: Int32Array,
    /** Shared with other threads: values may change between calls. */
    readonly shared: boolean,
  ) {}

  static local(n: number): MeterCell {
    return new MeterCell(new Float64Array(n), new Int32Array(1), false);
  }

  /** Runs `fn` holding the lock (0 free, 1 held, 2 held with waiters: Drepper's futex mutex). */
  locked<T>(fn: (v: Float64Array) => T): T {
    const w = this.lockWord;
    let c = Atomics.compareExchange(w, 0, 0, 1);
    if (c !== 0) {
      for (let spins = 0; spins < 64 && c !== 0; spins++) c = Atomics.compareExchange(w, 0, 0, 1);
      if (c !== 0) {
        if (c !== 2) c = Atomics.exchange(w, 0, 2);
        while (c !== 0) {
          Atomics.wait(w, 0, 2, 5);
          c = Atomics.exchange(w, 0, 2);
        }
      }
    }
    try {
      return fn(this.values);
    } finally {
      if (Atomics.exchange(w, 0, 0) === 2) Atomics.notify(w, 0, 1);
    }
  }
}

const TOKENS = 0;
const LAST = 1;
export const TOKEN_BUCKET_CELLS = 2;

/** Token bucket: `rate` tokens per second, holding at most `burst`. */
export class TokenBucket {
  private readonly cell: MeterCell;

  /** `cell`: a slot of the shared tenant table (its state is kept if already in use); default: one of its own. */
  constructor(public rate: number, public burst: number, now = Date.now(), cell?: MeterCell) {
    this.cell = cell ?? MeterCell.local(TOKEN_BUCKET_CELLS);
    this.cell.locked((v) => {
      if (v[LAST] === 0) {
        v[TOKENS] = burst;
        v[LAST] = now;
      }
    });
  }

  /** Takes one token; returns 0 when allowed, else the seconds until one is available. */
  take(now = Date.now()): number {
    return this.cell.locked((v) => {
      const tokens = Math.min(this.burst, v[TOKENS]! + ((now - v[LAST]!) / 1000) * this.rate);
      v[LAST] = Math.max(now, v[LAST]!);
      if (tokens >= 1) {
        v[TOKENS] = tokens - 1;
        return 0;
      }
      v[TOKENS] = tokens;
      return this.rate > 0 ? (1 - tokens) / this.rate : 60;
    });
  }

  /**
   * Counts `n` requests admitted elsewhere (other nodes of a cluster) against
   * this bucket: it may go into debt, down to -burst, so that every node's
   * bucket follows the tenant's rate across the cluster.
   */
  charge(n: number, now = Date.now()): void {
    this.cell.locked((v) => {
      const tokens = Math.min(this.burst, v[TOKENS]! + ((now - v[LAST]!) / 1000) * this.rate);
      v[LAST] = Math.max(now, v[LAST]!);
      v[TOKENS] = Math.max(-this.burst, tokens - n);
    });
  }
}

export const CPU_WINDOW_CELLS = 120;

/** Executor milliseconds used over a rolling minute, in one-second buckets (cells 0-59; their seconds in 60-119). */
export class CpuWindow {
  private readonly cell: MeterCell;
  // used() runs on every request: with a cell of its own, its sum is kept for
  // the current second and recomputed only when the second changes or a bucket
  // is reused. A shared cell changes under it, so it is summed each time.
  private cachedSec = NaN;
  private cachedSum = 0;

  constructor(cell?: MeterCell) {
    this.cell = cell ?? MeterCell.local(CPU_WINDOW_CELLS);
  }

  add(ms: number, now = Date.now()): void {
    const sec = Math.floor(now / 1000);
    const i = sec % 60;
    this.cell.locked((v) => {
      if (v[60 + i] !== sec) {
        v[60 + i] = sec;
        v[i] = 0;
        this.cachedSec = NaN;
      }
      v[i]! += ms;
    });
    if (this.cachedSec === sec) this.cachedSum += ms;
    else this.cachedSec = NaN;
  }

  /** Milliseconds used in the last 60 seconds. */
  used(now = Date.now()): number {
    const sec = Math.floor(now / 1000);
    if (!this.cell.shared && sec === this.cachedSec) return this.cachedSum;
    const sum = this.cell.locked((v) => {
      let s = 0;
      for (let i = 0; i < 60; i++) if (sec - v[60 + i]! < 60) s += v[i]!;
      return s;
    });
    this.cachedSec = sec;
    this.cachedSum = sum;
    return sum;
  }

  /** Seconds until usage drops below `limit` (at least 1). */
  retryAfter(limit: number, now = Date.now()): number {
    const sec = Math.floor(now / 1000);
    let used = this.used(now);
    const v = this.cell.values;
    for (let ahead = 1; ahead <= 60; ahead++) {
      const expiring = (sec - 60 + ahead) % 60;
      const i = ((expiring % 60) + 60) % 60;
      if (sec - v[60 + i]! < 60 && v[60 + i] === sec - 60 + ahead) used -= v[i]!;
      if (used < limit) return ahead;
    }
    return 60;
  }
}

/**
 * The node's tenant meters in one SharedArrayBuffer: a token bucket and a
 * CPU window per tenant slot. The main thread assigns slots (slotOf) and
 * sends the buffer and the assignments to the serving threads; every thread
 * builds its TokenBucket/CpuWindow over the same slot, so a tenant's rate
 * and CPU quotas hold across all of them.
 */
export class SharedTenantMeters {
  static readonly PER_SLOT = TOKEN_BUCKET_CELLS + CPU_WINDOW_CELLS;
  readonly values: Float64Array;
  readonly locks: Int32Array;
  private readonly slots = new Map<string, number>();

  constructor(
    readonly maxTenants = 4096,
    buffers?: { values: SharedArrayBuffer; locks: SharedArrayBuffer },
  ) {
    this.values = new Float64Array(buffers?.values ?? new SharedArrayBuffer(maxTenants * SharedTenantMeters.PER_SLOT * 8));
    this.locks = new Int32Array(buffers?.locks ?? new SharedArrayBuffer(maxTenants * 2 * 4));
  }

  /** What another thread needs to open the same table. */
  get buffers(): { values: SharedArrayBuffer; locks: SharedArrayBuffer } {
    return { values: this.values.buffer as SharedArrayBuffer, locks: this.locks.buffer as SharedArrayBuffer };
  }

  /** The tenant's slot, assigned on first use (main thread only; serving threads are given the assignments). */
  slotOf(tenantId: string): number {
    let s = this.slots.get(tenantId);
    if (s === undefined) {
      s = this.slots.size;
      if (s >= this.maxTenants) throw new Error(`the shared tenant table is full (${this.maxTenants} tenants)`);
      this.slots.set(tenantId, s);
    }
    return s;
  }

  assignments(): Record<string, number> {
    return Object.fromEntries(this.slots);
  }

  bucketCell(slot: number): MeterCell {
    const at = slot * SharedTenantMeters.PER_SLOT;
    return new MeterCell(this.values.subarray(at, at + TOKEN_BUCKET_CELLS), this.locks.subarray(slot * 2, slot * 2 + 1), true);
  }

  cpuCell(slot: number): MeterCell {
    const at = slot * SharedTenantMeters.PER_SLOT + TOKEN_BUCKET_CELLS;
    return new MeterCell(this.values.subarray(at, at + CPU_WINDOW_CELLS), this.locks.subarray(slot * 2 + 1, slot * 2 + 2), true);
  }
}
