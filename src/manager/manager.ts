import { randomBytes } from "node:crypto";
import type { AppRecord, TenantQuotas } from "../store/types.js";
import type { GuestGrants, InstanceRunner, ModuleRef, OutputSinks, PrepareReport, RunOutcome, SinkResult } from "./runner.js";
import { availableParallelism } from "node:os";
import { CPU_BURST_MS, cpuShare, pause, RELAY_MS_PER_BYTE, SharePacer, THREAD_BURST_MS, threadShare } from "./pacing.js";
import type { ResolvedLimits } from "../limits.js";
import { RunnerError } from "./runner.js";
import { FairScheduler, SchedulerRejection, type Grant, type RunOptions, type TenantShare } from "./scheduler.js";
import { CpuWindow, TokenBucket, type SharedTenantMeters } from "./rate.js";
import { MemoryBudget, instanceMemoryBytes, type BudgetRefusal, type Reservation } from "./budget.js";
import { ReactorPool, type PooledInstance } from "./pool.js";
import { ControlError, Refusal } from "./refusal.js";
import { encodeReactorRequest } from "../sandbox/reactor-abi.js";
import { Supervisor, type BackoffOptions } from "./supervisor.js";
import { DEFAULT_TENANT_QUOTAS, effectiveQuotas } from "./quotas.js";
import { choosePlacement, DEFAULT_INLINE_FUEL, inlineLimits, INLINE_MAX_AVERAGE_SHARE, type PlacementChoice } from "./placement.js";
import type { RunExtensions } from "../sandbox/host-calls.js";
import { compareTiers, strongerTier, type Tier } from "../sandbox/tiers/tier.js";

export interface ManagerObserver {
  /** A request or service run finished (for metrics, usage and logs). */
  runFinished?(e: RunEvent): void;
  /** Lifecycle of instances: started, stopped, crashed, restarting. */
  event?(e: { tenantId: string; appId: string; instanceId?: string; kind: string; message: string }): void;
  /** A request was refused before it ran. */
  refused?(e: { tenantId: string; appId: string; code: string }): void;
  /** Guest output that is not a response (service stdout, stderr). */
  output?(appId: string, stream: "stdout" | "stderr", chunk: Uint8Array): void;
  /** A module was prepared (checked, rewritten, compiled) for a tenant's app; its CPU time is charged to the tenant. */
  prepared?(e: { tenantId: string; appId: string; appName: string; chargedMs: number; wallMs: number; cpuMs?: number }): void;
  /** Serving-thread time charged to a tenant since the last report (provider calls, output relay), ms; at most once a second per tenant. */
  servingThreadTime?(e: { tenantId: string; ms: number }): void;
  /** Waits pacing imposed on a tenant since the last report (pacing.ts), ms by resource; at most once a second per tenant. */
  paced?(e: { tenantId: string; resource: "cpu" | "serving_thread"; ms: number }): void;
}

export interface RunEvent {
  tenantId: string;
  appId: string;
  appName: string;
  kind: "command" | "reactor" | "service";
  start: "cold" | "warm";
  queuedMs: number;
  outcome: RunOutcome;
}

export interface ResourceManagerOptions {
  runner: InstanceRunner;
  /**
   * The cores tenants share, for pacing their CPU (pacing.ts). Default: the
   * machine's less one, which the serving thread needs whoever it serves.
   */
  tenantCores?: number;
  /** Node-wide memory budget for live instances, bytes. Default 4 GiB. */
  nodeMemoryBytes?: number;
  /** Requests waiting node-wide before 503. Default 10 000. */
  nodeMaxQueue?: number;
  defaultQuotas?: TenantQuotas;
  observer?: ManagerObserver;
  /** How often idle warm instances are checked for scale-down, ms. Default 1000. */
  reapIntervalMs?: number;
  serviceBackoff?: BackoffOptions;
  /** The node's bound on any request's deadline, ms: an app's longer `timeoutMs` is cut to it. Default 60 000. */
  maxTimeoutMs?: number;
  /** Deadline of a request running on an executor lent beyond its tenant's share, ms (see FairScheduler). Default 1000. */
  loanTimeoutMs?: number;
  /** Most executors services may hold at once (the rest stay for requests). Default: half of them, rounded down. */
  serviceExecutors?: number;
  /** Host extensions for an app's instances: grants and providers, supplied from above (the node's composition). */
  extensions?: ExtensionFactory;
  /**
   * Fuel budget of a request run inline on the serving thread, instructions
   * (placement.ts); 0: every guest on executors. Used only with a runner
   * that offers inline placement. Default DEFAULT_INLINE_FUEL.
   */
  inlineFuel?: number;
  /** The tenant meters (rate, CPU) in a table serving threads share (server/serving-threads.ts). Default: the manager's own. */
  meters?: SharedTenantMeters;
  /** The weakest tier any app on this node runs on (`serve --min-tier`). Default isolate. */
  minTier?: Tier;
  /** The weakest tier of each named tenant's apps (`serve --tenant-min-tier NAME=TIER`), beside the tenant's own `minTier` quota. */
  tenantMinTiers?: Readonly<Record<string, Tier>>;
}

/** The tier an app revision runs on, and why (the app's own choice, or a minimum that raised it). */
export interface TierChoice {
  tier: Tier;
  why: string;
}

/** Who an instance (or one run) is, for the extension providers made for it. */
export interface ExtensionScope {
  tenantId: string;
  app: AppRecord;
  /**
   * The request being served: the apps that called it (service calls,
   * outermost first). Set per request; a warm instance sees the request it
   * is serving now.
   */
  call: { chain: readonly string[] };
}

/** Makes the extensions of one instance (undefined: none granted). Dependency inversion: the manager does not know what they do. */
export type ExtensionFactory = (scope: ExtensionScope) => RunExtensions | undefined;

export const DEFAULT_MAX_TIMEOUT_MS = 60_000;
export const DEFAULT_LOAN_TIMEOUT_MS = 1000;

/** A request's outcome, with the deadline it ran under. */
export interface InvokeResult extends RunOutcome {
  /** The deadline this run had, ms (the app's, cut to the node's bound, or a loan's). */
  deadlineMs: number;
  /** It ran on an executor lent beyond its tenant's share, under the loan deadline. */
  loaned: boolean;
}

