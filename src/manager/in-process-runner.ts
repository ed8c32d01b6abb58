import { performance } from "node:perf_hooks";
import { compileChecked } from "../wasm/index.js";
import type { ModuleInfo } from "../wasm/reader.js";
import { runCommand as runCommandHere, instantiate, ended, type RunResult } from "../sandbox/instance.js";
import type { CommandRequest, InstanceRunner, ModuleRef, OutputSinks, PrepareReport, ReactorHandle, ReactorStart, RunLimits, RunOutcome } from "./runner.js";
import { kernelGrants, RunnerError } from "./runner.js";
import { callReactorHandler, checkReactorExports, ReactorAbiError } from "./reactor-abi.js";

interface Compiled {
  module: WebAssembly.Module;
  info: ModuleInfo;
}

/**
 * Runs guests on the calling thread with the uniwasm kernel (the sandbox's
 * in-process runModule path). For embedding and tests: a guest that spins
 * blocks the thread, so there is no deadline and no fuel here — a node uses
 * ExecutorPoolRunner, which has both.
 */
export class InProcessRunner implements InstanceRunner {
  readonly name = "in-process";
  readonly executors = 1;
  private readonly cache = new Map<string, Promise<Compiled>>();

  async prepare(module: ModuleRef): Promise<PrepareReport> {
    const cached = this.cache.has(module.digest);
    const t0 = performance.now();
    await this.compile(module);
    return cached ? { prepared: false, wallMs: 0 } : { prepared: true, wallMs: performance.now() - t0 };
  }

  private compile(module: ModuleRef): Promise<Compiled> {
    let p = this.cache.get(module.digest);
    if (!p) {
      p = compileChecked(module.bytes).then(
        (c) => ({ module: c.module, info: c.info }),
        (err: unknown) => {
          this.cache.delete(module.digest);
          throw new RunnerError("invalid_module", (err as Error).message);
        },
      );
      this.cache.set(module.digest, p);
    }
    return p;
  }

  async runCommand(req: CommandRequest): Promise<RunOutcome> {
    const { module, info } = await this.compile(req.module);
    const start = performance.now();
    let result: RunResult;
    try {
      result = runCommandHere(module, info, {
        args: req.args,
        env: req.env,
        ...kernelGrants(req),
        stdin: req.stdin,
        stdout: req.onStdout,
        stderr: req.onStderr,
        limits: { stdoutBytes: req.limits.stdoutBytes, stderrBytes: req.limits.stderrBytes },
      });
    } catch (err) {
      return { reason: "link_error", exitCode: null, message: (err as Error).message, durationMs: performance.now() - start };
    }
    return toOutcome(result, performance.now() - start);
  }

  async startReactor(req: ReactorStart): Promise<ReactorHandle> {
    const { module, info } = await this.compile(req.module);
    const problem = checkReactorExports(WebAssembly.Module.exports(module));
    if (problem) throw new RunnerError("link_error", problem);
    let sinks: OutputSinks | undefined;
    let live: ReturnType<typeof instantiate>;
    try {
      live = instantiate(module, info, {
        args: req.args,
        env: req.env,
        ...kernelGrants(req),
        stdout: (c) => sinks?.onStdout(c),
        stderr: (c) => sinks?.onStderr(c),
        limits: { stdoutBytes: req.limits.stdoutBytes, stderrBytes: req.limits.stderrBytes },
      });
    } catch (err) {
      throw new RunnerError("link_error", (err as Error).message);
    }
    const { kernel, instance } = live;
    const init = instance.exports["_initialize"];
    try {
      if (typeof init === "function") (init as () => void)();
    } catch (err) {
      const r = safeEnded(kernel, err, info, instance);
      kernel.close();
      throw new RunnerError("trap", `the reactor failed to initialize: ${r.message ?? r.reason}`);
    }
    const memory = () => (instance.exports["memory"] as WebAssembly.Memory).buffer.byteLength;
    let closed = false;
    return {
      handle: async (request: Uint8Array, s: OutputSinks, _limits: RunLimits): Promise<RunOutcome> => {
        if (closed) throw new Error("reactor instance is closed");
        sinks = s;
        const start = performance.now();
        try {
          const status = callReactorHandler(instance.exports, request);
          const base: RunOutcome = { reason: "exit", exitCode: status, durationMs: performance.now() - start, memoryBytes: memory(), deniedCalls: kernel.deniedCounts() };
          if (status !== 0) base.message = `uniwasm_http_handle returned ${status}`;
          return base;
        } catch (err) {
          if (err instanceof ReactorAbiError) return { reason: "trap", exitCode: null, message: err.message, durationMs: performance.now() - start };
          return toOutcome(safeEnded(kernel, err, info, instance), performance.now() - start);
        } finally {
          sinks = undefined;
        }
      },
      memoryBytes: memory,
      close: async () => {
        if (closed) return;
        closed = true;
        kernel.close();
      },
    };
  }

  async close(): Promise<void> {
    this.cache.clear();
  }
}

function safeEnded(kernel: Parameters<typeof ended>[0], err: unknown, info: ModuleInfo, instance: WebAssembly.Instance): RunResult {
  try {
    return ended(kernel, err, info, instance);
  } catch (e) {
    return { exitCode: 70, reason: "host_fault", message: (e as Error).message, stdout: new Uint8Array(), stderr: new Uint8Array(), calls: {}, denied: {} };
  }
}

function toOutcome(r: RunResult, durationMs: number): RunOutcome {
  const o: RunOutcome = { reason: r.reason, exitCode: r.reason === "exit" ? r.exitCode : null, durationMs, deniedCalls: r.denied };
  if (r.message !== undefined) o.message = r.message;
  if (r.trap) o.trap = r.trap;
  return o;
}
