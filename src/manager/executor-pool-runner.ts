/**
 * The manager's runner over the sandbox's one engine. `ExecutorPoolRunner`
 * places guests on an ExecutorPool (worker threads: what a node uses);
 * `InProcessRunner` (in-process-runner.ts) places them inline on the calling
 * thread. Same code, same limits, same outcome classification, same reactor
 * ABI: only the Engine differs.
 */
import { ExecutorPool } from "../sandbox/executor-pool.js";
import { prepareFailure, ReactorStartError, type Engine, type Placement, type Reactor } from "../sandbox/engine.js";
import { InlineEngine } from "../sandbox/inline.js";
import type { GuestOutcome } from "../sandbox/guest.js";
import type { Limits } from "../limits.js";
import { formatSize } from "../units.js";
import { WasmImage } from "../sandbox/modules.js";
import { checkReactorExports, HTTP_HANDLE_EXPORT } from "../sandbox/reactor-abi.js";
import type { CommandRequest, InstanceRunner, ModuleRef, OutputSinks, PrepareReport, ReactorHandle, ReactorStart, RunOutcome } from "./runner.js";
import { kernelGrants, RunnerError } from "./runner.js";

export interface ExecutorPoolRunnerOptions {
  /** Worker threads. Default: the number of CPUs. */
  executors?: number;
  /** Embedder-defined extensions every executor offers (see ExecutorPoolOptions.extensionModules). */
  extensionModules?: readonly (string | URL)[];
}

function toOutcome(o: GuestOutcome): RunOutcome {
  const out: RunOutcome = {
    reason: o.reason,
    exitCode: o.reason === "exit" ? o.exitCode : null,
    durationMs: o.durationUs / 1000,
    memoryBytes: o.memoryBytes,
    deniedCalls: o.denied,
  };
  if (o.reason !== "exit" && o.message) out.message = o.message;
  if (o.trap) out.trap = o.trap;
  if (o.fuelConsumed !== undefined) out.fuelUsed = Number(o.fuelConsumed);
  return out;
}

/** Why a reactor call's output is over the call's limits (a run's are enforced by its kernel as it writes), else undefined. */
function overOutputLimit(o: GuestOutcome, limits: Limits): string | undefined {
  for (const [stream, bytes, limit] of [["stdout", o.stdout.length, limits.stdoutBytes], ["stderr", o.stderr.length, limits.stderrBytes]] as const) {
    if (limit !== undefined && bytes > limit) return `output limit reached: the call wrote ${bytes} bytes to ${stream}, over its limit of ${formatSize(limit)}`;
  }
  return undefined;
}

/** An InstanceRunner over one placement of the engine. */
export class EngineRunner implements InstanceRunner {
  private readonly images = new Map<string, WasmImage>();
  private readonly reactorProblems = new Map<string, string>();

  constructor(
    readonly engine: Engine,
    readonly name: string,
    /** How many guests can truly run at once (the fair scheduler's slots). */
    readonly executors: number,
  ) {}

  get placement(): Placement {
    return this.engine.placement;
  }

  private image(m: ModuleRef): WasmImage {
    let img = this.images.get(m.digest);
    if (!img) {
      // The digest is the store's (sha256:<hex>): not hashed again on the serving thread.
      img = new WasmImage(m.bytes, m.digest.startsWith("sha256:") ? m.digest.slice("sha256:".length) : undefined);
      this.images.set(m.digest, img);
    }
    return img;
  }

  async prepare(module: ModuleRef, limits?: Limits): Promise<PrepareReport> {
    const image = this.image(module);
    const resolved = this.engine.limits(limits);
    const cached = this.engine.isPrepared(image, resolved);
    try {
      const p = await this.engine.prepare(image, resolved);
      const imports = [...p.signatures.keys()];
      if (cached) return { prepared: false, wallMs: 0, imports };
      return { prepared: true, wallMs: p.cost.wallMs, ...(p.cost.cpuMs !== undefined ? { cpuMs: p.cost.cpuMs } : {}), imports };
    } catch (err) {
      this.images.delete(module.digest);
      const o = prepareFailure(err, resolved, performance.now());
      throw new RunnerError(o.reason, o.message);
    }
  }

  async runCommand(req: CommandRequest): Promise<RunOutcome> {
    const o = await this.engine.run(this.image(req.module), {
      args: req.args,
      env: req.env,
      ...kernelGrants(req),
      ...(req.extensions ? { extensions: req.extensions } : {}),
      ...(req.nested ? { nested: true } : {}),
      // No stdin reads as end of file, like empty bytes, and an empty typed array still costs a clone on the hop.
      ...(req.stdin.length > 0 ? { stdin: req.stdin } : {}),
      stdout: "stream",
      stderr: "stream",
      onOutput: (stream, chunk) => (stream === "stdout" ? req.onStdout(chunk) : req.onStderr(chunk)),
      ...(req.holdOutputBytes ? { holdOutputBytes: req.holdOutputBytes } : {}),
      ...(req.lendStdout ? { lendStdout: true } : {}),
      limits: req.limits,
    });
    return toOutcome(o);
  }

