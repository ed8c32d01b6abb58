import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync, fstatSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WASI } from "node:wasi";
import { performance } from "node:perf_hooks";
import type { CommandRequest, InstanceRunner, ModuleRef, OutputSinks, ReactorHandle, ReactorStart, RunLimits, RunOutcome } from "./runner.js";
import { RunnerError } from "./runner.js";
import { callReactorHandler, checkReactorExports, ReactorAbiError } from "./reactor-abi.js";

/**
 * STUB: runs guests on the calling thread with node:wasi while the uniwasm
 * kernel's runModule and the sandbox's executor pool land; stdio goes through
 * temp files because node:wasi only takes descriptors. It enforces no deadline
 * (a synchronous guest cannot be interrupted on this thread) and no fuel.
 */
export class InProcessRunner implements InstanceRunner {
  readonly name = "in-process (node:wasi stopgap)";
  readonly executors = 1;
  private readonly cache = new Map<string, WebAssembly.Module>();
  private readonly dir = mkdtempSync(join(tmpdir(), "uniwasm-run-"));
  private seq = 0;

  async prepare(module: ModuleRef): Promise<void> {
    this.compile(module);
  }

  private compile(module: ModuleRef): WebAssembly.Module {
    let m = this.cache.get(module.digest);
    if (!m) {
      try {
        m = new WebAssembly.Module(module.bytes);
      } catch (err) {
        throw new RunnerError("invalid_module", (err as Error).message);
      }
      this.cache.set(module.digest, m);
    }
    return m;
  }

  private tempFile(content?: Uint8Array): { path: string; fd: number } {
    const path = join(this.dir, `${process.pid}-${++this.seq}`);
    writeFileSync(path, content ?? new Uint8Array());
    return { path, fd: openSync(path, "r+") };
  }

  async runCommand(req: CommandRequest): Promise<RunOutcome> {
    const module = this.compile(req.module);
    const stdin = this.tempFile(req.stdin);
    const out = this.tempFile();
    const err = this.tempFile();
    const start = performance.now();
    try {
      const wasi = new WASI({ version: "preview1", args: req.args, env: req.env, stdin: stdin.fd, stdout: out.fd, stderr: err.fd, returnOnExit: true });
      let outcome: RunOutcome;
      try {
        const instance = new WebAssembly.Instance(module, wasi.getImportObject() as WebAssembly.Imports);
        const code = wasi.start(instance);
        outcome = { reason: "exit", exitCode: code, durationMs: 0, memoryBytes: (instance.exports["memory"] as WebAssembly.Memory | undefined)?.buffer.byteLength ?? 0 };
      } catch (e) {
        outcome = toOutcome(e);
      }
      outcome.durationMs = performance.now() - start;
      drain(out.fd, 0, req.onStdout, req.limits.stdoutBytes);
      drain(err.fd, 0, req.onStderr, req.limits.stderrBytes);
      return outcome;
    } finally {
      for (const f of [stdin, out, err]) {
        closeSync(f.fd);
        rmSync(f.path, { force: true });
      }
    }
  }

  async startReactor(req: ReactorStart): Promise<ReactorHandle> {
    const module = this.compile(req.module);
    const problem = checkReactorExports(WebAssembly.Module.exports(module));
    if (problem) throw new RunnerError("link_error", problem);
    const out = this.tempFile();
    const err = this.tempFile();
    const files = [out, err];
    const wasi = new WASI({ version: "preview1", args: req.args, env: req.env, stdin: 0, stdout: out.fd, stderr: err.fd, returnOnExit: true });
    let instance: WebAssembly.Instance;
    try {
      instance = new WebAssembly.Instance(module, wasi.getImportObject() as WebAssembly.Imports);
      wasi.initialize(instance); // calls _initialize when exported
    } catch (e) {
      for (const f of files) closeSync(f.fd);
      throw new RunnerError("trap", `reactor failed to initialize: ${(e as Error).message}`);
    }
    let outPos = fstatSync(out.fd).size;
    let errPos = fstatSync(err.fd).size;
    let closed = false;
    return {
      handle: async (request: Uint8Array, sinks: OutputSinks, limits: RunLimits): Promise<RunOutcome> => {
        const start = performance.now();
        let outcome: RunOutcome;
        try {
          const status = callReactorHandler(instance.exports, request);
          outcome =
            status === 0
              ? { reason: "exit", exitCode: 0, durationMs: 0 }
              : { reason: "exit", exitCode: status, message: `uw_handle returned ${status}`, durationMs: 0 };
        } catch (e) {
          outcome = e instanceof ReactorAbiError ? { reason: "trap", exitCode: null, message: e.message, durationMs: 0 } : toOutcome(e);
        }
        outcome.durationMs = performance.now() - start;
        outcome.memoryBytes = (instance.exports["memory"] as WebAssembly.Memory).buffer.byteLength;
        outPos = drain(out.fd, outPos, sinks.onStdout, limits.stdoutBytes);
        errPos = drain(err.fd, errPos, sinks.onStderr, limits.stderrBytes);
        return outcome;
      },
      memoryBytes: () => (instance.exports["memory"] as WebAssembly.Memory).buffer.byteLength,
      close: async () => {
        if (closed) return;
        closed = true;
        for (const f of files) {
          closeSync(f.fd);
          rmSync(f.path, { force: true });
        }
      },
    };
  }

  async close(): Promise<void> {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function toOutcome(e: unknown): RunOutcome {
  if (e instanceof RangeError && /call stack/i.test(e.message)) return { reason: "stack_exhausted", exitCode: null, message: e.message, durationMs: 0 };
  if (e instanceof WebAssembly.LinkError) return { reason: "link_error", exitCode: null, message: e.message, durationMs: 0 };
  return { reason: "trap", exitCode: null, message: (e as Error)?.message ?? String(e), durationMs: 0 };
}

/** Reads what the guest wrote to a temp-file descriptor since `pos` and hands it on, capped at `cap` bytes. */
function drain(fd: number, pos: number, sink: (chunk: Uint8Array) => void, cap: number): number {
  const size = fstatSync(fd).size;
  let at = pos;
  const end = Math.min(size, pos + (Number.isFinite(cap) ? cap : size));
  const buf = Buffer.allocUnsafe(64 * 1024);
  while (at < end) {
    const n = readSync(fd, buf, 0, Math.min(buf.length, end - at), at);
    if (n <= 0) break;
    sink(new Uint8Array(buf.subarray(0, n)));
    at += n;
  }
  return size;
}