export interface TenantRuntime {
  id: string;
  name: string;
  weight: number;
  quotas: TenantQuotas;
  bucket: TokenBucket;
  cpu: CpuWindow;
  /** The scheduler's view of this tenant, rebuilt when quotas change (not per request). */
  share: TenantShare;
  /** After its minimum tier went up: resolves when its apps run on the new tier (or were stopped). */
  tierRaised?: Promise<void>;
  /**
   * Serving-thread time spent on its behalf (extension provider calls,
   * relaying its guests' output), ms, not yet charged: settleHostTime moves
   * it into its CPU window and scheduler debt. Added to per call without
   * allocating (the adder is made once per tenant).
   */
  hostMs: number;
  /** Adds serving-thread time to hostMs; returns how long its guest should pause before making the thread work again, ms (pacing.ts). */
  readonly addHostTime: (ms: number, relayedBytes?: number) => number;
  /** Its share of the serving thread's bulk work, and of the node's CPU, from moment to moment (pacing.ts). */
  readonly threadPacer: SharePacer;
  readonly cpuPacer: SharePacer;
  /** Its requests waiting for its CPU share (bounded by its `maxQueue`, like those waiting for an executor). */
  paced: number;
  /** Waits pacing imposed not yet reported to the observer, ms. */
  pacedMsUnreported: { cpu: number; serving_thread: number };
  /** Waits pacing imposed in the last minute, ms (its usage's `pacedMsLastMinute`, the dashboard). */
  readonly pacedWindow: CpuWindow;
  /** Charged serving-thread time not yet reported to the observer (reported by the reaper, not per request). */
  hostMsUnreported: number;
}

export interface InstanceInfo {
  id: string;
  tenantId: string;
  appId: string;
  appName: string;
  revision: number;
  kind: "command" | "reactor" | "service";
  /** `waiting`: a service waiting for an executor (services may hold only part of them). */
  state: "running" | "idle" | "busy" | "waiting";
  /** Where it runs: the serving thread or an executor (placement.ts). */
  placement: "inline" | "executor";
  /** The wall around its executor (src/sandbox/tiers/tier.ts). */
  tier: Tier;
  startedAt: number;
  lastUsedAt: number;
  requests: number;
  memoryBytes: number;
}

export interface Invocation {
  /** CGI variables (the WAGI env, or the reactor request's metadata). */
  env: Record<string, string>;
  /** argv for WAGI commands. */
  args: string[];
  body: Uint8Array;
  sinks: OutputSinks;
  /**
   * A service call: the app ids of its callers, outermost first. The callers
   * hold their executors while they wait, so it runs on the caller's share of
   * the scheduler (not queued behind other requests) and never on an
   * executor that is busy.
   */
  chain?: readonly string[];
  /** The executor the calling guest is parked on (a warm callee instance there is not used). */
  avoidExecutor?: number;
}

const MiB = 1024 * 1024;

/** One app revision as it runs: its module, limits, pool or supervisor. */
export class Deployment {
  inflight = 0;
  draining = false;
  /** EWMA of executor ms per request: the scheduler's cost estimate. */
  costEstimate = 1;
  pool: ReactorPool | undefined;
  supervisor: Supervisor | undefined;
  /** Aborted when the revision retires: withdraws a service run still waiting for an executor. */
  readonly retiring = new AbortController();
  /** Scheduler options for this revision's requests (made once, not per request). */
  readonly schedulerOptions: RunOptions<RunOutcome>;
  /** The limits of a request on a loaned executor: the loan deadline when it is sooner. */
  readonly loanLimits: ResolvedLimits;
  /** Where its guests run, and why (placement.ts); an inline revision can move to executors, never back. */
  placement: PlacementChoice = { placement: "executor", why: "the runner has executors only" };
  /** Its tier (the same for the whole revision). */
  tier: TierChoice = { tier: "isolate", why: "the default" };
  /** The limits of an inline request (the inline fuel budget). */
  inlineLimits: ResolvedLimits;
  /** Requests served inline so far, and the moving average of their fuel. */
  inlineRuns = 0;
  inlineFuelAverage = 0;
  /** Memory each live instance reserves (budget.ts, instanceMemoryBytes). */
  readonly reservationBytes: number;
  private drained: (() => void) | undefined;

  constructor(
    readonly app: AppRecord,
    readonly module: ModuleRef,
    readonly limits: ResolvedLimits,
    /** The image's in-memory dirs and capabilities, given to every instance of this revision. */
    readonly grants: GuestGrants = {},
    loanTimeoutMs = DEFAULT_LOAN_TIMEOUT_MS,
  ) {
    this.schedulerOptions = { queueTimeoutMs: Math.min(limits.timeoutMs, 30_000), actualCost: chargedCost };
    this.loanLimits = limits.timeoutMs > loanTimeoutMs ? { ...limits, timeoutMs: loanTimeoutMs } : limits;
    this.inlineLimits = limits;
    this.reservationBytes = instanceMemoryBytes(limits, grants);
  }

  /** Runs inline under the node's placement rules (a fuel budget); a runner that is inline itself (--in-process) is not. */
  get inline(): boolean {
    return this.placement.placement === "inline" && this.placement.fuel !== undefined;
  }

  get abi() {
    return this.app.config.abi;
  }

  observeCost(ms: number): void {
    this.costEstimate = this.costEstimate * 0.8 + ms * 0.2;
  }

  /** Resolves when no request runs on this revision any more. */
  whenIdle(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => (this.drained = resolve));
  }

  done(): void {
    this.inflight--;
    if (this.inflight === 0 && this.drained) {
      const d = this.drained;
      this.drained = undefined;
      d();
    }
  }
}

/** An app's limits as its runs get them: its own, with a request's deadline cut to the node's bound (services may have none). */
export function runLimitsOf(app: AppRecord, maxTimeoutMs = DEFAULT_MAX_TIMEOUT_MS): ResolvedLimits {
  const l = app.config.limits;
  return app.config.abi === "service" || l.timeoutMs <= maxTimeoutMs ? l : { ...l, timeoutMs: maxTimeoutMs };
}

/**
 * The resource manager: admission (rate, CPU time, memory), fair scheduling
 * across tenants, warm pools, command instances, supervised services, and the
 * registry of live instances. It knows nothing of HTTP.
 */
