/**
 * The inline placement of the engine (engine.ts): guests run on the calling
 * thread, through the same guest.ts path as in an executor — the same
 * prepared modules (memory and table limits, fuel), the same resolved limits,
 * outcome and reactor ABI.
 *
 * What differs is what a thread of its own would give:
 * - the deadline is a watchdog (node:vm's `timeout`, which interrupts the
 *   guest's code from another thread: ~0.1 ms per guarded call on the
 *   development VM) rather than ending a thread; a guest blocked in a host
 *   call (a read from a pipe, an open of a FIFO) is not interrupted until the
 *   call returns;
 * - `stackSizeMb` is the calling thread's own stack, not set per run;
 * - there is no separate V8 heap: what the guest makes V8 allocate outside
 *   linear memory (tables: bounded by maxTableElements) is in the caller's.
 * So inline is for embedding, tests and work that is bounded anyway (fuel);
 * untrusted work on a server belongs on an ExecutorPool.
 *
 * `runModule`, `runFile` and `runBytes` are this placement with the default
 * limits (DEFAULT_LIMITS).
 */
import { readFile } from "node:fs/promises";
import vm from "node:vm";
import { IoThread } from "../kernel/io-thread.js";
import { InstanceLimitError } from "../kernel/errors.js";
import type { BlockingIo } from "../kernel/io-bridge.js";
import type { ExtensionOptions, KernelOptions, OutputSpec } from "../kernel/options.js";
import type { ModuleLimits } from "../wasm/validate.js";
import { callReactor, runCommand, startReactor, type GuestHooks, type GuestOutcome, type LiveGuest, type PortableKernelOptions } from "./guest.js";
import { describeEnd, EXIT_CODES, resolveLimits, DEFAULT_LIMITS, type EndReason, type ResolvedLimits, type Limits } from "./limits.js";
import { MemoryRecycler } from "./memory-recycling.js";
import { ModuleCache, WasmImage, type ModuleSource, type PreparedModule } from "./modules.js";
import { ModulePreparer, type PreparePlacement } from "./preparer.js";
import type { ReactorArg } from "./reactor-abi.js";
import { prepareFailure, ReactorStartError, type CallOptions, type CallResult, type Engine, type Reactor, type RunOptions } from "./engine.js";

export interface InlineEngineOptions {
  /** Limits every run gets unless it says otherwise. Default: DEFAULT_LIMITS. */
  limits?: Limits;
  /**
   * Where modules are prepared: "inline" (default: here, synchronously) or
   * "worker" (a thread of its own, for a caller that serves requests).
   */
  prepare?: PreparePlacement;
  /** Most prepared modules kept. Default 64. */
  maxModules?: number;
  moduleLimits?: Partial<ModuleLimits>;
  /**
   * A run whose fuel is at most this many instructions, with no host call
   * that can block the thread (see `needsWatchdog`), runs without the
   * watchdog: fuel already bounds it, and the watchdog costs a thread per
   * guarded call (50-60 µs of CPU on the 2-core development VM, more than
   * the hop to an executor). Its deadline is then checked when it returns:
   * a run that overran it ends `deadline_exceeded`, its output dropped.
   * Default 0: every run with a deadline is watched.
   */
  unguardedFuel?: number;
}

/** Host calls that can block the calling thread (a sleep, a socket): a run importing one is always watched. */
const BLOCKING_IMPORTS = ["poll_oneoff", "sock_accept", "sock_recv", "sock_send"];

/** Run options of the inline placement: callbacks stay on this thread, so they are allowed. */
export interface InlineRunOptions extends Omit<RunOptions, "stdout" | "stderr" | "trace" | "extensions"> {
  stdout?: OutputSpec | "stream";
  stderr?: OutputSpec | "stream";
  /** A function receives strace-style lines; `true` sends them to `onTrace`. */
  trace?: boolean | ((line: string) => void);
  /** Extensions granted and their providers, called directly (they must answer synchronously). */
  extensions?: ExtensionOptions;
  /** Blocking socket I/O for `listeners` (an IoThread's client). */
  io?: BlockingIo;
}

const TIMEOUT_CODE = "ERR_SCRIPT_EXECUTION_TIMEOUT";

/**
 * The deadline watchdog: runs `fn` through node:vm with a timeout, which ends
 * the JavaScript (and wasm) running on this thread when it fires.
 */
class Watchdog {
  private readonly context = vm.createContext({ call: undefined as undefined | (() => unknown) });
  private readonly script = new vm.Script("call()");

