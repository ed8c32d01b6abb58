/**
 * Tiers on a node: one runner that places each app on its tier's executors.
 * The isolate tier is the node's ordinary runner (worker threads, and the
 * serving thread for inline apps); each sandboxed tier (process, gvisor) gets
 * its own executor pool, made when the first app on it is deployed, whose
 * executors are sandboxed processes kept warm: `executors` of them booted and
 * waiting, plus a spare the launcher keeps booted, so neither a request nor
 * the replacement of a lost executor waits for a process and a sandbox to
 * start. A request names its tier in its limits (`tier`, set by the manager
 * from the app's, the tenant's and the node's minimum).
 */
import { ExecutorPool } from "../sandbox/executor-pool.js";
import { SandboxLauncher } from "../sandbox/tiers/sandbox-launcher.js";
import { tierUnavailable, type Tier } from "../sandbox/tiers/tier.js";
import { EngineRunner } from "./executor-pool-runner.js";
import type { Limits } from "../limits.js";
import type { CommandRequest, InstanceRunner, ModuleRef, PrepareReport, ReactorHandle, ReactorStart, RunOutcome } from "./runner.js";
import type { Placement } from "./placement.js";

type SandboxedTier = Exclude<Tier, "isolate">;

export interface TierRunnerOptions {
  /** Executors per sandboxed tier (processes kept running). Default: the base runner's executors. */
  executors?: number;
  /** Booted spare processes per sandboxed tier, for replacements. Default 1. */
  spares?: number;
}

/** What a sandboxed tier's pool looks like, for /v1/node and the benchmarks. */
export interface TierPoolInfo {
  tier: SandboxedTier;
  executors: number;
  ready: number;
  busy: number;
  replaced: number;
  /** Pids of its executor processes (the crash-containment test kills one). */
  pids: number[];
  /** Those running a request now. */
  busyPids: number[];
}

export class TierRunner implements InstanceRunner {
  readonly name: string;
  readonly executors: number;
  readonly inline?: boolean;
  private readonly sandboxed = new Map<SandboxedTier, { runner: EngineRunner; pool: ExecutorPool; launcher: SandboxLauncher }>();
  private closed = false;

  constructor(
    /** The isolate tier (the node's ordinary runner). */
    readonly base: InstanceRunner,
    private readonly options: TierRunnerOptions = {},
  ) {
    this.name = base.name;
    // The fair scheduler's slots stay the node's: sandboxed executors share the same CPUs.
    this.executors = base.executors;
    if (base.inline) this.inline = true;
  }

  /** Why `tier` cannot run on this node, or undefined. */
  unavailable(tier: Tier): string | undefined {
    return tierUnavailable(tier);
  }

  /** The runner of `tier`; a sandboxed tier's pool is made (and starts booting) on first use. */
  private of(limits: Limits | undefined): InstanceRunner {
    const tier = limits?.tier ?? "isolate";
    if (tier === "isolate") return this.base;
    let t = this.sandboxed.get(tier);
    if (!t) {
      if (this.closed) throw new Error("the runner is closed");
      const launcher = new SandboxLauncher(tier, { spares: this.options.spares ?? 1 });
      const pool = new ExecutorPool({ size: this.options.executors ?? this.base.executors, launcher });
      t = { runner: new EngineRunner(pool, `${tier}-pool(${pool.size})`, pool.size), pool, launcher };
      this.sandboxed.set(tier, t);
    }
    return t.runner;
  }

  /** Makes `tier`'s pool now and waits until its executors have booted (a node with a minimum tier, tests, benchmarks). */
  async warm(tier: Tier): Promise<void> {
    this.of({ tier });
    const t = tier === "isolate" ? undefined : this.sandboxed.get(tier);
    if (t) await Promise.all([t.pool.whenReady(), t.launcher.whenWarm()]);
  }

  /** The sandboxed tiers' pools made so far. */
  tierPools(): TierPoolInfo[] {
    return [...this.sandboxed].map(([tier, { pool }]) => {
      const s = pool.stats();
      return { tier, executors: s.executors, ready: s.ready, busy: s.busy, replaced: s.replaced, pids: pool.processes().map((p) => p.pid), busyPids: pool.processes().flatMap((p) => (p.busy ? [p.pid] : [])) };
    });
  }

  prepare(module: ModuleRef, limits?: Limits, placement?: Placement): Promise<PrepareReport> {
    return this.of(limits).prepare(module, limits, placement);
  }

  runCommand(req: CommandRequest): Promise<RunOutcome> {
    return this.of(req.limits).runCommand(req);
  }

  startReactor(req: ReactorStart): Promise<ReactorHandle> {
    return this.of(req.limits).startReactor(req);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([this.base.close(), ...[...this.sandboxed.values()].map((t) => t.runner.close())]);
    await Promise.all([...this.sandboxed.values()].map((t) => t.launcher.close()));
  }
}