  async startReactor(req: ReactorStart): Promise<ReactorHandle> {
    let problem = this.reactorProblems.get(req.module.digest);
    if (problem === undefined) {
      // The export list comes from the preparation (off the serving thread), not from compiling here.
      const resolved = this.engine.limits(req.limits);
      let exports;
      try {
        exports = (await this.engine.prepare(this.image(req.module), resolved)).exports;
      } catch (err) {
        const o = prepareFailure(err, resolved, performance.now());
        throw new RunnerError(o.reason, o.message);
      }
      problem = checkReactorExports(exports) ?? "";
      this.reactorProblems.set(req.module.digest, problem);
    }
    if (problem) throw new RunnerError("link_error", problem);
    // Output is buffered and drained into each call's outcome (per-call
    // streaming is not offered for reactors): the instance's lifetime output
    // is uncapped, and each call's is held to the call's stdout/stderr limits below.
    let reactor: Reactor;
    let memoryBytes = 0;
    try {
      reactor = await this.engine.reactor(this.image(req.module), {
        args: req.args,
        env: req.env,
        ...kernelGrants(req),
        ...(req.extensions ? { extensions: req.extensions } : {}),
        ...(req.nested ? { nested: true } : {}),
        stdout: "buffer",
        stderr: "buffer",
        limits: { ...req.limits, stdoutBytes: Infinity, stderrBytes: Infinity },
      });
    } catch (err) {
      if (err instanceof ReactorStartError) throw new RunnerError(err.outcome.reason, err.message);
      throw err;
    }
    return {
      handle: async (request: Uint8Array, s: OutputSinks, limits: Limits): Promise<RunOutcome> => {
        const callLimits: Pick<Limits, "fuel" | "timeoutMs"> = {};
        if (limits.fuel !== undefined) callLimits.fuel = limits.fuel;
        if (limits.timeoutMs !== undefined) callLimits.timeoutMs = limits.timeoutMs;
        const { value, outcome } = await reactor.call(HTTP_HANDLE_EXPORT, [request], { limits: callLimits });
        memoryBytes = outcome.memoryBytes;
        const over = overOutputLimit(outcome, limits);
        if (over) return { ...toOutcome(outcome), reason: "output_limit", exitCode: null, message: over };
        if (outcome.stdout.length > 0) s.onStdout(outcome.stdout);
        if (outcome.stderr.length > 0) s.onStderr(outcome.stderr);
        const out = toOutcome(outcome);
        if (outcome.reason === "exit") {
          out.exitCode = typeof value === "number" ? value : 0;
          if (out.exitCode !== 0) out.message = `${HTTP_HANDLE_EXPORT} returned ${out.exitCode}`;
        }
        return out;
      },
      memoryBytes: () => memoryBytes,
      executor: () => reactor.executorId,
      close: () => reactor.close(),
    };
  }

  async close(): Promise<void> {
    await this.engine.close();
  }
}

/**
 * Two placements behind one runner: requests that ask for `placement:
 * "inline"` run on the calling (serving) thread, the rest on executors. The
 * manager chooses per app (placement.ts). Inline runs bounded by fuel skip
 * the watchdog (InlineEngineOptions.unguardedFuel).
 */
export class PlacingRunner implements InstanceRunner {
  readonly inline = true;
  readonly name: string;
  readonly executors: number;

  constructor(
    readonly onThread: EngineRunner,
    readonly onExecutors: EngineRunner,
  ) {
    this.name = `${onExecutors.name}+inline`;
    this.executors = onExecutors.executors;
  }

  private by(placement: Placement | undefined): EngineRunner {
    return placement === "inline" ? this.onThread : this.onExecutors;
  }

  prepare(module: ModuleRef, limits?: Limits, placement?: Placement): Promise<PrepareReport> {
    return this.by(placement).prepare(module, limits);
  }

  runCommand(req: CommandRequest): Promise<RunOutcome> {
    return this.by(req.placement).runCommand(req);
  }

  startReactor(req: ReactorStart): Promise<ReactorHandle> {
    return this.by(req.placement).startReactor(req);
  }

  async close(): Promise<void> {
    await Promise.all([this.onThread.close(), this.onExecutors.close()]);
  }
}

/** The node's runner: executors, and the serving thread for inline apps whose fuel is at most `inlineFuel`. */
export function placingRunner(opts: ExecutorPoolRunnerOptions & { inlineFuel: number }): PlacingRunner {
  const { inlineFuel, ...pool } = opts;
  const inline = new EngineRunner(new InlineEngine({ prepare: "worker", unguardedFuel: inlineFuel }), "inline", 1);
  return new PlacingRunner(inline, new ExecutorPoolRunner(pool));
}

/**
 * Guests in the sandbox's executor pool (worker threads): never on the thread
 * that serves requests, with every limit enforced (a spinning guest is
 * stopped at its deadline, its executor replaced), compiled once per digest.
 */
export class ExecutorPoolRunner extends EngineRunner {
  readonly pool: ExecutorPool;

  constructor(opts: ExecutorPoolRunnerOptions = {}) {
    const pool = new ExecutorPool({ ...(opts.executors !== undefined ? { size: opts.executors } : {}), ...(opts.extensionModules ? { extensionModules: opts.extensionModules } : {}) });
    super(pool, `executor-pool(${pool.size})`, pool.size);
    this.pool = pool;
  }
}
