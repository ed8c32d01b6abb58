/**
 * JetStream KV buckets the cluster keeps its soft state in (membership,
 * scheduler lease, placements, replica status), each mirrored in memory on
 * every node by a watch, so that reading it is a map lookup.
 */
import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm, type KV } from "@nats-io/kv";

export interface BucketOptions {
  /** Entries older than this disappear (ms); 0 = never. */
  ttlMs?: number;
  /** JetStream replicas. */
  replicas: number;
}

/** Opens a bucket, creating it the first time (every node asks with the same settings). */
export async function openBucket(nc: NatsConnection, name: string, opts: BucketOptions): Promise<KV> {
  return new Kvm(nc).create(name, { history: 1, replicas: opts.replicas, ...(opts.ttlMs ? { ttl: opts.ttlMs } : {}) });
}

export interface WatchedEntry<T> {
  value: T;
  revision: number;
  /** When this node learnt of the entry's current value (local clock), ms. */
  seenAt: number;
}

/**
 * A bucket's current entries, kept up to date by a watch; `onChange` runs
 * after each applied update. Values are JSON; a value that does not parse is
 * ignored (only cluster members can write here).
 */
export class WatchedBucket<T> {
  readonly entries = new Map<string, WatchedEntry<T>>();
  private stopped = false;
  private iter: { stop(): void } | undefined;
  private readonly listeners = new Set<(key: string, entry: WatchedEntry<T> | undefined) => void>();
  private readyResolve!: () => void;
  /** Resolves once the entries that existed when the watch started are loaded. */
  readonly ready = new Promise<void>((r) => (this.readyResolve = r));

  constructor(readonly kv: KV) {}

  /**
   * Watches the bucket: its current entries first, then every change. If the
   * watch ends (the servers were gone too long), it starts again and drops
   * the entries that are no longer there.
   */
  async start(): Promise<void> {
    const expected = (await this.kv.status()).values;
    const iter = await this.kv.watch();
    this.iter = iter;
    const fresh = new Set<string>();
    let initial = true;
    let received = 0;
    const loaded = () => {
      if (!initial) return;
      initial = false;
      for (const key of [...this.entries.keys()]) {
        if (!fresh.has(key)) {
          this.entries.delete(key);
          this.emit(key, undefined);
        }
      }
      this.readyResolve();
    };
    if (expected === 0) loaded();
    const fallback = setTimeout(loaded, 2000); // entries deleted between status() and watch() never arrive
    fallback.unref();
    void (async () => {
      for await (const e of iter) {
        if (this.stopped) break;
        received++;
        if (initial) fresh.add(e.key);
        if (e.operation !== "PUT") {
          this.entries.delete(e.key);
          this.emit(e.key, undefined);
        } else {
          let value: T | undefined;
          try {
            value = e.json<T>();
          } catch {
            value = undefined;
          }
          if (value !== undefined) {
            // An entry that was there before the watch started was last written at its `created` time, not now.
            const seenAt = initial ? Math.min(Date.now(), e.created.getTime()) : Date.now();
            const entry = { value, revision: e.revision, seenAt };
            this.entries.set(e.key, entry);
            this.emit(e.key, entry);
          }
        }
        if (initial && (received >= expected || e.isUpdate)) loaded();
      }
    })()
      .catch(() => undefined)
      .finally(() => {
        clearTimeout(fallback);
        if (!this.stopped) this.restartSoon();
      });
  }

  private restartSoon(): void {
    setTimeout(() => {
      if (!this.stopped) this.start().catch(() => this.restartSoon());
    }, 1000).unref();
  }

  onChange(fn: (key: string, entry: WatchedEntry<T> | undefined) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private emit(key: string, entry: WatchedEntry<T> | undefined): void {
    for (const l of this.listeners) {
      try {
        l(key, entry);
      } catch {
        // a listener's failure is its own
      }
    }
  }

  get(key: string): WatchedEntry<T> | undefined {
    return this.entries.get(key);
  }

  stop(): void {
    this.stopped = true;
    this.iter?.stop();
  }
}