  guard(deadlineAt: number): GuestHooks["guard"] {
    if (!Number.isFinite(deadlineAt)) return undefined;
    return <T>(fn: () => T): T => {
      const left = deadlineAt - performance.now();
      if (left <= 0) throw new InstanceLimitError("deadline_exceeded", "the deadline passed before the guest's code ran");
      const ctx = this.context as { call: undefined | (() => unknown) };
      const outer = ctx.call;
      ctx.call = fn;
      try {
        // setTimeout's range: a longer deadline is no deadline for this stretch.
        return this.script.runInContext(this.context, { timeout: Math.min(2 ** 31 - 1, Math.max(1, Math.ceil(left))) }) as T;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === TIMEOUT_CODE) throw new InstanceLimitError("deadline_exceeded", "stopped by the watchdog");
        throw err;
      } finally {
        ctx.call = outer;
      }
    };
  }
}

export class InlineEngine implements Engine {
  readonly placement = "inline" as const;
  readonly defaults: ResolvedLimits;
  private readonly preparer: ModulePreparer;
  private readonly modules: ModuleCache;
  private readonly recycler = new MemoryRecycler();
  private readonly watchdog = new Watchdog();
  private readonly unguardedFuel: bigint;
  private closed = false;

  constructor(options: InlineEngineOptions = {}) {
    this.defaults = resolveLimits(options.limits ?? {}, DEFAULT_LIMITS);
    this.unguardedFuel = BigInt(options.unguardedFuel ?? 0);
    this.preparer = new ModulePreparer(options.prepare ?? "inline");
    this.modules = new ModuleCache(this.preparer, options.maxModules ?? 64, options.moduleLimits);
  }

  limits(overrides?: Limits): ResolvedLimits {
    return resolveLimits(overrides ?? {}, this.defaults);
  }

  prepare(source: ModuleSource, limits: ResolvedLimits, forSnapshot = false): Promise<PreparedModule> {
    return this.modules.get(source, limits, forSnapshot);
  }

  isPrepared(source: ModuleSource, limits: ResolvedLimits, forSnapshot = false): boolean {
    return this.modules.has(source, limits, forSnapshot);
  }

  /** `prepare` for synchronous callers: on this thread (cached the same way). Throws a WasmError. */
  prepareSync(source: ModuleSource, limits: ResolvedLimits, forSnapshot = false): PreparedModule {
    return this.modules.getSync(source, limits, forSnapshot);
  }

  /** @internal A trap's frames in the original module's offsets, with source lines from DWARF. */
  inOriginal(outcome: GuestOutcome, key: string): GuestOutcome {
    return this.modules.inOriginal(outcome, key);
  }

  async run(source: ModuleSource, options: InlineRunOptions = {}): Promise<GuestOutcome> {
    const started = performance.now();
    const limits = options.limits === undefined ? this.defaults : this.limits(options.limits);
    let prepared = this.modules.now(source, limits, options.snapshot !== undefined);
    if (!prepared) {
      try {
        prepared = await this.prepare(source, limits, options.snapshot !== undefined);
      } catch (err) {
        return prepareFailure(err, limits, started);
      }
    }
    return this.runPrepared(prepared, options, limits);
  }

  /** Runs a command from a module prepared already (synchronously). */
  runPrepared(prepared: PreparedModule, options: InlineRunOptions = {}, limits: ResolvedLimits = this.defaults): GuestOutcome {
    if (this.closed) throw new Error("the inline engine is closed");
    const started = performance.now();
    const watched = this.needsWatchdog(prepared, limits, options);
    const { kernel, hooks } = this.split(options, watched ? started + limits.timeoutMs : Infinity);
    const outcome = runCommand(prepared, kernel, limits, hooks, options.snapshot);
    return this.inOriginal(watched ? outcome : overran(outcome, limits), prepared.key);
  }

  /**
   * Whether a run needs the watchdog to end at its deadline: unless fuel
   * bounds it (at most `unguardedFuel`) and nothing in it can block the
   * thread (a blocking import, stdin from a descriptor, sockets, extensions
   * whose providers may wait).
   */
  needsWatchdog(prepared: PreparedModule, limits: ResolvedLimits, options: InlineRunOptions): boolean {
    if (!Number.isFinite(limits.timeoutMs)) return false;
    if (limits.fuel === null || limits.fuel > this.unguardedFuel || !prepared.metered) return true;
    if (options.io || options.listeners?.length || options.extensions) return true;
    if (options.stdin !== undefined && !(options.stdin instanceof Uint8Array)) return true;
    for (const key of prepared.signatures.keys()) if (BLOCKING_IMPORTS.includes(key.slice(key.lastIndexOf(".") + 1))) return true;
    return false;
  }