export class ResourceManager {
  readonly runner: InstanceRunner;
  readonly scheduler: FairScheduler;
  readonly budget: MemoryBudget;
  private readonly tenants = new Map<string, TenantRuntime>();
  private readonly deployments = new Map<string, Deployment>();
  private readonly commands = new Map<string, InstanceInfo>();
  private readonly services = new Map<string, InstanceInfo>();
  private readonly defaults: TenantQuotas;
  private readonly observer: ManagerObserver;
  private readonly reaper: NodeJS.Timeout;
  private readonly backoff: BackoffOptions | undefined;
  private readonly extensions: ExtensionFactory | undefined;
  /** The node's bound on request deadlines, ms. */
  readonly maxTimeoutMs: number;
  readonly loanTimeoutMs: number;
  private readonly inlineFuel: number;
  readonly meters: SharedTenantMeters | undefined;
  readonly minTier: Tier;
  private readonly tenantMinTiers: Readonly<Record<string, Tier>>;
  /** The cores tenants' CPU shares are of (pacing.ts): the machine's, less those its serving threads need. */
  private readonly cores: number;
  private closed = false;

  constructor(opts: ResourceManagerOptions) {
    this.runner = opts.runner;
    this.cores = opts.tenantCores ?? Math.max(1, availableParallelism() - 1);
    this.scheduler = new FairScheduler({ slots: opts.runner.executors, maxQueued: opts.nodeMaxQueue ?? 10_000, ...(opts.serviceExecutors !== undefined ? { maxLongSlots: opts.serviceExecutors } : {}) });
    this.budget = new MemoryBudget(opts.nodeMemoryBytes ?? 4096 * MiB);
    this.defaults = opts.defaultQuotas ?? { ...DEFAULT_TENANT_QUOTAS };
    this.observer = opts.observer ?? {};
    this.backoff = opts.serviceBackoff;
    this.extensions = opts.extensions;
    this.maxTimeoutMs = opts.maxTimeoutMs ?? DEFAULT_MAX_TIMEOUT_MS;
    this.loanTimeoutMs = opts.loanTimeoutMs ?? DEFAULT_LOAN_TIMEOUT_MS;
    this.inlineFuel = opts.runner.inline ? (opts.inlineFuel ?? DEFAULT_INLINE_FUEL) : 0;
    this.meters = opts.meters;
    this.minTier = opts.minTier ?? "isolate";
    this.tenantMinTiers = opts.tenantMinTiers ?? {};
    this.reaper = setInterval(() => this.reap(), opts.reapIntervalMs ?? 1000);
    this.reaper.unref();
  }

  // ---- tenants ----

  setTenant(t: { id: string; name: string; weight: number; quotas: Partial<TenantQuotas> }): TenantRuntime {
    const quotas = effectiveQuotas(t.quotas, this.defaults);
    const cur = this.tenants.get(t.id);
    if (cur) {
      cur.quotas = quotas;
      cur.weight = t.weight;
      cur.bucket.rate = quotas.requestsPerSecond;
      cur.bucket.burst = Math.max(1, quotas.requestsPerSecond);
      cur.share = shareOf(t.id, t.weight, quotas);
      if (quotas.minTier !== "isolate") cur.tierRaised = this.raiseTiers(cur);
      return cur;
    }
    const rt: TenantRuntime = {
      id: t.id,
      name: t.name,
      weight: t.weight,
      quotas,
      bucket: new TokenBucket(quotas.requestsPerSecond, Math.max(1, quotas.requestsPerSecond), Date.now(), this.meters?.bucketCell(this.meters.slotOf(t.id))),
      cpu: new CpuWindow(this.meters?.cpuCell(this.meters.slotOf(t.id))),
      share: shareOf(t.id, t.weight, quotas),
      hostMs: 0,
      addHostTime: (ms, relayedBytes = 0) => {
        rt.hostMs += ms;
        const wait = rt.threadPacer.spend(ms + relayedBytes * RELAY_MS_PER_BYTE);
        if (wait > 0) {
          rt.pacedMsUnreported.serving_thread += wait;
          rt.pacedWindow.add(wait);
        }
        return wait;
      },
      threadPacer: new SharePacer(() => threadShare(this.scheduler.threadShare(rt.share)), THREAD_BURST_MS),
      cpuPacer: new SharePacer(() => cpuShare(this.scheduler.threadShare(rt.share), this.cores), CPU_BURST_MS),
      paced: 0,
      pacedMsUnreported: { cpu: 0, serving_thread: 0 },
      pacedWindow: new CpuWindow(),
      hostMsUnreported: 0,
    };
    this.tenants.set(t.id, rt);
    return rt;
  }

  tenant(id: string): TenantRuntime | undefined {
    return this.tenants.get(id);
  }

  quotasOf(tenantId: string): TenantQuotas {
    return this.tenants.get(tenantId)?.quotas ?? { ...this.defaults };
  }

  async removeTenant(id: string): Promise<void> {
    for (const d of [...this.deployments.values()]) if (d.app.tenantId === id) await this.undeploy(d.app.id);
    this.tenants.delete(id);
  }

  // ---- deployments ----

