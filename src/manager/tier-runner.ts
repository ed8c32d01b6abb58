/**
 * Tiers on a node: one runner that places each app on its tier's executors.
 * The isolate tier is the node's ordinary runner (worker threads, and the
 * serving thread for inline apps). On a sandboxed tier (process, gvisor) an
 * executor process serves one tenant only: each tenant gets its own executor
 * pool per tier, made when it first needs one, so a guest that escapes V8
 * reaches its own tenant's guests and nobody else's, and a process that dies
 * takes down only its own tenant's work.
 *
 * Bounded: a tenant's pool holds at most `executors` processes; all pools
 * together at most `maxProcesses` (a new pool first closes the least
 * recently used idle ones, then gets what is left, at least one, or the
 * request is refused with node_overloaded); a pool with no work and no warm
 * reactor for `idleMs` is closed. Each sandboxed tier's launcher keeps
 * `spares` processes booted and belonging to nobody: the first pool that
 * needs a process (a new tenant, a replacement) takes one and it is then that
 * tenant's, so neither waits for a process and a sandbox to start.
 * A request names its tier in its limits (`tier`, set by the manager from the
 * app's, the tenant's and the node's minimum) and its tenant in `tenant`.
 */
import { ExecutorPool } from "../sandbox/executor-pool.js";
import { SandboxLauncher } from "../sandbox/tiers/sandbox-launcher.js";
import { tierUnavailable, type Tier } from "../sandbox/tiers/tier.js";
import { EngineRunner } from "./executor-pool-runner.js";
import { Refusal } from "./refusal.js";
import type { Limits } from "../limits.js";
import type { CommandRequest, InstanceRunner, ModuleRef, PrepareReport, ReactorHandle, ReactorStart, RunOutcome } from "./runner.js";
import type { Placement } from "./placement.js";

type SandboxedTier = Exclude<Tier, "isolate">;

/** The pool of a request that names no tenant (an embedder's own runs): never one of a tenant's. */
const NO_TENANT = "";

export interface TierRunnerOptions {
  /** Executor processes one tenant's pool holds on a sandboxed tier. Default: the base runner's executors. */
  executors?: number;
  /** Booted spare processes per sandboxed tier, owned by no tenant until one takes it. Default 1. */
  spares?: number;
  /** The most executor processes in tenants' pools on this node, every sandboxed tier together (spares not counted). Default: 4 × executors. */
  maxProcesses?: number;
  /** A tenant's pool with no work in flight and no warm reactor for this long is closed, ms. Default 60 000. */
  idleMs?: number;
}

/** What one tenant's pool on a sandboxed tier looks like, for /v1/node, the tests and the benchmarks. */
export interface TierPoolInfo {
  tier: SandboxedTier;
  /** The tenant it serves (id; "" for runs that name none). */
  tenant: string;
  executors: number;
  ready: number;
  busy: number;
  replaced: number;
  /** Pids of its executor processes (the crash-containment test kills one). */
  pids: number[];
  /** Those running a request now. */
  busyPids: number[];
  /** Requests and preparations in flight, and warm reactor instances it hosts. */
  active: number;
  reactors: number;
  /** Since its last use, ms. */
  idleMs: number;
}

/** One tenant's executors on one sandboxed tier. */
interface TenantPool {
  tier: SandboxedTier;
  tenant: string;
  runner: EngineRunner;
  pool: ExecutorPool;
  size: number;
  active: number;
  reactors: number;
  lastUsed: number;
}