  async reactor(source: ModuleSource, options: InlineRunOptions = {}): Promise<InlineReactor> {
    const limits = this.limits(options.limits);
    const started = performance.now();
    let prepared: PreparedModule;
    try {
      prepared = await this.prepare(source, limits, options.snapshot !== undefined);
    } catch (err) {
      throw new ReactorStartError(prepareFailure(err, limits, started));
    }
    const r = new InlineReactor(this, prepared, options, limits);
    const outcome = r.start();
    if (outcome.reason !== "exit") throw new ReactorStartError(outcome);
    return r;
  }

  /** @internal Kernel options that stay plain data, and the hooks that carry this thread's callbacks. */
  split(options: InlineRunOptions, deadlineAt: number): { kernel: PortableKernelOptions; hooks: GuestHooks } {
    const { limits: _l, snapshot: _s, onOutput, lendStdout: _ls, onTrace, holdOutputBytes: _h, stdout, stderr, trace, extensions, io, ...rest } = options;
    const hooks: GuestHooks = { recycler: this.recycler };
    const guard = this.watchdog.guard(deadlineAt);
    if (guard) hooks.guard = guard;
    if (io) hooks.io = io;
    if (extensions) hooks.localExtensions = extensions;
    const callbacks: Partial<Record<"stdout" | "stderr", (chunk: Uint8Array) => void>> = {};
    const stream = (name: "stdout" | "stderr", spec: InlineRunOptions["stdout"]): PortableKernelOptions["stdout"] => {
      if (typeof spec !== "function") return spec;
      callbacks[name] = spec;
      return "stream";
    };
    const kernel: PortableKernelOptions = { ...rest };
    const out = stream("stdout", stdout);
    const err = stream("stderr", stderr);
    if (out !== undefined) kernel.stdout = out;
    if (err !== undefined) kernel.stderr = err;
    if (callbacks.stdout || callbacks.stderr || onOutput) {
      hooks.onOutput = (name, chunk) => {
        const cb = callbacks[name];
        if (cb) cb(chunk);
        else onOutput?.(name, chunk);
      };
    }
    if (typeof trace === "function") {
      kernel.trace = true;
      hooks.onTrace = trace;
    } else if (trace) {
      kernel.trace = true;
      if (onTrace) hooks.onTrace = onTrace;
    }
    return { kernel, hooks };
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.preparer.close();
  }
}

/** A warm reactor on the calling thread (engine.ts's Reactor). */
export class InlineReactor implements Reactor {
  private guest: LiveGuest | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  restarts = -1;
  closed = false;

  constructor(
    private readonly engine: InlineEngine,
    readonly prepared: PreparedModule,
    private readonly options: InlineRunOptions,
    readonly limits: ResolvedLimits,
  ) {}

  get live(): boolean {
    return this.guest !== undefined;
  }

  /** @internal Starts a fresh instance (its initializer runs under the reactor's deadline). */
  start(): GuestOutcome {
    const watched = this.engine.needsWatchdog(this.prepared, this.limits, this.options);
    const { kernel, hooks } = this.engine.split(this.options, watched ? performance.now() + this.limits.timeoutMs : Infinity);
    const { guest, outcome } = startReactor(this.prepared, kernel, this.limits, hooks, this.options.snapshot);
    if (guest) {
      this.guest = guest;
      this.restarts++;
    }
    return this.engine.inOriginal(outcome, this.prepared.key);
  }

  call(name: string, args: readonly ReactorArg[] = [], options: CallOptions = {}): Promise<CallResult> {
    const run = this.chain.then(() => this.callNow(name, args, options));
    this.chain = run.catch(() => {});
    return run;
  }

  private callNow(name: string, args: readonly ReactorArg[], options: CallOptions): CallResult {
    if (this.closed) throw new Error("the reactor is closed");
    const limits = resolveLimits({ ...options.limits }, this.limits);
    if (!this.guest) {
      const outcome = this.start();
      if (!this.guest) return { value: undefined, outcome };
    }
    const guest = this.guest!;
    guest.limits = limits;
    const watched = this.engine.needsWatchdog(this.prepared, limits, this.options);
    const guard = watched ? this.engine.split({}, performance.now() + limits.timeoutMs).hooks.guard : undefined;
    if (guard) guest.guard = guard;
    else delete guest.guard;
    const called = callReactor(guest, name, args, options.result ?? "value");
    const raw = watched ? called.outcome : overran(called.outcome, limits);
    if (raw.reason === "deadline_exceeded") guest.ended = raw.reason;
    const value = raw === called.outcome ? called.value : undefined;
    const outcome = this.engine.inOriginal(raw, this.prepared.key);
    // An instance that trapped or hit a limit may hold broken state: never call it again.
    if (guest.ended) {
      guest.kernel.close();
      this.guest = undefined;
    }
    return { value, outcome };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.guest?.kernel.close();
    this.guest = undefined;
  }
}