  /**
   * Starts (or replaces) an app revision. The new revision is compiled and,
   * for reactors, at least one instance is started before the switch, so a
   * broken update leaves the old revision serving; the old one drains:
   * in-flight requests finish on it, then its instances stop.
   */
  async deploy(app: AppRecord, module: ModuleRef, grants: GuestGrants = {}): Promise<void> {
    const t = this.tenants.get(app.tenantId);
    if (!t) throw new Error(`tenant ${app.tenantId} is not registered with the manager`);
    if (app.config.abi === "service" && this.scheduler.maxLongSlots === 0) {
      throw new ControlError("invalid_config", `this node runs no services: services may hold 0 of its ${this.scheduler.slots} executor(s), which are kept for requests (serve --service-executors N)`);
    }
    // Preparing a module is CPU work on the tenant's behalf (a huge module takes seconds): refused
    // while the tenant's CPU time for the minute is spent, and charged to it like executor time.
    if (t.cpu.used() >= t.quotas.cpuMsPerMinute) {
      throw new Refusal("tenant_cpu_exhausted", `tenant ${t.name} used its ${t.quotas.cpuMsPerMinute} ms of CPU time for this minute; preparing a module would take more`, t.cpu.retryAfter(t.quotas.cpuMsPerMinute));
    }
    const tier = this.tierOf(app, t);
    this.checkTier(app, tier, grants);
    const limits: ResolvedLimits = { ...runLimitsOf(app, this.maxTimeoutMs), tier: tier.tier };
    const next = new Deployment(app, module, limits, grants, this.loanTimeoutMs);
    next.tier = tier;
    // Placement needs the module's imports, which its preparation reads: an inline candidate is prepared for inline first.
    let placement: PlacementChoice =
      tier.tier !== "isolate"
        ? { placement: "executor", why: `the ${tier.tier} tier: executors in sandboxed processes (${tier.why})` }
        : this.runner.inline
          ? choosePlacement(app, grants, this.inlineFuel, [])
          : { placement: this.runner.placement ?? "executor", why: `the runner (${this.runner.name}) places every guest itself` };
    const budgeted = placement.placement === "inline" && placement.fuel !== undefined;
    if (budgeted) {
      const report = await this.runner.prepare(module, inlineLimits(limits, placement), "inline", t.id);
      this.chargePreparation(t, app, report);
      placement = choosePlacement(app, grants, this.inlineFuel, report.imports ?? ["unknown.poll_oneoff"]);
    }
    // Prepared for its runner's own way (executors, or the in-process runner's thread) unless prepared for the inline budget above.
    if (!budgeted || placement.placement === "executor") this.chargePreparation(t, app, await this.runner.prepare(module, limits, "executor", t.id));
    next.placement = placement;
    next.inlineLimits = inlineLimits(limits, placement);
    if (app.config.abi === "reactor") {
      next.pool = this.newPool(next);
      try {
        await next.pool.warm(Math.max(1, app.config.scale.minInstances));
      } catch (err) {
        // An initializer that used up the inline budget: the app starts on executors instead.
        if (!(next.inline && !placement.ownFuel && err instanceof RunnerError && err.reason === "fuel_exhausted")) throw err;
        await this.moveToExecutors(next, `its initializer used the inline fuel budget (${placement.fuel} instructions)`);
        await next.pool.warm(Math.max(1, app.config.scale.minInstances));
      }
    }
    this.observer.event?.({ tenantId: app.tenantId, appId: app.id, kind: "placement", message: `revision ${app.revision} runs ${next.placement.placement === "inline" ? "inline on the serving thread" : `on ${tier.tier}-tier executors`}: ${next.placement.why}` });
    const prev = this.deployments.get(app.id);
    this.deployments.set(app.id, next);
    if (app.config.abi === "service") this.startService(next);
    this.observer.event?.({ tenantId: app.tenantId, appId: app.id, kind: "deployed", message: `revision ${app.revision} (${module.digest.slice(0, 19)}) is live` });
    if (prev) void this.retire(prev);
  }

  /**
   * A tenant's minimum tier went up: its apps running on a weaker tier are
   * deployed again on the new one (the same revision; the old one drains).
   * One that cannot run there is stopped, never left on the weaker wall.
   */
  private async raiseTiers(t: TenantRuntime): Promise<void> {
    for (const d of [...this.deployments.values()]) {
      if (d.app.tenantId !== t.id || d.draining) continue;
      const want = this.tierOf(d.app, t);
      if (compareTiers(want.tier, d.tier.tier) <= 0) continue;
      const note = (message: string): void => this.observer.event?.({ tenantId: t.id, appId: d.app.id, kind: "tier", message });
      try {
        await this.deploy(d.app, d.module, d.grants);
        note(`revision ${d.app.revision} moved from the ${d.tier.tier} to the ${want.tier} tier (${want.why})`);
      } catch (err) {
        await this.undeploy(d.app.id);
        note(`stopped: it must run on the ${want.tier} tier (${want.why}) and cannot: ${(err as Error).message}`);
      }
    }
  }

  /** The app's tier raised to the tenant's and the node's minimum, saying which decided. */
  tierOf(app: AppRecord, t: Pick<TenantRuntime, "name" | "quotas">): TierChoice {
    const own = app.config.limits.tier ?? "isolate";
    let choice: TierChoice = own !== "isolate" ? { tier: own, why: "the app's limits.tier" } : { tier: "isolate", why: "the default" };
    const raise = (min: Tier | undefined, why: string): void => {
      if (min && strongerTier(choice.tier, min) !== choice.tier) choice = { tier: min, why };
    };
    raise(t.quotas.minTier, `tenant ${t.name}'s minimum tier`);
    raise(this.tenantMinTiers[t.name], `this node's minimum for tenant ${t.name} (serve --tenant-min-tier)`);
    raise(this.minTier, "this node's minimum tier (serve --min-tier)");
    return choice;
  }

  /** A sandboxed tier must be available here, and the app must ask for nothing its sandbox cannot give (yet). */
  private checkTier(app: AppRecord, { tier, why }: TierChoice, grants: GuestGrants): void {
    if (tier === "isolate") return;
    const missing = this.runner.unavailable ? this.runner.unavailable(tier) : `the runner (${this.runner.name}) has the isolate tier only`;
    if (missing) throw new ControlError("invalid_config", `app ${app.name} runs on the ${tier} tier (${why}), which this node cannot give: ${missing}`);
    const extensions = app.config.extensions?.grants ?? [];
    if (extensions.length > 0) throw new ControlError("invalid_config", `app ${app.name} runs on the ${tier} tier (${why}), where host extensions (${extensions.join(", ")}) are not available yet: their providers live in the node`);
    if (grants.capabilities?.includes("sockets")) throw new ControlError("invalid_config", `app ${app.name} runs on the ${tier} tier (${why}), where sockets are not available yet (its sandbox has no network)`);
  }

  private chargePreparation(t: TenantRuntime, app: AppRecord, report: PrepareReport): void {
    if (!report.prepared) return;
    const chargedMs = report.cpuMs ?? report.wallMs;
    this.chargeCpu(t, chargedMs);
    this.scheduler.charge(t.share, chargedMs);
    this.observer.prepared?.({ tenantId: t.id, appId: app.id, appName: app.name, chargedMs, wallMs: report.wallMs, ...(report.cpuMs !== undefined ? { cpuMs: report.cpuMs } : {}) });
  }

  /**
   * An inline revision moves to executors for good: new instances start
   * there (a reactor's inline ones stop as they go idle), and the app's log
   * says why.
   */
  private async moveToExecutors(d: Deployment, why: string): Promise<void> {
    if (!d.inline) return;
    d.placement = { placement: "executor", why: `moved from the serving thread: ${why}` };
    d.inlineLimits = d.limits;
    this.observer.event?.({ tenantId: d.app.tenantId, appId: d.app.id, kind: "placement", message: `revision ${d.app.revision} moves to executors: ${why}` });
    if (d.pool) {
      const old = d.pool;
      d.pool = this.newPool(d);
      old.drain();
    }
  }

