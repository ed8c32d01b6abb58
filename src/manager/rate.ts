/** Token bucket: `rate` tokens per second, holding at most `burst`. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(public rate: number, public burst: number, now = Date.now()) {
    this.tokens = burst;
    this.last = now;
  }

  /** Takes one token; returns 0 when allowed, else the seconds until one is available. */
  take(now = Date.now()): number {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return this.rate > 0 ? (1 - this.tokens) / this.rate : 60;
  }

  /**
   * Counts `n` requests admitted elsewhere (other nodes of a cluster) against
   * this bucket: it may go into debt, down to -burst, so that every node's
   * bucket follows the tenant's rate across the cluster.
   */
  charge(n: number, now = Date.now()): void {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    this.tokens = Math.max(-this.burst, this.tokens - n);
  }
}

/** Executor milliseconds used over a rolling minute, in one-second buckets. */
export class CpuWindow {
  private readonly buckets = new Float64Array(60);
  private readonly stamps = new Float64Array(60);
  // used() runs on every request: its sum is kept for the current second and
  // recomputed (60 buckets) only when the second changes or a bucket is reused.
  private cachedSec = NaN;
  private cachedSum = 0;

  add(ms: number, now = Date.now()): void {
    const sec = Math.floor(now / 1000);
    const i = sec % 60;
    if (this.stamps[i] !== sec) {
      this.stamps[i] = sec;
      this.buckets[i] = 0;
      this.cachedSec = NaN;
    }
    this.buckets[i]! += ms;
    if (this.cachedSec === sec) this.cachedSum += ms;
    else this.cachedSec = NaN;
  }

  /** Milliseconds used in the last 60 seconds. */
  used(now = Date.now()): number {
    const sec = Math.floor(now / 1000);
    if (sec === this.cachedSec) return this.cachedSum;
    let sum = 0;
    for (let i = 0; i < 60; i++) if (sec - this.stamps[i]! < 60) sum += this.buckets[i]!;
    this.cachedSec = sec;
    this.cachedSum = sum;
    return sum;
  }

  /** Seconds until usage drops below `limit` (at least 1). */
  retryAfter(limit: number, now = Date.now()): number {
    const sec = Math.floor(now / 1000);
    let used = this.used(now);
    for (let ahead = 1; ahead <= 60; ahead++) {
      const expiring = (sec - 60 + ahead) % 60;
      const i = ((expiring % 60) + 60) % 60;
      if (sec - this.stamps[i]! < 60 && this.stamps[i] === sec - 60 + ahead) used -= this.buckets[i]!;
      if (used < limit) return ahead;
    }
    return 60;
  }
}
