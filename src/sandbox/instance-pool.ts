/**
 * A pool of warm reactor instances of one module, so that a request never
 * waits for instantiation or initialization: `acquire` hands out an instance
 * that is already initialized (from a snapshot by default, so refilling costs
 * a memory copy, not the initializer), `release` either keeps it warm for the
 * next request (`reuse`) or drops it and starts a fresh one in the background
 * (the default: no state leaks from one request to the next).
 */
import { ExecutorPool, type ModuleSource, type Reactor, type RunOptions, WasmImage } from "./executor-pool.js";
import type { Snapshot } from "./snapshot.js";

export interface InstancePoolOptions extends Omit<RunOptions, "snapshot"> {
  /** Warm instances kept ready. Default 4. */
  size?: number;
  /**
   * Start instances from this snapshot; `"auto"` (default) takes one at
   * `start()`, `"none"` runs the initializer for every instance.
   */
  snapshot?: Snapshot | "auto" | "none";
}

export class InstancePool {
  readonly size: number;
  private readonly idle: Reactor[] = [];
  private readonly waiters: ((r: Reactor) => void)[] = [];
  private snapshot: Snapshot | undefined;
  private refilling = 0;
  private closed = false;
  private readonly image: WasmImage;
  /** Instances handed out, and instances started, since creation. */
  readonly counters = { acquired: 0, started: 0, waited: 0 };

  constructor(
    private readonly pool: ExecutorPool,
    source: ModuleSource,
    private readonly options: InstancePoolOptions = {},
  ) {
    this.size = Math.max(1, options.size ?? 4);
    this.image = source instanceof WasmImage ? source : new WasmImage(source);
  }

  /** Takes the snapshot (unless told not to) and fills the pool. */
  async start(): Promise<void> {
    const s = this.options.snapshot ?? "auto";
    if (s === "auto") this.snapshot = await this.pool.snapshot(this.image, this.runOptions());
    else if (s !== "none") this.snapshot = s;
    await Promise.all(Array.from({ length: this.size }, () => this.startOne()));
  }

  private runOptions(): RunOptions {
    const { size: _s, snapshot: _n, ...rest } = this.options;
    return this.snapshot ? { ...rest, snapshot: this.snapshot } : rest;
  }

  private async startOne(): Promise<void> {
    const r = await this.pool.reactor(this.image, this.runOptions());
    this.counters.started++;
    if (this.closed) return void (await r.close());
    const w = this.waiters.shift();
    if (w) w(r);
    else this.idle.push(r);
  }

  private refill(): void {
    // Enough starting to refill the pool and serve everyone waiting.
    while (!this.closed && this.idle.length + this.refilling < this.size + this.waiters.length) {
      this.refilling++;
      this.startOne()
        .catch(() => {})
        .finally(() => {
          this.refilling--;
          if (this.waiters.length > 0) this.refill();
        });
    }
  }

  /** A warm instance: at once when one is idle, else the next one started. */
  acquire(): Promise<Reactor> {
    if (this.closed) return Promise.reject(new Error("the instance pool is closed"));
    this.counters.acquired++;
    const r = this.idle.shift();
    this.refill();
    if (r) return Promise.resolve(r);
    this.counters.waited++;
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.refill();
    });
  }

  /**
   * Gives an instance back. `reuse: true` keeps it warm as it is (state and
   * all); otherwise it is dropped and a fresh one takes its place.
   */
  async release(r: Reactor, opts: { reuse?: boolean } = {}): Promise<void> {
    if (opts.reuse && r.live && !this.closed) {
      const w = this.waiters.shift();
      if (w) return w(r);
      // The reused instance goes first; a surplus fresh one is dropped.
      this.idle.unshift(r);
      if (this.idle.length > this.size) await this.idle.pop()!.close();
      return;
    }
    await r.close();
    this.refill();
  }

  get idleCount(): number {
    return this.idle.length;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.idle.splice(0).map((r) => r.close()));
  }
}