  async undeploy(appId: string): Promise<void> {
    const d = this.deployments.get(appId);
    if (!d) return;
    this.deployments.delete(appId);
    await this.retire(d);
  }

  private async retire(d: Deployment): Promise<void> {
    d.draining = true;
    d.retiring.abort();
    await d.supervisor?.stop();
    const svc = this.services.get(d.app.id);
    if (svc && svc.revision === d.app.revision) this.services.delete(d.app.id);
    await d.whenIdle();
    d.pool?.drain();
  }

  deployment(appId: string): Deployment | undefined {
    return this.deployments.get(appId);
  }

  /** Ids of the apps with a revision deployed here. */
  deployedApps(): string[] {
    return [...this.deployments.keys()];
  }

  // ---- requests ----

  /** Runs one request of an app under its tenant's quotas; throws Refusal when it cannot run now. */
  async invoke(appId: string, inv: Invocation): Promise<InvokeResult> {
    const d = this.deployments.get(appId);
    if (!d || d.abi === "service") throw new Refusal("app_unavailable", `app ${appId} is not serving requests`);
    const t = this.tenants.get(d.app.tenantId);
    if (!t) throw new Refusal("app_unavailable", `tenant of app ${appId} is gone`);
    const wait = t.bucket.take();
    if (wait > 0) this.refuse(t, appId, new Refusal("tenant_rate_limited", `tenant ${t.name} is over ${t.quotas.requestsPerSecond} requests/s`, Math.ceil(wait)));
    this.settleHostTime(t);
    if (t.cpu.used() >= t.quotas.cpuMsPerMinute) {
      this.refuse(t, appId, new Refusal("tenant_cpu_exhausted", `tenant ${t.name} used its ${t.quotas.cpuMsPerMinute} ms of CPU time for this minute`, t.cpu.retryAfter(t.quotas.cpuMsPerMinute)));
    }
    // A service call runs within its caller's turn (which paid already): it is never made to wait here.
    const due = inv.chain?.length ? 0 : t.cpuPacer.due();
    if (due > 0) await this.paceCpu(t, appId, due, Math.min(d.limits.timeoutMs, 30_000));
    d.inflight++;
    const enqueued = performance.now();
    if (d.inline) {
      // On the serving thread, at once: no executor is used, so the scheduler's queue is not either (its share is charged).
      try {
        const outcome = await this.invokeInline(d, t, inv);
        if (outcome) return outcome;
      } catch (err) {
        d.done();
        if (err instanceof Refusal) this.refuse(t, appId, err);
        throw err;
      }
      // It used the inline budget: the app has moved; this request runs again on an executor.
    }
    if (inv.chain && inv.chain.length > 0) {
      // A service call runs within its caller's scheduler slot: queueing it behind others could wait on the caller itself.
      try {
        const outcome = d.abi === "reactor" ? await this.runReactor(d, t, inv, 0, d.limits) : await this.runCommand(d, t, inv, 0, d.limits);
        return { ...outcome, deadlineMs: d.limits.timeoutMs, loaned: false };
      } catch (err) {
        if (err instanceof Refusal) this.refuse(t, appId, err);
        throw err;
      } finally {
        d.done();
      }
    }
    try {
      return await this.scheduler.run(
        t.share,
        d.costEstimate,
        async (grant: Grant): Promise<InvokeResult> => {
          const queuedMs = performance.now() - enqueued;
          const limits = grant.loan ? d.loanLimits : d.limits;
          const outcome = d.abi === "reactor" ? await this.runReactor(d, t, inv, queuedMs, limits) : await this.runCommand(d, t, inv, queuedMs, limits);
          return { ...outcome, deadlineMs: limits.timeoutMs, loaned: limits !== d.limits };
        },
        d.schedulerOptions,
      );
    } catch (err) {
      if (err instanceof SchedulerRejection) {
        if (err.reason === "tenant_queue_full") this.refuse(t, appId, new Refusal("tenant_overloaded", err.message, 1));
        // Its own tenant's limit kept it waiting, not the node: the answer says so.
        if (err.reason === "tenant_concurrency_timeout") this.refuse(t, appId, new Refusal("tenant_concurrency_limited", `tenant ${t.name}'s request ${err.message}`, 1));
        this.refuse(t, appId, new Refusal("node_overloaded", err.message, 1));
      }
      if (err instanceof Refusal) this.refuse(t, appId, err);
      throw err;
    } finally {
      d.done();
    }
  }

  /**
   * One request on the serving thread. Its output is held until it ends, so
   * a request that used up the inline budget can run again on an executor
   * (undefined is returned, and the app has moved) without a partial answer.
   */
  private async invokeInline(d: Deployment, t: TenantRuntime, inv: Invocation): Promise<InvokeResult | undefined> {
    // A tenant allowed no queue or no concurrency is refused here as the scheduler would refuse it.
    if (t.share.maxQueue <= 0 || t.share.maxConcurrency <= 0) throw new Refusal("tenant_overloaded", `tenant ${t.name} may not run requests now (quota maxQueue ${t.share.maxQueue}, maxConcurrency ${t.share.maxConcurrency})`, 1);
    const held = new HeldOutput();
    const run = { ...inv, sinks: held };
    const limits = d.inlineLimits;
    const outcome = d.abi === "reactor" ? await this.runReactor(d, t, run, 0, limits) : await this.runCommand(d, t, run, 0, limits);
    if (outcome.reason === "fuel_exhausted" && d.inline && !d.placement.ownFuel) {
      await this.moveToExecutors(d, `a request used the inline fuel budget (${d.placement.fuel} instructions)`);
      return undefined;
    }
    // Its run's time is charged already; handing its output to the gateway is serving-thread time too.
    const sending = performance.now();
    held.sendTo(inv.sinks);
    t.hostMs += performance.now() - sending;
    await this.afterInline(d, t, outcome);
    d.done();
    return { ...outcome, deadlineMs: limits.timeoutMs, loaned: false };
  }

