/**
 * A warm reactor instance living in one executor (see engine.ts's Reactor).
 * Calls run one at a time, in the order made. When a call traps or hits a
 * limit, or the executor is lost (another instance's deadline terminated
 * it), the instance is gone: the next call transparently starts a fresh one
 * (from the snapshot when the reactor has one) and `restarts` counts it.
 * Calls queued behind a lost executor had not started and are retried on
 * the fresh instance.
 */
import { ExecutorLostError, type ExecutorHandle } from "./executor.js";
import type { GuestOutcome } from "./guest.js";
import type { PortableExtensions } from "./host-calls.js";
import { resolveLimits, type ResolvedLimits } from "./limits.js";
import type { PreparedModule } from "./modules.js";
import type { ReactorArg } from "./reactor-abi.js";
import { lostOutcome, ReactorStartError, type CallOptions, type CallResult, type Reactor, type RunOptions } from "./engine.js";
import type { ExecutorPool } from "./executor-pool.js";

export class ExecutorReactor implements Reactor {
  private executor: ExecutorHandle | undefined;
  private instanceId = 0;
  private chain: Promise<unknown> = Promise.resolve();
  /** The extension session of this reactor's instances (one for its lifetime, restarts included). */
  private readonly session: PortableExtensions | undefined;
  /** Fresh instances started after the first one. */
  restarts = -1;
  closed = false;

  constructor(
    private readonly pool: ExecutorPool,
    readonly prepared: PreparedModule,
    private readonly options: RunOptions,
    readonly limits: ResolvedLimits,
  ) {
    this.session = options.extensions ? pool.hostCalls.open(options.extensions) : undefined;
  }

  /** The executor the live instance is on (undefined when none is live). */
  get executorId(): number | undefined {
    return this.live ? this.executor!.id : undefined;
  }

  /** Whether the instance is live now (false after a trap, a limit or a lost executor). */
  get live(): boolean {
    return this.executor !== undefined && this.executor.alive && this.executor.instances.has(this.instanceId);
  }

  /** @internal */
  async start(): Promise<GuestOutcome> {
    const { executor, instanceId, outcome } = await this.pool.startInstance(this.prepared, this.options, this.limits, this.session);
    if (outcome.reason !== "exit") throw new ReactorStartError(outcome);
    this.executor = executor;
    this.instanceId = instanceId;
    this.restarts++;
    return outcome;
  }

  /** Calls an exported function (see the call ABI in guest.ts). Never rejects for what the guest does: see `outcome`. */
  call(name: string, args: readonly ReactorArg[] = [], options: CallOptions = {}): Promise<CallResult> {
    const run = this.chain.then(() => this.callNow(name, args, options));
    this.chain = run.catch(() => {});
    return run;
  }

  private async callNow(name: string, args: readonly ReactorArg[], options: CallOptions): Promise<CallResult> {
    if (this.closed) throw new Error("the reactor is closed");
    const limits = resolveLimits({ ...options.limits }, this.limits);
    const started = performance.now();
    for (let attempt = 0; ; attempt++) {
      if (!this.live) {
        try {
          await this.start();
        } catch (err) {
          // A fresh instance could not start (its initializer trapped, say): that is this call's outcome.
          if (err instanceof ReactorStartError) return { value: undefined, outcome: err.outcome };
          return { value: undefined, outcome: lostOutcome(err, limits, started, err instanceof ExecutorLostError) };
        }
      }
      const ex = this.executor!;
      const id = this.instanceId;
      try {
        const reply = await this.pool.submitTo(
          ex,
          () => ({ op: "call", instanceId: id, name, args: [...args], result: options.result ?? "value", limits }),
          limits.timeoutMs,
          { limits, ...(this.options.onTrace ? { onTrace: this.options.onTrace } : {}) },
        );
        const outcome = this.pool.inOriginal(reply.outcome!, this.prepared.key);
        if (outcome.reason !== "exit" || !ex.alive) ex.instances.delete(id);
        return { value: reply.value, outcome };
      } catch (err) {
        // Lost before it started: nothing ran, so trying again on a fresh instance is safe.
        if (err instanceof ExecutorLostError && !err.started && attempt < 2) continue;
        ex.instances.delete(id);
        return { value: undefined, outcome: lostOutcome(err, limits, started, err instanceof ExecutorLostError) };
      }
    }
  }

  /** Drops the instance; later calls fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.pool.hostCalls.close(this.session);
    const ex = this.executor;
    if (ex && this.live) {
      ex.instances.delete(this.instanceId);
      const id = this.instanceId;
      await this.pool.submitTo(ex, () => ({ op: "drop", instanceId: id }), Infinity).catch(() => {});
    }
  }
}