export class TierRunner implements InstanceRunner {
  readonly name: string;
  readonly executors: number;
  readonly inline?: boolean;
  /** Processes in one tenant's pool, and in all of them. */
  readonly perTenant: number;
  readonly maxProcesses: number;
  readonly idleMs: number;
  private readonly launchers = new Map<SandboxedTier, SandboxLauncher>();
  /** Keyed by tier and tenant (poolKey). */
  private readonly pools = new Map<string, TenantPool>();
  private reaper: NodeJS.Timeout | undefined;
  /** Pools closed because they were idle (or made room), since start. */
  private reaped = 0;
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
    this.perTenant = Math.max(1, Math.floor(options.executors ?? base.executors));
    this.maxProcesses = Math.max(1, Math.floor(options.maxProcesses ?? 4 * this.perTenant));
    this.idleMs = Math.max(0, options.idleMs ?? 60_000);
  }

  /** Why `tier` cannot run on this node, or undefined. */
  unavailable(tier: Tier): string | undefined {
    return tierUnavailable(tier);
  }

  private launcher(tier: SandboxedTier): SandboxLauncher {
    let l = this.launchers.get(tier);
    if (!l) {
      if (this.closed) throw new Error("the runner is closed");
      l = new SandboxLauncher(tier, { spares: this.options.spares ?? 1 });
      this.launchers.set(tier, l);
    }
    return l;
  }

  /** `tenant`'s pool on `tier`, made (taking the tier's spare first) when it has none. */
  private poolOf(tier: SandboxedTier, tenant: string): TenantPool {
    const key = poolKey(tier, tenant);
    const have = this.pools.get(key);
    if (have) return have;
    const launcher = this.launcher(tier);
    // Room for a full pool: idle pools go first, least recently used first.
    let free = this.maxProcesses - this.held();
    for (const idle of [...this.pools.values()].filter(isIdle).sort((a, b) => a.lastUsed - b.lastUsed)) {
      if (free >= this.perTenant) break;
      free += processesOf(idle);
      this.reap(idle);
    }
    if (free < 1) {
      throw new Refusal("node_overloaded", `this node's ${this.maxProcesses} sandboxed executor processes (serve --tier-max-processes) all serve other tenants' work now; try again`, 1);
    }
    const size = Math.min(this.perTenant, free);
    const pool = new ExecutorPool({ size, launcher });
    const p: TenantPool = { tier, tenant, runner: new EngineRunner(pool, `${tier}-pool(${size})`, size), pool, size, active: 0, reactors: 0, lastUsed: Date.now() };
    this.pools.set(key, p);
    this.startReaper();
    return p;
  }

  /** Processes held by tenants' pools. */
  private held(): number {
    let n = 0;
    for (const p of this.pools.values()) n += processesOf(p);
    return n;
  }

  private reap(p: TenantPool): void {
    this.pools.delete(poolKey(p.tier, p.tenant));
    this.reaped++;
    void p.runner.close().catch(() => {});
  }

  private startReaper(): void {
    if (this.reaper) return;
    this.reaper = setInterval(() => {
      const now = Date.now();
      for (const p of [...this.pools.values()]) if (isIdle(p) && now - p.lastUsed >= this.idleMs) this.reap(p);
      if (this.pools.size === 0) {
        clearInterval(this.reaper);
        this.reaper = undefined;
      }
    }, Math.max(20, Math.min(5000, this.idleMs / 2)));
    this.reaper.unref();
  }

  /** The pool a request runs on (undefined: the isolate tier, the base runner). */
  private of(limits: Limits | undefined, tenant: string | undefined): TenantPool | undefined {
    const tier = limits?.tier ?? "isolate";
    if (tier === "isolate") return undefined;
    if (this.closed) throw new Error("the runner is closed");
    return this.poolOf(tier, tenant ?? NO_TENANT);
  }

  /** Runs `work` counted as in flight on `p`, so the pool is not reaped under it. */
  private async use<T>(p: TenantPool, work: () => Promise<T>): Promise<T> {
    p.active++;
    try {
      return await work();
    } finally {
      p.active--;
      p.lastUsed = Date.now();
    }
  }

  /**
   * Boots `tier`'s spares, and `tenant`'s pool when given, and waits until
   * they are ready (a node with a minimum tier, tests, benchmarks).
   */
  async warm(tier: Tier, tenant?: string): Promise<void> {
    if (tier === "isolate") return;
    const launcher = this.launcher(tier);
    if (tenant !== undefined) await this.poolOf(tier, tenant).pool.whenReady();
    await launcher.whenWarm();
  }

  /** Tenants' pools on the sandboxed tiers now. */
  tierPools(): TierPoolInfo[] {
    const now = Date.now();
    return [...this.pools.values()].map((p) => {
      const s = p.pool.stats();
      const procs = p.pool.processes();
      return {
        tier: p.tier,
        tenant: p.tenant,
        executors: s.executors,
        ready: s.ready,
        busy: s.busy,
        replaced: s.replaced,
        pids: procs.map((x) => x.pid),
        busyPids: procs.flatMap((x) => (x.busy ? [x.pid] : [])),
        active: p.active,
        reactors: p.reactors,
        idleMs: now - p.lastUsed,
      };
    });
  }

  /** The bounds and how much of them is used (/v1/node). */
  tierProcesses(): { perTenant: number; maxProcesses: number; held: number; spares: number; idleMs: number; reaped: number } {
    return { perTenant: this.perTenant, maxProcesses: this.maxProcesses, held: this.held(), spares: this.options.spares ?? 1, idleMs: this.idleMs, reaped: this.reaped };
  }

  prepare(module: ModuleRef, limits?: Limits, placement?: Placement, tenant?: string): Promise<PrepareReport> {
    const p = this.of(limits, tenant);
    if (!p) return this.base.prepare(module, limits, placement, tenant);
    return this.use(p, () => p.runner.prepare(module, limits));
  }

  runCommand(req: CommandRequest): Promise<RunOutcome> {
    const p = this.of(req.limits, req.tenant);
    if (!p) return this.base.runCommand(req);
    return this.use(p, () => p.runner.runCommand(req));
  }

  async startReactor(req: ReactorStart): Promise<ReactorHandle> {
    const p = this.of(req.limits, req.tenant);
    if (!p) return this.base.startReactor(req);
    const handle = await this.use(p, () => p.runner.startReactor(req));
    // A warm reactor lives in one of the pool's processes: the pool stays while it does.
    p.reactors++;
    let open = true;
    return {
      handle: (request, sinks, limits) => this.use(p, () => handle.handle(request, sinks, limits)),
      memoryBytes: () => handle.memoryBytes(),
      ...(handle.executor ? { executor: () => handle.executor!() } : {}),
      close: async () => {
        if (open) {
          open = false;
          p.reactors--;
          p.lastUsed = Date.now();
        }
        await handle.close();
      },
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.reaper) clearInterval(this.reaper);
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all([this.base.close(), ...pools.map((p) => p.runner.close())]);
    await Promise.all([...this.launchers.values()].map((l) => l.close()));
  }
}

function poolKey(tier: SandboxedTier, tenant: string): string {
  return `${tier}\u0000${tenant}`;
}

/** A pool's processes: its size, or more while it runs an extra executor (another stack size) that it retires when idle. */
function processesOf(p: TenantPool): number {
  return Math.max(p.size, p.pool.stats().executors);
}

function isIdle(p: TenantPool): boolean {
  return p.active === 0 && p.reactors === 0;
}