  /** After an inline request (here or on a serving thread): its time charged to the fair scheduler; an app whose requests grew long moves. */
  private async afterInline(d: Deployment, t: TenantRuntime, outcome: RunOutcome): Promise<void> {
    this.scheduler.charge(t.share, outcome.durationMs);
    if (!d.inline) return;
    // Judged on a run of requests, not the first few (lazy compilation, a cold cache).
    d.inlineFuelAverage = d.inlineRuns === 0 ? (outcome.fuelUsed ?? 0) : d.inlineFuelAverage * 0.8 + (outcome.fuelUsed ?? 0) * 0.2;
    const most = INLINE_MAX_AVERAGE_SHARE * (d.placement.fuel ?? 0);
    if (++d.inlineRuns >= 16 && d.inlineFuelAverage > most) await this.moveToExecutors(d, `its requests average ${Math.round(d.inlineFuelAverage)} instructions (more than ${Math.round(most)}, ${INLINE_MAX_AVERAGE_SHARE * 100}% of its inline budget): the serving thread keeps short work`);
  }

  /**
   * A request a serving thread ran inline (server/serving-threads.ts): its
   * CPU time is in the shared tenant table already; the rest of the
   * accounting (metrics, usage, fair-scheduling debt, the move rule) is here.
   */
  async recordServedElsewhere(appId: string, kind: "command" | "reactor", start: RunEvent["start"], outcome: RunOutcome): Promise<void> {
    const d = this.deployments.get(appId);
    const t = d && this.tenants.get(d.app.tenantId);
    if (!d || !t) return;
    d.observeCost(outcome.durationMs);
    this.observer.runFinished?.({ tenantId: t.id, appId, appName: d.app.name, kind, start, queuedMs: 0, outcome });
    await this.afterInline(d, t, outcome);
  }

  /** A refusal a serving thread made (for metrics and usage). */
  refusedElsewhere(tenantId: string, appId: string, code: string): void {
    this.observer.refused?.({ tenantId, appId, code });
  }

  /** A serving thread's inline request used the node's budget: the app moves (the thread then sends the request here). */
  async moveAppToExecutors(appId: string, why: string): Promise<void> {
    const d = this.deployments.get(appId);
    if (d) await this.moveToExecutors(d, why);
  }

  private refuse(t: TenantRuntime, appId: string, r: Refusal): never {
    this.observer.refused?.({ tenantId: t.id, appId, code: r.code });
    throw r;
  }

  private reserve(d: Deployment, t: TenantRuntime): Reservation {
    const r = this.budget.reserve(t.id, d.reservationBytes, t.quotas.memoryMiB * MiB, t.quotas.maxInstances);
    if (typeof r === "string") throw budgetRefusal(r, t, d);
    return r;
  }

  private async runCommand(d: Deployment, t: TenantRuntime, inv: Invocation, queuedMs: number, limits: ResolvedLimits): Promise<RunOutcome> {
    const reservation = this.reserve(d, t);
    const id = newInstanceId();
    const now = Date.now();
    const placement = d.placement.placement;
    this.commands.set(id, { id, tenantId: t.id, appId: d.app.id, appName: d.app.name, revision: d.app.revision, kind: "command", state: "running", placement, tier: d.tier.tier, startedAt: now, lastUsedAt: now, requests: 1, memoryBytes: 0 });
    try {
      const extensions = this.extensionsOf(t, d.app, { chain: inv.chain ?? [] });
      const sinks = placement === "inline" ? inv.sinks : new MeteredSinks(inv.sinks, t.addHostTime);
      const outcome = await this.runner.runCommand({
        ...d.grants,
        tenant: t.id,
        ...(extensions ? { extensions } : {}),
        ...(inv.chain?.length ? { nested: true } : {}),
        placement,
        module: d.module,
        args: inv.args,
        env: inv.env,
        stdin: inv.body,
        limits,
        // The gateway holds a response this small and sends it whole: no need to hand it over in pieces.
        holdOutputBytes: 64 * 1024,
        ...(sinks.lendStdout ? { lendStdout: true } : {}),
        onStdout: sinks.onStdout,
        onStderr: sinks.onStderr,
      });
      this.account(d, t, "command", "cold", queuedMs, outcome);
      return outcome;
    } finally {
      this.commands.delete(id);
      reservation.release();
    }
  }

  private async runReactor(d: Deployment, t: TenantRuntime, inv: Invocation, queuedMs: number, limits: ResolvedLimits): Promise<RunOutcome> {
    const pool = d.pool!;
    let acquired: { instance: PooledInstance; cold: boolean };
    const avoid = inv.avoidExecutor;
    try {
      acquired = await pool.acquire(avoid === undefined ? undefined : (i) => i.handle.executor?.() !== avoid, inv.chain?.length ? true : undefined);
    } catch (err) {
      if (err instanceof Refusal) throw err;
      if (err instanceof RunnerError) return { reason: err.reason, exitCode: null, message: err.message, durationMs: 0 };
      throw new Refusal("app_unavailable", (err as Error).message);
    }
    const { instance, cold } = acquired;
    if (instance.call) instance.call.chain = inv.chain ?? [];
    let broken = true;
    try {
      const sinks = instance.placement === "inline" ? inv.sinks : new MeteredSinks(inv.sinks, t.addHostTime);
      const outcome = await instance.handle.handle(encodeReactorRequest(inv.env, inv.body), sinks, limits);
      instance.requests++;
      broken = outcome.reason !== "exit"; // a non-zero handler status is an answer, not a broken instance
      this.account(d, t, "reactor", cold ? "cold" : "warm", queuedMs, outcome);
      return outcome;
    } finally {
      const stop = (instance as PooledInstance & { stopRequested?: boolean }).stopRequested === true;
      if (instance.call) instance.call.chain = [];
      pool.release(instance, broken || stop);
    }
  }

  /** An instance's extensions (made by the node's factory), with their provider time charged to its tenant. */
  private extensionsOf(t: TenantRuntime, app: AppRecord, call: ExtensionScope["call"]): RunExtensions | undefined {
    const extensions = this.extensions?.({ tenantId: t.id, app, call });
    if (extensions) extensions.onHostTime = t.addHostTime;
    return extensions;
  }

  private account(d: Deployment, t: TenantRuntime, kind: RunEvent["kind"], start: RunEvent["start"], queuedMs: number, outcome: RunOutcome): void {
    this.chargeCpu(t, outcome.durationMs);
    this.settleHostTime(t);
    d.observeCost(outcome.durationMs);
    this.observer.runFinished?.({ tenantId: t.id, appId: d.app.id, appName: d.app.name, kind, start, queuedMs, outcome });
  }

