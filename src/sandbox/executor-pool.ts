/**
 * The executor pool: instances never run on the thread that serves requests,
 * but in a fixed set of worker threads (one V8 isolate each).
 *
 * - Modules are prepared once per node: checked, rewritten for the limits
 *   (memory ceiling, fuel metering, snapshot exports), compiled, and cached by
 *   digest + rewrites. An executor receives the compiled WebAssembly.Module
 *   the first time it needs it (postMessage shares the code, no recompiling).
 * - Commands get a fresh instance per run; reactors stay warm in the executor
 *   that created them and are called many times.
 * - A run past its deadline terminates its executor, which is replaced; queued
 *   work is kept (pool-wide queue) or retried (calls queued on reactors of the
 *   lost executor re-create their reactor first, see Reactor).
 * - Executors with another V8 stack size (`stackSizeMb`) are spawned on demand
 *   and retire after a few idle seconds.
 * - Socket listeners: the pool hosts the async end of the kernel's blocking
 *   I/O bridge (`pool.io`); each executor gets its own channel to it.
 */
import { availableParallelism } from "node:os";
import { IoServer } from "../kernel/io-bridge.js";
import { ExecutorLostError, WORKER_LAUNCHER, type Body, type ExecutorHandle, type ExecutorLauncher, type Job, type Reply } from "./executor.js";
import type { GuestOutcome, PortableKernelOptions } from "./guest.js";
import { resolveLimits, DEFAULT_LIMITS, type ResolvedLimits, type Limits } from "./limits.js";
import { ModuleCache, type ModuleSource, type PreparedModule } from "./modules.js";
import { ModulePreparer, type PreparePlacement } from "./preparer.js";
import type { ModuleLimits } from "../wasm/validate.js";
import type { ModuleRef } from "./protocol.js";
import type { Snapshot } from "./snapshot.js";
import { HostCallSessions, type PortableExtensions } from "./host-calls.js";
import { extensionModuleUrl } from "./extension-modules.js";
import { lostOutcome, prepareFailure, ReactorStartError, type Engine, type RunOptions, type SandboxResult } from "./engine.js";
import { ExecutorReactor } from "./executor-reactor.js";

export { WasmImage, type ModuleSource } from "./modules.js";
export { ReactorStartError, prepareFailure, type RunOptions, type SandboxResult, type CallOptions, type CallResult, type Reactor } from "./engine.js";

export interface ExecutorPoolOptions {
  /** Executors (worker threads) kept running. Default: the number of CPUs. */
  size?: number;
  /** Limits every run gets unless it says otherwise. Default: DEFAULT_LIMITS. */
  limits?: Limits;
  /** Most prepared modules kept (least recently used are dropped). Default 256. */
  maxModules?: number;
  /** Idle time after which an executor with a non-default stack size retires, ms. Default 5000. */
  extraIdleMs?: number;
  /** Modules (paths or URLs) exporting embedder-defined extensions that every executor offers (extension-modules.ts). */
  extensionModules?: readonly (string | URL)[];
  /**
   * V8 heap of each executor, MiB (its JS objects: tables, export wrappers,
   * kernel state of the instances it runs and hosts; linear memories are
   * not on it). An executor that reaches it ends (the request it was running
   * gets `memory_limit`) and is replaced; the process goes on. Default 512.
   */
  executorHeapMb?: number;
  /**
   * Where modules are checked, rewritten and compiled: "worker" (default: a
   * thread of its own, never the caller's) or "inline" (the calling thread;
   * for a CLI that serves nothing else). See preparer.ts.
   */
  prepare?: PreparePlacement;
  /** Structural bounds on modules (src/wasm/validate.ts); default DEFAULT_MODULE_LIMITS. */
  moduleLimits?: Partial<ModuleLimits>;
  /** Where executors live (the tier). Default: worker threads of this process (the isolate tier). */
  launcher?: ExecutorLauncher;
}

export const DEFAULT_EXECUTOR_HEAP_MB = 512;

interface QueuedJob extends Job {
  stackSizeMb: number;
}

let nextInstanceId = 1;
let nextSnapshotId = 1;

