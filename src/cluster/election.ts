/**
 * One scheduler at a time, elected through JetStream: the leader holds a key
 * in a KV bucket whose entries expire after `leaseMs`. A candidate takes the
 * key with `create` (refused while it exists); the leader renews it with
 * `update` on the revision it holds (refused if anyone else wrote it). When the
 * leader dies its key expires and the next candidate to try gets it.
 */
import type { KV } from "@nats-io/kv";

export const LEADER_BUCKET = "uniwasm-leader";
const KEY = "scheduler";

export interface LeaseHolder {
  name: string;
  instance: string;
}

export interface ElectionOptions {
  /** How often to renew or try, ms. */
  intervalMs: number;
  onChange?: (leader: boolean) => void;
}

export class Election {
  private revision = 0;
  private timer: NodeJS.Timeout | undefined;
  private leading = false;
  private busy = false;

  constructor(
    private readonly kv: KV,
    private readonly me: LeaseHolder,
    private readonly opts: ElectionOptions,
  ) {}

  get isLeader(): boolean {
    return this.leading;
  }

  /** Who holds the lease now (read from the bucket), or undefined. */
  async holder(): Promise<LeaseHolder | undefined> {
    const e = await this.kv.get(KEY);
    if (!e || e.operation !== "PUT") return undefined;
    try {
      return e.json<LeaseHolder>();
    } catch {
      return undefined;
    }
  }

  start(): void {
    void this.tick();
    this.timer = setInterval(() => void this.tick(), this.opts.intervalMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const value = JSON.stringify(this.me);
      if (this.leading) {
        try {
          this.revision = await this.kv.update(KEY, value, this.revision);
        } catch {
          this.set(false); // someone else holds it now, or NATS is away: stop scheduling until the lease is ours again
        }
      } else {
        try {
          this.revision = await this.kv.create(KEY, value);
          this.set(true);
        } catch {
          // held by another node
        }
      }
    } finally {
      this.busy = false;
    }
  }

  private set(leader: boolean): void {
    if (leader === this.leading) return;
    this.leading = leader;
    this.opts.onChange?.(leader);
  }

  /** Gives the lease up (a clean stop): another node takes over at its next try. */
  async resign(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.leading) {
      this.set(false);
      await this.kv.delete(KEY, { previousSeq: this.revision }).catch(() => undefined);
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.leading = false;
  }
}