  private newPool(d: Deployment): ReactorPool {
    const app = d.app;
    return new ReactorPool({
      min: app.config.scale.minInstances,
      max: Math.max(1, app.config.scale.maxInstances),
      idleTimeoutMs: app.config.scale.idleTimeoutMs,
      create: async (nested?: boolean) => {
        const t = this.tenants.get(app.tenantId);
        if (!t) throw new Refusal("app_unavailable", "tenant is gone");
        const reservation = this.reserve(d, t);
        const placement = d.placement.placement;
        try {
          // The providers of a warm instance see the request it serves now, through `call`.
          const call = { chain: [] as readonly string[] };
          const extensions = this.extensionsOf(t, app, call);
          const handle = await this.runner.startReactor({
            ...d.grants,
            tenant: t.id,
            ...(extensions ? { extensions } : {}),
            ...(nested ? { nested: true } : {}),
            placement,
            module: d.module,
            args: app.config.args,
            env: app.config.env,
            limits: d.inlineLimits,
          });
          const id = newInstanceId();
          this.observer.event?.({ tenantId: app.tenantId, appId: app.id, instanceId: id, kind: "instance_started", message: `reactor instance ${id} started (revision ${app.revision})` });
          return { id, handle, reservation, startedAt: Date.now(), lastUsedAt: Date.now(), requests: 0, busy: false, call, placement };
        } catch (err) {
          reservation.release();
          throw err;
        }
      },
      destroy: async (inst, why) => {
        inst.reservation.release();
        this.observer.event?.({ tenantId: app.tenantId, appId: app.id, instanceId: inst.id, kind: "instance_stopped", message: `reactor instance ${inst.id} stopped (${why})` });
        await inst.handle.close().catch(() => undefined);
      },
    });
  }

  private startService(d: Deployment): void {
    const app = d.app;
    const id = newInstanceId();
    const info: InstanceInfo = { id, tenantId: app.tenantId, appId: app.id, appName: app.name, revision: app.revision, kind: "service", state: "running", placement: "executor", tier: d.tier.tier, startedAt: Date.now(), lastUsedAt: Date.now(), requests: 0, memoryBytes: 0 };
    this.services.set(app.id, info);
    d.supervisor = new Supervisor(
      {
        run: async () => {
          const t = this.tenants.get(app.tenantId);
          if (!t) return "tenant gone";
          // A service holds an executor for as long as it runs: it takes one through the scheduler, as a
          // long job (below its tenant's share, and services together hold at most half the executors).
          info.state = "waiting";
          return this.scheduler.run(t.share, 0, () => this.runService(d, t, info), { long: true, signal: d.retiring.signal });
        },
        onRestart: (delay, why, restarts) => {
          this.observer.event?.({ tenantId: app.tenantId, appId: app.id, instanceId: id, kind: "service_restarting", message: `service ${why}; restart #${restarts} in ${delay} ms` });
        },
      },
      this.backoff,
    );
    d.supervisor.start();
  }

  private async runService(d: Deployment, t: TenantRuntime, info: InstanceInfo): Promise<string> {
    const app = d.app;
    const reservation = this.reserve(d, t);
    info.startedAt = Date.now();
    info.state = "running";
    try {
      const extensions = this.extensionsOf(t, app, { chain: [] });
      const sinks = new MeteredSinks({ onStdout: (c) => this.observer.output?.(app.id, "stdout", c), onStderr: (c) => this.observer.output?.(app.id, "stderr", c) }, t.addHostTime);
      const outcome = await this.runner.runCommand({
        ...d.grants,
        tenant: t.id,
        ...(extensions ? { extensions } : {}),
        module: d.module,
        args: app.config.args,
        env: app.config.env,
        stdin: new Uint8Array(),
        limits: d.limits,
        onStdout: sinks.onStdout,
        onStderr: sinks.onStderr,
      });
      this.account(d, t, "service", "cold", 0, outcome);
      return outcome.reason === "exit" ? `exited with code ${outcome.exitCode}` : `ended: ${outcome.reason}${outcome.message ? ` (${outcome.message})` : ""}`;
    } finally {
      reservation.release();
      info.state = "idle";
    }
  }

  // ---- instances ----

  instances(tenantId?: string): InstanceInfo[] {
    const out: InstanceInfo[] = [];
    for (const d of this.deployments.values()) {
      if (tenantId && d.app.tenantId !== tenantId) continue;
      for (const inst of d.pool?.all ?? []) {
        out.push({
          id: inst.id,
          tenantId: d.app.tenantId,
          appId: d.app.id,
          appName: d.app.name,
          revision: d.app.revision,
          kind: "reactor",
          state: inst.busy ? "busy" : "idle",
          placement: inst.placement ?? "executor",
          tier: d.tier.tier,
          startedAt: inst.startedAt,
          lastUsedAt: inst.lastUsedAt,
          requests: inst.requests,
          memoryBytes: inst.handle.memoryBytes(),
        });
      }
    }
    for (const i of [...this.commands.values(), ...this.services.values()]) if (!tenantId || i.tenantId === tenantId) out.push({ ...i });
    return out;
  }

  /** Stops one instance of the tenant; false when it has none with that id. */
  async stopInstance(tenantId: string, id: string): Promise<boolean> {
    for (const d of this.deployments.values()) {
      if (d.app.tenantId !== tenantId) continue;
      if (d.pool?.stop(id)) return true;
    }
    const svc = [...this.services.values()].find((s) => s.id === id && s.tenantId === tenantId);
    if (svc) {
      // A service is restarted by its supervisor; stopping it means undeploying the app.
      return false;
    }
    return false;
  }

  private reap(): void {
    const now = Date.now();
    for (const d of this.deployments.values()) d.pool?.reap(now);
    // Services and long runs charge their serving-thread time as they go, not only when they end.
    for (const t of this.tenants.values()) {
      this.settleHostTime(t);
      if (t.hostMsUnreported > 0) {
        this.observer.servingThreadTime?.({ tenantId: t.id, ms: t.hostMsUnreported });
        t.hostMsUnreported = 0;
      }
      for (const resource of ["cpu", "serving_thread"] as const) {
        const ms = t.pacedMsUnreported[resource];
        if (ms <= 0) continue;
        this.observer.paced?.({ tenantId: t.id, resource, ms });
        t.pacedMsUnreported[resource] = 0;
      }
    }
  }