/** An unwatched run that returned after its deadline: ended at the deadline, as a watched one would have been. */
function overran(outcome: GuestOutcome, limits: ResolvedLimits): GuestOutcome {
  if (outcome.reason !== "exit" || outcome.durationUs <= limits.timeoutMs * 1000) return outcome;
  const detail = `the guest returned after ${(outcome.durationUs / 1000).toFixed(1)} ms (fuel-bounded, checked on return)`;
  return { ...outcome, reason: "deadline_exceeded", exitCode: EXIT_CODES.deadline_exceeded, message: describeEnd("deadline_exceeded", limits, detail), stdout: new Uint8Array(0), stderr: new Uint8Array(0) };
}

// ---- the library's one-call functions ---------------------------------------------

/** How a run ended: the engine's one outcome (guest.ts). */
export type RunResult = GuestOutcome;
export type RunReason = EndReason;

/** Options of runModule/runBytes: the kernel's grants, callbacks allowed, and the limits (defaults: DEFAULT_LIMITS). */
export interface RunModuleOptions extends Omit<KernelOptions, "limits" | "io" | "hostWork" | "stdout" | "stderr" | "trace"> {
  stdout?: OutputSpec;
  stderr?: OutputSpec;
  trace?: (line: string) => void;
  limits?: Limits;
  io?: BlockingIo;
}

export interface RunFileOptions extends Omit<RunModuleOptions, "listeners" | "io"> {
  /** Addresses to listen on ("127.0.0.1:8080"), granted as preopened sockets after the directories. */
  tcpListen?: readonly string[];
  /** Called with each bound address once listening (useful with port 0). */
  onListening?: (address: string) => void;
}

function once(bytes: Uint8Array): WasmImage {
  // One run, one engine: the cache key needs no digest.
  return new WasmImage(bytes, "once");
}

function toInline(options: RunModuleOptions): InlineRunOptions {
  const { limits, ...rest } = options;
  return limits ? { ...rest, limits } : rest;
}

/**
 * Runs a WASI command (`_start`) on this thread with the default limits
 * (DEFAULT_LIMITS, or `options.limits`). Everything — an invalid module, a
 * link error, a trap, a limit — is in the outcome's `reason`; it never
 * throws for what the module or guest does.
 */
export async function runModule(bytes: Uint8Array, options: RunModuleOptions = {}): Promise<RunResult> {
  return runModuleSync(bytes, options);
}

/** runModule for callers that must stay synchronous. */
export function runModuleSync(bytes: Uint8Array, options: RunModuleOptions = {}): RunResult {
  if (!(bytes instanceof Uint8Array)) throw new TypeError("runModule takes the module's bytes (it prepares them for the limits)");
  const engine = new InlineEngine();
  const limits = engine.limits(options.limits);
  let prepared: PreparedModule;
  try {
    prepared = engine.prepareSync(once(bytes), limits);
  } catch (err) {
    return prepareFailure(err, limits, performance.now());
  }
  return engine.runPrepared(prepared, toInline(options), limits);
}

/**
 * Runs a WASI command file on this thread, as runModule does. Listening
 * sockets are served by an I/O thread while the guest blocks in host calls.
 */
export async function runFile(path: string, options: RunFileOptions = {}): Promise<RunResult> {
  return runBytes(new Uint8Array(await readFile(path)), options);
}

/** runFile for module bytes already in hand (an image's module, say). */
export async function runBytes(bytes: Uint8Array, options: RunFileOptions = {}): Promise<RunResult> {
  const { tcpListen, onListening, ...rest } = options;
  if (!tcpListen || tcpListen.length === 0) return runModuleSync(bytes, rest);
  const io = IoThread.start();
  try {
    const listeners = [];
    for (const address of tcpListen) {
      const l = await io.listen(address);
      listeners.push({ id: l.handle, address: l.address });
      onListening?.(l.address);
    }
    return runModuleSync(bytes, { ...rest, listeners, io: await io.client() });
  } finally {
    await io.close();
  }
}
