/**
 * Pacing: keeping one tenant to its share of a resource while others use it
 * too, from moment to moment. Quotas bound a tenant per minute
 * (`cpuMsPerMinute`) and the fair scheduler bounds the executors it holds,
 * but neither stops a tenant from taking most of the machine *now*: a guest
 * spinning to its deadline, cheap requests back to back, or a flood of output
 * or KV writes that the serving thread works through for it. A pacer is a
 * tenant's token bucket of a resource's time: it refills at the tenant's
 * share and holds at most a burst, so ordinary work goes through at once; a
 * tenant that overspends is told how long to wait. A tenant alone is never
 * slowed (there is nobody to wait for) and starts with a full burst when
 * others come. The share is the tenant's weight over the weight of the
 * tenants active now (FairScheduler.threadShare), of:
 *
 * - **the node's CPU** (`cpuPacer`): its executor time and serving-thread time
 *   against `share ×` the cores its guests share (the machine's less those the
 *   serving threads need). A request of a tenant in debt waits before it is
 *   scheduled (holding nothing), or is refused when the wait is longer than
 *   it may queue (429 `tenant_cpu_exhausted`).
 * - **the serving thread** (`threadPacer`): the bulk work it does for a
 *   tenant's guests on executors, relaying their output and answering their
 *   extension provider calls, against `BULK_SHARE × share`: the rest stays
 *   free for what every request needs of it (reading, routing, dispatching,
 *   answering). Its wait parks the guest on its executor (its output is
 *   taken later, its provider call answered later), within its own deadline.
 */

/** The share of a resource a tenant alone gets: all of it, never a wait. */
export const ALONE = Infinity;

/** Serving-thread time a tenant may spend at once beyond its share, ms. */
export const THREAD_BURST_MS = 8;

/** Part of the serving thread the bulk work of all tenants may take while more than one is active. */
export const BULK_SHARE = 0.5;

/** CPU time (executors and serving thread) a tenant may spend at once beyond its share, ms: an ordinary request never waits. */
export const CPU_BURST_MS = 250;

/**
 * What relaying a byte of a guest's output costs the serving thread beyond
 * the timed sink call, ms: taking the piece from the executor's ring, the
 * socket write Node defers to the next tick (most of it in the kernel). On
 * this project's 2-core VM a 16 MiB flood costs the thread ~16-18 ms of CPU
 * (user + system, /proc/PID/task/PID/stat), of which ~2 ms falls in the
 * timed calls; `node dist/bench/flood-charge.js 16` measures it.
 */
export const RELAY_MS_PER_BYTE = 1.1e-6;

/**
 * Not rate.ts's TokenBucket, which counts whole requests at a fixed rate in a
 * cell the serving threads share: this one spends amounts of time at a rate
 * that changes with who is active, on the main thread only.
 */
export class SharePacer {
  /** Time the tenant may still spend now, ms (negative: it overspent). */
  private credit: number;
  private at = performance.now();

  /**
   * `share()`: ms of the resource per ms of wall time the tenant is due now
   * (ALONE: no limit); `burstMs`: the most it may bank.
   */
  constructor(
    private readonly share: () => number,
    private readonly burstMs: number,
  ) {
    this.credit = burstMs;
  }

  /** Charges `ms` of the resource; returns how long the tenant should wait before it uses it again, ms (0: no wait). */
  spend(ms: number, now = performance.now()): number {
    const share = this.share();
    if (share === ALONE) {
      this.credit = this.burstMs;
      this.at = now;
      return 0;
    }
    // `ms` was used over (at least) the last `ms` of wall time, when its share accrued too;
    // only the time before that was idle, and idle time banks at most the burst.
    const elapsed = Math.max(0, now - this.at);
    const during = Math.min(ms, elapsed);
    this.credit = Math.min(this.burstMs, this.credit + (elapsed - during) * share) + during * share - ms;
    this.at = now;
    return this.credit >= 0 ? 0 : -this.credit / share;
  }

  /** How long until the tenant is within its share again, ms (0: now). */
  due(now = performance.now()): number {
    return this.spend(0, now);
  }
}

/** A tenant's share of the serving thread's bulk work, from its weight share (1: alone). */
export function threadShare(weightShare: number): number {
  return weightShare >= 1 ? ALONE : weightShare * BULK_SHARE;
}

/** A tenant's share of the node's CPU, in cores, from its weight share (1: alone). */
export function cpuShare(weightShare: number, cores: number): number {
  return weightShare >= 1 ? ALONE : weightShare * cores;
}

/** A promise settled after `ms` (the pause a pacer asked for). */
export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