export class ExecutorPool implements Engine {
  readonly placement = "executor" as const;
  readonly size: number;
  readonly defaults: ResolvedLimits;
  /** Where the executors live: `launcher.tier` is "isolate" (worker threads), "process" or "gvisor". */
  readonly launcher: ExecutorLauncher;
  /** The async end of the blocking socket bridge: `await pool.io.listen("127.0.0.1:0")` gives a listener id. */
  readonly io = new IoServer();
  /** Extension provider sessions of running guests, served through `io` (host-calls.ts). */
  readonly hostCalls = new HostCallSessions();
  private readonly extensionModules: string[];
  private readonly executors: ExecutorHandle[] = [];
  private readonly queue: QueuedJob[] = [];
  private readonly modules: ModuleCache;
  private readonly extraIdleMs: number;
  readonly executorHeapMb: number;
  private readonly preparer: ModulePreparer;
  /** Executors ended (deadline, heap, crash) whose thread has not stopped yet. */
  private readonly lingering = new Set<ExecutorHandle>();
  private closed = false;
  private retireTimer: NodeJS.Timeout | undefined;
  /** Executors in a row that died before they were ready. */
  private bootFailures = 0;
  /** Counters for `stats()`. */
  private counters = { replaced: 0, deadlineKills: 0, heapKills: 0, runs: 0 };

  constructor(options: ExecutorPoolOptions = {}) {
    this.size = Math.max(1, Math.floor(options.size ?? availableParallelism()));
    this.defaults = resolveLimits(options.limits ?? {}, DEFAULT_LIMITS);
    this.extraIdleMs = options.extraIdleMs ?? 5000;
    this.extensionModules = (options.extensionModules ?? []).map(extensionModuleUrl);
    this.io.hostCalls = this.hostCalls.handler;
    this.launcher = options.launcher ?? WORKER_LAUNCHER;
    this.preparer = new ModulePreparer(options.prepare ?? "worker");
    // Out-of-process executors compile the module again, inside their wall: they need its rewritten bytes.
    this.modules = new ModuleCache(this.preparer, options.maxModules ?? 256, options.moduleLimits, (key) => this.forget(key), this.launcher.needsModuleBytes);
    this.executorHeapMb = options.executorHeapMb ?? DEFAULT_EXECUTOR_HEAP_MB;
    if (!Number.isSafeInteger(this.executorHeapMb) || this.executorHeapMb < 16) {
      throw new RangeError(`executorHeapMb must be an integer of at least 16 (MiB), got ${options.executorHeapMb}`);
    }
    for (let i = 0; i < this.size; i++) this.spawn(this.defaults.stackSizeMb, false);
  }

  /** Resolves per-run limits against the pool's defaults (throws LimitOptionError). */
  limits(overrides?: Limits): ResolvedLimits {
    return resolveLimits(overrides ?? {}, this.defaults);
  }

  stats(): { executors: number; ready: number; busy: number; queued: number; modules: number; lingering: number; compiled: number; cacheHits: number } & ExecutorPool["counters"] {
    return {
      executors: this.executors.length,
      lingering: this.lingering.size,
      ready: this.executors.filter((e) => e.ready).length,
      busy: this.executors.filter((e) => e.busy).length,
      queued: this.queue.length + this.executors.reduce((n, e) => n + e.pinned.length, 0),
      modules: this.modules.size,
      ...this.modules.counters,
      ...this.counters,
    };
  }

  /** Pids of the executors' processes (sandboxed tiers; empty for worker threads): what `ps` and a crash test look at. */
  processes(): { pid: number; busy: boolean }[] {
    return this.executors.flatMap((e) => (e.pid !== undefined ? [{ pid: e.pid, busy: e.busy }] : []));
  }