  /**
   * Charges a tenant the serving-thread time spent on its behalf since the
   * last settlement: to its CPU window (the quota refuses a tenant that keeps
   * this thread busy) and to its scheduler debt (its next requests yield to
   * others'). Executor time counts the guest's parked wait for a provider as
   * well: the tenant held an executor and this thread, and pays for both.
   */
  settleHostTime(t: TenantRuntime): void {
    const ms = t.hostMs;
    if (ms <= 0) return;
    t.hostMs = 0;
    t.hostMsUnreported += ms;
    this.chargeCpu(t, ms);
    this.scheduler.charge(t.share, ms);
  }

  /** CPU time a tenant used: into its minute's window (the quota) and its CPU pacer (its share now). */
  private chargeCpu(t: TenantRuntime, ms: number): void {
    t.cpu.add(ms);
    t.cpuPacer.spend(ms);
  }

  /**
   * A tenant over its share of the node's CPU while others are active waits
   * until it is back within it (pacing.ts), holding nothing meanwhile; when
   * that is longer than its request may queue, or its queue is full, it is
   * refused instead.
   */
  private async paceCpu(t: TenantRuntime, appId: string, due: number, queueTimeoutMs: number): Promise<void> {
    if (due > queueTimeoutMs) {
      this.refuse(t, appId, new Refusal("tenant_cpu_exhausted", `tenant ${t.name} is over its share of the node's CPU while other tenants are active (back within it in ${Math.ceil(due)} ms)`, Math.ceil(due / 1000)));
    }
    if (t.paced >= t.share.maxQueue) this.refuse(t, appId, new Refusal("tenant_overloaded", `tenant ${t.name} has ${t.paced} requests waiting for its share of the node's CPU (quota maxQueue ${t.share.maxQueue})`, Math.ceil(due / 1000)));
    t.paced++;
    t.pacedMsUnreported.cpu += due;
    t.pacedWindow.add(due);
    try {
      await pause(due);
    } finally {
      t.paced--;
    }
  }

  tenantUsage(tenantId: string) {
    const t = this.tenants.get(tenantId);
    if (t) this.settleHostTime(t);
    const b = this.budget.tenant(tenantId);
    return {
      liveInstances: b.instances,
      reservedMemoryBytes: b.bytes,
      cpuMsLastMinute: t ? Math.round(t.cpu.used() * 1000) / 1000 : 0,
      /** How long pacing made it wait in the last minute (its requests for its CPU share, its guests for its share of the serving thread), ms. */
      pacedMsLastMinute: t ? Math.round(t.pacedWindow.used()) : 0,
      queued: this.scheduler.queuedFor(tenantId),
      quotas: t?.quotas ?? this.defaults,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.reaper);
    await Promise.all([...this.deployments.keys()].map((id) => this.undeploy(id)));
    await this.runner.close();
  }
}

function budgetRefusal(r: BudgetRefusal, t: TenantRuntime, d: Deployment): Refusal {
  switch (r) {
    case "tenant_memory":
      return new Refusal("tenant_memory_exhausted", `tenant ${t.name} has its ${t.quotas.memoryMiB} MiB memory quota in use (app ${d.app.name} needs ${Math.ceil(d.reservationBytes / MiB)} MiB)`, 1);
    case "tenant_instances":
      return new Refusal("tenant_overloaded", `tenant ${t.name} has ${t.quotas.maxInstances} live instances (its quota)`, 1);
    case "node_memory":
      return new Refusal("node_overloaded", "the node's memory budget is in use", 1);
  }
}

// Instance ids: a random per-process prefix and a counter (a WAGI request
// starts an instance, so this is on the hot path; randomBytes per id is not).
const INSTANCE_ID_PREFIX = "i_" + randomBytes(4).toString("base64url");
let instanceCounter = 0;
function newInstanceId(): string {
  return INSTANCE_ID_PREFIX + (++instanceCounter).toString(36);
}

/** The scheduler charges a run its executor time (the outcome's), not the wall time spent waiting for it. */
function chargedCost(r: RunOutcome | undefined, ms: number): number {
  return r?.durationMs ?? ms;
}

function shareOf(id: string, weight: number, quotas: TenantQuotas): TenantShare {
  return { id, weight, maxConcurrency: quotas.maxConcurrency, maxQueue: quotas.maxQueue };
}

/**
 * Sinks that add the time each chunk takes on this thread (the gateway's
 * parsing and socket writes) to a tenant's serving-thread time, and make its
 * guest wait when the tenant is ahead of its share of the thread (pacing.ts).
 */
class MeteredSinks implements OutputSinks {
  readonly lendStdout: boolean;

  constructor(
    private readonly sinks: OutputSinks,
    private readonly add: (ms: number, bytes?: number) => number,
  ) {
    this.lendStdout = sinks.lendStdout === true;
  }

  readonly onStdout = (chunk: Uint8Array): SinkResult => this.metered(this.sinks.onStdout, chunk);
  readonly onStderr = (chunk: Uint8Array): SinkResult => this.metered(this.sinks.onStderr, chunk);

  private metered(sink: (chunk: Uint8Array) => SinkResult, chunk: Uint8Array): SinkResult {
    const started = performance.now();
    let taken: SinkResult;
    try {
      taken = sink.call(this.sinks, chunk);
    } catch (err) {
      this.add(performance.now() - started, chunk.length);
      throw err;
    }
    const wait = this.add(performance.now() - started, chunk.length);
    if (wait <= 0) return taken;
    return taken ? taken.then(() => pause(wait)) : pause(wait);
  }
}

/** Output held until a run ends (an inline run that may be run again elsewhere), then sent in order. */
export class HeldOutput implements OutputSinks {
  private readonly chunks: { stream: "stdout" | "stderr"; chunk: Uint8Array }[] = [];
  readonly onStdout = (chunk: Uint8Array): void => void this.chunks.push({ stream: "stdout", chunk });
  readonly onStderr = (chunk: Uint8Array): void => void this.chunks.push({ stream: "stderr", chunk });
  sendTo(sinks: OutputSinks): void {
    for (const c of this.chunks) (c.stream === "stdout" ? sinks.onStdout : sinks.onStderr)(c.chunk);
  }
}
