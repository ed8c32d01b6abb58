/**
 * Membership: every node writes a heartbeat (its name, zone, URLs, memory
 * budget and what it has in use) into a KV bucket every `heartbeatMs`; a node
 * whose heartbeat has not been seen for `deadAfterMs` is dead, and the bucket
 * forgets it altogether after a while (its TTL). A node that stops cleanly
 * deletes its entry, so its replicas move at once.
 */
import type { KV } from "@nats-io/kv";
import { WatchedBucket, type WatchedEntry } from "./kv.js";

export const NODES_BUCKET = "uniwasm-nodes";

export interface MemberInfo {
  name: string;
  zone: string;
  /** Random per process: tells a restarted node from the one that had its name before. */
  instance: string;
  /** The node's memory budget for live instances, MiB (what placement may fill). */
  memoryMiB: number;
  /** Memory reserved by live instances now, MiB. */
  reservedMiB: number;
  apiUrl: string;
  gatewayUrl: string;
  version: string;
  startedAt: number;
  /** When the heartbeat was written (the writer's clock), ms. */
  at: number;
}

export interface MembershipOptions {
  heartbeatMs: number;
  deadAfterMs: number;
  onError?: (err: Error) => void;
}

export class DuplicateNode extends Error {
  constructor(name: string, ageMs: number) {
    super(`node name ${name} is in use by a running node (heartbeat ${Math.round(ageMs)} ms ago); give each node its own --node-name`);
    this.name = "DuplicateNode";
  }
}

export class Membership {
  readonly members: WatchedBucket<MemberInfo>;
  private timer: NodeJS.Timeout | undefined;
  private failing = false;

  constructor(
    private readonly kv: KV,
    private readonly self: () => MemberInfo,
    private readonly opts: MembershipOptions,
  ) {
    this.members = new WatchedBucket<MemberInfo>(kv);
  }

  get name(): string {
    return this.self().name;
  }

  /** Announces this node (refusing a name another live node holds), then keeps announcing it. */
  async join(): Promise<void> {
    await this.members.start();
    await this.members.ready;
    const me = this.self();
    const cur = this.members.get(me.name);
    if (cur && cur.value.instance !== me.instance && Date.now() - cur.seenAt < this.opts.deadAfterMs) throw new DuplicateNode(me.name, Date.now() - cur.seenAt);
    await this.kv.put(me.name, JSON.stringify(me));
    this.timer = setInterval(() => void this.beat(), this.opts.heartbeatMs);
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    try {
      await this.kv.put(this.self().name, JSON.stringify({ ...this.self(), at: Date.now() }));
      this.failing = false;
    } catch (err) {
      // NATS is away: the node keeps serving what it runs; report once per outage.
      if (!this.failing) this.opts.onError?.(new Error(`heartbeat failed: ${(err as Error).message}`));
      this.failing = true;
    }
  }

  /** Live members: heard from within `deadAfterMs` (by this node's clock). */
  live(now = Date.now()): MemberInfo[] {
    const out: MemberInfo[] = [];
    for (const e of this.members.entries.values()) if (now - e.seenAt <= this.opts.deadAfterMs) out.push(e.value);
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Every member still in the bucket, with when it was last heard from. */
  all(): WatchedEntry<MemberInfo>[] {
    return [...this.members.entries.values()];
  }

  isLive(name: string, now = Date.now()): boolean {
    const e = this.members.get(name);
    return e !== undefined && now - e.seenAt <= this.opts.deadAfterMs;
  }

  /** Stops announcing and removes this node's entry (its replicas are re-placed at once). */
  async leave(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.members.stop();
    await this.kv.delete(this.self().name).catch(() => undefined);
  }

  /** Stops announcing without saying goodbye (tests: a node that dies). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.members.stop();
  }
}