  /** Resolves once every executor has booted (after start-up, or after replacements). */
  async whenReady(): Promise<void> {
    while (!this.closed && this.executors.some((e) => !e.ready)) {
      if (this.bootFailures >= 3) throw new ExecutorLostError(`executors cannot start (${this.bootFailures} in a row)`, false);
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  // ---- modules -------------------------------------------------------------

  /**
   * Checks, rewrites and compiles a module for the given limits, once (on the
   * preparer's thread): later calls with the same bytes and the same
   * rewrites get the cached result. Rejects with a WasmError (invalid
   * module, or above a memory or table limit).
   */
  prepare(source: ModuleSource, limits: ResolvedLimits, forSnapshot = false): Promise<PreparedModule> {
    return this.modules.get(source, limits, forSnapshot);
  }

  /** Whether the module is prepared (or being prepared) for these limits already. */
  isPrepared(source: ModuleSource, limits: ResolvedLimits, forSnapshot = false): boolean {
    return this.modules.has(source, limits, forSnapshot);
  }

  /** @internal A trap's frames in the original module's offsets, with source lines from DWARF (ModuleCache.inOriginal). */
  inOriginal(outcome: GuestOutcome, key: string): GuestOutcome {
    return this.modules.inOriginal(outcome, key);
  }

  /** A module dropped from the cache: executors that hold it let it go. */
  private forget(key: string): void {
    for (const ex of this.executors) {
      if (!ex.modules.delete(key)) continue;
      this.submitTo(ex, () => ({ op: "forget", key }), Infinity).catch(() => {});
    }
  }

  /** The module reference to send to `ex`: the whole module the first time, then its key. */
  private ref(ex: ExecutorHandle, prepared: PreparedModule): ModuleRef {
    if (ex.modules.has(prepared.key)) return { key: prepared.key };
    ex.modules.add(prepared.key);
    return { key: prepared.key, prepared };
  }

  // ---- commands ------------------------------------------------------------

  /**
   * Runs a command (`_start`) in a fresh instance on some executor. Never
   * throws for anything the module or guest does: an invalid module, a link
   * error, a trap or a limit is in the result's `reason`.
   */
  async run(source: ModuleSource, options: RunOptions = {}): Promise<SandboxResult> {
    const started = performance.now();
    // Most runs take the pool's limits: resolved once, never mutated.
    const limits = options.limits === undefined ? this.defaults : this.limits(options.limits);
    const { snapshot, onOutput, lendStdout, onTrace, holdOutputBytes, limits: _l, extensions, nested, ...rest } = options;
    let prepared = this.modules.now(source, limits, snapshot !== undefined);
    if (!prepared) {
      try {
        prepared = await this.prepare(source, limits, snapshot !== undefined);
      } catch (err) {
        return prepareFailure(err, limits, started);
      }
    }
    if (snapshot && snapshot.moduleKey !== prepared.key) {
      throw new Error(`snapshot ${snapshot.id} was taken from module ${snapshot.moduleKey}, not ${prepared.key} (same bytes and limits are needed)`);
    }
    this.counters.runs++;
    const module = prepared;
    const session = extensions ? this.hostCalls.open(extensions) : undefined;
    const kernel: PortableKernelOptions = session ? { ...rest, extensions: session } : rest;
    try {
      const reply = await this.submit(
        {
          build: (ex) => {
            const body: Body = { op: "run", module: this.ref(ex, module), options: kernel, limits };
            if (snapshot) body.snapshot = snapshot;
            if (holdOutputBytes) (body as { holdOutput?: number }).holdOutput = holdOutputBytes;
            return body;
          },
          timeoutMs: limits.timeoutMs,
          limits,
          onOutput,
          ...(lendStdout ? { lendStdout } : {}),
          onTrace,
        },
        limits.stackSizeMb,
        nested === true,
      );
      return this.inOriginal(reply.outcome!, module.key);
    } catch (err) {
      return lostOutcome(err, limits, started, err instanceof ExecutorLostError);
    } finally {
      this.hostCalls.close(session);
    }
  }

  // ---- snapshots -----------------------------------------------------------

  /**
   * Runs the module's initializer (`wizer.initialize`, else `_initialize`) once
   * and captures the state it leaves. Pass the snapshot to `run` or `reactor`
   * (same bytes, same memory and fuel settings) to start from it.
   * Throws when initialization does not end normally.
   */
  async snapshot(source: ModuleSource, options: Omit<RunOptions, "snapshot"> = {}): Promise<Snapshot> {
    const limits = this.limits(options.limits);
    const { onOutput: _o, lendStdout: _ls, onTrace: _t, holdOutputBytes: _h, limits: _l, extensions: _e, ...kernel } = options;
    if (_e) throw new Error("cannot snapshot a run with extensions: a snapshot holds no provider state");
    const prepared = await this.prepare(source, limits, true);
    const snapshotId = `snap-${process.pid}-${nextSnapshotId++}`;
    const reply = await this.submit(
      { build: (ex) => ({ op: "snapshot", module: this.ref(ex, prepared), options: kernel, limits, snapshotId }) as Body, timeoutMs: limits.timeoutMs, limits },
      limits.stackSizeMb,
    );
    if (!reply.snapshot) throw new Error(`cannot snapshot: initialization ended with ${reply.outcome?.reason}: ${reply.outcome?.message}`);
    return reply.snapshot;
  }

  // ---- reactors ------------------------------------------------------------

  /**
   * Starts a warm reactor: instantiated once (then `_initialize`, or restored
   * from `snapshot`), and called many times with `reactor.call`. Throws
   * ReactorStartError when it cannot start (invalid module, link error, its
   * initializer trapped or hit a limit).
   */
  async reactor(source: ModuleSource, options: RunOptions = {}): Promise<ExecutorReactor> {
    const limits = this.limits(options.limits);
    const started = performance.now();
    let prepared: PreparedModule;
    try {
      prepared = await this.prepare(source, limits, options.snapshot !== undefined);
    } catch (err) {
      throw new ReactorStartError(prepareFailure(err, limits, started));
    }
    const r = new ExecutorReactor(this, prepared, options, limits);
    try {
      await r.start();
    } catch (err) {
      await r.close();
      throw err;
    }
    return r;
  }

  /** @internal Starts a reactor instance on some executor; resolves to where it lives. */
  async startInstance(prepared: PreparedModule, options: RunOptions, limits: ResolvedLimits, session?: PortableExtensions): Promise<{ executor: ExecutorHandle; instanceId: number; outcome: GuestOutcome }> {
    const { snapshot, onOutput, lendStdout: _ls, onTrace, holdOutputBytes: _h, limits: _l, extensions: _e, nested, ...rest } = options;
    const kernel: PortableKernelOptions = session ? { ...rest, extensions: session } : rest;
    const instanceId = nextInstanceId++;
    let executor: ExecutorHandle | undefined;
    const reply = await this.submit(
      {
        build: (ex) => {
          executor = ex;
          return { op: "reactor", module: this.ref(ex, prepared), options: kernel, limits, instanceId, ...(snapshot ? { snapshot } : {}) } as Body;
        },
        timeoutMs: limits.timeoutMs,
        limits,
        ...(onOutput ? { onOutput } : {}),
        ...(onTrace ? { onTrace } : {}),
      },
      limits.stackSizeMb,
      nested === true,
    );
    if (reply.outcome!.reason === "exit" && executor?.alive) executor.instances.add(instanceId);
    return { executor: executor!, instanceId, outcome: this.inOriginal(reply.outcome!, prepared.key) };
  }

  // ---- scheduling ----------------------------------------------------------

  /** Queues a job for any executor with the right stack size. */
  private submit(job: Omit<Job, "resolve" | "reject">, stackSizeMb: number, nested = false): Promise<Reply> {
    if (this.closed) return Promise.reject(new Error("the executor pool is closed"));
    return new Promise<Reply>((resolve, reject) => {
      const queued: QueuedJob = { build: job.build, timeoutMs: job.timeoutMs, limits: job.limits, onOutput: job.onOutput, onTrace: job.onTrace, resolve, reject, stackSizeMb };
      if (job.lendStdout) queued.lendStdout = true;
      // An idle executor means nothing of this stack size is queued (idle ones take queued work at once).
      const idle = this.idleExecutor(stackSizeMb);
      if (idle) return idle.start(queued);
      // Nested work goes first and gets an executor of its own when none is free: its caller waits for it.
      if (nested) this.queue.unshift(queued);
      else this.queue.push(queued);
      const extras = this.executors.filter((e) => e.extra && e.stackSizeMb === stackSizeMb && (!e.ready || !e.busy)).length;
      if (!this.executors.some((e) => e.stackSizeMb === stackSizeMb)) this.spawn(stackSizeMb, true);
      else if (nested && extras === 0 && this.executors.filter((e) => e.extra).length < this.size * 2) this.spawn(stackSizeMb, true);
      this.pump();
    });
  }

  /** The idle executor with this stack size hosting the fewest reactors (so warm instances spread out). */
  private idleExecutor(stackSizeMb: number): ExecutorHandle | undefined {
    let best: ExecutorHandle | undefined;
    for (const ex of this.executors) {
      if (ex.busy || !ex.alive || !ex.ready || ex.stackSizeMb !== stackSizeMb || ex.pinned.length > 0) continue;
      if (!best || ex.instances.size < best.instances.size) best = ex;
    }
    return best;
  }

  /** @internal Queues a job that must run on `ex` (a call on a reactor it hosts). */
  submitTo(ex: ExecutorHandle, build: Job["build"], timeoutMs: number, extra: Partial<Job> = {}): Promise<Reply> {
    if (!ex.alive) return Promise.reject(new ExecutorLostError(`executor ${ex.id} is gone`, false));
    return new Promise<Reply>((resolve, reject) => {
      ex.pinned.push({ ...extra, build, timeoutMs, resolve, reject });
      if (!ex.busy) this.next(ex);
    });
  }

  private spawn(stackSizeMb: number, extra: boolean): ExecutorHandle {
    const ex = this.launcher.launch(
      { stackSizeMb, heapMb: this.executorHeapMb, io: this.io, extra, extensionModules: this.extensionModules },
      {
        idle: (e) => this.next(e),
        dead: (e, why) => this.onDead(e, why),
        exited: (e) => this.lingering.delete(e),
      },
    );
    this.executors.push(ex);
    if (extra) this.scheduleRetire();
    return ex;
  }

  private onDead(ex: ExecutorHandle, why: string): void {
    const i = this.executors.indexOf(ex);
    if (i >= 0) this.executors.splice(i, 1);
    if (ex.killedAtDeadline) this.counters.deadlineKills++;
    if (ex.outOfHeap) this.counters.heapKills++;
    if (!ex.exited) this.lingering.add(ex);
    if (this.closed) return;
    this.counters.replaced++;
    // Executors that die before they boot (a broken sandbox) will die again: after a few in a
    // row, queued work fails with the reason instead of waiting for an executor that never comes.
    if (ex.ready) this.bootFailures = 0;
    else if (++this.bootFailures >= 3) {
      for (const j of this.queue.splice(0)) j.reject(new ExecutorLostError(`executors cannot start (${this.bootFailures} in a row): ${why}`, false));
    }
    // Keep the pool at its size; an extra executor is re-spawned only if work still needs its stack size.
    if (!ex.extra || this.queue.some((j) => j.stackSizeMb === ex.stackSizeMb)) this.spawn(ex.stackSizeMb, ex.extra);
    this.pump();
  }

  private pump(): void {
    // Idle executors hosting fewer reactors first, so warm instances spread out.
    const idle = this.executors.filter((e) => !e.busy && e.alive);
    if (idle.length > 1) idle.sort((a, b) => a.instances.size - b.instances.size);
    for (const ex of idle) this.next(ex);
  }

  /** Gives an idle executor its next job: its own pinned work first, then the pool's queue. */
  private next(ex: ExecutorHandle): void {
    if (ex.busy || !ex.alive || !ex.ready) return;
    const pinned = ex.pinned.shift();
    if (pinned) {
      ex.start(pinned);
      return;
    }
    const i = this.queue.findIndex((j) => j.stackSizeMb === ex.stackSizeMb);
    if (i < 0) return;
    const [job] = this.queue.splice(i, 1);
    ex.start(job!);
  }

  private scheduleRetire(): void {
    if (this.retireTimer) return;
    this.retireTimer = setInterval(() => {
      const now = Date.now();
      for (const ex of [...this.executors]) {
        if (ex.extra && !ex.busy && ex.pinned.length === 0 && ex.instances.size === 0 && now - ex.idleSince > this.extraIdleMs) void ex.close();
      }
      if (!this.executors.some((e) => e.extra)) {
        clearInterval(this.retireTimer);
        this.retireTimer = undefined;
      }
    }, Math.max(100, this.extraIdleMs / 2));
    this.retireTimer.unref();
  }

  /** RSS and instance counts per executor (for density measurements). */
  async executorStats(): Promise<{ id: number; modules: number; instances: number; rssBytes: number }[]> {
    const out = [];
    for (const ex of [...this.executors]) {
      const r = await this.submitTo(ex, () => ({ op: "stats" }), Infinity);
      out.push({ id: ex.id, ...r.stats! });
    }
    return out;
  }

  /**
   * Ends every executor; queued work is rejected. Resolves when their
   * threads have stopped, or after `waitMs` for those that do not (a thread
   * blocked in a host system call stops only when the call returns).
   */
  async close(options: { waitMs?: number } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.retireTimer) clearInterval(this.retireTimer);
    for (const j of this.queue.splice(0)) j.reject(new Error("the executor pool was closed"));
    const waitMs = options.waitMs ?? Infinity;
    await Promise.all([...this.executors, ...this.lingering].map((e) => e.close(waitMs)));
    await this.preparer.close();
    await this.io.close();
  }
}
