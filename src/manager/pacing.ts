/**
 * Serving-thread pacing. The node's serving thread is shared by every tenant,
 * and part of its work is done for one tenant's guest running on an executor:
 * relaying its output to the client, answering its extension provider calls
 * (KV on SQLite, outbound HTTP). That time is timed and charged to the tenant
 * (TenantRuntime.hostMs), which bounds it per minute (`cpuMsPerMinute`) but
 * not from moment to moment: a guest flooding output or KV writes could keep
 * the thread busy and every other tenant's requests would wait behind it.
 *
 * A pacer is a tenant's token bucket of serving-thread time. It refills at the
 * tenant's share of the thread and holds at most BURST_MS, so an ordinary
 * large response goes through at once. A tenant alone has the whole thread
 * (it is never slowed for nobody). With others active, this bulk work of all
 * tenants together keeps to BULK_SHARE of the thread, split by weight: the
 * rest stays free for what every request needs of it (reading, routing,
 * dispatching, answering), so that the others' latency holds.
 *
 * A tenant that overspends is told how long to wait: its guest parks on its
 * executor meanwhile (its output is taken later, its provider call answered
 * later), within its own deadline, costing no other tenant anything.
 */

/** Serving-thread time a tenant may spend at once beyond its share, ms. */
export const BURST_MS = 8;

/** Part of the serving thread the bulk work of all tenants may take while more than one is active. */
export const BULK_SHARE = 0.5;

/**
 * What relaying a byte of a guest's output costs the serving thread beyond
 * the timed sink call, ms: taking the piece from the executor's ring, the
 * socket write Node defers to the next tick (most of it in the kernel). On
 * this project's 2-core VM a 16 MiB flood costs the thread ~18 ms of CPU
 * (user + system, /proc/PID/task/PID/stat), of which ~1 ms falls in the
 * timed calls; bench/flood-charge.ts measures it.
 */
export const RELAY_MS_PER_BYTE = 1.1e-6;

export class ServingThreadPacer {
  /** Serving-thread time the tenant may still spend now, ms (negative: it overspent). */
  private credit = BURST_MS;
  private at = performance.now();

  /** `weightShare()`: the tenant's weight over the weight of the tenants active now, in (0, 1]. */
  constructor(private readonly weightShare: () => number) {}

  /** Charges `ms` of serving-thread time; returns how long the tenant's guest should wait before it makes the thread work again, ms (0: no wait). */
  spend(ms: number, now = performance.now()): number {
    const w = this.weightShare();
    if (w >= 1) {
      // Alone: nobody to wait for, and it starts with a full burst when others come.
      this.credit = BURST_MS;
      this.at = now;
      return 0;
    }
    const share = w * BULK_SHARE;
    this.credit = Math.min(BURST_MS, this.credit + (now - this.at) * share) - ms;
    this.at = now;
    return this.credit >= 0 ? 0 : -this.credit / share;
  }
}

/** A promise settled after `ms` (the pause a pacer asked for). */
export function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
